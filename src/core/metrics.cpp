#include "core/metrics.h"

#include "core/log.h"

#include <unistd.h>

#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace sluice::metrics {

namespace {

// Latency buckets in seconds. Overhead starts at 25 µs because the target is sub-millisecond; the
// model-facing ones reach a minute because a local model on a busy CPU can take that long.
constexpr std::array<double, 16> k_ttft_bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                               0.5,   1.0,    2.5,   5.0,  10.0,  20.0, 30.0, 60.0};
constexpr std::array<double, 14> k_gap_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                              0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   5.0};
constexpr std::array<double, 15> k_duration_bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                                   1.0,   2.5,   5.0,  10.0,  30.0, 60.0, 300.0};
constexpr std::array<double, 14> k_overhead_bounds{0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                   0.005,    0.01,    0.025,  0.05,    0.1,    0.25,  1.0};

void append_number(std::string& out, double v) {
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    // %g-style shortest form, as the Go and Python clients print bounds: 0.0001, 2.5e-05.
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    out.append(buf, end);
}

template <typename Int>
void append_int(std::string& out, Int v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
}

// Label values and HELP text escape differently (0.0.4): HELP escapes \ and newline, values also ".
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (quote && c == '"') {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

bool same_values(const std::vector<std::string>& have, std::initializer_list<std::string_view> want) {
    if (have.size() != want.size()) return false;
    auto it = want.begin();
    for (const auto& v : have) {
        if (v != *it++) return false;
    }
    return true;
}

}  // namespace

// ---- histogram ----

histogram::histogram(std::span<const double> bounds)
    : bounds_(bounds), buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void histogram::observe(double value) noexcept {
    // A linear scan beats a binary search over ~15 bounds, and most observations land early.
    std::size_t i = 0;
    const std::size_t n = bounds_.size();
    while (i < n && !(value <= bounds_[i])) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

std::uint64_t histogram::bucket_count(std::size_t i) const noexcept {
    return buckets_[i].load(std::memory_order_relaxed);
}

std::uint64_t histogram::count() const noexcept {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) total += bucket_count(i);
    return total;
}

// ---- families ----

