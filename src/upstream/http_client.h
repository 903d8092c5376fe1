#pragma once
// An HTTP/1.1 client for one upstream origin (http:// or https://) with a keep-alive pool, that
// streams response bodies piece by piece as they arrive. Every wait has a deadline; cancelling the
// calling coroutine (its cancellation slot) closes the connection at once and never pools it.
//
// A client may be shared by coroutines on several io_contexts (one thread each): every connection
// is opened on, used by and pooled for the io_context of the coroutine that calls open().
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "upstream/connection_pool.h"
#include "upstream/upstream_error.h"
#include "upstream/url.h"

namespace sluice {

struct http_client_options {
    std::chrono::milliseconds connect_timeout{5000};      // TCP connect + TLS handshake
    std::chrono::milliseconds first_byte_timeout{60000};  // request sent → response head
    std::chrono::milliseconds idle_timeout{60000};        // gap between two body pieces
    std::chrono::milliseconds request_timeout{300000};    // the whole exchange
    int max_connections = 1024;
    std::chrono::milliseconds pool_wait{2000};  // for a free connection when max_connections are busy
    std::chrono::milliseconds pool_max_idle{30000};
    int pool_max_idle_connections = 1024;  // more idle than this close as they come back
    std::string extra_ca_pem;              // PEM certificates trusted besides the system store
};

struct upstream_request {
    boost::beast::http::verb method = boost::beast::http::verb::post;
    std::string target;                  // e.g. "/v1/chat/completions"
    boost::beast::http::fields headers;  // Host, User-Agent and Content-Length are added
    std::string body;
};

class upstream_response {
  public:
    using parser_type = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
    static constexpr std::size_t k_small_read = 1024;       // while the upstream is slow
    static constexpr std::size_t k_large_read = 16 * 1024;  // while it fills whole pieces

    upstream_response(std::shared_ptr<connection_pool> pool, std::unique_ptr<upstream_connection> connection,
                      std::unique_ptr<parser_type> parser, http_client_options options, steady_time deadline);
    ~upstream_response();
    upstream_response(const upstream_response&) = delete;
    upstream_response& operator=(const upstream_response&) = delete;

    unsigned status() const;
    const boost::beast::http::fields& headers() const;

    // Replaces `out` with the next body bytes as soon as some arrive; at the end of the body it
    // returns with `out` empty and done() true. An error closes the connection.
    boost::asio::awaitable<upstream_error> read_some(std::string& out);

    // Reads the rest of the body, keeping at most `limit` bytes (for error bodies).
    boost::asio::awaitable<std::pair<std::string, upstream_error>> read_all(std::size_t limit);

    // Reads and drops what is left of the body, so that the connection goes back to the pool; when
    // that takes longer than `within` the connection is closed instead. True when the body ended.
    boost::asio::awaitable<bool> finish_body(std::chrono::milliseconds within);

    bool done() const { return done_; }
    // How many bytes the next read may take: k_large_read, or k_small_read while the upstream is slow.
    std::size_t read_size() const { return piece_size_; }

    // Closes the connection now (it is not pooled); later reads fail with `closed`.
    void abort();

  private:
    template <typename Stream>
    boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> read_piece(Stream& stream,
                                                                                         char* data,
                                                                                         std::size_t size);
    void finish();
    // Close the connection and say why a read failed.
    upstream_error read_failure(const boost::system::error_code& ec, bool total_deadline);
    upstream_error cancelled_read();
    // Parses what the read buffer holds into data[0, size), without reading: the body bytes.
    std::size_t parse_buffered(char* data, std::size_t size, boost::system::error_code& ec);
    // Shrinks the read buffers after a run of small reads, grows them on a big one.
    void fit_read_size(std::size_t got);

    std::shared_ptr<connection_pool> pool_;
    std::unique_ptr<upstream_connection> connection_;
    std::unique_ptr<parser_type> parser_;
    http_client_options options_;
    steady_time deadline_;
    std::unique_ptr<char[]> piece_;  // read_some's buffer (piece_size_ bytes)
    std::size_t piece_size_ = k_small_read;
    int small_reads_ = 0;  // reads in a row that would have fitted the small size
    bool done_ = false;
    bool slot_held_ = true;
};

struct open_result {
    std::unique_ptr<upstream_response> response;  // set on success, whatever the HTTP status
    upstream_error error;
};

class http_client {
  public:
    // Throws config_error when options.extra_ca_pem cannot be loaded.
    http_client(url origin, http_client_options options);

    // Takes a pooled connection (or connects), sends the request and reads the response head.
    // A pooled connection that turns out closed by the server is replaced once, transparently.
    boost::asio::awaitable<open_result> open(upstream_request request);

    const url& origin() const { return pool_->origin(); }
    const http_client_options& options() const { return options_; }
    int idle_connections() const { return pool_->idle_count(); }
    int busy_connections() const { return pool_->in_use_count(); }
    std::uint64_t connects() const { return pool_->connects(); }  // new connections made so far

  private:
    http_client_options options_;
    std::shared_ptr<connection_pool> pool_;
};

}  // namespace sluice
