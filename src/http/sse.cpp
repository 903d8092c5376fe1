#include "http/sse.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

std::string sse_event(std::string_view json) {
    std::string out;
    out.reserve(json.size() + 8);
    out.append("data: ").append(json).append("\n\n");
    return out;
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

sse_writer::sse_writer(boost::beast::tcp_stream& stream, header head)
    : stream_(stream), head_(std::move(head)) {
    set_sse_headers(head_);
    head_.chunked(true);
}

// Payloads are named before they are awaited on: GCC 12 can destroy a temporary in a co_await
// expression twice.
net::awaitable<void> sse_writer::event(std::string_view json) {
    auto payload = sse_event(json);
    co_await write_chunk(std::move(payload), false);
}

net::awaitable<void> sse_writer::comment(std::string_view text) {
    auto payload = sse_comment(text);
    co_await write_chunk(std::move(payload), false);
}

net::awaitable<void> sse_writer::finish() {
    std::string payload{k_sse_done};
    co_await write_chunk(std::move(payload), true);
    finished_ = true;
}

net::awaitable<void> sse_writer::write_chunk(std::string payload, bool last) {
    if (broken_ || finished_)
        throw boost::system::system_error(net::error::not_connected, "sse stream closed");
    if (!started_) {
        started_ = true;
        http::response_serializer<http::empty_body> serializer{head_};
        auto [ec, n] =
            co_await http::async_write_header(stream_, serializer, net::as_tuple(net::use_awaitable));
        if (ec) {
            broken_ = true;
            throw boost::system::system_error(ec, "sse header write");
        }
    }
    auto chunk = http::make_chunk(net::buffer(payload));
    std::size_t written = 0;
    boost::system::error_code ec;
    if (last) {
        auto buffers = boost::beast::buffers_cat(chunk, http::make_chunk_last());
        std::tie(ec, written) =
            co_await net::async_write(stream_, buffers, net::as_tuple(net::use_awaitable));
    } else {
        std::tie(ec, written) = co_await net::async_write(stream_, chunk, net::as_tuple(net::use_awaitable));
    }
    if (ec) {
        broken_ = true;
        throw boost::system::system_error(ec, "sse write");
    }
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
    auto [ec, n] = co_await http::async_write(stream_, res, net::as_tuple(net::use_awaitable));
    if (ec) {
        broken_ = true;
        throw boost::system::system_error(ec, "sse error write");
    }
    finished_ = true;
}

}  // namespace sluice
