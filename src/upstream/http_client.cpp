#include "upstream/http_client.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace sluice {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr auto k_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t k_piece_bytes = 16 * 1024;

net::awaitable<bool> is_cancelled() {
    auto state = co_await net::this_coro::cancellation_state;
    co_return state.cancelled() != net::cancellation_type::none;
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
        auto connect_deadline = phase_deadline(options_.connect_timeout, whole_deadline, total);
        auto [connection, error] = co_await pool_->acquire(connect_deadline, connect_deadline);
        if (error) {
            if (total && error.kind == upstream_failure::connect_timeout)
                error.kind = upstream_failure::request_timeout;
            co_return open_result{nullptr, std::move(error)};
        }
        held.slot = true;
        held.connection = std::move(connection);
        for (int attempt = 0;; ++attempt) {
            auto parser = std::make_unique<upstream_response::parser_type>();
            parser->body_limit(boost::none);  // a stream is as long as the upstream makes it
            auto& link = *held.connection;
            // Beast reads as much as the buffer has room for (512 bytes when it is new): with room for a
            // whole piece, the events of one upstream write arrive in one read and leave as one batch.
            link.buffer.reserve(k_piece_bytes);
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
    // A buffer of the response's own, not an array in this coroutine's frame: a frame that large is
    // a fresh heap block on every read, where a small one is recycled. Left uninitialised, so that a
    // slow stream whose reads are a few hundred bytes keeps one page of it resident, not 16 KiB.
    if (!piece_) piece_ = std::make_unique_for_overwrite<char[]>(k_piece_bytes);
    char* const piece = piece_.get();
    upstream_error failure;
    try {
        for (;;) {
            bool total = false;
            connection_->tcp().expires_at(phase_deadline(options_.idle_timeout, deadline_, total));
            // co_await only as a statement or an initializer: g++ 12 miscompiles it inside ?:, && or an if
            // condition (dangling temporaries, a trapping frame under UBSan).
            std::pair<error_code, std::size_t> outcome;
            if (connection_->tls) {
                outcome = co_await read_piece(*connection_->tls, piece, k_piece_bytes);
            } else {
                outcome = co_await read_piece(*connection_->plain, piece, k_piece_bytes);
            }
            auto [ec, got] = outcome;
            out.append(piece, got);
            bool cancelled_now = co_await is_cancelled();
            if (cancelled_now) {
                abort();
                co_return upstream_error{upstream_failure::cancelled, "cancelled by the caller"};
            }
            if (ec) {
                abort();
                co_return upstream_error{classify(ec, total, upstream_failure::idle_timeout),
                                         "reading from " + pool_->origin().origin() + ": " + ec.message()};
            }
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
