#pragma once
// Cheap features of a request for the auto policy: what the message looks like (length, code, math,
// reasoning cues, requests for depth, script) and where the conversation is (turns so far, length).
// scripts/router_features.py computes exactly the same values for training; the two must change
// together (the parity test in tests/routing checks them against the shipped model).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice {

enum class dense_feature : std::size_t {
    length,        // log of the message size, ~1 at 4 KiB
    lines,         // newlines, saturating at 40
    code,          // code cue words, braces/semicolons, ``` fences
    math,          // math cue words and operators
    digits,        // share of digits
    reasoning,     // "why", "explain", "step by step", ...
    depth,         // "detailed", "in depth", "essay", ...
    non_ascii,     // share of non-ASCII bytes: other scripts and languages
    questions,     // question marks
    capitals,      // share of capitals among ASCII letters: symbols, acronyms, names, formulas
    turns,         // turns of the conversation before this one
    conversation,  // log of the conversation size so far
    count
};
inline constexpr std::size_t k_dense_feature_count = static_cast<std::size_t>(dense_feature::count);

struct request_features {
    std::array<double, k_dense_feature_count> dense{};
    std::vector<std::uint32_t> buckets;  // hashed word unigrams and bigrams of the message head
    int code_hits = 0;
    int math_hits = 0;
    int reasoning_hits = 0;
    int depth_hits = 0;
    std::size_t message_bytes = 0;
    std::size_t conversation_chars = 0;
    int turns_so_far = 0;

    double operator[](dense_feature f) const { return dense[static_cast<std::size_t>(f)]; }
};

// Reads at most the model's max_bytes of the message, so the cost is bounded for any message size.
request_features extract_features(std::string_view message, int turns_so_far = 0,
                                  std::size_t conversation_chars = 0);

// 32-bit FNV-1a, the hash the training script uses for n-gram buckets.
std::uint32_t fnv1a32(std::string_view bytes, std::uint32_t seed = 0x811C9DC5u);

}  // namespace sluice
