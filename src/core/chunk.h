#pragma once
// The one internal chunk type every provider yields, whatever its wire format.
#include <string>

namespace sluice {

struct stream_chunk {
    enum class kind { delta, usage, finish, error };

    kind type = kind::delta;
    std::string text;           // delta: the new text (always whole UTF-8 characters)
    int prompt_tokens = 0;      // usage
    int completion_tokens = 0;  // usage
    std::string finish_reason;  // finish: "stop" | "length" | "cancelled"
    int code = 0;               // error: an HTTP-like status (502, 503, 429, ...)
    std::string message;        // error: what went wrong, safe to show a client
    int retry_after_s = 0;      // error: for 429/503, seconds until a retry may pass
    bool model_fault = true;    // error: false when the failure was sluice's own (pool full), not the model's

    static stream_chunk delta(std::string text) { return {.type = kind::delta, .text = std::move(text)}; }
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
