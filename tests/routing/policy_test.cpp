#include "routing/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "routing/features.h"
#include "routing/router_model.h"

namespace sluice {
namespace {

bool has(const std::vector<std::string>& v, std::string_view tag) {
    return std::find(v.begin(), v.end(), tag) != v.end();
}

routing_config with_threshold(double t) {
    routing_config rc;
    rc.threshold = t;
    return rc;
}

// The C++ features and scoring must match the training script's, or the shipped weights mean
// nothing: the script stores its own scores for a few messages next to the weights.
TEST(policy, matches_the_training_script_on_the_shipped_samples) {
    const auto& model = router_model::get();
    ASSERT_GE(model.samples.size(), 10u);
    const auto_policy policy;
    for (const auto& s : model.samples) {
        const auto f = extract_features(s.message, s.turns_so_far, s.conversation_chars);
        EXPECT_NEAR(policy.score(f), s.score, 1e-6) << s.message;
    }
}

TEST(policy, dense_features_are_in_the_order_the_model_was_trained_with) {
    const auto& names = router_model::get().dense_names;
    ASSERT_EQ(names.size(), k_dense_feature_count);
    EXPECT_STREQ(names[static_cast<std::size_t>(dense_feature::length)], "length");
    EXPECT_STREQ(names[static_cast<std::size_t>(dense_feature::code)], "code");
    EXPECT_STREQ(names[static_cast<std::size_t>(dense_feature::non_ascii)], "non_ascii");
    EXPECT_STREQ(names[static_cast<std::size_t>(dense_feature::conversation)], "conversation");
    EXPECT_EQ(router_model::get().score_quantiles.size(), 101u);
}

TEST(policy, is_deterministic) {
    const std::string msg = "Explain step by step how a B-tree split works, with code in C++.";
    const auto_policy a, b;
    const auto d1 = a.decide(msg, 2, 500);
    const auto d2 = a.decide(msg, 2, 500);
    const auto d3 = b.decide(msg, 2, 500);
    EXPECT_EQ(d1.score, d2.score);
    EXPECT_EQ(d1.score, d3.score);
    EXPECT_EQ(d1.reasons, d2.reasons);
    EXPECT_EQ(d1.role, d3.role);
    EXPECT_GE(d1.score, 0.0);
    EXPECT_LE(d1.score, 1.0);
}

TEST(policy, threshold_decides_on_both_sides) {
    const std::string msg = "Prove that there are infinitely many primes.";
    const double s = auto_policy{}.decide(msg).score;
    const auto at = auto_policy(with_threshold(s)).decide(msg);
    EXPECT_EQ(at.role, model_role::cloud_large);  // score >= threshold goes to the cloud
    EXPECT_NE(at.reason, "short_chat");
    const auto above = auto_policy(with_threshold(std::min(1.0, s + 1e-6))).decide(msg);
    EXPECT_EQ(above.role, model_role::local_small);
    EXPECT_EQ(auto_policy(with_threshold(0.0)).decide("hi").role, model_role::cloud_large);
    EXPECT_EQ(auto_policy(with_threshold(1.0)).decide(msg).role, model_role::local_small);
}

TEST(policy, short_chat_stays_local_by_default) {
    const auto d = auto_policy{}.decide("hi there, how are you?");
    EXPECT_EQ(d.role, model_role::local_small);
    EXPECT_EQ(d.reason, "short_chat");
    EXPECT_EQ(d.reasons.front(), "short_chat");
}

// A short worked problem (two reasoning cues and a math cue) is more than small talk.
TEST(policy, a_worked_problem_goes_to_the_cloud_by_default) {
    const auto_policy p;
    const auto proof = p.decide("Prove that the square root of 2 is irrational, step by step");
    EXPECT_EQ(proof.role, model_role::cloud_large);
    EXPECT_EQ(proof.reason, "reasoning");
    EXPECT_EQ(p.decide("hi there").role, model_role::local_small);
}

TEST(policy, names_the_cues_it_saw) {
    const auto_policy any(with_threshold(0.0));  // everything to the cloud: the main reason is a cue
    const auto code = any.decide("Fix this function:\n```cpp\nint f(int* p) { return *p; }\n```");
    EXPECT_TRUE(has(code.reasons, "code"));
    const auto math = any.decide("Solve the equation x^2 + 3*x = 10 and compute the integral of x^2.");
    EXPECT_TRUE(has(math.reasons, "math"));
    const auto why = any.decide("Why does ice float? Explain the reasoning.");
    EXPECT_TRUE(has(why.reasons, "reasoning"));
    const auto deep = any.decide("Give me a detailed, comprehensive overview of TCP congestion control.");
    EXPECT_TRUE(has(deep.reasons, "depth"));
    const auto long_msg = any.decide(std::string(3000, 'a') + " what is this?");
    EXPECT_TRUE(has(long_msg.reasons, "long_context"));
    const auto long_chat = any.decide("and then?", 12, 50000);
    EXPECT_TRUE(has(long_chat.reasons, "multi_turn"));
    EXPECT_TRUE(has(long_chat.reasons, "long_context"));
    const auto cyrillic = any.decide("Привет, как дела? Расскажи про погоду.");
    EXPECT_TRUE(has(cyrillic.reasons, "language"));
    for (const auto* d : {&code, &math, &why, &deep, &long_msg, &long_chat, &cyrillic}) {
        EXPECT_EQ(d->reasons.front(), d->reason);
        EXPECT_EQ(d->role, model_role::cloud_large);
    }
}

TEST(policy, a_long_conversation_raises_the_score) {
    const auto_policy p;
    const std::string msg = "ok, and what about the second option?";
    EXPECT_GT(p.decide(msg, 8, 30000).score, p.decide(msg, 0, 0).score);
}

TEST(policy, reads_only_the_head_of_a_huge_message) {
    const std::string huge(4 << 20, 'x');
    const auto f = extract_features(huge + " tail words");
    EXPECT_EQ(f.message_bytes, huge.size() + 11);
    EXPECT_LE(f.buckets.size(), 2 * router_model::get().max_tokens);
    const auto d = auto_policy{}.decide(huge);
    EXPECT_TRUE(has(d.reasons, "long_context"));
}

TEST(policy, cloud_share_calibration_is_monotonic) {
    double previous = auto_policy::threshold_for_cloud_share(0.0);
    EXPECT_GT(previous, 1.0);  // no share: nothing can reach the threshold
    for (int i = 1; i <= 100; ++i) {
        const double t = auto_policy::threshold_for_cloud_share(i / 100.0);
        EXPECT_LE(t, previous) << i;
        previous = t;
    }
    EXPECT_EQ(auto_policy::threshold_for_cloud_share(1.0), 0.0);
    // Out-of-range shares are clamped rather than extrapolated.
    EXPECT_EQ(auto_policy::threshold_for_cloud_share(2.0), 0.0);
    EXPECT_GT(auto_policy::threshold_for_cloud_share(-1.0), 1.0);
}

TEST(policy, cloud_share_from_config_sets_the_threshold) {
    routing_config rc;
    rc.cloud_share = 0.2;
    EXPECT_DOUBLE_EQ(auto_policy(rc).threshold(), auto_policy::threshold_for_cloud_share(0.2));
    EXPECT_DOUBLE_EQ(auto_policy(with_threshold(0.61)).threshold(), 0.61);
    EXPECT_DOUBLE_EQ(auto_policy{}.threshold(),
                     auto_policy::threshold_for_cloud_share(auto_policy::k_default_cloud_share));
}

// The shipped quantiles come from the held-in sample: a share of the parity samples that are MMLU
// prompts lands above each threshold, in the right direction.
TEST(policy, more_cloud_share_sends_more_prompts_to_the_cloud) {
    const auto& samples = router_model::get().samples;
    int previous = -1;
    for (double share : {0.0, 0.25, 0.5, 0.75, 1.0}) {
        routing_config rc;
        rc.cloud_share = share;
        const auto_policy p(rc);
        int cloud = 0;
        for (const auto& s : samples)
            cloud +=
                p.decide(s.message, s.turns_so_far, s.conversation_chars).role == model_role::cloud_large;
        EXPECT_GE(cloud, previous);
        previous = cloud;
    }
    EXPECT_EQ(previous, static_cast<int>(samples.size()));
}

}  // namespace
}  // namespace sluice
