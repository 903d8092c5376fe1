// The per-session turn lock: one holder per session, waiters served in arrival order, a bounded
// wait that gives up, and no entry left behind once a session is free.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "turn/session_locks.h"

namespace sluice {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

TEST(session_locks, a_free_session_is_taken_at_once_and_freed_by_the_guard) {
    net::io_context io;
    session_locks locks;
    bool acquired = false;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            auto guard = co_await locks.acquire("s1", 0ms);
            acquired = guard.has_value();
            EXPECT_EQ(locks.busy_sessions(), 1u);
        },
        net::detached);
    io.run();
    EXPECT_TRUE(acquired);
    EXPECT_EQ(locks.busy_sessions(), 0u);
}

TEST(session_locks, waiters_are_served_in_order_when_the_holder_releases) {
    net::io_context io;
    session_locks locks;
    std::vector<std::string> order;
    std::optional<session_locks::guard> first;
    auto waiter = [&](std::string name) -> net::awaitable<void> {
        auto guard = co_await locks.acquire("s1", 60s);
        EXPECT_TRUE(guard);
        order.push_back(name);
        // Holds the session across a suspension, as a turn does.
        net::steady_timer pause{io, 1ms};
        co_await pause.async_wait(net::use_awaitable);
    };
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            first = co_await locks.acquire("s1", 0ms);
            order.push_back("first");
            net::co_spawn(io, waiter("second"), net::detached);
            net::co_spawn(io, waiter("third"), net::detached);
            // Other sessions are independent.
            auto other = co_await locks.acquire("s2", 0ms);
            EXPECT_TRUE(other);
            net::steady_timer pause{io, 5ms};
            co_await pause.async_wait(net::use_awaitable);
            EXPECT_EQ(order.size(), 1u);  // both still waiting
            first.reset();
        },
        net::detached);
    io.run();
    EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "third"}));
    EXPECT_EQ(locks.busy_sessions(), 0u);
}

TEST(session_locks, a_wait_that_runs_out_gives_up_and_leaves_the_holder_alone) {
    net::io_context io;
    session_locks locks;
    std::optional<session_locks::guard> holder;
    bool gave_up = false;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            holder = co_await locks.acquire("s1", 0ms);
            auto late = co_await locks.acquire("s1", 1ms);
            gave_up = !late.has_value();
            EXPECT_EQ(locks.busy_sessions(), 1u);
            holder.reset();
            EXPECT_EQ(locks.busy_sessions(), 0u);
            auto again = co_await locks.acquire("s1", 0ms);
            EXPECT_TRUE(again);
        },
        net::detached);
    io.run();
    EXPECT_TRUE(gave_up);
    EXPECT_EQ(locks.busy_sessions(), 0u);
}

}  // namespace
}  // namespace sluice
