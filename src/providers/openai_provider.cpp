#include "providers/openai_provider.h"

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "providers/cloud_common.h"
#include "providers/openai_chunk_scan.h"

namespace sluice {
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

std::string finish_reason_of(std::string_view upstream) {
    // content_filter, function_call... still end the text normally for a chat client.
    if (upstream == "length" || upstream == "tool_calls") return std::string(upstream);
    return "stop";
}

const json::value* member(const json::object& object, std::string_view name) {
    return object.if_contains(name);
}

std::string_view string_of(const json::value* value) {
    return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view{};
}

// The streamed tool_calls of one delta. Read robustly: a call without `index` is the only one (or
// the last one begun); the name may be repeated in later deltas; the whole arguments may come in
// the first delta; an id seen again with a new index is the same call.
void take_tool_calls(const json::array& calls, cloud_stream_state& state, chunk_batch& out) {
    for (const auto& item : calls) {
        const auto* call = item.if_object();
        if (!call) continue;
        const auto* index_value = member(*call, "index");
        std::int64_t upstream_index = index_value && index_value->is_int64() ? index_value->get_int64() : -1;
        const auto* function = member(*call, "function");
        const json::object* fn = function ? function->if_object() : nullptr;
        const std::string_view id = string_of(member(*call, "id"));
        const std::string_view name = fn ? string_of(member(*fn, "name")) : std::string_view{};
        const std::string_view arguments = fn ? string_of(member(*fn, "arguments")) : std::string_view{};
        if (upstream_index < 0)
            upstream_index = state.tool_calls > 0 && id.empty() ? state.tool_calls - 1 : state.tool_calls;
        int number = state.call_at(upstream_index);
        if (number < 0) {
            if (name.empty() && id.empty()) continue;  // a fragment of a call that never began
            number = state.begin_call(upstream_index);
            std::string call_id = id.empty() ? "call_" + std::to_string(number) : std::string(id);
            out.push_back(stream_chunk::tool_call_start(number, std::move(call_id), std::string(name)));
        }
        if (!arguments.empty()) {
            ++state.deltas;
            out.push_back(stream_chunk::tool_call_delta(number, std::string(arguments)));
        }
    }
}

int int_field(const json::object& object, const char* name) {
    return token_count(object.if_contains(name), 0);
}

// One `data:` event of /chat/completions streaming: a chat.completion.chunk, an error, or [DONE],
// read from its parsed JSON value.
bool take_parsed_openai_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    if (event.is_done()) {
        state.ended = true;
        return true;
    }
    const json::value* value = thread_event_json_parser().parse(event.data);
    const json::object* object = value ? value->if_object() : nullptr;
    if (!object) {
        out.push_back(stream_chunk::error(502, "the upstream sent an event that is not JSON"));
        return false;
    }
    if (auto* error = object->if_contains("error")) {
        std::string message = upstream_error_message(json::serialize(json::object{{"error", *error}}));
        out.push_back(stream_chunk::error(502, "upstream error: " + message));
        return false;
    }
    if (auto* usage = object->if_contains("usage"); usage && usage->is_object()) {
        const auto& counts = usage->get_object();
        state.has_usage = true;
        state.prompt_tokens = int_field(counts, "prompt_tokens");
        state.completion_tokens = int_field(counts, "completion_tokens");
        if (auto* details = counts.if_contains("prompt_tokens_details"); details && details->is_object())
            state.cached_tokens = int_field(details->get_object(), "cached_tokens");
        if (auto* details = counts.if_contains("completion_tokens_details"); details && details->is_object())
            state.reasoning_tokens = int_field(details->get_object(), "reasoning_tokens");
    }
    auto* choices = object->if_contains("choices");
    if (!choices || !choices->is_array() || choices->get_array().empty()) return true;
    auto* choice = choices->get_array()[0].if_object();
    if (!choice) return true;
    // One pass over the choice and over its delta (or, from a server that answers a stream request
    // with one whole completion, its message): an event is read once per token.
    const json::object* fields = nullptr;
    for (const auto& member : *choice) {
        const std::string_view key = member.key();
        if ((key == "delta" || key == "message") && member.value().is_object()) {
            fields = &member.value().get_object();
        } else if (key == "finish_reason" && member.value().is_string()) {
            state.finish_reason = finish_reason_of(member.value().get_string());
        }
    }
    if (!fields) return true;
    std::string_view thinking;
    std::string_view content;
    const json::array* calls = nullptr;
    for (const auto& member : *fields) {
        const std::string_view key = member.key();
        if (key == "content") {
            content = string_of(&member.value());
        } else if (key == "tool_calls" && member.value().is_array()) {
            calls = &member.value().get_array();
        } else if (key == "reasoning_content" || (key == "reasoning" && thinking.empty())) {
            // The thinking of reasoning models, as DeepSeek, vLLM and llama-server stream it.
            thinking = string_of(&member.value());
        }
    }
    if (!thinking.empty()) {
        ++state.deltas;
        out.push_back(stream_chunk::reasoning(std::string(thinking)));
    }
    if (!content.empty()) {
        ++state.deltas;
        out.push_back(stream_chunk::delta(std::string(content)));
    }
    if (calls) take_tool_calls(*calls, state, out);
    return true;
}

