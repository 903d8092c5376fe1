#pragma once
// A fast path for the one event an OpenAI-compatible stream sends per token: a chat.completion.chunk
// of scalars and one choice whose delta carries text. Read in one pass over the bytes, without
// building a JSON value; anything it does not know for certain (non-ASCII bytes, \u escapes, numbers
// with a fraction or exponent, tool calls, usage, an error, a repeated member it reads, nested values
// it does not read) makes it decline, and the caller reads the event with the full parser instead.
// When it accepts, the event is valid JSON and the result is what take_openai_stream_event reads
// from the parsed value (tests/fuzz/fuzz_openai_upstream_events.cpp checks both agree).
#include <string>
#include <string_view>

namespace sluice {

struct openai_text_chunk {
    std::string content;        // choices[0].delta.content ("" when absent or null)
    std::string thinking;       // delta.reasoning_content, else delta.reasoning
    bool has_finish = false;    // choices[0].finish_reason was a string
    std::string finish_reason;  // ... and this one
};

// True when `text` is such a chunk, read into `out` (which starts empty); false to use the parser.
bool scan_openai_text_chunk(std::string_view text, openai_text_chunk& out);

}  // namespace sluice
