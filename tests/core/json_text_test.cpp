#include "core/json_text.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

using namespace sluice;

namespace {

std::string as_json_string(std::string_view text) {
    std::string out = "prefix:";
    append_json_string(out, text);
    return out.substr(7);
}

std::string reference(std::string_view text) {
    return boost::json::serialize(boost::json::value(text));
}

}  // namespace

TEST(json_text, escapes_like_boost_json) {
    EXPECT_EQ(as_json_string(""), "\"\"");
    EXPECT_EQ(as_json_string("plain text"), "\"plain text\"");
    EXPECT_EQ(as_json_string("a\"b\\c/d"), R"("a\"b\\c/d")");
    EXPECT_EQ(as_json_string("\b\t\n\f\r"), R"("\b\t\n\f\r")");
    EXPECT_EQ(as_json_string(std::string_view("\0\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
    EXPECT_EQ(as_json_string("h\xC3\xA9llo \xF0\x9F\x98\x80"), "\"h\xC3\xA9llo \xF0\x9F\x98\x80\"");
}

TEST(json_text, every_byte_matches_boost_json) {
    for (int c = 0; c < 256; ++c) {
        const std::string text{'x', static_cast<char>(c), 'y'};
        EXPECT_EQ(as_json_string(text), reference(text)) << "byte " << c;
    }
}

TEST(json_text, random_strings_match_boost_json) {
    std::mt19937 random{42};
    std::uniform_int_distribution<int> length{0, 40};
    std::uniform_int_distribution<int> byte{0, 255};
    for (int round = 0; round < 2000; ++round) {
        std::string text(static_cast<std::size_t>(length(random)), ' ');
        // Mostly ASCII with some of everything, the way tokens look.
        for (auto& c : text)
            c = static_cast<char>(round % 4 == 0 ? byte(random) : 0x20 + byte(random) % 0x60);
        EXPECT_EQ(as_json_string(text), reference(text));
    }
}

TEST(json_text, integers) {
    std::string out;
    append_json_int(out, 0);
    out += ',';
    append_json_int(out, -17);
    out += ',';
    append_json_int(out, std::numeric_limits<std::int64_t>::min());
    out += ',';
    append_json_int(out, 1700000000);
    EXPECT_EQ(out, "0,-17,-9223372036854775808,1700000000");
}
