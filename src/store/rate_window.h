#pragma once
// Rate limits count in fixed one-minute windows aligned to the epoch minute (not sliding): both
// stores share this arithmetic, so a limit means the same thing on SQLite and on Redis, and the
// counters of all sluice processes sharing a Redis land in the same window.
#include <algorithm>
#include <cstdint>

#include "core/config.h"
#include "store/store.h"

namespace sluice {

inline constexpr std::int64_t k_rate_window_ms = 60'000;

inline std::int64_t rate_window_start(std::int64_t now_ms) {
    return now_ms - ((now_ms % k_rate_window_ms) + k_rate_window_ms) % k_rate_window_ms;
}

// Whole seconds until the current window ends (at least 1): when a refused request would pass.
inline int rate_retry_after_s(std::int64_t now_ms) {
    const std::int64_t left_ms = rate_window_start(now_ms) + k_rate_window_ms - now_ms;
    return static_cast<int>(std::max<std::int64_t>(1, (left_ms + 999) / 1000));
}

// The decision both stores make from the counts already in the window.
inline rate_decision decide_rate(const limits_config& limits, std::int64_t requests, std::int64_t tokens,
                                 std::int64_t now_ms) {
    if (limits.requests_per_minute > 0 && requests >= limits.requests_per_minute) {
        return {false, rate_retry_after_s(now_ms), "requests_per_minute limit reached"};
    }
    if (limits.tokens_per_minute > 0 && tokens >= limits.tokens_per_minute) {
        return {false, rate_retry_after_s(now_ms), "tokens_per_minute limit reached"};
    }
    return {};
}

}  // namespace sluice
