#pragma once
// Turns raw token pieces into deltas a client can show: every delta is whole, valid UTF-8 (a
// character split across tokens waits for its last byte; bytes that can never form a character
// become U+FFFD), and no delta contains a stop string or ends in what may be the start of one.
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class text_assembler {
  public:
    explicit text_assembler(std::vector<std::string> stop = {});

    struct output {
        std::string text;      // ready to send; may be empty
        bool stopped = false;  // a stop string was hit: text is what came before it
    };

    // Adds one token's piece. After a stop, further pieces are ignored.
    output push(std::string_view piece);

    // End of generation: whatever was held back, with an unfinished character replaced by U+FFFD.
    std::string flush();

  private:
    std::string pending_;
    std::vector<std::string> stop_;
    bool stopped_ = false;
};

// Rewrites `text` so that text[0, result) is valid UTF-8 and text[result, end) is the start of a
// character that may still be completed (at most 3 bytes). Invalid bytes become U+FFFD.
std::size_t sanitize_utf8(std::string& text);

bool is_valid_utf8(std::string_view text);

}  // namespace sluice
