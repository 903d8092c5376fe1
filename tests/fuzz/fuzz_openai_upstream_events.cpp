// Fuzz target for the OpenAI upstream stream (/chat/completions SSE -> chunks): see upstream_events.h.
// Every event also goes through the JSON parser alone, and both readings must agree: the fast path
// for text chunks (src/providers/openai_chunk_scan.h) reads what the parser reads, or declines.
#include "providers/openai_provider.h"
#include "upstream_events.h"

namespace {

bool same_chunk(const sluice::stream_chunk& a, const sluice::stream_chunk& b) {
    return a.type == b.type && a.text == b.text && a.index == b.index && a.id == b.id && a.name == b.name &&
           a.signature == b.signature && a.prompt_tokens == b.prompt_tokens &&
           a.completion_tokens == b.completion_tokens && a.cached_tokens == b.cached_tokens &&
           a.cache_write_tokens == b.cache_write_tokens && a.reasoning_tokens == b.reasoning_tokens &&
           a.finish_reason == b.finish_reason && a.code == b.code && a.message == b.message &&
           a.retry_after_s == b.retry_after_s;
}

bool same_state(const sluice::cloud_stream_state& a, const sluice::cloud_stream_state& b) {
    return a.finish_reason == b.finish_reason && a.has_usage == b.has_usage &&
           a.prompt_tokens == b.prompt_tokens && a.completion_tokens == b.completion_tokens &&
           a.cached_tokens == b.cached_tokens && a.cache_write_tokens == b.cache_write_tokens &&
           a.reasoning_tokens == b.reasoning_tokens && a.deltas == b.deltas && a.ended == b.ended &&
           a.call_of == b.call_of && a.tool_calls == b.tool_calls;
}

bool take_both_ways(const sluice::sse_event& event, sluice::cloud_stream_state& state,
                    sluice::chunk_batch& out) {
    sluice::cloud_stream_state parsed_state = state;
    sluice::chunk_batch parsed_out = out;
    const bool parsed = sluice::take_parsed_openai_stream_event(event, parsed_state, parsed_out);
    const bool taken = sluice::take_openai_stream_event(event, state, out);
    bool same = taken == parsed && same_state(state, parsed_state) && out.size() == parsed_out.size();
    for (std::size_t i = 0; same && i < out.size(); ++i) same = same_chunk(out[i], parsed_out[i]);
    sluice::fuzz::check(same, "the text chunk fast path reads an event as the JSON parser does");
    return taken;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sluice::fuzz::run_upstream_events(data, size, take_both_ways);
}
