#include "core/chat_json.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace sluice {

namespace json = boost::json;

namespace {

std::string string_member(const json::object& object, std::string_view name) {
    const auto* value = object.if_contains(name);
    return value && value->is_string() ? std::string(value->get_string()) : std::string{};
}

json::object part_to_json(const content_part& part) {
    switch (part.type) {
        case content_part::kind::text:
            return {{"type", "text"}, {"text", part.text}};
        case content_part::kind::image:
            if (part.media_type.empty()) return {{"type", "image"}, {"url", part.text}};
            return {{"type", "image"}, {"media_type", part.media_type}, {"data", part.text}};
        case content_part::kind::tool_call:
            return {
                {"type", "tool_call"}, {"id", part.id}, {"name", part.name}, {"arguments", part.arguments}};
        case content_part::kind::tool_result:
            return {{"type", "tool_result"},
                    {"call_id", part.id},
                    {"content", part.text},
                    {"is_error", part.is_error}};
        case content_part::kind::reasoning: {
            json::object out{{"type", "reasoning"}, {"text", part.text}, {"signature", part.signature}};
            if (part.redacted) out["redacted"] = true;
            return out;
        }
    }
    return {};
}

}  // namespace

json::array parts_to_json_array(const std::vector<content_part>& parts) {
    json::array out;
    out.reserve(parts.size());
    for (const auto& part : parts) out.push_back(part_to_json(part));
    return out;
}

std::string parts_to_json(const std::vector<content_part>& parts) {
    if (parts.empty()) return {};
    return json::serialize(parts_to_json_array(parts));
}

std::vector<content_part> parts_from_json(std::string_view text) {
    std::vector<content_part> parts;
    if (text.empty()) return parts;
    boost::system::error_code ec;
    const auto root = json::parse(text, ec);
    if (ec || !root.is_array()) return parts;
    for (const auto& item : root.get_array()) {
        const auto* object = item.if_object();
        if (!object) continue;
        const std::string type = string_member(*object, "type");
        content_part part;
        if (type == "text") {
            part = content_part::text_part(string_member(*object, "text"));
        } else if (type == "image") {
            part.type = content_part::kind::image;
            part.media_type = string_member(*object, "media_type");
            part.text = string_member(*object, part.media_type.empty() ? "url" : "data");
        } else if (type == "tool_call") {
            part = content_part::tool_call(string_member(*object, "id"), string_member(*object, "name"),
                                           string_member(*object, "arguments"));
        } else if (type == "tool_result") {
            const auto* is_error = object->if_contains("is_error");
            part = content_part::tool_result(string_member(*object, "call_id"),
                                             string_member(*object, "content"),
                                             is_error && is_error->is_bool() && is_error->get_bool());
        } else if (type == "reasoning") {
            part.type = content_part::kind::reasoning;
            part.text = string_member(*object, "text");
            part.signature = string_member(*object, "signature");
            const auto* redacted = object->if_contains("redacted");
            part.redacted = redacted && redacted->is_bool() && redacted->get_bool();
        } else {
            continue;
        }
        parts.push_back(std::move(part));
    }
    return parts;
}

}  // namespace sluice
