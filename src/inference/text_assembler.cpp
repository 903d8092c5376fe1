#include "inference/text_assembler.h"

#include <algorithm>

namespace sluice {
namespace {

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";

// Length of the character starting at text[i], or 0 when text[i] cannot start one.
std::size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

// Whether `byte` may follow `lead` at position `index` (1-based) of a character; the second byte
// carries the overlong / surrogate / range restrictions of RFC 3629.
bool continuation_ok(unsigned char lead, std::size_t index, unsigned char byte) {
    if (index == 1) {
        if (lead == 0xE0) return byte >= 0xA0 && byte <= 0xBF;
        if (lead == 0xED) return byte >= 0x80 && byte <= 0x9F;
        if (lead == 0xF0) return byte >= 0x90 && byte <= 0xBF;
        if (lead == 0xF4) return byte >= 0x80 && byte <= 0x8F;
    }
    return byte >= 0x80 && byte <= 0xBF;
}

}  // namespace

std::size_t sanitize_utf8(std::string& text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const std::size_t length = sequence_length(lead);
        if (length == 0) {
            out += k_replacement;
            ++i;
            continue;
        }
        std::size_t have = 1;
        while (have < length && i + have < text.size() &&
               continuation_ok(lead, have, static_cast<unsigned char>(text[i + have]))) {
            ++have;
        }
        if (have == length) {
            out.append(text, i, length);
            i += length;
        } else if (i + have == text.size()) {
            break;  // an unfinished character at the end: the next piece may complete it
        } else {
            out += k_replacement;  // broken by a byte that cannot continue it
            i += have;
        }
    }
    const std::size_t complete = out.size();
    out.append(text, i, std::string::npos);
    text = std::move(out);
    return complete;
}

bool is_valid_utf8(std::string_view text) {
    std::string copy(text);
    return sanitize_utf8(copy) == text.size() && copy == text;
}

text_assembler::text_assembler(std::vector<std::string> stop) : stop_(std::move(stop)) {
    std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

text_assembler::output text_assembler::push(std::string_view piece) {
    if (stopped_) return {};
    pending_.append(piece);
    const std::size_t complete = sanitize_utf8(pending_);
    const std::string_view ready(pending_.data(), complete);

    std::size_t first_stop = std::string_view::npos;
    for (const auto& stop : stop_) first_stop = std::min(first_stop, ready.find(stop));
    if (first_stop != std::string_view::npos) {
        stopped_ = true;
        output result{pending_.substr(0, first_stop), true};
        pending_.clear();
        return result;
    }

    // Hold back the longest tail that a stop string could still start with.
    std::size_t hold = 0;
    for (const auto& stop : stop_) {
        for (std::size_t n = std::min(stop.size() - 1, ready.size()); n > hold; --n) {
            if (ready.substr(ready.size() - n) == std::string_view(stop).substr(0, n)) {
                hold = n;
                break;
            }
        }
    }
    output result{pending_.substr(0, complete - hold), false};
    pending_.erase(0, complete - hold);
    return result;
}

std::string text_assembler::flush() {
    if (stopped_) return {};
    const std::size_t complete = sanitize_utf8(pending_);
    std::string result = pending_.substr(0, complete);
    if (complete < pending_.size()) result += k_replacement;
    pending_.clear();
    return result;
}

}  // namespace sluice
