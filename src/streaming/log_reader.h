#pragma once
// A client of a resumable stream: replays its log after an event id, then tails it live, with its own
// heartbeat, until the log ends or the client leaves. The first client of a stream is one too.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/exchange.h"
#include "streaming/stream_log.h"

namespace sluice {

struct log_reader_options {
    std::string stream_id;                       // X-Sluice-Stream-Id
    std::string route;                           // X-Sluice-Route; empty: none
    std::chrono::milliseconds heartbeat{15000};  // `: ping` while nothing flows
    std::chrono::milliseconds retry{1000};       // the `retry:` hint: how soon a client should reconnect
    bool resumed = false;                        // a reconnect: counted in the metrics
};

// Attaches to `log` (the caller may have attached for it already: `attached`), sends the response
// head at once (with the `retry:` hint), then every event after `after_id`. Returns when the log
// ended and everything was written, or when the client left (the connection is then closed).
boost::asio::awaitable<void> serve_stream_log(exchange& ex, std::shared_ptr<stream_log> log,
                                              std::uint64_t after_id, log_reader_options options,
                                              bool attached = false);

}  // namespace sluice
