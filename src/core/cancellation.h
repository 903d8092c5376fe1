#pragma once
// Cancellation as the calling coroutine sees it (its cancellation slot, set by `||` races and
// parallel groups).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice {

// True once the caller has been cancelled.
inline boost::asio::awaitable<bool> is_cancelled() {
    const auto state = co_await boost::asio::this_coro::cancellation_state;
    co_return state.cancelled() != boost::asio::cancellation_type::none;
}

// Returns (does not throw) when the caller is cancelled. Its own coroutine, so that the timer takes
// no room in the frame of a caller that lives for a whole stream.
inline boost::asio::awaitable<void> wait_until_cancelled() {
    namespace net = boost::asio;
    net::steady_timer forever{co_await net::this_coro::executor, net::steady_timer::time_point::max()};
    co_await forever.async_wait(net::as_tuple(net::use_awaitable));
}

}  // namespace sluice
