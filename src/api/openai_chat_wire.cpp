// The OpenAI wire format: request validation and the response objects (no I/O here).
#include <algorithm>
#include <array>
#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <optional>

#include "api/openai_chat.h"
#include "api/request_json.h"
#include "core/ids.h"
#include "core/json_text.h"

namespace sluice {

namespace json = boost::json;

namespace {

constexpr std::size_t k_max_stop_sequences = 4;  // OpenAI's limit

// An image_url part's URL: http(s), or a data: URL with base64 data (split into media type and data).
std::variant<content_part, api_error> image_part(const json::object& part, const std::string& where) {
    const auto* image = part.if_contains("image_url");
    const json::value* url = nullptr;
    if (image && image->is_object()) url = image->get_object().if_contains("url");
    if (image && image->is_string()) url = image;  // some clients send the URL bare
    if (!url || !url->is_string() || url->get_string().empty())
        return bad_request(where + ".image_url.url must be a string");
    const std::string_view text = url->get_string();
    content_part out{.type = content_part::kind::image};
    if (text.starts_with("data:")) {
        const auto comma = text.find(',');
        const auto header = text.substr(5, comma == std::string_view::npos ? 0 : comma - 5);
        if (comma == std::string_view::npos || !header.ends_with(";base64"))
            return bad_request(where +
                               ".image_url.url: a data: URL must be base64 (data:<type>;base64,<data>)");
        out.media_type = std::string(header.substr(0, header.size() - 7));
        out.text = std::string(text.substr(comma + 1));
        if (out.media_type.empty())
            return bad_request(where + ".image_url.url: the data: URL names no media type");
    } else if (text.starts_with("http://") || text.starts_with("https://")) {
        out.text = std::string(text);
    } else {
        return bad_request(where + ".image_url.url must be an http(s) or data: URL");
    }
    return out;
}

// A message's content: a string, or an array of parts (text; image_url for user messages). Text
// alone stays plain `content`; anything else lists every part.
std::optional<api_error> parse_content(const json::value& content, chat_message& message, std::size_t index) {
    const std::string where = "messages[" + std::to_string(index) + "].content";
    if (content.is_string()) {
        message.content = content.get_string();
        return std::nullopt;
    }
    if (content.is_null()) {
        if (message.role == "assistant") return std::nullopt;  // an assistant turn that only called tools
        return bad_request(where + " must be a string or an array of content parts");
    }
    if (!content.is_array()) return bad_request(where + " must be a string or an array of content parts");
    std::vector<content_part> parts;
    bool only_text = true;
    std::size_t part_index = 0;
    for (const auto& item : content.get_array()) {
        const std::string part_where = where + "[" + std::to_string(part_index++) + "]";
        const auto* object = item.if_object();
        const auto* type = object ? object->if_contains("type") : nullptr;
        if (!type || !type->is_string()) return bad_request(part_where + ".type must be a string");
        const std::string_view kind = type->get_string();
        if (kind == "text" || (kind == "refusal" && message.role == "assistant")) {
            const auto* text = object->if_contains(kind == "text" ? "text" : "refusal");
            if (!text || !text->is_string()) return bad_request(part_where + ".text must be a string");
            parts.push_back(content_part::text_part(std::string(text->get_string())));
        } else if (kind == "image_url" && message.role == "user") {
            auto image = image_part(*object, part_where);
            if (auto* error = std::get_if<api_error>(&image)) return *error;
            parts.push_back(std::move(std::get<content_part>(image)));
            only_text = false;
        } else {
            return bad_request(part_where + ": a part of type '" + std::string(kind) +
                               "' is not supported in a " + message.role + " message (text" +
                               (message.role == "user" ? ", image_url" : "") + ")");
        }
    }
    message.content = joined_text(parts);
    if (!only_text) message.parts = std::move(parts);
    return std::nullopt;
}

// An assistant message's tool_calls: [{id, type: "function", function: {name, arguments}}].
std::optional<api_error> parse_tool_calls(const json::value& calls, chat_message& message,
                                          std::size_t index) {
    const std::string where = "messages[" + std::to_string(index) + "].tool_calls";
    if (calls.is_null()) return std::nullopt;
    if (!calls.is_array()) return bad_request(where + " must be an array");
    if (calls.get_array().empty()) return std::nullopt;
    std::vector<content_part> parts;
    if (!message.content.empty()) parts.push_back(content_part::text_part(message.content));
    std::size_t call_index = 0;
    for (const auto& item : calls.get_array()) {
        const std::string call_where = where + "[" + std::to_string(call_index++) + "]";
        const auto* call = item.if_object();
        const auto* id = call ? call->if_contains("id") : nullptr;
        const auto* function = call ? call->if_contains("function") : nullptr;
        if (!id || !id->is_string()) return bad_request(call_where + ".id must be a string");
        if (!function || !function->is_object())
            return bad_request(call_where + ".function must be an object");
        const auto* name = function->get_object().if_contains("name");
        const auto* arguments = function->get_object().if_contains("arguments");
        if (!name || !name->is_string() || name->get_string().empty())
            return bad_request(call_where + ".function.name must be a non-empty string");
        std::string arguments_text = "{}";
        if (arguments && arguments->is_string())
            arguments_text = arguments->get_string();
        else if (arguments && arguments->is_object())
            arguments_text = json::serialize(*arguments);
        parts.push_back(content_part::tool_call(std::string(id->get_string()),
                                                std::string(name->get_string()), std::move(arguments_text)));
    }
    message.parts = std::move(parts);
    return std::nullopt;
}

std::variant<std::vector<chat_message>, api_error> parse_messages(const json::value* value) {
    if (is_absent(value) || !value->is_array() || value->get_array().empty())
        return bad_request("messages must be a non-empty array");
    std::vector<chat_message> messages;
    std::size_t index = 0;
    for (const auto& item : value->get_array()) {
        const std::string where = "messages[" + std::to_string(index) + "]";
        const auto* object = item.if_object();
        if (!object) return bad_request(where + " must be an object");
        const auto* role = object->if_contains("role");
        if (!role || !role->is_string()) return bad_request(where + ".role must be a string");
        chat_message message{.role = std::string(role->get_string())};
        if (message.role == "developer") message.role = "system";  // OpenAI's newer name for the system role
        if (message.role != "system" && message.role != "user" && message.role != "assistant" &&
            message.role != "tool") {
            return bad_request(where + ".role '" + std::string(role->get_string()) +
                               "' is not supported (system, developer, user, assistant, tool)");
        }
        const auto* content = object->if_contains("content");
        if (!content && message.role != "assistant") return bad_request(where + ".content is required");
        if (content) {
            if (auto error = parse_content(*content, message, index)) return *error;
        }
        if (message.role == "assistant") {
            if (const auto* calls = object->if_contains("tool_calls")) {
                if (auto error = parse_tool_calls(*calls, message, index)) return *error;
            }
            if (!content && message.parts.empty()) return bad_request(where + ".content is required");
        }
        if (message.role == "tool") {
            const auto* call_id = object->if_contains("tool_call_id");
            if (!call_id || !call_id->is_string() || call_id->get_string().empty())
                return bad_request(where + ".tool_call_id must be a non-empty string");
            message.parts = {content_part::tool_result(std::string(call_id->get_string()), message.content)};
        }
        messages.push_back(std::move(message));
        ++index;
    }
    return messages;
}

// tools: [{type: "function", function: {name, description, parameters, strict}}].
std::optional<api_error> parse_tools(const json::value* value, std::vector<tool_definition>& tools) {
    if (is_absent(value)) return std::nullopt;
    if (!value->is_array()) return bad_request("tools must be an array");
    std::size_t index = 0;
    for (const auto& item : value->get_array()) {
        const std::string where = "tools[" + std::to_string(index++) + "]";
        const auto* tool = item.if_object();
        const auto* type = tool ? tool->if_contains("type") : nullptr;
        if (!type || !type->is_string()) return bad_request(where + ".type must be a string");
        if (type->get_string() != "function")
            return bad_request(where + ".type '" + std::string(type->get_string()) +
                               "' is not supported (function)");
        const auto* function = tool->if_contains("function");
        if (!function || !function->is_object()) return bad_request(where + ".function must be an object");
        const auto& fn = function->get_object();
        const auto* name = fn.if_contains("name");
        if (!name || !name->is_string() || name->get_string().empty())
            return bad_request(where + ".function.name must be a non-empty string");
        tool_definition out{.name = std::string(name->get_string())};
        if (const auto* description = fn.if_contains("description"); description && description->is_string())
            out.description = description->get_string();
        const auto* parameters = fn.if_contains("parameters");
        if (!is_absent(parameters) && !parameters->is_object())
            return bad_request(where + ".function.parameters must be a JSON Schema object");
        out.parameters =
            is_absent(parameters) ? R"({"type":"object","properties":{}})" : json::serialize(*parameters);
        tools.push_back(std::move(out));
    }
    return std::nullopt;
}

std::optional<api_error> parse_tool_choice(const json::value* value, tool_choice& choice) {
    if (is_absent(value)) return std::nullopt;
    if (value->is_string()) {
        const std::string_view mode = value->get_string();
        if (mode == "auto")
            choice.type = tool_choice::mode::auto_;
        else if (mode == "none")
            choice.type = tool_choice::mode::none;
        else if (mode == "required")
            choice.type = tool_choice::mode::required;
        else
            return bad_request("tool_choice must be auto, none, required or {\"type\":\"function\",...}");
        return std::nullopt;
    }
    const auto* object = value->if_object();
    const auto* function = object ? object->if_contains("function") : nullptr;
    const auto* name =
        function && function->is_object() ? function->get_object().if_contains("name") : nullptr;
    if (!name || !name->is_string() || name->get_string().empty())
        return bad_request("tool_choice.function.name must be a non-empty string");
    choice = {.type = tool_choice::mode::named, .name = std::string(name->get_string())};
    return std::nullopt;
}

std::optional<api_error> parse_response_format(const json::value* value, response_format& format) {
    if (is_absent(value)) return std::nullopt;
    const auto* object = value->if_object();
    const auto* type = object ? object->if_contains("type") : nullptr;
    if (!type || !type->is_string()) return bad_request("response_format.type must be a string");
    const std::string_view kind = type->get_string();
    if (kind == "text") {
        format.type = response_format::kind::text;
    } else if (kind == "json_object") {
        format.type = response_format::kind::json_object;
    } else if (kind == "json_schema") {
        const auto* schema = object->if_contains("json_schema");
        if (!schema || !schema->is_object())
            return bad_request("response_format.json_schema must be an object");
        const auto& spec = schema->get_object();
        format.type = response_format::kind::json_schema;
        if (const auto* name = spec.if_contains("name"); name && name->is_string())
            format.name = name->get_string();
        if (const auto* body = spec.if_contains("schema"); body && body->is_object())
            format.schema = json::serialize(*body);
        if (const auto* strict = spec.if_contains("strict"); strict && strict->is_bool())
            format.strict = strict->get_bool();
    } else {
        return bad_request("response_format.type must be text, json_object or json_schema");
    }
    return std::nullopt;
}

// What sluice reads itself; every other member goes to OpenAI-compatible upstreams unchanged.
bool is_interpreted(std::string_view key) {
    static constexpr std::array<std::string_view, 16> k_known = {"model",
                                                                 "messages",
                                                                 "stream",
                                                                 "stream_options",
                                                                 "max_tokens",
                                                                 "max_completion_tokens",
                                                                 "temperature",
                                                                 "top_p",
                                                                 "n",
                                                                 "stop",
                                                                 "seed",
                                                                 "tools",
                                                                 "tool_choice",
                                                                 "parallel_tool_calls",
                                                                 "response_format",
                                                                 "resumable"};
    return std::find(k_known.begin(), k_known.end(), key) != k_known.end();
}

std::optional<api_error> parse_stop(const json::value* value, std::vector<std::string>& stop) {
    if (is_absent(value)) return std::nullopt;
    if (value->is_string()) {
        if (!value->get_string().empty()) stop.emplace_back(value->get_string());
        return std::nullopt;
    }
    if (!value->is_array() || value->get_array().size() > k_max_stop_sequences)
        return bad_request("stop must be a string or an array of at most 4 strings");
    for (const auto& item : value->get_array()) {
        if (!item.is_string()) return bad_request("stop must be a string or an array of at most 4 strings");
        if (!item.get_string().empty()) stop.emplace_back(item.get_string());
    }
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

std::optional<api_error> parse_options(const json::object& body, openai_chat_request& out) {
    if (const auto* model = body.if_contains("model"); !is_absent(model)) {
        if (!model->is_string() || model->get_string().empty()) return bad_request("model must be a string");
        out.model = model->get_string();
    }
    if (const auto* stream = body.if_contains("stream"); !is_absent(stream)) {
        if (!stream->is_bool()) return bad_request("stream must be a boolean");
        out.stream = stream->get_bool();
    }
    if (const auto* resumable = body.if_contains("resumable"); !is_absent(resumable)) {
        if (!resumable->is_bool()) return bad_request("resumable must be a boolean");
        out.resumable = resumable->get_bool();
    }
    if (const auto* options = body.if_contains("stream_options"); !is_absent(options)) {
        if (!options->is_object()) return bad_request("stream_options must be an object");
        if (const auto* usage = options->get_object().if_contains("include_usage"); !is_absent(usage)) {
            if (!usage->is_bool()) return bad_request("stream_options.include_usage must be a boolean");
            out.include_usage = usage->get_bool();
        }
    }
    for (const std::string_view field : {"max_tokens", "max_completion_tokens"}) {
        const auto* value = body.if_contains(field);
        if (is_absent(value)) continue;
        const auto number = as_integer(*value);
        if (!number || *number < 1 || *number > INT32_MAX)
            return bad_request(std::string(field) + " must be a positive integer");
        out.max_tokens = static_cast<int>(*number);  // max_completion_tokens comes second, so it wins
    }
    if (auto error = parse_number_in(body, "temperature", 0.0, 2.0, out.temperature)) return error;
    if (auto error = parse_number_in(body, "top_p", 0.0, 1.0, out.top_p)) return error;
    if (const auto* n = body.if_contains("n"); !is_absent(n)) {
        const auto number = as_integer(*n);
        if (!number || *number != 1) return bad_request("n must be 1: sluice returns one choice");
    }
    if (auto error = parse_stop(body.if_contains("stop"), out.stop)) return error;
    if (const auto* seed = body.if_contains("seed"); !is_absent(seed)) {
        const auto number = as_integer(*seed);
        if (!number) return bad_request("seed must be an integer");
        out.seed = static_cast<std::uint64_t>(*number);
    }
    if (auto error = parse_tools(body.if_contains("tools"), out.tools)) return error;
    if (auto error = parse_tool_choice(body.if_contains("tool_choice"), out.tools_choice)) return error;
    if (const auto* parallel = body.if_contains("parallel_tool_calls"); !is_absent(parallel)) {
        if (!parallel->is_bool()) return bad_request("parallel_tool_calls must be a boolean");
        out.parallel_tool_calls = parallel->get_bool();
    }
    if (auto error = parse_response_format(body.if_contains("response_format"), out.format)) return error;
    if (out.tools_choice.type == tool_choice::mode::named) {
        const bool offered =
            std::any_of(out.tools.begin(), out.tools.end(),
                        [&](const tool_definition& tool) { return tool.name == out.tools_choice.name; });
        if (!offered)
            return bad_request("tool_choice names the function '" + out.tools_choice.name +
                               "', which tools does not offer");
    }
    json::object extra;
    for (const auto& member : body) {
        if (!is_interpreted(member.key()) && !member.value().is_null())
            extra.emplace(member.key(), member.value());
    }
    if (!extra.empty()) out.extra = json::serialize(extra);
    return std::nullopt;
}

// OpenAI's error `type` and `code` for an HTTP-like status.
std::pair<std::string_view, std::string_view> error_kind(int status) {
    switch (status) {
        case 400:
            return {"invalid_request_error", "invalid_request"};
        case 401:
            return {"invalid_request_error", "invalid_api_key"};
        case 403:
            return {"permission_error", "forbidden"};
        case 404:
            return {"invalid_request_error", "not_found"};
        case 405:
            return {"invalid_request_error", "method_not_allowed"};
        case 409:
            return {"invalid_request_error", "conflict"};
        case 413:
            return {"invalid_request_error", "request_too_large"};
        case 429:
            return {"requests", "rate_limit_exceeded"};
        case 502:
            return {"server_error", "upstream_error"};
        case 503:
            return {"server_error", "service_unavailable"};
        case 504:
            return {"server_error", "timeout"};
        default:
            return {status >= 500 ? "server_error" : "invalid_request_error", "error"};
    }
}

json::object chunk_base(const openai_stream_ids& ids, std::string_view model, bool include_usage) {
    json::object chunk{{"id", ids.id},
                       {"object", "chat.completion.chunk"},
                       {"created", ids.created},
                       {"model", model},
                       {"system_fingerprint", nullptr}};
    if (include_usage) chunk["usage"] = nullptr;  // as OpenAI does on every chunk but the last
    return chunk;
}

// A chunk with one choice, written straight into `out` (one goes out per token): the bytes
// json::serialize gives for chunk_base + {"choices":[{"index":0,"delta":...,"logprobs":null,
// "finish_reason":...}]}. The delta holds `delta_members` (JSON text) or else `content`, when given;
// a finish_reason not given is null.
void append_one_choice_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                             std::string_view delta_members, std::optional<std::string_view> content,
                             std::optional<std::string_view> finish_reason, bool include_usage) {
    out += R"({"id":)";
    append_json_string(out, ids.id);
    out += R"(,"object":"chat.completion.chunk","created":)";
    append_json_int(out, ids.created);
    out += R"(,"model":)";
    append_json_string(out, model);
    out += include_usage ? R"(,"system_fingerprint":null,"usage":null,"choices":[{"index":0,"delta":{)"
                         : R"(,"system_fingerprint":null,"choices":[{"index":0,"delta":{)";
    out += delta_members;
    if (content) {
        out += R"("content":)";
        append_json_string(out, *content);
    }
    out += R"(},"logprobs":null,"finish_reason":)";
    if (finish_reason) {
        append_json_string(out, *finish_reason);
    } else {
        out += "null";
    }
    out += "}]}";
}

json::object usage_object(int prompt_tokens, int completion_tokens) {
    return json::object{{"prompt_tokens", prompt_tokens},
                        {"completion_tokens", completion_tokens},
                        {"total_tokens", prompt_tokens + completion_tokens}};
}

}  // namespace

std::variant<openai_chat_request, api_error> parse_openai_chat_request(std::string_view body) {
    boost::system::error_code ec;
    auto root = json::parse(body, ec);
    if (ec) return bad_request("the body is not valid JSON: " + ec.message());
    if (!root.is_object()) return bad_request("the body must be a JSON object");
    const auto& object = root.get_object();
    openai_chat_request request;
    auto messages = parse_messages(object.if_contains("messages"));
    if (auto* error = std::get_if<api_error>(&messages)) return *error;
    request.messages = std::move(std::get<std::vector<chat_message>>(messages));
    if (auto error = parse_options(object, request)) return *error;
    return request;
}

std::string openai_error_json(const api_error& error, std::string_view code_override) {
    auto [type, code] = error_kind(error.code);
    if (!code_override.empty()) code = code_override;
    return json::serialize(json::object{
        {"error",
         json::object{{"message", error.message}, {"type", type}, {"param", nullptr}, {"code", code}}}});
}

http_response openai_error_response(const http_request& request, const api_error& error,
                                    std::string_view code) {
    const int status = error.code >= 400 && error.code <= 599 ? error.code : 500;
    http_response res{static_cast<http_status>(status), request.version()};
    res.set(boost::beast::http::field::content_type, "application/json");
    if (error.retry_after_s > 0)
        res.set(boost::beast::http::field::retry_after, std::to_string(error.retry_after_s));
    res.keep_alive(request.keep_alive());
    res.body() = openai_error_json(error, code);
    res.prepare_payload();
    return res;
}

void append_openai_role_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                              bool include_usage) {
    append_one_choice_chunk(out, ids, model, R"("role":"assistant","content":"","refusal":null)",
                            std::nullopt, std::nullopt, include_usage);
}

