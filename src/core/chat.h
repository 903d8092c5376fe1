#pragma once
// The conversation model every layer shares: what a caller asked for, independent of the wire format
// it arrived in (seed, OpenAI chat, Anthropic Messages, OpenAI Responses) and of the model that will
// answer. Each API's wire module parses into it; each provider writes it out in its own wire.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class model_role { local_small, cloud_large };

inline std::string_view to_string(model_role role) {
    return role == model_role::local_small ? "local_small" : "cloud_large";
}

inline std::optional<model_role> parse_model_role(std::string_view text) {
    if (text == "local_small") return model_role::local_small;
    if (text == "cloud_large") return model_role::cloud_large;
    return std::nullopt;
}

// One typed piece of a message.
struct content_part {
    enum class kind { text, image, tool_call, tool_result, reasoning };

    kind type = kind::text;
    // text: the text; reasoning: its text; tool_result: the result's text; image: an http(s) URL, or
    // the base64 data when media_type is set.
    std::string text;
    std::string media_type;  // image given inline (base64): image/png, image/jpeg, ...
    std::string id;          // tool_call: the call's id; tool_result: the id of the call it answers
    std::string name;        // tool_call: the function's name
    std::string arguments;   // tool_call: the arguments, as JSON text
    std::string signature;   // reasoning: the upstream's signature, sent back on the next turn
    bool is_error = false;   // tool_result: the tool failed
    bool redacted = false;   // reasoning: an encrypted block (its data in `text`), passed back untouched

    static content_part text_part(std::string text) { return {.type = kind::text, .text = std::move(text)}; }
    static content_part tool_call(std::string id, std::string name, std::string arguments) {
        return {.type = kind::tool_call,
                .id = std::move(id),
                .name = std::move(name),
                .arguments = std::move(arguments)};
    }
    static content_part tool_result(std::string call_id, std::string text, bool is_error = false) {
        return {.type = kind::tool_result,
                .text = std::move(text),
                .id = std::move(call_id),
                .is_error = is_error};
    }
};

// role: system | user | assistant | tool. A plain-text message has only `content`. A message with
// anything else (images, tool calls, a tool result, reasoning) lists every part, its text parts
// included, in `parts`; `content` is then its text parts joined, for what only needs the text
// (token estimates, routing, trimming). A tool message holds one tool_result part.
struct chat_message {
    std::string role;
    std::string content;
    std::vector<content_part> parts;

    bool has_parts() const { return !parts.empty(); }
    bool has(content_part::kind kind) const {
        for (const auto& part : parts)
            if (part.type == kind) return true;
        return false;
    }
};

// `content` for a message built from parts: its text parts, joined by a newline.
std::string joined_text(const std::vector<content_part>& parts);

// A function the model may call; `parameters` is a JSON Schema as JSON text.
struct tool_definition {
    std::string name;
    std::string description;
    std::string parameters;
};

struct tool_choice {
    enum class mode { auto_, none, required, named };
    mode type = mode::auto_;
    std::string name;  // named: the tool that must be called
};

struct response_format {
    enum class kind { text, json_object, json_schema };
    kind type = kind::text;
    std::string name;    // json_schema
    std::string schema;  // json_schema: the schema as JSON text
    bool strict = false;
};

inline constexpr int k_default_max_tokens = 1024;
inline constexpr double k_default_temperature = 0.7;

struct generation_params {
    int max_tokens = 1024;
    double temperature = 0.7;
    double top_p = 1.0;
    std::optional<std::uint64_t> seed;
    std::vector<std::string> stop;
};

struct chat_request {
    std::vector<chat_message> messages;  // oldest first; the last one is the new user turn
    generation_params params;
    std::vector<tool_definition> tools;
    tool_choice tools_choice;
    std::optional<bool> parallel_tool_calls;
    response_format format;
    // Members of an OpenAI chat request that sluice does not interpret (reasoning_effort, logprobs,
    // metadata, ...), as the text of one JSON object: an OpenAI-compatible upstream gets them
    // unchanged, other wires leave them out. Empty: none.
    std::string openai_extra;
    // The client's own Anthropic Messages body (POST /v1/messages), so that an Anthropic upstream gets
    // its blocks, cache_control, thinking signatures, tools and options as sent, not a lossy round
    // trip through the parts above. Used only while `messages` is still what it was parsed into:
    // anthropic_message_count non-system messages (no session history added, nothing trimmed) and
    // anthropic_system_count system ones (more are sluice's own: server.system_prompt).
    // Empty: none; other wires ignore it.
    std::string anthropic_body;
    std::size_t anthropic_message_count = 0;
    std::size_t anthropic_system_count = 0;
    std::string anthropic_beta;  // the client's anthropic-beta header, forwarded to Anthropic upstreams

    bool needs_tools() const;
    bool needs_images() const;
};

}  // namespace sluice
