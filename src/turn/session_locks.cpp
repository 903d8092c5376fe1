#include "turn/session_locks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/blocking.h"
#include "core/ids.h"
#include "store/store.h"

namespace sluice {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

// The store's lock of one turn: refreshed from the executor of the turn that took it until released.
struct session_locks::remote_hold {
    remote_hold(store& db_, net::thread_pool& pool_, std::string session_id_, std::string token_,
                std::chrono::milliseconds ttl_, const net::any_io_executor& executor)
        : db(db_),
          pool(pool_),
          session_id(std::move(session_id_)),
          token(std::move(token_)),
          ttl(ttl_),
          refresh(executor) {}

    store& db;
    net::thread_pool& pool;
    const std::string session_id;
    const std::string token;
    const std::chrono::milliseconds ttl;
    net::steady_timer refresh;  // only touched on its executor
    std::atomic<bool> released{false};
};

namespace {

// How often a turn waiting for another process's lock asks the store again.
constexpr auto k_poll_interval = std::chrono::milliseconds{25};

// Keeps the store's lock alive while the turn runs: every third of its time to live, so one failed
// refresh (the store briefly unreachable) does not lose it.
net::awaitable<void> keep_fresh(std::shared_ptr<session_locks::remote_hold> hold) {
    for (;;) {
        if (hold->released) co_return;
        hold->refresh.expires_after(hold->ttl / 3);
        auto [ec] = co_await hold->refresh.async_wait(net::as_tuple(net::use_awaitable));
        if (ec || hold->released) co_return;
        bool still_held = true;
        std::string failure;
        try {
            still_held = co_await run_blocking(hold->pool, [&hold] {
                return hold->db.refresh_session_lock(hold->session_id, hold->token, hold->ttl.count());
            });
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) {
            spdlog::warn("session {}: refreshing its lock failed (tried again in {} ms): {}",
                         hold->session_id, (hold->ttl / 3).count(), failure);
            continue;
        }
        if (!still_held) {
            spdlog::warn(
                "session {}: its lock expired while a turn ran on it (the store was out of reach "
                "for longer than routing.session_lock_ttl_ms)",
                hold->session_id);
            co_return;
        }
    }
}

}  // namespace

session_locks::session_locks(store& shared, net::thread_pool& pool, std::chrono::milliseconds ttl)
    : shared_(shared.shares_sessions() ? &shared : nullptr), pool_(&pool), ttl_(ttl) {}

session_locks::guard& session_locks::guard::operator=(guard&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = other.owner_;
        session_id_ = std::move(other.session_id_);
        remote_ = std::move(other.remote_);
        other.owner_ = nullptr;
    }
    return *this;
}

void session_locks::guard::release() {
    // The store's lock first, so a waiter of this process that is handed the session finds it free
    // (or soon: it asks again every k_poll_interval).
    if (auto hold = std::move(remote_)) {
        hold->released = true;
        try {
            net::post(hold->refresh.get_executor(), [hold] { hold->refresh.cancel(); });
            net::post(hold->pool, [hold] {
                try {
                    hold->db.unlock_session(hold->session_id, hold->token);
                } catch (const std::exception& e) {
                    spdlog::warn("session {}: freeing its lock failed, it expires by itself: {}",
                                 hold->session_id, e.what());
                }
            });
        } catch (const std::exception& e) {
            spdlog::warn("session {}: its lock expires by itself: {}", hold->session_id, e.what());
        }
    }
    if (owner_) owner_->release(session_id_);
    owner_ = nullptr;
}

net::awaitable<std::optional<session_locks::guard>> session_locks::acquire(std::string session_id,
                                                                           std::chrono::milliseconds wait) {
    const auto deadline = steady::now() + wait;
    auto here = acquire_here(std::move(session_id), wait);
    auto held = co_await std::move(here);
    if (!held || !shared_) co_return std::move(held);
    const bool taken = co_await acquire_shared(*held, deadline);
    if (!taken) co_return std::nullopt;  // `held` frees the lock of this process
    co_return std::move(held);
}

net::awaitable<bool> session_locks::acquire_shared(guard& held, steady::time_point deadline) {
    auto executor = co_await net::this_coro::executor;
    const std::string token = new_id("lock_");
    const std::int64_t ttl_ms = ttl_.count();
    net::steady_timer pause{executor};
    for (;;) {
        const bool taken = co_await run_blocking(*pool_, [this, &held, &token, ttl_ms] {
            return shared_->try_lock_session(held.session_id_, token, ttl_ms);
        });
        if (taken) break;
        const auto now = steady::now();
        if (now >= deadline) co_return false;
        pause.expires_after(std::min<steady::duration>(k_poll_interval, deadline - now));
        auto [ec] = co_await pause.async_wait(net::as_tuple(net::use_awaitable));
        if (ec) co_return false;
    }
    auto hold = std::make_shared<remote_hold>(*shared_, *pool_, held.session_id_, token, ttl_, executor);
    held.remote_ = hold;
    net::co_spawn(executor, keep_fresh(std::move(hold)), net::detached);
    co_return true;
}

net::awaitable<std::optional<session_locks::guard>> session_locks::acquire_here(
    std::string session_id, std::chrono::milliseconds wait) {
    auto me = std::make_shared<waiter>();
    auto executor = co_await net::this_coro::executor;
    {
        std::lock_guard lock{mutex_};
        auto [it, inserted] = held_.try_emplace(session_id);
        if (inserted) co_return guard{this, std::move(session_id)};
        me->timer = std::make_shared<net::steady_timer>(executor, wait);
        it->second.waiters.push_back(me);
    }
    // Woken early (cancelled) by release() when the session is handed over, else times out.
    co_await me->timer->async_wait(net::as_tuple(net::use_awaitable));
    std::lock_guard lock{mutex_};
    if (me->granted) co_return guard{this, std::move(session_id)};
    if (auto it = held_.find(session_id); it != held_.end()) std::erase(it->second.waiters, me);
    co_return std::nullopt;
}

void session_locks::release(const std::string& session_id) {
    std::lock_guard lock{mutex_};
    auto it = held_.find(session_id);
    if (it == held_.end()) return;
    auto& waiters = it->second.waiters;
    if (waiters.empty()) {
        held_.erase(it);
        return;
    }
    auto next = std::move(waiters.front());
    waiters.pop_front();
    next->granted = true;  // ownership passes without the session ever looking free
    // The timer belongs to the waiter's executor (its connection's io_context, maybe another
    // thread): cancel it there.
    auto timer = next->timer;
    net::post(timer->get_executor(), [timer] { timer->cancel(); });
}

std::size_t session_locks::busy_sessions() const {
    std::lock_guard lock{mutex_};
    return held_.size();
}

}  // namespace sluice
