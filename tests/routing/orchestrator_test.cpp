#include "routing/orchestrator.h"
#include "routing/offline_model.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace sluice {
namespace {

using namespace std::chrono_literals;

model_config model(std::string name, model_role role, std::string kind) {
    model_config m;
    m.name = std::move(name);
    m.role = role;
    m.provider = std::move(kind);
    m.circuit_failures = 2;
    m.circuit_open_s = 30;
    m.queue_size = 4;
    return m;
}

struct fixture : ::testing::Test {
    std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
    config cfg;
    std::shared_ptr<offline_model> local, cloud;

    void SetUp() override {
        local = std::make_shared<offline_model>(model("local", model_role::local_small, "llama"));
        cloud = std::make_shared<offline_model>(model("gpt", model_role::cloud_large, "openai"));
        cfg.models = {local->config(), cloud->config()};
    }
    orchestrator make(std::vector<provider_ptr> providers) {
        return orchestrator(cfg, std::move(providers), [this] { return now; });
    }
    orchestrator make() { return make({local, cloud}); }

    static std::vector<std::string> names(const plan_outcome& o) {
        std::vector<std::string> out;
        for (const auto& p : o.plan.candidates) out.push_back(p->config().name);
        return out;
    }
};

using strings = std::vector<std::string>;

TEST_F(fixture, preferred_model_wins_over_everything) {
    auto orch = make();
    const auto o = orch.plan({.message = "hi", .preferred_model = "gpt", .model_type = "local_small"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"gpt", "local"}));
    EXPECT_EQ(o.plan.role, model_role::cloud_large);
    EXPECT_EQ(o.plan.reason, "preferred_model");
    EXPECT_EQ(o.plan.reasons.front(), "preferred_model");
}

TEST_F(fixture, unknown_preferred_model_is_404) {
    auto orch = make();
    const auto o = orch.plan({.message = "hi", .preferred_model = "nope"});
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error.code, 404);
    EXPECT_NE(o.error.message.find("nope"), std::string::npos);
}

TEST_F(fixture, explicit_model_type_wins_over_the_policy) {
    cfg.routing.threshold = 0.0;  // the policy alone would pick the cloud for everything
    auto orch = make();
    const auto o = orch.plan({.message = "Prove Fermat's little theorem.", .model_type = "local_small"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"local", "gpt"}));
    EXPECT_EQ(o.plan.reason, "model_type");
    const auto c = orch.plan({.message = "hi", .model_type = "cloud_large"});
    EXPECT_EQ(names(c), (strings{"gpt", "local"}));
    EXPECT_EQ(c.plan.role, model_role::cloud_large);
}

TEST_F(fixture, bad_model_type_is_400) {
    auto orch = make();
    const auto o = orch.plan({.message = "hi", .model_type = "huge"});
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error.code, 400);
}

TEST_F(fixture, default_model_type_from_config_applies_when_unset) {
    cfg.routing.default_model_type = "cloud_large";
    auto orch = make();
    EXPECT_EQ(names(orch.plan({.message = "hi"})).front(), "gpt");
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "auto"})).front(), "local");
}

TEST_F(fixture, auto_policy_decides_on_both_sides_of_the_threshold) {
    const std::string msg = "Explain step by step why the derivative of sin(x) is cos(x).";
    const double score = auto_policy{}.decide(msg).score;

    cfg.routing.threshold = score;
    auto at = make();
    const auto up = at.plan({.message = msg});
    ASSERT_TRUE(up.ok());
    EXPECT_EQ(up.plan.role, model_role::cloud_large);
    EXPECT_DOUBLE_EQ(up.plan.score, score);
    EXPECT_NE(up.plan.reason, "model_type");

    cfg.routing.threshold = std::min(1.0, score + 1e-6);
    auto above = make();
    const auto down = above.plan({.message = msg});
    ASSERT_TRUE(down.ok());
    EXPECT_EQ(down.plan.role, model_role::local_small);
    EXPECT_EQ(names(down), (strings{"local", "gpt"}));
}

TEST_F(fixture, short_chat_goes_local_with_its_reason) {
    auto orch = make();
    const auto o = orch.plan({.message = "hello!"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o.plan.role, model_role::local_small);
    EXPECT_EQ(o.plan.reason, "short_chat");
}

TEST_F(fixture, missing_role_falls_back_to_the_other_role) {
    cfg.models = {local->config()};
    auto orch = make({local});
    const auto o = orch.plan({.message = "hi", .model_type = "cloud_large"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"local"}));
    EXPECT_EQ(o.plan.role, model_role::local_small);
    EXPECT_EQ(o.plan.reason, "fallback:not_configured");
}

TEST_F(fixture, missing_role_without_fallback_is_503) {
    cfg.models = {local->config()};
    cfg.routing.fallback = false;
    auto orch = make({local});
    const auto o = orch.plan({.message = "hi", .model_type = "cloud_large"});
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error.code, 503);
    EXPECT_GT(o.error.retry_after_s, 0);
}

TEST_F(fixture, no_models_at_all_is_503) {
    cfg.models.clear();
    auto orch = make({});
    const auto o = orch.plan({.message = "hi"});
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error.code, 503);
}

TEST_F(fixture, without_fallback_there_is_one_candidate) {
    cfg.routing.fallback = false;
    auto orch = make();
    const auto o = orch.plan({.message = "hi", .model_type = "local_small"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"local"}));
}

TEST_F(fixture, unavailable_provider_is_skipped) {
    cloud->reported.available = false;
    cloud->reported.detail = "no api key";
    auto orch = make();
    const auto o = orch.plan({.message = "hi", .model_type = "cloud_large"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"local"}));
    EXPECT_EQ(o.plan.reason, "fallback:unavailable");
    const auto status = orch.models_status();
    EXPECT_FALSE(status[1].available);
    EXPECT_EQ(status[1].detail, "no api key");
}

