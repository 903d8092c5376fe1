// The HTTP server over real sockets: routing, 404/405, keep-alive, body limits, malformed requests.
#include <gtest/gtest.h>

#include "http/server.h"
#include "server_fixture.h"

namespace sluice {
namespace {

namespace http = boost::beast::http;
using test::make_request;

router echo_router() {
    router routes;
    route_options open{.needs_auth = false};
    routes.add(
        http_verb::post, "/echo",
        [](exchange& ex) -> boost::asio::awaitable<void> {
            std::string body = ex.request().body();
            co_await ex.respond_json(http_status::ok, std::move(body));
        },
        open);
    routes.add(
        http_verb::get, "/items/{id}",
        [](exchange& ex) -> boost::asio::awaitable<void> {
            std::string body = std::string(ex.param("id")) + "|" + std::string(ex.query());
            co_await ex.respond_json(http_status::ok, std::move(body));
        },
        open);
    routes.add(
        http_verb::get, "/throws",
        [](exchange&) -> boost::asio::awaitable<void> {
            throw std::runtime_error("boom");
            co_return;
        },
        open);
    return routes;
}

TEST(http_server, routes_by_method_and_path) {
    auto routes = echo_router();
    test::running_server server{routes};
    test::client c{server.port()};
    auto res = c.send(make_request(http_verb::post, "/echo", "hello"));
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "hello");
    res = c.send(make_request(http_verb::get, "/items/42?x=1"));
    EXPECT_EQ(res.body(), "42|x=1");
    res = c.send(make_request(http_verb::get, "/nope"));
    EXPECT_EQ(res.result_int(), 404);
    res = c.send(make_request(http_verb::get, "/echo"));
    EXPECT_EQ(res.result_int(), 405);
    EXPECT_EQ(res[http::field::allow], "POST");
    res = c.send(make_request(http_verb::get, "/items/"));
    EXPECT_EQ(res.result_int(), 404);
    res = c.send(make_request(http_verb::get, "/items/1/2"));
    EXPECT_EQ(res.result_int(), 404);
    // All of it on one keep-alive connection.
    res = c.send(make_request(http_verb::post, "/echo", "still here"));
    EXPECT_EQ(res.body(), "still here");
}

TEST(http_server, a_failing_handler_gives_500_and_the_server_goes_on) {
    auto routes = echo_router();
    test::running_server server{routes};
    test::client c{server.port()};
    auto res = c.send(make_request(http_verb::get, "/throws"));
    EXPECT_EQ(res.result_int(), 500);
    EXPECT_EQ(res.body(), R"({"error":"internal error","code":500})");
    EXPECT_EQ(c.send(make_request(http_verb::post, "/echo", "x")).body(), "x");
}

TEST(http_server, body_at_the_limit_passes_and_over_it_is_413) {
    auto routes = echo_router();
    server_config cfg;
    cfg.max_body_bytes = 1000;
    test::running_server server{routes, cfg};
    {
        test::client c{server.port()};
        auto res = c.send(make_request(http_verb::post, "/echo", std::string(1000, 'a')));
        EXPECT_EQ(res.result_int(), 200);
        EXPECT_EQ(res.body().size(), 1000u);
    }
    {
        test::client c{server.port()};
        auto res = c.send(make_request(http_verb::post, "/echo", std::string(1001, 'a')));
        EXPECT_EQ(res.result_int(), 413);
        EXPECT_NE(res.body().find("1000 bytes"), std::string::npos);
        EXPECT_FALSE(res.keep_alive());
    }
    {
        // Chunked bodies are counted too.
        test::client c{server.port()};
        c.write_raw(
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3e8\r\n" +
            std::string(1000, 'b') + "\r\n5\r\nbbbbb\r\n0\r\n\r\n");
        auto res = c.read();
        EXPECT_EQ(res.result_int(), 413);
    }
    test::client after{server.port()};
    EXPECT_EQ(after.send(make_request(http_verb::post, "/echo", "ok")).result_int(), 200);
}

TEST(http_server, malformed_request_is_400_then_closed) {
    auto routes = echo_router();
    test::running_server server{routes};
    {
        test::client c{server.port()};
        c.write_raw("THIS IS NOT HTTP\r\n\r\n");
        auto res = c.read();
        EXPECT_EQ(res.result_int(), 400);
        EXPECT_TRUE(c.closed_by_peer());
    }
    {
        test::client c{server.port()};
        c.write_raw("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
        auto res = c.read();
        EXPECT_EQ(res.result_int(), 431);
    }
    test::client after{server.port()};
    EXPECT_EQ(after.send(make_request(http_verb::post, "/echo", "ok")).result_int(), 200);
}

TEST(http_server, expect_100_continue_is_answered) {
    auto routes = echo_router();
    test::running_server server{routes};
    test::client c{server.port()};
    c.write_raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    std::string interim;
    char byte;
    while (interim.find("\r\n\r\n") == std::string::npos) {
        c.socket().read_some(boost::asio::buffer(&byte, 1));
        interim += byte;
    }
    EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    c.write_raw("abc");
    EXPECT_EQ(c.read().body(), "abc");
}

TEST(http_server, connection_close_is_honoured) {
    auto routes = echo_router();
    test::running_server server{routes};
    test::client c{server.port()};
    auto req = make_request(http_verb::post, "/echo", "bye");
    req.keep_alive(false);
    auto res = c.send(req);
    EXPECT_EQ(res.body(), "bye");
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.closed_by_peer());
}

TEST(listen_address, parses_host_and_port) {
    EXPECT_EQ(format_endpoint(parse_listen_address("127.0.0.1:8080")), "127.0.0.1:8080");
    EXPECT_EQ(format_endpoint(parse_listen_address("[::1]:0")), "[::1]:0");
    EXPECT_EQ(parse_listen_address("0.0.0.0:9").port(), 9);
    EXPECT_THROW(parse_listen_address("127.0.0.1"), config_error);
    EXPECT_THROW(parse_listen_address("127.0.0.1:70000"), config_error);
    EXPECT_THROW(parse_listen_address("127.0.0.1:x"), config_error);
}

}  // namespace
}  // namespace sluice
