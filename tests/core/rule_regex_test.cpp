// The rules' regex engine against std::regex (ECMAScript, icase) on the patterns it accepts, and
// what it refuses.
#include "core/rule_regex.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace sluice {
namespace {

bool search(const std::string& pattern, const std::string& text) {
    std::string error;
    const auto re = rule_regex::compile(pattern, error);
    EXPECT_TRUE(re.has_value()) << pattern << ": " << error;
    return re && re->search(text);
}

std::string refusal(const std::string& pattern) {
    std::string error;
    const auto re = rule_regex::compile(pattern, error);
    return re ? std::string() : error;
}

TEST(rule_regex, agrees_with_std_regex) {
    const std::vector<std::string> patterns = {
        "deploy",
        "\\bdeploy(ment)?\\b",
        "^hi",
        "bye$",
        "^$",
        "a|b|cd",
        "colou?r",
        "x+y",
        "x*y",
        "(ab){2}",
        "(ab){2,}",
        "a{2,3}b",
        "[a-c]+z",
        "[^a-z ]",
        "\\d{3}-\\d{4}",
        "\\w+@\\w+\\.com",
        "\\s\\S",
        "\\Bend",
        "h.llo",
        "(?:foo|bar)baz",
        "a.*b.*c",
        "\\.",
        "[.]x",
        "(urgent|asap).*(down|broken)",
        "[\\]a]",
        "\\x41",
        "a+?b",
        "(a|)+b",
        "\\bx\\b",
        "[-a]",
    };
    const std::vector<std::string> texts = {
        "",
        "deploy",
        "redeploy",
        "Deployment now",
        "hi there",
        "say bye",
        "bye bye",
        "ab",
        "cd",
        "color",
        "COLOUR",
        "xxy",
        "y",
        "abab",
        "ababab",
        "aab",
        "aaab",
        "aaaab",
        "bcz",
        "ABC!",
        "555-1234",
        "me@x.com",
        " x",
        "the end",
        "bend",
        "hello",
        "h\nllo",
        "foobaz",
        "barbaz",
        "a1b2c3",
        "a.b",
        ".x",
        "]",
        "A",
        "urgent: it is down",
        "asap",
        "x",
        "xx",
        "a-b",
        "-",
        "\xc3\xa9t\xc3\xa9 deploy",
    };
    for (const auto& pattern : patterns) {
        const std::regex reference(pattern, std::regex::ECMAScript | std::regex::icase);
        for (const auto& text : texts) {
            EXPECT_EQ(search(pattern, text), std::regex_search(text, reference))
                << "pattern " << pattern << " text \"" << text << "\"";
        }
    }
}

TEST(rule_regex, refuses_what_it_cannot_run_and_says_why) {
    EXPECT_NE(refusal("(a)\\1").find("back-reference"), std::string::npos);
    EXPECT_NE(refusal("(?=a)").find("look-around"), std::string::npos);
    EXPECT_NE(refusal("(a").find("missing ')'"), std::string::npos);
    EXPECT_NE(refusal("a)").find("unmatched ')'"), std::string::npos);
    EXPECT_NE(refusal("[a").find("missing ']'"), std::string::npos);
    EXPECT_NE(refusal("*a").find("nothing to repeat"), std::string::npos);
    EXPECT_NE(refusal("a{3,2}").find("n below m"), std::string::npos);
    EXPECT_NE(refusal("\\q").find("unknown escape"), std::string::npos);
    EXPECT_NE(refusal("[z-a]").find("out of order"), std::string::npos);
    EXPECT_NE(refusal("").find("1 to 512 bytes"), std::string::npos);
    EXPECT_EQ(refusal(std::string(512, 'a')), "");
    EXPECT_NE(refusal(std::string(513, 'a')).find("1 to 512 bytes"), std::string::npos);
    EXPECT_EQ(refusal("a{100}"), "");
    EXPECT_NE(refusal("a{101}").find("above 100"), std::string::npos);
    // The automaton's size is bounded: a pattern that needs 2^n states is refused at load.
    EXPECT_EQ(refusal("[ab]*a[ab]{8}"), "");
    EXPECT_NE(refusal("[ab]*a[ab]{20}").find("more than 4096 states"), std::string::npos);
}

TEST(rule_regex, searches_a_long_text_in_one_pass) {
    std::string text(100000, 'x');
    text += " deploy";
    EXPECT_TRUE(search("\\bdeploy\\b", text));
    EXPECT_FALSE(search("\\bdeploy\\b", text.substr(0, 100003)));
    EXPECT_FALSE(search("(x+x+)+y", std::string(5000, 'x')));  // no backtracking to blow up
}

}  // namespace
}  // namespace sluice
