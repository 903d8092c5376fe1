// Fuzz target for the Anthropic upstream stream (Messages SSE -> chunks): see upstream_events.h.
#include "providers/anthropic_provider.h"
#include "upstream_events.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sluice::fuzz::run_upstream_events(data, size, sluice::take_anthropic_stream_event);
}
