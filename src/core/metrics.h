#pragma once
// sluice's live figures, served as Prometheus text (exposition format 0.0.4) on GET /metrics.
//
// Cost model: an observation is one or two relaxed atomic adds, never a lock, a string or an
// allocation. A labelled child is looked up once (a shared lock and a short linear scan, no string
// built) and the returned reference stays valid for the life of the registry, so hot paths resolve
// their handle once (per model, per endpoint) and keep it:
//
//     auto& m = metrics::get();                          // the process-wide registry
//     m.requests("chat_stream", 200).inc();              // labels: a route NAME, never the raw path
//     metrics::gauge_guard live{m.active_streams()};     // +1 now, -1 when the stream ends
//     auto& completion = m.tokens("gpt-4o-mini", model_role::cloud_large, metrics::token_kind::completion);
//     completion.inc(n);                                 // cached handle, one atomic add
//
// For a whole request the server uses metrics::stream_timer (below): it feeds time to first token,
// inter-chunk gaps, total duration and gateway overhead from four calls at the right spots.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"

namespace sluice::metrics {

// The Content-Type a Prometheus scraper expects for render()'s output.
inline constexpr std::string_view k_content_type = "text/plain; version=0.0.4; charset=utf-8";

class counter {
  public:
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> value_{0};
};

class gauge {
  public:
    void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    void inc() noexcept { add(1); }
    void dec() noexcept { add(-1); }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::int64_t> value_{0};
};

// +1 on construction, -1 on destruction: a gauge of things in flight that cannot leak on an
// exception or a cancelled coroutine.
class gauge_guard {
  public:
    explicit gauge_guard(gauge& g) noexcept : gauge_(&g) { gauge_->inc(); }
    ~gauge_guard() { gauge_->dec(); }
    gauge_guard(const gauge_guard&) = delete;
    gauge_guard& operator=(const gauge_guard&) = delete;

  private:
    gauge* gauge_;
};

// Fixed upper bounds (`le`), ascending; counts are kept per bucket and made cumulative only when
// rendered, so an observation touches one bucket, the sum and nothing else.
class histogram {
  public:
    explicit histogram(std::span<const double> bounds);

    void observe(double value) noexcept;
    void observe(std::chrono::nanoseconds d) noexcept { observe(static_cast<double>(d.count()) * 1e-9); }

    std::span<const double> bounds() const noexcept { return bounds_; }
    std::uint64_t bucket_count(std::size_t i) const noexcept;  // not cumulative; i == bounds().size() is +Inf
    std::uint64_t count() const noexcept;
    double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

  private:
    std::span<const double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
    std::atomic<double> sum_{0.0};
};

enum class metric_type { counter, gauge, histogram };

// One metric name with its HELP, TYPE and label names; children are created on first use.
class family_base {
  public:
    family_base(std::string name, std::string help, std::vector<std::string> label_names);
    virtual ~family_base() = default;
    virtual metric_type type() const = 0;
    virtual void render(std::string& out) const = 0;
    const std::string& name() const { return name_; }

  protected:
    void render_header(std::string& out) const;
    // Appends `{a="x",b="y"` (no closing brace, so a histogram can add `le`); nothing when unlabelled.
    void render_labels(std::string& out, const std::vector<std::string>& values) const;

    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
};

template <typename Metric>
class family final : public family_base {
  public:
    family(std::string name, std::string help, std::vector<std::string> label_names,
           std::span<const double> bounds = {})
        : family_base(std::move(name), std::move(help), std::move(label_names)), bounds_(bounds) {}

    metric_type type() const override;
    void render(std::string& out) const override;

    // The child for these label values (in label-name order), created on first use. The reference
    // is stable for the life of the family: resolve it once and keep it on hot paths.
    Metric& with(std::initializer_list<std::string_view> values);

  private:
    struct child {
        std::vector<std::string> values;
        Metric metric;
    };
    Metric* find(std::initializer_list<std::string_view> values) const;

