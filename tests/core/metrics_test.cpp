#include "core/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <vector>

using namespace sluice;
using metrics::registry;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        if (l == line) return true;
    }
    return false;
}

// The value of the sample line that starts with `prefix` followed by a space, or -1 when absent.
double sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        if (l.size() > series.size() && l.compare(0, series.size(), series) == 0 && l[series.size()] == ' ') {
            return std::stod(l.substr(series.size() + 1));
        }
    }
    return -1;
}

}  // namespace

TEST(metrics, every_family_has_help_and_type) {
    registry r;
    const auto text = r.render();
    const std::vector<std::pair<std::string, std::string>> families{
        {"sluice_http_requests_total", "counter"},
        {"sluice_active_streams", "gauge"},
        {"sluice_ttft_seconds", "histogram"},
        {"sluice_inter_chunk_gap_seconds", "histogram"},
        {"sluice_stream_duration_seconds", "histogram"},
        {"sluice_gateway_overhead_seconds", "histogram"},
        {"sluice_tokens_total", "counter"},
        {"sluice_upstream_errors_total", "counter"},
        {"sluice_route_decisions_total", "counter"},
        {"sluice_tool_calls_total", "counter"},
        {"sluice_resumable_streams_total", "counter"},
        {"sluice_resumed_streams_total", "counter"},
        {"sluice_replayed_events_total", "counter"},
        {"sluice_turn_batches_total", "counter"},
        {"sluice_turns_stored_total", "counter"},
        {"sluice_circuit_state", "gauge"},
        {"sluice_local_queue_depth", "gauge"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_cpu_seconds_total", "counter"},
    };
    for (const auto& [name, type] : families) {
        EXPECT_TRUE(has_line(text, "# TYPE " + name + " " + type)) << name;
        EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
    }
    EXPECT_EQ(text.back(), '\n');
    EXPECT_GT(sample(text, "process_resident_memory_bytes"), 0);
}

TEST(metrics, labelled_counters_render_and_move) {
    registry r;
    r.requests("chat_stream", 200).inc();
    r.requests("chat_stream", 200).inc(2);
    r.requests("chat_stream", 401).inc();
    r.tokens("gpt-4o-mini", model_role::cloud_large, metrics::token_kind::completion).inc(40);
    r.upstream_errors("gpt-4o-mini", "status_5xx").inc();
    r.route_decisions(model_role::local_small, "short_chat").inc();
    const auto text = r.render();
    EXPECT_EQ(sample(text, R"(sluice_http_requests_total{endpoint="chat_stream",status="200"})"), 3);
    EXPECT_EQ(sample(text, R"(sluice_http_requests_total{endpoint="chat_stream",status="401"})"), 1);
    EXPECT_EQ(
        sample(text, R"(sluice_tokens_total{model="gpt-4o-mini",role="cloud_large",kind="completion"})"), 40);
    EXPECT_EQ(sample(text, R"(sluice_upstream_errors_total{model="gpt-4o-mini",kind="status_5xx"})"), 1);
    EXPECT_EQ(sample(text, R"(sluice_route_decisions_total{role="local_small",reason="short_chat"})"), 1);
}

TEST(metrics, a_handle_is_resolved_once_and_stays_the_same) {
    registry r;
    auto& a = r.requests("chat", 200);
    r.requests("chat", 500);
    r.requests("models", 200);
    EXPECT_EQ(&a, &r.requests("chat", 200));
    EXPECT_NE(&a, &r.requests("chat", 500));
}

TEST(metrics, gauges_go_up_and_down) {
    registry r;
    {
        metrics::gauge_guard one{r.active_streams()};
        metrics::gauge_guard two{r.active_streams()};
        EXPECT_EQ(sample(r.render(), "sluice_active_streams"), 2);
    }
    EXPECT_EQ(sample(r.render(), "sluice_active_streams"), 0);
    r.circuit_state("gpt").set(metrics::k_circuit_open);
    r.local_queue_depth("local").set(3);
    const auto text = r.render();
    EXPECT_EQ(sample(text, R"(sluice_circuit_state{model="gpt"})"), 1);
    EXPECT_EQ(sample(text, R"(sluice_local_queue_depth{model="local"})"), 3);
}

TEST(metrics, histogram_buckets_are_cumulative_with_sum_and_count) {
    registry r;
    auto& h = r.gateway_overhead_seconds();
    h.observe(0.00001);  // first bucket (le 2.5e-05)
    h.observe(0.0002);   // le 0.00025
    h.observe(0.0002);
    h.observe(100.0);  // beyond the last bound: only +Inf
    const auto text = r.render();
    EXPECT_EQ(sample(text, R"(sluice_gateway_overhead_seconds_bucket{le="2.5e-05"})"), 1);
    EXPECT_EQ(sample(text, R"(sluice_gateway_overhead_seconds_bucket{le="0.0001"})"), 1);
    EXPECT_EQ(sample(text, R"(sluice_gateway_overhead_seconds_bucket{le="0.00025"})"), 3);
    EXPECT_EQ(sample(text, R"(sluice_gateway_overhead_seconds_bucket{le="1"})"), 3);
    EXPECT_EQ(sample(text, R"(sluice_gateway_overhead_seconds_bucket{le="+Inf"})"), 4);
    EXPECT_EQ(sample(text, "sluice_gateway_overhead_seconds_count"), 4);
    EXPECT_NEAR(sample(text, "sluice_gateway_overhead_seconds_sum"), 100.00041, 1e-9);
    // An observation equal to a bound belongs to that bucket (le = less or equal).
    h.observe(0.001);
    EXPECT_EQ(sample(r.render(), R"(sluice_gateway_overhead_seconds_bucket{le="0.001"})"), 4);
}

TEST(metrics, label_values_are_escaped) {
    registry r;
    r.upstream_errors("we\"ird\\model\nname", "reset").inc();
    EXPECT_NE(r.render().find(R"(sluice_upstream_errors_total{model="we\"ird\\model\nname",kind="reset"} 1)"),
              std::string::npos);
}

