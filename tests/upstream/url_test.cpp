#include "upstream/url.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(url, parses_scheme_host_port_and_path) {
    auto parsed = parse_url("https://api.openai.com/v1");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->scheme, "https");
    EXPECT_EQ(parsed->host, "api.openai.com");
    EXPECT_EQ(parsed->port, 443);
    EXPECT_EQ(parsed->path, "/v1");
    EXPECT_EQ(parsed->host_header(), "api.openai.com");
    EXPECT_EQ(parsed->join("/chat/completions"), "/v1/chat/completions");
    EXPECT_EQ(parsed->origin(), "https://api.openai.com:443");
}

TEST(url, explicit_port_trailing_slash_and_no_path) {
    auto parsed = parse_url("HTTP://127.0.0.1:8000/v1/");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->scheme, "http");
    EXPECT_EQ(parsed->port, 8000);
    EXPECT_EQ(parsed->path, "/v1");
    EXPECT_EQ(parsed->host_header(), "127.0.0.1:8000");

    auto bare = parse_url("http://localhost");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->port, 80);
    EXPECT_EQ(bare->path, "/");
    EXPECT_EQ(bare->join("chat/completions"), "/chat/completions");
}

TEST(url, ipv6_literal) {
    auto parsed = parse_url("http://[::1]:9000/api");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->host, "::1");
    EXPECT_EQ(parsed->port, 9000);
    EXPECT_EQ(parsed->host_header(), "[::1]:9000");
}

TEST(url, rejects_what_it_cannot_use) {
    for (const char* bad :
         {"", "api.openai.com/v1", "ftp://x/", "http://", "http://:80/", "http://h:0/", "http://h:65536/",
          "http://h:8x/", "http://user@h/", "http://h/v1?x=1", "http://h#f", "http://[::1/"}) {
        std::string error;
        EXPECT_FALSE(parse_url(bad, &error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

}  // namespace
}  // namespace sluice