family_base::family_base(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void family_base::render_header(std::string& out) const {
    out += "# HELP ";
    out += name_;
    out += ' ';
    append_escaped(out, help_, false);
    out += "\n# TYPE ";
    out += name_;
    switch (type()) {
        case metric_type::counter:
            out += " counter\n";
            break;
        case metric_type::gauge:
            out += " gauge\n";
            break;
        case metric_type::histogram:
            out += " histogram\n";
            break;
    }
}

void family_base::render_labels(std::string& out, const std::vector<std::string>& values) const {
    for (std::size_t i = 0; i < values.size(); ++i) {
        out += i == 0 ? '{' : ',';
        out += label_names_[i];
        out += "=\"";
        append_escaped(out, values[i], true);
        out += '"';
    }
}

template <typename Metric>
Metric* family<Metric>::find(std::initializer_list<std::string_view> values) const {
    for (const auto& c : children_) {
        if (same_values(c->values, values)) return &c->metric;
    }
    return nullptr;
}

template <typename Metric>
Metric& family<Metric>::with(std::initializer_list<std::string_view> values) {
    {
        std::shared_lock lock(mutex_);
        if (auto* m = find(values)) return *m;
    }
    std::unique_lock lock(mutex_);
    if (auto* m = find(values)) return *m;
    std::vector<std::string> owned(values.begin(), values.end());
    owned.resize(label_names_.size());  // a caller passing too few values gets empty ones, not UB
    if constexpr (std::is_same_v<Metric, histogram>) {
        children_.push_back(std::unique_ptr<child>(new child{std::move(owned), histogram{bounds_}}));
    } else {
        children_.push_back(std::unique_ptr<child>(new child{std::move(owned), {}}));
    }
    return children_.back()->metric;
}

template <>
metric_type family<counter>::type() const {
    return metric_type::counter;
}
template <>
metric_type family<gauge>::type() const {
    return metric_type::gauge;
}
template <>
metric_type family<histogram>::type() const {
    return metric_type::histogram;
}

template <>
void family<counter>::render(std::string& out) const {
    render_header(out);
    std::shared_lock lock(mutex_);
    for (const auto& c : children_) {
        out += name_;
        render_labels(out, c->values);
        if (!c->values.empty()) out += '}';
        out += ' ';
        append_int(out, c->metric.value());
        out += '\n';
    }
}

template <>
void family<gauge>::render(std::string& out) const {
    render_header(out);
    std::shared_lock lock(mutex_);
    for (const auto& c : children_) {
        out += name_;
        render_labels(out, c->values);
        if (!c->values.empty()) out += '}';
        out += ' ';
        append_int(out, c->metric.value());
        out += '\n';
    }
}

template <>
void family<histogram>::render(std::string& out) const {
    render_header(out);
    std::shared_lock lock(mutex_);
    for (const auto& c : children_) {
        const auto& h = c->metric;
        const auto bounds = h.bounds();
        // Read each bucket once so that the cumulative counts and _count agree with each other even
        // while observations keep arriving.
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
            cumulative += h.bucket_count(i);
            out += name_;
            out += "_bucket";
            render_labels(out, c->values);
            out += c->values.empty() ? "{le=\"" : ",le=\"";
            append_number(out, i < bounds.size() ? bounds[i] : INFINITY);
            out += "\"} ";
            append_int(out, cumulative);
            out += '\n';
        }
        const auto suffix = [&](std::string_view s) {
            out += name_;
            out += s;
            render_labels(out, c->values);
            if (!c->values.empty()) out += '}';
            out += ' ';
        };
        suffix("_sum");
        append_number(out, h.sum());
        out += '\n';
        suffix("_count");
        append_int(out, cumulative);
        out += '\n';
    }
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

// ---- the registry ----

registry::registry()
    : requests_("sluice_http_requests_total", "HTTP requests finished, by route and status.",
                {"endpoint", "status"}),
      active_streams_family_("sluice_active_streams", "Responses streaming right now.", {}),
      active_streams_(active_streams_family_.with({})),
      ttft_family_("sluice_ttft_seconds", "Request received to first content token written to the client.",
                   {}, k_ttft_bounds),
      ttft_(ttft_family_.with({})),
      inter_chunk_gap_family_("sluice_inter_chunk_gap_seconds",
                              "Time between two content chunks written to one client.", {}, k_gap_bounds),
      inter_chunk_gap_(inter_chunk_gap_family_.with({})),
      stream_duration_family_("sluice_stream_duration_seconds",
                              "Request received to response finished, streaming or not.", {},
                              k_duration_bounds),
      stream_duration_(stream_duration_family_.with({})),
      gateway_overhead_family_("sluice_gateway_overhead_seconds",
                               "Time spent in sluice itself: duration minus time waiting on the model.", {},
                               k_overhead_bounds),
      gateway_overhead_(gateway_overhead_family_.with({})),
      tokens_("sluice_tokens_total", "Tokens processed, by model, role and kind (prompt or completion).",
              {"model", "role", "kind"}),
      upstream_errors_("sluice_upstream_errors_total", "Failed model calls, by model and kind of failure.",
                       {"model", "kind"}),
      route_decisions_("sluice_route_decisions_total", "Routing decisions, by chosen role and reason.",
                       {"role", "reason"}),
      tool_calls_("sluice_tool_calls_total", "Tool calls made by the models, by model.", {"model"}),
      resumable_streams_family_("sluice_resumable_streams_total",
                                "Streams started resumable (their events kept in a stream log).", {}),
      resumable_streams_(resumable_streams_family_.with({})),
      resumed_streams_family_(
          "sluice_resumed_streams_total",
          "Reconnects that resumed a stream from its log (Last-Event-ID, starting_after).", {}),
      resumed_streams_(resumed_streams_family_.with({})),
      replayed_events_family_("sluice_replayed_events_total",
                              "Events sent again from a stream log to a reconnecting client.", {}),
      replayed_events_(replayed_events_family_.with({})),
      turn_batches_family_("sluice_turn_batches_total",
                           "Transactions the turn writer made, each storing one or more session turns.", {}),
      turn_batches_(turn_batches_family_.with({})),
      turns_stored_family_("sluice_turns_stored_total", "Session turns stored by the turn writer.", {}),
      turns_stored_(turns_stored_family_.with({})),
      circuit_state_("sluice_circuit_state", "Circuit breaker per model: 0 closed, 1 open, 2 half-open.",
                     {"model"}),
      local_queue_depth_("sluice_local_queue_depth", "Local requests waiting for a decoding slot.",
                         {"model"}),
      families_{&requests_,
                &active_streams_family_,
                &ttft_family_,
                &inter_chunk_gap_family_,
                &stream_duration_family_,
                &gateway_overhead_family_,
                &tokens_,
                &upstream_errors_,
                &route_decisions_,
                &tool_calls_,
                &resumable_streams_family_,
                &resumed_streams_family_,
                &replayed_events_family_,
                &turn_batches_family_,
                &turns_stored_family_,
                &circuit_state_,
                &local_queue_depth_} {}

counter& registry::requests(std::string_view endpoint, int status) {
    char buf[12];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, status);
    return requests_.with({endpoint, std::string_view(buf, end)});
}

