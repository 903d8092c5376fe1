#include "http/server.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <cerrno>
#include <csignal>
#include <optional>
#include <thread>
#include <vector>

#include "http/exchange.h"
#include "http/framing.h"

namespace sluice {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {
constexpr auto k_error_write_timeout = std::chrono::seconds{5};
constexpr auto k_linger = std::chrono::seconds{1};
constexpr std::size_t k_max_linger_bytes = 4 * 1024 * 1024;
constexpr auto k_cut_timeout = std::chrono::seconds{2};
// Descriptors kept back from client connections when their limit is derived from RLIMIT_NOFILE:
// the store, the model file, logs, the listener, resolver sockets.
constexpr std::size_t k_reserved_files = 64;
constexpr std::size_t k_min_connections = 16;
// Sent, without waiting, to a client accepted past server.max_connections (or when the process is
// out of descriptors): an answer rather than a connection that hangs in the backlog.
constexpr std::string_view k_busy_response =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    "Connection: close\r\nContent-Length: 61\r\n\r\n"
    "{\"error\":\"server busy: too many open connections\",\"code\":503}";
static_assert(k_busy_response.size() - k_busy_response.find("\r\n\r\n") - 4 == 61);

// Answers 503 on a socket that will not be served and closes it; never blocks. What the client
// sent is drained first, so that the close does not turn into a reset that eats the answer.
void refuse(int fd) {
    ::send(fd, k_busy_response.data(), k_busy_response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    std::array<char, 4096> scratch{};
    while (::recv(fd, scratch.data(), scratch.size(), MSG_DONTWAIT) > 0) {
    }
    ::close(fd);
}

// The soft open-file limit raised to the hard one (as Go and nginx do): a server's connections
// are its open files.
std::size_t open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    if (limit.rlim_cur == RLIM_INFINITY) return 0;
    return static_cast<std::size_t>(limit.rlim_cur);
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

tcp::endpoint parse_listen_address(const std::string& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen.size()) {
        throw config_error("server.listen = \"" + listen + "\" is not allowed: expected HOST:PORT");
    }
    std::string host = listen.substr(0, colon);
    std::string port_text = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(port_text, &used);
        if (used != port_text.size() || port > 65535) throw std::out_of_range("port");
    } catch (const std::exception&) {
        throw config_error("server.listen = \"" + listen + "\" is not allowed: the port must be 0..65535");
    }
    if (host.empty()) host = "0.0.0.0";
    boost::system::error_code ec;
    auto address = net::ip::make_address(host, ec);
    if (!ec) return {address, static_cast<unsigned short>(port)};
    net::io_context io;
    tcp::resolver resolver{io};
    auto results = resolver.resolve(host, port_text, ec);
    if (ec || results.empty()) {
        throw config_error("server.listen = \"" + listen + "\": cannot resolve host " + host);
    }
    return results.begin()->endpoint();
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
    auto address = endpoint.address().to_string();
    if (endpoint.address().is_v6()) address = "[" + address + "]";
    return address + ":" + std::to_string(endpoint.port());
}

namespace {
std::vector<std::unique_ptr<net::io_context>> make_contexts(int io_threads) {
    unsigned count = io_threads > 0 ? static_cast<unsigned>(io_threads) : std::thread::hardware_concurrency();
    if (count == 0) count = 1;
    std::vector<std::unique_ptr<net::io_context>> contexts;
    // Concurrency hint 1: each context is run by exactly one thread.
    for (unsigned i = 0; i < count; ++i) contexts.push_back(std::make_unique<net::io_context>(1));
    return contexts;
}
}  // namespace

http_server::http_server(const server_config& cfg, const router& routes)
    : cfg_(cfg),
      routes_(routes),
      contexts_(make_contexts(cfg.io_threads)),
      control_(contexts_.front()->get_executor()),
      acceptor_(control_),
      signals_(control_),
      grace_timer_(control_) {
    for (auto& context : contexts_) work_.push_back(net::make_work_guard(*context));
}

http_server::~http_server() {
    if (spare_fd_ >= 0) ::close(spare_fd_);
}

void http_server::listen() {
    auto endpoint = parse_listen_address(cfg_.listen);
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on " + cfg_.listen + ": " + ec.message());
    bound_ = acceptor_.local_endpoint();
    const std::size_t files = open_file_limit();
    max_connections_ = cfg_.max_connections;
    if (max_connections_ == 0) {
        max_connections_ = files == 0 ? 100000
                                      : std::max(k_min_connections, files / 2 > k_reserved_files
                                                                        ? files / 2 - k_reserved_files
                                                                        : std::size_t{0});
        spdlog::info("connection limit {} (derived from the open-file limit {})", max_connections_, files);
    } else if (files != 0 && max_connections_ > files / 2) {
        spdlog::warn(
            "server.max_connections = {} is more than half the open-file limit {}: at the peak, "
            "new clients get 503 from the descriptor reserve rather than a stream",
            max_connections_, files);
    } else {
        spdlog::info("connection limit {} (open-file limit {})", max_connections_, files);
    }
    if (spare_fd_ < 0) spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    spdlog::info("listening on {}", format_endpoint(bound_));
}

bool http_server::run(bool handle_signals) {
    if (handle_signals) {
        signals_.add(SIGINT);
        signals_.add(SIGTERM);
        // The first signal drains; a second one stops at once.
        signals_.async_wait([this](boost::system::error_code ec, int signal) {
            if (ec) return;
            spdlog::info("signal {}: shutting down", signal);
            begin_shutdown();
            signals_.async_wait([this](boost::system::error_code ec2, int) {
                if (!ec2) {
                    cut_ = true;
                    stop_contexts();
                }
            });
        });
    }
    net::co_spawn(control_, accept_loop(), [](const std::exception_ptr& e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("accept loop failed: {}", ex.what());
        }
    });
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
        threads.emplace_back([context = contexts_[i].get()] { context->run(); });
    }
    contexts_.front()->run();
    for (auto& thread : threads) thread.join();
    std::lock_guard lock{connections_mutex_};
    const bool clean = !cut_ && connections_.empty();
    spdlog::info("server stopped");
    return clean;
}

