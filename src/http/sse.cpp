#include "http/sse.h"

#include <sys/socket.h>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>

#include <cerrno>
#include <charconv>
#include <span>

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

std::string sse_event(std::string_view json) {
    std::string out;
    out.reserve(json.size() + 8);
    out.append("data: ").append(json).append("\n\n");
    return out;
}

std::string& sse_batch::begin_event() {
    open_chunk();
    bytes_.append("data: ");
    return bytes_;
}

void sse_batch::end_event() {
    bytes_.append("\n\n");
    close_chunk();
}

void sse_batch::add_event(std::string_view json) {
    begin_event().append(json);
    end_event();
}

void sse_batch::add_named_event(std::string_view name, std::string_view json) {
    open_chunk();
    bytes_.append("event: ").append(name).append("\ndata: ").append(json).append("\n\n");
    close_chunk();
}

void sse_batch::add_comment(std::string_view text) {
    open_chunk();
    bytes_.append(": ").append(text).append("\n\n");
    close_chunk();
}

void sse_batch::add_raw(std::string_view sse_text) {
    open_chunk();
    bytes_.append(sse_text);
    close_chunk();
}

void sse_batch::open_chunk() {
    chunk_start_ = bytes_.size();
    bytes_.append(k_size_room, ' ');
}

// The size line goes right before the event, and the room it did not use is closed up.
void sse_batch::close_chunk() {
    const std::size_t event_start = chunk_start_ + k_size_room;
    const std::size_t size = bytes_.size() - event_start;
    std::array<char, k_size_room> line{};
    const auto end = std::to_chars(line.data(), line.data() + k_size_room - 2, size, 16).ptr;
    end[0] = '\r';
    end[1] = '\n';
    const auto line_size = static_cast<std::size_t>(end + 2 - line.data());
    const std::size_t line_start = event_start - line_size;
    bytes_.replace(line_start, line_size, line.data(), line_size);
    bytes_.erase(chunk_start_, line_start - chunk_start_);
    bytes_.append("\r\n");
}

std::string sse_comment(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 4);
    out.append(": ").append(text).append("\n\n");
    return out;
}

