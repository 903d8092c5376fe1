#include "routing/features.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "routing/router_model.h"

namespace sluice {

namespace {

constexpr std::uint32_t k_fnv_offset = 0x811C9DC5u;
constexpr std::uint32_t k_fnv_prime = 0x01000193u;
constexpr std::uint8_t k_cue_code = 1, k_cue_math = 2, k_cue_reasoning = 4, k_cue_depth = 8;

std::uint32_t fnv_byte(std::uint32_t h, unsigned char c) {
    return (h ^ c) * k_fnv_prime;
}

// Must equal router_features.bigram_hash.
std::uint32_t bigram_hash(std::uint32_t first, std::uint32_t second) {
    std::uint32_t h = (first * 0x9E3779B1u) ^ second;
    h ^= h >> 15;
    h *= 0x85EBCA6Bu;
    return h ^ (h >> 13);
}

// What each byte is, so one pass over the message computes every count.
enum byte_class : std::uint8_t {
    k_word = 1,  // [a-zA-Z0-9] or any non-ASCII byte: part of a token
    k_digit = 2,
    k_brace = 4,     // { } ;
    k_operator = 8,  // = ^ + * / < >
    k_non_ascii = 16,
    k_newline = 32,
    k_question = 64,
    k_upper = 128,  // A-Z
};

struct byte_tables {
    std::array<std::uint8_t, 256> cls{};
    std::array<unsigned char, 256> lower{};
};

constexpr byte_tables make_byte_tables() {
    byte_tables t;
    for (int c = 0; c < 256; ++c) {
        std::uint8_t k = 0;
        const bool upper = c >= 'A' && c <= 'Z';
        if ((c >= 'a' && c <= 'z') || upper || (c >= '0' && c <= '9') || c >= 0x80) k |= k_word;
        if (c >= '0' && c <= '9') k |= k_digit;
        if (c == '{' || c == '}' || c == ';') k |= k_brace;
        if (c == '=' || c == '^' || c == '+' || c == '*' || c == '/' || c == '<' || c == '>') k |= k_operator;
        if (c >= 0x80) k |= k_non_ascii;
        if (c == '\n') k |= k_newline;
        if (c == '?') k |= k_question;
        if (upper) k |= k_upper;
        t.cls[c] = k;
        t.lower[c] = static_cast<unsigned char>(upper ? c - 'A' + 'a' : c);
    }
    return t;
}
constexpr byte_tables k_bytes = make_byte_tables();

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

std::uint32_t unigram_hash(std::string_view word) {
    return fnv1a32(word, fnv_byte(k_fnv_offset, 'u'));
}

const cue_lookup& cue_table() {
    static const auto table = [] {
        cue_lookup t;
        for (const auto& c : router_model::get().cues) {
            const std::string_view text = c.text;
            const auto space = text.find(' ');
            const std::uint32_t h =
                space == std::string_view::npos
                    ? unigram_hash(text)
                    : bigram_hash(unigram_hash(text.substr(0, space)), unigram_hash(text.substr(space + 1)));
            const std::string_view cat = c.category;
            const std::uint8_t bit = cat == "code"        ? k_cue_code
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
    f.buckets.reserve(2 * std::min<std::size_t>(model.max_tokens, 1 + head.size() / 2));

    const auto count_cues = [&](std::uint32_t h) {
        const std::uint8_t c = cues.find(h);
        if (c == 0) return;
        f.code_hits += (c & k_cue_code) != 0;
        f.math_hits += (c & k_cue_math) != 0;
        f.reasoning_hits += (c & k_cue_reasoning) != 0;
        f.depth_hits += (c & k_cue_depth) != 0;
    };
    std::size_t tokens = 0;
    std::uint32_t prev = 0;
    const std::uint32_t unigram_seed = fnv_byte(k_fnv_offset, 'u');
    std::uint32_t h = unigram_seed;
    bool in_token = false;
    const auto end_token = [&] {
        in_token = false;
        if (tokens >= model.max_tokens) return;
        f.buckets.push_back(h & mask);
        count_cues(h);
        if (tokens > 0) {
            const std::uint32_t hb = bigram_hash(prev, h);
            f.buckets.push_back(hb & mask);
            count_cues(hb);
        }
        prev = h;
        ++tokens;
    };

    int digits = 0, non_ascii = 0, braces = 0, operators = 0, newlines = 0, questions = 0;
    int word_bytes = 0, upper = 0;
    for (const char ch : head) {
        const auto c = static_cast<unsigned char>(ch);
        const std::uint8_t k = k_bytes.cls[c];
        if (k & k_word) {
            if (!in_token) h = unigram_seed;
            in_token = true;
            h = fnv_byte(h, k_bytes.lower[c]);
            ++word_bytes;
            digits += (k & k_digit) != 0;
            non_ascii += (k & k_non_ascii) != 0;
            upper += (k & k_upper) != 0;
        } else {
            if (in_token) end_token();
            braces += (k & k_brace) != 0;
            operators += (k & k_operator) != 0;
            newlines += (k & k_newline) != 0;
            questions += (k & k_question) != 0;
        }
    }
    if (in_token) end_token();
    const int fences = count_substr(head, "```");
    f.code_hits += braces + 4 * fences;
    f.math_hits += operators;

    const double n = static_cast<double>(head.size());
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
    const int letters = word_bytes - digits - non_ascii;  // ASCII letters: the rest of a token's bytes
    set(dense_feature::capitals, letters > 0 ? static_cast<double>(upper) / letters : 0.0);
    set(dense_feature::turns, saturate(std::max(turns_so_far, 0), 10));
    set(dense_feature::conversation,
        std::min(std::log1p(static_cast<double>(conversation_chars)) / std::log(65537.0), 1.5));
    return f;
}

}  // namespace sluice
