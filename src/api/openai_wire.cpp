// The OpenAI wire format: request validation and the response objects (no I/O here).
#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <cmath>
#include <optional>

#include "api/openai_compat.h"
#include "core/json_text.h"

namespace sluice {

namespace json = boost::json;

namespace {

constexpr std::size_t k_max_stop_sequences = 4;  // OpenAI's limit

api_error bad_request(std::string message) {
    return api_error{.code = 400, .message = std::move(message)};
}

bool is_absent(const json::value* value) {
    return value == nullptr || value->is_null();
}

std::optional<double> as_number(const json::value& value) {
    if (value.is_double()) return value.get_double();
    if (value.is_int64()) return static_cast<double>(value.get_int64());
    if (value.is_uint64()) return static_cast<double>(value.get_uint64());
    return std::nullopt;
}

std::optional<std::int64_t> as_integer(const json::value& value) {
    if (value.is_int64()) return value.get_int64();
    if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(value.get_uint64());
    // 5.0 is an integer to JavaScript, and so to the JS SDK that may have built this body.
    if (value.is_double() && std::trunc(value.get_double()) == value.get_double() &&
        std::abs(value.get_double()) < 9.0e15)
        return static_cast<std::int64_t>(value.get_double());
    return std::nullopt;
}

// A message's content: a string, or an array of text parts (joined by newlines).
std::variant<std::string, api_error> message_text(const json::value& content, std::string_view role,
                                                  std::size_t index) {
    const std::string where = "messages[" + std::to_string(index) + "].content";
    if (content.is_string()) return std::string(content.get_string());
    if (content.is_null()) {
        if (role == "assistant") return std::string{};  // an assistant turn that only called tools
        return bad_request(where + " must be a string or an array of text parts");
    }
    if (!content.is_array()) return bad_request(where + " must be a string or an array of text parts");
    std::string text;
    for (const auto& part : content.get_array()) {
        const auto* object = part.if_object();
        const auto* type = object ? object->if_contains("type") : nullptr;
        const auto* part_text = object ? object->if_contains("text") : nullptr;
        if (!type || !type->is_string() || type->get_string() != "text" || !part_text ||
            !part_text->is_string()) {
            return bad_request(where +
                               ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
        }
        if (!text.empty()) text += "\n";
        text += part_text->get_string();
    }
    return text;
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
        std::string name(role->get_string());
        if (name == "developer") name = "system";  // OpenAI's newer name for the system role
        if (name != "system" && name != "user" && name != "assistant") {
            return bad_request(where + ".role '" + std::string(role->get_string()) +
                               "' is not supported (system, developer, user, assistant)");
        }
        const auto* content = object->if_contains("content");
        if (!content) return bad_request(where + ".content is required");
        auto text = message_text(*content, name, index);
        if (auto* error = std::get_if<api_error>(&text)) return *error;
        messages.push_back({std::move(name), std::move(std::get<std::string>(text))});
        ++index;
    }
    return messages;
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
    if (const auto* user = body.if_contains("user"); !is_absent(user)) {
        if (!user->is_string()) return bad_request("user must be a string");
        out.user = user->get_string();
    }
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
                                   int prompt_tokens, int completion_tokens) {
    json::object message{{"role", "assistant"}, {"content", content}, {"refusal", nullptr}};
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

std::string openai_models_json(const config& cfg) {
    json::array data;
    for (const auto& model : cfg.models) {
        data.push_back(
            json::object{{"id", model.name}, {"object", "model"}, {"created", 0}, {"owned_by", "sluice"}});
    }
    // The routing names are models too, for clients that pick from this list.
    std::vector<std::string_view> aliases{"auto"};
    for (const auto role : {model_role::local_small, model_role::cloud_large}) {
        for (const auto& model : cfg.models) {
            if (model.role != role) continue;
            aliases.push_back(to_string(role));
            break;
        }
    }
    for (const auto alias : aliases) {
        data.push_back(
            json::object{{"id", alias}, {"object", "model"}, {"created", 0}, {"owned_by", "sluice"}});
    }
    return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

}  // namespace sluice
