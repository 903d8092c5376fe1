#include "api/stream_relay.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <functional>
#include <optional>
#include <stdexcept>

#include "core/metrics.h"
#include "routing/orchestrator.h"

namespace sluice {

namespace net = boost::asio;
namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// What travels from the producer side to the writer: a provider chunk, a heartbeat due, or the end.
struct relay_item {
    enum class kind { chunk, ping, end, next_model };
    kind type = kind::chunk;
    stream_chunk chunk;
    std::size_t candidate = 0;  // next_model: the candidate that answers from here on
};

using relay_channel = net::experimental::channel<void(boost::system::error_code, relay_item)>;
using clock = std::chrono::steady_clock;

// A few chunks of slack between the provider and the socket: enough to smooth scheduling, small
// enough that a slow client slows the provider almost at once.
constexpr std::size_t k_channel_capacity = 4;
// How long the closing error event may take to write when the deadline already passed.
constexpr auto k_final_write_timeout = std::chrono::seconds{5};

json::object base_event(const stream_identity& id, std::string_view content) {
    return json::object{{"content", content},
                        {"session_id", id.session_id},
                        {"model_used", id.model_used},
                        {"model", id.model}};
}

json::object usage_json(const stream_outcome& out) {
    return json::object{{"prompt_tokens", out.prompt_tokens}, {"completion_tokens", out.completion_tokens}};
}

// Boost.JSON writes doubles as 5E-1; the score reads better (and compares byte for byte) in the
// shortest round-trip form, so the route object is written by hand.
std::string route_json(const stream_identity& id) {
    std::array<char, 32> score{};
    auto [end, ec] = std::to_chars(score.data(), score.data() + score.size(), id.route_score);
    if (ec != std::errc{}) end = score.data();
    return R"("route":{"reason":)" + json::serialize(json::value(id.route_reason)) + R"(,"score":)" +
           std::string(score.data(), end) + "}";
}

// `object` serialized with `"route":{...}` appended as its last member.
std::string with_route(const json::object& object, const stream_identity& id) {
    std::string text = json::serialize(object);
    text.pop_back();  // the closing brace
    text += ',';
    text += route_json(id);
    text += '}';
    return text;
}

bool cancelled(const net::cancellation_state& state) {
    return state.cancelled() != net::cancellation_type::none;
}

// GCC 12 destroys some temporaries inside a co_await expression twice, so everything non-trivial
// handed to an awaited call in this file is a named variable first.
net::awaitable<void> send_item(relay_channel& channel, relay_item item) {
    co_await channel.async_send(boost::system::error_code{}, std::move(item), net::use_awaitable);
}

net::awaitable<void> wait_forever() {
    net::steady_timer forever{co_await net::this_coro::executor, net::steady_timer::time_point::max()};
    co_await forever.async_wait(net::use_awaitable);
}

bool is_local(const provider& model) {
    return model.config().provider == "llama";
}

// Stands for whichever candidate answers now, so the writer's code names one model throughout.
class active_model final : public provider {
  public:
    explicit active_model(provider_ptr current) : current_(std::move(current)) {}
    void set(provider_ptr current) { current_ = std::move(current); }

    const model_config& config() const override { return current_->config(); }
    provider_status status() const override { return current_->status(); }
    int count_tokens(const std::string& text) const override { return current_->count_tokens(text); }
    net::awaitable<void> stream(chat_request request, chunk_sink sink) override {
        return current_->stream(std::move(request), std::move(sink));
    }

