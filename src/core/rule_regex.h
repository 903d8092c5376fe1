#pragma once
// The regular expressions of [[routing.rules]] (`message_regex`): compiled once at load, by the
// config check and by the router, into a deterministic automaton over bytes, so a search costs one
// table lookup per byte whatever the pattern (std::regex took 160-700 µs over 4 KiB, and can
// backtrack exponentially). A pattern whose automaton would pass k_rule_regex_max_states is refused.
//
// Syntax (a subset of ECMAScript, always case-insensitive for ASCII letters): literals, `.` (any
// byte but a newline), `[...]` / `[^...]` with ranges, `\d \D \w \W \s \S`, `\b \B`, `^ $` (the
// whole message's start and end), `( )`, `(?: )`, `|`, `* + ?` (and their lazy forms, which find
// the same matches), `{m}`, `{m,}`, `{m,n}`; escapes `\. \\ \n \t` etc. Back-references and
// look-arounds are refused. Matching is over bytes: `.` and classes see one byte of a UTF-8
// character; a non-ASCII literal matches its bytes in order.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

inline constexpr std::size_t k_rule_regex_window = 4096;      // bytes of a message a regex reads
inline constexpr std::size_t k_rule_regex_max_pattern = 512;  // bytes of a pattern
inline constexpr std::size_t k_rule_regex_max_repeat = 100;   // the largest m or n of a {m,n}
inline constexpr std::size_t k_rule_regex_max_states = 4096;  // states of the automaton

class rule_regex {
  public:
    // The compiled pattern, or (in `error`) why it cannot be.
    static std::optional<rule_regex> compile(std::string_view pattern, std::string& error);

    // Whether the pattern matches somewhere in `text`.
    bool search(std::string_view text) const;

    std::size_t states() const { return accept_at_end_.size(); }

  private:
    rule_regex() = default;

    static constexpr std::int32_t k_matched = -1;
    std::uint8_t byte_class_[256] = {};
    std::size_t classes_ = 0;
    std::vector<std::int32_t> next_;  // [state * classes_ + class]: the next state, or k_matched
    std::vector<bool> accept_at_end_;
};

}  // namespace sluice
