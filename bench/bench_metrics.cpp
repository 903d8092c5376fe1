// What a metric costs on the request path: one observation must stay in the nanoseconds, also when
// both cores hit the same counter.
#include <benchmark/benchmark.h>

#include "core/metrics.h"

namespace {

using namespace sluice;

void counter_inc(benchmark::State& state) {
    static metrics::registry r;
    auto& c = r.requests("chat_stream", 200);
    for (auto _ : state) c.inc();
}
BENCHMARK(counter_inc)->Threads(1)->Threads(2);

void counter_lookup_and_inc(benchmark::State& state) {
    static metrics::registry r;
    for (auto _ : state) r.requests("chat_stream", 200).inc();
}
BENCHMARK(counter_lookup_and_inc)->Threads(1)->Threads(2);

void histogram_observe(benchmark::State& state) {
    static metrics::registry r;
    auto& h = r.inter_chunk_gap_seconds();
    double v = 0.0003;
    for (auto _ : state) {
        h.observe(v);
        v = v < 1 ? v * 1.7 : 0.0001;
    }
}
BENCHMARK(histogram_observe)->Threads(1)->Threads(2);

void stream_timer_20_chunks(benchmark::State& state) {
    metrics::registry r;
    for (auto _ : state) {
        metrics::stream_timer t{r};
        t.model_begin();
        for (int i = 0; i < 20; ++i) {
            t.chunk_begin();
            t.chunk_end();
        }
        t.model_end();
    }
}
BENCHMARK(stream_timer_20_chunks);

void render(benchmark::State& state) {
    metrics::registry r;
    for (int s = 200; s < 210; ++s) r.requests("chat_stream", s).inc();
    r.ttft_seconds().observe(0.01);
    for (auto _ : state) benchmark::DoNotOptimize(r.render());
}
BENCHMARK(render);

}  // namespace

BENCHMARK_MAIN();
