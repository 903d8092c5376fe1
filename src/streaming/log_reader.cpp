#include "streaming/log_reader.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string_view>

#include "core/metrics.h"
#include "http/sse.h"

namespace sluice {

namespace net = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// What one write carries at most while replaying: a long log goes out in pieces.
constexpr std::size_t k_read_bytes = 16 * 1024;
constexpr std::string_view k_fell_behind =
    ": sluice: this stream's log no longer holds the next event (resume.max_bytes): it cannot go on\n\n";

bool is_cancelled(const net::cancellation_state& state) {
    return state.cancelled() != net::cancellation_type::none;
}

// On the heap: the coroutine that tails the log lives as long as the stream.
struct reader_state {
    std::shared_ptr<stream_log> log;
    sse_writer* sse = nullptr;
    sse_batch batch;
    std::uint64_t after = 0;
    std::uint64_t replay_until = 0;  // events up to this id were in the log when the reader came
    std::chrono::milliseconds heartbeat{};
    bool resumed = false;
    bool completed = false;  // the log's end was written

    void count_replayed(std::uint64_t from) {
        if (!resumed || from >= replay_until) return;
        const auto to = std::min(after, replay_until);
        if (to > from) metrics::get().replayed_events().inc(to - from);
    }
};

net::awaitable<void> pump(reader_state& state) {
    for (;;) {
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (is_cancelled(cancellation)) co_return;
        const auto seen = state.log->version();
        const auto from = state.after;
        const auto got = state.log->read_after(state.after, state.batch, k_read_bytes);
        if (got == log_read::events) {
            state.count_replayed(from);
            const auto ec = co_await state.sse->send(state.batch, false);
            state.batch.release();
            if (ec) co_return;
            continue;
        }
        if (got == log_read::out_of_range) state.batch.add_raw(k_fell_behind);
        if (got != log_read::nothing_yet) {
            const auto ec = co_await state.sse->send(state.batch, true);
            state.completed = !ec && got == log_read::finished;
            co_return;
        }
        if (!state.batch.empty()) {  // the head and the retry hint, at once
            const auto ec = co_await state.sse->send(state.batch, false);
            state.batch.release();
            if (ec) co_return;
        }
        const auto before = state.log->version();
        if (before != seen) continue;
        co_await state.log->wait_change(seen, state.heartbeat);
        if (state.log->version() != seen) continue;
        const auto now_cancelled = co_await net::this_coro::cancellation_state;
        if (is_cancelled(now_cancelled)) co_return;
        state.batch.add_comment("ping");  // nothing came for a heartbeat
        const auto ec = co_await state.sse->send(state.batch, false);
        state.batch.release();
        if (ec) co_return;
    }
}

struct reader_attachment {
    stream_log& log;
    ~reader_attachment() { log.detach_reader(); }
};

}  // namespace

net::awaitable<void> serve_stream_log(exchange& ex, std::shared_ptr<stream_log> log, std::uint64_t after_id,
                                      log_reader_options options, bool attached) {
    if (!attached) log->attach_reader();
    const reader_attachment attachment{*log};
    const metrics::gauge_guard live_stream{metrics::get().active_streams()};
    if (options.resumed) metrics::get().resumed_streams().inc();
    auto state = std::make_unique<reader_state>();
    state->log = log;
    state->after = after_id;
    state->replay_until = log->last_id();
    state->heartbeat = options.heartbeat;
    state->resumed = options.resumed;
    auto head = ex.sse_head();
    head.set("X-Sluice-Stream-Id", options.stream_id);
    if (!options.route.empty()) head.set("X-Sluice-Route", options.route);
    state->sse = &ex.open_sse(std::move(head));
    state->sse->set_done_marker(false);  // data: [DONE] is in the log, as an event of its own
    const std::string retry = "retry: " + std::to_string(options.retry.count()) + "\n\n";
    state->batch.add_raw(retry);
    ex.stream().expires_never();  // the heartbeat and the producer's deadline apply
    auto reading = pump(*state);
    auto leaving = ex.wait_for_disconnect();
    co_await (std::move(reading) || std::move(leaving));
    if (!state->completed) ex.close_after();
}

}  // namespace sluice
