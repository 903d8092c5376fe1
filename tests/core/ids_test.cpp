#include "core/ids.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

TEST(ids, sha256_hex_matches_the_published_vectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ids, tokens_are_url_safe_and_of_the_length_asked) {
    for (std::size_t len : {0U, 1U, 20U, 40U, 600U}) {  // 600: more than one pooled block at once
        const auto token = random_token(len);
        ASSERT_EQ(token.size(), len);
        EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                  std::string::npos);
    }
    const auto key = generate_api_key();
    EXPECT_EQ(key.rfind("sk-", 0), 0U);
    EXPECT_EQ(key.size(), 43U);
}

TEST(ids, ids_from_many_threads_never_repeat) {
    constexpr int k_threads = 4;
    constexpr int k_each = 5000;
    std::vector<std::vector<std::string>> made(k_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&made, t] {
            for (int i = 0; i < k_each; ++i) made[t].push_back(new_id("s_"));
        });
    }
    for (auto& thread : threads) thread.join();
    std::set<std::string> all;
    for (const auto& ids : made) all.insert(ids.begin(), ids.end());
    EXPECT_EQ(all.size(), static_cast<std::size_t>(k_threads * k_each));
}

TEST(ids, symbols_are_spread_over_the_whole_alphabet) {
    // 64,000 symbols: each of the 64 should turn up about 1,000 times; a stuck or biased pool would not.
    std::array<int, 256> seen{};
    for (int i = 0; i < 1000; ++i)
        for (char c : random_token(64)) ++seen[static_cast<unsigned char>(c)];
    int used = 0;
    for (int count : seen) {
        if (count == 0) continue;
        ++used;
        EXPECT_GT(count, 700);
        EXPECT_LT(count, 1300);
    }
    EXPECT_EQ(used, 64);
}

}  // namespace
}  // namespace sluice
