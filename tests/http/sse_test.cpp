// SSE framing and the chunked writer over a real socket pair on 127.0.0.1.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "http/sse.h"

namespace sluice {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

TEST(sse_framing, event_comment_done) {
    EXPECT_EQ(sse_event(R"({"content":"a"})"), "data: {\"content\":\"a\"}\n\n");
    EXPECT_EQ(sse_comment("ping"), ": ping\n\n");
    EXPECT_EQ(k_sse_done, "data: [DONE]\n\n");
}

TEST(sse_framing, error_response_is_one_event_and_done) {
    auto res = sse_error_response(http_status::too_many_requests, R"({"error":"slow down"})", 7, 11, true);
    EXPECT_EQ(res.result_int(), 429);
    EXPECT_EQ(res[http::field::content_type], "text/event-stream");
    EXPECT_EQ(res[http::field::cache_control], "no-cache");
    EXPECT_EQ(res["X-Accel-Buffering"], "no");
    EXPECT_EQ(res[http::field::retry_after], "7");
    EXPECT_EQ(res.body(), "data: {\"error\":\"slow down\"}\n\ndata: [DONE]\n\n");
    EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
}

// Runs `write` as the server side of a fresh connection and returns what a client parsed: the
// response head and each chunk body as it arrived.
struct captured {
    http::response<http::string_body> response;
    std::vector<std::string> chunks;
};

captured capture(std::function<net::awaitable<void>(boost::beast::tcp_stream&)> write) {
    net::io_context io;
    tcp::acceptor acceptor{io, {net::ip::make_address("127.0.0.1"), 0}};
    tcp::socket client{io};
    client.connect(acceptor.local_endpoint());
    boost::beast::tcp_stream server{acceptor.accept()};
    auto done = net::co_spawn(io, write(server), net::use_future);
    std::thread runner{[&] { io.run(); }};
    done.get();
    server.socket().shutdown(tcp::socket::shutdown_send);

    captured out;
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    std::function<std::size_t(std::uint64_t, boost::string_view, boost::system::error_code&)> on_body =
        [&](std::uint64_t, boost::string_view body, boost::system::error_code&) {
            out.chunks.back().append(body.data(), body.size());
            return body.size();
        };
    std::function<void(std::uint64_t, boost::string_view, boost::system::error_code&)> on_header =
        [&](std::uint64_t, boost::string_view, boost::system::error_code&) { out.chunks.emplace_back(); };
    parser.on_chunk_header(on_header);
    parser.on_chunk_body(on_body);
    http::read(client, buffer, parser);
    out.response = parser.release();
    runner.join();
    if (!out.chunks.empty() && out.chunks.back().empty()) out.chunks.pop_back();  // the last chunk
    return out;
}

TEST(sse_writer, writes_nothing_until_the_first_event_then_one_chunk_per_event) {
    auto got = capture([](boost::beast::tcp_stream& stream) -> net::awaitable<void> {
        sse_writer::header head{http_status::ok, 11};
        head.set("X-Sluice-Route", "test");
        sse_writer writer{stream, head};
        EXPECT_FALSE(writer.started());
        co_await writer.comment("ping");
        EXPECT_TRUE(writer.started());
        co_await writer.event(R"({"content":"Hel"})");
        co_await writer.event(R"({"content":"lo"})");
        co_await writer.finish();
        EXPECT_TRUE(writer.finished());
        EXPECT_FALSE(writer.broken());
    });
    EXPECT_EQ(got.response.result_int(), 200);
    EXPECT_EQ(got.response[http::field::content_type], "text/event-stream");
    EXPECT_EQ(got.response[http::field::cache_control], "no-cache");
    EXPECT_EQ(got.response["X-Accel-Buffering"], "no");
    EXPECT_EQ(got.response["X-Sluice-Route"], "test");
    EXPECT_TRUE(got.response.chunked());
    std::vector<std::string> expected{": ping\n\n", "data: {\"content\":\"Hel\"}\n\n",
                                      "data: {\"content\":\"lo\"}\n\n", "data: [DONE]\n\n"};
    EXPECT_EQ(got.chunks, expected);
}

TEST(sse_writer, fail_before_start_sends_the_status_and_one_event) {
    auto got = capture([](boost::beast::tcp_stream& stream) -> net::awaitable<void> {
        sse_writer writer{stream, sse_writer::header{http_status::ok, 11}};
        co_await writer.fail(http_status::bad_gateway, R"({"error":"upstream failed","code":502})", 0);
        EXPECT_TRUE(writer.finished());
    });
    EXPECT_EQ(got.response.result_int(), 502);
    EXPECT_FALSE(got.response.chunked());
    EXPECT_EQ(got.response.body(), "data: {\"error\":\"upstream failed\",\"code\":502}\n\ndata: [DONE]\n\n");
}

TEST(sse_writer, a_write_to_a_closed_peer_marks_it_broken) {
    net::io_context io;
    tcp::acceptor acceptor{io, {net::ip::make_address("127.0.0.1"), 0}};
    auto client = std::make_unique<tcp::socket>(io);
    client->connect(acceptor.local_endpoint());
    boost::beast::tcp_stream server{acceptor.accept()};
    client->set_option(net::socket_base::linger(true, 0));
    client.reset();  // RST
    bool threw = false;
    bool broken = false;
    auto done = net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            sse_writer writer{server, sse_writer::header{http_status::ok, 11}};
            try {
                for (int i = 0; i < 100; ++i) co_await writer.event(std::string(1000, 'x'));
            } catch (const boost::system::system_error&) {
                threw = true;
            }
            broken = writer.broken();
        },
        net::use_future);
    io.run();
    done.get();
    EXPECT_TRUE(threw);
    EXPECT_TRUE(broken);
}

