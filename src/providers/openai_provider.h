#pragma once
// provider = "openai": any OpenAI-compatible /chat/completions endpoint, streamed.
#include <boost/json/object.hpp>
#include <memory>

#include "core/chat.h"
#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

struct sse_event;  // upstream/sse_parser.h (`struct`: http/sse.h has a function of that name)
struct cloud_stream_state;

// The upstream I/O runs on the io_context of each calling coroutine (see http_client.h). The key is
// read from the environment variable cfg.api_key_env at construction; it is never logged.
std::shared_ptr<provider> make_openai_provider(const model_config& cfg);

// The /chat/completions body for `request` (no model or stream members): messages with image parts,
// tool calls and tool results, tools, tool_choice, response_format, and the client's members
// sluice does not interpret.
boost::json::object openai_chat_body(const chat_request& request);

// One `data:` event of the /chat/completions stream (a chunk, an error or [DONE]) into `out`; false
// to stop the stream (after an error). What the provider's stream loop calls; public for the fuzz
// target (tests/fuzz/fuzz_openai_upstream_events.cpp).
bool take_openai_stream_event(const struct sse_event& event, cloud_stream_state& state, chunk_batch& out);

// The same, always through the JSON parser (take_openai_stream_event reads the common text chunk
// without it): for the fuzz target's check that both read every event alike.
bool take_parsed_openai_stream_event(const struct sse_event& event, cloud_stream_state& state,
                                     chunk_batch& out);

}  // namespace sluice
