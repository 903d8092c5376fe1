// The Responses API request: validation, and its input items as the conversation model's messages
// (also for stored responses, whose input and output items continue a conversation). No I/O here.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <optional>

#include "api/request_json.h"
#include "api/responses.h"
#include "core/ids.h"

namespace sluice {

namespace json = boost::json;

namespace {

// Reasoning sluice hands out carries this before the upstream's signature, so that only its own
// goes back upstream: an encrypted_content from OpenAI itself would be refused as a signature.
constexpr std::string_view k_signature_prefix = "sluice1.";

std::string_view string_or_empty(const json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view{};
}

// An input_image's URL (a string, or {url} as some clients send it): http(s), or base64 data.
std::optional<content_part> image_from(const json::object& part) {
    const auto* url = part.if_contains("image_url");
    if (url && url->is_object()) url = url->get_object().if_contains("url");
    if (!url || !url->is_string()) return std::nullopt;  // a file_id sluice cannot fetch
    const std::string_view text = url->get_string();
    content_part image{.type = content_part::kind::image};
    if (text.starts_with("data:")) {
        const auto comma = text.find(',');
        if (comma == std::string_view::npos) return std::nullopt;
        const auto header = text.substr(5, comma - 5);
        if (!header.ends_with(";base64") || header.size() <= 7) return std::nullopt;
        image.media_type = std::string(header.substr(0, header.size() - 7));
        image.text = std::string(text.substr(comma + 1));
        return image;
    }
    if (!text.starts_with("http://") && !text.starts_with("https://")) return std::nullopt;
    image.text = std::string(text);
    return image;
}

void append_part(chat_message& message, content_part part) {
    if (message.parts.empty() && !message.content.empty())
        message.parts.push_back(content_part::text_part(message.content));
    message.parts.push_back(std::move(part));
    message.content = joined_text(message.parts);
}

// The items of an `input` (and of stored responses) as messages, in order.
class items_reader {
  public:
    items_reader() = default;
    items_reader(const item_resolver* resolve, std::vector<std::string>* unresolved)
        : resolve_(resolve), unresolved_(unresolved) {}

    std::optional<api_error> read(const json::array& items, const std::string& where) {
        std::size_t index = 0;
        for (const auto& value : items) {
            const std::string item_where = where + "[" + std::to_string(index++) + "]";
            const auto* item = value.if_object();
            if (!item) return bad_request(item_where + " must be an object");
            if (auto error = read_item(*item, item_where)) return error;
        }
        return std::nullopt;
    }

    std::vector<chat_message> take() {
        // Reasoning that no assistant turn followed has nothing to go with: it is left out.
        for (auto& message : messages_) {
            const bool only_text = std::all_of(message.parts.begin(), message.parts.end(), [](const auto& p) {
                return p.type == content_part::kind::text;
            });
            if (only_text) message.parts.clear();  // `content` holds their text already
        }
        return std::move(messages_);
    }

