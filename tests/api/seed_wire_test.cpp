// The seed events built by hand must be the bytes json::serialize gave before.
#include "api/seed_wire.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

namespace sluice {
namespace {

namespace json = boost::json;

TEST(seed_wire, the_seed_delta_event_is_byte_identical_to_the_serialized_object) {
    const std::vector<std::string> texts{"",
                                         "Hel",
                                         "a \"quote\" \\ and /",
                                         "tab\tnew\nline\r",
                                         std::string("nul\0", 4),
                                         "\x01\x7f",
                                         "h\xC3\xA9 \xF0\x9F\x98\x80"};
    for (const auto& session : texts) {
        for (const auto& content : texts) {
            const stream_identity who{.session_id = session, .model_used = "cloud_large", .model = content};
            const auto expected = json::serialize(json::object{{"content", content},
                                                               {"session_id", who.session_id},
                                                               {"model_used", who.model_used},
                                                               {"model", who.model}});
            EXPECT_EQ(delta_event_json(who, content), expected);
            std::string appended = "data: ";
            append_delta_event_json(appended, who, content);
            EXPECT_EQ(appended, "data: " + expected);
        }
    }
}

TEST(seed_wire, the_seed_format_frames_one_chunk_per_delta) {
    const auto format = make_seed_wire_format(true);
    const stream_identity who{.session_id = "s1", .model_used = "local_small", .model = "local"};
    sse_batch events;
    stream_outcome so_far;
    format->content(events, who, stream_chunk::delta("Hel"), so_far);
    format->content(events, who, stream_chunk::delta("lo"), so_far);
    // The seed API has no tools: a tool call or reasoning reaches no seed client.
    format->content(events, who, stream_chunk::tool_call_start(0, "call_1", "f"), so_far);
    format->content(events, who, stream_chunk::reasoning("hmm"), so_far);
    const std::string first =
        R"(data: {"content":"Hel","session_id":"s1","model_used":"local_small","model":"local"})"
        "\n\n";
    const std::string second =
        R"(data: {"content":"lo","session_id":"s1","model_used":"local_small","model":"local"})"
        "\n\n";
    sse_batch expected;
    expected.add_event(first.substr(6, first.size() - 8));
    expected.add_event(second.substr(6, second.size() - 8));
    EXPECT_EQ(events.wire_bytes(), expected.wire_bytes());
}

}  // namespace
}  // namespace sluice
