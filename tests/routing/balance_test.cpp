// routing.balance across the models of one role: weighted shares over many picks, least_busy under
// uneven load, latency with its decay, and an open circuit taking all traffic off a model.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "routing/balancer.h"
#include "routing/offline_model.h"
#include "routing/orchestrator.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

model_config cloud(std::string name, int weight) {
    model_config m;
    m.name = std::move(name);
    m.role = model_role::cloud_large;
    m.provider = "openai";
    m.weight = weight;
    m.circuit_failures = 2;
    m.circuit_open_s = 30;
    return m;
}

struct fleet {
    std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
    config cfg;
    std::vector<std::shared_ptr<offline_model>> models;
    std::unique_ptr<orchestrator> orch;

    fleet(std::string balance, std::vector<model_config> configs) {
        cfg.routing.balance = std::move(balance);
        model_config local;
        local.name = "local";
        local.role = model_role::local_small;
        local.provider = "llama";
        configs.push_back(local);
        std::vector<provider_ptr> providers;
        for (auto& m : configs) {
            cfg.models.push_back(m);
            models.push_back(std::make_shared<offline_model>(m));
            providers.push_back(models.back());
        }
        orch = std::make_unique<orchestrator>(cfg, std::move(providers), [this] { return now; });
    }

    std::vector<std::string> plan() {
        const auto o = orch->plan({.message = "hi", .model_type = "cloud_large"});
        EXPECT_TRUE(o.ok()) << o.error.message;
        std::vector<std::string> names;
        for (const auto& c : o.plan.candidates) names.push_back(c->config().name);
        return names;
    }
    std::map<std::string, int> shares(int picks) {
        std::map<std::string, int> out;
        for (int i = 0; i < picks; ++i) {
            const auto names = plan();
            ++out[names.front()];
            orch->report_success(names.front());
        }
        return out;
    }
};

TEST(balance, weighted_shares_follow_the_weights_exactly_over_whole_cycles) {
    fleet f("weighted", {cloud("a", 3), cloud("b", 1)});
    EXPECT_EQ(f.shares(400), (std::map<std::string, int>{{"a", 300}, {"b", 100}}));
    fleet even("weighted", {cloud("a", 1), cloud("b", 1), cloud("c", 1)});
    EXPECT_EQ(even.shares(300), (std::map<std::string, int>{{"a", 100}, {"b", 100}, {"c", 100}}));
}

// A look at the plan (count_tokens, `sluice route`) is not a request: the round robin does not move.
TEST(balance, a_plan_that_does_not_commit_neither_picks_nor_shifts_the_shares) {
    fleet f("weighted", {cloud("a", 1), cloud("b", 1)});
    std::string order;
    for (int i = 0; i < 4; ++i) {
        const auto look = f.orch->plan({.message = "hi", .model_type = "cloud_large"}, /*commit=*/false);
        ASSERT_TRUE(look.ok());
        order += look.plan.candidates.front()->config().name;
        order += f.plan().front();
    }
    // Each look names the model the next real plan takes.
    EXPECT_EQ(order, "aabbaabb");
}

TEST(balance, weighted_round_robin_interleaves) {
    fleet f("weighted", {cloud("a", 2), cloud("b", 1)});
    std::string order;
    for (int i = 0; i < 6; ++i) order += f.plan().front();
    EXPECT_EQ(order, "abaaba");
}

TEST(balance, every_plan_keeps_the_others_of_the_role_before_the_other_role) {
    fleet f("weighted", {cloud("a", 1), cloud("b", 1)});
    EXPECT_EQ(f.plan(), (std::vector<std::string>{"a", "b", "local"}));
    EXPECT_EQ(f.plan(), (std::vector<std::string>{"b", "a", "local"}));
}

TEST(balance, weight_zero_takes_traffic_only_as_a_stand_in) {
    fleet f("weighted", {cloud("a", 0), cloud("b", 1)});
    EXPECT_EQ(f.shares(10), (std::map<std::string, int>{{"b", 10}}));
    EXPECT_EQ(f.plan(), (std::vector<std::string>{"b", "a", "local"}));
    // b's circuit opens: a, weight 0, is the role's only model and answers.
    f.orch->report_failure("b", failure_kind::server_error);
    f.orch->report_failure("b", failure_kind::server_error);
    EXPECT_EQ(f.plan().front(), "a");
}

