#pragma once
// An incremental Server-Sent Events parser (the WHATWG event-stream rules): bytes arrive in pieces
// split anywhere, even inside a CRLF, and whole events come out. Upstream clouds speak this format.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

struct sse_event {
    std::string event;  // the `event:` field; empty means the default type "message"
    std::string data;   // every `data:` line of the event, joined with '\n'
    std::string id;     // the last `id:` seen on the stream so far

    bool is_done() const { return data == "[DONE]"; }  // OpenAI's end-of-stream sentinel
};

class sse_parser {
  public:
    // An event (or a line) larger than this is a broken or hostile upstream: the parser stops.
    static constexpr std::size_t k_default_max_event_bytes = 8 * 1024 * 1024;

    explicit sse_parser(std::size_t max_event_bytes = k_default_max_event_bytes)
        : max_event_bytes_(max_event_bytes) {}

    // Feeds the next piece of the byte stream; returns the events it completed, in order.
    std::vector<sse_event> feed(std::string_view bytes);

    // True once an event outgrew max_event_bytes; feed() then returns nothing more.
    bool overflowed() const { return overflowed_; }

  private:
    void take_line(std::string_view line, std::vector<sse_event>& out);
    void dispatch(std::vector<sse_event>& out);

    std::size_t max_event_bytes_;
    std::string line_;        // the unfinished line carried over from the previous feed
    bool after_cr_ = false;   // the previous piece ended in CR: a leading LF now belongs to it
    bool first_line_ = true;  // a UTF-8 BOM may open the stream
    bool overflowed_ = false;
    bool has_data_ = false;  // a data field was seen in the current event
    std::string data_;
    std::string event_type_;
    std::string last_id_;
};

}  // namespace sluice
