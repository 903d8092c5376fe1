#include "inference/text_assembler.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(text_assembler, holds_a_character_split_across_pieces) {
    text_assembler assembler;
    const std::string e_acute = "\xC3\xA9";
    EXPECT_EQ(assembler.push("caf" + e_acute.substr(0, 1)).text, "caf");
    EXPECT_EQ(assembler.push(e_acute.substr(1)).text, e_acute);
    const std::string han = "\xE4\xBD\xA0";  // 你, one byte per piece
    EXPECT_EQ(assembler.push(han.substr(0, 1)).text, "");
    EXPECT_EQ(assembler.push(han.substr(1, 1)).text, "");
    EXPECT_EQ(assembler.push(han.substr(2)).text, han);
}

TEST(text_assembler, replaces_bytes_that_can_never_form_a_character) {
    text_assembler assembler;
    EXPECT_EQ(assembler.push("a\xC3").text, "a");
    EXPECT_EQ(assembler.push("b").text,
              "\xEF\xBF\xBD"
              "b");  // the lead byte was not continued
    EXPECT_EQ(assembler.push("\x80x").text,
              "\xEF\xBF\xBD"
              "x");  // a lone continuation byte
    EXPECT_EQ(assembler.push("\xF0\x9F").text, "");
    EXPECT_EQ(assembler.flush(), "\xEF\xBF\xBD");  // unfinished at the end
}

TEST(text_assembler, stop_string_across_pieces_is_not_emitted) {
    text_assembler assembler({"END"});
    EXPECT_EQ(assembler.push("hello E").text, "hello ");
    EXPECT_EQ(assembler.push("N").text, "");
    const auto out = assembler.push("Dtrailing");
    EXPECT_TRUE(out.stopped);
    EXPECT_EQ(out.text, "");
    EXPECT_EQ(assembler.push("more").text, "");
    EXPECT_EQ(assembler.flush(), "");
}

TEST(text_assembler, a_false_start_of_a_stop_string_is_released) {
    text_assembler assembler({"END", "\n\n"});
    EXPECT_EQ(assembler.push("EN").text, "");
    EXPECT_EQ(assembler.push("x\n").text, "ENx");
    const auto out = assembler.push("\nafter");
    EXPECT_TRUE(out.stopped);
    EXPECT_EQ(out.text, "");
    text_assembler other({"END"});
    EXPECT_EQ(other.push("abcEN").text, "abc");
    EXPECT_EQ(other.flush(), "EN");
}

TEST(text_assembler, validates_utf8) {
    EXPECT_TRUE(is_valid_utf8("plain ascii"));
    EXPECT_TRUE(is_valid_utf8("\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80"));
    EXPECT_FALSE(is_valid_utf8("\xC3"));
    EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));  // a surrogate
    EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));      // overlong
}

}  // namespace
}  // namespace sluice
