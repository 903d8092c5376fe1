#include "turn/session_locks.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice {

namespace net = boost::asio;

session_locks::guard& session_locks::guard::operator=(guard&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = other.owner_;
        session_id_ = std::move(other.session_id_);
        other.owner_ = nullptr;
    }
    return *this;
}

void session_locks::guard::release() {
    if (owner_) owner_->release(session_id_);
    owner_ = nullptr;
}

net::awaitable<std::optional<session_locks::guard>> session_locks::acquire(std::string session_id,
                                                                           std::chrono::milliseconds wait) {
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
