// Fuzz target for the OpenAI upstream stream (/chat/completions SSE -> chunks): see upstream_events.h.
#include "providers/openai_provider.h"
#include "upstream_events.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sluice::fuzz::run_upstream_events(data, size, sluice::take_openai_stream_event);
}