void http_server::stop() {
    net::post(control_, [this] { begin_shutdown(); });
}

void http_server::spawn_detached(net::any_io_executor executor, net::awaitable<void> task) {
    auto slot = std::make_shared<connection_slot>();
    slot->executor = std::move(executor);
    slot->busy = true;  // never idle: it gets the grace like a stream, then is cut
    {
        std::lock_guard lock{connections_mutex_};
        connections_.push_back(slot);
    }
    net::co_spawn(slot->executor, std::move(task),
                  net::bind_cancellation_slot(slot->cancel.slot(), [this, slot](const std::exception_ptr& e) {
                      if (e) {
                          try {
                              std::rethrow_exception(e);
                          } catch (const std::exception& ex) {
                              spdlog::warn("detached work ended: {}", ex.what());
                          }
                      }
                      connection_done(slot);
                  }));
}

void http_server::begin_shutdown() {
    if (draining_.exchange(true)) return;
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::vector<slot_ptr> open;
    {
        std::lock_guard lock{connections_mutex_};
        open.assign(connections_.begin(), connections_.end());
    }
    if (open.empty()) {
        stop_contexts();
        return;
    }
    spdlog::info("not accepting connections; {} open, streams get {} s to finish", open.size(),
                 cfg_.shutdown_grace_s);
    for (auto& slot : open) {
        // Idle keep-alive connections go now; busy ones close after their response.
        net::post(slot->executor, [slot] {
            if (!slot->busy) slot->cancel.emit(net::cancellation_type::terminal);
        });
    }
    grace_timer_.expires_after(std::chrono::seconds{cfg_.shutdown_grace_s});
    grace_timer_.async_wait([this](boost::system::error_code ec2) {
        if (!ec2) cut_remaining();
    });
}

