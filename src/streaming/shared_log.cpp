#include "streaming/shared_log.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

#include "core/blocking.h"
#include "core/ids.h"
#include "http/sse.h"

namespace sluice {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

// What one write or one look carries at most: a long log goes in pieces.
constexpr std::size_t k_publish_bytes = 64 * 1024;
constexpr std::size_t k_look_events = 256;
// Once its log finished, a publisher that cannot reach the store gives up after this long.
constexpr auto k_give_up = std::chrono::seconds{3};
constexpr auto k_retry = std::chrono::milliseconds{250};
// Writes of a running stream are at least this far apart, so a fast stream's events go in batches
// (at most 20 writes a second per stream): well inside a remote reader's poll interval.
constexpr auto k_write_gap = std::chrono::milliseconds{50};

bool is_cancelled(const net::cancellation_state& state) {
    return state.cancelled() != net::cancellation_type::none;
}

net::awaitable<void> sleep_for(clock::duration delay) {
    const auto executor = co_await net::this_coro::executor;
    net::steady_timer timer{executor, delay};
    auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    (void)ec;
}

// The state of one publisher, on the heap: it lives as long as the stream.
struct publisher {
    shared_log_access access;
    memory_stream_log& log;
    publish_settings settings;
    shared_log_update update;
    std::uint64_t published = 0;  // the last event id written
    bool reader_there = false;    // a remote reader is attached to the log for us
    bool cancel_passed = false;
    bool failing = false;
    clock::time_point failing_since{};
    clock::time_point last_write{};
    clock::time_point orphan_rendered{};  // when orphan_event was last rendered and sent

    // The next update: the events after `published` (up to k_publish_bytes), and whether that is all.
    bool prepare() {
        update.events.clear();
        update.first_id = published + 1;
        update.overflowed = log.overflowed();
        bool complete = false;
        if (!update.overflowed) {
            auto after = published;
            const auto got = log.copy_after(after, update.events, k_publish_bytes);
            complete = got != log_read::events || after == log.last_id();
            if (got == log_read::out_of_range) update.overflowed = true;
        }
        // The lost-producer event carries the answer so far (the Responses API's response.failed):
        // rendered with the first write, then at most once a heartbeat, not with every batch.
        update.orphan_event.clear();
        const auto now = clock::now();
        if (settings.orphan_event &&
            (published == 0 ||
             (!update.events.empty() && now - orphan_rendered >= shared_log_timing::k_heartbeat))) {
            update.orphan_event = settings.orphan_event();
            orphan_rendered = now;
        }
        // Past the bound nothing more is published: remote readers end at what they have.
        const bool finished = log.finished() && (complete || update.overflowed);
        update.finished = finished;
        update.keep_ms = (finished ? settings.finished_keep : settings.running_keep).count();
        return finished;
    }

    void apply(const shared_log_feedback& feedback) {
        published += update.events.size();
        if (feedback.cancel_requested && !cancel_passed) {
            cancel_passed = true;
            log.cancel();
        }
        if (feedback.remote_reader != reader_there) {
            reader_there = feedback.remote_reader;
            if (reader_there) {
                log.attach_reader();
            } else {
                log.detach_reader();
            }
        }
    }
};

}  // namespace

net::awaitable<void> open_shared_log(shared_log_access access, const publish_settings& settings) {
    const shared_log_update first{.id = settings.id,
                                  .owner = settings.owner,
                                  .first_id = 1,
                                  .alive_ttl_ms = shared_log_timing::k_alive_ttl.count(),
                                  .keep_ms = settings.running_keep.count()};
    try {
        auto writing =
            run_blocking(*access.pool, [&access, &first] { return access.db->publish_log(first); });
        co_await std::move(writing);
    } catch (const std::exception& e) {
        spdlog::warn("stream {}: writing its shared log failed: {}", settings.id, e.what());
    }
}

net::awaitable<void> publish_log(shared_log_access access, memory_stream_log& log,
                                 publish_settings settings) {
    auto state =
        std::make_unique<publisher>(publisher{.access = access, .log = log, .settings = std::move(settings)});
    state->update.id = state->settings.id;
    state->update.owner = state->settings.owner;
    state->update.alive_ttl_ms = shared_log_timing::k_alive_ttl.count();
    for (;;) {
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (is_cancelled(cancellation)) break;
        const auto since = clock::now() - state->last_write;
        if (since < k_write_gap && !log.finished()) co_await sleep_for(k_write_gap - since);
        const auto seen = log.version();
        const bool last = state->prepare();
        bool written = false;
        try {
            publisher& p = *state;
            auto writing = run_blocking(*access.pool, [&p] { return p.access.db->publish_log(p.update); });
            const auto feedback = co_await std::move(writing);
            state->apply(feedback);
            state->last_write = clock::now();
            written = true;
            if (state->failing) spdlog::info("stream {}: its shared log is written again", state->update.id);
            state->failing = false;
        } catch (const std::exception& e) {
            if (!state->failing) {
                spdlog::warn("stream {}: writing its shared log failed: {}", state->update.id, e.what());
                state->failing = true;
                state->failing_since = clock::now();
            }
        }
        if (written && last) break;
        if (!written) {
            if (log.finished() && clock::now() - state->failing_since >= k_give_up) break;
            co_await sleep_for(k_retry);
            continue;
        }
        if (log.version() != seen) continue;  // more came while writing
        if (!state->update.overflowed && state->published < log.last_id()) continue;  // not all written yet
        co_await log.wait_change(seen, shared_log_timing::k_heartbeat);
    }
    if (state->reader_there) log.detach_reader();
}

