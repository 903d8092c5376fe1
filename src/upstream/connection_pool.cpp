#include "upstream/connection_pool.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>

#include "core/api_error.h"
#include "core/cancellation.h"

namespace sluice {
namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using net::experimental::awaitable_operators::operator||;

namespace {

constexpr auto k_tuple = net::as_tuple(net::use_awaitable);

bool is_ip_literal(const std::string& host) {
    boost::system::error_code ec;
    net::ip::make_address(host, ec);
    return !ec;
}

// The io_context an executor belongs to: the key of its idle list.
const net::execution_context* context_of(const net::any_io_executor& executor) {
    return &net::query(executor, net::execution::context);
}

// A pooled connection the server has closed (or that has unexpected bytes waiting) is useless.
bool still_open(upstream_connection& connection) {
    char byte = 0;
    auto received = ::recv(connection.tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

beast::tcp_stream& upstream_connection::tcp() {
    return tls ? beast::get_lowest_layer(*tls) : *plain;
}

void upstream_connection::close() {
    boost::system::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().close();
}

connection_pool::connection_pool(url origin, pool_options options)
    : origin_(std::move(origin)), options_(std::move(options)), tls_context_(net::ssl::context::tls_client) {
    options_.max_connections = std::max(1, options_.max_connections);
    if (origin_.tls()) {
        SSL_CTX_set_min_proto_version(tls_context_.native_handle(), TLS1_2_VERSION);
        tls_context_.set_default_verify_paths();
        tls_context_.set_verify_mode(net::ssl::verify_peer);
        if (!options_.extra_ca_pem.empty()) {
            boost::system::error_code ec;
            tls_context_.add_certificate_authority(net::buffer(options_.extra_ca_pem), ec);
            if (ec) throw config_error("the extra CA certificate cannot be loaded: " + ec.message());
        }
    }
}

int connection_pool::idle_count() const {
    std::lock_guard lock(mutex_);
    return idle_total_;
}

int connection_pool::in_use_count() const {
    std::lock_guard lock(mutex_);
    return in_use_;
}

net::awaitable<upstream_error> connection_pool::take_slot(steady_time deadline) {
    auto executor = co_await net::this_coro::executor;
    std::shared_ptr<wakeup_channel> wakeup;
    {
        std::lock_guard lock(mutex_);
        if (in_use_ < options_.max_connections) {
            ++in_use_;
            co_return upstream_error{};
        }
        // On the waiter's own executor: release() may run on another thread, the wakeup does not.
        wakeup = std::make_shared<wakeup_channel>(executor, 1);
        waiters_.push_back(wakeup);
    }
    net::steady_timer timer(executor);
    timer.expires_at(deadline);
    try {
        co_await (wakeup->async_receive(k_tuple) || timer.async_wait(k_tuple));
    } catch (const boost::system::system_error&) {
        // Cancelled: decided below, under the lock, whether the slot reached us anyway.
    }
    bool handed_over = false;
    {
        std::lock_guard lock(mutex_);
        auto it = std::find(waiters_.begin(), waiters_.end(), wakeup);
        if (it == waiters_.end()) {
            handed_over = true;
        } else {
            waiters_.erase(it);
        }
    }
    bool cancelled = co_await is_cancelled();
    if (handed_over && !cancelled) co_return upstream_error{};
    if (handed_over) release(nullptr);
    if (cancelled)
        co_return upstream_error{upstream_failure::cancelled, "cancelled while waiting for a connection"};
    co_return upstream_error{upstream_failure::pool_timeout,
                             "all " + std::to_string(options_.max_connections) + " connections to " +
                                 origin_.origin() + " stayed busy"};
}

// Only this context's connections: they are the ones this thread may use (and check, and close).
std::unique_ptr<upstream_connection> connection_pool::take_idle(context_key context) {
    for (;;) {
        std::unique_ptr<upstream_connection> candidate;
        {
            std::lock_guard lock(mutex_);
            auto it = idle_.find(context);
            if (it == idle_.end() || it->second.empty()) return nullptr;
            candidate = std::move(it->second.back());
            it->second.pop_back();
            --idle_total_;
        }
        if (std::chrono::steady_clock::now() - candidate->idle_since < options_.max_idle &&
            still_open(*candidate)) {
            candidate->reused = true;
            return candidate;
        }
        candidate->close();
    }
}

void connection_pool::close_an_idle_elsewhere(context_key context) {
    std::unique_ptr<upstream_connection> evicted;
    {
        std::lock_guard lock(mutex_);
        if (in_use_ + idle_total_ <= options_.max_connections) return;
        for (auto& [owner, list] : idle_) {
            if (owner == context || list.empty()) continue;
            evicted = std::move(list.front());  // the oldest of that context
            list.erase(list.begin());
            --idle_total_;
            break;
        }
    }
    if (!evicted) return;
    // Its socket belongs to another thread: close it there.
    auto owner = evicted->tcp().get_executor();
    net::post(owner, [connection = std::move(evicted)] { connection->close(); });
}

net::awaitable<connection_result> connection_pool::acquire(steady_time slot_deadline,
                                                           std::chrono::milliseconds connect_timeout,
                                                           steady_time latest) {
    auto slot_error = co_await take_slot(slot_deadline);
    if (auto error = std::move(slot_error)) co_return connection_result{nullptr, std::move(error)};
    const auto connect_deadline = std::min(std::chrono::steady_clock::now() + connect_timeout, latest);
    auto executor = co_await net::this_coro::executor;
    const auto context = context_of(executor);
    if (auto idle = take_idle(context)) co_return connection_result{std::move(idle), {}};
    close_an_idle_elsewhere(context);
    auto result = co_await connect(connect_deadline);
    if (!result.connection) release(nullptr);
    co_return result;
}

net::awaitable<connection_result> connection_pool::connect(steady_time deadline) {
    using result = connection_result;
    auto where = origin_.origin();
    auto executor = co_await net::this_coro::executor;
    tcp::resolver resolver(executor);
    std::string port_text = std::to_string(origin_.port);
    auto [resolve_error, endpoints] = co_await resolver.async_resolve(origin_.host, port_text, k_tuple);
    bool cancelled_after_resolve = co_await is_cancelled();
    if (cancelled_after_resolve)
        co_return result{nullptr, upstream_error{upstream_failure::cancelled, "cancelled"}};
    if (resolve_error)
        co_return result{nullptr,
                         {upstream_failure::connect, "resolving " + where + ": " + resolve_error.message()}};

    beast::tcp_stream stream(executor);
    stream.expires_at(deadline);
    auto [connect_error, endpoint] = co_await stream.async_connect(endpoints, k_tuple);
    bool cancelled_after_connect = co_await is_cancelled();
    if (cancelled_after_connect)
        co_return result{nullptr, upstream_error{upstream_failure::cancelled, "cancelled"}};
    if (connect_error == beast::error::timeout)
        co_return result{nullptr,
                         {upstream_failure::connect_timeout, "connecting to " + where + " timed out"}};
    if (connect_error)
        co_return result{
            nullptr, {upstream_failure::connect, "connecting to " + where + ": " + connect_error.message()}};
    boost::system::error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);

    auto connection = std::make_unique<upstream_connection>();
    if (!origin_.tls()) {
        stream.expires_never();
        connection->plain = std::make_unique<beast::tcp_stream>(std::move(stream));
        ++connects_;
        co_return result{std::move(connection), {}};
    }
    connection->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(stream), tls_context_);
    auto* ssl = connection->tls->native_handle();
    if (!is_ip_literal(origin_.host)) SSL_set_tlsext_host_name(ssl, origin_.host.c_str());
    connection->tls->set_verify_mode(net::ssl::verify_peer);
    connection->tls->set_verify_callback(net::ssl::host_name_verification(origin_.host));
    auto [handshake_error] =
        co_await connection->tls->async_handshake(net::ssl::stream_base::client, k_tuple);
    bool cancelled_after_handshake = co_await is_cancelled();
    if (cancelled_after_handshake)
        co_return result{nullptr, upstream_error{upstream_failure::cancelled, "cancelled"}};
    if (handshake_error == beast::error::timeout)
        co_return result{nullptr,
                         {upstream_failure::connect_timeout, "TLS handshake with " + where + " timed out"}};
    if (handshake_error)
        co_return result{nullptr,
                         {upstream_failure::tls, "TLS with " + where + ": " + handshake_error.message()}};
    connection->tcp().expires_never();
    ++connects_;
    co_return result{std::move(connection), {}};
}

void connection_pool::release(std::unique_ptr<upstream_connection> connection) {
    std::shared_ptr<wakeup_channel> next;
    std::unique_ptr<upstream_connection> extra;
    {
        std::lock_guard lock(mutex_);
        if (connection) {
            connection->tcp().expires_never();
            connection->idle_since = std::chrono::steady_clock::now();
            // After a burst, keep a working set open rather than every connection of the peak: the
            // upstream pays a descriptor for each one we hold.
            if (idle_total_ < std::min(options_.max_connections, options_.max_idle_connections)) {
                idle_[context_of(connection->tcp().get_executor())].push_back(std::move(connection));
                ++idle_total_;
            } else {
                extra = std::move(connection);
            }
        }
        if (!waiters_.empty()) {
            next = std::move(waiters_.front());  // the slot passes straight to the longest waiter
            waiters_.pop_front();
        } else {
            --in_use_;
        }
    }
    if (extra) extra->close();
    if (next) next->try_send(boost::system::error_code{});
}

}  // namespace sluice