// The same, for the text chunk of every token read without the parser when it can be
// (providers/openai_chunk_scan.h).
bool take_openai_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    openai_text_chunk chunk;
    if (event.is_done() || !scan_openai_text_chunk(event.data, chunk))
        return take_parsed_openai_event(event, state, out);
    if (chunk.has_finish) state.finish_reason = finish_reason_of(chunk.finish_reason);
    if (!chunk.thinking.empty()) {
        ++state.deltas;
        out.push_back(stream_chunk::reasoning(std::move(chunk.thinking)));
    }
    if (!chunk.content.empty()) {
        ++state.deltas;
        out.push_back(stream_chunk::delta(std::move(chunk.content)));
    }
    return true;
}

json::value message_content(const chat_message& message) {
    if (!message.has_parts()) return json::value(message.content);
    json::array parts;
    for (const auto& part : message.parts) {
        if (part.type == content_part::kind::text) {
            parts.push_back(json::object{{"type", "text"}, {"text", part.text}});
        } else if (part.type == content_part::kind::image) {
            std::string url =
                part.media_type.empty() ? part.text : "data:" + part.media_type + ";base64," + part.text;
            parts.push_back(
                json::object{{"type", "image_url"}, {"image_url", json::object{{"url", std::move(url)}}}});
        }
    }
    if (parts.empty()) return json::value(message.content);
    return parts;
}

json::object openai_message(const chat_message& message) {
    if (message.role == "tool") {
        const content_part* result = message.parts.empty() ? nullptr : &message.parts.front();
        return json::object{{"role", "tool"},
                            {"tool_call_id", result ? result->id : std::string{}},
                            {"content", result ? result->text : message.content}};
    }
    json::object out{{"role", message.role}};
    if (message.role == "assistant" && message.has(content_part::kind::tool_call)) {
        json::array calls;
        for (const auto& part : message.parts) {
            if (part.type != content_part::kind::tool_call) continue;
            calls.push_back(
                json::object{{"id", part.id},
                             {"type", "function"},
                             {"function", json::object{{"name", part.name}, {"arguments", part.arguments}}}});
        }
        out["content"] = message.content.empty() ? json::value(nullptr) : json::value(message.content);
        out["tool_calls"] = std::move(calls);
        return out;
    }
    out["content"] = message.role == "user" ? message_content(message) : json::value(message.content);
    return out;
}

