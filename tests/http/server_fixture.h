#pragma once
// A real http_server on 127.0.0.1 port 0, run on its own threads, and a blocking client for it.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <string>
#include <thread>

#include "core/config.h"
#include "http/router.h"
#include "http/server.h"

namespace sluice::test {

class running_server {
  public:
    explicit running_server(router& routes, server_config cfg = {}) : cfg_(std::move(cfg)) {
        cfg_.listen = "127.0.0.1:0";
        if (cfg_.io_threads == 0) cfg_.io_threads = 2;
        server_ = std::make_unique<http_server>(cfg_, routes);
        server_->listen();
        thread_ = std::thread([this] { server_->run(false); });
    }
    ~running_server() {
        server_->stop();
        thread_.join();
    }
    unsigned short port() const { return server_->local_endpoint().port(); }
    http_server& server() { return *server_; }

  private:
    server_config cfg_;
    std::unique_ptr<http_server> server_;
    std::thread thread_;
};

// One connection; requests go out one at a time.
class client {
  public:
    explicit client(unsigned short port) : socket_(io_) {
        socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    }
    boost::beast::http::response<boost::beast::http::string_body> send(http_request request) {
        request.prepare_payload();
        boost::beast::http::write(socket_, request);
        return read();
    }
    boost::beast::http::response<boost::beast::http::string_body> read() {
        boost::beast::http::response_parser<boost::beast::http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        boost::beast::http::read(socket_, buffer_, parser);
        return parser.release();
    }
    void write_raw(const std::string& bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
    // True when the server closed the connection (a read returns EOF or a reset).
    bool closed_by_peer() {
        boost::system::error_code ec;
        char byte;
        if (buffer_.size() > 0) return false;
        socket_.read_some(boost::asio::buffer(&byte, 1), ec);
        return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
    }
    boost::asio::ip::tcp::socket& socket() { return socket_; }
    boost::beast::flat_buffer& buffer() { return buffer_; }

  private:
    boost::asio::io_context io_;
    boost::asio::ip::tcp::socket socket_;
    boost::beast::flat_buffer buffer_;
};

inline http_request make_request(http_verb method, std::string target, std::string body = {}) {
    http_request request{method, target, 11};
    request.set(boost::beast::http::field::host, "127.0.0.1");
    request.body() = std::move(body);
    return request;
}

}  // namespace sluice::test
