#pragma once
// Keep-alive connections to one upstream origin (scheme://host:port), at most max_connections at a
// time (idle and in use together). A caller first takes a slot, then an idle connection or a new
// one; handing the connection back (or dropping it) frees the slot for the next waiter.
//
// Thread per core: the server runs one io_context per thread, and a socket must only ever be used
// by the thread of the context it was opened on. So connections are opened on the calling
// coroutine's own executor and idle ones are kept per io_context: a caller only reuses connections
// of its own context. The max_connections limit stays global for the origin (one count under the
// pool's mutex, waiters served first come, first served whatever their context), because it is
// what the operator promises the upstream; a waiter woken from another thread resumes on its own
// executor. When a context must open a connection while others sit idle on other contexts and the
// total would pass the limit, one of those is closed on its own thread.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "upstream/upstream_error.h"
#include "upstream/url.h"

namespace sluice {

using steady_time = std::chrono::steady_clock::time_point;

struct upstream_connection {
    std::unique_ptr<boost::beast::tcp_stream> plain;
    std::unique_ptr<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls;
    boost::beast::flat_buffer buffer;  // bytes read past the end of the last message stay here
    steady_time idle_since{};
    bool reused = false;  // came from the idle list: it may have been closed by the server meanwhile

    boost::beast::tcp_stream& tcp();
    void close();
};

struct connection_result {
    std::unique_ptr<upstream_connection> connection;  // set on success
    upstream_error error;
};

struct pool_options {
    int max_connections = 1024;
    std::chrono::milliseconds max_idle{30000};  // an idle connection older than this is not reused
    // Idle connections kept at most; the rest close as they come back, so that after a burst the
    // upstream is not left holding a descriptor for every connection of the peak.
    int max_idle_connections = 1024;
    std::string extra_ca_pem;  // trusted besides the system store
};

class connection_pool : public std::enable_shared_from_this<connection_pool> {
  public:
    // Throws config_error when extra_ca_pem cannot be loaded.
    connection_pool(url origin, pool_options options);

    // Waits for a slot until `slot_deadline` (then fails with pool_timeout: sluice's own limit, not
    // the upstream's fault), then returns an idle connection of the caller's own io_context or
    // opens a new one there; the connect (and TLS handshake) gets `connect_timeout` from the moment
    // the slot is taken, and must finish by `latest` in any case.
    boost::asio::awaitable<connection_result> acquire(steady_time slot_deadline,
                                                      std::chrono::milliseconds connect_timeout,
                                                      steady_time latest);

    // Opens a fresh connection (on the caller's executor) for a caller that already holds a slot (a
    // retry after a stale one).
    boost::asio::awaitable<connection_result> connect(steady_time connect_deadline);

    // Gives the slot back; `connection` (if not null) is kept for reuse by its own io_context,
    // otherwise it is closed. Call it on the thread the connection belongs to.
    void release(std::unique_ptr<upstream_connection> connection);

    const url& origin() const { return origin_; }
    int idle_count() const;
    int in_use_count() const;
    std::uint64_t connects() const { return connects_.load(); }

  private:
    using wakeup_channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;
    using context_key = const boost::asio::execution_context*;
    using idle_list = std::vector<std::unique_ptr<upstream_connection>>;

    boost::asio::awaitable<upstream_error> take_slot(steady_time deadline);
    std::unique_ptr<upstream_connection> take_idle(context_key context);
    // Keeps in use + idle within max_connections once `context` opens one more connection.
    void close_an_idle_elsewhere(context_key context);

    url origin_;
    pool_options options_;
    boost::asio::ssl::context tls_context_;

    mutable std::mutex mutex_;
    int in_use_ = 0;                                   // slots taken, over all contexts
    std::unordered_map<context_key, idle_list> idle_;  // newest last; only its own thread touches a socket
    int idle_total_ = 0;
    std::list<std::shared_ptr<wakeup_channel>> waiters_;  // first come, first served
    std::atomic<std::uint64_t> connects_{0};
};

}  // namespace sluice