    std::span<const double> bounds_;
    mutable std::shared_mutex mutex_;
    std::vector<std::unique_ptr<child>> children_;
};

enum class token_kind { prompt, completion };

// circuit_state gauge values.
inline constexpr std::int64_t k_circuit_closed = 0;
inline constexpr std::int64_t k_circuit_open = 1;
inline constexpr std::int64_t k_circuit_half_open = 2;

// Every sluice metric family, by name. Construct one per test; the server uses get().
class registry {
  public:
    registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // sluice_http_requests_total{endpoint,status}: one per finished HTTP request. `endpoint` is the
    // route's name ("chat_stream", "chat", "chat_completions", "models", "sessions", "metrics",
    // "healthz", "other"...), never the raw path, so that the label set stays small.
    counter& requests(std::string_view endpoint, int status);
    // sluice_active_streams: responses currently streaming (wrap in gauge_guard).
    gauge& active_streams() { return active_streams_; }
    // sluice_ttft_seconds: request received -> first content token handed to the client.
    histogram& ttft_seconds() { return ttft_; }
    // sluice_inter_chunk_gap_seconds: between two content chunks written to one client.
    histogram& inter_chunk_gap_seconds() { return inter_chunk_gap_; }
    // sluice_stream_duration_seconds: request received -> response finished (streaming or not).
    histogram& stream_duration_seconds() { return stream_duration_; }
    // sluice_gateway_overhead_seconds: that duration minus the time spent waiting on the model.
    histogram& gateway_overhead_seconds() { return gateway_overhead_; }
    // sluice_tokens_total{model,role,kind}: kind = prompt | completion.
    counter& tokens(std::string_view model, model_role role, token_kind kind);
    // Both token kinds of one finished request, in one call.
    void count_tokens(std::string_view model, model_role role, int prompt, int completion);
    // sluice_upstream_errors_total{model,kind}: one per failed model call, counted where the
    // orchestrator's circuit breakers hear of it; kind = routing's failure_kind (connect, timeout,
    // rate_limited, queue_full, bad_request, ...).
    counter& upstream_errors(std::string_view model, std::string_view kind);
    // sluice_route_decisions_total{role,reason}: one per routed request; reason = route.reason.
    counter& route_decisions(model_role role, std::string_view reason);
    // sluice_tool_calls_total{model}: tool calls the models made (each call once, whatever the API).
    counter& tool_calls(std::string_view model);
    // sluice_resumable_streams_total: streams started with "resumable" (or background responses).
    counter& resumable_streams() { return resumable_streams_; }
    // sluice_resumed_streams_total: reconnects that resumed a stream from its log.
    counter& resumed_streams() { return resumed_streams_; }
    // sluice_replayed_events_total: events sent again from a log to a reconnecting client.
    counter& replayed_events() { return replayed_events_; }
    // sluice_turn_batches_total: transactions the turn writer made (turn/turn_writer.h), each storing
    // one or more turns.
    counter& turn_batches() { return turn_batches_; }
    // sluice_turns_stored_total: session turns the turn writer stored.
    counter& turns_stored() { return turns_stored_; }
    // sluice_circuit_state{model}: k_circuit_closed / k_circuit_open / k_circuit_half_open.
    gauge& circuit_state(std::string_view model);
    // sluice_local_queue_depth{model}: local requests waiting for a decoding slot.
    gauge& local_queue_depth(std::string_view model);

    // The whole exposition text: every family, then process_* figures read from /proc at call time.
    std::string render() const;

  private:
    family<counter> requests_;
    family<gauge> active_streams_family_;
    gauge& active_streams_;
    family<histogram> ttft_family_;
    histogram& ttft_;
    family<histogram> inter_chunk_gap_family_;
    histogram& inter_chunk_gap_;
    family<histogram> stream_duration_family_;
    histogram& stream_duration_;
    family<histogram> gateway_overhead_family_;
    histogram& gateway_overhead_;
    family<counter> tokens_;
    family<counter> upstream_errors_;
    family<counter> route_decisions_;
    family<counter> tool_calls_;
    family<counter> resumable_streams_family_;
    counter& resumable_streams_;
    family<counter> resumed_streams_family_;
    counter& resumed_streams_;
    family<counter> replayed_events_family_;
    counter& replayed_events_;
    family<counter> turn_batches_family_;
    counter& turn_batches_;
    family<counter> turns_stored_family_;
    counter& turns_stored_;
    family<gauge> circuit_state_;
    family<gauge> local_queue_depth_;
    std::vector<const family_base*> families_;  // in exposition order
};

// The process-wide registry.
registry& get();

// Runs `fn` when the scope ends, whichever way (return, exception, cancelled coroutine): counts a
// request exactly once without touching every exit path.
template <typename Fn>
class at_scope_exit {
  public:
    explicit at_scope_exit(Fn fn) : fn_(std::move(fn)) {}
    ~at_scope_exit() { fn_(); }
    at_scope_exit(const at_scope_exit&) = delete;
    at_scope_exit& operator=(const at_scope_exit&) = delete;

  private:
    Fn fn_;
};

// Times one request for the histograms above. Call order:
//   stream_timer t{metrics::get()};     // when the request head has been read
//   t.model_begin();                    // just before awaiting the provider
//   t.chunk_begin(); ...write...; t.chunk_end();   // around handing each content chunk to the client
//   t.model_end();                      // the provider returned
//   t.finish();                         // response done (the destructor calls it if you did not)
// Waiting on the model = (model_end - model_begin) minus the time spent inside chunk_begin/end,
// i.e. the time the provider spent getting the next chunk; everything else is gateway overhead.
class stream_timer {
  public:
    using clock = std::chrono::steady_clock;

    explicit stream_timer(registry& r) noexcept : registry_(&r), start_(clock::now()) {}
    // `start`: when the request arrived, if that was before the timer could be made.
    stream_timer(registry& r, clock::time_point start) noexcept : registry_(&r), start_(start) {}
    ~stream_timer() { finish(); }
    stream_timer(const stream_timer&) = delete;
    stream_timer& operator=(const stream_timer&) = delete;

    void model_begin() noexcept;
    void chunk_begin() noexcept;
    void chunk_end() noexcept;
    void model_end() noexcept;
    void finish() noexcept;

  private:
    registry* registry_;
    clock::time_point start_;
    clock::time_point model_begin_{};
    clock::time_point chunk_begin_{};
    clock::time_point last_chunk_{};
    clock::duration in_chunks_{};
    clock::duration model_wait_{};
    bool in_model_ = false;
    bool any_chunk_ = false;
    bool finished_ = false;
};

}  // namespace sluice::metrics
