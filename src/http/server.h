#pragma once
// The HTTP/1.1 server: a TCP acceptor, one coroutine per connection on its own strand, an
// io_context run by server.io_threads threads, and a task group so shutdown can let streams finish
// (up to server.shutdown_grace_s) before cutting them.
#include <atomic>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <string>

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

    // The context the io threads run; providers built on it share the server's threads.
    boost::asio::io_context& io_context() { return io_; }

    // Binds and listens on cfg.listen; logs `listening on HOST:PORT` with the bound port.
    // Throws std::runtime_error naming the address when it cannot bind.
    void listen();
    boost::asio::ip::tcp::endpoint local_endpoint() const { return bound_; }

    // Runs the io threads until SIGINT/SIGTERM (when handle_signals) or stop(), then drains.
    // Returns false when connections had to be cut (their coroutines never finished).
    bool run(bool handle_signals = true);

    // Thread-safe: begins the graceful shutdown (stop accepting, finish streams, then cut).
    void stop();

  private:
    struct connection_slot {
        boost::asio::any_io_executor strand;
        boost::asio::cancellation_signal cancel;
        bool busy = false;  // inside a request (only touched on `strand`)
    };
    using slot_ptr = std::shared_ptr<connection_slot>;

    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve_connection(slot_ptr slot, boost::beast::tcp_stream stream);
    boost::asio::awaitable<void> reject(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
                                        const http_request& request, const api_error& error);
    boost::asio::awaitable<void> lingering_close(boost::beast::tcp_stream& stream);
    api_error too_large_error() const;
    void begin_shutdown();  // on control_
    void cut_remaining();   // on control_
    void connection_done(const slot_ptr& slot);

    const server_config& cfg_;
    const router& routes_;
    boost::asio::io_context io_;
    boost::asio::strand<boost::asio::io_context::executor_type> control_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer grace_timer_;
    boost::asio::ip::tcp::endpoint bound_;
    std::atomic<bool> draining_{false};
    std::atomic<bool> cut_{false};

    std::mutex connections_mutex_;
    std::list<slot_ptr> connections_;
};

}  // namespace sluice
