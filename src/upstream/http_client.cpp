#include "upstream/http_client.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/cancellation.h"

namespace sluice {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr auto k_tuple = net::as_tuple(net::use_awaitable);
// Read sizes. A fast upstream fills whole 16 KiB pieces, and each piece leaves as one batch. A slow
// stream (one event every few hundred milliseconds) reads a few hundred bytes at a time, and waits
// for them holding no buffer (see read_some). A response starts small, grows on the first read that
// needs more, and drops back after k_small_reads small reads in a row. At 10,000 waiting streams
// the two 16 KiB buffers were 6 KiB of RSS each, and freed blocks are not given back in time.
constexpr std::size_t k_piece_bytes = upstream_response::k_large_read;
constexpr std::size_t k_small_piece_bytes = upstream_response::k_small_read;
constexpr int k_small_reads = 4;

// Waits until `stream` has bytes to read (or its peer closed it): beast::error::timeout at `deadline`.
net::awaitable<error_code> wait_readable(beast::tcp_stream& stream, steady_time deadline) {
    net::steady_timer timer(stream.get_executor(), deadline);
    auto race = net::experimental::make_parallel_group(
        stream.socket().async_wait(net::socket_base::wait_read, net::deferred),
        timer.async_wait(net::deferred));
    auto [order, readable, expired] = co_await race.async_wait(net::experimental::wait_for_one(), k_tuple);
    if (order[0] == 1 && !expired) co_return beast::error::timeout;
    co_return readable;
}

steady_time now() {
    return std::chrono::steady_clock::now();
}

// The phase deadline, unless the whole-request deadline comes first; `total` says which one won.
steady_time phase_deadline(std::chrono::milliseconds phase, steady_time whole, bool& total) {
    auto deadline = now() + phase;
    total = whole <= deadline;
    return total ? whole : deadline;
}

upstream_failure classify(const error_code& ec, bool total_deadline, upstream_failure phase_timeout) {
    if (ec == beast::error::timeout)
        return total_deadline ? upstream_failure::request_timeout : phase_timeout;
    if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message)
        return upstream_failure::protocol;
    return upstream_failure::closed;
}

// A keep-alive connection the server closed while it sat in the pool fails like this on first use.
bool stale_connection(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == http::error::partial_message;
}

template <typename Stream>
net::awaitable<error_code> exchange_head(Stream& stream, beast::flat_buffer& buffer,
                                         http::request<http::string_body>& request,
                                         upstream_response::parser_type& parser) {
    auto [write_error, written] = co_await http::async_write(stream, request, k_tuple);
    if (write_error) co_return write_error;
    auto [read_error, read] = co_await http::async_read_header(stream, buffer, parser, k_tuple);
    co_return read_error;
}

// Owns a pool slot and a connection until a response takes them over; closes and frees otherwise,
// also when the coroutine unwinds because its caller cancelled it.
struct lease {
    std::shared_ptr<connection_pool> pool;
    std::unique_ptr<upstream_connection> connection;
    bool slot = false;

    ~lease() {
        if (connection) connection->close();
        if (slot) pool->release(nullptr);
    }
};

}  // namespace

http_client::http_client(url origin, http_client_options options)
    : options_(std::move(options)),
      pool_(std::make_shared<connection_pool>(
          std::move(origin), pool_options{.max_connections = options_.max_connections,
                                          .max_idle = options_.pool_max_idle,
                                          .max_idle_connections = options_.pool_max_idle_connections,
                                          .extra_ca_pem = options_.extra_ca_pem})) {}

