#include "routing/policy.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <new>

#include "routing/router_model.h"

namespace sluice {

namespace {

// A message shorter than this with no other cue is small talk: the local model's home ground.
constexpr std::size_t k_short_chat_bytes = 280;
// Score points an n-gram part must add before "learned" counts as a reason.
constexpr double k_learned_reason_min = 0.02;

// Both heads' n-gram weights, spread into one dense table so a bucket costs one cache line.
struct bucket_weights {
    float strong;  // all-zero bytes are 0.0f: fresh pages start at no weight
    float weak;
};

// Built on the first decision, in fresh pages from mmap: they come zeroed, where value-initialising
// the 2^18 entries one by one (make_unique) or calloc's memset cost that decision 1.5 to 2 million
// instructions. Never unmapped: it lives as long as the process.
const bucket_weights* ngram_table() {
    static bucket_weights* const table = [] {
        const auto& m = router_model::get();
        const std::size_t bytes = (std::size_t{1} << m.hash_bits) * sizeof(bucket_weights);
        void* pages = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (pages == MAP_FAILED) throw std::bad_alloc();
        auto* t = static_cast<bucket_weights*>(pages);
        for (const auto& w : m.strong.ngrams) t[w.bucket].strong = w.weight;
        for (const auto& w : m.weak.ngrams) t[w.bucket].weak = w.weight;
        return t;
    }();
    return table;
}

double sigmoid(double z) {
    return 1.0 / (1.0 + std::exp(-z));
}

struct head_parts {
    double dense_logit;  // bias + dense features
    double ngram_logit;
    double probability;
};

head_parts evaluate(const router_model::head& h, const request_features& f, double ngrams) {
    double dense = h.bias;
    for (std::size_t i = 0; i < k_dense_feature_count; ++i) dense += h.dense[i] * f.dense[i];
    return {dense, ngrams, sigmoid(dense + ngrams)};
}

struct scored {
    double score;
    head_parts strong, weak;
};

// As the training script's worked_problem(): its math feature counts cue words and operators.
bool worked_problem(const request_features& f) {
    return f.reasoning_hits >= router_model::get().worked_problem_min_reasoning && f.math_hits >= 1;
}

scored score_parts(const request_features& f) {
    const auto& m = router_model::get();
    const bucket_weights* table = ngram_table();
    double strong = 0, weak = 0;
    for (const auto b : f.buckets) {
        strong += table[b].strong;
        weak += table[b].weak;
    }
    if (!f.buckets.empty()) {
        const double norm = 1.0 / std::sqrt(static_cast<double>(f.buckets.size()));
        strong *= norm;
        weak *= norm;
    }
    scored s{0, evaluate(m.strong, f, strong), evaluate(m.weak, f, weak)};
    double value = 0.5 + 0.5 * (s.strong.probability - s.weak.probability);
    for (std::size_t i = 0; i < k_dense_feature_count; ++i) value += m.score_bonus[i] * f.dense[i];
    if (worked_problem(f)) value += m.worked_problem_bonus;
    s.score = std::clamp(value, 0.0, 1.0);
    return s;
}

// How many score points dense feature i adds, to first order: which reason weighs most.
double dense_contribution(const scored& s, const request_features& f, std::size_t i) {
    const auto& m = router_model::get();
    const double slope_strong = s.strong.probability * (1 - s.strong.probability);
    const double slope_weak = s.weak.probability * (1 - s.weak.probability);
    return (0.5 * (slope_strong * m.strong.dense[i] - slope_weak * m.weak.dense[i]) + m.score_bonus[i]) *
           f.dense[i];
}

double contribution(const scored& s, const request_features& f, dense_feature which) {
    return dense_contribution(s, f, static_cast<std::size_t>(which));
}

}  // namespace

auto_policy::auto_policy(const routing_config& config) {
    if (config.threshold) {
        threshold_ = *config.threshold;
    } else {
        threshold_ = threshold_for_cloud_share(config.cloud_share.value_or(k_default_cloud_share));
    }
}

double auto_policy::threshold_for_cloud_share(double share) {
    const auto q = router_model::get().score_quantiles;
    share = std::clamp(share, 0.0, 1.0);
    // Everything goes to the cloud only if the threshold is at or below the lowest possible score.
    if (share >= 1.0) return 0.0;
    if (share <= 0.0) return std::nextafter(1.0, 2.0);  // nothing reaches a score above 1
    const double pos = (1.0 - share) * static_cast<double>(q.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const auto hi = std::min(lo + 1, q.size() - 1);
    return q[lo] + (q[hi] - q[lo]) * (pos - static_cast<double>(lo));
}

double auto_policy::score(const request_features& features) const {
    return score_parts(features).score;
}

policy_decision auto_policy::decide(std::string_view message, int turns_so_far,
                                    std::size_t conversation_chars) const {
    return decide(extract_features(message, turns_so_far, conversation_chars));
}

policy_decision auto_policy::decide(const request_features& f) const {
    const scored s = score_parts(f);
    policy_decision d;
    d.score = s.score;
    d.role = s.score >= threshold_ ? model_role::cloud_large : model_role::local_small;

    struct tag {
        const char* name;
        bool applies;
        double weight;
    };
    const double slope_strong = s.strong.probability * (1 - s.strong.probability);
    const double slope_weak = s.weak.probability * (1 - s.weak.probability);
    const double learned = 0.5 * (slope_strong * s.strong.ngram_logit - slope_weak * s.weak.ngram_logit);
    const tag tags[] = {
        {"code", f.code_hits >= 3, contribution(s, f, dense_feature::code)},
        {"math", f.math_hits >= 3,
         contribution(s, f, dense_feature::math) + contribution(s, f, dense_feature::digits)},
        {"reasoning", f.reasoning_hits >= 1,
         contribution(s, f, dense_feature::reasoning) +
             (worked_problem(f) ? router_model::get().worked_problem_bonus : 0.0)},
        {"depth", f.depth_hits >= 1, contribution(s, f, dense_feature::depth)},
        {"long_context", f.message_bytes >= 2000 || f.conversation_chars >= 16000,
         contribution(s, f, dense_feature::length) + contribution(s, f, dense_feature::conversation)},
        {"language", f[dense_feature::non_ascii] >= 0.3, contribution(s, f, dense_feature::non_ascii)},
        {"multi_turn", f.turns_so_far >= 4, contribution(s, f, dense_feature::turns)},
        {"learned", learned >= k_learned_reason_min, learned},
    };

    const tag* main = nullptr;
    for (const auto& t : tags) {
        if (t.applies && (!main || t.weight > main->weight)) main = &t;
    }
    if (d.role == model_role::cloud_large) {
        d.reason = main ? main->name : "learned";
    } else {
        // Any cue word makes it more than small talk, even when too weak to send it up.
        const bool cue = f.code_hits > 0 || f.math_hits > 1 || f.reasoning_hits > 0 || f.depth_hits > 0;
        d.reason =
            f.message_bytes < k_short_chat_bytes && f.turns_so_far < 4 && !cue ? "short_chat" : "low_score";
    }
    d.reasons.push_back(d.reason);
    for (const auto& t : tags) {
        if (t.applies && d.reason != t.name) d.reasons.emplace_back(t.name);
    }
    return d;
}

}  // namespace sluice
