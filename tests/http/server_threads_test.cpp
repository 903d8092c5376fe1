// Thread per core: with io_threads = 2 the server runs two io_contexts, one thread each. Connections
// are spread over both, a connection's handlers always run on the same thread, on a plain
// io_context executor (no strand), and a drain reaches the connections of every context.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"
#include "server_fixture.h"

namespace sluice {
namespace {

namespace net = boost::asio;
using test::make_request;
using namespace std::chrono_literals;

// "<thread id>", or "<thread id> not on a plain io_context executor".
net::awaitable<std::string> where_am_i() {
    auto executor = co_await net::this_coro::executor;
    std::ostringstream out;
    out << std::this_thread::get_id();
    if (executor.target<net::io_context::executor_type>() == nullptr)
        out << " not on a plain io_context executor";
    co_return out.str();
}

// GET /thread answers at once; GET /slow after a short piece of work; GET /hang never (until it is
// cancelled). /slow and /hang count down `entered` first, so a test knows they are under way.
router thread_router(std::latch& entered) {
    router routes;
    route_options open{.needs_auth = false};
    routes.add(
        http_verb::get, "/thread",
        [](exchange& ex) -> net::awaitable<void> {
            std::string body = co_await where_am_i();
            co_await ex.respond_json(http_status::ok, std::move(body));
        },
        open);
    routes.add(
        http_verb::get, "/slow",
        [&entered](exchange& ex) -> net::awaitable<void> {
            entered.count_down();
            net::steady_timer work{co_await net::this_coro::executor, 100ms};
            co_await work.async_wait(net::use_awaitable);
            std::string body = co_await where_am_i();
            co_await ex.respond_json(http_status::ok, std::move(body));
        },
        open);
    routes.add(
        http_verb::get, "/hang",
        [&entered](exchange&) -> net::awaitable<void> {
            entered.count_down();
            net::steady_timer forever{co_await net::this_coro::executor,
                                      net::steady_timer::time_point::max()};
            co_await forever.async_wait(net::use_awaitable);
        },
        open);
    return routes;
}

void send_only(test::client& c, const std::string& target) {
    auto request = make_request(http_verb::get, target);
    request.prepare_payload();
    boost::beast::http::write(c.socket(), request);
}

// An http_server run on a thread of the test, with the value run() returned.
class server_thread {
  public:
    server_thread(const server_config& cfg, router& routes) : server_(cfg, routes) {
        server_.listen();
        thread_ = std::thread([this] { result_.set_value(server_.run(false)); });
        finished_ = result_.get_future();
    }
    ~server_thread() {
        server_.stop();
        thread_.join();
    }
    http_server& server() { return server_; }
    unsigned short port() const { return server_.local_endpoint().port(); }
    // run()'s value, or nullopt when it has not returned within `limit`.
    std::optional<bool> wait(std::chrono::seconds limit) {
        if (finished_.wait_for(limit) != std::future_status::ready) return std::nullopt;
        return finished_.get();
    }

  private:
    http_server server_;
    std::promise<bool> result_;
    std::future<bool> finished_;
    std::thread thread_;
};

server_config two_threads() {
    server_config cfg;
    cfg.listen = "127.0.0.1:0";
    cfg.io_threads = 2;
    return cfg;
}

TEST(http_server_threads, connections_are_spread_over_the_threads_and_each_stays_on_its_own) {
    std::latch unused{0};
    auto routes = thread_router(unused);
    auto cfg = two_threads();
    server_thread running{cfg, routes};
    ASSERT_EQ(running.server().io_context_count(), 2u);

    constexpr int k_connections = 4;
    std::vector<std::unique_ptr<test::client>> clients;
    for (int i = 0; i < k_connections; ++i) clients.push_back(std::make_unique<test::client>(running.port()));
    std::vector<std::set<std::string>> seen(k_connections);
    for (int round = 0; round < 5; ++round) {
        // Every connection has a request in flight at once, then the answers are collected.
        for (auto& c : clients) send_only(*c, "/thread");
        for (int i = 0; i < k_connections; ++i) {
            auto res = clients[i]->read();
            ASSERT_EQ(res.result_int(), 200);
            EXPECT_TRUE(res.keep_alive());
            seen[i].insert(res.body());
        }
    }
    std::set<std::string> threads;
    for (int i = 0; i < k_connections; ++i) {
        EXPECT_EQ(seen[i].size(), 1u) << "connection " << i << " moved between threads";
        threads.insert(seen[i].begin(), seen[i].end());
    }
    EXPECT_EQ(threads.size(), 2u);
    for (const auto& thread : threads) EXPECT_EQ(thread.find(' '), std::string::npos) << thread;
}

TEST(http_server_threads, drain_finishes_requests_and_closes_idle_connections_on_both_threads) {
    std::latch entered{2};
    auto routes = thread_router(entered);
    auto cfg = two_threads();
    cfg.shutdown_grace_s = 30;
    server_thread running{cfg, routes};

    // Round robin: busy_0 and idle_0 share one thread, busy_1 and idle_1 the other.
    test::client busy_0{running.port()};
    test::client busy_1{running.port()};
    test::client idle_0{running.port()};
    test::client idle_1{running.port()};
    const auto idle_0_thread = idle_0.send(make_request(http_verb::get, "/thread")).body();
    const auto idle_1_thread = idle_1.send(make_request(http_verb::get, "/thread")).body();
    EXPECT_NE(idle_0_thread, idle_1_thread);

    send_only(busy_0, "/slow");
    send_only(busy_1, "/slow");
    entered.wait();
    running.server().stop();

    auto res_0 = busy_0.read();
    auto res_1 = busy_1.read();
    EXPECT_EQ(res_0.result_int(), 200);
    EXPECT_EQ(res_1.result_int(), 200);
    EXPECT_EQ(res_0.body(), idle_0_thread);
    EXPECT_EQ(res_1.body(), idle_1_thread);
    EXPECT_TRUE(busy_0.closed_by_peer());
    EXPECT_TRUE(busy_1.closed_by_peer());
    EXPECT_TRUE(idle_0.closed_by_peer());
    EXPECT_TRUE(idle_1.closed_by_peer());
    EXPECT_EQ(running.wait(10s), std::optional<bool>{true});
}

TEST(http_server_threads, after_the_grace_period_streams_on_both_threads_are_cut) {
    std::latch entered{2};
    auto routes = thread_router(entered);
    auto cfg = two_threads();
    cfg.shutdown_grace_s = 0;
    server_thread running{cfg, routes};

    test::client hung_0{running.port()};
    test::client hung_1{running.port()};
    send_only(hung_0, "/hang");
    send_only(hung_1, "/hang");
    entered.wait();
    running.server().stop();

    EXPECT_TRUE(hung_0.closed_by_peer());
    EXPECT_TRUE(hung_1.closed_by_peer());
    // The cancelled handlers ended, so nothing was left to cut by force.
    EXPECT_EQ(running.wait(10s), std::optional<bool>{true});
}

}  // namespace
}  // namespace sluice
