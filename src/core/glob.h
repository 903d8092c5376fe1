#pragma once
// Glob patterns as the config writes them (model aliases, routing rules): `*` matches any run of
// characters, `?` one character; ASCII letters match either case. Nothing else is special.
#include <string_view>

namespace sluice {

// Iterative with one backtrack point (the last `*`): O(pattern * text) at worst, no recursion.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace sluice
