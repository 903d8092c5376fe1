#pragma once
// An expected failure that reaches the client: an HTTP-like code and a message that is safe to show.
#include <stdexcept>
#include <string>

namespace sluice {

struct api_error {
    int code = 500;
    std::string message;
    int retry_after_s = 0;  // sent as Retry-After when > 0
};

// Thrown only across a boundary where a value cannot travel (e.g. config parsing at start-up).
class config_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

}  // namespace sluice
