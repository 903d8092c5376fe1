#pragma once
// The shared driver of the upstream event targets: the bytes go through sse_parser in reads of a
// size the first byte chooses, each event to the provider's handler, as run_cloud_stream does (an
// oversized event, the handler's stop, the end marker, a stream that ends before it finished).
// Property: the chunks are well formed: tool calls numbered 0..n-1 in the order they start, every
// argument fragment for a call that started, text as valid UTF-8 as it came, token counts >= 0,
// and the stream ends with exactly one finish or one error, nothing after it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "providers/cloud_common.h"
#include "upstream/sse_parser.h"

namespace sluice::fuzz {

using event_handler = bool (*)(const sse_event&, cloud_stream_state&, chunk_batch&);

inline void check_chunks(const chunk_batch& chunks) {
    int calls = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        const auto& chunk = chunks[i];
        const bool last = i + 1 == chunks.size();
        switch (chunk.type) {
            case stream_chunk::kind::delta:
                check(!chunk.text.empty() && valid_utf8(chunk.text), "a delta is non-empty UTF-8");
                break;
            case stream_chunk::kind::reasoning:
                check(!chunk.text.empty() || !chunk.signature.empty(), "reasoning carries something");
                check(valid_utf8(chunk.text), "reasoning is UTF-8");
                break;
            case stream_chunk::kind::tool_call_start:
                check(chunk.index == calls, "tool calls are numbered 0..n-1 in the order they start");
                check(!chunk.id.empty() && valid_utf8(chunk.id) && valid_utf8(chunk.name),
                      "a call has an id");
                ++calls;
                break;
            case stream_chunk::kind::tool_call_delta:
                check(chunk.index >= 0 && chunk.index < calls, "arguments for a call that started");
                check(!chunk.text.empty() && valid_utf8(chunk.text), "arguments are non-empty UTF-8");
                break;
            case stream_chunk::kind::usage:
                check(i + 2 == chunks.size() && chunks.back().type == stream_chunk::kind::finish,
                      "usage comes once, just before the finish");
                check(chunk.prompt_tokens >= 0 && chunk.completion_tokens >= 0 && chunk.cached_tokens >= 0 &&
                          chunk.cache_write_tokens >= 0 && chunk.reasoning_tokens >= 0,
                      "token counts are not negative");
                check(chunk.cached_tokens + static_cast<long long>(chunk.cache_write_tokens) <=
                          chunk.prompt_tokens,
                      "cached prompt tokens are part of the prompt");
                break;
            case stream_chunk::kind::finish:
                check(last, "nothing after the finish");
                check(chunk.finish_reason == "stop" || chunk.finish_reason == "length" ||
                          chunk.finish_reason == "tool_calls",
                      "a known finish reason");
                check(calls == 0 || chunk.finish_reason != "stop", "a turn of tool calls ends in tool_calls");
                break;
            case stream_chunk::kind::error:
                check(last, "nothing after an error, and only one");
                check(chunk.code >= 400 && chunk.code <= 599, "an error has an HTTP-like code");
                check(!chunk.message.empty() && valid_utf8(chunk.message), "an error has a message");
                break;
        }
    }
    check(!chunks.empty(), "a stream ends with a finish or an error");
    const auto end = chunks.back().type;
    check(end == stream_chunk::kind::finish || end == stream_chunk::kind::error, "... always");
}

inline int run_upstream_events(const std::uint8_t* data, std::size_t size, event_handler on_event) {
    if (size == 0) return 0;
    const std::size_t stride = 1 + data[0] % 64;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

    // The loop of run_cloud_stream (src/providers/cloud_common.cpp) without the socket.
    sse_parser parser;
    cloud_stream_state state;
    chunk_batch all;
    chunk_batch batch;
    bool stopped = false;
    const sse_parser::event_handler take = [&](const sse_event& event) {
        if (!on_event(event, state, batch)) {
            stopped = true;
            return false;
        }
        return !state.ended;
    };
    for (std::size_t at = 0; at < bytes.size() && !state.ended; at += stride) {
        parser.feed(bytes.substr(at, stride), take);
        if (!stopped && parser.overflowed()) {
            batch.push_back(stream_chunk::error(502, "the upstream sent an oversized event"));
            stopped = true;
        }
        for (auto& chunk : batch) all.push_back(std::move(chunk));
        batch.clear();
        if (stopped) break;
    }
    if (!stopped) {
        if (!state.ended && state.finish_reason.empty()) {
            all.push_back(stream_chunk::error(502, "the upstream stream ended before it finished"));
        } else {
            auto usage = stream_chunk::usage(state.prompt_tokens, state.completion_tokens);
            usage.cached_tokens = state.cached_tokens;
            usage.cache_write_tokens = state.cache_write_tokens;
            usage.reasoning_tokens = state.reasoning_tokens;
            all.push_back(std::move(usage));
            std::string finish = state.finish_reason.empty() ? "stop" : state.finish_reason;
            if (state.tool_calls > 0 && finish == "stop") finish = "tool_calls";
            all.push_back(stream_chunk::finish(std::move(finish)));
        }
    }
    check_chunks(all);
    return 0;
}

}  // namespace sluice::fuzz
