#include "providers/openai_provider.h"

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "providers/cloud_common.h"

namespace sluice {
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

std::string finish_reason_of(std::string_view upstream) {
    // content_filter, tool_calls... still end the text normally for a chat client.
    return upstream == "length" ? "length" : "stop";
}

int int_field(const json::object& object, const char* name) {
    auto* field = object.if_contains(name);
    return field && field->is_int64() ? static_cast<int>(field->get_int64()) : 0;
}

// One `data:` event of /chat/completions streaming: a chat.completion.chunk, an error, or [DONE].
bool take_openai_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
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
        state.has_usage = true;
        state.prompt_tokens = int_field(usage->get_object(), "prompt_tokens");
        state.completion_tokens = int_field(usage->get_object(), "completion_tokens");
    }
    auto* choices = object->if_contains("choices");
    if (!choices || !choices->is_array() || choices->get_array().empty()) return true;
    auto* choice = choices->get_array()[0].if_object();
    if (!choice) return true;
    if (auto* delta = choice->if_contains("delta"); delta && delta->is_object()) {
        auto* content = delta->get_object().if_contains("content");
        if (content && content->is_string() && !content->get_string().empty()) {
            ++state.deltas;
            out.push_back(stream_chunk::delta(std::string(content->get_string())));
        }
    }
    if (auto* reason = choice->if_contains("finish_reason"); reason && reason->is_string())
        state.finish_reason = finish_reason_of(reason->get_string());
    return true;
}

class openai_provider final : public cloud_provider {
  public:
    explicit openai_provider(model_config cfg)
        : cloud_provider(std::move(cfg), "https://api.openai.com/v1") {}

  private:
    bool take_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) const override {
        return take_openai_event(event, state, out);
    }

    upstream_request build_request(const chat_request& request) const override {
        json::array messages;
        for (const auto& message : request.messages)
            messages.push_back(json::object{{"role", message.role}, {"content", message.content}});
        json::object body{
            {"model", upstream_model_name(cfg_)},
            {"messages", std::move(messages)},
            {"stream", true},
            {"stream_options", json::object{{"include_usage", true}}},
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
