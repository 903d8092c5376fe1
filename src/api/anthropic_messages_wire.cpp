// The Anthropic Messages wire format: request validation and the response objects (no I/O here).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <optional>

#include "api/anthropic_messages.h"
#include "api/request_json.h"
#include "core/ids.h"
#include "core/json_text.h"

namespace sluice {

namespace json = boost::json;

namespace {

std::string_view string_member(const json::object& object, std::string_view name) {
    const auto* field = object.if_contains(name);
    return field && field->is_string() ? std::string_view(field->get_string()) : std::string_view{};
}

// An image block's source: {type: "base64", media_type, data} or {type: "url", url}.
std::variant<content_part, api_error> image_part(const json::object& block, const std::string& where) {
    const auto* source_value = block.if_contains("source");
    const auto* source = source_value ? source_value->if_object() : nullptr;
    if (!source) return bad_request(where + ".source must be an object");
    const auto type = string_member(*source, "type");
    content_part out{.type = content_part::kind::image};
    if (type == "base64") {
        out.media_type = std::string(string_member(*source, "media_type"));
        out.text = std::string(string_member(*source, "data"));
        if (out.media_type.empty() || out.text.empty())
            return bad_request(where + ".source: a base64 image needs media_type and data");
    } else if (type == "url") {
        const auto url = string_member(*source, "url");
        if (!url.starts_with("http://") && !url.starts_with("https://"))
            return bad_request(where + ".source.url must be an http(s) URL");
        out.text = std::string(url);
    } else {
        return bad_request(where + ".source.type must be base64 or url");
    }
    return out;
}

// A tool_result's content: a string, or text and image blocks (the text is the result; images go to
// the user message after the results, as only text travels in a tool result part).
std::optional<api_error> tool_result_content(const json::value* content, std::string& text,
                                             std::vector<content_part>& images, const std::string& where) {
    if (is_absent(content)) return std::nullopt;
    if (content->is_string()) {
        text = content->get_string();
        return std::nullopt;
    }
    if (!content->is_array()) return bad_request(where + ".content must be a string or an array of blocks");
    std::vector<content_part> texts;
    std::size_t index = 0;
    for (const auto& item : content->get_array()) {
        const std::string block_where = where + ".content[" + std::to_string(index++) + "]";
        const auto* block = item.if_object();
        if (!block) return bad_request(block_where + " must be an object");
        const auto type = string_member(*block, "type");
        if (type == "text") {
            texts.push_back(content_part::text_part(std::string(string_member(*block, "text"))));
        } else if (type == "image") {
            auto image = image_part(*block, block_where);
            if (auto* error = std::get_if<api_error>(&image)) return *error;
            images.push_back(std::move(std::get<content_part>(image)));
        } else {
            spdlog::debug("anthropic messages: {} of type '{}' dropped", block_where, type);
        }
    }
    text = joined_text(texts);
    return std::nullopt;
}

// system: a string or text blocks (their cache_control is for Anthropic upstreams, which get the
// client's own body).
std::optional<api_error> parse_system(const json::value* value, std::vector<chat_message>& out,
                                      const std::string& where = "system") {
    if (is_absent(value)) return std::nullopt;
    std::string text;
    if (value->is_string()) {
        text = value->get_string();
    } else if (value->is_array()) {
        std::vector<content_part> parts;
        std::size_t index = 0;
        for (const auto& item : value->get_array()) {
            const auto* block = item.if_object();
            if (!block || string_member(*block, "type") != "text")
                return bad_request(where + "[" + std::to_string(index) + "] must be a text block");
            parts.push_back(content_part::text_part(std::string(string_member(*block, "text"))));
            ++index;
        }
        text = joined_text(parts);
    } else {
        return bad_request(where + " must be a string or an array of text blocks");
    }
    if (!text.empty()) out.push_back({.role = "system", .content = std::move(text)});
    return std::nullopt;
}

// Appends the chat messages of one Anthropic turn to `out`.
std::optional<api_error> parse_turn(const json::object& turn, std::size_t index,
                                    std::vector<chat_message>& out) {
    const std::string where = "messages[" + std::to_string(index) + "]";
    const auto role = string_member(turn, "role");
    // Claude Code sends system turns inside messages too (its environment, mid-conversation).
    if (role == "system") return parse_system(turn.if_contains("content"), out, where + ".content");
    if (role != "user" && role != "assistant")
        return bad_request(where + ".role must be user, assistant or system");
    const bool assistant = role == "assistant";
    const auto* content = turn.if_contains("content");
    if (is_absent(content)) return bad_request(where + ".content is required");
    if (content->is_string()) {
        out.push_back({.role = std::string(role), .content = std::string(content->get_string())});
        return std::nullopt;
    }
    if (!content->is_array()) return bad_request(where + ".content must be a string or an array of blocks");

    std::vector<content_part> parts;
    bool only_text = true;
    bool had_results = false;
    std::size_t block_index = 0;
    for (const auto& item : content->get_array()) {
        const std::string block_where = where + ".content[" + std::to_string(block_index++) + "]";
        const auto* block = item.if_object();
        if (!block) return bad_request(block_where + " must be an object");
        const auto* type_value = block->if_contains("type");
        if (!type_value || !type_value->is_string())
            return bad_request(block_where + ".type must be a string");
        const std::string_view type = type_value->get_string();
        if (type == "text") {
            const auto* text = block->if_contains("text");
            if (!text || !text->is_string()) return bad_request(block_where + ".text must be a string");
            if (!text->get_string().empty())
                parts.push_back(content_part::text_part(std::string(text->get_string())));
        } else if (type == "image" && !assistant) {
            auto image = image_part(*block, block_where);
            if (auto* error = std::get_if<api_error>(&image)) return *error;
            parts.push_back(std::move(std::get<content_part>(image)));
            only_text = false;
        } else if (type == "tool_use" && assistant) {
            const auto id = string_member(*block, "id");
            const auto name = string_member(*block, "name");
            if (id.empty() || name.empty())
                return bad_request(block_where + ": tool_use needs an id and a name");
            const auto* input = block->if_contains("input");
            std::string arguments = "{}";
            if (input && input->is_object()) arguments = json::serialize(*input);
            parts.push_back(
                content_part::tool_call(std::string(id), std::string(name), std::move(arguments)));
            only_text = false;
        } else if (type == "tool_result" && !assistant) {
            const auto id = string_member(*block, "tool_use_id");
            if (id.empty()) return bad_request(block_where + ".tool_use_id must be a non-empty string");
            std::string text;
            std::vector<content_part> images;
            if (auto error = tool_result_content(block->if_contains("content"), text, images, block_where))
                return error;
            const auto* is_error = block->if_contains("is_error");
            const bool failed = is_error && is_error->is_bool() && is_error->get_bool();
            // Each result is a tool message of its own, before the rest of this turn.
            chat_message result{.role = "tool", .content = text};
            result.parts.push_back(content_part::tool_result(std::string(id), std::move(text), failed));
            out.push_back(std::move(result));
            had_results = true;
            for (auto& image : images) {
                parts.push_back(std::move(image));
                only_text = false;
            }
        } else if ((type == "thinking" || type == "redacted_thinking") && assistant) {
            content_part reasoning{.type = content_part::kind::reasoning};
            if (type == "thinking") {
                reasoning.text = std::string(string_member(*block, "thinking"));
                reasoning.signature = std::string(string_member(*block, "signature"));
            } else {
                reasoning.text = std::string(string_member(*block, "data"));
                reasoning.redacted = true;
            }
            parts.push_back(std::move(reasoning));
            only_text = false;
        } else {
            // document, search_result, server tool blocks...: nothing a model behind sluice reads.
            spdlog::debug("anthropic messages: {} of type '{}' dropped", block_where, type);
        }
    }
    // A user turn that held only tool results has nothing left to say.
    if (parts.empty() && had_results) return std::nullopt;
    chat_message message{.role = std::string(role), .content = joined_text(parts)};
    if (!only_text) message.parts = std::move(parts);
    out.push_back(std::move(message));
    return std::nullopt;
}

// tools: [{name, description, input_schema}]; a typed tool other than "custom" is a server or
// Anthropic-defined tool (web_search_..., bash_..., text_editor_...) that only Anthropic runs.
std::optional<api_error> parse_tools(const json::value* value, std::vector<tool_definition>& tools) {
    if (is_absent(value)) return std::nullopt;
    if (!value->is_array()) return bad_request("tools must be an array");
    std::size_t index = 0;
    for (const auto& item : value->get_array()) {
        const std::string where = "tools[" + std::to_string(index++) + "]";
        const auto* tool = item.if_object();
        if (!tool) return bad_request(where + " must be an object");
        const auto type = string_member(*tool, "type");
        const auto name = string_member(*tool, "name");
        if (!type.empty() && type != "custom") {
            spdlog::debug("anthropic messages: {} ({} '{}') dropped: a server tool", where, type, name);
            continue;
        }
        if (name.empty()) return bad_request(where + ".name must be a non-empty string");
        tool_definition out{.name = std::string(name),
                            .description = std::string(string_member(*tool, "description"))};
        const auto* schema = tool->if_contains("input_schema");
        if (!is_absent(schema) && !schema->is_object())
            return bad_request(where + ".input_schema must be a JSON Schema object");
        out.parameters =
            is_absent(schema) ? R"({"type":"object","properties":{}})" : json::serialize(*schema);
        tools.push_back(std::move(out));
    }
    return std::nullopt;
}

std::optional<api_error> parse_tool_choice(const json::value* value, anthropic_messages_request& out) {
    if (is_absent(value)) return std::nullopt;
    const auto* choice = value->if_object();
    if (!choice) return bad_request("tool_choice must be an object");
    const auto type = string_member(*choice, "type");
    if (type == "auto") {
        out.tools_choice.type = tool_choice::mode::auto_;
    } else if (type == "any") {
        out.tools_choice.type = tool_choice::mode::required;
    } else if (type == "none") {
        out.tools_choice.type = tool_choice::mode::none;
    } else if (type == "tool") {
        const auto name = string_member(*choice, "name");
        if (name.empty()) return bad_request("tool_choice.name must be a non-empty string");
        out.tools_choice = {.type = tool_choice::mode::named, .name = std::string(name)};
    } else {
        return bad_request("tool_choice.type must be auto, any, tool or none");
    }
    if (const auto* serial = choice->if_contains("disable_parallel_tool_use"); serial && serial->is_bool())
        out.parallel_tool_calls = !serial->get_bool();
    return std::nullopt;
}

std::optional<api_error> parse_number_in(const json::object& body, std::string_view field, double low,
                                         double high, std::optional<double>& out) {
    const auto* value = body.if_contains(field);
    if (is_absent(value)) return std::nullopt;
    const auto number = as_number(*value);
    if (!number || *number < low || *number > high) {
        return bad_request(std::string(field) + ": must be a number from " +
                           json::serialize(json::value(low)) + " to " + json::serialize(json::value(high)));
    }
    out = number;
    return std::nullopt;
}

std::optional<api_error> parse_options(const json::object& body, anthropic_messages_request& out,
                                       bool count_tokens) {
    const auto* model = body.if_contains("model");
    if (is_absent(model) || !model->is_string() || model->get_string().empty())
        return bad_request("model: Field required (a string)");
    out.model = model->get_string();
    if (const auto* stream = body.if_contains("stream"); !is_absent(stream)) {
        if (!stream->is_bool()) return bad_request("stream: must be a boolean");
        out.stream = stream->get_bool();
    }
    const auto* max_tokens = body.if_contains("max_tokens");
    if (is_absent(max_tokens)) {
        if (!count_tokens) return bad_request("max_tokens: Field required");
    } else {
        const auto number = as_integer(*max_tokens);
        if (!number || *number < 1 || *number > INT32_MAX)
            return bad_request("max_tokens: must be a positive integer");
        out.max_tokens = static_cast<int>(*number);
    }
    if (auto error = parse_number_in(body, "temperature", 0.0, 1.0, out.temperature)) return error;
    if (auto error = parse_number_in(body, "top_p", 0.0, 1.0, out.top_p)) return error;
    if (const auto* top_k = body.if_contains("top_k"); !is_absent(top_k)) {
        const auto number = as_integer(*top_k);
        if (!number || *number < 0) return bad_request("top_k: must be a non-negative integer");
    }
    if (const auto* stop = body.if_contains("stop_sequences"); !is_absent(stop)) {
        if (!stop->is_array()) return bad_request("stop_sequences: must be an array of strings");
        for (const auto& item : stop->get_array()) {
            if (!item.is_string()) return bad_request("stop_sequences: must be an array of strings");
            if (!item.get_string().empty()) out.stop.emplace_back(item.get_string());
        }
    }
    if (const auto* thinking = body.if_contains("thinking"); !is_absent(thinking)) {
        const auto* object = thinking->if_object();
        if (!object) return bad_request("thinking: must be an object");
        const auto type = string_member(*object, "type");
        if (type == "enabled" && out.max_tokens) {
            const auto* budget = object->if_contains("budget_tokens");
            const auto number = budget ? as_integer(*budget) : std::nullopt;
            if (!number || *number < 1)
                return bad_request("thinking.budget_tokens: must be a positive integer");
        }
    }
    if (auto error = parse_tools(body.if_contains("tools"), out.tools)) return error;
    if (auto error = parse_tool_choice(body.if_contains("tool_choice"), out)) return error;
    if (out.tools_choice.type == tool_choice::mode::named) {
        const bool offered =
            std::any_of(out.tools.begin(), out.tools.end(),
                        [&](const tool_definition& tool) { return tool.name == out.tools_choice.name; });
        if (!offered)
            return bad_request("tool_choice: names the tool '" + out.tools_choice.name +
                               "', which tools does not offer");
    }
    return std::nullopt;
}

int estimate_input_tokens(const anthropic_messages_request& request) {
    std::size_t characters = 0;
    for (const auto& message : request.messages) {
        characters += message.content.size();
        for (const auto& part : message.parts) {
            if (part.type == content_part::kind::tool_call)
                characters += part.name.size() + part.arguments.size();
            if (part.type == content_part::kind::tool_result) characters += part.text.size();
            if (part.type == content_part::kind::reasoning && !part.redacted) characters += part.text.size();
        }
    }
    for (const auto& tool : request.tools)
        characters += tool.name.size() + tool.description.size() + tool.parameters.size();
    return static_cast<int>(characters / 4);
}

std::string_view error_type(int status) {
    switch (status) {
        case 400:
        case 405:
        case 409:
        case 422:
            return "invalid_request_error";
        case 401:
            return "authentication_error";
        case 403:
            return "permission_error";
        case 404:
            return "not_found_error";
        case 413:
            return "request_too_large";
        case 429:
            return "rate_limit_error";
        case 529:
            return "overloaded_error";
        default:
            return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

}  // namespace

std::variant<anthropic_messages_request, api_error> parse_anthropic_messages_request(std::string_view body,
                                                                                     bool count_tokens) {
    boost::system::error_code ec;
    auto root = json::parse(body, ec);
    if (ec) return bad_request("the body is not valid JSON: " + ec.message());
    if (!root.is_object()) return bad_request("the body must be a JSON object");
    const auto& object = root.get_object();
    anthropic_messages_request request;
    if (auto error = parse_options(object, request, count_tokens)) return *error;
    if (auto error = parse_system(object.if_contains("system"), request.messages)) return *error;
    const auto* messages = object.if_contains("messages");
    if (is_absent(messages) || !messages->is_array() || messages->get_array().empty())
        return bad_request("messages: must be a non-empty array");
    std::size_t index = 0;
    for (const auto& item : messages->get_array()) {
        const auto* turn = item.if_object();
        if (!turn) return bad_request("messages[" + std::to_string(index) + "] must be an object");
        if (auto error = parse_turn(*turn, index, request.messages)) return *error;
        ++index;
    }
    request.conversation_messages =
        static_cast<std::size_t>(std::count_if(request.messages.begin(), request.messages.end(),
                                               [](const chat_message& m) { return m.role != "system"; }));
    request.system_messages = request.messages.size() - request.conversation_messages;
    // Found by fuzz_anthropic_messages_request: only system turns left nothing for a model to answer.
    if (request.conversation_messages == 0)
        return bad_request("messages: must hold at least one user or assistant turn with content");
    request.input_estimate = estimate_input_tokens(request);
    return request;
}

int anthropic_error_status(int code) {
    if (code == 503) return 529;  // no model can take the request: Anthropic's overloaded
    return code >= 400 && code <= 599 ? code : 500;
}

std::string anthropic_error_json(const api_error& error) {
    return json::serialize(
        json::object{{"type", "error"},
                     {"error", json::object{{"type", error_type(anthropic_error_status(error.code))},
                                            {"message", error.message}}}});
}

http_response anthropic_error_response(const http_request& request, const api_error& error) {
    const int status = anthropic_error_status(error.code);
    http_response res{static_cast<http_status>(status), request.version()};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.set("request-id", new_id("req_"));
    if (error.retry_after_s > 0)
        res.set(boost::beast::http::field::retry_after, std::to_string(error.retry_after_s));
    res.keep_alive(request.keep_alive());
    res.body() = anthropic_error_json(error);
    res.prepare_payload();
    return res;
}

std::string_view anthropic_stop_reason(std::string_view finish_reason, bool has_tool_calls) {
    if (finish_reason == "length") return "max_tokens";
    if (finish_reason == "tool_calls" || has_tool_calls) return "tool_use";
    return "end_turn";
}

namespace {

// The usage object of message_delta and of the whole message. Anthropic's input_tokens leaves out
// the prompt read from and written to the cache; sluice's prompt_tokens counts all of it.
json::object usage_json(const stream_outcome& out) {
    const int uncached = std::max(0, out.prompt_tokens - out.cached_tokens - out.cache_write_tokens);
    return json::object{{"input_tokens", uncached},
                        {"cache_creation_input_tokens", out.cache_write_tokens},
                        {"cache_read_input_tokens", out.cached_tokens},
                        {"output_tokens", out.completion_tokens}};
}

// A tool call's arguments as the object tool_use.input must be ({} when they are not one).
json::value input_object(const std::string& arguments) {
    boost::system::error_code ec;
    auto value = json::parse(arguments, ec);
    if (ec || !value.is_object()) return json::object{};
    return value;
}

// The events of one /v1/messages stream. Each kind of content is a block of its own: a chunk of
// another kind (or a new tool call) closes the open block and starts the next index.
class anthropic_messages_wire final : public wire_format {
  public:
    anthropic_messages_wire(std::string model, int input_estimate)
        : model_(std::move(model)), input_estimate_(input_estimate), id_(new_id("msg_")) {}

    void content(sse_batch& events, const stream_identity&, const stream_chunk& chunk,
                 const stream_outcome&) override {
        start(events);
        switch (chunk.type) {
            case stream_chunk::kind::delta:
                open(events, block::text, R"({"type":"text","text":""})");
                delta(events, current_index_, "text_delta", "text", chunk.text);
                break;
            case stream_chunk::kind::reasoning:
                open(events, block::thinking, R"({"type":"thinking","thinking":"","signature":""})");
                if (!chunk.text.empty())
                    delta(events, current_index_, "thinking_delta", "thinking", chunk.text);
                if (!chunk.signature.empty())
                    delta(events, current_index_, "signature_delta", "signature", chunk.signature);
                break;
            case stream_chunk::kind::tool_call_start: {
                close(events);
                json::object start_block{
                    {"type", "tool_use"}, {"id", chunk.id}, {"name", chunk.name}, {"input", json::object{}}};
                open(events, block::tool_use, json::serialize(start_block));
                call_blocks_[chunk.index] = current_index_;
                break;
            }
            case stream_chunk::kind::tool_call_delta: {
                const auto it = call_blocks_.find(chunk.index);
                if (it == call_blocks_.end() || chunk.text.empty())
                    break;  // a fragment of a call never begun
                delta(events, it->second, "input_json_delta", "partial_json", chunk.text);
                break;
            }
            case stream_chunk::kind::usage:
            case stream_chunk::kind::finish:
            case stream_chunk::kind::error:
                break;
        }
    }

    void final(sse_batch& events, const stream_identity&, const stream_outcome& out) override {
        start(events);
        close(events);
        json::object message_delta{
            {"type", "message_delta"},
            {"delta",
             json::object{{"stop_reason", anthropic_stop_reason(out.finish_reason, !out.tool_calls.empty())},
                          {"stop_sequence", nullptr}}},
            {"usage", usage_json(out)}};
        events.add_named_event("message_delta", json::serialize(message_delta));
        events.add_named_event("message_stop", R"({"type":"message_stop"})");
    }

    void error_events(sse_batch& events, const api_error& error, const stream_identity&) override {
        // After the first frame only two kinds are Anthropic's: overloaded (try again) or api_error.
        const bool overloaded = error.code == 503 || error.code == 529 || error.code == 429;
        json::object body{{"type", "error"},
                          {"error", json::object{{"type", overloaded ? "overloaded_error" : "api_error"},
                                                 {"message", error.message}}}};
        events.add_named_event("error", json::serialize(body));
    }

    http_response error_response(const http_request& request, const api_error& error, std::string_view,
                                 const stream_identity*) override {
        return anthropic_error_response(request, error);
    }

    std::string whole(const stream_identity&, const stream_outcome& out) override {
        json::array content;
        if (!out.reasoning.empty() || !out.reasoning_signature.empty())
            content.push_back(json::object{
                {"type", "thinking"}, {"thinking", out.reasoning}, {"signature", out.reasoning_signature}});
        if (!out.text.empty()) content.push_back(json::object{{"type", "text"}, {"text", out.text}});
        for (const auto& call : out.tool_calls) {
            content.push_back(json::object{{"type", "tool_use"},
                                           {"id", call.id},
                                           {"name", call.name},
                                           {"input", input_object(call.arguments)}});
        }
        return json::serialize(
            json::object{{"id", id_},
                         {"type", "message"},
                         {"role", "assistant"},
                         {"model", model_},
                         {"content", std::move(content)},
                         {"stop_reason", anthropic_stop_reason(out.finish_reason, !out.tool_calls.empty())},
                         {"stop_sequence", nullptr},
                         {"usage", usage_json(out)}});
    }

    void ping(sse_batch& events) override {
        start(events);  // as Anthropic does: message_start at once, then pings while the model thinks
        events.add_named_event("ping", R"({"type":"ping"})");
    }

    bool done_marker() const override { return false; }

  private:
    enum class block { none, text, thinking, tool_use };

    void start(sse_batch& events) {
        if (started_) return;
        started_ = true;
        json::object message{{"id", id_},
                             {"type", "message"},
                             {"role", "assistant"},
                             {"model", model_},
                             {"content", json::array{}},
                             {"stop_reason", nullptr},
                             {"stop_sequence", nullptr},
                             {"usage", json::object{{"input_tokens", input_estimate_},
                                                    {"cache_creation_input_tokens", 0},
                                                    {"cache_read_input_tokens", 0},
                                                    {"output_tokens", 0}}}};
        events.add_named_event(
            "message_start",
            json::serialize(json::object{{"type", "message_start"}, {"message", std::move(message)}}));
    }

    // Opens a block of `kind` unless one is open (a tool_use block is never continued: each call opens
    // its own).
    void open(sse_batch& events, block kind, std::string_view content_block) {
        if (open_ == kind && kind != block::tool_use) return;
        close(events);
        open_ = kind;
        current_index_ = next_index_++;
        std::string& event = begin_named(events, "content_block_start");
        event += R"({"type":"content_block_start","index":)";
        append_json_int(event, current_index_);
        event += R"(,"content_block":)";
        event += content_block;
        event += "}";
        end_named(events);
    }

    void close(sse_batch& events) {
        if (open_ == block::none) return;
        open_ = block::none;
        std::string& event = begin_named(events, "content_block_stop");
        event += R"({"type":"content_block_stop","index":)";
        append_json_int(event, current_index_);
        event += "}";
        end_named(events);
    }

    void delta(sse_batch& events, int index, std::string_view type, std::string_view member,
               std::string_view text) {
        std::string& event = begin_named(events, "content_block_delta");
        event += R"({"type":"content_block_delta","index":)";
        append_json_int(event, index);
        event += R"(,"delta":{"type":")";
        event += type;
        event += R"(",")";
        event += member;
        event += R"(":)";
        append_json_string(event, text);
        event += "}}";
        end_named(events);
    }

    // A named event's JSON is built in scratch_ and then framed, so each event costs one copy.
    std::string& begin_named(sse_batch&, std::string_view name) {
        scratch_.clear();
        scratch_name_ = name;
        return scratch_;
    }
    void end_named(sse_batch& events) { events.add_named_event(scratch_name_, scratch_); }

    std::string model_;
    int input_estimate_ = 0;
    std::string id_;
    bool started_ = false;
    block open_ = block::none;
    int current_index_ = -1;
    int next_index_ = 0;
    std::map<int, int> call_blocks_;  // tool call index -> its block's index
    std::string scratch_;
    std::string_view scratch_name_;
};

}  // namespace

std::unique_ptr<wire_format> make_anthropic_messages_wire_format(std::string model, int input_estimate) {
    return std::make_unique<anthropic_messages_wire>(std::move(model), input_estimate);
}

}  // namespace sluice