TEST(sse_batch, frames_each_event_as_its_own_chunk) {
    sse_batch batch;
    EXPECT_TRUE(batch.empty());
    batch.add_event(R"({"content":"a"})");
    batch.add_comment("ping");
    batch.begin_event().append(std::string(300, 'x'));
    batch.end_event();
    const std::string big = "data: " + std::string(300, 'x') + "\n\n";
    char size[16];
    std::snprintf(size, sizeof size, "%zx", big.size());
    EXPECT_EQ(batch.wire_bytes(), "17\r\ndata: {\"content\":\"a\"}\n\n\r\n8\r\n: ping\n\n\r\n" +
                                      std::string(size) + "\r\n" + big + "\r\n");
    batch.clear();
    EXPECT_TRUE(batch.empty());
    batch.add_event("");
    EXPECT_EQ(batch.wire_bytes(), "8\r\ndata: \n\n\r\n");
}

TEST(sse_writer, a_batch_goes_out_as_the_same_chunks_as_single_events) {
    auto got = capture([](boost::beast::tcp_stream& stream) -> net::awaitable<void> {
        sse_writer writer{stream, sse_writer::header{http_status::ok, 11}};
        sse_batch batch;
        batch.add_event(R"({"content":"Hel"})");
        batch.add_event(R"({"content":"lo"})");
        auto ec = co_await writer.send(batch, false);
        EXPECT_FALSE(ec);
        EXPECT_TRUE(writer.started());
        batch.clear();
        batch.add_event(R"({"done":true})");
        ec = co_await writer.send(batch, true);
        EXPECT_FALSE(ec);
        EXPECT_TRUE(writer.finished());
        ec = co_await writer.send(batch, false);
        EXPECT_EQ(ec, net::error::not_connected);
    });
    EXPECT_EQ(got.response.result_int(), 200);
    EXPECT_EQ(got.response[http::field::content_type], "text/event-stream");
    EXPECT_TRUE(got.response.chunked());
    std::vector<std::string> expected{"data: {\"content\":\"Hel\"}\n\n", "data: {\"content\":\"lo\"}\n\n",
                                      "data: {\"done\":true}\n\n", "data: [DONE]\n\n"};
    EXPECT_EQ(got.chunks, expected);
}

// HTTP/1.0 has no chunked encoding: the events go out bare, and the close ends the body.
TEST(sse_writer, an_http10_response_is_unchunked_and_says_connection_close) {
    auto got = capture([](boost::beast::tcp_stream& stream) -> net::awaitable<void> {
        sse_writer::header head{http_status::ok, 10};
        head.keep_alive(true);  // asked for by the client; a stream without a length cannot keep it
        sse_writer writer{stream, head};
        co_await writer.comment("ping");
        sse_batch batch;
        batch.add_event(R"({"content":"Hel"})");
        batch.add_event(R"({"content":"lo"})");
        auto ec = co_await writer.send(batch, true);
        EXPECT_FALSE(ec);
    });
    EXPECT_EQ(got.response.version(), 10u);
    EXPECT_FALSE(got.response.chunked());
    EXPECT_EQ(got.response[http::field::connection], "close");
    EXPECT_EQ(got.response.count(http::field::content_length), 0u);
    EXPECT_EQ(got.response.body(),
              ": ping\n\ndata: {\"content\":\"Hel\"}\n\ndata: {\"content\":\"lo\"}\n\ndata: [DONE]\n\n");
}

// probe() (after a half-close) starts the response with the head and a ping; the events follow.
TEST(sse_writer, a_probe_sends_the_head_and_a_ping_then_the_stream_goes_on) {
    auto got = capture([](boost::beast::tcp_stream& stream) -> net::awaitable<void> {
        sse_writer writer{stream, sse_writer::header{http_status::ok, 11}};
        EXPECT_TRUE(writer.probe());
        EXPECT_TRUE(writer.started());
        co_await writer.event(R"({"content":"a"})");
        EXPECT_TRUE(writer.probe());
        co_await writer.finish();
    });
    EXPECT_EQ(got.response.result_int(), 200);
    EXPECT_TRUE(got.response.chunked());
    std::vector<std::string> expected{": ping\n\n", "data: {\"content\":\"a\"}\n\n", ": ping\n\n",
                                      "data: [DONE]\n\n"};
    EXPECT_EQ(got.chunks, expected);
}

// A peer that never reads: the write fails with a timeout after write_timeout, not never.
TEST(sse_writer, a_write_that_makes_no_progress_fails_after_write_timeout) {
    using namespace std::chrono_literals;
    net::io_context io;
    tcp::acceptor acceptor{io, {net::ip::make_address("127.0.0.1"), 0}};
    tcp::socket client{io, tcp::v4()};
    client.set_option(net::socket_base::receive_buffer_size(4096));
    client.connect(acceptor.local_endpoint());
    boost::beast::tcp_stream server{acceptor.accept()};
    boost::system::error_code failure;
    std::chrono::steady_clock::duration stalled{};
    auto done = net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            sse_writer writer{server, sse_writer::header{http_status::ok, 11}, 1s};
            sse_batch batch;
            batch.add_event(std::string(64 * 1024, 'x'));
            for (int i = 0; i < 1000 && !failure; ++i) {  // 64 MB at most: far past any socket buffer
                const auto began = std::chrono::steady_clock::now();
                failure = co_await writer.send(batch, false);
                stalled = std::chrono::steady_clock::now() - began;
            }
            EXPECT_TRUE(writer.broken());
        },
        net::use_future);
    io.run();
    done.get();
    EXPECT_EQ(failure, boost::beast::error::timeout);
    EXPECT_GE(stalled, 900ms);
    EXPECT_LT(stalled, 5s);
}

}  // namespace
}  // namespace sluice