void http_server::cut_remaining() {
    std::vector<slot_ptr> open;
    {
        std::lock_guard lock{connections_mutex_};
        open.assign(connections_.begin(), connections_.end());
    }
    spdlog::warn("shutdown grace over: cutting {} connection(s)", open.size());
    for (auto& slot : open) {
        net::post(slot->executor, [slot] { slot->cancel.emit(net::cancellation_type::terminal); });
    }
    grace_timer_.expires_after(k_cut_timeout);
    grace_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        cut_ = true;
        stop_contexts();
    });
}

void http_server::stop_contexts() {
    for (auto& guard : work_) guard.reset();
    for (auto& context : contexts_) context->stop();
}

void http_server::connection_done(const slot_ptr& slot) {
    bool last = false;
    {
        std::lock_guard lock{connections_mutex_};
        connections_.remove(slot);
        last = draining_ && connections_.empty();
    }
    if (last) {
        net::post(control_, [this] {
            grace_timer_.cancel();
            stop_contexts();
        });
    }
}

net::awaitable<void> http_server::accept_loop() {
    for (;;) {
        // The connection's context, chosen before the accept: its socket is registered there.
        auto& context = *contexts_[next_context_];
        auto [ec, socket] =
            co_await acceptor_.async_accept(context.get_executor(), net::as_tuple(net::use_awaitable));
        if (ec) {
            if (!acceptor_.is_open() || ec == net::error::operation_aborted) co_return;
            spdlog::warn("accept failed: {}", ec.message());
            if (ec == net::error::no_descriptors && spare_fd_ >= 0) {
                // Out of descriptors: the one kept in reserve takes the waiting client for long
                // enough to tell it so, instead of leaving it in the backlog.
                ::close(spare_fd_);
                const int fd =
                    ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd >= 0) refuse(fd);
                spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space) {
                net::steady_timer pause{control_, std::chrono::milliseconds{100}};
                co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            }
            continue;
        }
        boost::system::error_code opt_ec;
        socket.set_option(tcp::no_delay(true), opt_ec);  // SSE events must not wait for Nagle
        next_context_ = (next_context_ + 1) % contexts_.size();
        auto slot = std::make_shared<connection_slot>();
        slot->executor = socket.get_executor();
        {
            std::lock_guard lock{connections_mutex_};
            if (connections_.size() >= max_connections_) {
                spdlog::warn("connection limit {} reached: refusing a connection with 503", max_connections_);
                refuse(socket.release(opt_ec));
                continue;
            }
            connections_.push_back(slot);
        }
        net::co_spawn(
            slot->executor, serve_connection(slot, beast::tcp_stream{std::move(socket)}),
            net::bind_cancellation_slot(slot->cancel.slot(), [this, slot](const std::exception_ptr& e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        spdlog::debug("connection ended: {}", ex.what());
                    }
                }
                connection_done(slot);
            }));
    }
}

// The frame of this coroutine lives as long as the connection, a stream included, so reading and
// rejecting a request is done in read_request, whose frame (the parser, the error responses) is gone
// while the request is served.
net::awaitable<void> http_server::serve_connection(slot_ptr slot, beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    std::optional<exchange> ex;
    // A new connection must send its first request as promptly as any head: a client that connects
    // and says nothing is not kept for the keep-alive idle time.
    bool first_request = true;
    try {
        for (;;) {
            slot->busy = false;
            if (draining_) break;
            if (buffer.size() == 0) {
                stream.expires_after(
                    std::chrono::seconds{first_request ? cfg_.header_timeout_s : cfg_.idle_timeout_s});
                first_request = false;
                auto [ec, n] =
                    co_await stream.async_read_some(buffer.prepare(8192), net::as_tuple(net::use_awaitable));
                if (ec) break;  // closed, idle too long, or shutting down
                buffer.commit(n);
            }
            slot->busy = true;
            const auto started = std::chrono::steady_clock::now();
            co_await read_request(stream, buffer, ex);
            if (!ex) break;  // the connection cannot go on: closed, or an error response went out
            co_await routes_.dispatch(*ex);
            const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
            spdlog::debug("{} {} {} ms{}", std::string(http::to_string(ex->request().method())),
                          std::string(ex->path()), elapsed.count(), ex->peer_gone() ? " (client left)" : "");
            const bool reusable = ex->reusable();
            ex.reset();
            if (!reusable) break;
        }
    } catch (const std::exception& e) {
        spdlog::debug("connection: {}", e.what());
    }
    ex.reset();
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.socket().close(ec);
}