// ---- a remote reader ----

remote_stream_log::remote_stream_log(shared_log_access access, std::string id, const shared_log_slice& state)
    : access_(access), id_(std::move(id)) {
    last_id_ = state.last_id;
    finished_ = state.finished;
    overflowed_ = state.overflowed;
    producer_alive_ = state.producer_alive;
    orphan_event_ = state.orphan_event;
}

void remote_stream_log::append(std::string_view, bool) {}
void remote_stream_log::finish() {}

net::awaitable<void> remote_stream_log::wait_until_abandoned(std::chrono::milliseconds) {
    co_return;
}

void remote_stream_log::cancel() {
    cancel_wanted_ = true;
}

bool remote_stream_log::cancel_requested() const {
    return cancel_wanted_;
}

bool remote_stream_log::resumable_after(std::uint64_t after_id) const {
    // An id past what the producer wrote yet may be one its own client read a moment ago.
    return !overflowed_ && (after_id <= last_id_ || (!finished_ && producer_alive_));
}

log_read remote_stream_log::read_after(std::uint64_t& after_id, sse_batch& out, std::size_t max_bytes) {
    if (!started_) {
        started_ = true;
        fetched_ = after_id;
    }
    while (!events_.empty() && events_.front().first <= after_id) events_.pop_front();
    if (events_.empty()) {
        // The producer died (or the store stayed out of reach) before the log's end: its error event.
        const bool lost = store_lost_ || (!producer_alive_ && !finished_ && after_id >= last_id_);
        if (lost) {
            if (orphan_sent_) return log_read::finished;
            orphan_sent_ = true;
            out.add_raw(orphan_event_);
            return log_read::events;
        }
        if (after_id < last_id_) return log_read::nothing_yet;  // logged, not fetched yet
        if (overflowed_) return log_read::out_of_range;         // the rest was never logged
        if (finished_) return log_read::finished;
        return log_read::nothing_yet;
    }
    std::size_t added = 0;
    while (!events_.empty() && (added == 0 || added < max_bytes)) {
        auto& [id, text] = events_.front();
        out.add_raw(text);
        added += text.size();
        after_id = id;
        events_.pop_front();
    }
    return log_read::events;
}

void remote_stream_log::take(shared_log_slice slice) {
    bool changed = !slice.events.empty() || slice.finished != finished_ || slice.overflowed != overflowed_ ||
                   slice.producer_alive != producer_alive_ || slice.last_id != last_id_;
    for (auto& event : slice.events) {
        fetched_ = event.first;
        events_.push_back(std::move(event));
    }
    last_id_ = slice.last_id;
    finished_ = slice.finished;
    overflowed_ = slice.overflowed;
    producer_alive_ = slice.producer_alive;
    if (!slice.orphan_event.empty()) orphan_event_ = std::move(slice.orphan_event);
    if (changed) ++version_;
}

net::awaitable<void> remote_stream_log::look() {
    const auto after = fetched_;
    const bool cancel = cancel_wanted_ && !cancel_sent_;
    const auto& access = access_;
    const auto& id = id_;
    try {
        auto reading = run_blocking(*access.pool, [&access, &id, after, cancel] {
            return access.db->read_shared_log(id, after, k_look_events,
                                              shared_log_timing::k_reader_ttl.count(), cancel);
        });
        auto slice = co_await std::move(reading);
        failing_since_ = {};
        if (cancel) cancel_sent_ = true;
        if (!slice) {  // expired meanwhile: what was not read is gone
            if (!store_lost_) ++version_;
            store_lost_ = true;
            co_return;
        }
        take(std::move(*slice));
    } catch (const std::exception& e) {
        const auto now = clock::now();
        if (failing_since_ == clock::time_point{}) {
            spdlog::warn("stream {}: reading its shared log failed: {}", id_, e.what());
            failing_since_ = now;
        }
        // A store that stays unreachable ends the stream as a producer that died would.
        if (!store_lost_ && now - failing_since_ >= shared_log_timing::k_alive_ttl) {
            store_lost_ = true;
            ++version_;
        }
    }
}

net::awaitable<void> remote_stream_log::wait_change(std::uint64_t seen, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (version_ != seen) co_return;
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (is_cancelled(cancellation)) co_return;
        co_await look();
        if (version_ != seen) co_return;
        const auto now = clock::now();
        if (now >= deadline) co_return;
        const auto pause = std::min<clock::duration>(shared_log_timing::k_poll, deadline - now);
        co_await sleep_for(pause);
    }
}

net::awaitable<std::shared_ptr<stream_log>> find_stream(stream_registry& local,
                                                        const shared_log_access* shared, std::string_view id,
                                                        std::string_view owner) {
    auto here = local.find(id, owner);
    if (here || !shared) co_return here;
    const std::string name{id};
    std::optional<shared_log_slice> state;
    try {
        auto reading = run_blocking(
            *shared->pool, [shared, &name] { return shared->db->read_shared_log(name, 0, 0, 0, false); });
        state = co_await std::move(reading);
    } catch (const std::exception& e) {
        spdlog::warn("stream {}: looking for its shared log failed: {}", name, e.what());
        co_return nullptr;
    }
    // Another key's stream is as unknown as a stream that never was.
    if (!state || !constant_time_equal(state->owner, owner)) co_return nullptr;
    co_return std::make_shared<remote_stream_log>(*shared, name, *state);
}

}  // namespace sluice