void append_openai_content_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                                 std::string_view content, bool include_usage) {
    append_one_choice_chunk(out, ids, model, {}, content, std::nullopt, include_usage);
}

void append_openai_finish_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                                std::string_view finish_reason, bool include_usage) {
    append_one_choice_chunk(out, ids, model, {}, std::nullopt, finish_reason, include_usage);
}

std::string openai_role_chunk(const openai_stream_ids& ids, std::string_view model, bool include_usage) {
    std::string out;
    append_openai_role_chunk(out, ids, model, include_usage);
    return out;
}

std::string openai_content_chunk(const openai_stream_ids& ids, std::string_view model,
                                 std::string_view content, bool include_usage) {
    std::string out;
    append_openai_content_chunk(out, ids, model, content, include_usage);
    return out;
}

std::string openai_finish_chunk(const openai_stream_ids& ids, std::string_view model,
                                std::string_view finish_reason, bool include_usage) {
    std::string out;
    append_openai_finish_chunk(out, ids, model, finish_reason, include_usage);
    return out;
}

std::string openai_usage_chunk(const openai_stream_ids& ids, std::string_view model, int prompt_tokens,
                               int completion_tokens) {
    auto chunk = chunk_base(ids, model, false);
    chunk["choices"] = json::array{};
    chunk["usage"] = usage_object(prompt_tokens, completion_tokens);
    return json::serialize(chunk);
}

