#pragma once
// One turn at a time per session: a second request on a busy session waits (bounded) for the first
// to finish, so no turn is lost or interleaved in the stored conversation, and each sees the last.
//
// The lock lives in this process; with a store that several processes share (Redis) it is held
// there too, so two turns of one session sent to two processes are serialised as well: a token
// stored with SET NX PX, refreshed every third of its time to live while the turn runs, deleted by
// a compare-and-delete script when it ends. A lock whose process died expires after its time to
// live (routing.session_lock_ttl_ms). Within a process the in-process lock is taken first, so only
// one of its turns polls the store for a session at a time.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace sluice {

class store;

class session_locks {
  public:
    struct remote_hold;  // the store's lock while held

    // Held for one turn; releasing hands the session to the oldest waiter (and frees the store's
    // lock, when there is one).
    class guard {
      public:
        guard() = default;
        guard(session_locks* owner, std::string session_id)
            : owner_(owner), session_id_(std::move(session_id)) {}
        guard(guard&& other) noexcept
            : owner_(other.owner_),
              session_id_(std::move(other.session_id_)),
              remote_(std::move(other.remote_)) {
            other.owner_ = nullptr;
        }
        guard& operator=(guard&& other) noexcept;
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;
        ~guard() { release(); }

        void release();

      private:
        friend class session_locks;
        session_locks* owner_ = nullptr;
        std::string session_id_;
        std::shared_ptr<remote_hold> remote_;
    };

    // In this process only.
    session_locks() = default;
    // Also in `shared` when it shares_sessions(): reached through run_blocking on `pool`.
    session_locks(store& shared, boost::asio::thread_pool& pool, std::chrono::milliseconds ttl);

    // Thread-safe. nullopt when the session stayed busy for `wait` (or the caller was cancelled).
    // Throws what the store throws (store_unavailable) when its lock cannot be reached.
    boost::asio::awaitable<std::optional<guard>> acquire(std::string session_id,
                                                         std::chrono::milliseconds wait);

    std::size_t busy_sessions() const;  // for tests

  private:
    struct waiter {
        std::shared_ptr<boost::asio::steady_timer> timer;
        bool granted = false;
    };
    struct entry {
        std::deque<std::shared_ptr<waiter>> waiters;
    };

    boost::asio::awaitable<std::optional<guard>> acquire_here(std::string session_id,
                                                              std::chrono::milliseconds wait);
    boost::asio::awaitable<bool> acquire_shared(guard& held, std::chrono::steady_clock::time_point deadline);
    void release(const std::string& session_id);

    store* shared_ = nullptr;  // set when the store shares sessions between processes
    boost::asio::thread_pool* pool_ = nullptr;
    std::chrono::milliseconds ttl_{0};

    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> held_;  // present = held
};

}  // namespace sluice
