#include "upstream/sse_parser.h"

#include <cstring>

namespace sluice {

namespace {

// Where the first CR or LF is (npos: none). Two memchr scans: find_first_of would test every byte
// against the set one by one.
std::size_t line_end(std::string_view bytes) {
    const char* begin = bytes.data();
    const auto* lf = static_cast<const char*>(std::memchr(begin, '\n', bytes.size()));
    const std::size_t before_lf = lf ? static_cast<std::size_t>(lf - begin) : bytes.size();
    const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', before_lf));
    if (cr) return static_cast<std::size_t>(cr - begin);
    return lf ? before_lf : std::string_view::npos;
}

}  // namespace

std::vector<sse_event> sse_parser::feed(std::string_view bytes) {
    std::vector<sse_event> out;
    const event_handler collect = [&out](const sse_event& event) {
        out.push_back(event);
        return true;
    };
    feed(bytes, collect);
    return out;
}

bool sse_parser::feed(std::string_view bytes, const event_handler& on_event) {
    if (overflowed_) return true;
    if (after_cr_ && !bytes.empty()) {
        if (bytes.front() == '\n') bytes.remove_prefix(1);
        after_cr_ = false;
    }
    while (!bytes.empty()) {
        const std::size_t end = line_end(bytes);
        if (end == std::string_view::npos) {
            line_.append(bytes);
            if (line_.size() + event_.data.size() > max_event_bytes_) overflowed_ = true;
            break;
        }
        bool go_on = true;
        if (line_.empty()) {
            go_on = take_line(bytes.substr(0, end), on_event);
        } else {
            line_.append(bytes.substr(0, end));
            go_on = take_line(line_, on_event);
            line_.clear();
        }
        if (overflowed_) break;
        std::size_t next = end + 1;
        if (bytes[end] == '\r') {
            if (next == bytes.size()) {
                after_cr_ = true;
            } else if (bytes[next] == '\n') {
                ++next;
            }
        }
        bytes.remove_prefix(next);
        if (!go_on) return false;
    }
    return true;
}

bool sse_parser::take_line(std::string_view line, const event_handler& on_event) {
    if (first_line_) {
        first_line_ = false;
        if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // a UTF-8 BOM opens the stream
    }
    if (line.empty()) return dispatch(on_event);
    if (line.front() == ':') return true;  // a comment, e.g. a keep-alive
    std::string_view field = line;
    std::string_view value;
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (value.starts_with(' ')) value.remove_prefix(1);
    }
    if (field == "data") {
        event_.data.append(value);
        event_.data.push_back('\n');
        has_data_ = true;
        if (event_.data.size() > max_event_bytes_) overflowed_ = true;
    } else if (field == "event") {
        event_.event = value;
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) last_id_ = value;
    }
    // "retry" and unknown fields are ignored, as the standard asks.
    return true;
}

bool sse_parser::dispatch(const event_handler& on_event) {
    bool go_on = true;
    if (has_data_) {
        event_.data.pop_back();  // the '\n' after the last data line
        event_.id = last_id_;
        go_on = on_event(event_);
    }
    event_.data.clear();
    event_.event.clear();
    has_data_ = false;
    return go_on;
}

}  // namespace sluice
