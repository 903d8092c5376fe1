// The auto policy's cost per decision (goal: under 50 µs, SPEC §5 / issue 4), and a whole plan()
// with two models. Run: build/bench_routing
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "routing/features.h"
#include "routing/orchestrator.h"
#include "routing/policy.h"

namespace {

const std::string k_short = "hi, how are you today?";
const std::string k_mmlu =
    "Statement 1 | If a group has an element of order 15 it must have at least 8 elements of order 15. "
    "Statement 2 | If a group has more than 8 elements of order 15, it must have at least 16 elements of "
    "order 15.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:";
const std::string k_code =
    "Why does this segfault? Explain step by step and suggest a fix.\n```cpp\n#include <vector>\nint main() "
    "{\n"
    "    std::vector<int> v;\n    for (int i = 0; i <= 10; ++i) v[i] = i * i;\n    return v[3];\n}\n```\n";

std::string long_message() {
    std::string s;
    while (s.size() < 64 * 1024) s += "The quick brown fox jumps over the lazy dog while explaining monads. ";
    return s;
}

void decide(benchmark::State& state, const std::string& message) {
    const sluice::auto_policy policy;
    for (auto _ : state) {
        auto d = policy.decide(message, 2, 4000);
        benchmark::DoNotOptimize(d);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * message.size()));
}

void bm_decide_short(benchmark::State& state) {
    decide(state, k_short);
}
void bm_decide_mmlu(benchmark::State& state) {
    decide(state, k_mmlu);
}
void bm_decide_code(benchmark::State& state) {
    decide(state, k_code);
}
void bm_decide_64k(benchmark::State& state) {
    static const std::string m = long_message();  // only the first 4 KiB is read
    decide(state, m);
}

// The feature pass alone, to see what the scoring adds on top.
void bm_features_64k(benchmark::State& state) {
    static const std::string m = long_message();
    for (auto _ : state) {
        auto f = sluice::extract_features(m, 2, 4000);
        benchmark::DoNotOptimize(f);
    }
}

class idle_provider : public sluice::provider {
  public:
    explicit idle_provider(sluice::model_config cfg) : cfg_(std::move(cfg)) {}
    const sluice::model_config& config() const override { return cfg_; }
    sluice::provider_status status() const override { return {}; }
    int count_tokens(const std::string& text) const override { return static_cast<int>(text.size() / 4); }
    boost::asio::awaitable<void> stream(const sluice::chat_request&, sluice::chunk_sink) override {
        co_return;
    }

  private:
    sluice::model_config cfg_;
};

void bm_plan(benchmark::State& state) {
    sluice::config cfg;
    cfg.models = {{.name = "local", .role = sluice::model_role::local_small, .provider = "llama"},
                  {.name = "gpt", .role = sluice::model_role::cloud_large, .provider = "openai"}};
    std::vector<sluice::provider_ptr> providers;
    for (const auto& m : cfg.models) providers.push_back(std::make_shared<idle_provider>(m));
    sluice::orchestrator orch(cfg, providers);
    for (auto _ : state) {
        auto plan = orch.plan({.message = k_code, .turns_so_far = 2});
        benchmark::DoNotOptimize(plan);
    }
}

// plan() for a 64 KiB message through [[routing.rules]] none of which match (so every rule is
// checked, the regexes over their whole 4 KiB window), then the balance among three cloud models.
void plan_with_rules(benchmark::State& state, const std::string& regex) {
    static const std::string m = long_message();
    auto cfg = sluice::parse_config(R"toml(
[[models]]
name = "local"
role = "local_small"
provider = "llama"
[[models]]
name = "a"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
[[models]]
name = "b"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
weight = 3
[[models]]
name = "c"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
[routing]
default_model_type = "cloud_large"
[[routing.rules]]
when = { key_name = "batch-*" }
use = "local_small"
[[routing.rules]]
when = { header = "x-team: research*" }
use = "a"
[[routing.rules]]
when = { model = "claude-*", max_prompt_tokens = 100 }
use = "b"
[[routing.rules]]
when = { message_regex = ')toml" + regex +
                                    R"toml(' }
use = "c"
)toml");
    std::vector<sluice::provider_ptr> providers;
    for (const auto& model : cfg.models) providers.push_back(std::make_shared<idle_provider>(model));
    sluice::orchestrator orch(cfg, providers);
    for (auto _ : state) {
        sluice::route_request request{.message = m, .turns_so_far = 2, .key_name = "web"};
        request.headers = {{"x-team", "sales"}};
        auto plan = orch.plan(request);
        benchmark::DoNotOptimize(plan);
    }
}

void bm_plan_rules_64k_literal(benchmark::State& state) {
    plan_with_rules(state, "\\bdeploy(ment)?\\b");
}
void bm_plan_rules_64k_alternation(benchmark::State& state) {
    plan_with_rules(state, "(urgent|asap|p0|sev[12]).*(outage|down|broken)");
}

}  // namespace

BENCHMARK(bm_decide_short);
BENCHMARK(bm_decide_mmlu);
BENCHMARK(bm_decide_code);
BENCHMARK(bm_decide_64k);
BENCHMARK(bm_features_64k);
BENCHMARK(bm_plan);
BENCHMARK(bm_plan_rules_64k_literal);
BENCHMARK(bm_plan_rules_64k_alternation);

BENCHMARK_MAIN();
