#pragma once
// Runs blocking work (SQLite, Redis round trips) on a dedicated pool and resumes the calling
// coroutine on its own executor, so no io thread ever waits on a disk or a network round trip.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <optional>
#include <type_traits>

namespace sluice {

template <typename Fn>
auto run_blocking(boost::asio::thread_pool& pool, Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn>> {
    using result_t = std::invoke_result_t<Fn>;
    auto home = co_await boost::asio::this_coro::executor;
    if constexpr (std::is_void_v<result_t>) {
        std::exception_ptr error;
        co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
            [&](auto handler) {
                boost::asio::post(pool, [&, handler = std::move(handler), home]() mutable {
                    try {
                        fn();
                    } catch (...) {
                        error = std::current_exception();
                    }
                    boost::asio::post(home, std::move(handler));
                });
            },
            boost::asio::use_awaitable);
        if (error) std::rethrow_exception(error);
    } else {
        std::optional<result_t> result;
        std::exception_ptr error;
        co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
            [&](auto handler) {
                boost::asio::post(pool, [&, handler = std::move(handler), home]() mutable {
                    try {
                        result.emplace(fn());
                    } catch (...) {
                        error = std::current_exception();
                    }
                    boost::asio::post(home, std::move(handler));
                });
            },
            boost::asio::use_awaitable);
        if (error) std::rethrow_exception(error);
        co_return std::move(*result);
    }
}

}  // namespace sluice