std::string openai_completion_json(const openai_stream_ids& ids, std::string_view model,
                                   std::string_view content, std::string_view finish_reason,
                                   int prompt_tokens, int completion_tokens,
                                   const std::vector<content_part>& tool_calls) {
    json::object message{{"role", "assistant"}, {"content", content}, {"refusal", nullptr}};
    if (!tool_calls.empty()) {
        json::array calls;
        for (const auto& call : tool_calls) {
            calls.push_back(
                json::object{{"id", call.id},
                             {"type", "function"},
                             {"function", json::object{{"name", call.name}, {"arguments", call.arguments}}}});
        }
        message["tool_calls"] = std::move(calls);
        if (content.empty()) message["content"] = nullptr;
    }
    return json::serialize(
        json::object{{"id", ids.id},
                     {"object", "chat.completion"},
                     {"created", ids.created},
                     {"model", model},
                     {"choices", json::array{json::object{{"index", 0},
                                                          {"message", std::move(message)},
                                                          {"logprobs", nullptr},
                                                          {"finish_reason", finish_reason}}}},
                     {"usage", usage_object(prompt_tokens, completion_tokens)},
                     {"system_fingerprint", nullptr}});
}

namespace {

// One entry both SDKs read: OpenAI's id/object/created/owned_by and Anthropic's
// type/display_name/created_at.
json::object model_entry(std::string_view id) {
    return json::object{{"id", id},
                        {"object", "model"},
                        {"created", 0},
                        {"owned_by", "sluice"},
                        {"type", "model"},
                        {"display_name", id},
                        {"created_at", "1970-01-01T00:00:00Z"}};
}

}  // namespace

