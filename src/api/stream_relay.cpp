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

namespace sluice {

namespace net = boost::asio;
namespace json = boost::json;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// What travels from the producer side to the writer: a provider chunk, a heartbeat due, or the end.
struct relay_item {
    enum class kind { chunk, ping, end };
    kind type = kind::chunk;
    stream_chunk chunk;
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

// Runs the provider; then marks the end and waits to be cancelled, so that it never wins the race
// against the writer (which must drain the channel first).
net::awaitable<void> produce(provider& model, chat_request request, relay_channel& channel) {
    std::string failure;
    try {
        chunk_sink sink = [&channel](stream_chunk chunk) {
            return send_item(channel, relay_item{.type = relay_item::kind::chunk, .chunk = std::move(chunk)});
        };
        co_await model.stream(std::move(request), sink);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (cancelled(co_await net::this_coro::cancellation_state)) co_return;
    if (!failure.empty()) {
        spdlog::error("provider {} failed: {}", model.config().name, failure);
        relay_item error{.type = relay_item::kind::chunk,
                         .chunk = stream_chunk::error(502, "the model failed")};
        co_await send_item(channel, std::move(error));
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
    sse_writer* sse = nullptr;  // null: collect for one JSON answer
    bool final_reported = false;
    clock::time_point last_write = clock::now();

    net::awaitable<void> report_final() {
        if (final_reported) co_return;
        final_reported = true;
        estimate_usage(out, model, request);
        try {
            co_await on_final(out);
        } catch (const std::exception& e) {
            spdlog::warn("session {}: recording the outcome failed: {}", id.session_id, e.what());
        }
    }

    // The error goes out as a real status when nothing was sent yet, else as an in-band event.
    net::awaitable<void> write_error(const api_error& error) {
        const std::string event = error_event_json(error, id.session_id, &id);
        if (!sse) {
            http_response res{to_status(error.code), ex.request().version()};
            res.set(boost::beast::http::field::content_type, "application/json");
            if (error.retry_after_s > 0) {
                res.set(boost::beast::http::field::retry_after, std::to_string(error.retry_after_s));
            }
            res.body() = event;
            co_await ex.respond(std::move(res));
        } else if (!sse->started()) {
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
                // The provider ended without saying why: what it sent stands as the answer.
                if (item.type == relay_item::kind::end) item.chunk = stream_chunk::finish("stop");
                auto& chunk = item.chunk;
                switch (chunk.type) {
                    case stream_chunk::kind::delta:
                        if (chunk.text.empty()) break;
                        out.text += chunk.text;
                        if (sse) {
                            const auto event = delta_event_json(id, chunk.text);
                            co_await write_event(event);
                        }
                        break;
                    case stream_chunk::kind::usage:
                        out.prompt_tokens = chunk.prompt_tokens;
                        out.completion_tokens = chunk.completion_tokens;
                        out.usage_reported = true;
                        break;
                    case stream_chunk::kind::finish:
                        out.finish_reason = chunk.finish_reason.empty() ? "stop" : chunk.finish_reason;
                        co_await report_final();
                        if (sse) {
                            const auto event = final_event_json(id, out);
                            co_await write_event(event);
                            co_await sse->finish();
                        } else {
                            auto body = chat_response_json(id, out);
                            co_await ex.respond_json(http_status::ok, std::move(body));
                        }
                        co_return;
                    case stream_chunk::kind::error:
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
    relay_state state{ex, model, request, identity, options, outcome, std::move(on_final)};
    if (options.streaming) {
        auto head = ex.sse_head();
        head.set("X-Sluice-Route",
                 identity.model_used + "; model=" + identity.model + "; reason=" + identity.route_reason);
        state.sse = &ex.open_sse(std::move(head));
    }
    relay_channel channel{co_await net::this_coro::executor, k_channel_capacity};
    ex.stream().expires_never();  // our own deadlines apply from here

    // The heartbeat only matters for a stream; a JSON answer cannot carry comments.
    const auto heartbeat = options.streaming
                               ? std::chrono::duration_cast<clock::duration>(options.heartbeat_interval)
                               : clock::duration::max() / 2;
    auto winner = co_await (state.consume(channel) || produce(model, request, channel) ||
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
    if (state.sse && !state.sse->finished()) ex.close_after();
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
