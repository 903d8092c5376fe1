// The fast path reads the chunks real servers send for each token, and declines what it cannot be
// sure of (tests/fuzz/fuzz_openai_upstream_events.cpp checks it agrees with the parser).
#include "providers/openai_chunk_scan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

TEST(openai_chunk_scan, reads_the_text_chunk_of_a_token) {
    openai_text_chunk chunk;
    ASSERT_TRUE(scan_openai_text_chunk(
        R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",)"
        R"("system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hel\"lo\n"},)"
        R"("logprobs":null,"finish_reason":null}],"usage":null})",
        chunk));
    EXPECT_EQ(chunk.content, "Hel\"lo\n");
    EXPECT_EQ(chunk.thinking, "");
    EXPECT_FALSE(chunk.has_finish);
}

TEST(openai_chunk_scan, reads_the_finish_and_the_reasoning) {
    openai_text_chunk chunk;
    ASSERT_TRUE(scan_openai_text_chunk(
        R"( {"choices": [ {"delta": {"reasoning": "hmm", "content": null}, "finish_reason": "length"} ]} )",
        chunk));
    EXPECT_EQ(chunk.thinking, "hmm");
    EXPECT_EQ(chunk.content, "");
    EXPECT_TRUE(chunk.has_finish);
    EXPECT_EQ(chunk.finish_reason, "length");
}

TEST(openai_chunk_scan, declines_what_the_parser_must_read) {
    const std::vector<std::string> declined{
        R"({"choices":[{"delta":{"content":"caf\u00e9"}}]})",
        "{\"choices\":[{\"delta\":{\"content\":\"caf\xc3\xa9\"}}]}",
        R"({"choices":[{"delta":{"tool_calls":[{"index":0}]}}]})",
        R"({"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}})",
        R"({"error":{"message":"overloaded"}})",
        R"({"choices":[{"delta":{"content":"a"},"delta":{"content":"b"}}]})",
        R"({"choices":[{"message":{"content":"whole"}}]})",
        R"({"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]})",
        R"({"x":1.5,"choices":[{"delta":{"content":"a"}}]})",
        R"({"x":01,"choices":[{"delta":{"content":"a"}}]})",
        R"({"choices":[{"delta":{"content":"a"}}]} extra)",
        R"({"choices":[{"delta":{"content":"a"}},]})",
        R"({"id":"c"})",
        "[DONE]",
        "",
    };
    for (const auto& text : declined) {
        openai_text_chunk chunk;
        EXPECT_FALSE(scan_openai_text_chunk(text, chunk)) << text;
    }
}

}  // namespace
}  // namespace sluice