  private:
    std::optional<api_error> read_item(const json::object& item, const std::string& where) {
        const auto* type = item.if_contains("type");
        std::string_view kind = "message";  // an "easy input message" has a role and no type
        if (!is_absent(type)) {
            if (!type->is_string()) return bad_request(where + ".type must be a string");
            kind = type->get_string();
        }
        if (kind == "message") return read_message(item, where);
        if (kind == "function_call") {
            const auto call_id = string_or_empty(item, "call_id");
            const auto name = string_or_empty(item, "name");
            if (call_id.empty() || name.empty())
                return bad_request(where + ": a function_call needs call_id and name");
            const auto* arguments = item.if_contains("arguments");
            std::string text = "{}";
            if (arguments && arguments->is_string()) text = arguments->get_string();
            auto& turn = assistant_turn();
            append_part(turn,
                        content_part::tool_call(std::string(call_id), std::string(name), std::move(text)));
            return std::nullopt;
        }
        if (kind == "function_call_output") {
            const auto call_id = string_or_empty(item, "call_id");
            if (call_id.empty()) return bad_request(where + ": a function_call_output needs call_id");
            std::string output;
            if (const auto* value = item.if_contains("output"); value && value->is_string()) {
                output = value->get_string();
            } else if (value && value->is_array()) {
                // Text and images; the text goes to the model.
                for (const auto& piece : value->get_array()) {
                    const auto* part = piece.if_object();
                    if (!part) continue;
                    const auto text = string_or_empty(*part, "text");
                    if (text.empty()) continue;
                    if (!output.empty()) output += "\n";
                    output += text;
                }
            } else if (!is_absent(value)) {
                output = json::serialize(*value);
            }
            pending_reasoning_.clear();
            chat_message result{.role = "tool", .content = output};
            result.parts.push_back(content_part::tool_result(std::string(call_id), std::move(output)));
            messages_.push_back(std::move(result));
            return std::nullopt;
        }
        if (kind == "reasoning") {
            content_part thinking{.type = content_part::kind::reasoning};
            if (const auto* summary = item.if_contains("summary"); summary && summary->is_array()) {
                for (const auto& piece : summary->get_array()) {
                    const auto text = piece.is_object() ? string_or_empty(piece.get_object(), "text") : "";
                    if (text.empty()) continue;
                    if (!thinking.text.empty()) thinking.text += "\n";
                    thinking.text += text;
                }
            }
            const auto encrypted = string_or_empty(item, "encrypted_content");
            if (encrypted.starts_with(k_signature_prefix))
                thinking.signature = std::string(encrypted.substr(k_signature_prefix.size()));
            if (!thinking.text.empty() || !thinking.signature.empty())
                pending_reasoning_.push_back(std::move(thinking));
            return std::nullopt;
        }
        if (kind == "item_reference") {
            const auto id = string_or_empty(item, "id");
            const json::object* found = resolve_ && *resolve_ && !id.empty() ? (*resolve_)(id) : nullptr;
            if (found && string_or_empty(*found, "type") != "item_reference") return read_item(*found, where);
            if (unresolved_ && !id.empty()) unresolved_->emplace_back(id);
            spdlog::debug("responses: {}: item {} not found", where, id);
            return std::nullopt;
        }
        // custom_tool_call, local_shell_call, web_search_call, ...: nothing a model
        // behind sluice made or can read.
        spdlog::debug("responses: {} of type {} dropped", where, kind);
        return std::nullopt;
    }

    std::optional<api_error> read_message(const json::object& item, const std::string& where) {
        std::string role{string_or_empty(item, "role")};
        if (role == "developer") role = "system";
        if (role != "user" && role != "assistant" && role != "system")
            return bad_request(where + ".role must be user, assistant, system or developer");
        chat_message message{.role = role};
        if (role == "assistant") take_reasoning(message);
        const auto* content = item.if_contains("content");
        if (content && content->is_string()) {
            if (message.parts.empty()) {
                message.content = content->get_string();
            } else {
                append_part(message, content_part::text_part(std::string(content->get_string())));
            }
        } else if (content && content->is_array()) {
            std::size_t index = 0;
            for (const auto& value : content->get_array()) {
                const std::string part_where = where + ".content[" + std::to_string(index++) + "]";
                const auto* part = value.if_object();
                if (!part) return bad_request(part_where + " must be an object");
                const auto kind = string_or_empty(*part, "type");
                if (kind == "input_text" || kind == "output_text" || kind == "text") {
                    append_part(message,
                                content_part::text_part(std::string(string_or_empty(*part, "text"))));
                } else if (kind == "refusal") {
                    append_part(message,
                                content_part::text_part(std::string(string_or_empty(*part, "refusal"))));
                } else if (kind == "input_image" && role == "user") {
                    auto image = image_from(*part);
                    if (!image)
                        return bad_request(part_where + ".image_url must be an http(s) or base64 data: URL");
                    append_part(message, std::move(*image));
                } else {
                    spdlog::debug("responses: {} of type {} dropped", part_where, kind);
                }
            }
        } else if (!is_absent(content)) {
            return bad_request(where + ".content must be a string or an array of content parts");
        }
        messages_.push_back(std::move(message));
        return std::nullopt;
    }

    // The assistant message a function call joins: the last one when it is an assistant turn.
    chat_message& assistant_turn() {
        if (messages_.empty() || messages_.back().role != "assistant") {
            messages_.push_back({.role = "assistant"});
        }
        take_reasoning(messages_.back());
        return messages_.back();
    }

    // Reasoning goes before what it led to.
    void take_reasoning(chat_message& message) {
        if (pending_reasoning_.empty()) return;
        if (message.parts.empty() && !message.content.empty())
            message.parts.push_back(content_part::text_part(message.content));
        message.parts.insert(message.parts.begin(), std::make_move_iterator(pending_reasoning_.begin()),
                             std::make_move_iterator(pending_reasoning_.end()));
        pending_reasoning_.clear();
    }

