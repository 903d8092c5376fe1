#pragma once
// The one internal chunk type every provider yields, whatever its wire format.
#include <string>

namespace sluice {

struct stream_chunk {
    // delta: answer text; tool_call_start: a new call (index, id, name); tool_call_delta: a fragment
    // of a call's arguments (index, text); reasoning: a piece of the model's thinking (text) and/or
    // its signature; then usage, and finish or error.
    enum class kind { delta, tool_call_start, tool_call_delta, reasoning, usage, finish, error };

    kind type = kind::delta;
    std::string text;            // delta, tool_call_delta, reasoning (always whole UTF-8 characters)
    int index = 0;               // tool_call_*: the call's 0-based position in this answer
    std::string id;              // tool_call_start: the call's id
    std::string name;            // tool_call_start: the function's name
    std::string signature;       // reasoning: the upstream's signature of the reasoning so far
    int prompt_tokens = 0;       // usage
    int completion_tokens = 0;   // usage
    int cached_tokens = 0;       // usage: prompt tokens read from the upstream's prompt cache
    int cache_write_tokens = 0;  // usage: prompt tokens written to it
    int reasoning_tokens = 0;    // usage: completion tokens spent on reasoning
    std::string finish_reason;   // finish: "stop" | "length" | "tool_calls" | "cancelled"
    int code = 0;                // error: an HTTP-like status (502, 503, 429, ...)
    std::string message;         // error: what went wrong, safe to show a client
    int retry_after_s = 0;       // error: for 429/503, seconds until a retry may pass
    bool model_fault = true;  // error: false when the failure was sluice's own (pool full), not the model's

    // Text, a tool call or reasoning: something a client sees, after which no other model may answer.
    bool is_content() const {
        return type == kind::tool_call_start || type == kind::tool_call_delta ||
               ((type == kind::delta || type == kind::reasoning) && !(text.empty() && signature.empty()));
    }

    static stream_chunk delta(std::string text) { return {.type = kind::delta, .text = std::move(text)}; }
    static stream_chunk tool_call_start(int index, std::string id, std::string name) {
        return {.type = kind::tool_call_start, .index = index, .id = std::move(id), .name = std::move(name)};
    }
    static stream_chunk tool_call_delta(int index, std::string arguments) {
        return {.type = kind::tool_call_delta, .text = std::move(arguments), .index = index};
    }
    static stream_chunk reasoning(std::string text, std::string signature = {}) {
        return {.type = kind::reasoning, .text = std::move(text), .signature = std::move(signature)};
    }
    static stream_chunk usage(int prompt, int completion) {
        return {.type = kind::usage, .prompt_tokens = prompt, .completion_tokens = completion};
    }
    static stream_chunk finish(std::string reason) {
        return {.type = kind::finish, .finish_reason = std::move(reason)};
    }
    static stream_chunk error(int code, std::string message, int retry_after_s = 0) {
        return {
            .type = kind::error, .code = code, .message = std::move(message), .retry_after_s = retry_after_s};
    }
};

}  // namespace sluice
