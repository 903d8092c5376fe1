// Authorization header parsing (the store lookup is tested with the real store in tests/api).
#include <gtest/gtest.h>

#include "http/auth.h"

namespace sluice {
namespace {

TEST(parse_bearer, accepts_the_bearer_scheme_in_any_case) {
    EXPECT_EQ(parse_bearer("Bearer sk-abc"), "sk-abc");
    EXPECT_EQ(parse_bearer("bearer sk-abc"), "sk-abc");
    EXPECT_EQ(parse_bearer("BEARER sk-abc"), "sk-abc");
    EXPECT_EQ(parse_bearer("Bearer   sk-abc  "), "sk-abc");
    EXPECT_EQ(parse_bearer("  Bearer\tsk-abc"), "sk-abc");
}

TEST(parse_bearer, rejects_other_shapes) {
    EXPECT_FALSE(parse_bearer(""));
    EXPECT_FALSE(parse_bearer("Bearer"));
    EXPECT_FALSE(parse_bearer("Bearer "));
    EXPECT_FALSE(parse_bearer("sk-abc"));
    EXPECT_FALSE(parse_bearer("Basic dXNlcjpwYXNz"));
    EXPECT_FALSE(parse_bearer("Bearer sk-a b"));
    EXPECT_FALSE(parse_bearer("Bearers sk-abc"));
    EXPECT_FALSE(parse_bearer(std::string("Bearer sk-\x01x")));
}

}  // namespace
}  // namespace sluice
