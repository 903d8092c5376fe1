#include "routing/router_model.h"

namespace sluice::router_model {
namespace {
#include "routing/router_model.inc"
}  // namespace

const model& get() {
    static const model m{
        .hash_bits = k_hash_bits,
        .max_bytes = k_max_bytes,
        .max_tokens = k_max_tokens,
        .dense_names = k_dense_names,
        .cues = k_cues,
        .strong = {.bias = k_strong_bias, .dense = k_strong_dense, .ngrams = k_strong_ngrams},
        .weak = {.bias = k_weak_bias, .dense = k_weak_dense, .ngrams = k_weak_ngrams},
        .score_bonus = k_score_bonus,
        .worked_problem_bonus = k_worked_problem_bonus,
        .worked_problem_min_reasoning = k_worked_problem_min_reasoning,
        .score_quantiles = k_score_quantiles,
        .samples = k_samples,
        .description = k_description,
    };
    return m;
}

}  // namespace sluice::router_model
