#include "streaming/wire_format.h"

namespace sluice {

std::vector<content_part> stream_outcome::answer_parts() const {
    std::vector<content_part> parts;
    if (reasoning.empty() && reasoning_signature.empty() && tool_calls.empty()) return parts;
    if (!reasoning.empty() || !reasoning_signature.empty()) {
        content_part thinking{.type = content_part::kind::reasoning, .text = reasoning};
        thinking.signature = reasoning_signature;
        parts.push_back(std::move(thinking));
    }
    if (!text.empty()) parts.push_back(content_part::text_part(text));
    for (const auto& call : tool_calls) parts.push_back(call);
    return parts;
}

void stream_outcome::take_content(const stream_chunk& chunk) {
    switch (chunk.type) {
        case stream_chunk::kind::delta:
            text += chunk.text;
            break;
        case stream_chunk::kind::reasoning:
            reasoning += chunk.text;
            if (!chunk.signature.empty()) reasoning_signature += chunk.signature;
            break;
        case stream_chunk::kind::tool_call_start:
            tool_calls.push_back(content_part::tool_call(chunk.id, chunk.name, {}));
            break;
        case stream_chunk::kind::tool_call_delta: {
            // Providers number calls 0, 1, ... in the order they start them.
            const auto index = static_cast<std::size_t>(chunk.index);
            if (chunk.index >= 0 && index < tool_calls.size()) tool_calls[index].arguments += chunk.text;
            break;
        }
        case stream_chunk::kind::usage:
        case stream_chunk::kind::finish:
        case stream_chunk::kind::error:
            break;
    }
}

}  // namespace sluice