TEST_F(fixture, full_local_queue_sends_auto_traffic_to_the_cloud) {
    local->reported.queue_depth = 4;
    auto orch = make();
    const auto o = orch.plan({.message = "hi"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"gpt"}));
    EXPECT_EQ(o.plan.reason, "fallback:queue_full");
}

TEST_F(fixture, same_role_models_come_before_the_other_role) {
    auto local2 = std::make_shared<offline_model>(model("local2", model_role::local_small, "llama"));
    cfg.models = {local->config(), cloud->config(), local2->config()};
    auto orch = make({local, cloud, local2});
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "local_small"})),
              (strings{"local", "local2", "gpt"}));
    EXPECT_EQ(names(orch.plan({.message = "hi", .preferred_model = "local2"})),
              (strings{"local2", "local", "gpt"}));
}

TEST_F(fixture, circuit_opens_skips_and_a_probe_closes_it) {
    auto orch = make();
    orch.report_failure("gpt", failure_kind::server_error);
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "cloud_large"})).front(), "gpt");
    orch.report_failure("gpt", failure_kind::rate_limited);  // 2 consecutive: open

    auto skipped = orch.plan({.message = "hi", .model_type = "cloud_large"});
    ASSERT_TRUE(skipped.ok());
    EXPECT_EQ(names(skipped), (strings{"local"}));
    EXPECT_EQ(skipped.plan.reason, "fallback:circuit_open");
    auto status = orch.models_status();
    EXPECT_EQ(status[1].circuit, circuit_state::open);
    EXPECT_FALSE(status[1].available);
    EXPECT_EQ(status[1].recent_errors, 2);
    EXPECT_EQ(status[0].circuit, circuit_state::closed);
    EXPECT_TRUE(status[0].available);

    now += 30s;  // half open: exactly one request probes
    EXPECT_EQ(orch.models_status()[1].circuit, circuit_state::half_open);
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "cloud_large"})), (strings{"gpt", "local"}));
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "cloud_large"})), (strings{"local"}));
    orch.report_success("gpt");
    EXPECT_EQ(orch.models_status()[1].circuit, circuit_state::closed);
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "cloud_large"})).front(), "gpt");
}

TEST_F(fixture, failed_probe_reopens_the_circuit) {
    auto orch = make();
    orch.report_failure("gpt", failure_kind::connect);
    orch.report_failure("gpt", failure_kind::connect);
    now += 30s;
    ASSERT_EQ(names(orch.plan({.message = "hi", .model_type = "cloud_large"})).front(), "gpt");
    orch.report_failure("gpt", failure_kind::timeout);
    EXPECT_EQ(orch.models_status()[1].circuit, circuit_state::open);
    EXPECT_EQ(names(orch.plan({.message = "hi", .model_type = "cloud_large"})), (strings{"local"}));
}

TEST_F(fixture, open_preferred_model_falls_back_or_503) {
    auto orch = make();
    orch.report_failure("gpt", failure_kind::server_error);
    orch.report_failure("gpt", failure_kind::server_error);
    const auto o = orch.plan({.message = "hi", .preferred_model = "gpt"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(names(o), (strings{"local"}));
    EXPECT_EQ(o.plan.reason, "fallback:circuit_open");

    cfg.routing.fallback = false;
    auto strict = make();
    strict.report_failure("gpt", failure_kind::server_error);
    strict.report_failure("gpt", failure_kind::server_error);
    const auto e = strict.plan({.message = "hi", .preferred_model = "gpt"});
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error.code, 503);
    EXPECT_EQ(e.error.retry_after_s, 30);
}

TEST_F(fixture, client_errors_do_not_open_the_circuit) {
    auto orch = make();
    for (int i = 0; i < 5; ++i) orch.report_failure("gpt", failure_kind::bad_request);
    orch.report_failure("unknown-model", failure_kind::server_error);  // ignored
    EXPECT_EQ(orch.models_status()[1].circuit, circuit_state::closed);
    EXPECT_EQ(orch.models_status()[1].recent_errors, 0);
}

TEST_F(fixture, models_status_lists_every_model_in_config_order) {
    local->reported.queue_depth = 2;
    local->reported.active = 3;
    auto orch = make();
    const auto status = orch.models_status();
    ASSERT_EQ(status.size(), 2u);
    EXPECT_EQ(status[0].name, "local");
    EXPECT_EQ(status[0].role, model_role::local_small);
    EXPECT_EQ(status[0].provider, "llama");
    EXPECT_EQ(status[0].queue_depth, 2);
    EXPECT_EQ(status[0].active, 3);
    EXPECT_EQ(status[1].name, "gpt");
    EXPECT_EQ(status[1].provider, "openai");
}

TEST(failure_kind, maps_codes) {
    EXPECT_EQ(failure_kind_from_code(429), failure_kind::rate_limited);
    EXPECT_EQ(failure_kind_from_code(500), failure_kind::server_error);
    EXPECT_EQ(failure_kind_from_code(502), failure_kind::server_error);
    EXPECT_EQ(failure_kind_from_code(504), failure_kind::timeout);
    EXPECT_EQ(failure_kind_from_code(503, true), failure_kind::queue_full);
    EXPECT_EQ(failure_kind_from_code(503, false), failure_kind::connect);
    EXPECT_EQ(failure_kind_from_code(400), failure_kind::bad_request);
    EXPECT_EQ(to_string(failure_kind::server_error), "upstream_5xx");
}

}  // namespace
}  // namespace sluice
