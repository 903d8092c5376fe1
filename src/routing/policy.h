#pragma once
// The auto policy: scores a request in [0, 1] — how much it needs the large model — and compares the
// score with a threshold from the config. The score is
//     0.5 + 0.5 * (P(large model right) - P(small model right)) + hand-set bonuses
// from two logistic regressions over hashed word n-grams and the dense features of features.h,
// trained offline (scripts/train_router.py, docs/ROUTING.md). Pure and immutable: safe to share
// between threads; a decision costs a few microseconds (bench/bench_routing.cpp).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/config.h"
#include "routing/features.h"

namespace sluice {

struct policy_decision {
    model_role role = model_role::local_small;
    double score = 0;
    std::string reason;                // one short tag: short_chat, code, math, reasoning, depth, ...
    std::vector<std::string> reasons;  // every tag that applied, the main one first
};

class auto_policy {
  public:
    // Used when the config sets neither routing.threshold nor routing.cloud_share.
    static constexpr double k_default_cloud_share = 0.3;

    // Threshold: routing.threshold when set, else the one matching routing.cloud_share (or the
    // default share) on the shipped prompt sample.
    explicit auto_policy(const routing_config& config = {});

    policy_decision decide(std::string_view message, int turns_so_far = 0,
                           std::size_t conversation_chars = 0) const;
    policy_decision decide(const request_features& features) const;
    double score(const request_features& features) const;

    double threshold() const { return threshold_; }

    // The score above which `share` (0..1) of the shipped prompt sample lies: a lookup with linear
    // interpolation in the shipped quantiles. Non-increasing in share.
    static double threshold_for_cloud_share(double share);

  private:
    double threshold_;
};

}  // namespace sluice
