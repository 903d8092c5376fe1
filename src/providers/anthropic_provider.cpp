#include "providers/anthropic_provider.h"

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "providers/cloud_common.h"

namespace sluice {
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

constexpr const char* k_anthropic_version = "2023-06-01";

std::string finish_reason_of(std::string_view stop_reason) {
    // end_turn, stop_sequence, tool_use... all end the text normally for a chat client.
    return stop_reason == "max_tokens" ? "length" : "stop";
}

int int_field(const json::value* object, const char* name) {
    if (!object || !object->is_object()) return -1;
    auto* field = object->get_object().if_contains(name);
    return field && field->is_int64() ? static_cast<int>(field->get_int64()) : -1;
}

// The Messages API takes the system prompt apart and wants user/assistant turns that alternate,
// starting with the user; neighbouring turns of one role are joined.
json::object messages_body(const chat_request& request) {
    std::string system;
    json::array turns;
    std::string last_role;
    for (const auto& message : request.messages) {
        if (message.role == "system") {
            if (!system.empty()) system += "\n\n";
            system += message.content;
            continue;
        }
        std::string role = message.role == "assistant" ? "assistant" : "user";
        if (turns.empty() && role == "assistant") continue;  // history trimmed mid-conversation
        if (role == last_role) {
            auto& content = turns.back().as_object()["content"].as_string();
            content.append("\n\n");
            content.append(message.content);
            continue;
        }
        turns.push_back(json::object{{"role", role}, {"content", message.content}});
        last_role = role;
    }
    json::object body{{"messages", std::move(turns)}};
    if (!system.empty()) body["system"] = system;
    return body;
}

// One event of Messages streaming: message_start, content_block_*, message_delta, message_stop,
// ping, error.
bool take_anthropic_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    const json::value* value = thread_event_json_parser().parse(event.data);
    const json::object* object = value ? value->if_object() : nullptr;
    if (!object) {
        out.push_back(stream_chunk::error(502, "the upstream sent an event that is not JSON"));
        return false;
    }
    std::string_view type = event.event;
    if (auto* field = object->if_contains("type"); field && field->is_string()) type = field->get_string();

    if (type == "error") {
        std::string message = upstream_error_message(event.data);
        out.push_back(stream_chunk::error(502, "upstream error: " + message));
        return false;
    }
    if (type == "message_start") {
        auto* message = object->if_contains("message");
        auto* usage = message && message->is_object() ? message->get_object().if_contains("usage") : nullptr;
        if (int input = int_field(usage, "input_tokens"); input >= 0) {
            state.has_usage = true;
            state.prompt_tokens = input;
        }
    } else if (type == "content_block_delta") {
        auto* delta = object->if_contains("delta");
        if (delta && delta->is_object()) {
            auto* text = delta->get_object().if_contains("text");
            if (text && text->is_string() && !text->get_string().empty()) {
                ++state.deltas;
                out.push_back(stream_chunk::delta(std::string(text->get_string())));
            }
        }
    } else if (type == "message_delta") {
        if (auto* delta = object->if_contains("delta"); delta && delta->is_object()) {
            auto* reason = delta->get_object().if_contains("stop_reason");
            if (reason && reason->is_string()) state.finish_reason = finish_reason_of(reason->get_string());
        }
        auto* usage = object->if_contains("usage");
        if (int output = int_field(usage, "output_tokens"); output >= 0) {
            state.has_usage = true;
            state.completion_tokens = output;
        }
        if (int input = int_field(usage, "input_tokens"); input > 0) state.prompt_tokens = input;
    } else if (type == "message_stop") {
        state.ended = true;
    }
    return true;  // ping, content_block_start/stop and future event types carry nothing for us
}

class anthropic_provider final : public cloud_provider {
  public:
    explicit anthropic_provider(model_config cfg)
        : cloud_provider(std::move(cfg), "https://api.anthropic.com/v1") {}

  private:
    bool take_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) const override {
        return take_anthropic_event(event, state, out);
    }

    upstream_request build_request(const chat_request& request) const override {
        json::object body = messages_body(request);
        body["model"] = upstream_model_name(cfg_);
        body["max_tokens"] = request.params.max_tokens;
        body["stream"] = true;
        body["temperature"] = std::clamp(request.params.temperature, 0.0, 1.0);  // Anthropic's range is 0..1
        if (request.params.top_p != 1.0) body["top_p"] = request.params.top_p;
        if (!request.params.stop.empty()) {
            json::array stop;
            for (const auto& text : request.params.stop) stop.push_back(json::string(text));
            body["stop_sequences"] = std::move(stop);
        }

        upstream_request out;
        out.target = endpoint_.base->join("/messages");
        out.headers.set(http::field::content_type, "application/json");
        out.headers.set(http::field::accept, "text/event-stream");
        out.headers.set("anthropic-version", k_anthropic_version);
        if (!endpoint_.api_key.empty()) out.headers.set("x-api-key", endpoint_.api_key);
        out.body = json::serialize(body);
        return out;
    }
};

}  // namespace

std::shared_ptr<provider> make_anthropic_provider(const model_config& cfg) {
    return std::make_shared<anthropic_provider>(cfg);
}

}  // namespace sluice
