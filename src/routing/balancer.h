#pragma once
// How the models of one role share its traffic (routing.balance; docs/ROUTING.md, "Balancing"):
//   weighted    smooth weighted round robin by each model's `weight`: over any run of picks each
//               model's share is its weight over the total, interleaved (5:1 gives a b a a a a ...
//               never five in a row when it need not);
//   least_busy  the fewest active streams; ties by the weighted round robin;
//   latency     the lowest recent time to first token, an average that halves its weight every
//               k_latency_half_life without a new sample (so a model that was slow once is tried
//               again later); a model with no sample yet counts as fastest; ties as above.
// A model of weight 0 is picked only when no member of weight > 0 is. Thread-safe.
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "routing/circuit_breaker.h"

namespace sluice {

enum class balance_policy { weighted, least_busy, latency };

std::optional<balance_policy> parse_balance_policy(std::string_view text);

inline constexpr std::chrono::seconds k_latency_half_life{30};

class balancer {
  public:
    struct member {
        std::size_t model = 0;  // index in config order
        int weight = 1;
        int active = 0;  // streams in flight (least_busy)
    };

    balancer(balance_policy policy, std::size_t models, steady_clock_fn clock = {});

    // Puts the pick first, the others after it in their order of preference (load or latency, then
    // the order given). With `take`, the pick counts as a request (the round robin moves on); without
    // it (ordering stand-ins), nothing changes.
    void order(std::vector<member>& members, bool take);

    void record_first_token(std::size_t model, std::chrono::nanoseconds ttft);
    // The decayed time to first token in milliseconds; nullopt before the first sample.
    std::optional<double> latency_ms(std::size_t model) const;

    balance_policy policy() const { return policy_; }

  private:
    struct latency_sample {
        double average_ms = 0;
        std::chrono::steady_clock::time_point at{};
        bool known = false;
    };

    double latency_now(std::size_t model) const;  // mutex held; 0 when unknown
    std::size_t round_robin(const std::vector<member>& members, std::size_t first, std::size_t end,
                            bool take);

    const balance_policy policy_;
    const steady_clock_fn clock_;
    mutable std::mutex mutex_;
    std::vector<long long> current_;  // the smooth round robin's current weights
    std::vector<latency_sample> latency_;
};

}  // namespace sluice