// Reads one request into `ex`; leaves `ex` empty when the connection cannot go on (closed, timed
// out, or a malformed or too large request, which is answered here).
net::awaitable<void> http_server::read_request(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                               std::optional<exchange>& ex) {
    const auto header_timeout = std::chrono::seconds{cfg_.header_timeout_s};
    http::request_parser<http::string_body> parser;
    limit_request_parser(parser, cfg_.max_body_bytes);
    stream.expires_after(header_timeout);
    auto [ec, n] =
        co_await http::async_read_header(stream, buffer, parser, net::as_tuple(net::use_awaitable));
    if (ec == http::error::body_limit) {
        const auto error = too_large_error();
        co_await reject(stream, buffer, parser.get(), error);
        co_return;
    }
    if (ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof ||
            ec == net::error::operation_aborted || ec == net::error::connection_reset) {
            co_return;
        }
        api_error error{.code = ec == http::error::header_limit ? 431 : 400,
                        .message = "malformed HTTP request: " + ec.message()};
        const http_request unknown{http_verb::unknown, "/", 11};
        co_await reject(stream, buffer, unknown, error);
        co_return;
    }
    to_origin_form(parser.get());
    if (const auto framing = framing_error(parser.get())) {
        co_await reject(stream, buffer, parser.get(), *framing);
        co_return;
    }
    auto expect = parser.get()[http::field::expect];
    if (!parser.is_done() && iequals(expect, "100-continue")) {
        static constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await net::async_write(stream, net::buffer(k_continue), net::use_awaitable);
    }
    if (!parser.is_done()) {
        stream.expires_after(header_timeout);  // the body must arrive as promptly as the head
        auto [body_ec, body_n] =
            co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
        if (body_ec == http::error::body_limit) {
            const auto error = too_large_error();
            co_await reject(stream, buffer, parser.get(), error);
            co_return;
        }
        if (body_ec) {
            if (body_ec != beast::error::timeout && body_ec != http::error::partial_message &&
                body_ec != net::error::operation_aborted && body_ec != net::error::connection_reset) {
                const api_error error{.code = 400, .message = "malformed HTTP request: " + body_ec.message()};
                co_await reject(stream, buffer, parser.get(), error);
            }
            co_return;
        }
    }
    stream.expires_never();
    const bool keep_alive = parser.keep_alive() && !draining_;
    // A stream may last minutes: it should not hold the read buffer (8 KiB or more) meanwhile.
    if (buffer.size() == 0) buffer.shrink_to_fit();
    ex.emplace(stream, buffer, parser.release(), keep_alive, std::chrono::seconds{cfg_.write_timeout_s});
}

api_error http_server::too_large_error() const {
    return {
        .code = 413,
        .message = "request body too large: the limit is " + std::to_string(cfg_.max_body_bytes) + " bytes"};
}

net::awaitable<void> http_server::reject(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                         const http_request& request, const api_error& error) {
    std::string_view target = request.target();
    auto res = routes_.error_for(request, target.substr(0, target.find('?')), error);
    res.version(request.version() == 10 ? 10 : 11);
    res.keep_alive(false);
    res.prepare_payload();
    stream.expires_after(k_error_write_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
    buffer.consume(buffer.size());
    if (!ec) co_await lingering_close(stream);
}

// Closing with unread bytes in the receive buffer makes the kernel send RST, which can destroy
// the error response before the client reads it; so stop sending, then drain for a moment.
net::awaitable<void> http_server::lingering_close(beast::tcp_stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(k_linger);
    std::array<char, 16 * 1024> scratch{};
    std::size_t drained = 0;
    while (drained < k_max_linger_bytes) {
        auto [read_ec, n] =
            co_await stream.async_read_some(net::buffer(scratch), net::as_tuple(net::use_awaitable));
        if (read_ec) break;
        drained += n;
    }
}

}  // namespace sluice
