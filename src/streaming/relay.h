#pragma once
// The streaming core: a provider runs as a producer coroutine pushing its chunk batches (what one
// upstream read gave) into a small bounded channel; the writer loop takes one batch at a time and
// writes its events with one socket write before taking the next (backpressure), sending `: ping`
// whenever nothing arrived for heartbeat_interval (the wait for the first token counts). A pending
// read on the client socket races the whole operation: when the client leaves, everything (the
// provider included) is cancelled at once through the coroutines' cancellation slots. So is
// everything when the request deadline passes. No coroutine of the race throws to end it.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"
#include "http/exchange.h"
#include "providers/provider.h"
#include "streaming/wire_format.h"

namespace sluice {

struct relay_options {
    std::chrono::milliseconds heartbeat_interval{15000};
    std::chrono::milliseconds request_timeout{300000};
    // The answer's length, whatever the upstream does: at most this many bytes of text, reasoning
    // and tool arguments (server.max_answer_bytes; 0 = neither cap), and for a cloud model at most the
    // request's max_tokens, estimated as it streams (a delta costs its bytes / 4, at least 1). At
    // either cap the upstream is cancelled and the answer finishes with finish_reason "length".
    std::size_t max_answer_bytes = 0;
    // Where usage is estimated with a model whose counting_is_costly(); null: in place.
    boost::asio::thread_pool* compute_pool = nullptr;
    bool streaming = true;          // false: collect the answer, then one JSON object (POST /api/v1/chat)
    wire_format* format = nullptr;  // the API's bytes; required
};

// Called exactly once with the final outcome: before the last event goes out (so a follow-up
// request on the same session already sees this turn), or after the stream when it was cut.
// Returns nullopt when the outcome was recorded; otherwise the error that ends the stream in place
// of its final event (the answer reached the client but was not stored: the client must not be told
// it succeeded). A hook that throws counts as such a failure.
using outcome_hook = std::function<boost::asio::awaitable<std::optional<api_error>>(const stream_outcome&)>;

class orchestrator;

// One model the relay may stream from: the request shaped for it (history trimmed to its context,
// max_tokens capped) and how its events name it.
struct relay_candidate {
    provider_ptr model;
    chat_request request;
    stream_identity identity;
};

// The fallback loop (SPEC §5), for every endpoint: streams candidates[0]; when a candidate yields an
// error before its first delta (connect, 5xx, 429, timeout, local queue full) the client sees nothing
// of it and the next candidate answers, with route.reason "fallback:<why>". After the first delta a
// failure is an in-band error event. `routing` (may be null) hears report_success when a stream
// completes and report_failure for each failure; a client cancel reports neither.
boost::asio::awaitable<void> relay_stream(exchange& ex, std::vector<relay_candidate> candidates,
                                          const relay_options& options, stream_outcome& outcome,
                                          outcome_hook on_final, orchestrator* routing);

class stream_log;

// The same for a resumable stream: the events go to `log` instead of a socket (every client reads
// them from there), and the stream runs on until the last reader has been gone for `keep` (zero:
// cancelled as soon as no reader is attached; the log's wait never returns while one is). Every
// error is in-band (there is no response status to carry it). The caller finishes the log if this
// did not.
boost::asio::awaitable<void> relay_to_log(stream_log& log, std::chrono::milliseconds keep,
                                          std::chrono::steady_clock::time_point started,
                                          std::vector<relay_candidate> candidates,
                                          const relay_options& options, stream_outcome& outcome,
                                          outcome_hook on_final, orchestrator* routing);

// "role=cloud_large; model=gpt; reason=code; score=0.71": the X-Sluice-Route header.
std::string route_header_value(const stream_identity& identity);

}  // namespace sluice
