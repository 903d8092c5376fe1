#pragma once
// A per-model circuit breaker (SPEC §5): after `failure_threshold` consecutive failures the circuit
// opens and requests skip the model for `open_duration`; then exactly one request (the probe) may
// try it. The probe's success closes the circuit, its failure opens it again for another period.
//
// Thread-safe: every member takes the breaker's mutex. The clock is injectable so tests can move
// time without sleeping.
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string_view>

namespace sluice {

enum class circuit_state { closed, open, half_open };

std::string_view to_string(circuit_state state);

using steady_clock_fn = std::function<std::chrono::steady_clock::time_point()>;

class circuit_breaker {
  public:
    // How far back recent_errors() looks.
    static constexpr std::chrono::seconds k_recent_window{60};

    circuit_breaker(int failure_threshold, std::chrono::milliseconds open_duration,
                    steady_clock_fn clock = {});

    // May a request use the model now? Closed: yes. Open: no until open_duration has passed; then the
    // first caller becomes the probe (state half_open) and later callers are refused until the probe
    // reports. A probe that never reports (its caller vanished) is forgotten after open_duration, so
    // the model cannot stay blocked forever.
    bool try_acquire();

    // The same answer as try_acquire() without claiming the probe: for listing fallbacks and status.
    bool would_allow() const;

    void record_success();
    void record_failure();

    // Open whose period has passed reads as half_open: the next request will probe.
    circuit_state state() const;
    int consecutive_failures() const;
    // Failures recorded during the last k_recent_window (successes do not reset it).
    int recent_errors() const;

  private:
    using time_point = std::chrono::steady_clock::time_point;

    time_point now() const;
    bool allows_locked(time_point now) const;
    void prune_locked(time_point now) const;

    const int failure_threshold_;
    const std::chrono::milliseconds open_duration_;
    const steady_clock_fn clock_;

    mutable std::mutex mutex_;
    circuit_state state_ = circuit_state::closed;
    int consecutive_failures_ = 0;
    time_point opened_at_{};
    bool probe_in_flight_ = false;
    time_point probe_started_at_{};
    mutable std::deque<time_point> recent_failures_;
};

}  // namespace sluice
