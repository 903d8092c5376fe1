// [[routing.rules]] in the orchestrator: each match on both sides of its bound, the order of rules,
// where rules sit in the decision order, capability checks, and the reason they leave.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "routing/offline_model.h"
#include "routing/orchestrator.h"

namespace sluice {
namespace {

constexpr std::string_view k_models = R"toml(
[[models]]
name = "local"
role = "local_small"
provider = "llama"
[[models]]
name = "gpt"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
aliases = ["claude-*"]
[[models]]
name = "mini"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
supports_images = false
)toml";

struct routed {
    config cfg;
    std::unique_ptr<orchestrator> orch;

    explicit routed(std::string_view rules) : cfg(parse_config(std::string(k_models) + std::string(rules))) {
        std::vector<provider_ptr> models;
        for (const auto& m : cfg.models) models.push_back(std::make_shared<offline_model>(m));
        orch = std::make_unique<orchestrator>(cfg, std::move(models));
    }

    // {first candidate, reason}
    std::pair<std::string, std::string> route(const route_request& request) {
        const auto o = orch->plan(request);
        if (!o.ok()) return {"error " + std::to_string(o.error.code), o.error.message};
        return {o.plan.candidates.front()->config().name, o.plan.reason};
    }
};

using result = std::pair<std::string, std::string>;

TEST(rules, key_name_glob_matches_or_not) {
    routed r("[[routing.rules]]\nname = \"batch\"\nwhen = { key_name = \"batch-*\" }\nuse = \"mini\"\n");
    EXPECT_EQ(r.route({.message = "hi", .key_name = "batch-7"}), (result{"mini", "rule:batch"}));
    EXPECT_EQ(r.route({.message = "hi", .key_name = "BATCH-x"}), (result{"mini", "rule:batch"}));
    EXPECT_EQ(r.route({.message = "hi", .key_name = "interactive"}).second, "short_chat");
    EXPECT_EQ(r.route({.message = "hi"}).second, "short_chat");  // no key name
}

TEST(rules, header_name_is_case_blind_and_the_value_a_glob) {
    routed r(
        "[[routing.rules]]\nname = \"research\"\nwhen = { header = \"X-Team: research*\" }\nuse = \"gpt\"\n");
    ASSERT_EQ(r.orch->rule_headers(), std::vector<std::string>{"x-team"});
    route_request request{.message = "hi"};
    request.headers = {{"x-team", "research-nlp"}};
    EXPECT_EQ(r.route(request), (result{"gpt", "rule:research"}));
    request.headers = {{"x-team", "sales"}};
    EXPECT_EQ(r.route(request).second, "short_chat");
    request.headers = {{"x-team", "sales"}, {"x-team", "research"}};  // any occurrence
    EXPECT_EQ(r.route(request).second, "rule:research");
    request.headers = {{"x-other", "research"}};
    EXPECT_EQ(r.route(request).second, "short_chat");
}

TEST(rules, prompt_token_bounds_are_inclusive_on_both_sides) {
    // bytes / 4 rounded up: 40 bytes = 10 tokens, 41 = 11, 36 = 9.
    routed r(
        "[[routing.rules]]\nname = \"mid\"\nwhen = { min_prompt_tokens = 10, max_prompt_tokens = 20 }\nuse = "
        "\"mini\"\n");
    const std::string m36(36, 'x'), m37(37, 'x'), m80(80, 'x'), m81(81, 'x');
    EXPECT_EQ(r.route({.message = m36}).first, "local");      // 9 tokens
    EXPECT_EQ(r.route({.message = m37}).second, "rule:mid");  // 10
    EXPECT_EQ(r.route({.message = m80}).second, "rule:mid");  // 20
    EXPECT_NE(r.route({.message = m81}).second, "rule:mid");  // 21
    // The earlier turns count too.
    EXPECT_EQ(r.route({.message = "hi", .conversation_chars = 40}).second, "rule:mid");
    EXPECT_NE(r.route({.message = "hi", .conversation_chars = 79}).second, "rule:mid");
}

TEST(rules, requested_model_glob_and_an_alias_gives_way_to_the_rule) {
    routed r(
        "[[routing.rules]]\nname = \"claude-local\"\nwhen = { model = \"claude-*haiku*\" }\nuse = "
        "\"local_small\"\n");
    // claude-3-5-haiku is an alias of gpt; the rule takes it local.
    EXPECT_EQ(r.route({.message = "hi", .preferred_model = "gpt", .requested_model = "claude-3-5-haiku"}),
              (result{"local", "rule:claude-local"}));
    // Another alias of gpt that the rule does not name: the alias holds.
    EXPECT_EQ(r.route({.message = "hi", .preferred_model = "gpt", .requested_model = "claude-opus-4"}),
              (result{"gpt", "preferred_model"}));
    // The configured name itself is the client's explicit choice: before the rules (SPEC §5).
    routed by_name("[[routing.rules]]\nname = \"any\"\nwhen = { model = \"*\" }\nuse = \"local_small\"\n");
    EXPECT_EQ(by_name.route({.message = "hi", .preferred_model = "gpt", .requested_model = "gpt"}),
              (result{"gpt", "preferred_model"}));
    EXPECT_EQ(by_name.route({.message = "hi", .preferred_model = "gpt"}), (result{"gpt", "preferred_model"}));
    // So is an explicit role; "auto" is not a choice, and the rules apply.
    EXPECT_EQ(by_name.route({.message = "hi", .model_type = "cloud_large"}).second, "model_type");
    EXPECT_EQ(by_name.route({.message = "hi", .model_type = "auto", .requested_model = "auto"}),
              (result{"local", "rule:any"}));
    EXPECT_EQ(by_name.route({.message = "hi"}), (result{"local", "rule:any"}));  // "" matches "*"
}

TEST(rules, has_tools_and_has_images_each_way) {
    routed r(
        "[[routing.rules]]\nname = \"plain\"\nwhen = { has_tools = false, has_images = false }\nuse = "
        "\"mini\"\n[[routing.rules]]\nname = \"tools\"\nwhen = { has_tools = true }\nuse = "
        "\"mini\"\n[[routing.rules]]\nname = \"images\"\nwhen = { has_images = true }\nuse = \"gpt\"\n");
    EXPECT_EQ(r.route({.message = "hi"}), (result{"mini", "rule:plain"}));
    EXPECT_EQ(r.route({.message = "hi", .needs_tools = true}), (result{"mini", "rule:tools"}));
    EXPECT_EQ(r.route({.message = "hi", .needs_images = true}), (result{"gpt", "rule:images"}));
}

TEST(rules, a_rule_whose_target_cannot_serve_the_request_is_passed_over) {
    // mini reads no images, local no tools: the next rule (or the policy) decides.
    routed r("[[routing.rules]]\nname = \"to-mini\"\nuse = \"mini\"\n");
    EXPECT_EQ(r.route({.message = "hi"}), (result{"mini", "rule:to-mini"}));
    const auto with_image = r.route({.message = "hi", .needs_images = true});
    EXPECT_NE(with_image.second, "rule:to-mini");
    EXPECT_EQ(with_image.first, "gpt");
    routed local(
        "[[routing.rules]]\nname = \"to-local\"\nuse = \"local_small\"\n[[routing.rules]]\nname = "
        "\"else\"\nuse = \"gpt\"\n");
    EXPECT_EQ(local.route({.message = "hi", .needs_tools = true}), (result{"gpt", "rule:else"}));
    // A role target keeps only its capable models.
    routed cloud("[[routing.rules]]\nname = \"cloud\"\nuse = \"cloud_large\"\n");
    const auto o = cloud.orch->plan({.message = "hi", .needs_images = true});
    ASSERT_TRUE(o.ok());
    for (const auto& c : o.plan.candidates) EXPECT_NE(c->config().name, "mini");
    EXPECT_EQ(o.plan.reason, "rule:cloud");
}

TEST(rules, message_regex_matches_within_its_window_only) {
    routed r(
        "[[routing.rules]]\nname = \"deploy\"\nwhen = { message_regex = '\\bdeploy(ment)?\\b' }\nuse = "
        "\"gpt\"\n");
    EXPECT_EQ(r.route({.message = "how do I DEPLOY this?"}).second, "rule:deploy");
    EXPECT_NE(r.route({.message = "redeployed it"}).second, "rule:deploy");
    const std::string inside = std::string(4096 - 7, ' ') + " deploy";
    const std::string outside = std::string(4096, ' ') + " deploy";
    EXPECT_EQ(r.route({.message = inside}).second, "rule:deploy");
    EXPECT_NE(r.route({.message = outside}).second, "rule:deploy");
}

TEST(rules, the_first_matching_rule_wins_and_all_matches_of_a_rule_must_hold) {
    routed r(
        "[[routing.rules]]\nname = \"both\"\nwhen = { key_name = \"batch-*\", max_prompt_tokens = 5 }\nuse = "
        "\"local_small\"\n[[routing.rules]]\nname = \"batch\"\nwhen = { key_name = \"batch-*\" }\nuse = "
        "\"mini\"\n[[routing.rules]]\nname = \"all\"\nuse = \"gpt\"\n");
    EXPECT_EQ(r.route({.message = "hi", .key_name = "batch-1"}), (result{"local", "rule:both"}));
    EXPECT_EQ(r.route({.message = std::string(40, 'x'), .key_name = "batch-1"}),
              (result{"mini", "rule:batch"}));
    EXPECT_EQ(r.route({.message = "hi", .key_name = "web"}), (result{"gpt", "rule:all"}));
}

TEST(rules, use_auto_hands_the_request_to_the_policy_under_the_rules_name) {
    routed r("[[routing.rules]]\nname = \"policy\"\nwhen = { model = \"claude-*\" }\nuse = \"auto\"\n");
    const auto o = r.orch->plan({.message = "hi", .preferred_model = "gpt", .requested_model = "claude-x"});
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o.plan.candidates.front()->config().name, "local");  // "hi": the policy says local
    EXPECT_EQ(o.plan.reason, "rule:policy");
    EXPECT_EQ(o.plan.rule, "policy");
    EXPECT_NE(std::find(o.plan.reasons.begin(), o.plan.reasons.end(), "short_chat"), o.plan.reasons.end());
}

TEST(rules, no_rules_routes_as_before) {
    routed r("");
    EXPECT_EQ(r.route({.message = "hi"}), (result{"local", "short_chat"}));
    EXPECT_EQ(r.route({.message = "hi", .preferred_model = "mini"}), (result{"mini", "preferred_model"}));
    EXPECT_TRUE(r.orch->rule_headers().empty());
}

}  // namespace
}  // namespace sluice
