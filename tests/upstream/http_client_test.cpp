#include "upstream/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "upstream/test_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using namespace sluice::testing;
using net::experimental::awaitable_operators::operator||;
using net::experimental::awaitable_operators::operator&&;

const std::string k_chunked_head =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

upstream_request post(std::string body = "{}") {
    upstream_request request;
    request.target = "/v1/chat/completions";
    request.headers.set("content-type", "application/json");
    request.body = std::move(body);
    return request;
}

http_client_options quick_options() {
    http_client_options options;
    options.connect_timeout = 2s;
    options.first_byte_timeout = 2s;
    options.idle_timeout = 2s;
    options.request_timeout = 10s;
    return options;
}

struct read_result {
    unsigned status = 0;
    std::vector<std::string> pieces;
    upstream_error error;
    upstream_error open_error;
};

net::awaitable<read_result> fetch(http_client& client, upstream_request request = post()) {
    read_result result;
    auto opened = co_await client.open(std::move(request));
    if (opened.error) {
        result.open_error = opened.error;
        co_return result;
    }
    result.status = opened.response->status();
    std::string piece;
    while (!opened.response->done()) {
        result.error = co_await opened.response->read_some(piece);
        if (result.error) break;
        if (!piece.empty()) result.pieces.push_back(piece);
    }
    co_return result;
}

std::string joined(const std::vector<std::string>& pieces) {
    std::string out;
    for (const auto& piece : pieces) out += piece;
    return out;
}

// Answers every request on a connection with a three-chunk body; keeps the connection open.
net::awaitable<void> chunked_responder(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    while (co_await read_request(socket, buffer)) {
        if (!co_await send(socket, k_chunked_head + chunk("data: a\n\n") + chunk("data: b\n\n") +
                                       chunk("data: [DONE]\n\n") + "0\r\n\r\n"))
            co_return;
    }
}

