#include "core/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/api_error.h"

namespace sluice {

namespace {

constexpr const char* k_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";

}  // namespace

void init_logging(const std::string& level, bool asynchronous) {
    const auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off") {
        throw config_error("--log-level " + level +
                           " is not allowed: expected trace, debug, info, warn, error or off");
    }
    std::shared_ptr<spdlog::logger> logger;
    if (asynchronous) {
        spdlog::init_thread_pool(k_log_queue_lines, 1);
        // overrun_oldest: a full queue drops its oldest line instead of blocking the caller.
        logger = spdlog::create_async_nb<spdlog::sinks::stderr_color_sink_mt>("sluice");
    } else {
        logger = spdlog::stderr_color_mt("sluice");
    }
    logger->set_pattern(k_pattern);
    logger->set_level(parsed);
    logger->flush_on(spdlog::level::info);  // on the logging thread when asynchronous
    spdlog::set_default_logger(logger);
}

std::size_t dropped_log_lines() {
    const auto pool = spdlog::thread_pool();
    return pool ? pool->overrun_counter() : 0;
}

void shutdown_logging() {
    spdlog::shutdown();
}

}  // namespace sluice
