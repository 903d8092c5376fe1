#pragma once
// The request types every layer shares: what a caller asked for, independent of the wire format it
// arrived in (seed API, OpenAI API) and of the model that will answer.
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

struct chat_message {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

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
};

}  // namespace sluice
