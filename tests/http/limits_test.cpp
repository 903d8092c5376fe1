// The connection limits of docs/OPERATIONS.md, each from both sides: a client that connects and
// sends nothing is let go after header_timeout_s (a keep-alive one idles for idle_timeout_s), and a
// client past max_connections gets 503 at once instead of hanging in the backlog.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>

#include "http/server.h"
#include "server_fixture.h"

namespace sluice {
namespace {

using clock_type = std::chrono::steady_clock;

router ok_router() {
    router routes;
    routes.add(
        http_verb::get, "/ok",
        [](exchange& ex) -> boost::asio::awaitable<void> { co_await ex.respond_json(http_status::ok, "{}"); },
        route_options{.needs_auth = false});
    return routes;
}

void receive_timeout(test::client& c, int seconds) {
    timeval timeout{.tv_sec = seconds, .tv_usec = 0};
    ::setsockopt(c.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
}

TEST(connection_limits, a_silent_new_connection_is_closed_after_header_timeout_not_idle_timeout) {
    auto routes = ok_router();
    server_config cfg;
    cfg.header_timeout_s = 1;
    cfg.idle_timeout_s = 30;
    test::running_server server{routes, cfg};
    test::client silent{server.port()};
    receive_timeout(silent, 10);
    const auto start = clock_type::now();
    EXPECT_TRUE(silent.closed_by_peer());
    const auto held = clock_type::now() - start;
    EXPECT_GE(held, std::chrono::milliseconds{900});
    EXPECT_LT(held, std::chrono::seconds{5});
}

TEST(connection_limits, a_keep_alive_connection_idles_for_idle_timeout_between_requests) {
    auto routes = ok_router();
    server_config cfg;
    cfg.header_timeout_s = 1;
    cfg.idle_timeout_s = 30;
    test::running_server server{routes, cfg};
    test::client c{server.port()};
    EXPECT_EQ(c.send(test::make_request(http_verb::get, "/ok")).result_int(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds{1500});  // past header_timeout_s
    EXPECT_EQ(c.send(test::make_request(http_verb::get, "/ok")).result_int(), 200);
}

TEST(connection_limits, past_max_connections_a_client_gets_503_and_is_closed_at_once) {
    auto routes = ok_router();
    server_config cfg;
    cfg.max_connections = 1;
    test::running_server server{routes, cfg};
    {
        test::client first{server.port()};
        EXPECT_EQ(first.send(test::make_request(http_verb::get, "/ok")).result_int(), 200);
        test::client second{server.port()};
        receive_timeout(second, 5);
        const auto res = second.read();
        EXPECT_EQ(res.result_int(), 503);
        EXPECT_EQ(res[boost::beast::http::field::retry_after], "1");
        EXPECT_TRUE(second.closed_by_peer());
        // The first is still served.
        EXPECT_EQ(first.send(test::make_request(http_verb::get, "/ok")).result_int(), 200);
    }
    // Its slot is free again once it has gone (the server notices the close first).
    int status = 0;
    for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
        try {
            test::client again{server.port()};
            receive_timeout(again, 5);
            status = again.send(test::make_request(http_verb::get, "/ok")).result_int();
        } catch (const std::exception&) {
            status = 0;  // refused while the server had not yet seen the first one go
        }
        if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace sluice