    const item_resolver* resolve_ = nullptr;
    std::vector<std::string>* unresolved_ = nullptr;
    std::vector<chat_message> messages_;
    std::vector<content_part> pending_reasoning_;
};

std::optional<api_error> parse_tools(const json::value* value, responses_request& out) {
    if (is_absent(value)) return std::nullopt;
    if (!value->is_array()) return bad_request("tools must be an array");
    json::array echo;
    std::size_t index = 0;
    for (const auto& entry : value->get_array()) {
        const std::string where = "tools[" + std::to_string(index++) + "]";
        const auto* tool = entry.if_object();
        if (!tool) return bad_request(where + " must be an object");
        const auto type = string_or_empty(*tool, "type");
        if (type != "function") {
            // web_search, local_shell, custom, namespace, mcp, ...: hosted tools or shapes only
            // OpenAI's own models know. Codex sends several; the model behind sluice just lacks them.
            spdlog::debug("responses: {} of type {} dropped", where, type.empty() ? "?" : type);
            continue;
        }
        // The flat shape; the chat shape {function: {...}} is taken too.
        const json::object* spec = tool;
        if (const auto* nested = tool->if_contains("function"); nested && nested->is_object())
            spec = &nested->get_object();
        const auto name = string_or_empty(*spec, "name");
        if (name.empty()) return bad_request(where + ".name must be a non-empty string");
        tool_definition definition{.name = std::string(name),
                                   .description = std::string(string_or_empty(*spec, "description"))};
        json::value parameters = json::object{{"type", "object"}, {"properties", json::object{}}};
        if (const auto* given = spec->if_contains("parameters"); given && given->is_object())
            parameters = *given;
        definition.parameters = json::serialize(parameters);
        json::object shown{{"type", "function"},
                           {"name", definition.name},
                           {"description", definition.description},
                           {"parameters", std::move(parameters)},
                           {"strict", false}};
        if (const auto* strict = spec->if_contains("strict"); strict && strict->is_bool())
            shown["strict"] = strict->get_bool();
        echo.push_back(std::move(shown));
        out.tools.push_back(std::move(definition));
    }
    out.echo["tools"] = std::move(echo);
    return std::nullopt;
}

std::optional<api_error> parse_tool_choice(const json::value* value, responses_request& out) {
    if (is_absent(value)) return std::nullopt;
    auto& choice = out.tools_choice;
    if (value->is_string()) {
        const std::string_view mode = value->get_string();
        if (mode == "auto") {
            choice.type = tool_choice::mode::auto_;
        } else if (mode == "none") {
            choice.type = tool_choice::mode::none;
        } else if (mode == "required") {
            choice.type = tool_choice::mode::required;
        } else {
            return bad_request("tool_choice must be auto, none, required or an object");
        }
        out.echo["tool_choice"] = *value;
        return std::nullopt;
    }
    if (!value->is_object()) return bad_request("tool_choice must be auto, none, required or an object");
    const auto& object = value->get_object();
    const auto type = string_or_empty(object, "type");
    if (type == "function") {
        const auto name = string_or_empty(object, "name");
        const bool offered = std::any_of(out.tools.begin(), out.tools.end(),
                                         [&](const tool_definition& tool) { return tool.name == name; });
        if (offered) {
            choice = {.type = tool_choice::mode::named, .name = std::string(name)};
            out.echo["tool_choice"] = *value;
            return std::nullopt;
        }
    } else if (type == "allowed_tools" && string_or_empty(object, "mode") == "required") {
        choice.type = tool_choice::mode::required;
        out.echo["tool_choice"] = *value;
        return std::nullopt;
    }
    // A hosted tool, or a function that was dropped: the model chooses.
    spdlog::debug("responses: tool_choice of type {} taken as auto", type);
    return std::nullopt;
}

std::optional<api_error> parse_text(const json::value* value, responses_request& out) {
    if (is_absent(value)) return std::nullopt;
    if (!value->is_object()) return bad_request("text must be an object");
    const auto* format = value->get_object().if_contains("format");
    if (is_absent(format)) return std::nullopt;
    const auto* object = format->if_object();
    const auto type = object ? string_or_empty(*object, "type") : std::string_view{};
    if (type == "text") {
        out.format.type = response_format::kind::text;
    } else if (type == "json_object") {
        out.format.type = response_format::kind::json_object;
    } else if (type == "json_schema") {
        const auto* schema = object->if_contains("schema");
        if (!schema || !schema->is_object()) return bad_request("text.format.schema must be an object");
        out.format.type = response_format::kind::json_schema;
        out.format.name = string_or_empty(*object, "name");
        if (out.format.name.empty()) out.format.name = "response";
        out.format.schema = json::serialize(*schema);
        if (const auto* strict = object->if_contains("strict"); strict && strict->is_bool())
            out.format.strict = strict->get_bool();
    } else {
        return bad_request("text.format.type must be text, json_object or json_schema");
    }
    out.echo["text"] = json::object{{"format", *format}};
    return std::nullopt;
}

std::optional<api_error> parse_number_in(const json::object& body, std::string_view field, double low,
                                         double high, std::optional<double>& out) {
    const auto* value = body.if_contains(field);
    if (is_absent(value)) return std::nullopt;
    const auto number = as_number(*value);
    if (!number || *number < low || *number > high) {
        return bad_request(std::string(field) + " must be a number from " +
                           json::serialize(json::value(low)) + " to " + json::serialize(json::value(high)));
    }
    out = number;
    return std::nullopt;
}

std::optional<api_error> parse_bool(const json::object& body, std::string_view field, bool& out) {
    const auto* value = body.if_contains(field);
    if (is_absent(value)) return std::nullopt;
    if (!value->is_bool()) return bad_request(std::string(field) + " must be a boolean");
    out = value->get_bool();
    return std::nullopt;
}

// The input as stored items: a string becomes one user message; an item gets an id when it has none.
json::array stored_input(const json::value& input) {
    if (input.is_string()) {
        return json::array{json::object{
            {"id", new_id("msg_")},
            {"type", "message"},
            {"role", "user"},
            {"content", json::array{json::object{{"type", "input_text"}, {"text", input.get_string()}}}}}};
    }
    json::array items = input.get_array();
    for (auto& value : items) {
        auto* item = value.if_object();
        if (!item) continue;
        if (!item->contains("type")) (*item)["type"] = "message";
        if (item->contains("id")) continue;
        const auto type = string_or_empty(*item, "type");
        if (type == "message") (*item)["id"] = new_id("msg_");
        if (type == "function_call") (*item)["id"] = new_id("fc_");
        if (type == "function_call_output") (*item)["id"] = new_id("fco_");
    }
    return items;
}

std::optional<api_error> parse_options(const json::object& body, responses_request& out) {
    if (const auto* model = body.if_contains("model"); !is_absent(model)) {
        if (!model->is_string() || model->get_string().empty()) return bad_request("model must be a string");
        out.model = model->get_string();
    }
    if (auto error = parse_bool(body, "stream", out.stream)) return error;
    if (auto error = parse_bool(body, "store", out.store)) return error;
    out.echo["store"] = out.store;
    if (auto error = parse_bool(body, "background", out.background)) return error;
    if (const auto* previous = body.if_contains("previous_response_id"); !is_absent(previous)) {
        if (!previous->is_string() || previous->get_string().empty())
            return bad_request("previous_response_id must be a string");
        out.previous_response_id = previous->get_string();
    }
    out.echo["previous_response_id"] =
        out.previous_response_id.empty() ? json::value(nullptr) : json::value(out.previous_response_id);
    if (const auto* value = body.if_contains("max_output_tokens"); !is_absent(value)) {
        const auto number = as_integer(*value);
        if (!number || *number < 1 || *number > INT32_MAX)
            return bad_request("max_output_tokens must be a positive integer");
        out.max_output_tokens = static_cast<int>(*number);
        out.echo["max_output_tokens"] = *number;
    }
    if (auto error = parse_number_in(body, "temperature", 0.0, 2.0, out.temperature)) return error;
    if (auto error = parse_number_in(body, "top_p", 0.0, 1.0, out.top_p)) return error;
    out.echo["temperature"] = out.temperature.value_or(k_default_temperature);
    out.echo["top_p"] = out.top_p.value_or(1.0);
    if (auto error = parse_tools(body.if_contains("tools"), out)) return error;
    if (auto error = parse_tool_choice(body.if_contains("tool_choice"), out)) return error;
    if (const auto* parallel = body.if_contains("parallel_tool_calls"); !is_absent(parallel)) {
        if (!parallel->is_bool()) return bad_request("parallel_tool_calls must be a boolean");
        out.parallel_tool_calls = parallel->get_bool();
    }
    out.echo["parallel_tool_calls"] = out.parallel_tool_calls.value_or(true);
    if (auto error = parse_text(body.if_contains("text"), out)) return error;
    json::object reasoning{{"effort", nullptr}, {"summary", nullptr}};
    if (const auto* value = body.if_contains("reasoning"); !is_absent(value)) {
        if (!value->is_object()) return bad_request("reasoning must be an object");
        const auto& given = value->get_object();
        // OpenAI-compatible upstreams take the effort as the chat API's reasoning_effort.
        if (const auto* effort = given.if_contains("effort"); effort && effort->is_string()) {
            reasoning["effort"] = *effort;
            out.extra = json::serialize(json::object{{"reasoning_effort", *effort}});
        }
        if (const auto* summary = given.if_contains("summary"); summary && summary->is_string())
            reasoning["summary"] = *summary;
    }
    out.echo["reasoning"] = std::move(reasoning);
    if (const auto* metadata = body.if_contains("metadata"); !is_absent(metadata)) {
        if (!metadata->is_object()) return bad_request("metadata must be an object");
        out.echo["metadata"] = *metadata;
    }
    if (const auto* include = body.if_contains("include"); !is_absent(include) && !include->is_array())
        return bad_request("include must be an array");
    if (const auto* key = body.if_contains("prompt_cache_key"); !is_absent(key) && !key->is_string())
        return bad_request("prompt_cache_key must be a string");
    return std::nullopt;
}

}  // namespace

std::variant<responses_request, api_error> parse_responses_request(std::string_view body,
                                                                   const item_resolver* resolve) {
    boost::system::error_code ec;
    auto root = json::parse(body, ec);
    if (ec) return bad_request("the body is not valid JSON: " + ec.message());
    if (!root.is_object()) return bad_request("the body must be a JSON object");
    const auto& object = root.get_object();
    responses_request request;
    request.echo = json::object{
        {"instructions", nullptr},    {"max_output_tokens", nullptr},
        {"metadata", json::object{}}, {"text", json::object{{"format", json::object{{"type", "text"}}}}},
        {"tool_choice", "auto"},      {"tools", json::array{}},
        {"truncation", "disabled"},   {"user", nullptr},
        {"background", false},        {"service_tier", "default"}};
    if (auto error = parse_options(object, request)) return *error;
    request.echo["background"] = request.background;

    if (const auto* instructions = object.if_contains("instructions"); !is_absent(instructions)) {
        if (!instructions->is_string()) return bad_request("instructions must be a string");
        if (!instructions->get_string().empty()) {
            request.messages.push_back(
                {.role = "system", .content = std::string(instructions->get_string())});
            request.has_instructions = true;
        }
        request.echo["instructions"] = *instructions;
    }
    const auto* input = object.if_contains("input");
    if (is_absent(input) || !(input->is_string() || input->is_array()))
        return bad_request("input must be a string or an array of input items");
    if (input->is_string()) {
        request.messages.push_back({.role = "user", .content = std::string(input->get_string())});
    } else {
        items_reader reader{resolve, &request.references};
        if (auto error = reader.read(input->get_array(), "input")) return *error;
        for (auto& message : reader.take()) request.messages.push_back(std::move(message));
    }
    if (request.messages.size() == (request.has_instructions ? 1u : 0u) &&
        request.previous_response_id.empty())
        return bad_request("input must hold at least one message");
    request.input_items = json::serialize(stored_input(*input));
    return request;
}

std::vector<chat_message> history_from_responses(const std::vector<stored_response>& chain) {
    items_reader reader;
    for (const auto& response : chain) {
        boost::system::error_code ec;
        const auto input = json::parse(response.input_items, ec);
        if (!ec && input.is_array()) reader.read(input.get_array(), response.id + ".input");
        const auto whole = json::parse(response.response, ec);
        const auto* output = !ec && whole.is_object() ? whole.get_object().if_contains("output") : nullptr;
        if (output && output->is_array()) reader.read(output->get_array(), response.id + ".output");
    }
    return reader.take();
}

std::string response_signature(std::string_view signature) {
    return signature.empty() ? std::string{} : std::string(k_signature_prefix) + std::string(signature);
}

}  // namespace sluice
