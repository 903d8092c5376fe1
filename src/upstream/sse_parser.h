#pragma once
// An incremental Server-Sent Events parser (the WHATWG event-stream rules): bytes arrive in pieces
// split anywhere, even inside a CRLF, and whole events come out. Upstream clouds speak this format.
#include <cstddef>
#include <functional>
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

    // Called for each completed event, in order; the event is valid during the call only (its
    // storage is reused for the next). Returning false stops the parsing of the current piece.
    using event_handler = std::function<bool(const sse_event&)>;

    // Feeds the next piece of the byte stream; false when `on_event` stopped it.
    bool feed(std::string_view bytes, const event_handler& on_event);
    // The same, returning the events it completed, in order.
    std::vector<sse_event> feed(std::string_view bytes);

    // True once an event outgrew max_event_bytes; feed() then returns nothing more.
    bool overflowed() const { return overflowed_; }

  private:
    bool take_line(std::string_view line, const event_handler& on_event);
    bool dispatch(const event_handler& on_event);

    std::size_t max_event_bytes_;
    std::string line_;        // the unfinished line carried over from the previous feed
    bool after_cr_ = false;   // the previous piece ended in CR: a leading LF now belongs to it
    bool first_line_ = true;  // a UTF-8 BOM may open the stream
    bool overflowed_ = false;
    bool has_data_ = false;  // a data field was seen in the current event
    sse_event event_;        // the event being read; its strings keep their capacity
    std::string last_id_;
};

}  // namespace sluice
