#pragma once
// What the endpoints share for the life of the server: the configuration, the store (reached only
// through run_blocking on its own pool), one provider per configured model, the orchestrator, the
// per-session turn locks, the batched usage ledger, the turn writer and a pool for CPU-heavy work.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <vector>

#include "core/config.h"
#include "providers/provider.h"
#include "store/store.h"

namespace sluice {

class orchestrator;
class session_locks;
struct shared_log_access;
class stream_registry;
class turn_writer;
class usage_ledger;

struct app_context {
    const config& cfg;
    store& db;
    boost::asio::thread_pool& store_pool;
    std::vector<provider_ptr> providers;  // providers[i] serves cfg.models[i]
    orchestrator* routing = nullptr;      // who answers each request (set by serve)
    session_locks* sessions = nullptr;    // one turn at a time per session (set by serve)
    usage_ledger* usage = nullptr;        // batched usage writes (set by serve)
    turn_writer* turns = nullptr;         // group commit of session turns (set by serve); null: each
                                          // turn is appended on the store pool by itself (tests)
    stream_registry* streams = nullptr;   // the logs of resumable streams (set by serve)
    // Where those logs are shared with the other processes of the store (set by serve when the
    // store shares_stream_logs(): Redis); null: each stays in its producer's memory.
    const shared_log_access* shared_logs = nullptr;
    // Starts work that outlives its connection (a resumable stream's producer) so that shutdown
    // waits for it and then cuts it as it does a connection (set by serve: http_server::spawn_detached);
    // null: co_spawn on its own (tests).
    std::function<void(boost::asio::any_io_executor, boost::asio::awaitable<void>)> spawn_detached;
    // CPU-heavy work of a request (tokenizing a big prompt to trim it), off the io threads; null:
    // done in place (tests).
    boost::asio::thread_pool* compute_pool = nullptr;
};

}  // namespace sluice