  private:
    provider_ptr current_;
};

// One candidate's stream as the producer sees it. Until its first delta nothing it says is final: an
// error may be held back (another candidate answers instead) and a usage chunk waits with it.
struct attempt_state {
    relay_channel& channel;
    bool may_fall_back = false;
    bool delta_seen = false;
    std::optional<stream_chunk> held_usage;
    std::optional<stream_chunk> held_error;
};

net::awaitable<void> forward_chunk(attempt_state& attempt, stream_chunk chunk) {
    if (attempt.held_error) co_return;  // a provider says nothing after its error
    if (!attempt.delta_seen) {
        if (chunk.type == stream_chunk::kind::error && attempt.may_fall_back) {
            attempt.held_error = std::move(chunk);
            co_return;
        }
        if (chunk.type == stream_chunk::kind::usage) {
            attempt.held_usage = std::move(chunk);
            co_return;
        }
        if (chunk.type == stream_chunk::kind::delta && !chunk.text.empty()) attempt.delta_seen = true;
        if (attempt.held_usage) {
            relay_item usage{.type = relay_item::kind::chunk, .chunk = std::move(*attempt.held_usage)};
            attempt.held_usage.reset();
            co_await send_item(attempt.channel, std::move(usage));
        }
    }
    relay_item item{.type = relay_item::kind::chunk, .chunk = std::move(chunk)};
    co_await send_item(attempt.channel, std::move(item));
}

// Runs the candidates in order until one gets past its first delta, or ends without an error, or is
// the last; then marks the end and waits to be cancelled, so that it never wins the race against the
// writer (which must drain the channel first).
net::awaitable<void> produce(std::vector<relay_candidate>& candidates, relay_channel& channel,
                             orchestrator* routing) {
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        provider& model = *candidates[i].model;
        attempt_state attempt{.channel = channel, .may_fall_back = i + 1 < candidates.size()};
        std::string failure;
        try {
            chunk_sink sink = [&attempt](stream_chunk chunk) {
                return forward_chunk(attempt, std::move(chunk));
            };
            chat_request request = candidates[i].request;
            co_await model.stream(std::move(request), sink);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (cancelled(co_await net::this_coro::cancellation_state)) co_return;
        if (!failure.empty()) {
            spdlog::error("provider {} failed: {}", model.config().name, failure);
            stream_chunk error = stream_chunk::error(502, "the model failed");
            co_await forward_chunk(attempt, std::move(error));
        }
        if (!attempt.held_error) {
            if (attempt.held_usage) {
                relay_item usage{.type = relay_item::kind::chunk, .chunk = std::move(*attempt.held_usage)};
                co_await send_item(channel, std::move(usage));
            }
            break;
        }
        const auto kind = failure_kind_from_code(attempt.held_error->code, is_local(model));
        if (kind == failure_kind::bad_request) {
            // The request was at fault, not the model: another model would be asked the same thing.
            relay_item error{.type = relay_item::kind::chunk, .chunk = std::move(*attempt.held_error)};
            co_await send_item(channel, std::move(error));
            break;
        }
        spdlog::warn("model {} failed before its first token ({} {}: {}); {} answers instead",
                     model.config().name, to_string(kind), attempt.held_error->code,
                     attempt.held_error->message, candidates[i + 1].model->config().name);
        if (routing) routing->report_failure(model.config().name, kind);
        candidates[i + 1].identity.route_reason = "fallback:" + std::string(to_string(kind));
        relay_item next{.type = relay_item::kind::next_model, .candidate = i + 1};
        co_await send_item(channel, std::move(next));
    }
    relay_item end{.type = relay_item::kind::end};
    co_await send_item(channel, std::move(end));
    co_await wait_forever();
}

// Queues a heartbeat whenever nothing was written for `interval`. The writer stays the only one
// touching the socket; a full channel means data is flowing, so no ping is needed then.
net::awaitable<void> tick(relay_channel& channel, const clock::time_point& last_write,
                          clock::duration interval) {
    net::steady_timer timer{co_await net::this_coro::executor};
    clock::time_point last_ping{};
    for (;;) {
        timer.expires_at(std::max(last_write, last_ping) + interval);
        co_await timer.async_wait(net::use_awaitable);
        const auto now = clock::now();
        if (now - std::max(last_write, last_ping) < interval) continue;
        channel.try_send(boost::system::error_code{}, relay_item{.type = relay_item::kind::ping});
        last_ping = now;
    }
}

net::awaitable<void> expire_after(std::chrono::milliseconds timeout) {
    net::steady_timer timer{co_await net::this_coro::executor, timeout};
    co_await timer.async_wait(net::use_awaitable);
}

void estimate_usage(stream_outcome& out, const provider& model, const chat_request& request) {
    if (out.usage_reported) return;
    int prompt = 0;
    for (const auto& message : request.messages) prompt += model.count_tokens(message.content);
    out.prompt_tokens = prompt;
    out.completion_tokens = out.text.empty() ? 0 : model.count_tokens(out.text);
}

http_status to_status(int code) {
    return static_cast<http_status>(code >= 400 && code <= 599 ? code : 502);
}

struct relay_state {
    exchange& ex;
    provider& model;
    const chat_request& request;
    const stream_identity& id;
    const relay_options& options;
    stream_outcome& out;
    outcome_hook on_final;
    const stream_format& format;  // how events and answers are written (seed or OpenAI)
    sse_writer* sse = nullptr;    // null: collect for one JSON answer
    bool final_reported = false;
    bool responded_whole = false;  // an early error went out as a whole response, not on `sse`
    clock::time_point last_write = clock::now();
    metrics::stream_timer timer{metrics::get(), ex.started_at()};
    orchestrator* routing = nullptr;
    std::function<void(std::size_t)> switch_model;  // the writer's side of a fallback

