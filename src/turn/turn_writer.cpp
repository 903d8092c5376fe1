#include "turn/turn_writer.h"

#include <algorithm>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <utility>
#include <vector>

#include "core/metrics.h"

namespace sluice {

namespace net = boost::asio;

namespace {

// The continuation of one append(), posted back to the executor it was called on (as run_blocking
// does): a caller's coroutine never runs on the store pool.
template <typename Handler>
struct resumer_of final : turn_writer::resumer {
    resumer_of(Handler h, net::any_io_executor e) : handler(std::move(h)), home(std::move(e)) {}
    void resume() override { net::post(home, std::move(handler)); }

    Handler handler;
    net::any_io_executor home;
};

// Up to k_max_batch callers from the front of the queue, oldest first.
std::vector<turn_writer::waiting> take_batch(std::deque<turn_writer::waiting>& queued) {
    const auto n = std::min(queued.size(), turn_writer::k_max_batch);
    std::vector<turn_writer::waiting> batch;
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queued.front()));
        queued.pop_front();
    }
    return batch;
}

}  // namespace

turn_writer::turn_writer(store& db, net::thread_pool& pool, metrics::registry& figures)
    : db_(db), pool_(pool), figures_(figures) {}

turn_writer::turn_writer(store& db, net::thread_pool& pool) : turn_writer(db, pool, metrics::get()) {}

net::awaitable<void> turn_writer::append(session_append& entry) {
    const auto home = co_await net::this_coro::executor;
    // Runs once the caller is suspended, so the writer may resume it at any time after this.
    auto initiation = [this, &entry, &home](auto handler) {
        using handler_type = decltype(handler);
        enqueue(
            {.entry = &entry, .done = std::make_unique<resumer_of<handler_type>>(std::move(handler), home)});
    };
    auto written =
        net::async_initiate<decltype(net::use_awaitable), void()>(std::move(initiation), net::use_awaitable);
    co_await std::move(written);
}

void turn_writer::enqueue(waiting caller) {
    bool start = false;
    {
        std::lock_guard lock{mutex_};
        queued_.push_back(std::move(caller));
        start = !std::exchange(writing_, true);
    }
    if (start) net::post(pool_, [this] { write_batches(); });
}

void turn_writer::write_batches() {
    std::vector<waiting> batch;
    {
        std::lock_guard lock{mutex_};
        batch = take_batch(queued_);
    }
    for (;;) {
        // The entries move into the batch and back: the callers' frames keep them otherwise.
        std::vector<session_append> entries;
        entries.reserve(batch.size());
        for (auto& caller : batch) entries.push_back(std::move(*caller.entry));
        try {
            db_.append_many(entries);
        } catch (...) {  // append_many does not throw; a store that breaks that fails its batch
            const auto error = std::current_exception();
            for (auto& entry : entries) entry.error = error;
        }
        std::uint64_t stored = 0;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!entries[i].error) ++stored;
            *batch[i].entry = std::move(entries[i]);
        }
        figures_.turn_batches().inc();
        figures_.turns_stored().inc(stored);

        std::vector<waiting> next;
        {
            std::lock_guard lock{mutex_};
            next = take_batch(queued_);
            if (next.empty()) writing_ = false;
        }
        const bool more = !next.empty();
        // Past this point with nothing more, `this` is not touched: a resumed caller may be the last
        // user of the writer.
        for (auto& caller : batch) caller.done->resume();
        if (!more) return;
        batch = std::move(next);
    }
}

}  // namespace sluice
