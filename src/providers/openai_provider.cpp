#include "providers/openai_provider.h"

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "providers/cloud_common.h"
#include "upstream/sse_parser.h"

namespace sluice {
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

constexpr std::size_t k_error_body_limit = 64 * 1024;

// What one stream has seen so far; OpenAI sends finish_reason before the usage chunk, and the
// provider contract wants usage first, so both are held until the end.
struct openai_stream_state {
    std::string finish_reason;
    bool has_usage = false;
    int prompt_tokens = 0;
    int completion_tokens = 0;
    int deltas = 0;
};

std::string finish_reason_of(std::string_view upstream) {
    // content_filter, tool_calls... still end the text normally for a chat client.
    return upstream == "length" ? "length" : "stop";
}

class openai_provider final : public provider {
  public:
    openai_provider(model_config cfg, boost::asio::any_io_executor executor)
        : cfg_(std::move(cfg)),
          endpoint_(make_cloud_endpoint(cfg_, std::move(executor), "https://api.openai.com/v1")) {}

    const model_config& config() const override { return cfg_; }

    provider_status status() const override {
        return {.available = endpoint_.unavailable.empty(),
                .detail = endpoint_.unavailable,
                .active = active_.load()};
    }

    int count_tokens(const std::string& text) const override { return estimate_tokens(text); }

    boost::asio::awaitable<void> stream(chat_request request, chunk_sink sink) override {
        if (!endpoint_.unavailable.empty()) {
            co_await sink(
                stream_chunk::error(503, "model " + cfg_.name + " is unavailable: " + endpoint_.unavailable));
            co_return;
        }
        ++active_;
        struct active_guard {
            std::atomic<int>& count;
            ~active_guard() { --count; }
        } guard{active_};

        auto opened = co_await endpoint_.client->open(build_request(request));
        if (opened.error) {
            if (opened.error.kind == upstream_failure::cancelled) co_return;
            if (co_await caller_cancelled()) co_return;
            co_await sink(upstream_failure_chunk(opened.error, cfg_, false));
            co_return;
        }
        auto& response = *opened.response;
        if (response.status() != 200) {
            auto [body, error] = co_await response.read_all(k_error_body_limit);
            if (co_await caller_cancelled()) co_return;
            auto retry_after = response.headers()[http::field::retry_after];
            co_await sink(upstream_status_chunk(response.status(), body, std::string_view(retry_after)));
            co_return;
        }
        co_await relay(response, request, sink);
    }

  private:
    upstream_request build_request(const chat_request& request) const {
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

    // Reads the SSE body and hands each piece to the sink before reading on (backpressure).
    boost::asio::awaitable<void> relay(upstream_response& response, const chat_request& request,
                                       const chunk_sink& sink) const {
        sse_parser parser;
        openai_stream_state state;
        std::string piece;
        bool ended = false;
        while (!ended) {
            if (response.done()) break;
            auto error = co_await response.read_some(piece);
            if (error) {
                if (error.kind == upstream_failure::cancelled) co_return;
                if (co_await caller_cancelled()) co_return;
                co_await sink(upstream_failure_chunk(error, cfg_, state.deltas > 0));
                co_return;
            }
            for (auto& event : parser.feed(piece)) {
                if (event.is_done()) {
                    ended = true;
                    break;
                }
                auto outcome = co_await take_event(event, state, sink);
                if (outcome == event_outcome::stop) co_return;
            }
            if (parser.overflowed()) {
                co_await sink(stream_chunk::error(502, "the upstream sent an oversized event"));
                co_return;
            }
        }
        if (!ended && state.finish_reason.empty()) {
            if (co_await caller_cancelled()) co_return;
            co_await sink(stream_chunk::error(502, "the upstream stream ended before it finished"));
            co_return;
        }
        if (co_await caller_cancelled()) co_return;
        if (!state.has_usage) {
            // Some OpenAI-compatible servers ignore stream_options; an estimate beats no ledger entry.
            int prompt = 0;
            for (const auto& message : request.messages) prompt += estimate_tokens(message.content);
            state.prompt_tokens = prompt;
            state.completion_tokens = state.deltas;
        }
        co_await sink(stream_chunk::usage(state.prompt_tokens, state.completion_tokens));
        if (co_await caller_cancelled()) co_return;
        // g++ 12 miscompiles a class temporary made by ?: inside a co_await expression (the string
        // ends up pointing into the dead coroutine frame), so the reason is a named local.
        std::string reason = state.finish_reason.empty() ? "stop" : state.finish_reason;
        co_await sink(stream_chunk::finish(std::move(reason)));
        // Read the end of the chunked body so that the connection can go back to the pool.
        for (int reads = 0; reads < 2 && !response.done(); ++reads)
            if (co_await response.read_some(piece)) break;
    }

    enum class event_outcome { next, stop };

    boost::asio::awaitable<event_outcome> take_event(const sse_event& event, openai_stream_state& state,
                                                     const chunk_sink& sink) const {
        boost::system::error_code ec;
        auto value = json::parse(event.data, ec);
        auto* object = ec ? nullptr : value.if_object();
        if (!object) {
            if (co_await caller_cancelled()) co_return event_outcome::stop;
            co_await sink(stream_chunk::error(502, "the upstream sent an event that is not JSON"));
            co_return event_outcome::stop;
        }
        if (auto* error = object->if_contains("error")) {
            if (co_await caller_cancelled()) co_return event_outcome::stop;
            std::string message = upstream_error_message(json::serialize(json::object{{"error", *error}}));
            co_await sink(stream_chunk::error(502, "upstream error: " + message));
            co_return event_outcome::stop;
        }
        if (auto* usage = object->if_contains("usage"); usage && usage->is_object()) {
            const auto& fields = usage->get_object();
            auto number = [&](const char* name) {
                auto* field = fields.if_contains(name);
                return field && field->is_int64() ? static_cast<int>(field->get_int64()) : 0;
            };
            state.has_usage = true;
            state.prompt_tokens = number("prompt_tokens");
            state.completion_tokens = number("completion_tokens");
        }
        auto* choices = object->if_contains("choices");
        if (!choices || !choices->is_array() || choices->get_array().empty()) co_return event_outcome::next;
        auto* choice = choices->get_array()[0].if_object();
        if (!choice) co_return event_outcome::next;
        if (auto* delta = choice->if_contains("delta"); delta && delta->is_object()) {
            auto* content = delta->get_object().if_contains("content");
            if (content && content->is_string() && !content->get_string().empty()) {
                if (co_await caller_cancelled()) co_return event_outcome::stop;
                ++state.deltas;
                co_await sink(stream_chunk::delta(std::string(content->get_string())));
            }
        }
        if (auto* reason = choice->if_contains("finish_reason"); reason && reason->is_string())
            state.finish_reason = finish_reason_of(reason->get_string());
        co_return event_outcome::next;
    }

    model_config cfg_;
    cloud_endpoint endpoint_;
    mutable std::atomic<int> active_{0};
};

}  // namespace

std::shared_ptr<provider> make_openai_provider(const model_config& cfg,
                                               boost::asio::any_io_executor executor) {
    return std::make_shared<openai_provider>(cfg, std::move(executor));
}

}  // namespace sluice