TEST(http_client, chunked_body_and_keep_alive_reuse) {
    net::io_context io;
    test_server server(io, chunked_responder);
    http_client client(server.origin(), quick_options());
    for (int i = 0; i < 3; ++i) {
        auto result = run(io, fetch(client));
        ASSERT_FALSE(result.open_error) << result.open_error.detail;
        ASSERT_FALSE(result.error) << result.error.detail;
        EXPECT_EQ(result.status, 200u);
        EXPECT_EQ(joined(result.pieces), "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
    }
    EXPECT_EQ(client.connects(), 1u);
    EXPECT_EQ(server.accepted(), 1);
    EXPECT_EQ(client.idle_connections(), 1);
    EXPECT_EQ(client.busy_connections(), 0);
}

TEST(http_client, body_pieces_arrive_before_the_body_ends) {
    net::io_context io;
    net::steady_timer second_piece_gate(io, net::steady_timer::time_point::max());
    test_server server(io, [&](tcp::socket socket) -> net::awaitable<void> {
        boost::beast::flat_buffer buffer;
        co_await read_request(socket, buffer);
        co_await send(socket, k_chunked_head + chunk("first"));
        co_await second_piece_gate.async_wait(k_tuple);  // opened only once the client has the first piece
        co_await send(socket, chunk("second") + "0\r\n\r\n");
    });
    http_client client(server.origin(), quick_options());
    auto pieces = run(io, [&]() -> net::awaitable<std::vector<std::string>> {
        std::vector<std::string> seen;
        auto opened = co_await client.open(post());
        std::string piece;
        while (!opened.response->done()) {
            if (co_await opened.response->read_some(piece)) break;
            if (piece.empty()) continue;
            seen.push_back(piece);
            second_piece_gate.cancel();
        }
        co_return seen;
    }());
    EXPECT_EQ(pieces, (std::vector<std::string>{"first", "second"}));
}

TEST(http_client, read_buffers_shrink_for_a_slow_stream_and_grow_for_a_burst) {
    // Six small events, one 40,000-byte event, six small again; each part is sent only once the
    // client has read everything before it, so every part is a read of its own.
    std::vector<std::string> parts;
    for (int i = 0; i < 6; ++i) parts.push_back("data: small " + std::to_string(i) + "\n\n");
    parts.push_back("data: " + std::string(40000, 'x') + "\n\n");
    for (int i = 6; i < 12; ++i) parts.push_back("data: small " + std::to_string(i) + "\n\n");
    std::string whole;
    for (const auto& part : parts) whole += part;

    net::io_context io;
    std::size_t client_has = 0;  // bytes the client has read so far
    test_server server(io, [&](tcp::socket socket) -> net::awaitable<void> {
        boost::beast::flat_buffer buffer;
        co_await read_request(socket, buffer);
        co_await send(socket, k_chunked_head);
        std::size_t sent = 0;
        net::steady_timer poll(socket.get_executor());
        for (const auto& part : parts) {
            while (client_has < sent) {
                poll.expires_after(1ms);
                co_await poll.async_wait(k_tuple);
            }
            co_await send(socket, chunk(part));
            sent += part.size();
        }
        co_await send(socket, "0\r\n\r\n");
    });
    http_client client(server.origin(), quick_options());
    struct seen {
        std::string body;
        std::vector<std::size_t> read_sizes;  // after each read that returned bytes
    };
    auto result = run(io, [&]() -> net::awaitable<seen> {
        seen out;
        auto opened = co_await client.open(post());
        std::string piece;
        while (!opened.response->done()) {
            auto error = co_await opened.response->read_some(piece);
            if (error) break;
            out.body += piece;
            client_has = out.body.size();
            if (!piece.empty()) out.read_sizes.push_back(opened.response->read_size());
        }
        co_return out;
    }());
    EXPECT_EQ(result.body, whole);
    ASSERT_GE(result.read_sizes.size(), 13u);
    EXPECT_EQ(result.read_sizes[0], 1024u);       // a new response reads small pieces
    EXPECT_EQ(result.read_sizes[5], 1024u);       // and stays small while they are small
    EXPECT_EQ(result.read_sizes[6], 16u * 1024);  // the burst's first read grows it
    EXPECT_EQ(result.read_sizes.back(), 1024u);   // and the slow tail shrinks it once more
    EXPECT_EQ(client.idle_connections(), 1);      // the connection went back to the pool
}

TEST(http_client, content_length_and_close_delimited_bodies) {
    net::io_context io;
    test_server server(io, [](tcp::socket socket) -> net::awaitable<void> {
        boost::beast::flat_buffer buffer;
        std::string body;
        co_await read_request(socket, buffer, &body);
        if (body == "length") {
            co_await send(socket, "HTTP/1.1 404 Not Found\r\nContent-Length: 11\r\n\r\nhello world");
        } else {
            co_await send(socket, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
            socket.close();
        }
    });
    http_client client(server.origin(), quick_options());
    auto sized = run(io, fetch(client, post("length")));
    EXPECT_EQ(sized.status, 404u);
    EXPECT_EQ(joined(sized.pieces), "hello world");
    EXPECT_EQ(client.idle_connections(), 1);

    auto delimited = run(io, fetch(client, post("close")));
    ASSERT_FALSE(delimited.error) << delimited.error.detail;
    EXPECT_EQ(joined(delimited.pieces), "until the end");
    EXPECT_EQ(client.idle_connections(), 0);  // "Connection: close" is never pooled
}

TEST(http_client, a_pooled_connection_the_server_closed_is_replaced) {
    net::io_context io;
    test_server server(io, [](tcp::socket socket) -> net::awaitable<void> {
        boost::beast::flat_buffer buffer;
        co_await read_request(socket, buffer);
        co_await send(socket, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        socket.close();  // without saying so in the response
    });
    http_client client(server.origin(), quick_options());
    for (int i = 0; i < 3; ++i) {
        auto result = run(io, fetch(client));
        ASSERT_FALSE(result.open_error) << i << ": " << result.open_error.detail;
        EXPECT_EQ(joined(result.pieces), "ok");
    }
    EXPECT_EQ(server.accepted(), 3);
}

TEST(http_client, connect_refused_is_a_connect_failure) {
    net::io_context io;
    std::uint16_t port = 0;
    {
        tcp::acceptor closed(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        port = closed.local_endpoint().port();
    }
    http_client client(*parse_url("http://127.0.0.1:" + std::to_string(port)), quick_options());
    auto result = run(io, fetch(client));
    EXPECT_EQ(result.open_error.kind, upstream_failure::connect);
    EXPECT_EQ(client.busy_connections(), 0);
}

TEST(http_client, connect_deadline_fires_when_the_listener_never_accepts) {
    net::io_context io;
    // A listener whose accept queue is full drops further SYNs, so a connect hangs.
    tcp::acceptor listener(io);
    listener.open(tcp::v4());
    listener.bind(tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    listener.listen(0);
    std::vector<std::unique_ptr<tcp::socket>> fillers;
    for (int i = 0; i < 16; ++i) {
        auto filler = std::make_unique<tcp::socket>(io);
        bool connected = false;
        filler->async_connect(listener.local_endpoint(),
                              [&](boost::system::error_code ec) { connected = !ec; });
        io.restart();
        io.run_for(200ms);
        fillers.push_back(std::move(filler));
        if (!connected) break;
    }
    auto options = quick_options();
    options.connect_timeout = 300ms;
    http_client client(*parse_url("http://127.0.0.1:" + std::to_string(listener.local_endpoint().port())),
                       options);
    auto result = run(io, fetch(client));
    EXPECT_EQ(result.open_error.kind, upstream_failure::connect_timeout) << result.open_error.detail;
}

// Reads the request, then sends `bytes` and waits for the client to leave; records that it left.
struct stalling_server {
    net::io_context& io;
    std::string bytes;
    bool client_left = false;
    test_server server{io, [this](tcp::socket socket) -> net::awaitable<void> {
                           boost::beast::flat_buffer buffer;
                           co_await read_request(socket, buffer);
                           if (!bytes.empty()) co_await send(socket, bytes);
                           co_await wait_for_close(socket);
                           client_left = true;
                       }};
};

TEST(http_client, first_byte_deadline_fires_and_closes_the_connection) {
    net::io_context io;
    stalling_server upstream{io, ""};
    auto options = quick_options();
    options.first_byte_timeout = 200ms;
    http_client client(upstream.server.origin(), options);
    auto result = run(io, fetch(client));
    EXPECT_EQ(result.open_error.kind, upstream_failure::first_byte_timeout) << result.open_error.detail;
    io.restart();
    while (!upstream.client_left) io.run_one();
    EXPECT_EQ(client.busy_connections(), 0);
    EXPECT_EQ(client.idle_connections(), 0);
}

TEST(http_client, idle_deadline_fires_between_body_pieces) {
    net::io_context io;
    stalling_server upstream{io, k_chunked_head + chunk("data: a\n\n")};
    auto options = quick_options();
    options.idle_timeout = 200ms;
    http_client client(upstream.server.origin(), options);
    auto result = run(io, fetch(client));
    ASSERT_FALSE(result.open_error) << result.open_error.detail;
    EXPECT_EQ(joined(result.pieces), "data: a\n\n");
    EXPECT_EQ(result.error.kind, upstream_failure::idle_timeout) << result.error.detail;
    io.restart();
    while (!upstream.client_left) io.run_one();
    EXPECT_EQ(client.busy_connections(), 0);
}

// Sends six small events, each once the client has read the one before (so each is a read of
// its own and the client's buffers shrink), then stalls until the client closes.
struct slow_then_stalling_server {
    net::io_context& io;
    std::size_t client_has = 0;
    bool client_left = false;
    static std::string part(int i) { return "data: small " + std::to_string(i) + "\n\n"; }
    test_server server{io, [this](tcp::socket socket) -> net::awaitable<void> {
                           boost::beast::flat_buffer buffer;
                           co_await read_request(socket, buffer);
                           co_await send(socket, k_chunked_head);
                           net::steady_timer poll(socket.get_executor());
                           std::size_t sent = 0;
                           for (int i = 0; i < 6; ++i) {
                               while (client_has < sent) {
                                   poll.expires_after(1ms);
                                   co_await poll.async_wait(k_tuple);
                               }
                               co_await send(socket, chunk(part(i)));
                               sent += part(i).size();
                           }
                           co_await wait_for_close(socket);
                           client_left = true;
                       }};
};

TEST(http_client, idle_deadline_fires_while_a_slow_stream_waits_without_buffers) {
    net::io_context io;
    slow_then_stalling_server upstream{io};
    auto options = quick_options();
    options.idle_timeout = 200ms;
    http_client client(upstream.server.origin(), options);
    std::size_t read_size_at_end = 0;
    auto result = run(io, [&]() -> net::awaitable<read_result> {
        read_result out;
        auto opened = co_await client.open(post());
        std::string piece;
        while (!opened.response->done()) {
            out.error = co_await opened.response->read_some(piece);
            if (out.error) break;
            out.pieces.push_back(piece);
            upstream.client_has += piece.size();
        }
        read_size_at_end = opened.response->read_size();
        co_return out;
    }());
    EXPECT_EQ(read_size_at_end, 1024u);  // it was waiting in the slow mode
    EXPECT_EQ(upstream.client_has, 6 * slow_then_stalling_server::part(0).size());
    EXPECT_EQ(result.error.kind, upstream_failure::idle_timeout) << result.error.detail;
    io.restart();
    while (!upstream.client_left) io.run_one();
    EXPECT_EQ(client.busy_connections(), 0);
}

TEST(http_client, cancelling_a_slow_stream_that_waits_without_buffers_closes_at_once) {
    net::io_context io;
    slow_then_stalling_server upstream{io};
    auto options = quick_options();
    options.idle_timeout = 30s;
    options.request_timeout = 60s;
    http_client client(upstream.server.origin(), options);
    net::steady_timer client_leaves(io, net::steady_timer::time_point::max());
    std::size_t read_size_when_left = 0;
    const auto started = std::chrono::steady_clock::now();
    auto outcome = run(io, [&]() -> net::awaitable<int> {
        auto reader = [&]() -> net::awaitable<void> {
            auto opened = co_await client.open(post());
            if (opened.error) co_return;
            std::string piece;
            while (!opened.response->done()) {
                auto error = co_await opened.response->read_some(piece);
                if (error) break;
                upstream.client_has += piece.size();
                read_size_when_left = opened.response->read_size();
                if (upstream.client_has == 6 * slow_then_stalling_server::part(0).size())
                    client_leaves.cancel();
            }
        };
        auto winner = co_await (reader() || client_leaves.async_wait(k_tuple));
        co_return static_cast<int>(winner.index());
    }());
    EXPECT_EQ(outcome, 1);
    EXPECT_EQ(read_size_when_left, 1024u);
    io.restart();
    while (!upstream.client_left) io.run_one();
    // Closed by the cancellation, not by a deadline (the idle deadline is 30 s).
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    EXPECT_EQ(client.busy_connections(), 0);
    EXPECT_EQ(client.idle_connections(), 0);
}

TEST(http_client, whole_request_deadline_fires_while_data_keeps_flowing) {
    net::io_context io;
    test_server server(io, [](tcp::socket socket) -> net::awaitable<void> {
        boost::beast::flat_buffer buffer;
        co_await read_request(socket, buffer);
        if (!co_await send(socket, k_chunked_head)) co_return;
        net::steady_timer pause(socket.get_executor());
        for (;;) {
            pause.expires_after(20ms);
            co_await pause.async_wait(k_tuple);
            if (!co_await send(socket, chunk(": ping\n\n"))) co_return;
        }
    });
    auto options = quick_options();
    options.idle_timeout = 2s;
    options.request_timeout = 300ms;
    http_client client(server.origin(), options);
    auto result = run(io, fetch(client));
    EXPECT_FALSE(result.pieces.empty());
    EXPECT_EQ(result.error.kind, upstream_failure::request_timeout) << result.error.detail;
}

TEST(http_client, cancelling_the_caller_closes_the_connection_at_once) {
    net::io_context io;
    stalling_server upstream{io, k_chunked_head + chunk("data: a\n\n")};
    http_client client(upstream.server.origin(), quick_options());
    net::steady_timer client_leaves(io, net::steady_timer::time_point::max());
    auto outcome = run(io, [&]() -> net::awaitable<int> {
        auto reader = [&]() -> net::awaitable<void> {
            auto opened = co_await client.open(post());
            if (opened.error) co_return;
            std::string piece;
            while (!opened.response->done()) {
                auto error = co_await opened.response->read_some(piece);
                if (error) break;
                client_leaves.cancel();  // the client goes away once the first piece arrived
            }
        };
        auto winner = co_await (reader() || client_leaves.async_wait(k_tuple));
        co_return static_cast<int>(winner.index());
    }());
    EXPECT_EQ(outcome, 1);
    // The socket was closed by the cancellation itself: the server sees it without any deadline.
    io.restart();
    while (!upstream.client_left) io.run_one();
    EXPECT_EQ(client.busy_connections(), 0);
    EXPECT_EQ(client.idle_connections(), 0);
}

TEST(http_client, max_connections_makes_requests_wait_for_a_free_connection) {
    net::io_context io;
    test_server server(io, chunked_responder);
    auto options = quick_options();
    options.max_connections = 1;
    http_client client(server.origin(), options);
    auto results = run(io, [&]() -> net::awaitable<std::tuple<read_result, read_result, read_result>> {
        co_return co_await (fetch(client) && fetch(client) && fetch(client));
    }());
    for (const auto& result : {std::get<0>(results), std::get<1>(results), std::get<2>(results)}) {
        EXPECT_FALSE(result.open_error) << result.open_error.detail;
        EXPECT_EQ(joined(result.pieces), "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
    }
    EXPECT_EQ(server.accepted(), 1);
}

// After a burst the pool keeps at most pool_max_idle_connections open; the limit is inclusive.
TEST(http_client, idle_connections_beyond_the_cap_close_as_they_come_back) {
    for (const int cap : {2, 3}) {
        net::io_context io;
        test_server server(io, chunked_responder);
        auto options = quick_options();
        options.max_connections = 8;
        options.pool_max_idle_connections = cap;
        http_client client(server.origin(), options);
        auto results = run(io, [&]() -> net::awaitable<std::tuple<read_result, read_result, read_result>> {
            co_return co_await (fetch(client) && fetch(client) && fetch(client));
        }());
        EXPECT_FALSE(std::get<2>(results).open_error) << std::get<2>(results).open_error.detail;
        EXPECT_EQ(server.accepted(), 3);
        EXPECT_EQ(client.idle_connections(), std::min(cap, 3)) << "cap " << cap;
        EXPECT_EQ(client.busy_connections(), 0);
    }
}

// The wait for a slot is pool_wait, not the connect timeout (which starts once a slot is taken).
TEST(http_client, a_full_pool_fails_after_pool_wait) {
    net::io_context io;
    stalling_server upstream{io, k_chunked_head};
    auto options = quick_options();
    options.max_connections = 1;
    options.connect_timeout = 5s;
    options.pool_wait = 200ms;
    http_client client(upstream.server.origin(), options);
    std::chrono::steady_clock::duration waited{};
    auto error = run(io, [&]() -> net::awaitable<upstream_error> {
        auto first = co_await client.open(post());  // holds the only connection
        const auto asked = std::chrono::steady_clock::now();
        auto second = co_await client.open(post());
        waited = std::chrono::steady_clock::now() - asked;
        co_return second.error;
    }());
    EXPECT_EQ(error.kind, upstream_failure::pool_timeout) << error.detail;
    EXPECT_GE(waited, 190ms);
    EXPECT_LT(waited, 2s);
}

// A request that waits less than pool_wait for the slot gets it.
TEST(http_client, a_slot_freed_within_pool_wait_goes_to_the_waiter) {
    net::io_context io;
    test_server server(io, chunked_responder);
    auto options = quick_options();
    options.max_connections = 1;
    options.pool_wait = 2s;
    http_client client(server.origin(), options);
    auto results = run(io, [&]() -> net::awaitable<std::tuple<read_result, read_result>> {
        co_return co_await (fetch(client) && fetch(client));
    }());
    EXPECT_FALSE(std::get<1>(results).open_error) << std::get<1>(results).open_error.detail;
}

// The upstream of the thread-per-core tests, on a thread of its own.
class upstream_thread {
  public:
    upstream_thread() : server_(io_, chunked_responder), work_(net::make_work_guard(io_)) {
        thread_ = std::thread([this] { io_.run(); });
    }
    ~upstream_thread() { stop(); }
    url origin() const { return server_.origin(); }
    // Stops the upstream; after this, accepted() may be read.
    void stop() {
        if (!thread_.joinable()) return;
        work_.reset();
        io_.stop();
        thread_.join();
    }
    int accepted() const { return server_.accepted(); }

  private:
    net::io_context io_;
    test_server server_;
    net::executor_work_guard<net::io_context::executor_type> work_;
    std::thread thread_;
};

// Thread per core: one client shared by two io_contexts, each run by its own thread at the same
// time. Each context opens one connection and then reuses only that one.
TEST(http_client, each_io_context_reuses_only_its_own_connections) {
    upstream_thread upstream;
    net::io_context io_a{1};
    net::io_context io_b{1};
    http_client client(upstream.origin(), quick_options());
    auto fetch_three = [&client](net::io_context& io) {
        std::vector<read_result> results;
        for (int i = 0; i < 3; ++i) results.push_back(run(io, fetch(client)));
        return results;
    };
    auto on_a = std::async(std::launch::async, fetch_three, std::ref(io_a));
    auto on_b = std::async(std::launch::async, fetch_three, std::ref(io_b));
    auto results = on_a.get();
    auto more = on_b.get();
    results.insert(results.end(), more.begin(), more.end());
    for (const auto& result : results) {
        EXPECT_FALSE(result.open_error) << result.open_error.detail;
        EXPECT_FALSE(result.error) << result.error.detail;
        EXPECT_EQ(joined(result.pieces), "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
    }
    EXPECT_EQ(client.connects(), 2u);
    EXPECT_EQ(client.idle_connections(), 2);
    EXPECT_EQ(client.busy_connections(), 0);
    upstream.stop();
    EXPECT_EQ(upstream.accepted(), 2);
}

// max_connections counts every context: a context that needs a connection while another holds the
// only one idle closes that one (on its own thread) rather than go past the limit.
TEST(http_client, max_connections_holds_over_all_io_contexts) {
    upstream_thread upstream;
    net::io_context io_a{1};
    net::io_context io_b{1};
    auto options = quick_options();
    options.max_connections = 1;
    http_client client(upstream.origin(), options);
    for (auto* io : {&io_a, &io_b, &io_a}) {
        auto result = run(*io, fetch(client));
        EXPECT_FALSE(result.open_error) << result.open_error.detail;
        EXPECT_EQ(joined(result.pieces), "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
        EXPECT_EQ(client.idle_connections(), 1);
    }
    EXPECT_EQ(client.connects(), 3u);
}

}  // namespace
}  // namespace sluice
