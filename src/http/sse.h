#pragma once
// Server-Sent Events over HTTP/1.1 chunked transfer encoding. Each event goes out in its own chunk;
// several events given together (an sse_batch) leave in one socket write. A write completes before
// the caller produces the next one, so a slow reader slows the producer instead of filling a buffer.
// HTTP/1.0 has no chunked encoding: to an HTTP/1.0 client the events go out bare and the end of the
// body is the connection closing (Connection: close).
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "http/http_types.h"

namespace sluice {

// "data: <json>\n\n": one whole JSON object per data line (the JSON must hold no raw newline,
// which serialized JSON never does).
std::string sse_event(std::string_view json);

// Events framed for the wire, each as its own HTTP chunk (`<hex size>\r\n<event>\r\n`, what
// sse_writer::event writes alone), to go out together in one write. Reused: clear() keeps the memory.
class sse_batch {
  public:
    // Opens a `data:` event; append one JSON object (no raw newline) to the returned buffer, then
    // call end_event().
    std::string& begin_event();
    void end_event();
    void add_event(std::string_view json);
    // "event: <name>\ndata: <json>\n\n", for the APIs that name their events (Anthropic's).
    void add_named_event(std::string_view name, std::string_view json);
    void add_comment(std::string_view text);
    // One event given whole as SSE text ("id: 3\ndata: {...}\n\n", "retry: 1000\n\n"), as its chunk.
    void add_raw(std::string_view sse_text);

    bool empty() const { return bytes_.empty(); }
    void clear() { bytes_.clear(); }
    // clear() that also gives the memory back, for a batch that may now sit idle for long.
    void release() { std::string{}.swap(bytes_); }
    std::string_view wire_bytes() const { return bytes_; }

  private:
    // Room left for the chunk-size line before an event whose size is not known yet.
    static constexpr std::size_t k_size_room = 10;  // 8 hex digits + CRLF
    void open_chunk();
    void close_chunk();

    std::string bytes_;
    std::size_t chunk_start_ = 0;
};
// ": <text>\n\n", a comment line clients ignore; keeps proxies and readers from timing out.
std::string sse_comment(std::string_view text);
inline constexpr std::string_view k_sse_done = "data: [DONE]\n\n";

// The headers every SSE response carries (SPEC §3), set on `res`.
template <class Fields>
void set_sse_headers(Fields& res) {
    res.set(boost::beast::http::field::content_type, "text/event-stream");
    res.set(boost::beast::http::field::cache_control, "no-cache");
    res.set("X-Accel-Buffering", "no");
}

// A complete (not chunked) SSE response: one error event then [DONE], with a real status. Used
// when nothing was sent yet, so the status can still carry the error.
http_response sse_error_response(http_status status, std::string_view event_json, int retry_after_s,
                                 unsigned http_version, bool keep_alive);

class sse_writer {
  public:
    using header = boost::beast::http::response<boost::beast::http::empty_body>;

    // `head` carries the status, keep-alive and any extra headers; the SSE headers and chunked
    // encoding (HTTP/1.1; HTTP/1.0 gets Connection: close instead) are added here. Nothing is
    // written before the first event, comment, fail() or probe(). A write that has not completed
    // within `write_timeout` (zero: no limit) fails with beast::error::timeout and closes the socket:
    // a client that stops reading is a client that left.
    sse_writer(boost::beast::tcp_stream& stream, header head,
               std::chrono::seconds write_timeout = std::chrono::seconds{0});

    bool started() const { return started_; }
    int status() const { return static_cast<int>(head_.result_int()); }  // for metrics
    bool finished() const { return finished_; }
    // A write failed or was cancelled part-way: the byte stream is unusable, close the connection.
    bool broken() const { return broken_; }
    // Whether the last write sends data: [DONE] before the end (the seed and OpenAI chat streams do;
    // Anthropic's and the Responses API's end with their own last event).
    void set_done_marker(bool done_marker) { done_marker_ = done_marker; }

    boost::asio::awaitable<void> event(std::string_view json);
    boost::asio::awaitable<void> comment(std::string_view text);
    // data: [DONE] and the last chunk; the connection may then carry the next request.
    boost::asio::awaitable<void> finish();
    // The events of `batch` in one socket write, with the response head when it is the first write;
    // with `last`, data: [DONE] and the last chunk go along. A failure is returned, not thrown (the
    // writer is broken() then).
    boost::asio::awaitable<boost::system::error_code> send(const sse_batch& batch, bool last);
    // Only before started(): the whole response with `status`, one event + [DONE].
    boost::asio::awaitable<void> fail(http_status status, std::string_view event_json, int retry_after_s);

    // Puts a `: ping` (with the head, when nothing was sent yet) on the wire now, without waiting,
    // unless a write is in flight. For a peer that half-closed: one that is gone altogether answers
    // these bytes with a reset, which the disconnect watch sees as a socket error. What the socket
    // does not take at once leaves first with the next write. False when the socket failed.
    bool probe();

  private:
    boost::system::error_code serialize_head();
    boost::asio::awaitable<boost::system::error_code> write(
        std::span<const boost::asio::const_buffer> buffers);

    boost::beast::tcp_stream& stream_;
    header head_;
    std::chrono::seconds write_timeout_;
    std::string head_bytes_;  // the serialized head, sent with the first write
    std::string pending_;     // what probe() could not write at once; goes out first
    std::string bare_;        // HTTP/1.0: the batch without its chunk framing
    bool chunked_ = true;     // false for HTTP/1.0
    bool started_ = false;
    bool finished_ = false;
    bool broken_ = false;
    bool done_marker_ = true;
    bool writing_ = false;
};

}  // namespace sluice