std::string openai_models_json(const config& cfg) {
    json::array data;
    for (const auto& model : cfg.models) data.push_back(model_entry(model.name));
    // The routing names are models too, for clients that pick from this list.
    std::vector<std::string_view> aliases{"auto"};
    for (const auto role : {model_role::local_small, model_role::cloud_large}) {
        for (const auto& model : cfg.models) {
            if (model.role != role) continue;
            aliases.push_back(to_string(role));
            break;
        }
    }
    for (const auto alias : aliases) data.push_back(model_entry(alias));
    // Anthropic's page: one page holds every model.
    json::value first_id = data.empty() ? json::value(nullptr) : data.front().as_object().at("id");
    json::value last_id = data.empty() ? json::value(nullptr) : data.back().as_object().at("id");
    return json::serialize(json::object{{"object", "list"},
                                        {"data", std::move(data)},
                                        {"has_more", false},
                                        {"first_id", std::move(first_id)},
                                        {"last_id", std::move(last_id)}});
}

std::string_view openai_finish_reason(std::string_view reason) {
    if (reason == "length" || reason == "tool_calls") return reason;
    return "stop";
}

namespace {

// The chunks of one /v1/chat/completions stream. A role chunk opens the answer; text goes out as
// `content` deltas; a tool call's first delta carries index, id, type, name and empty arguments,
// later ones index and argument fragments; reasoning goes out as `reasoning_content` (the member
// DeepSeek, vLLM and llama-server use; OpenAI's SDKs ignore it).
class openai_chat_wire final : public wire_format {
  public:
    explicit openai_chat_wire(bool include_usage) : usage_(include_usage) {
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        ids_ = {.id = new_id("chatcmpl-"),
                .created = std::chrono::duration_cast<std::chrono::seconds>(now).count()};
    }

