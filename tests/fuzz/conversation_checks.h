#pragma once
// What the request-parser fuzz targets check of the conversation a parser made, whatever the API:
// roles normalised, UTF-8 text, tool results alone in tool messages, images only from users, tool
// calls and reasoning only from the assistant. Each API adds its own rules through the options.
#include <boost/json.hpp>
#include <string>

#include "core/chat.h"
#include "fuzz_check.h"

namespace sluice::fuzz {

struct message_rules {
    bool reasoning = false;                 // the API carries reasoning parts (assistant only)
    bool call_ids_and_object_args = false;  // a tool call has an id and a JSON object as arguments
    bool image_urls_are_http = false;       // an image without a media type is an http(s) URL
};

inline bool is_json_text(const std::string& text, boost::json::kind kind) {
    boost::system::error_code ec;
    const auto value = boost::json::parse(text, ec);
    return !ec && value.kind() == kind;
}

inline void check_message(const chat_message& message, const message_rules& rules) {
    const auto& role = message.role;
    check(role == "system" || role == "user" || role == "assistant" || role == "tool", "role normalised");
    check(valid_utf8(message.content), "content is UTF-8");
    if (role == "tool") {
        check(message.parts.size() == 1, "a tool message has one part");
        check(message.parts[0].type == content_part::kind::tool_result, "... a tool result");
        check(!message.parts[0].id.empty(), "... with the id of its call");
        return;
    }
    for (const auto& part : message.parts) {
        switch (part.type) {
            case content_part::kind::text:
                check(valid_utf8(part.text), "a text part is UTF-8");
                break;
            case content_part::kind::image:
                check(role == "user", "images only in user messages");
                if (rules.image_urls_are_http && part.media_type.empty())
                    check(part.text.starts_with("http://") || part.text.starts_with("https://"),
                          "an image without media type is an http(s) URL");
                break;
            case content_part::kind::tool_call:
                check(role == "assistant", "tool calls only in assistant messages");
                check(!part.name.empty(), "a tool call names its function");
                if (rules.call_ids_and_object_args) {
                    check(!part.id.empty(), "a tool call has an id");
                    check(is_json_text(part.arguments, boost::json::kind::object),
                          "a tool call's input is a JSON object");
                }
                break;
            case content_part::kind::reasoning:
                check(rules.reasoning, "no reasoning part in this API's requests");
                check(role == "assistant", "reasoning only in assistant messages");
                break;
            case content_part::kind::tool_result:
                violated("no tool result part outside a tool message");
        }
    }
}

}  // namespace sluice::fuzz
