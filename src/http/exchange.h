#pragma once
// One request and its response on a connection: what a handler reads and writes through.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "http/http_types.h"
#include "http/sse.h"

namespace sluice {

// The API key a request was authenticated with; the secret itself never travels past auth.
struct authenticated_key {
    std::string id;
    std::string name;
    std::optional<limits_config> limits;
};

class exchange {
  public:
    // A response write that does not complete within `write_timeout` (zero: no limit) fails and
    // closes the connection: server.write_timeout_s.
    exchange(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer, http_request request,
             bool keep_alive, std::chrono::seconds write_timeout = std::chrono::seconds{0});

    const http_request& request() const { return request_; }
    std::string_view path() const;  // the target without its query string
    std::string_view query() const;
    // A `{name}` segment of the matched route pattern; empty when absent.
    std::string_view param(std::string_view name) const;
    void set_param(std::string name, std::string value) { params_[std::move(name)] = std::move(value); }

    const std::optional<authenticated_key>& key() const { return key_; }
    void set_key(authenticated_key key) { key_ = std::move(key); }

    bool keep_alive() const { return keep_alive_; }
    void close_after() { keep_alive_ = false; }
    bool responded() const { return responded_ || (sse_ && sse_->started()); }
    // The connection can carry another request after this one.
    bool reusable() const;
    // For metrics: the status sent (0 before any), and when the request had been read.
    int status() const { return responded_ || !sse_ ? status_ : sse_->status(); }
    std::chrono::steady_clock::time_point started_at() const { return started_at_; }

    // Writes a whole response (keep-alive and Content-Length set here).
    boost::asio::awaitable<void> respond(http_response res);
    boost::asio::awaitable<void> respond_json(http_status status, std::string body);

    // Starts (lazily: nothing is written before the first event) an SSE response on this exchange.
    sse_writer& open_sse(sse_writer::header head);
    sse_writer::header sse_head(http_status status = http_status::ok) const;

    // Completes when the peer is gone (peer_gone() is then true): a reset or another socket error.
    // A pending read on the socket, so a disconnect is seen at once. Bytes that arrive meanwhile (a
    // pipelined request) are kept for the connection. The end of the client's data (a half-close,
    // `shutdown(SHUT_WR)` after the request) is not a disconnect: the answer still goes out, and
    // from then on only a socket error counts. So that a peer that closed both ways is still seen
    // at once, the SSE response (if any) probes it with a `: ping`, which such a peer answers with a
    // reset. Cancel through the cancellation slot: it then returns without throwing, with
    // peer_gone() false.
    boost::asio::awaitable<void> wait_for_disconnect();
    bool peer_gone() const { return peer_gone_; }
    bool peer_half_closed() const { return half_closed_; }

    boost::beast::tcp_stream& stream() { return stream_; }

  private:
    boost::beast::tcp_stream& stream_;
    boost::beast::flat_buffer& buffer_;
    http_request request_;
    bool keep_alive_;
    bool responded_ = false;
    bool peer_gone_ = false;
    bool half_closed_ = false;
    bool write_failed_ = false;
    std::chrono::seconds write_timeout_;
    int status_ = 0;
    std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
    std::optional<sse_writer> sse_;
    std::optional<authenticated_key> key_;
    std::map<std::string, std::string, std::less<>> params_;
};

}  // namespace sluice