TEST(metrics, concurrent_increments_and_observations_add_up) {
    registry r;
    constexpr int k_threads = 8;
    constexpr int k_per_thread = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&r, t] {
            for (int i = 0; i < k_per_thread; ++i) {
                // Half the threads resolve the child each time, racing its creation.
                r.requests("chat", 200 + (i % 2)).inc();
                r.tokens("m", model_role::local_small, metrics::token_kind::prompt).inc(t % 2 ? 1 : 2);
                r.ttft_seconds().observe(0.002);
                r.active_streams().inc();
                r.active_streams().dec();
            }
        });
    }
    for (auto& t : threads) t.join();
    const auto text = r.render();
    EXPECT_EQ(sample(text, R"(sluice_http_requests_total{endpoint="chat",status="200"})"),
              k_threads * k_per_thread / 2);
    EXPECT_EQ(sample(text, R"(sluice_http_requests_total{endpoint="chat",status="201"})"),
              k_threads * k_per_thread / 2);
    EXPECT_EQ(sample(text, R"(sluice_tokens_total{model="m",role="local_small",kind="prompt"})"),
              k_threads * k_per_thread * 3 / 2);
    EXPECT_EQ(sample(text, "sluice_ttft_seconds_count"), k_threads * k_per_thread);
    EXPECT_NEAR(sample(text, "sluice_ttft_seconds_sum"), 0.002 * k_threads * k_per_thread, 1e-6);
    EXPECT_EQ(sample(text, "sluice_active_streams"), 0);
}

TEST(metrics, stream_timer_feeds_ttft_gaps_duration_and_overhead) {
    registry r;
    {
        metrics::stream_timer t{r};
        t.model_begin();
        for (int i = 0; i < 3; ++i) {
            t.chunk_begin();
            t.chunk_end();
        }
        t.model_end();
    }  // the destructor finishes
    EXPECT_EQ(r.ttft_seconds().count(), 1u);
    EXPECT_EQ(r.inter_chunk_gap_seconds().count(), 2u);
    EXPECT_EQ(r.stream_duration_seconds().count(), 1u);
    EXPECT_EQ(r.gateway_overhead_seconds().count(), 1u);
    // Overhead never exceeds the total.
    EXPECT_LE(r.gateway_overhead_seconds().sum(), r.stream_duration_seconds().sum());
}

TEST(metrics, stream_timer_finishes_once_even_when_cancelled_inside_the_model) {
    registry r;
    {
        metrics::stream_timer t{r};
        t.model_begin();
        t.finish();
        t.finish();
    }
    EXPECT_EQ(r.stream_duration_seconds().count(), 1u);
    EXPECT_EQ(r.ttft_seconds().count(), 0u);
}

TEST(metrics, the_global_registry_is_one_instance) {
    EXPECT_EQ(&metrics::get(), &metrics::get());
}
