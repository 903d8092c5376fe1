#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"

using sluice::config_error;
using sluice::parse_config;

namespace {

std::string error_of(std::string_view toml, const std::map<std::string, std::string>& env = {}) {
    try {
        parse_config(toml, env);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(config, empty_file_gives_defaults_and_the_local_demo_model) {
    const auto cfg = parse_config("");
    EXPECT_EQ(cfg.server.listen, "127.0.0.1:8080");
    EXPECT_EQ(cfg.server.heartbeat_interval_s, 15);
    EXPECT_EQ(cfg.server.max_body_bytes, 1048576u);
    EXPECT_EQ(cfg.server.request_timeout_s, 300);
    EXPECT_EQ(cfg.store.url, "sqlite://sluice-data/sluice.db");
    EXPECT_EQ(cfg.store.response_retention_days, 30);
    ASSERT_EQ(cfg.models.size(), 1u);
    EXPECT_EQ(cfg.models[0].name, "local");
    EXPECT_EQ(cfg.models[0].role, sluice::model_role::local_small);
    EXPECT_EQ(cfg.models[0].provider, "llama");
    EXPECT_TRUE(cfg.models[0].path.empty());
    EXPECT_EQ(cfg.routing.default_model_type, "auto");
    EXPECT_EQ(cfg.limits.requests_per_minute, 0);
}

TEST(config, response_retention_days_is_read_and_bounded) {
    EXPECT_EQ(parse_config("[store]\nresponse_retention_days = 7\n").store.response_retention_days, 7);
    EXPECT_EQ(parse_config("", {{"SLUICE_STORE_RESPONSE_RETENTION_DAYS", "2"}}).store.response_retention_days,
              2);
    const auto msg = error_of("[store]\nresponse_retention_days = 0\n");
    EXPECT_NE(msg.find("store.response_retention_days"), std::string::npos) << msg;
}

TEST(config, models_dir_is_read_from_the_file_or_the_environment) {
    EXPECT_EQ(parse_config("").store.models_dir, "");  // the models module picks ~/.cache/sluice/models
    EXPECT_EQ(parse_config("[store]\nmodels_dir = \"/srv/models\"\n").store.models_dir, "/srv/models");
    EXPECT_EQ(parse_config("", {{"SLUICE_STORE_MODELS_DIR", "/m"}}).store.models_dir, "/m");
    const auto cfg = parse_config(
        "[[models]]\nname = \"local\"\nrole = \"local_small\"\nprovider = \"llama\"\npath = "
        "\"hf:org/repo:Q4_K_M\"\n");
    EXPECT_EQ(cfg.models[0].path, "hf:org/repo:Q4_K_M");  // resolved at start-up, not by the config
}

TEST(config, spec_example_parses) {
    const auto cfg = parse_config(R"(
[server]
listen = "127.0.0.1:8080"
heartbeat_interval_s = 15
max_body_bytes = 1048576
request_timeout_s = 300
[store]
url = "sqlite://sluice-data/sluice.db"
[[models]]
name = "local"
role = "local_small"
provider = "llama"
path = "models/model.gguf"
n_ctx = 4096
n_parallel = 4
[[models]]
name = "gpt-4o-mini"
role = "cloud_large"
provider = "openai"
base_url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
[routing]
default_model_type = "auto"
[limits]
requests_per_minute = 0
tokens_per_minute = 0
max_concurrent_streams = 0
)");
    ASSERT_EQ(cfg.models.size(), 2u);
    EXPECT_EQ(cfg.models[1].role, sluice::model_role::cloud_large);
    EXPECT_EQ(cfg.models[1].api_key_env, "OPENAI_API_KEY");
    EXPECT_EQ(cfg.models[0].max_tokens_limit, 4096);
}

TEST(config, model_defaults_to_name) {
    const auto cfg = parse_config(R"(
[[models]]
name = "big"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
)");
    EXPECT_EQ(cfg.models[0].model, "big");
}

TEST(config, unknown_key_is_named) {
    const auto msg = error_of("[server]\nlisten_port = 8080\n");
    EXPECT_NE(msg.find("unknown key server.listen_port"), std::string::npos) << msg;
}

TEST(config, unknown_section_is_named) {
    EXPECT_NE(error_of("[serverr]\n").find("unknown section [serverr]"), std::string::npos);
}

TEST(config, bad_values_name_key_value_and_what_is_allowed) {
    auto msg = error_of("[server]\nheartbeat_interval_s = 0\n");
    EXPECT_NE(msg.find("server.heartbeat_interval_s = 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("from 1 to 3600"), std::string::npos) << msg;
    EXPECT_EQ(error_of("[server]\nheartbeat_interval_s = 1\n"), "");
    EXPECT_EQ(error_of("[server]\nheartbeat_interval_s = 3600\n"), "");
    EXPECT_NE(error_of("[server]\nheartbeat_interval_s = 3601\n"), "");

    msg = error_of("[server]\nheartbeat_interval_s = \"15\"\n");
    EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;

    msg = error_of("[routing]\ndefault_model_type = \"big\"\n");
    EXPECT_NE(msg.find("routing.default_model_type = \"big\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("auto, local_small, cloud_large"), std::string::npos) << msg;

    msg = error_of("[server]\nlisten = \"localhost\"\n");
    EXPECT_NE(msg.find("server.listen"), std::string::npos) << msg;
    // A port is digits only: "-0" and "+80" are not ports, "0" and "65535" are.
    for (const char* bad : {"127.0.0.1:-0", "127.0.0.1:+80", "127.0.0.1:65536"}) {
        msg = error_of(std::string("[server]\nlisten = \"") + bad + "\"\n");
        EXPECT_NE(msg.find("server.listen"), std::string::npos) << bad << ": " << msg;
    }
    EXPECT_EQ(parse_config("[server]\nlisten = \"127.0.0.1:0\"\n").server.listen, "127.0.0.1:0");
    EXPECT_EQ(parse_config("[server]\nlisten = \"127.0.0.1:65535\"\n").server.listen, "127.0.0.1:65535");

    msg = error_of("[store]\nurl = \"postgres://x\"\n");
    EXPECT_NE(msg.find("store.url"), std::string::npos) << msg;
}

TEST(config, model_errors) {
    EXPECT_NE(error_of("[[models]]\nrole = \"local_small\"\nprovider = \"llama\"\n").find("no name"),
              std::string::npos);
    EXPECT_NE(
        error_of("[[models]]\nname = \"a\"\nrole = \"medium\"\nprovider = \"llama\"\n").find("models.role"),
        std::string::npos);
    EXPECT_NE(error_of("[[models]]\nname = \"a\"\nprovider = \"openai\"\n").find("base_url is missing"),
              std::string::npos);
    EXPECT_NE(error_of("[[models]]\nname = \"a\"\nprovider = \"llama\"\n[[models]]\nname = \"a\"\nprovider = "
                       "\"llama\"\n")
                  .find("used twice"),
              std::string::npos);
}

TEST(config, n_gpu_layers_is_unset_by_default_and_checked) {
    auto cfg = parse_config("[[models]]\nname = \"a\"\nprovider = \"llama\"\n");
    EXPECT_FALSE(cfg.models[0].n_gpu_layers) << "unset: all layers with a GPU backend, none without";
    cfg = parse_config("[[models]]\nname = \"a\"\nprovider = \"llama\"\nn_gpu_layers = 0\n");
    EXPECT_EQ(cfg.models[0].n_gpu_layers, 0);
    cfg = parse_config("[[models]]\nname = \"a\"\nprovider = \"llama\"\nn_gpu_layers = 100000\n");
    EXPECT_EQ(cfg.models[0].n_gpu_layers, 100000);
    EXPECT_NE(
        error_of("[[models]]\nname = \"a\"\nprovider = \"llama\"\nn_gpu_layers = -1\n").find("n_gpu_layers"),
        std::string::npos);
    EXPECT_NE(error_of("[[models]]\nname = \"a\"\nprovider = \"llama\"\nn_gpu_layers = 100001\n")
                  .find("n_gpu_layers"),
              std::string::npos);
}

TEST(config, an_integer_past_2_to_the_53_is_range_checked_too) {
    // toml++ has no double for such an integer: the range check read an empty optional (fuzz_config).
    const auto msg = error_of("[routing]\nsession_wait_ms = 100000000000000000\n");
    EXPECT_NE(msg.find("routing.session_wait_ms"), std::string::npos) << msg;
    EXPECT_NE(error_of("[routing]\ncloud_share = 100000000000000000\n").find("routing.cloud_share"),
              std::string::npos);
}

TEST(config, environment_overrides_win_and_are_checked) {
    auto cfg =
        parse_config("[server]\nlisten = \"127.0.0.1:8080\"\n", {{"SLUICE_SERVER_LISTEN", "127.0.0.1:9000"},
                                                                 {"SLUICE_LIMITS_REQUESTS_PER_MINUTE", "60"},
                                                                 {"SLUICE_ROUTING_FALLBACK", "false"},
                                                                 {"SLUICE_BINARY", "/not/config"}});
    EXPECT_EQ(cfg.server.listen, "127.0.0.1:9000");
    EXPECT_EQ(cfg.limits.requests_per_minute, 60);
    EXPECT_FALSE(cfg.routing.fallback);

    cfg = parse_config("", {{"SLUICE_MODELS_LOCAL_N_PARALLEL", "2"}});
    EXPECT_EQ(cfg.models[0].n_parallel, 2);

    auto msg = error_of("", {{"SLUICE_SERVER_HEARTBEAT_INTERVAL_S", "soon"}});
    EXPECT_NE(msg.find("SLUICE_SERVER_HEARTBEAT_INTERVAL_S"), std::string::npos) << msg;
    msg = error_of("", {{"SLUICE_SERVER_LISTN", "x"}});
    EXPECT_NE(msg.find("SLUICE_SERVER_LISTN names no key"), std::string::npos) << msg;
}

TEST(config, syntax_error_gives_line) {
    const auto msg = error_of("[server\nlisten = 1\n");
    EXPECT_NE(msg.find("config:1:"), std::string::npos) << msg;
}

TEST(config, missing_file_is_named) {
    try {
        sluice::load_config(std::filesystem::path("/nonexistent/sluice.toml"), {});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/sluice.toml"), std::string::npos);
    }
}

TEST(config, shipped_example_file_loads) {
    const auto path = std::filesystem::path(SLUICE_TEST_TOOLS_DIR) / ".." / ".." / "sluice.example.toml";
    const auto cfg = sluice::load_config(path, {});
    EXPECT_EQ(cfg.models.size(), 1u);
    EXPECT_EQ(cfg.server.heartbeat_interval_s, 15);
}

// The keys of issue 13 (docs/OPERATIONS.md): their defaults and their ranges.
TEST(config, connection_and_pool_limits) {
    const auto defaults = parse_config("");
    EXPECT_EQ(defaults.server.write_timeout_s, 30);
    EXPECT_EQ(defaults.server.header_timeout_s, 10);
    EXPECT_EQ(defaults.server.max_connections, 0u);  // derived from RLIMIT_NOFILE at start-up
    const auto cloud = parse_config(
        "[[models]]\nname = \"c\"\nrole = \"cloud_large\"\nprovider = \"openai\"\nbase_url = "
        "\"http://x/v1\"\n");
    EXPECT_EQ(cloud.models[0].max_connections, 1024);
    EXPECT_EQ(cloud.models[0].pool_wait_ms, 2000);

    EXPECT_EQ(error_of("[server]\nwrite_timeout_s = 0\n"), "");  // off
    auto msg = error_of("[server]\nwrite_timeout_s = -1\n");
    EXPECT_NE(msg.find("server.write_timeout_s = -1"), std::string::npos) << msg;
    msg = error_of("", {{"SLUICE_SERVER_WRITE_TIMEOUT_S", "soon"}});
    EXPECT_NE(msg.find("SLUICE_SERVER_WRITE_TIMEOUT_S"), std::string::npos) << msg;
    msg = error_of(
        "[[models]]\nname = \"c\"\nrole = \"cloud_large\"\nprovider = \"openai\"\nbase_url = "
        "\"http://x/v1\"\n"
        "pool_wait_ms = 600001\n");
    EXPECT_NE(msg.find("models.pool_wait_ms = 600001"), std::string::npos) << msg;
}

// The answer cap and the shared session lock (issue 13, docs/OPERATIONS.md).
TEST(config, answer_cap_and_session_lock_ttl) {
    const auto defaults = parse_config("");
    EXPECT_EQ(defaults.server.max_answer_bytes, 4u * 1024 * 1024);
    EXPECT_EQ(defaults.routing.session_lock_ttl_ms, 15000);
    const auto set = parse_config("[server]\nmax_answer_bytes = 0\n[routing]\nsession_lock_ttl_ms = 2000\n");
    EXPECT_EQ(set.server.max_answer_bytes, 0u);  // no cap
    EXPECT_EQ(set.routing.session_lock_ttl_ms, 2000);
    auto msg = error_of("[server]\nmax_answer_bytes = -1\n");
    EXPECT_NE(msg.find("server.max_answer_bytes = -1"), std::string::npos) << msg;
    msg = error_of("[routing]\nsession_lock_ttl_ms = 10\n");
    EXPECT_NE(msg.find("routing.session_lock_ttl_ms = 10"), std::string::npos) << msg;
}

// [[routing.rules]], balancing and weights.
namespace {

constexpr std::string_view k_two_models = R"toml(
[[models]]
name = "local"
role = "local_small"
provider = "llama"
[[models]]
name = "gpt"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
)toml";

std::string with_models(std::string_view rest) {
    return std::string(k_two_models) + std::string(rest);
}

}  // namespace

TEST(config_rules, parses_every_match_and_names_unnamed_rules_by_position) {
    const auto cfg = parse_config(with_models(R"toml(
[routing]
balance = "least_busy"
[[routing.rules]]
name = "batch"
when = { key_name = "batch-*", max_prompt_tokens = 2000, min_prompt_tokens = 1, has_tools = false }
use = "local_small"
[[routing.rules]]
when = { header = "X-Team:  research* ", model = "claude-*", has_images = true, message_regex = "\\bdeploy\\b" }
use = "gpt"
[[routing.rules]]
use = "auto"
)toml"));
    EXPECT_EQ(cfg.routing.balance, "least_busy");
    ASSERT_EQ(cfg.routing.rules.size(), 3u);
    const auto& batch = cfg.routing.rules[0];
    EXPECT_EQ(batch.name, "batch");
    EXPECT_EQ(batch.key_name, "batch-*");
    EXPECT_EQ(batch.max_prompt_tokens, 2000);
    EXPECT_EQ(batch.min_prompt_tokens, 1);
    EXPECT_EQ(batch.has_tools, false);
    EXPECT_EQ(batch.use, "local_small");
    const auto& second = cfg.routing.rules[1];
    EXPECT_EQ(second.name, "rule2");
    EXPECT_EQ(second.header_name, "x-team");
    EXPECT_EQ(second.header_value, "research*");
    EXPECT_EQ(second.model, "claude-*");
    EXPECT_EQ(second.has_images, true);
    EXPECT_EQ(second.message_regex, "\\bdeploy\\b");
    EXPECT_EQ(cfg.routing.rules[2].name, "rule3");
    EXPECT_FALSE(cfg.routing.rules[2].key_name.has_value());
}

TEST(config_rules, a_bad_rule_stops_start_up_naming_it) {
    const auto error = [](std::string_view rules) { return error_of(with_models(rules)); };
    EXPECT_NE(error("[[routing.rules]]\nname = \"r\"\nwhen = { key_nme = \"a\" }\nuse = \"auto\"\n")
                  .find("unknown key routing.rules.r.when.key_nme"),
              std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"r\"\nwhn = { key_name = \"a\" }\nuse = \"auto\"\n")
                  .find("unknown key routing.rules.r.whn"),
              std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nwhen = { key_name = \"a\" }\nuse = \"gpt-5\"\n")
                  .find("routing.rules.rule1.use = \"gpt-5\""),
              std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"r\"\nwhen = { key_name = \"a\" }\n")
                  .find("routing.rules.r.use is missing"),
              std::string::npos);
    EXPECT_NE(
        error("[[routing.rules]]\nname = \"re\"\nwhen = { message_regex = \"(unclosed\" }\nuse = \"auto\"\n")
            .find("routing.rules.re.when.message_regex"),
        std::string::npos);
    // A back-reference cannot run without backtracking: refused.
    EXPECT_NE(
        error("[[routing.rules]]\nname = \"br\"\nwhen = { message_regex = \"(a)\\\\1\" }\nuse = \"auto\"\n")
            .find("routing.rules.br.when.message_regex"),
        std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"g\"\nwhen = { key_name = \"\" }\nuse = \"auto\"\n")
                  .find("routing.rules.g.when.key_name"),
              std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"h\"\nwhen = { header = \"x-team\" }\nuse = \"auto\"\n")
                  .find("routing.rules.h.when.header"),
              std::string::npos);
    EXPECT_NE(
        error("[[routing.rules]]\nname = \"s\"\nwhen = { header = \"Authorization: Bearer sk-*\" }\nuse = "
              "\"auto\"\n")
            .find("carries the key's secret"),
        std::string::npos);
    EXPECT_NE(
        error(
            "[[routing.rules]]\nname = \"b\"\nwhen = { min_prompt_tokens = 10, max_prompt_tokens = 9 }\nuse "
            "= \"auto\"\n")
            .find("routing.rules.b.when: min_prompt_tokens 10 is above max_prompt_tokens 9"),
        std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"t\"\nwhen = { has_tools = \"yes\" }\nuse = \"auto\"\n")
                  .find("routing.rules.t.when.has_tools"),
              std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"d\"\nuse = \"auto\"\n[[routing.rules]]\nname = \"d\"\nuse = "
                    "\"auto\"\n")
                  .find("\"d\" is used twice"),
              std::string::npos);
    EXPECT_NE(error("[[routing.rules]]\nname = \"n\"\nwhen = { max_prompt_tokens = -1 }\nuse = \"auto\"\n")
                  .find("routing.rules.n.when.max_prompt_tokens"),
              std::string::npos);
}

TEST(config_rules, use_may_name_a_model_a_configured_role_or_auto_but_not_an_empty_role) {
    EXPECT_EQ(error_of(with_models("[[routing.rules]]\nuse = \"gpt\"\n")), "");
    EXPECT_EQ(error_of(with_models("[[routing.rules]]\nuse = \"cloud_large\"\n")), "");
    EXPECT_EQ(error_of(with_models("[[routing.rules]]\nuse = \"auto\"\n")), "");
    // Only the local demo model: no cloud_large model for the rule to use.
    EXPECT_NE(error_of("[[routing.rules]]\nuse = \"cloud_large\"\n").find("routing.rules.rule1.use"),
              std::string::npos);
}

TEST(config_rules, regex_pattern_size_and_repeat_counts_are_bounded_on_both_sides) {
    const auto rule = [](const std::string& pattern) {
        return with_models("[[routing.rules]]\nname = \"x\"\nwhen = { message_regex = '" + pattern +
                           "' }\nuse = \"auto\"\n");
    };
    EXPECT_EQ(error_of(rule(std::string(512, 'a'))), "");
    EXPECT_NE(error_of(rule(std::string(513, 'a'))).find("1 to 512 bytes"), std::string::npos);
    EXPECT_EQ(error_of(rule("a{100}")), "");
    EXPECT_NE(error_of(rule("a{2,101}")).find("a repeat count above 100"), std::string::npos);
    EXPECT_EQ(error_of(rule("\\{1000\\}")), "");         // escaped braces are text
    EXPECT_EQ(error_of(rule("((a{10}){10}){10}")), "");  // 1000 copies
    EXPECT_NE(error_of(rule("((a{10}){10}){100}")).find("too large once its repeats are expanded"),
              std::string::npos);
    // Patterns whose automaton is too big are refused at load, not slow at run time.
    EXPECT_NE(error_of(rule("[ab]*a[ab]{20}")).find("more than 4096 states"), std::string::npos);
}

TEST(config_balance, weight_and_balance_are_checked_on_both_sides) {
    const auto weighted = [](std::string_view weight) {
        return error_of(std::string(k_two_models) + "weight = " + std::string(weight) + "\n");
    };
    EXPECT_EQ(weighted("0"), "");
    EXPECT_EQ(weighted("1000000"), "");
    EXPECT_NE(weighted("-1").find("models.weight = -1"), std::string::npos);
    EXPECT_NE(weighted("1000001").find("models.weight"), std::string::npos);
    EXPECT_EQ(parse_config(k_two_models).models[1].weight, 1);
    EXPECT_NE(
        error_of(with_models("[routing]\nbalance = \"random\"\n")).find("weighted, least_busy, latency"),
        std::string::npos);
    EXPECT_EQ(parse_config(with_models(""), {{"SLUICE_ROUTING_BALANCE", "latency"}}).routing.balance,
              "latency");
    EXPECT_EQ(parse_config(with_models(""), {{"SLUICE_MODELS_GPT_WEIGHT", "3"}}).models[1].weight, 3);
}

TEST(config, resume_section_defaults_bounds_and_environment) {
    const auto defaults = parse_config("");
    EXPECT_EQ(defaults.resume.max_bytes, 1024u * 1024);
    EXPECT_EQ(defaults.resume.keep_s, 30);
    EXPECT_EQ(defaults.resume.ttl_s, 300);
    EXPECT_EQ(defaults.resume.retry_ms, 1000);
    const auto set = parse_config("[resume]\nmax_bytes = 4096\nkeep_s = 0\nttl_s = 60\nretry_ms = 250\n",
                                  {{"SLUICE_RESUME_KEEP_S", "5"}});
    EXPECT_EQ(set.resume.max_bytes, 4096u);
    EXPECT_EQ(set.resume.keep_s, 5);  // the environment wins
    EXPECT_EQ(set.resume.ttl_s, 60);
    EXPECT_EQ(set.resume.retry_ms, 250);
    auto msg = error_of("[resume]\nmax_bytes = 10\n");
    EXPECT_NE(msg.find("resume.max_bytes = 10"), std::string::npos) << msg;
    msg = error_of("[resume]\nkeep_s = -1\n");
    EXPECT_NE(msg.find("resume.keep_s = -1"), std::string::npos) << msg;
    msg = error_of("[resume]\nlinger = 3\n");
    EXPECT_NE(msg.find("resume.linger"), std::string::npos) << msg;
}
