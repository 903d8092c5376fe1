#pragma once
// What every API's request parser reads JSON with: a 400 with a message naming the field, absent
// vs null, and numbers as JavaScript clients write them.
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "core/api_error.h"

namespace sluice {

api_error bad_request(std::string message);

// Absent or null: both mean "not given".
bool is_absent(const boost::json::value* value);

std::optional<double> as_number(const boost::json::value& value);

// An integer, also when written as 5.0 (an integer to JavaScript, and so to the JS SDKs).
std::optional<std::int64_t> as_integer(const boost::json::value& value);

}  // namespace sluice