    void content(sse_batch& events, const stream_identity& who, const stream_chunk& chunk,
                 const stream_outcome&) override {
        open(events, who);
        switch (chunk.type) {
            case stream_chunk::kind::delta:
                append_openai_content_chunk(events.begin_event(), ids_, who.model, chunk.text, usage_);
                events.end_event();
                break;
            case stream_chunk::kind::tool_call_start: {
                std::string members = R"("tool_calls":[{"index":)";
                append_json_int(members, chunk.index);
                members += R"(,"id":)";
                append_json_string(members, chunk.id);
                members += R"(,"type":"function","function":{"name":)";
                append_json_string(members, chunk.name);
                members += R"(,"arguments":""}}])";
                append_one_choice_chunk(events.begin_event(), ids_, who.model, members, std::nullopt,
                                        std::nullopt, usage_);
                events.end_event();
                break;
            }
            case stream_chunk::kind::tool_call_delta: {
                std::string members = R"("tool_calls":[{"index":)";
                append_json_int(members, chunk.index);
                members += R"(,"function":{"arguments":)";
                append_json_string(members, chunk.text);
                members += "}}]";
                append_one_choice_chunk(events.begin_event(), ids_, who.model, members, std::nullopt,
                                        std::nullopt, usage_);
                events.end_event();
                break;
            }
            case stream_chunk::kind::reasoning: {
                if (chunk.text.empty()) break;
                std::string members = R"("reasoning_content":)";
                append_json_string(members, chunk.text);
                append_one_choice_chunk(events.begin_event(), ids_, who.model, members, std::nullopt,
                                        std::nullopt, usage_);
                events.end_event();
                break;
            }
            case stream_chunk::kind::usage:
            case stream_chunk::kind::finish:
            case stream_chunk::kind::error:
                break;
        }
    }