net::awaitable<open_result> http_client::open(upstream_request request) {
    const auto whole_deadline = now() + options_.request_timeout;
    http::request<http::string_body> message{request.method, request.target, 11};
    for (const auto& field : request.headers) message.insert(field.name_string(), field.value());
    message.set(http::field::host, pool_->origin().host_header());
    if (message.find(http::field::user_agent) == message.end())
        message.set(http::field::user_agent, "sluice");
    message.body() = std::move(request.body);
    message.prepare_payload();

    lease held{.pool = pool_};
    upstream_error failure;
    try {
        bool total = false;
        const auto slot_deadline = phase_deadline(options_.pool_wait, whole_deadline, total);
        auto [connection, error] =
            co_await pool_->acquire(slot_deadline, options_.connect_timeout, whole_deadline);
        if (error) {
            if (error.kind == upstream_failure::connect_timeout && now() >= whole_deadline)
                error.kind = upstream_failure::request_timeout;
            co_return open_result{nullptr, std::move(error)};
        }
        held.slot = true;
        held.connection = std::move(connection);
        for (int attempt = 0;; ++attempt) {
            auto parser = std::make_unique<upstream_response::parser_type>();
            parser->body_limit(boost::none);  // a stream is as long as the upstream makes it
            auto& link = *held.connection;
            // Beast reads as much as the buffer has room for (512 bytes when it is new). The head
            // and the first events fit in the small size; read_some grows it for a fast stream.
            link.buffer.reserve(k_small_piece_bytes);
            link.tcp().expires_at(phase_deadline(options_.first_byte_timeout, whole_deadline, total));
            error_code ec;
            if (link.tls) {
                ec = co_await exchange_head(*link.tls, link.buffer, message, *parser);
            } else {
                ec = co_await exchange_head(*link.plain, link.buffer, message, *parser);
            }
            bool cancelled_now = co_await is_cancelled();
            if (cancelled_now)
                co_return open_result{nullptr, {upstream_failure::cancelled, "cancelled by the caller"}};
            if (!ec) {
                held.slot = false;
                co_return open_result{
                    std::make_unique<upstream_response>(pool_, std::move(held.connection), std::move(parser),
                                                        options_, whole_deadline),
                    {}};
            }
            bool retry = link.reused && attempt == 0 && stale_connection(ec);
            held.connection->close();
            held.connection.reset();
            if (!retry) {
                co_return open_result{nullptr,
                                      {classify(ec, total, upstream_failure::first_byte_timeout),
                                       "request to " + pool_->origin().origin() + ": " + ec.message()}};
            }
            auto [fresh, connect_error] =
                co_await pool_->connect(phase_deadline(options_.connect_timeout, whole_deadline, total));
            if (connect_error) co_return open_result{nullptr, std::move(connect_error)};
            held.connection = std::move(fresh);
        }
    } catch (const boost::system::system_error& e) {
        // Asio throws operation_aborted from the next co_await once the caller has cancelled us.
        failure = {e.code() == net::error::operation_aborted ? upstream_failure::cancelled
                                                             : upstream_failure::closed,
                   e.code().message()};
    }
    co_return open_result{nullptr, std::move(failure)};
}

upstream_response::upstream_response(std::shared_ptr<connection_pool> pool,
                                     std::unique_ptr<upstream_connection> connection,
                                     std::unique_ptr<parser_type> parser, http_client_options options,
                                     steady_time deadline)
    : pool_(std::move(pool)),
      connection_(std::move(connection)),
      parser_(std::move(parser)),
      options_(std::move(options)),
      deadline_(deadline) {
    if (parser_->is_done()) finish();
}

upstream_response::~upstream_response() {
    abort();
}

unsigned upstream_response::status() const {
    return parser_->get().result_int();
}

const http::fields& upstream_response::headers() const {
    return parser_->get();
}

void upstream_response::abort() {
    if (connection_) {
        connection_->close();
        connection_.reset();
    }
    if (slot_held_) {
        slot_held_ = false;
        pool_->release(nullptr);
    }
}

void upstream_response::finish() {
    done_ = true;
    if (!slot_held_) return;
    slot_held_ = false;
    if (parser_->get().keep_alive() && connection_) {
        if (connection_->buffer.size() == 0) connection_->buffer.shrink_to_fit();  // idle: no buffer
        pool_->release(std::move(connection_));
    } else {
        if (connection_) connection_->close();
        connection_.reset();
        pool_->release(nullptr);
    }
}

template <typename Stream>
net::awaitable<std::pair<error_code, std::size_t>> upstream_response::read_piece(Stream& stream, char* data,
                                                                                 std::size_t size) {
    auto& body = parser_->get().body();
    body.data = data;
    body.size = size;
    auto [ec, consumed] = co_await http::async_read_some(stream, connection_->buffer, *parser_, k_tuple);
    if (ec == http::error::need_buffer) ec = {};
    co_return std::pair{ec, size - parser_->get().body().size};
}

