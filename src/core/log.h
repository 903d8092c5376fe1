#pragma once
// Logging set-up: spdlog to stderr. Nothing secret is ever passed to a log call.
#include <string>

namespace sluice {

// level: trace, debug, info, warn, error, off. Throws config_error for anything else.
void init_logging(const std::string& level);

}  // namespace sluice
