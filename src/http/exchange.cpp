#include "http/exchange.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>

#include "core/cancellation.h"

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {
// Bytes a client may pipeline while its previous request streams; past this we stop reading (and
// so stop noticing a disconnect until a write fails) rather than buffer without bound.
constexpr std::size_t k_max_pipelined_bytes = 64 * 1024;
}  // namespace

exchange::exchange(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer, http_request request,
                   bool keep_alive, std::chrono::seconds write_timeout)
    : stream_(stream),
      buffer_(buffer),
      request_(std::move(request)),
      keep_alive_(keep_alive),
      write_timeout_(write_timeout) {}

std::string_view exchange::path() const {
    std::string_view target = request_.target();
    return target.substr(0, target.find('?'));
}

std::string_view exchange::query() const {
    std::string_view target = request_.target();
    auto pos = target.find('?');
    return pos == std::string_view::npos ? std::string_view{} : target.substr(pos + 1);
}

std::string_view exchange::param(std::string_view name) const {
    auto it = params_.find(name);
    return it == params_.end() ? std::string_view{} : std::string_view{it->second};
}

bool exchange::reusable() const {
    if (!keep_alive_ || peer_gone_ || half_closed_ || write_failed_) return false;
    if (sse_ && sse_->started()) return sse_->finished() && !sse_->broken();
    return responded_;
}

net::awaitable<void> exchange::respond(http_response res) {
    if (responded()) throw std::logic_error("exchange: response already sent");
    responded_ = true;
    status_ = static_cast<int>(res.result_int());
    res.version(request_.version());
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    if (write_timeout_.count() > 0) stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await http::async_write(stream_, res, net::as_tuple(net::use_awaitable));
    if (write_timeout_.count() > 0 && ec != boost::beast::error::timeout) stream_.expires_never();
    if (ec) {
        write_failed_ = true;
        throw boost::system::system_error(ec, "response write");
    }
}

net::awaitable<void> exchange::respond_json(http_status status, std::string body) {
    http_response res{status, request_.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    co_await respond(std::move(res));
}

sse_writer::header exchange::sse_head(http_status status) const {
    sse_writer::header head{status, request_.version()};
    head.keep_alive(keep_alive_);
    return head;
}

sse_writer& exchange::open_sse(sse_writer::header head) {
    if (responded()) throw std::logic_error("exchange: response already sent");
    // HTTP/1.0 has no chunked encoding: the stream's end is the connection's.
    if (request_.version() < 11) keep_alive_ = false;
    head.keep_alive(keep_alive_);
    return sse_.emplace(stream_, std::move(head), write_timeout_);
}

net::awaitable<void> exchange::wait_for_disconnect() {
    for (;;) {
        // Cancelled: return (not throw), so that a race this watcher lost ends without an exception.
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (cancellation.cancelled() != net::cancellation_type::none) co_return;
        if (buffer_.size() >= k_max_pipelined_bytes) {
            co_await wait_until_cancelled();
            co_return;
        }
        // Wait for the socket to turn readable before taking a buffer: a stream may wait minutes
        // for its next token, and thousands of them should not each hold a read area meanwhile.
        // After the peer's FIN it stays readable for good: then only an error (a reset, which
        // epoll reports as EPOLLERR | EPOLLHUP) is waited for.
        const auto what = half_closed_ ? net::socket_base::wait_error : net::socket_base::wait_read;
        auto [wait_ec] = co_await stream_.socket().async_wait(what, net::as_tuple(net::use_awaitable));
        if (wait_ec == net::error::operation_aborted) co_return;
        if (wait_ec || half_closed_) {
            peer_gone_ = true;
            co_return;
        }
        boost::system::error_code ec;
        const std::size_t ready = stream_.socket().available(ec);
        // Readable with nothing to read is the peer's FIN (or an error): the read says which, at
        // once, since the socket is readable.
        const std::size_t n =
            stream_.socket().read_some(buffer_.prepare(std::max<std::size_t>(ready, 1)), ec);
        if (ec == net::error::eof) {
            half_closed_ = true;
            const bool alive = !sse_ || sse_->probe();
            if (!alive) {
                peer_gone_ = true;
                co_return;
            }
            continue;
        }
        if (ec) {
            peer_gone_ = true;
            co_return;
        }
        buffer_.commit(n);
    }
}

}  // namespace sluice
