#include "providers/openai_chunk_scan.h"

#include <array>
#include <cstddef>

namespace sluice {
namespace {

// A cursor over the event's bytes: each step consumes what it accepts, or fails (the scan declines).
class chunk_scanner {
  public:
    explicit chunk_scanner(std::string_view text) : at_(text.data()), end_(text.data() + text.size()) {}

    bool at_end() {
        skip_space();
        return at_ == end_;
    }

    bool eat(char c) {
        skip_space();
        if (at_ == end_ || *at_ != c) return false;
        ++at_;
        return true;
    }

    // `{ "key": value, ... }`, each member's value read by on_member(key), which returns false to decline.
    template <class on_member_fn>
    bool object(on_member_fn&& on_member) {
        if (!eat('{')) return false;
        if (eat('}')) return true;
        do {
            std::string_view key;
            if (!read_key(key) || !on_member(key)) return false;
        } while (eat(','));
        return eat('}');
    }

    // A string (unescaped into `out`, *was_string set) or null (out left as is); false for anything else.
    bool string_or_null(std::string& out, bool* was_string = nullptr) {
        skip_space();
        if (at_ != end_ && *at_ == '"') {
            ++at_;
            if (was_string) *was_string = true;
            return read_string(&out);
        }
        return literal("null");
    }

    // A value the chunk does not need: a string, an integer, true, false or null.
    bool skip_scalar() {
        skip_space();
        if (at_ == end_) return false;
        switch (*at_) {
            case '"':
                ++at_;
                return read_string(nullptr);
            case 't':
                return literal("true");
            case 'f':
                return literal("false");
            case 'n':
                return literal("null");
            default:
                return integer();
        }
    }

  private:
    // The bytes a string holds as they are: printable ASCII but the quote and the backslash. A table,
    // so that the loop over a string's bytes costs one load and one branch each.
    static constexpr std::array<bool, 256> k_plain = [] {
        std::array<bool, 256> plain{};
        for (int byte = 0x20; byte < 0x80; ++byte)
            plain[static_cast<std::size_t>(byte)] = byte != '"' && byte != '\\';
        return plain;
    }();
    static bool plain(char c) { return k_plain[static_cast<unsigned char>(c)]; }
    static bool digit(char c) { return c >= '0' && c <= '9'; }

    void skip_space() {
        while (at_ != end_ && (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t')) ++at_;
    }

    bool literal(std::string_view word) {
        if (static_cast<std::size_t>(end_ - at_) < word.size() || std::string_view(at_, word.size()) != word)
            return false;
        at_ += word.size();
        return true;
    }

    // -?(0|[1-9][0-9]*), not followed by a fraction or an exponent (the parser would read a double).
    bool integer() {
        if (at_ != end_ && *at_ == '-') ++at_;
        if (at_ == end_ || !digit(*at_)) return false;
        if (*at_ == '0') {
            ++at_;
        } else {
            while (at_ != end_ && digit(*at_)) ++at_;
        }
        return at_ == end_ || (*at_ != '.' && *at_ != 'e' && *at_ != 'E');
    }

    // The rest of a string after its opening quote: printable ASCII and the short escapes.
    bool read_string(std::string* out) {
        for (;;) {
            const char* run = at_;
            while (at_ != end_ && plain(*at_)) ++at_;
            if (out) out->append(run, at_);
            if (at_ == end_) return false;
            if (*at_ == '"') {
                ++at_;
                return true;
            }
            if (*at_ != '\\' || ++at_ == end_) return false;  // a control or non-ASCII byte
            char unescaped = 0;
            switch (*at_) {
                case '"':
                case '\\':
                case '/':
                    unescaped = *at_;
                    break;
                case 'b':
                    unescaped = '\b';
                    break;
                case 'f':
                    unescaped = '\f';
                    break;
                case 'n':
                    unescaped = '\n';
                    break;
                case 'r':
                    unescaped = '\r';
                    break;
                case 't':
                    unescaped = '\t';
                    break;
                default:
                    return false;  // \u: left to the parser
            }
            ++at_;
            if (out) out->push_back(unescaped);
        }
    }

    // `"key":`, the key without escapes.
    bool read_key(std::string_view& key) {
        if (!eat('"')) return false;
        const char* start = at_;
        while (at_ != end_ && plain(*at_)) ++at_;
        if (at_ == end_ || *at_ != '"') return false;
        key = std::string_view(start, static_cast<std::size_t>(at_ - start));
        ++at_;
        return eat(':');
    }

    const char* at_;
    const char* end_;
};

bool scan_delta(chunk_scanner& scan, openai_text_chunk& out) {
    bool content = false, reasoning_content = false, reasoning = false;
    return scan.object([&](std::string_view key) {
        if (key == "content") {
            if (content) return false;
            content = true;
            return scan.string_or_null(out.content);
        }
        if (key == "reasoning_content") {
            if (reasoning_content) return false;
            reasoning_content = true;
            out.thinking.clear();
            return scan.string_or_null(out.thinking);
        }
        if (key == "reasoning") {
            if (reasoning) return false;
            reasoning = true;
            if (!out.thinking.empty()) {
                std::string ignored;
                return scan.string_or_null(ignored);
            }
            return scan.string_or_null(out.thinking);
        }
        if (key == "tool_calls") return false;
        return scan.skip_scalar();
    });
}

bool scan_choice(chunk_scanner& scan, openai_text_chunk& out) {
    bool delta = false, finish = false;
    return scan.object([&](std::string_view key) {
        if (key == "delta") {
            if (delta) return false;
            delta = true;
            return scan_delta(scan, out);
        }
        if (key == "finish_reason") {
            if (finish) return false;
            finish = true;
            return scan.string_or_null(out.finish_reason, &out.has_finish);
        }
        if (key == "message") return false;
        return scan.skip_scalar();
    });
}

}  // namespace

bool scan_openai_text_chunk(std::string_view text, openai_text_chunk& out) {
    chunk_scanner scan(text);
    bool choices = false;
    const bool read = scan.object([&](std::string_view key) {
        if (key == "choices") {
            if (choices) return false;
            choices = true;
            return scan.eat('[') && scan_choice(scan, out) && scan.eat(']');
        }
        // An error (whatever its value) is the parser's to report; a usage object is nested, so
        // skip_scalar declines it (the parser ignores a usage that is not an object, and so do we).
        if (key == "error") return false;
        return scan.skip_scalar();
    });
    return read && choices && scan.at_end();
}

}  // namespace sluice
