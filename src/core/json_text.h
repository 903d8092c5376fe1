#pragma once
// JSON text appended to a reused buffer, for the events written once per streamed token: no value
// tree, no allocation beyond the buffer's growth. The output matches boost::json::serialize byte for
// byte, so the hand-built events and the json::object ones are interchangeable.
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// `text` as a JSON string literal, quotes included: `"` and `\` escaped, control characters as
// \b \t \n \f \r or \u00xx (lower-case hex), every other byte (UTF-8 included) as it is.
void append_json_string(std::string& out, std::string_view text);

void append_json_int(std::string& out, std::int64_t value);

}  // namespace sluice