    void report_failure(int code) {
        if (routing)
            routing->report_failure(model.config().name, failure_kind_from_code(code, is_local(model)));
    }

    net::awaitable<void> report_final() {
        if (final_reported) co_return;
        final_reported = true;
        out.model = model.config().name;
        estimate_usage(out, model, request);
        metrics::get().count_tokens(model.config().name, model.config().role, out.prompt_tokens,
                                    out.completion_tokens);
        try {
            co_await on_final(out);
        } catch (const std::exception& e) {
            spdlog::warn("session {}: recording the outcome failed: {}", id.session_id, e.what());
        }
    }

    // The error goes out as a real status when nothing was sent yet, else as an in-band event.
    net::awaitable<void> write_error(const api_error& error) {
        if (!sse || (!sse->started() && !format.early_error_as_event)) {
            api_error shown = error;
            shown.code = static_cast<int>(to_status(error.code));
            auto res = format.error_response(ex.request(), shown, id.session_id, &id);
            responded_whole = true;
            co_await ex.respond(std::move(res));
            co_return;
        }
        const std::string event = format.error_event(error, id);
        if (!sse->started()) {
            co_await sse->fail(to_status(error.code), event, error.retry_after_s);
        } else {
            co_await sse->event(event);
            co_await sse->finish();
        }
    }

    net::awaitable<void> write_event(const std::string& event) {
        out.first_byte_sent = true;
        co_await sse->event(event);
        last_write = clock::now();
    }

