#include "routing/features.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "routing/router_model.h"

namespace sluice {

namespace {

constexpr std::uint32_t k_fnv_prime = 0x01000193u;
constexpr std::uint8_t k_cue_code = 1, k_cue_math = 2, k_cue_reasoning = 4, k_cue_depth = 8;

std::uint32_t fnv_byte(std::uint32_t h, unsigned char c) {
    return (h ^ c) * k_fnv_prime;
}

// Full 32-bit hash -> cue categories. Keyed on the whole hash, not the bucket, so an ordinary word
// that shares a bucket with a cue does not count as one. A 4096-bit filter on the low bits answers
// "not a cue" for almost every word without touching the map.
struct cue_lookup {
    std::unordered_map<std::uint32_t, std::uint8_t> categories;
    std::array<std::uint64_t, 64> filter{};

    bool maybe(std::uint32_t h) const { return (filter[(h >> 6) & 63] >> (h & 63)) & 1u; }
    std::uint8_t find(std::uint32_t h) const {
        if (!maybe(h)) return 0;
        const auto it = categories.find(h);
        return it == categories.end() ? 0 : it->second;
    }
};

const cue_lookup& cue_table() {
    static const auto table = [] {
        cue_lookup t;
        for (const auto& c : router_model::get().cues) {
            const std::string_view text = c.text;
            const bool bigram = text.find(' ') != std::string_view::npos;
            const std::uint32_t h = fnv1a32(text, fnv_byte(0x811C9DC5u, bigram ? 'b' : 'u'));
            const std::string_view cat = c.category;
            std::uint8_t bit = cat == "code"        ? k_cue_code
                               : cat == "math"      ? k_cue_math
                               : cat == "reasoning" ? k_cue_reasoning
                                                    : k_cue_depth;
            t.categories[h] |= bit;
            t.filter[(h >> 6) & 63] |= std::uint64_t{1} << (h & 63);
        }
        return t;
    }();
    return table;
}

bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Non-overlapping occurrences, as Python's bytes.count.
int count_substr(std::string_view text, std::string_view needle) {
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string_view::npos;
         pos = text.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

double saturate(int value, int cap) {
    return static_cast<double>(std::min(value, cap)) / cap;
}

}  // namespace

std::uint32_t fnv1a32(std::string_view bytes, std::uint32_t seed) {
    std::uint32_t h = seed;
    for (const char c : bytes) h = fnv_byte(h, static_cast<unsigned char>(c));
    return h;
}

request_features extract_features(std::string_view message, int turns_so_far,
                                  std::size_t conversation_chars) {
    const auto& model = router_model::get();
    const auto& cues = cue_table();
    const std::uint32_t mask = (1u << model.hash_bits) - 1;

    request_features f;
    f.message_bytes = message.size();
    f.turns_so_far = turns_so_far;
    f.conversation_chars = conversation_chars;

    const std::string_view head = message.substr(0, std::min(message.size(), model.max_bytes));
    std::string lower(head);
    for (char& c : lower) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }

    int digits = 0, non_ascii = 0;
    for (const char ch : lower) {
        const auto c = static_cast<unsigned char>(ch);
        digits += (c >= '0' && c <= '9');
        non_ascii += (c >= 0x80);
    }

    f.buckets.reserve(2 * std::min<std::size_t>(model.max_tokens, 1 + lower.size() / 2));
    const auto count_cues = [&](std::uint32_t h) {
        const std::uint8_t c = cues.find(h);
        if (c == 0) return;
        f.code_hits += (c & k_cue_code) != 0;
        f.math_hits += (c & k_cue_math) != 0;
        f.reasoning_hits += (c & k_cue_reasoning) != 0;
        f.depth_hits += (c & k_cue_depth) != 0;
    };
    const std::uint32_t unigram_seed = fnv_byte(0x811C9DC5u, 'u');
    const std::uint32_t bigram_seed = fnv_byte(0x811C9DC5u, 'b');
    std::string_view prev;
    std::size_t tokens = 0;
    for (std::size_t i = 0; i < lower.size() && tokens < model.max_tokens;) {
        if (!is_word_byte(static_cast<unsigned char>(lower[i]))) {
            ++i;
            continue;
        }
        std::size_t end = i;
        while (end < lower.size() && is_word_byte(static_cast<unsigned char>(lower[end]))) ++end;
        const std::string_view token(lower.data() + i, end - i);
        i = end;
        ++tokens;
        const std::uint32_t hu = fnv1a32(token, unigram_seed);
        f.buckets.push_back(hu & mask);
        count_cues(hu);
        if (!prev.empty()) {
            const std::uint32_t hb = fnv1a32(token, fnv_byte(fnv1a32(prev, bigram_seed), ' '));
            f.buckets.push_back(hb & mask);
            count_cues(hb);
        }
        prev = token;
    }

    const std::string_view text = lower;
    const int newlines = count_substr(text, "\n");
    const int fences = count_substr(text, "```");
    int braces = 0, operators = 0;
    for (const char c : text) {
        braces += (c == '{' || c == '}' || c == ';');
        operators += (c == '=' || c == '^' || c == '+' || c == '*' || c == '/' || c == '<' || c == '>');
    }
    const int questions = count_substr(text, "?");
    f.code_hits += braces + 4 * fences;
    f.math_hits += operators;

    const double n = static_cast<double>(text.size());
    auto set = [&f](dense_feature which, double value) { f.dense[static_cast<std::size_t>(which)] = value; };
    set(dense_feature::length,
        std::min(std::log1p(static_cast<double>(message.size())) / std::log(4097.0), 1.5));
    set(dense_feature::lines, saturate(newlines, 40));
    set(dense_feature::code, saturate(f.code_hits, 8));
    set(dense_feature::math, saturate(f.math_hits, 8));
    set(dense_feature::digits, n > 0 ? digits / n : 0.0);
    set(dense_feature::reasoning, saturate(f.reasoning_hits, 5));
    set(dense_feature::depth, saturate(f.depth_hits, 3));
    set(dense_feature::non_ascii, n > 0 ? non_ascii / n : 0.0);
    set(dense_feature::questions, saturate(questions, 4));
    set(dense_feature::turns, saturate(std::max(turns_so_far, 0), 10));
    set(dense_feature::conversation,
        std::min(std::log1p(static_cast<double>(conversation_chars)) / std::log(65537.0), 1.5));
    return f;
}

}  // namespace sluice
