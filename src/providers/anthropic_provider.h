#pragma once
// provider = "anthropic": Anthropic's Messages API (/v1/messages), streamed.
#include <memory>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

struct sse_event;  // upstream/sse_parser.h (`struct`: http/sse.h has a function of that name)
struct cloud_stream_state;

// The upstream I/O runs on the io_context of each calling coroutine (see http_client.h). The key is
// read from the environment variable cfg.api_key_env at construction and sent as x-api-key; it is
// never logged. base_url defaults to https://api.anthropic.com/v1.
std::shared_ptr<provider> make_anthropic_provider(const model_config& cfg);

// One event of the Messages stream (message_start, content_block_*, message_delta, message_stop,
// ping, error) into `out`; false to stop the stream (after an error). What the provider's stream
// loop calls; public for the fuzz target (tests/fuzz/fuzz_anthropic_upstream_events.cpp).
bool take_anthropic_stream_event(const struct sse_event& event, cloud_stream_state& state, chunk_batch& out);

}  // namespace sluice
