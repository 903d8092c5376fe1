#pragma once
// One turn at a time per session: a second request on a busy session waits (bounded) for the first
// to finish, so no turn is lost or interleaved in the stored conversation.
//
// The lock lives in this process. Several sluice processes sharing a Redis store each have their
// own: two turns of one session sent to two processes at once are not serialised (the store keeps
// each append atomic, so both turns are stored, but the second may not see the first).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace sluice {

class session_locks {
  public:
    // Held for one turn; releasing hands the session to the oldest waiter.
    class guard {
      public:
        guard() = default;
        guard(session_locks* owner, std::string session_id)
            : owner_(owner), session_id_(std::move(session_id)) {}
        guard(guard&& other) noexcept : owner_(other.owner_), session_id_(std::move(other.session_id_)) {
            other.owner_ = nullptr;
        }
        guard& operator=(guard&& other) noexcept;
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;
        ~guard() { release(); }

        void release();

      private:
        session_locks* owner_ = nullptr;
        std::string session_id_;
    };

    // Thread-safe. nullopt when the session stayed busy for `wait` (or the caller was cancelled).
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

    void release(const std::string& session_id);

    mutable std::mutex mutex_;
    std::unordered_map<std::string, entry> held_;  // present = held
};

}  // namespace sluice
