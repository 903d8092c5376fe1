#include "routing/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand: no sleeps, no timing assumptions.
struct manual_clock {
    std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
    steady_clock_fn fn() {
        return [this] { return now; };
    }
};

TEST(circuit_breaker, stays_closed_below_threshold) {
    manual_clock clock;
    circuit_breaker cb(3, 30s, clock.fn());
    cb.record_failure();
    cb.record_failure();
    EXPECT_EQ(cb.state(), circuit_state::closed);
    EXPECT_TRUE(cb.try_acquire());
    cb.record_success();  // resets the consecutive count
    cb.record_failure();
    cb.record_failure();
    EXPECT_EQ(cb.state(), circuit_state::closed);
    EXPECT_EQ(cb.consecutive_failures(), 2);
    EXPECT_EQ(cb.recent_errors(), 4);  // successes do not erase recent errors
}

TEST(circuit_breaker, opens_after_n_consecutive_failures_and_skips_while_open) {
    manual_clock clock;
    circuit_breaker cb(3, 30s, clock.fn());
    for (int i = 0; i < 3; ++i) cb.record_failure();
    EXPECT_EQ(cb.state(), circuit_state::open);
    EXPECT_FALSE(cb.would_allow());
    EXPECT_FALSE(cb.try_acquire());
    clock.now += 29s;
    EXPECT_FALSE(cb.try_acquire());
    EXPECT_EQ(cb.state(), circuit_state::open);
}

TEST(circuit_breaker, half_open_admits_one_probe_and_success_closes) {
    manual_clock clock;
    circuit_breaker cb(2, 30s, clock.fn());
    cb.record_failure();
    cb.record_failure();
    clock.now += 30s;
    EXPECT_EQ(cb.state(), circuit_state::half_open);
    EXPECT_TRUE(cb.would_allow());
    EXPECT_TRUE(cb.try_acquire());   // the probe
    EXPECT_FALSE(cb.try_acquire());  // everyone else waits for its verdict
    EXPECT_FALSE(cb.would_allow());
    EXPECT_EQ(cb.state(), circuit_state::half_open);
    cb.record_success();
    EXPECT_EQ(cb.state(), circuit_state::closed);
    EXPECT_TRUE(cb.try_acquire());
    EXPECT_TRUE(cb.try_acquire());
}

TEST(circuit_breaker, failed_probe_reopens_for_a_full_period) {
    manual_clock clock;
    circuit_breaker cb(2, 30s, clock.fn());
    cb.record_failure();
    cb.record_failure();
    clock.now += 31s;
    ASSERT_TRUE(cb.try_acquire());
    cb.record_failure();  // one failure is enough in half-open
    EXPECT_EQ(cb.state(), circuit_state::open);
    EXPECT_FALSE(cb.try_acquire());
    clock.now += 29s;
    EXPECT_FALSE(cb.try_acquire());
    clock.now += 1s;
    EXPECT_TRUE(cb.try_acquire());
}

TEST(circuit_breaker, lost_probe_is_forgotten_after_a_period) {
    manual_clock clock;
    circuit_breaker cb(1, 10s, clock.fn());
    cb.record_failure();
    clock.now += 10s;
    ASSERT_TRUE(cb.try_acquire());  // this probe never reports
    clock.now += 9s;
    EXPECT_FALSE(cb.try_acquire());
    clock.now += 1s;
    EXPECT_TRUE(cb.try_acquire());
}

TEST(circuit_breaker, recent_errors_forget_old_failures) {
    manual_clock clock;
    circuit_breaker cb(100, 30s, clock.fn());
    cb.record_failure();
    clock.now += 40s;
    cb.record_failure();
    EXPECT_EQ(cb.recent_errors(), 2);
    clock.now += 30s;
    EXPECT_EQ(cb.recent_errors(), 1);
    clock.now += 31s;
    EXPECT_EQ(cb.recent_errors(), 0);
}

TEST(circuit_breaker, concurrent_half_open_admits_exactly_one_probe) {
    manual_clock clock;
    circuit_breaker cb(1, 5s, clock.fn());
    cb.record_failure();
    clock.now += 5s;
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&] {
            for (int j = 0; j < 100; ++j) admitted += cb.try_acquire() ? 1 : 0;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(admitted.load(), 1);
}

}  // namespace
}  // namespace sluice