    void final(sse_batch& events, const stream_identity& who, const stream_outcome& out) override {
        open(events, who);
        append_openai_finish_chunk(events.begin_event(), ids_, who.model,
                                   openai_finish_reason(out.finish_reason), usage_);
        events.end_event();
        if (usage_)
            events.add_event(openai_usage_chunk(ids_, who.model, out.prompt_tokens, out.completion_tokens));
    }

    void error_events(sse_batch& events, const api_error& error, const stream_identity&) override {
        events.add_event(openai_error_json(error));
    }

    http_response error_response(const http_request& request, const api_error& error, std::string_view,
                                 const stream_identity*) override {
        return openai_error_response(request, error);
    }

    std::string whole(const stream_identity& who, const stream_outcome& out) override {
        return openai_completion_json(ids_, who.model, out.text, openai_finish_reason(out.finish_reason),
                                      out.prompt_tokens, out.completion_tokens, out.tool_calls);
    }

  private:
    void open(sse_batch& events, const stream_identity& who) {
        if (opened_) return;
        opened_ = true;
        append_openai_role_chunk(events.begin_event(), ids_, who.model, usage_);
        events.end_event();
    }

    openai_stream_ids ids_;
    bool usage_ = false;
    bool opened_ = false;
};

}  // namespace

std::unique_ptr<wire_format> make_openai_chat_wire_format(bool include_usage) {
    return std::make_unique<openai_chat_wire>(include_usage);
}

}  // namespace sluice
