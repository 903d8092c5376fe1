#pragma once
// The streaming core: a provider runs as a producer coroutine pushing its chunk batches (what one
// upstream read gave) into a small bounded channel; the writer loop takes one batch at a time and
// writes its events with one socket write before taking the next (backpressure), sending `: ping`
// whenever nothing arrived for heartbeat_interval (the wait for the first token counts). A pending
// read on the client socket races the whole operation: when the client leaves, everything (the
// provider included) is cancelled at once through the coroutines' cancellation slots. So is
// everything when the request deadline passes. No coroutine of the race throws to end it.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"
#include "http/exchange.h"
#include "providers/provider.h"

namespace sluice {

// Who answers, as every event states it.
struct stream_identity {
    std::string session_id;
    std::string model_used;  // the role
    std::string model;       // the configured name
    std::string route_reason;
    double route_score = 0.0;
};

// Lives outside the cancelled coroutines, so what happened can be stored whatever ended the stream.
struct stream_outcome {
    std::string text;  // what reached the client
    int prompt_tokens = 0;
    int completion_tokens = 0;
    bool usage_reported = false;  // by the provider; otherwise estimated with count_tokens
    std::string finish_reason;    // stop | length | cancelled | error
    std::optional<api_error> error;
    bool first_byte_sent = false;  // of the response: after this an error can only be in-band
    bool client_gone = false;
    bool timed_out = false;
    std::string model;  // the configured name of the model that answered (after any fallback)
};

// The wire format of the events and answers: the seed API's (SPEC §3) unless a route brings its own
// (the OpenAI-compatible one). Each event is one JSON object, sent as one `data:` line; `delta` and
// `final` add their events to the batch of the next socket write.
struct stream_format {
    // The events for one piece of the answer; `first` is true for the first piece.
    std::function<void(sse_batch& events, const stream_identity&, std::string_view content, bool first)>
        delta;
    // The events that close a successful answer, before data: [DONE].
    std::function<void(sse_batch& events, const stream_identity&, const stream_outcome&)> final;
    // An error after the stream started: one in-band event, then [DONE].
    std::function<std::string(const api_error&, const stream_identity&)> error_event;
    // The whole response for an error before anything was sent (`who` is null before a model was chosen).
    std::function<http_response(const http_request&, const api_error&, std::string_view session_id,
                                const stream_identity* who)>
        error_response;
    // A stream that fails before its first byte answers with the real status and one error_event
    // (the seed API) rather than error_response (OpenAI's clients expect a JSON error there).
    bool early_error_as_event = false;
    // The body of a non-streaming answer (application/json).
    std::function<std::string(const stream_identity&, const stream_outcome&)> whole;
};

// The seed format; `streaming` picks how an early error is shaped (SSE event or JSON object).
stream_format seed_stream_format(bool streaming);

struct relay_options {
    std::chrono::milliseconds heartbeat_interval{15000};
    std::chrono::milliseconds request_timeout{300000};
    bool streaming = true;  // false: collect the answer, then one JSON object (POST /api/v1/chat)
    const stream_format* format = nullptr;  // null: seed_stream_format(streaming)
};

// Called exactly once with the final outcome: before the last event goes out (so a follow-up
// request on the same session already sees this turn), or after the stream when it was cut.
using outcome_hook = std::function<boost::asio::awaitable<void>(const stream_outcome&)>;

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

// "role=cloud_large; model=gpt; reason=code; score=0.71": the X-Sluice-Route header.
std::string route_header_value(const stream_identity& identity);

// The seed wire format (SPEC §3).
std::string delta_event_json(const stream_identity& identity, std::string_view content);
// The same event appended to `out`, byte for byte (no JSON object built per token).
void append_delta_event_json(std::string& out, const stream_identity& identity, std::string_view content);
std::string final_event_json(const stream_identity& identity, const stream_outcome& outcome);
// {"error","code","content":"","session_id"} (+ model_used/model when `identity` is given).
std::string error_event_json(const api_error& error, std::string_view session_id,
                             const stream_identity* identity = nullptr);
// The POST /api/v1/chat answer: {content, session_id, model_used, model, finish_reason, usage, route}.
std::string chat_response_json(const stream_identity& identity, const stream_outcome& outcome);

}  // namespace sluice