counter& registry::tokens(std::string_view model, model_role role, token_kind kind) {
    return tokens_.with({model, to_string(role), kind == token_kind::prompt ? "prompt" : "completion"});
}

void registry::count_tokens(std::string_view model, model_role role, int prompt, int completion) {
    if (prompt > 0) tokens(model, role, token_kind::prompt).inc(static_cast<std::uint64_t>(prompt));
    if (completion > 0)
        tokens(model, role, token_kind::completion).inc(static_cast<std::uint64_t>(completion));
}

counter& registry::upstream_errors(std::string_view model, std::string_view kind) {
    return upstream_errors_.with({model, kind});
}

counter& registry::route_decisions(model_role role, std::string_view reason) {
    return route_decisions_.with({to_string(role), reason});
}

counter& registry::tool_calls(std::string_view model) {
    return tool_calls_.with({model});
}

gauge& registry::circuit_state(std::string_view model) {
    return circuit_state_.with({model});
}

gauge& registry::local_queue_depth(std::string_view model) {
    return local_queue_depth_.with({model});
}

namespace {

// One unlabelled figure with its HELP and TYPE lines.
void render_one(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                double value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    append_number(out, value);
    out += '\n';
}

// process_* as the official Prometheus clients export them, so stock dashboards work.
void render_process(std::string& out) {
    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the ")" that closes the command name; utime/stime are fields 14/15, starttime 22,
    // vsize 23, rss 24 (1-based, man 5 proc).
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return;
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields),
                               std::istream_iterator<std::string>()};
    if (f.size() < 22) return;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
    const double vsize = std::stod(f[20]);
    const double rss = std::stod(f[21]) * page;

    double boot_time = 0;
    std::ifstream boot("/proc/stat");
    for (std::string key; boot >> key;) {
        if (key == "btime") {
            boot >> boot_time;
            break;
        }
    }
    const double start = boot_time + std::stod(f[19]) / ticks;

    std::size_t fds = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++fds;
    }

    render_one(out, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.", cpu);
    render_one(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    render_one(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", vsize);
    render_one(out, "process_open_fds", "gauge", "Number of open file descriptors.",
               static_cast<double>(fds));
    render_one(out, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.", start);
}

}  // namespace

std::string registry::render() const {
    std::string out;
    out.reserve(8192);
    for (const auto* f : families_) f->render(out);
    render_one(out, "sluice_log_lines_dropped_total", "counter",
               "Log lines dropped because stderr could not keep up (core/log.h).",
               static_cast<double>(dropped_log_lines()));
    render_process(out);
    return out;
}

registry& get() {
    static registry instance;
    return instance;
}

// ---- stream_timer ----

void stream_timer::model_begin() noexcept {
    model_begin_ = clock::now();
    in_chunks_ = {};
    in_model_ = true;
}

void stream_timer::chunk_begin() noexcept {
    chunk_begin_ = clock::now();
}

void stream_timer::chunk_end() noexcept {
    const auto now = clock::now();
    in_chunks_ += now - chunk_begin_;
    if (!any_chunk_) {
        registry_->ttft_seconds().observe(now - start_);
        any_chunk_ = true;
    } else {
        registry_->inter_chunk_gap_seconds().observe(now - last_chunk_);
    }
    last_chunk_ = now;
}

void stream_timer::model_end() noexcept {
    if (!in_model_) return;
    in_model_ = false;
    const auto in_model = clock::now() - model_begin_;
    model_wait_ += in_model > in_chunks_ ? in_model - in_chunks_ : clock::duration{};
}

void stream_timer::finish() noexcept {
    if (finished_) return;
    model_end();  // a cancelled stream never reached the caller's model_end()
    finished_ = true;
    const auto total = clock::now() - start_;
    registry_->stream_duration_seconds().observe(total);
    registry_->gateway_overhead_seconds().observe(total > model_wait_ ? total - model_wait_
                                                                      : clock::duration{});
}

}  // namespace sluice::metrics
