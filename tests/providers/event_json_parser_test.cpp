// The reused upstream-event parser must read every event exactly as boost::json::parse does.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <vector>

#include "providers/cloud_common.h"

namespace sluice {
namespace {

namespace json = boost::json;

TEST(event_json_parser, agrees_with_boost_json_parse_on_good_and_bad_input) {
    const std::vector<std::string> inputs{
        R"({"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})",
        "not json",
        R"({"a":1} trailing)",
        "",
        "  {\"a\" : [1, 2.5, -3e2, true, false, null, \"\\u00e9\\n\"]}  ",
        R"({"a":1,"a":2})",
        R"({"unterminated":)",
        "[" + std::string(40, '[') + std::string(41, ']'),  // deeper than the default limit
        R"({"error":{"message":"overloaded","type":"server_error"}})",
        R"("just a string")",
        "{\"big\":\"" + std::string(20000, 'x') + "\"}",  // more than the reused buffer holds
        R"({"after":"the big one"})",
    };
    event_json_parser parser;
    for (const auto& input : inputs) {
        boost::system::error_code ec;
        const auto expected = json::parse(input, ec);
        const json::value* got = parser.parse(input);
        if (ec) {
            EXPECT_EQ(got, nullptr) << input;
        } else {
            ASSERT_NE(got, nullptr) << input;
            EXPECT_EQ(json::serialize(*got), json::serialize(expected)) << input;
        }
    }
}

TEST(event_json_parser, many_events_in_a_row_each_read_whole) {
    event_json_parser parser;
    for (int i = 0; i < 1000; ++i) {
        const std::string text =
            R"({"choices":[{"delta":{"content":"token )" + std::to_string(i) + R"("}}]})";
        const json::value* value = parser.parse(text);
        ASSERT_NE(value, nullptr);
        EXPECT_EQ(value->at("choices").at(0).at("delta").at("content").as_string(),
                  "token " + std::to_string(i));
    }
}

}  // namespace
}  // namespace sluice
