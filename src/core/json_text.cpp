#include "core/json_text.h"

#include <array>
#include <charconv>

namespace sluice {

namespace {

// For each byte: 0 = written as is, 'u' = \u00xx, anything else = the letter after the backslash.
constexpr std::array<char, 256> k_escapes = [] {
    std::array<char, 256> table{};
    for (int c = 0; c < 0x20; ++c) table[static_cast<std::size_t>(c)] = 'u';
    table['\b'] = 'b';
    table['\t'] = 't';
    table['\n'] = 'n';
    table['\f'] = 'f';
    table['\r'] = 'r';
    table['"'] = '"';
    table['\\'] = '\\';
    return table;
}();

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    constexpr std::string_view k_hex = "0123456789abcdef";
    out.push_back('"');
    std::size_t run = 0;  // the start of the bytes not yet appended that need no escape
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char escape = k_escapes[static_cast<unsigned char>(text[i])];
        if (escape == 0) continue;
        out.append(text.data() + run, i - run);
        run = i + 1;
        if (escape == 'u') {
            const auto byte = static_cast<unsigned char>(text[i]);
            const char code[] = {'\\', 'u', '0', '0', k_hex[byte >> 4], k_hex[byte & 15]};
            out.append(code, sizeof code);
        } else {
            const char code[] = {'\\', escape};
            out.append(code, sizeof code);
        }
    }
    out.append(text.data() + run, text.size() - run);
    out.push_back('"');
}

void append_json_int(std::string& out, std::int64_t value) {
    std::array<char, 24> digits{};
    const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), ec == std::errc{} ? end : digits.data());
}

}  // namespace sluice
