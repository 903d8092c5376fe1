#include "routing/circuit_breaker.h"

#include <algorithm>

namespace sluice {

namespace {
// recent_errors() is for humans; a bound keeps a failure storm from growing the deque without limit.
constexpr std::size_t k_max_recent_failures = 1024;
}  // namespace

std::string_view to_string(circuit_state state) {
    switch (state) {
        case circuit_state::closed:
            return "closed";
        case circuit_state::open:
            return "open";
        case circuit_state::half_open:
            return "half_open";
    }
    return "closed";
}

circuit_breaker::circuit_breaker(int failure_threshold, std::chrono::milliseconds open_duration,
                                 steady_clock_fn clock)
    : failure_threshold_(std::max(1, failure_threshold)),
      open_duration_(std::max(open_duration, std::chrono::milliseconds{0})),
      clock_(clock ? std::move(clock) : steady_clock_fn{[] { return std::chrono::steady_clock::now(); }}) {}

circuit_breaker::time_point circuit_breaker::now() const {
    return clock_();
}

bool circuit_breaker::allows_locked(time_point now) const {
    switch (state_) {
        case circuit_state::closed:
            return true;
        case circuit_state::open:
            return now - opened_at_ >= open_duration_;
        case circuit_state::half_open:
            return !probe_in_flight_ || now - probe_started_at_ >= open_duration_;
    }
    return true;
}

bool circuit_breaker::try_acquire() {
    const auto t = now();
    std::lock_guard lock(mutex_);
    if (!allows_locked(t)) return false;
    if (state_ != circuit_state::closed) {
        state_ = circuit_state::half_open;
        probe_in_flight_ = true;
        probe_started_at_ = t;
    }
    return true;
}

bool circuit_breaker::would_allow() const {
    const auto t = now();
    std::lock_guard lock(mutex_);
    return allows_locked(t);
}

void circuit_breaker::record_success() {
    std::lock_guard lock(mutex_);
    state_ = circuit_state::closed;
    consecutive_failures_ = 0;
    probe_in_flight_ = false;
}

void circuit_breaker::record_failure() {
    const auto t = now();
    std::lock_guard lock(mutex_);
    recent_failures_.push_back(t);
    if (recent_failures_.size() > k_max_recent_failures) recent_failures_.pop_front();
    ++consecutive_failures_;
    // A failed probe reopens at once; a closed circuit opens at the threshold. A failure reported
    // while already open (a request that started before it opened) does not extend the period.
    if (state_ == circuit_state::half_open ||
        (state_ == circuit_state::closed && consecutive_failures_ >= failure_threshold_)) {
        state_ = circuit_state::open;
        opened_at_ = t;
        probe_in_flight_ = false;
    }
}

circuit_state circuit_breaker::state() const {
    const auto t = now();
    std::lock_guard lock(mutex_);
    if (state_ == circuit_state::open && t - opened_at_ >= open_duration_) return circuit_state::half_open;
    return state_;
}

int circuit_breaker::consecutive_failures() const {
    std::lock_guard lock(mutex_);
    return consecutive_failures_;
}

void circuit_breaker::prune_locked(time_point now) const {
    while (!recent_failures_.empty() && now - recent_failures_.front() > k_recent_window) {
        recent_failures_.pop_front();
    }
}

int circuit_breaker::recent_errors() const {
    const auto t = now();
    std::lock_guard lock(mutex_);
    prune_locked(t);
    return static_cast<int>(recent_failures_.size());
}

}  // namespace sluice
