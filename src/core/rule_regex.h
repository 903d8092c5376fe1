#pragma once
// The regular expressions of [[routing.rules]] (`message_regex`): compiled once at load, the same
// way by the config check and the router. ECMAScript syntax, case-insensitive. With libstdc++ the
// polynomial executor (breadth-first, no backtracking) runs them, so no pattern takes exponential
// time, and a pattern is only ever run over the first k_rule_regex_window bytes of a message.
#include <cstddef>
#include <regex>
#include <string>

namespace sluice {

inline constexpr std::size_t k_rule_regex_window = 4096;
inline constexpr std::size_t k_rule_regex_max_pattern = 512;  // bytes of a pattern
inline constexpr std::size_t k_rule_regex_max_repeat = 100;   // the largest m or n of a {m,n}

// Throws std::regex_error for a bad pattern (or a back-reference, which the polynomial executor
// cannot run).
inline std::regex compile_rule_regex(const std::string& pattern) {
    auto flags = std::regex::ECMAScript | std::regex::icase | std::regex::nosubs | std::regex::optimize;
#if defined(__GLIBCXX__)
    flags |= std::regex_constants::__polynomial;
#endif
    return std::regex(pattern, flags);
}

}  // namespace sluice