    // Takes one item at a time and writes it before taking the next (backpressure).
    net::awaitable<void> consume(relay_channel& channel) {
        bool write_failed = false;
        timer.model_begin();
        try {
            for (;;) {
                relay_item item = co_await channel.async_receive(net::use_awaitable);
                if (item.type == relay_item::kind::ping) {
                    if (sse) {
                        out.first_byte_sent = true;
                        co_await sse->comment("ping");
                        last_write = clock::now();
                    }
                    continue;
                }
                if (item.type == relay_item::kind::next_model) {
                    switch_model(item.candidate);
                    continue;
                }
                // The provider ended without saying why: what it sent stands as the answer.
                if (item.type == relay_item::kind::end) item.chunk = stream_chunk::finish("stop");
                auto& chunk = item.chunk;
                switch (chunk.type) {
                    case stream_chunk::kind::delta: {
                        if (chunk.text.empty()) break;
                        timer.chunk_begin();
                        const bool first_piece = out.text.empty();
                        out.text += chunk.text;
                        if (sse) {
                            const auto events = format.delta(id, chunk.text, first_piece);
                            for (const auto& event : events) co_await write_event(event);
                        }
                        timer.chunk_end();
                        break;
                    }
                    case stream_chunk::kind::usage:
                        out.prompt_tokens = chunk.prompt_tokens;
                        out.completion_tokens = chunk.completion_tokens;
                        out.usage_reported = true;
                        break;
                    case stream_chunk::kind::finish:
                        timer.model_end();
                        out.finish_reason = chunk.finish_reason.empty() ? "stop" : chunk.finish_reason;
                        if (routing) routing->report_success(model.config().name);
                        co_await report_final();
                        if (sse) {
                            const auto events = format.final(id, out);
                            for (const auto& event : events) co_await write_event(event);
                            co_await sse->finish();
                        } else {
                            http_response res{http_status::ok, ex.request().version()};
                            res.set(boost::beast::http::field::content_type, "application/json");
                            res.set("X-Sluice-Route", route_header_value(id));
                            res.body() = format.whole(id, out);
                            co_await ex.respond(std::move(res));
                        }
                        co_return;
                    case stream_chunk::kind::error:
                        timer.model_end();
                        report_failure(chunk.code);
                        out.finish_reason = "error";
                        out.error = api_error{.code = chunk.code,
                                              .message = chunk.message,
                                              .retry_after_s = chunk.retry_after_s};
                        co_await report_final();
                        co_await write_error(*out.error);
                        co_return;
                }
            }
        } catch (const boost::system::system_error&) {
            write_failed = true;
        }
        // A write that failed while nobody cancelled us means the client is gone.
        if (write_failed && !cancelled(co_await net::this_coro::cancellation_state)) out.client_gone = true;
    }
};

}  // namespace

net::awaitable<void> relay_stream(exchange& ex, provider& model, const chat_request& request,
                                  const stream_identity& identity, const relay_options& options,
                                  stream_outcome& outcome, outcome_hook on_final) {
    std::vector<relay_candidate> candidates;
    // Not owned: the caller keeps `model` alive for the call.
    candidates.push_back(
        {.model = provider_ptr(provider_ptr{}, &model), .request = request, .identity = identity});
    co_await relay_stream(ex, std::move(candidates), options, outcome, std::move(on_final), nullptr);
}

std::string route_header_value(const stream_identity& identity) {
    std::array<char, 32> score{};
    auto [end, ec] = std::to_chars(score.data(), score.data() + score.size(), identity.route_score);
    if (ec != std::errc{}) end = score.data();
    return "role=" + identity.model_used + "; model=" + identity.model + "; reason=" + identity.route_reason +
           "; score=" + std::string(score.data(), end);
}