net::awaitable<upstream_error> upstream_response::read_some(std::string& out) {
    out.clear();
    if (done_) co_return upstream_error{};
    if (!connection_)
        co_return upstream_error{upstream_failure::closed, "the upstream connection was closed"};
    // The body piece is a buffer of the response's own (piece_), not an array in this coroutine's
    // frame: a frame that large is a fresh heap block on every read, where a small one is recycled.
    upstream_error failure;
    try {
        for (;;) {
            bool total = false;
            const steady_time read_deadline = phase_deadline(options_.idle_timeout, deadline_, total);
            if (piece_size_ == k_small_piece_bytes && !connection_->tls) {
                // A slow stream waits for its next event holding no buffer at all. First, whatever
                // is already buffered goes through the parser; what it leaves cannot be used until
                // more arrives (often just the CRLF that ends a chunk). (Not over TLS: the TLS layer
                // may hold decrypted bytes that the socket does not show.)
                if (connection_->buffer.size() > 0) {
                    if (!piece_) piece_ = std::make_unique_for_overwrite<char[]>(piece_size_);
                    error_code parse_error;
                    const std::size_t got = parse_buffered(piece_.get(), piece_size_, parse_error);
                    if (parse_error) co_return read_failure(parse_error, total);
                    if (got > 0 || parser_->is_done()) {
                        out.append(piece_.get(), got);
                        if (parser_->is_done()) finish();
                        fit_read_size(got);
                        co_return upstream_error{};
                    }
                }
                piece_.reset();
                connection_->buffer.shrink_to_fit();  // keeps the few bytes the parser left
                const error_code waited = co_await wait_readable(*connection_->plain, read_deadline);
                bool cancelled_waiting = co_await is_cancelled();
                if (cancelled_waiting) co_return cancelled_read();
                if (waited) co_return read_failure(waited, total);
                connection_->buffer.reserve(k_small_piece_bytes);
            }
            if (!piece_) piece_ = std::make_unique_for_overwrite<char[]>(piece_size_);
            char* const piece = piece_.get();
            const std::size_t piece_size = piece_size_;
            connection_->tcp().expires_at(read_deadline);
            // co_await only as a statement or an initializer: g++ 12 miscompiles it inside ?:, && or an if
            // condition (dangling temporaries, a trapping frame under UBSan).
            std::pair<error_code, std::size_t> outcome;
            if (connection_->tls) {
                outcome = co_await read_piece(*connection_->tls, piece, piece_size);
            } else {
                outcome = co_await read_piece(*connection_->plain, piece, piece_size);
            }
            auto [ec, got] = outcome;
            out.append(piece, got);
            if (!ec) fit_read_size(got);
            bool cancelled_now = co_await is_cancelled();
            if (cancelled_now) co_return cancelled_read();
            if (ec) co_return read_failure(ec, total);
            if (parser_->is_done()) finish();
            if (got > 0 || done_) co_return upstream_error{};
        }
    } catch (const boost::system::system_error& e) {
        failure = {e.code() == net::error::operation_aborted ? upstream_failure::cancelled
                                                             : upstream_failure::closed,
                   e.code().message()};
    }
    abort();
    co_return failure;
}

upstream_error upstream_response::cancelled_read() {
    abort();
    return {upstream_failure::cancelled, "cancelled by the caller"};
}

upstream_error upstream_response::read_failure(const error_code& ec, bool total_deadline) {
    abort();
    return {classify(ec, total_deadline, upstream_failure::idle_timeout),
            "reading from " + pool_->origin().origin() + ": " + ec.message()};
}

std::size_t upstream_response::parse_buffered(char* data, std::size_t size, error_code& ec) {
    auto& body = parser_->get().body();
    body.data = data;
    body.size = size;
    auto& buffer = connection_->buffer;
    while (buffer.size() > 0 && !parser_->is_done()) {
        const std::size_t used = parser_->put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == http::error::need_more || ec == http::error::need_buffer) {
            ec = {};
            break;
        }
        if (ec || used == 0) break;
    }
    return size - body.size;
}

void upstream_response::fit_read_size(std::size_t got) {
    if (!connection_) return;
    auto& buffer = connection_->buffer;
    if (piece_size_ == k_small_piece_bytes) {
        if (got < k_small_piece_bytes / 2) return;
        piece_size_ = k_piece_bytes;  // the upstream speeds up: whole pieces again
        small_reads_ = 0;
        piece_.reset();
        buffer.reserve(k_piece_bytes);
        return;
    }
    if (got >= k_small_piece_bytes / 2) {
        small_reads_ = 0;
        return;
    }
    if (++small_reads_ < k_small_reads || buffer.size() > k_small_piece_bytes / 2) return;
    piece_size_ = k_small_piece_bytes;
    piece_.reset();
    buffer.shrink_to_fit();  // keeps the unread bytes, if any
    buffer.reserve(k_small_piece_bytes);
}

net::awaitable<bool> upstream_response::finish_body(std::chrono::milliseconds within) {
    const steady_time whole = deadline_;
    deadline_ = std::min(deadline_, now() + within);
    std::string rest;
    while (!done_) {
        auto error = co_await read_some(rest);  // an error closes the connection
        if (error) break;
    }
    deadline_ = whole;
    co_return done_;
}

net::awaitable<std::pair<std::string, upstream_error>> upstream_response::read_all(std::size_t limit) {
    std::string all;
    std::string piece;
    while (!done_) {
        auto error = co_await read_some(piece);
        if (error) co_return std::pair{std::move(all), std::move(error)};
        all.append(piece, 0, std::min(piece.size(), limit - std::min(limit, all.size())));
    }
    co_return std::pair{std::move(all), upstream_error{}};
}

}  // namespace sluice
