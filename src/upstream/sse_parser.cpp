#include "upstream/sse_parser.h"

namespace sluice {

std::vector<sse_event> sse_parser::feed(std::string_view bytes) {
    std::vector<sse_event> out;
    if (overflowed_) return out;
    if (after_cr_ && !bytes.empty()) {
        if (bytes.front() == '\n') bytes.remove_prefix(1);
        after_cr_ = false;
    }
    while (!bytes.empty()) {
        std::size_t end = bytes.find_first_of("\r\n");
        if (end == std::string_view::npos) {
            line_.append(bytes);
            if (line_.size() + data_.size() > max_event_bytes_) overflowed_ = true;
            break;
        }
        if (line_.empty()) {
            take_line(bytes.substr(0, end), out);
        } else {
            line_.append(bytes.substr(0, end));
            take_line(line_, out);
            line_.clear();
        }
        if (overflowed_) break;
        if (bytes[end] == '\r') {
            if (end + 1 == bytes.size()) {
                after_cr_ = true;
            } else if (bytes[end + 1] == '\n') {
                ++end;
            }
        }
        bytes.remove_prefix(end + 1);
    }
    return out;
}

void sse_parser::take_line(std::string_view line, std::vector<sse_event>& out) {
    if (first_line_) {
        first_line_ = false;
        if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // a UTF-8 BOM opens the stream
    }
    if (line.empty()) {
        dispatch(out);
        return;
    }
    if (line.front() == ':') return;  // a comment, e.g. a keep-alive
    std::string_view field = line;
    std::string_view value;
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (value.starts_with(' ')) value.remove_prefix(1);
    }
    if (field == "data") {
        data_.append(value);
        data_.push_back('\n');
        has_data_ = true;
        if (data_.size() > max_event_bytes_) overflowed_ = true;
    } else if (field == "event") {
        event_type_ = value;
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) last_id_ = value;
    }
    // "retry" and unknown fields are ignored, as the standard asks.
}

void sse_parser::dispatch(std::vector<sse_event>& out) {
    if (has_data_) {
        data_.pop_back();  // the '\n' after the last data line
        out.push_back({.event = std::move(event_type_), .data = std::move(data_), .id = last_id_});
    }
    data_.clear();
    event_type_.clear();
    has_data_ = false;
}

}  // namespace sluice