TEST(balance, an_open_circuit_moves_all_traffic_to_the_others_of_the_role) {
    fleet f("weighted", {cloud("a", 1), cloud("b", 1)});
    EXPECT_EQ(f.shares(10), (std::map<std::string, int>{{"a", 5}, {"b", 5}}));
    f.orch->report_failure("a", failure_kind::server_error);
    f.orch->report_failure("a", failure_kind::server_error);  // circuit_failures = 2: open
    for (int i = 0; i < 10; ++i) EXPECT_EQ(f.plan(), (std::vector<std::string>{"b", "local"}));
    // After circuit_open_s the half-open probe goes to a once, and its success closes the circuit.
    f.now += 31s;
    const auto shares = f.shares(10);
    EXPECT_GE(shares.at("a"), 4);
    EXPECT_GE(shares.at("b"), 4);
}

TEST(balance, least_busy_picks_the_fewest_active_streams) {
    fleet f("least_busy", {cloud("a", 1), cloud("b", 1), cloud("c", 1)});
    f.models[0]->reported.active = 5;
    f.models[1]->reported.active = 1;
    f.models[2]->reported.active = 3;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(f.plan(), (std::vector<std::string>{"b", "c", "a", "local"}));
    f.models[1]->reported.active = 4;  // now c has the fewest
    EXPECT_EQ(f.plan().front(), "c");
    // Equal load: the weighted round robin shares it.
    for (auto& m : f.models) m->reported.active = 2;
    f.models[3]->reported.active = 0;  // the local model is of the other role: irrelevant
    const auto shares = f.shares(30);
    EXPECT_EQ(shares, (std::map<std::string, int>{{"a", 10}, {"b", 10}, {"c", 10}}));
}

TEST(balance, latency_picks_the_fastest_first_token_and_forgets_old_samples) {
    fleet f("latency", {cloud("a", 1), cloud("b", 1)});
    f.orch->report_first_token("a", 400ms);
    f.orch->report_first_token("b", 100ms);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(f.plan(), (std::vector<std::string>{"b", "a", "local"}));
    // b slows down: its average moves 30 % of the way per sample (100 -> 340 -> 508 -> ...).
    for (int i = 0; i < 6; ++i) f.orch->report_first_token("b", 900ms);
    EXPECT_GT(*f.orch->balance().latency_ms(1), 400.0);
    EXPECT_EQ(f.plan().front(), "a");
    // Without new samples both halve every k_latency_half_life: the order holds, the values fall.
    const double before = *f.orch->balance().latency_ms(0);
    f.now += k_latency_half_life;
    EXPECT_NEAR(*f.orch->balance().latency_ms(0), before / 2, 1e-6);
    EXPECT_EQ(f.plan().front(), "a");
}

TEST(balance, latency_tries_a_model_without_samples_first) {
    fleet f("latency", {cloud("a", 1), cloud("b", 1)});
    f.orch->report_first_token("a", 50ms);
    EXPECT_EQ(f.plan().front(), "b");
    EXPECT_FALSE(f.orch->balance().latency_ms(1).has_value());
}

TEST(balance, the_balancer_alone_orders_without_counting_when_not_taking) {
    balancer b(balance_policy::weighted, 2);
    std::vector<balancer::member> members{{.model = 0, .weight = 1}, {.model = 1, .weight = 1}};
    for (int i = 0; i < 3; ++i) {
        auto copy = members;
        b.order(copy, false);
        EXPECT_EQ(copy.front().model, 0u);
    }
    b.order(members, true);
    EXPECT_EQ(members.front().model, 0u);
    b.order(members, true);
    EXPECT_EQ(members.front().model, 1u);
    EXPECT_EQ(parse_balance_policy("least_busy"), balance_policy::least_busy);
    EXPECT_FALSE(parse_balance_policy("random").has_value());
}

}  // namespace
}  // namespace sluice
