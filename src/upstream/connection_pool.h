#pragma once
// Keep-alive connections to one upstream origin (scheme://host:port), at most max_connections at a
// time (idle and in use together). A caller first takes a slot, then an idle connection or a new
// one; handing the connection back (or dropping it) frees the slot for the next waiter.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
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
    int max_connections = 64;
    std::chrono::milliseconds max_idle{30000};  // an idle connection older than this is not reused
    std::string extra_ca_pem;                   // trusted besides the system store
};

class connection_pool : public std::enable_shared_from_this<connection_pool> {
  public:
    // Throws config_error when extra_ca_pem cannot be loaded.
    connection_pool(boost::asio::any_io_executor executor, url origin, pool_options options);

    // Waits for a slot until `deadline`, then returns an idle connection or opens a new one; the
    // connect (and TLS handshake) must finish by connect_deadline.
    boost::asio::awaitable<connection_result> acquire(steady_time slot_deadline,
                                                      steady_time connect_deadline);

    // Opens a fresh connection for a caller that already holds a slot (a retry after a stale one).
    boost::asio::awaitable<connection_result> connect(steady_time connect_deadline);

    // Gives the slot back; `connection` (if not null) is kept for reuse, otherwise it is closed.
    void release(std::unique_ptr<upstream_connection> connection);

    const url& origin() const { return origin_; }
    int idle_count() const;
    int in_use_count() const;
    std::uint64_t connects() const { return connects_.load(); }

  private:
    using wakeup_channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

    boost::asio::awaitable<upstream_error> take_slot(steady_time deadline);
    std::unique_ptr<upstream_connection> take_idle();

    boost::asio::any_io_executor executor_;
    url origin_;
    pool_options options_;
    boost::asio::ssl::context tls_context_;

    mutable std::mutex mutex_;
    int in_use_ = 0;  // slots taken
    std::vector<std::unique_ptr<upstream_connection>> idle_;
    std::list<std::shared_ptr<wakeup_channel>> waiters_;  // first come, first served
    std::atomic<std::uint64_t> connects_{0};
};

}  // namespace sluice
