#pragma once
// Group commit of session turns: one writer per process stores the turns that finish at about the
// same time in one store::append_many (with SQLite: one transaction) instead of one transaction
// each. A turn that finds the writer idle is written at once, with no timer and no added latency;
// turns that finish while a write runs wait for it and go together in the next one (at most
// k_max_batch). Each caller gets its own outcome and is resumed on its own executor.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "store/store.h"

namespace sluice {

namespace metrics {
class registry;
}

class turn_writer {
  public:
    static constexpr std::size_t k_max_batch = 128;

    // The writes run on `pool` (the store's). The writer must outlive every append() in flight and
    // the pool's work (serve joins the pool before the writer goes).
    turn_writer(store& db, boost::asio::thread_pool& pool, metrics::registry& figures);
    turn_writer(store& db, boost::asio::thread_pool& pool);
    turn_writer(const turn_writer&) = delete;
    turn_writer& operator=(const turn_writer&) = delete;

    // Stores `entry` (its session, key and messages) with whatever else is waiting, and returns
    // once it is written or has failed: entry.error is then null or what append_messages would
    // have thrown (session_conflict, store_unavailable). Not cancellable: `entry` is the writer's
    // until it returns.
    boost::asio::awaitable<void> append(session_append& entry);

    // Type-erased completion of one waiting append (any_completion_handler recurses in Boost 1.81).
    struct resumer {
        virtual ~resumer() = default;
        virtual void resume() = 0;  // posts the caller's continuation to its own executor
    };
    struct waiting {
        session_append* entry;
        std::unique_ptr<resumer> done;
    };

  private:
    // Queues a caller; starts a write on the pool when none runs.
    void enqueue(waiting caller);
    // On the pool: writes batches until the queue is empty.
    void write_batches();

    store& db_;
    boost::asio::thread_pool& pool_;
    metrics::registry& figures_;
    std::mutex mutex_;
    std::deque<waiting> queued_;
    bool writing_ = false;  // write_batches is running or posted
};

}  // namespace sluice
