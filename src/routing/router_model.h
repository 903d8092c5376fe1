#pragma once
// The learned part of the auto policy, as data: weights trained offline by scripts/train_router.py
// on the held-in part of the MMLU routing set and compiled into the binary (router_model.inc is
// generated; never edit it by hand). See docs/ROUTING.md for how it was trained and measured.
#include <cstddef>
#include <cstdint>
#include <span>

namespace sluice::router_model {

struct ngram_weight {
    std::uint32_t bucket;
    float weight;
};

// One logistic regression: P(model answers correctly | request).
struct head {
    double bias;
    std::span<const double> dense;  // one weight per dense feature, in dense_names order
    std::span<const ngram_weight> ngrams;
};

struct cue {
    const char* text;      // one word, or two words separated by one space (a bigram)
    const char* category;  // "code", "math", "reasoning" or "depth"
};

// A message and the score the training script computed for it: the C++ features must agree.
struct parity_sample {
    const char* message;
    int turns_so_far;
    std::size_t conversation_chars;
    double score;
};

struct model {
    int hash_bits;
    std::size_t max_bytes;   // only this much of a message is read
    std::size_t max_tokens;  // and at most this many words of it
    std::span<const char* const> dense_names;
    std::span<const cue> cues;
    head strong;  // the large model's head
    head weak;    // the small model's head
    // Added to the score for each dense feature (times its value): hand-set priors for what the
    // training set cannot teach (every MMLU prompt is a first turn). Same order as dense_names.
    std::span<const double> score_bonus;
    // Added once for a worked problem: at least worked_problem_min_reasoning reasoning cues and a math
    // cue (a short "prove ... step by step" otherwise scores as small talk).
    double worked_problem_bonus;
    int worked_problem_min_reasoning;
    // Score quantiles 0%, 1%, ..., 100% over the held-in prompt sample: cloud_share -> threshold.
    std::span<const double> score_quantiles;
    std::span<const parity_sample> samples;
    const char* description;  // what was trained on, for `sluice route --model-info`
};

const model& get();

}  // namespace sluice::router_model
