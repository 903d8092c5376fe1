#include "upstream/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

// Real shapes, as OpenAI and Anthropic send them.
const std::string k_openai_stream =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"content\":\"lo \\u00e9\xc3\xa9\"},\"finish_reason\":null}]}\n\n"
    "data: "
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
    "{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n"
    "data: [DONE]\n\n";

const std::string k_anthropic_stream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5}}}\n\n"
    "event: content_block_start\n"
    "data: "
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: "
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: "
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}"
    "\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

std::string with_line_endings(const std::string& text, const std::string& ending) {
    std::string out;
    for (char c : text) {
        if (c == '\n') {
            out += ending;
        } else {
            out += c;
        }
    }
    return out;
}

std::vector<sse_event> parse_whole(const std::string& stream) {
    sse_parser parser;
    return parser.feed(stream);
}

std::vector<sse_event> parse_split(const std::string& stream, std::size_t at) {
    sse_parser parser;
    auto events = parser.feed(std::string_view(stream).substr(0, at));
    for (auto& event : parser.feed(std::string_view(stream).substr(at))) events.push_back(std::move(event));
    return events;
}

void expect_same(const std::vector<sse_event>& expected, const std::vector<sse_event>& actual,
                 const std::string& where) {
    ASSERT_EQ(expected.size(), actual.size()) << where;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(expected[i].event, actual[i].event) << where << " event " << i;
        EXPECT_EQ(expected[i].data, actual[i].data) << where << " event " << i;
        EXPECT_EQ(expected[i].id, actual[i].id) << where << " event " << i;
    }
}

TEST(sse_parser, openai_stream_gives_one_event_per_data_line) {
    auto events = parse_whole(k_openai_stream);
    ASSERT_EQ(events.size(), 6u);
    EXPECT_NE(events[1].data.find("\"Hel\""), std::string::npos);
    EXPECT_TRUE(events[5].is_done());
    EXPECT_EQ(events[0].event, "");
}

TEST(sse_parser, anthropic_stream_keeps_event_types) {
    auto events = parse_whole(k_anthropic_stream);
    ASSERT_EQ(events.size(), 7u);
    std::vector<std::string> types;
    for (auto& event : events) types.push_back(event.event);
    EXPECT_EQ(types,
              (std::vector<std::string>{"message_start", "content_block_start", "ping", "content_block_delta",
                                        "content_block_stop", "message_delta", "message_stop"}));
}

TEST(sse_parser, every_split_point_and_line_ending_gives_the_same_events) {
    for (const auto* stream : {&k_openai_stream, &k_anthropic_stream}) {
        for (const std::string ending : {"\n", "\r\n", "\r"}) {
            auto text = with_line_endings(*stream, ending);
            auto expected = parse_whole(text);
            ASSERT_FALSE(expected.empty());
            expect_same(parse_whole(*stream), expected, "line ending");
            for (std::size_t at = 0; at <= text.size(); ++at)
                expect_same(expected, parse_split(text, at), "split at " + std::to_string(at));
        }
    }
}

TEST(sse_parser, byte_by_byte_feeding_gives_the_same_events) {
    auto text = with_line_endings(k_openai_stream, "\r\n");
    sse_parser parser;
    std::vector<sse_event> events;
    for (char c : text)
        for (auto& event : parser.feed(std::string_view(&c, 1))) events.push_back(std::move(event));
    expect_same(parse_whole(text), events, "byte by byte");
}

TEST(sse_parser, multi_line_data_is_joined_with_newlines) {
    auto events = parse_whole("data: first\ndata:second\ndata:  third\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "first\nsecond\n third");  // only one leading space is stripped
}

TEST(sse_parser, comments_and_unknown_fields_are_ignored) {
    auto events = parse_whole(": ping\n\n:\nretry: 100\nfoo: bar\ndata: x\n\n: trailing\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "x");
}

TEST(sse_parser, event_type_resets_but_id_persists) {
    auto events = parse_whole("id: 7\nevent: a\ndata: 1\n\ndata: 2\n\nid\ndata: 3\n\n");
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].event, "a");
    EXPECT_EQ(events[0].id, "7");
    EXPECT_EQ(events[1].event, "");
    EXPECT_EQ(events[1].id, "7");
    EXPECT_EQ(events[2].id, "");
}

TEST(sse_parser, blank_lines_without_data_dispatch_nothing) {
    EXPECT_TRUE(parse_whole("\n\n\nevent: x\n\n").empty());
    auto events = parse_whole("data\n\n");  // a field without a colon has an empty value
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "");
}

TEST(sse_parser, an_unfinished_event_waits_for_its_blank_line) {
    sse_parser parser;
    EXPECT_TRUE(parser.feed("data: partial\n").empty());
    EXPECT_TRUE(parser.feed("data: more").empty());
    auto events = parser.feed("\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "partial\nmore");
}

TEST(sse_parser, a_split_crlf_is_one_line_break) {
    sse_parser parser;
    EXPECT_TRUE(parser.feed("data: a\r").empty());
    auto events = parser.feed("\n\r\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "a");
}

TEST(sse_parser, a_leading_bom_is_skipped_even_when_split) {
    std::string text =
        "\xEF\xBB\xBF"
        "data: x\n\n";
    for (std::size_t at = 0; at <= text.size(); ++at) {
        auto events = parse_split(text, at);
        ASSERT_EQ(events.size(), 1u) << at;
        EXPECT_EQ(events[0].data, "x");
    }
}

TEST(sse_parser, an_oversized_event_stops_the_parser) {
    sse_parser parser(64);
    EXPECT_TRUE(parser.feed("data: " + std::string(100, 'x')).empty());
    EXPECT_TRUE(parser.overflowed());
    EXPECT_TRUE(parser.feed("\n\ndata: y\n\n").empty());
}

TEST(sse_parser, the_handler_sees_each_event_as_it_completes) {
    sse_parser parser;
    std::vector<sse_event> seen;
    const sse_parser::event_handler collect = [&seen](const sse_event& event) {
        seen.push_back(event);
        return true;
    };
    EXPECT_TRUE(parser.feed(k_anthropic_stream.substr(0, 200), collect));
    EXPECT_TRUE(parser.feed(k_anthropic_stream.substr(200), collect));
    expect_same(parse_whole(k_anthropic_stream), seen, "handler");
}

TEST(sse_parser, a_handler_that_returns_false_stops_the_piece) {
    sse_parser parser;
    int calls = 0;
    const sse_parser::event_handler stop_at_second = [&calls](const sse_event&) { return ++calls < 2; };
    EXPECT_FALSE(parser.feed(k_openai_stream, stop_at_second));
    EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace sluice
