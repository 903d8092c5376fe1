#pragma once
// The seed API's wire format (SPEC §3): every event one JSON object on one `data:` line, with
// `content` in each (the reference aiohttp reader's contract), then data: [DONE]. The seed API has
// no tools: only the answer's text reaches its clients.
#include <memory>
#include <string>
#include <string_view>

#include "streaming/wire_format.h"

namespace sluice {

// `streaming` picks how an error before the stream is shaped: an SSE body with the real status
// (POST /api/v1/chat/stream, or /api/v1/chat asked to stream) or one JSON object.
std::unique_ptr<wire_format> make_seed_wire_format(bool streaming);

// "role=cloud_large; model=gpt; reason=code; score=0.71" is route_header_value (streaming/relay.h).
std::string delta_event_json(const stream_identity& identity, std::string_view content);
// The same event appended to `out`, byte for byte (no JSON object built per token).
void append_delta_event_json(std::string& out, const stream_identity& identity, std::string_view content);
std::string final_event_json(const stream_identity& identity, const stream_outcome& outcome);
// {"error","code","content":"","session_id"} (+ model_used/model when `identity` is given);
// `content` is what a non-streamed answer had when it failed (it was stored; "" otherwise).
std::string error_event_json(const api_error& error, std::string_view session_id,
                             const stream_identity* identity = nullptr, std::string_view content = {});
// The POST /api/v1/chat answer: {content, session_id, model_used, model, finish_reason, usage, route}.
std::string chat_response_json(const stream_identity& identity, const stream_outcome& outcome);

}  // namespace sluice
