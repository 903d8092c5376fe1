#pragma once
// A scripted HTTP server for client tests: real sockets on 127.0.0.1 port 0, one coroutine per
// accepted connection, the response bytes written by hand so every framing case can be produced.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include "upstream/url.h"

namespace sluice::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;
constexpr auto k_tuple = net::as_tuple(net::use_awaitable);

class test_server {
  public:
    using handler = std::function<net::awaitable<void>(tcp::socket)>;

    test_server(net::io_context& io, handler on_connection)
        : acceptor_(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
          handler_(std::move(on_connection)) {
        net::co_spawn(io, accept_loop(), net::detached);
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    url origin() const { return *parse_url("http://127.0.0.1:" + std::to_string(port())); }
    int accepted() const { return accepted_; }

  private:
    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(k_tuple);
            if (ec) co_return;
            ++accepted_;
            net::co_spawn(acceptor_.get_executor(), handler_(std::move(socket)), net::detached);
        }
    }

    tcp::acceptor acceptor_;
    handler handler_;
    int accepted_ = 0;
};

// Reads one request head and body; false when the client closed first.
inline net::awaitable<bool> read_request(tcp::socket& socket, boost::beast::flat_buffer& buffer,
                                         std::string* body = nullptr) {
    boost::beast::http::request<boost::beast::http::string_body> request;
    auto [ec, n] = co_await boost::beast::http::async_read(socket, buffer, request, k_tuple);
    if (body) *body = request.body();
    co_return !ec;
}

inline net::awaitable<bool> send(tcp::socket& socket, std::string bytes) {
    auto [ec, n] = co_await net::async_write(socket, net::buffer(bytes), k_tuple);
    co_return !ec;
}

// Completes when the peer closes the connection (or sends something, which these tests never do).
inline net::awaitable<void> wait_for_close(tcp::socket& socket) {
    char byte = 0;
    co_await socket.async_read_some(net::buffer(&byte, 1), k_tuple);
}

inline std::string chunk(const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

// Runs `operation` on `io` until it completes; rethrows its exception.
template <typename T>
T run(net::io_context& io, net::awaitable<T> operation) {
    std::optional<T> result;
    std::exception_ptr error;
    net::co_spawn(io, std::move(operation), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) result.emplace(std::move(value));
        io.stop();
    });
    io.restart();
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

inline void run(net::io_context& io, net::awaitable<void> operation) {
    std::exception_ptr error;
    net::co_spawn(io, std::move(operation), [&](std::exception_ptr e) {
        error = e;
        io.stop();
    });
    io.restart();
    io.run();
    if (error) std::rethrow_exception(error);
}

}  // namespace sluice::testing