http_response sse_error_response(http_status status, std::string_view event_json, int retry_after_s,
                                 unsigned http_version, bool keep_alive) {
    http_response res{status, http_version};
    set_sse_headers(res);
    if (retry_after_s > 0) res.set(http::field::retry_after, std::to_string(retry_after_s));
    res.body() = sse_event(event_json);
    res.body().append(k_sse_done);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

namespace {
// The events of a chunk-framed batch (`<hex size>\r\n<event>\r\n`...) without the framing.
void append_unframed(std::string& out, std::string_view framed) {
    while (!framed.empty()) {
        std::size_t size = 0;
        const auto [end, ec] = std::from_chars(framed.data(), framed.data() + framed.size(), size, 16);
        const auto line_end = framed.find("\r\n");
        if (ec != std::errc{} || line_end == std::string_view::npos || end != framed.data() + line_end ||
            line_end + 2 + size + 2 > framed.size()) {
            return;  // sse_batch never makes such bytes
        }
        out.append(framed.substr(line_end + 2, size));
        framed.remove_prefix(line_end + 2 + size + 2);
    }
}
}  // namespace

sse_writer::sse_writer(boost::beast::tcp_stream& stream, header head, std::chrono::seconds write_timeout)
    : stream_(stream), head_(std::move(head)), write_timeout_(write_timeout) {
    set_sse_headers(head_);
    chunked_ = head_.version() >= 11;
    if (chunked_) {
        head_.chunked(true);
    } else {
        // No length is known and HTTP/1.0 has no chunks: the body ends when the connection closes.
        head_.keep_alive(false);
        head_.set(http::field::connection, "close");
    }
}

// The deadline is the stream's own timer: on expiry Beast closes the socket, the write fails with
// beast::error::timeout, and the caller sees what any failed write means, a client that left.
net::awaitable<boost::system::error_code> sse_writer::write(std::span<const net::const_buffer> buffers) {
    writing_ = true;
    if (write_timeout_.count() > 0) stream_.expires_after(write_timeout_);
    auto [ec, written] = co_await net::async_write(stream_, buffers, net::as_tuple(net::use_awaitable));
    if (write_timeout_.count() > 0 && ec != boost::beast::error::timeout) stream_.expires_never();
    writing_ = false;
    co_return ec;
}

// Batches are named before they are awaited on: GCC 12 can destroy a temporary in a co_await
// expression twice.
net::awaitable<void> sse_writer::event(std::string_view json) {
    sse_batch batch;
    batch.add_event(json);
    auto ec = co_await send(batch, false);
    if (ec) throw boost::system::system_error(ec, "sse write");
}

net::awaitable<void> sse_writer::comment(std::string_view text) {
    sse_batch batch;
    batch.add_comment(text);
    auto ec = co_await send(batch, false);
    if (ec) throw boost::system::system_error(ec, "sse write");
}

net::awaitable<void> sse_writer::finish() {
    const sse_batch nothing;
    auto ec = co_await send(nothing, true);
    if (ec) throw boost::system::system_error(ec, "sse write");
}

// The head is serialized here rather than written on its own: it leaves with the first event. Not
// in send(): a coroutine's frame would keep the serializer while the write waits, and head_'s
// fields are let go once they are bytes.
boost::system::error_code sse_writer::serialize_head() {
    http::response_serializer<http::empty_body> serializer{head_};
    serializer.split(true);
    boost::system::error_code ec;
    while (!ec && !serializer.is_header_done()) {
        serializer.next(ec, [&](boost::system::error_code&, const auto& pieces) {
            for (const auto piece : boost::beast::buffers_range_ref(pieces))
                head_bytes_.append(static_cast<const char*>(piece.data()), piece.size());
            serializer.consume(boost::asio::buffer_size(pieces));
        });
    }
    if (!ec) head_.clear();  // the status stays, for status()
    return ec;
}

net::awaitable<boost::system::error_code> sse_writer::send(const sse_batch& batch, bool last) {
    // [DONE] in its own chunk, then the last chunk: what make_chunk + make_chunk_last write.
    static constexpr std::string_view k_done_and_end = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    static constexpr std::string_view k_end = "0\r\n\r\n";
    static_assert(k_sse_done.size() == 0xe);
    if (broken_ || finished_) co_return net::error::not_connected;
    std::array<net::const_buffer, 4> buffers;
    std::size_t count = 0;
    if (!pending_.empty()) buffers[count++] = net::buffer(pending_);
    if (!started_) {
        started_ = true;
        const auto ec = serialize_head();
        if (ec) {
            broken_ = true;
            co_return ec;
        }
        buffers[count++] = net::buffer(head_bytes_);
    }
    if (chunked_) {
        if (!batch.empty()) buffers[count++] = net::buffer(batch.wire_bytes());
        if (last) buffers[count++] = net::buffer(done_marker_ ? k_done_and_end : k_end);
    } else {
        append_unframed(bare_, batch.wire_bytes());
        if (last && done_marker_) bare_.append(k_sse_done);
        if (!bare_.empty()) buffers[count++] = net::buffer(bare_);
    }
    const std::span<const net::const_buffer> to_write(buffers.data(), count);
    auto ec = co_await write(to_write);
    if (!head_bytes_.empty()) std::string{}.swap(head_bytes_);
    if (!pending_.empty()) std::string{}.swap(pending_);
    if (!bare_.empty()) std::string{}.swap(bare_);
    if (ec) {
        broken_ = true;
        co_return ec;
    }
    if (last) finished_ = true;
    co_return boost::system::error_code{};
}

net::awaitable<void> sse_writer::fail(http_status status, std::string_view event_json, int retry_after_s) {
    if (started_) throw std::logic_error("sse_writer::fail after the stream started");
    started_ = true;
    head_.result(status);
    auto res = sse_error_response(status, event_json, retry_after_s, head_.version(), head_.keep_alive());
    for (const auto& field : head_) {
        if (res.find(field.name_string()) == res.end()) res.set(field.name_string(), field.value());
    }
    res.chunked(false);
    res.prepare_payload();
    writing_ = true;
    if (write_timeout_.count() > 0) stream_.expires_after(write_timeout_);
    auto [ec, n] = co_await http::async_write(stream_, res, net::as_tuple(net::use_awaitable));
    if (write_timeout_.count() > 0 && ec != boost::beast::error::timeout) stream_.expires_never();
    writing_ = false;
    if (ec) {
        broken_ = true;
        throw boost::system::system_error(ec, "sse error write");
    }
    finished_ = true;
}

bool sse_writer::probe() {
    if (writing_ || broken_ || finished_) return true;
    std::string bytes = std::move(pending_);
    pending_.clear();
    if (!started_) {
        started_ = true;
        if (serialize_head()) {
            broken_ = true;
            return true;
        }
        bytes += head_bytes_;
        std::string{}.swap(head_bytes_);
    }
    bytes += chunked_ ? "8\r\n: ping\n\n\r\n" : ": ping\n\n";
    const auto sent =
        ::send(stream_.socket().native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        broken_ = true;
        return false;
    }
    if (sent > 0) bytes.erase(0, static_cast<std::size_t>(sent));
    pending_ = std::move(bytes);
    return true;
}

}  // namespace sluice
