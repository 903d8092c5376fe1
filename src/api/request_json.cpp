#include "api/request_json.h"

#include <cmath>

namespace sluice {

api_error bad_request(std::string message) {
    return api_error{.code = 400, .message = std::move(message)};
}

bool is_absent(const boost::json::value* value) {
    return value == nullptr || value->is_null();
}

std::optional<double> as_number(const boost::json::value& value) {
    if (value.is_double()) return value.get_double();
    if (value.is_int64()) return static_cast<double>(value.get_int64());
    if (value.is_uint64()) return static_cast<double>(value.get_uint64());
    return std::nullopt;
}

std::optional<std::int64_t> as_integer(const boost::json::value& value) {
    if (value.is_int64()) return value.get_int64();
    if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(value.get_uint64());
    if (value.is_double() && std::trunc(value.get_double()) == value.get_double() &&
        std::abs(value.get_double()) < 9.0e15)
        return static_cast<std::int64_t>(value.get_double());
    return std::nullopt;
}

}  // namespace sluice