net::awaitable<void> relay_stream(exchange& ex, std::vector<relay_candidate> candidates,
                                  const relay_options& options, stream_outcome& outcome,
                                  outcome_hook on_final, orchestrator* routing) {
    if (candidates.empty()) throw std::invalid_argument("relay_stream: no candidate");
    active_model model{candidates.front().model};
    chat_request request = candidates.front().request;
    stream_identity identity = candidates.front().identity;
    const stream_format seed_format =
        options.format ? stream_format{} : seed_stream_format(options.streaming);
    relay_state state{ex,
                      model,
                      request,
                      identity,
                      options,
                      outcome,
                      std::move(on_final),
                      options.format ? *options.format : seed_format};
    state.routing = routing;
    state.switch_model = [&](std::size_t index) {
        model.set(candidates[index].model);
        request = candidates[index].request;
        identity = candidates[index].identity;
        // Nothing written yet (no heartbeat either): the header can still name the model that answers.
        if (state.sse && !state.sse->started()) {
            auto head = ex.sse_head();
            head.set("X-Sluice-Route", route_header_value(identity));
            state.sse = &ex.open_sse(std::move(head));
        }
    };
    metrics::get().route_decisions(model.config().role, identity.route_reason).inc();
    std::optional<metrics::gauge_guard> live_stream;
    if (options.streaming) live_stream.emplace(metrics::get().active_streams());
    if (options.streaming) {
        auto head = ex.sse_head();
        head.set("X-Sluice-Route", route_header_value(identity));
        state.sse = &ex.open_sse(std::move(head));
    }
    relay_channel channel{co_await net::this_coro::executor, k_channel_capacity};
    ex.stream().expires_never();  // our own deadlines apply from here

    // The heartbeat only matters for a stream; a JSON answer cannot carry comments.
    const auto heartbeat = options.streaming
                               ? std::chrono::duration_cast<clock::duration>(options.heartbeat_interval)
                               : clock::duration::max() / 2;
    auto winner = co_await (state.consume(channel) || produce(candidates, channel, routing) ||
                            tick(channel, state.last_write, heartbeat) || ex.wait_for_disconnect() ||
                            expire_after(options.request_timeout));
    switch (winner.index()) {
        case 3:
            outcome.client_gone = true;
            break;
        case 4:
            outcome.timed_out = true;
            break;
        default:
            break;
    }
    if (outcome.client_gone) {
        if (!state.final_reported) outcome.finish_reason = "cancelled";
        ex.close_after();
    } else if (outcome.timed_out && !state.final_reported) {
        if (routing) routing->report_failure(model.config().name, failure_kind::timeout);
        outcome.finish_reason = "error";
        outcome.error = api_error{.code = 504,
                                  .message = "request timed out after " +
                                             std::to_string(options.request_timeout.count() / 1000) + " s"};
        co_await state.report_final();
        if (!(state.sse && state.sse->broken())) {
            try {
                co_await (state.write_error(*outcome.error) || expire_after(k_final_write_timeout));
            } catch (const std::exception&) {
            }
        }
    }
    co_await state.report_final();
    if (state.sse && !state.sse->finished() && !state.responded_whole) ex.close_after();
}

stream_format seed_stream_format(bool streaming) {
    stream_format format;
    format.delta = [](const stream_identity& who, std::string_view content, bool) {
        return std::vector<std::string>{delta_event_json(who, content)};
    };
    format.final = [](const stream_identity& who, const stream_outcome& out) {
        return std::vector<std::string>{final_event_json(who, out)};
    };
    format.error_event = [](const api_error& error, const stream_identity& who) {
        return error_event_json(error, who.session_id, &who);
    };
    format.error_response = [streaming](const http_request& request, const api_error& error,
                                        std::string_view session_id, const stream_identity* who) {
        const auto event = error_event_json(error, session_id, who);
        if (streaming) {
            return sse_error_response(to_status(error.code), event, error.retry_after_s, request.version(),
                                      request.keep_alive());
        }
        http_response res{to_status(error.code), request.version()};
        res.set(boost::beast::http::field::content_type, "application/json");
        if (error.retry_after_s > 0)
            res.set(boost::beast::http::field::retry_after, std::to_string(error.retry_after_s));
        res.body() = event;
        return res;
    };
    format.early_error_as_event = true;
    format.whole = [](const stream_identity& who, const stream_outcome& out) {
        return chat_response_json(who, out);
    };
    return format;
}

std::string delta_event_json(const stream_identity& identity, std::string_view content) {
    return json::serialize(base_event(identity, content));
}

std::string final_event_json(const stream_identity& identity, const stream_outcome& outcome) {
    auto event = base_event(identity, "");
    event["done"] = true;
    event["finish_reason"] = outcome.finish_reason;
    event["usage"] = usage_json(outcome);
    return with_route(event, identity);
}

std::string error_event_json(const api_error& error, std::string_view session_id,
                             const stream_identity* identity) {
    json::object event{
        {"error", error.message}, {"code", error.code}, {"content", ""}, {"session_id", session_id}};
    if (identity) {
        event["model_used"] = identity->model_used;
        event["model"] = identity->model;
    }
    return json::serialize(event);
}

std::string chat_response_json(const stream_identity& identity, const stream_outcome& outcome) {
    auto body = base_event(identity, outcome.text);
    body["finish_reason"] = outcome.finish_reason;
    body["usage"] = usage_json(outcome);
    return with_route(body, identity);
}

}  // namespace sluice
