#include "core/chat.h"

namespace sluice {

std::string joined_text(const std::vector<content_part>& parts) {
    std::string text;
    bool first = true;
    for (const auto& part : parts) {
        if (part.type != content_part::kind::text) continue;
        if (!first) text += '\n';
        text += part.text;
        first = false;
    }
    return text;
}

bool chat_request::needs_tools() const {
    if (!tools.empty() && tools_choice.type != tool_choice::mode::none) return true;
    // A conversation that already holds calls and results needs a model that reads them.
    for (const auto& message : messages)
        if (message.has(content_part::kind::tool_call) || message.has(content_part::kind::tool_result))
            return true;
    return false;
}

bool chat_request::needs_images() const {
    for (const auto& message : messages)
        if (message.has(content_part::kind::image)) return true;
    return false;
}

}  // namespace sluice