json::value schema_value(const std::string& text) {
    boost::system::error_code ec;
    auto value = json::parse(text, ec);
    if (ec || !value.is_object()) return json::object{{"type", "object"}, {"properties", json::object{}}};
    return value;
}

}  // namespace

json::object openai_chat_body(const chat_request& request) {
    json::array messages;
    for (const auto& message : request.messages) messages.push_back(openai_message(message));
    json::object body{
        {"messages", std::move(messages)},
        {"max_tokens", request.params.max_tokens},
        {"temperature", request.params.temperature},
    };
    if (request.params.top_p != 1.0) body["top_p"] = request.params.top_p;
    if (!request.params.stop.empty()) {
        json::array stop;
        for (const auto& text : request.params.stop) stop.push_back(json::string(text));
        body["stop"] = std::move(stop);
    }
    if (request.params.seed) body["seed"] = *request.params.seed;
    if (!request.tools.empty()) {
        json::array tools;
        for (const auto& tool : request.tools) {
            json::object function{{"name", tool.name}, {"parameters", schema_value(tool.parameters)}};
            if (!tool.description.empty()) function["description"] = tool.description;
            tools.push_back(json::object{{"type", "function"}, {"function", std::move(function)}});
        }
        body["tools"] = std::move(tools);
        switch (request.tools_choice.type) {
            case tool_choice::mode::auto_:
                break;
            case tool_choice::mode::none:
                body["tool_choice"] = "none";
                break;
            case tool_choice::mode::required:
                body["tool_choice"] = "required";
                break;
            case tool_choice::mode::named:
                body["tool_choice"] = json::object{
                    {"type", "function"}, {"function", json::object{{"name", request.tools_choice.name}}}};
                break;
        }
        if (request.parallel_tool_calls) body["parallel_tool_calls"] = *request.parallel_tool_calls;
    }
    if (request.format.type == response_format::kind::json_object) {
        body["response_format"] = json::object{{"type", "json_object"}};
    } else if (request.format.type == response_format::kind::json_schema) {
        json::object spec{{"name", request.format.name.empty() ? "response" : request.format.name},
                          {"schema", schema_value(request.format.schema)}};
        if (request.format.strict) spec["strict"] = true;
        body["response_format"] = json::object{{"type", "json_schema"}, {"json_schema", std::move(spec)}};
    }
    // What the client sent that sluice does not read goes upstream as it was (what sluice set wins).
    if (!request.openai_extra.empty()) {
        boost::system::error_code ec;
        auto extra = json::parse(request.openai_extra, ec);
        if (!ec && extra.is_object()) {
            for (const auto& member : extra.get_object())
                if (!body.contains(member.key())) body.emplace(member.key(), member.value());
        }
    }
    return body;
}

bool take_openai_stream_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    return take_openai_event(event, state, out);
}

bool take_parsed_openai_stream_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    return take_parsed_openai_event(event, state, out);
}

namespace {

class openai_provider final : public cloud_provider {
  public:
    explicit openai_provider(model_config cfg)
        : cloud_provider(std::move(cfg), "https://api.openai.com/v1") {}

  private:
    bool take_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) const override {
        return take_openai_event(event, state, out);
    }

    upstream_request build_request(const chat_request& request) const override {
        json::object body = openai_chat_body(request);
        body["model"] = upstream_model_name(cfg_);
        body["stream"] = true;
        body["stream_options"] = json::object{{"include_usage", true}};

        upstream_request out;
        out.target = endpoint_.base->join("/chat/completions");
        out.headers.set(http::field::content_type, "application/json");
        out.headers.set(http::field::accept, "text/event-stream");
        if (!endpoint_.api_key.empty())
            out.headers.set(http::field::authorization, "Bearer " + endpoint_.api_key);
        out.body = json::serialize(body);
        return out;
    }
};

}  // namespace

std::shared_ptr<provider> make_openai_provider(const model_config& cfg) {
    return std::make_shared<openai_provider>(cfg);
}

}  // namespace sluice
