#pragma once
// Logging set-up: spdlog to stderr. Nothing secret is ever passed to a log call.
#include <cstddef>
#include <string>

namespace sluice {

// level: trace, debug, info, warn, error, off. Throws config_error for anything else.
// asynchronous (the server): a line is formatted on the thread that logs it and written to stderr
// by one logging thread, so an io thread never waits on stderr (a slow terminal or a full pipe).
// If stderr falls k_log_queue_lines behind, the oldest waiting lines are dropped and counted
// (dropped_log_lines, sluice_log_lines_dropped_total). The commands log synchronously.
void init_logging(const std::string& level, bool asynchronous = false);

// Lines dropped because stderr could not keep up (asynchronous logging only).
std::size_t dropped_log_lines();

// Writes every waiting line and stops the logging thread: call once, when the process ends.
void shutdown_logging();

// How many lines may wait for stderr.
inline constexpr std::size_t k_log_queue_lines = 4096;

}  // namespace sluice
