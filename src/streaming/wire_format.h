#pragma once
// The seam between the streaming core and the APIs: the relay moves provider chunks and knows no
// API; a wire_format (one per API, in src/api/) turns what the relay saw into the bytes its clients
// expect: the stream's events, the whole answer, and the errors before and after the first byte.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"
#include "core/chunk.h"
#include "http/http_types.h"
#include "http/sse.h"

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
    std::string text;       // the answer's text that reached the client
    std::string reasoning;  // the model's thinking that reached the client
    std::string reasoning_signature;
    std::vector<content_part> tool_calls;  // in index order, arguments as assembled so far
    int prompt_tokens = 0;
    int completion_tokens = 0;
    int cached_tokens = 0;
    int cache_write_tokens = 0;
    int reasoning_tokens = 0;
    bool usage_reported = false;  // by the provider; otherwise estimated with count_tokens
    std::string finish_reason;    // stop | length | tool_calls | cancelled | error
    std::optional<api_error> error;
    bool first_byte_sent = false;  // of the response: after this an error can only be in-band
    bool client_gone = false;
    bool timed_out = false;
    std::string model;  // the configured name of the model that answered (after any fallback)

    bool has_content() const { return !text.empty() || !reasoning.empty() || !tool_calls.empty(); }
    // The answer as message parts (reasoning, text, tool calls); empty when it is only text.
    std::vector<content_part> answer_parts() const;
    // Takes one content chunk (delta, tool call start or fragment, reasoning) into the answer.
    void take_content(const stream_chunk& chunk);
};

// One stream's wire format; an object per request, so it may keep the stream's own state (indexes,
// sequence numbers, ids). Each event is added to `events`, which goes out in the next socket write.
class wire_format {
  public:
    virtual ~wire_format() = default;

    // The events for one content chunk; `so_far` already holds it.
    virtual void content(sse_batch& events, const stream_identity& who, const stream_chunk& chunk,
                         const stream_outcome& so_far) = 0;
    // The events that close a successful answer (before data: [DONE] when done_marker()).
    virtual void final(sse_batch& events, const stream_identity& who, const stream_outcome& out) = 0;
    // An error after the stream started: the in-band events that end it.
    virtual void error_events(sse_batch& events, const api_error& error, const stream_identity& who) = 0;
    // The events that end the stream for a reader in another process when the one producing it died
    // (rendered ahead, while the stream runs): as error_events, but this stream's state stays as it
    // is. The default suits a format whose error events hold no state of the stream.
    virtual void lost_events(sse_batch& events, const api_error& error, const stream_identity& who) {
        error_events(events, error, who);
    }
    // The whole response, with its real status, for an error before anything was sent (`who` is null
    // before a model was chosen).
    virtual http_response error_response(const http_request& request, const api_error& error,
                                         std::string_view session_id, const stream_identity* who) = 0;
    // A non-streaming answer that failed after some of it arrived (`so_far` holds it, and it was
    // stored): the error with its real status, with what the answer had when the API can say so.
    virtual http_response partial_error_response(const http_request& request, const api_error& error,
                                                 const stream_identity& who, const stream_outcome& so_far) {
        (void)so_far;
        return error_response(request, error, who.session_id, &who);
    }
    // The body of a non-streaming answer (application/json).
    virtual std::string whole(const stream_identity& who, const stream_outcome& out) = 0;
    // While nothing flows: a comment line unless the API has its own ping event.
    virtual void ping(sse_batch& events) { events.add_comment("ping"); }
    // data: [DONE] after the last event.
    virtual bool done_marker() const { return true; }
};

}  // namespace sluice
