// Request framing (RFC 9112 §6): a head whose body length cannot be trusted is answered once and the
// connection closed, so bytes after it are never served as a second request (request smuggling).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>

#include "http/server.h"
#include "server_fixture.h"

namespace sluice {
namespace {

std::atomic<int> smuggled_runs{0};

router framing_router() {
    router routes;
    route_options open{.needs_auth = false};
    routes.add(
        http_verb::post, "/echo",
        [](exchange& ex) -> boost::asio::awaitable<void> {
            std::string body = "[" + ex.request().body() + "]";
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
        http_verb::get, "/smuggled",
        [](exchange& ex) -> boost::asio::awaitable<void> {
            ++smuggled_runs;
            co_await ex.respond_json(http_status::ok, "SMUGGLED");
        },
        open);
    return routes;
}

struct raw_reply {
    std::string bytes;
    bool closed = false;  // the server closed the connection (rather than the read timing out)
};

// Sends `bytes` on a fresh connection and reads until the server closes it, or 3 s pass.
raw_reply send_raw(unsigned short port, const std::string& bytes) {
    test::client c{port};
    timeval timeout{.tv_sec = 3, .tv_usec = 0};
    ::setsockopt(c.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    c.write_raw(bytes);
    raw_reply reply;
    std::array<char, 4096> data{};
    for (;;) {
        boost::system::error_code ec;
        const auto n = c.socket().read_some(boost::asio::buffer(data), ec);
        reply.bytes.append(data.data(), n);
        if (ec) {
            reply.closed = ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
            return reply;
        }
    }
}

// Status lines: "HTTP/1.x " at the start or right after the previous body (JSON, or "[echo]").
int count_responses(const std::string& bytes) {
    int count = 0;
    for (auto pos = bytes.find("HTTP/1."); pos != std::string::npos; pos = bytes.find("HTTP/1.", pos + 1)) {
        if (pos == 0 || bytes[pos - 1] == '}' || bytes[pos - 1] == ']' || bytes[pos - 1] == '\n') ++count;
    }
    return count;
}

constexpr std::string_view k_second = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

class framing : public ::testing::Test {
  protected:
    void SetUp() override { smuggled_runs = 0; }
    router routes_ = framing_router();
    test::running_server server_{routes_};

    // The head (and body) of one bad request, then a second request on the same connection: exactly
    // one answer with `status`, the connection closed, the second never run.
    void expect_rejected_alone(const std::string& first, int status) {
        SCOPED_TRACE(first);
        const auto reply = send_raw(server_.port(), first + std::string(k_second));
        EXPECT_TRUE(reply.closed) << reply.bytes;
        EXPECT_EQ(count_responses(reply.bytes), 1) << reply.bytes;
        EXPECT_EQ(reply.bytes.substr(0, 13).substr(8), " " + std::to_string(status) + " ") << reply.bytes;
        EXPECT_EQ(reply.bytes.find("SMUGGLED"), std::string::npos) << reply.bytes;
        if (reply.bytes.rfind("HTTP/1.1", 0) == 0) {
            EXPECT_NE(reply.bytes.find("Connection: close"), std::string::npos) << reply.bytes;
        }
        EXPECT_EQ(smuggled_runs.load(), 0);
    }
};

TEST_F(framing, a_transfer_encoding_that_does_not_end_in_chunked_is_400_and_closes) {
    for (const char* coding : {"xchunked", "identity", "gzip", "chunked, identity", "chunkedx", ""}) {
        expect_rejected_alone(
            std::string("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + coding + "\r\n\r\n", 400);
    }
    // Split over two lines, the last coding is still identity.
    expect_rejected_alone(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
        400);
}

TEST_F(framing, a_coding_before_chunked_is_501_and_closes) {
    expect_rejected_alone(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
}

TEST_F(framing, every_framing_error_closes_the_connection_after_its_reply) {
    // Transfer-Encoding and Content-Length together.
    expect_rejected_alone(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        "0\r\n\r\n",
        400);
    // Bad or conflicting Content-Length.
    expect_rejected_alone("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400);
    expect_rejected_alone("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
    expect_rejected_alone(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400);
    expect_rejected_alone("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 3\r\n\r\nab", 400);
    // Bad chunk framing.
    expect_rejected_alone(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400);
    // Transfer-Encoding in HTTP/1.0, which has none.
    expect_rejected_alone("POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                          400);
    // A head over the limit.
    expect_rejected_alone(
        "GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n", 431);
}

TEST_F(framing, http11_needs_exactly_one_host) {
    expect_rejected_alone("GET /items/1 HTTP/1.1\r\n\r\n", 400);
    expect_rejected_alone("GET /items/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    // HTTP/1.0 may leave it out.
    const auto reply = send_raw(server_.port(), "GET /items/10 HTTP/1.0\r\n\r\n");
    EXPECT_EQ(reply.bytes.rfind("HTTP/1.0 200", 0), 0u) << reply.bytes;
}

TEST_F(framing, well_framed_requests_still_share_a_connection) {
    const auto reply = send_raw(server_.port(),
                                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "2\r\nab\r\n0\r\n\r\n"
                                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\ncd"
                                "GET /items/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(count_responses(reply.bytes), 3) << reply.bytes;
    EXPECT_NE(reply.bytes.find("[ab]"), std::string::npos) << reply.bytes;
    EXPECT_NE(reply.bytes.find("[cd]"), std::string::npos) << reply.bytes;
    EXPECT_NE(reply.bytes.find("2|"), std::string::npos) << reply.bytes;
}

TEST_F(framing, an_absolute_form_target_is_routed_by_its_path) {
    const auto reply =
        send_raw(server_.port(),
                 "POST http://example.com/echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nok"
                 "GET HTTP://example.com:8080/items/7?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                 "Connection: close\r\n\r\n");
    EXPECT_EQ(count_responses(reply.bytes), 2) << reply.bytes;
    EXPECT_NE(reply.bytes.find("[ok]"), std::string::npos) << reply.bytes;
    EXPECT_NE(reply.bytes.find("7|q=1"), std::string::npos) << reply.bytes;
}

}  // namespace
}  // namespace sluice
