#pragma once
// The usage ledger's write side, off the request path: each answer adds its counts here in memory
// (a map merge under a mutex, no store round trip), and the store pool writes the merged counts
// (one row per key and model) at most `interval` later. Readers that must see every finished
// request (GET /api/v1/usage, shutdown) call flush() first. A store failure keeps the counts for
// the next attempt; only a crash loses them, and then at most one interval's worth.
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstddef>
#include <memory>

#include "store/store.h"

namespace sluice {

class usage_ledger {
  public:
    static constexpr std::chrono::milliseconds k_default_interval{100};

    usage_ledger(store& db, boost::asio::thread_pool& pool,
                 std::chrono::milliseconds interval = k_default_interval);
    // Writes what is pending (best effort: a failing store logs and drops it).
    ~usage_ledger();
    usage_ledger(const usage_ledger&) = delete;
    usage_ledger& operator=(const usage_ledger&) = delete;

    // Never blocks on the store; thread-safe.
    void add(const usage_delta& delta);
    // Writes every pending count now, on the calling thread (a store thread or shutdown). Throws
    // what the store throws; the counts it could not write stay pending.
    void flush();
    // Distinct (key, model) rows waiting to be written.
    std::size_t pending() const;

    struct state;

  private:
    std::shared_ptr<state> state_;
};

}  // namespace sluice
