#pragma once
// The HTTP/1.1 server: a TCP acceptor, server.io_threads io_contexts each run by exactly one thread,
// one coroutine per connection living on one of them (round robin), and a task group so shutdown
// can let streams finish (up to server.shutdown_grace_s) before cutting them.
//
// Thread per core: a connection and everything it starts (upstream sockets, timers, channels) stay
// on its context, so nothing on the request path needs a strand or hops threads. The acceptor, the
// signals and the shutdown sequence live on context 0.
#include <atomic>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "http/router.h"

namespace sluice {

// "HOST:PORT" or "[v6]:PORT" -> endpoint. Host names are resolved. Throws config_error.
boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& listen);
std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint);

class http_server {
  public:
    http_server(const server_config& cfg, const router& routes);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // One io_context per io thread (server.io_threads, 0 = the number of cores).
    std::size_t io_context_count() const { return contexts_.size(); }

    // Binds and listens on cfg.listen; logs `listening on HOST:PORT` with the bound port, and the
    // connection limit (server.max_connections; when 0, RLIMIT_NOFILE / 2 - 64, the soft limit
    // raised to the hard one first). A client past the limit gets 503 and is closed at once.
    // Throws std::runtime_error naming the address when it cannot bind.
    void listen();
    boost::asio::ip::tcp::endpoint local_endpoint() const { return bound_; }

    // Runs the io threads until SIGINT/SIGTERM (when handle_signals) or stop(), then drains.
    // Returns false when connections had to be cut (their coroutines never finished).
    bool run(bool handle_signals = true);

    // Thread-safe: begins the graceful shutdown (stop accepting, finish streams, then cut).
    void stop();

    // Runs `task` (work that outlives its connection: a resumable stream's producer) on `executor`
    // the way a busy connection runs: shutdown gives it the grace, then cancels it, and run() waits
    // for it as for a connection. Thread-safe.
    void spawn_detached(boost::asio::any_io_executor executor, boost::asio::awaitable<void> task);

  private:
    struct connection_slot {
        boost::asio::any_io_executor executor;  // its io_context: one thread, no strand needed
        boost::asio::cancellation_signal cancel;
        bool busy = false;  // inside a request (only touched on `executor`)
    };
    using slot_ptr = std::shared_ptr<connection_slot>;

    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve_connection(slot_ptr slot, boost::beast::tcp_stream stream);
    boost::asio::awaitable<void> read_request(boost::beast::tcp_stream& stream,
                                              boost::beast::flat_buffer& buffer, std::optional<exchange>& ex);
    boost::asio::awaitable<void> reject(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
                                        const http_request& request, const api_error& error);
    boost::asio::awaitable<void> lingering_close(boost::beast::tcp_stream& stream);
    api_error too_large_error() const;
    void begin_shutdown();  // on context 0
    void cut_remaining();   // on context 0
    void stop_contexts();   // on context 0
    void connection_done(const slot_ptr& slot);

    using work_guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

    const server_config& cfg_;
    const router& routes_;
    // Declared first, so destroyed after everything on them; a context's destructor destroys the
    // coroutine frames still suspended on it (connections that were cut).
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    // Keep every context running while it has nothing to do (context 0 too: once the acceptor is
    // closed its only work may be on other threads); released when the server stops.
    std::vector<work_guard> work_;
    boost::asio::io_context::executor_type control_;  // context 0
    std::size_t next_context_ = 0;                    // round robin (only touched by accept_loop)
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer grace_timer_;
    boost::asio::ip::tcp::endpoint bound_;
    std::size_t max_connections_ = 0;  // server.max_connections, or derived from RLIMIT_NOFILE
    int spare_fd_ = -1;                // given up to answer a client when accept runs out of descriptors
    std::atomic<bool> draining_{false};
    std::atomic<bool> cut_{false};

    std::mutex connections_mutex_;
    std::list<slot_ptr> connections_;
};

}  // namespace sluice
