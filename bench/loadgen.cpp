// A load generator for sluice's benchmarks: N concurrent keep-alive connections (closed loop) or a
// fixed request rate (open loop), plain or streaming (SSE) responses, against 127.0.0.1 only.
//
//   loadgen --url http://127.0.0.1:PORT/path [--body JSON | --body-file F] [--header "K: V"]...
//           [--connections N] [--requests N] [--duration S] [--rate R] [--stream] [--ramp-s S]
//           [--cancel-after K --closes-url URL] [--watch-pid PID]... [--threads T] [--timeout-s T]
//           [--label NAME] [--json FILE]
//
// Records per request: latency (open loop: from the scheduled send time, so a stall is not hidden),
// time to first byte; per stream: time to first event, gaps between content events, and the delivery
// delay of every chunk stamped `~T<ns>~` by bench/fast_upstream (same CLOCK_MONOTONIC). `{id}` in the
// body becomes a unique id per request. With --cancel-after K the client closes after K content
// events and, after the run, joins its close times with the upstream's (--closes-url) to report how
// long the close took to reach the upstream. --watch-pid samples a process's RSS and CPU.
// Prints a one-line table; --json writes every figure.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "latency_histogram.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using sluice::bench::latency_histogram;
using std::chrono::steady_clock;

namespace {

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now().time_since_epoch())
        .count();
}

struct url_parts {
    std::string host;
    std::string port;
    std::string target;
};

url_parts parse_url(const std::string& url) {
    if (!url.starts_with("http://")) throw std::runtime_error("only http:// URLs: " + url);
    const auto rest = url.substr(7);
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    url_parts u;
    u.target = slash == std::string::npos ? "/" : rest.substr(slash);
    const auto colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    u.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
    if (u.host == "localhost") u.host = "127.0.0.1";
    if (u.host != "127.0.0.1") throw std::runtime_error("loadgen only targets 127.0.0.1, not " + u.host);
    return u;
}

struct options {
    std::string url;
    std::string method;
    std::string body;
    std::vector<std::string> headers;
    int connections = 1;
    std::uint64_t requests = 0;  // 0 = until duration
    double duration_s = 10;
    double rate = 0;  // requests/s, 0 = closed loop
    bool stream = false;
    double ramp_s = 0;
    int cancel_after = 0;
    std::string closes_url;
    std::vector<int> watch_pids;
    int threads = 1;
    double timeout_s = 120;
    std::string label;
    std::string json_path;
};

struct stats {
    latency_histogram latency, ttfb, first_event, gap, chunk_delay;
    std::uint64_t ok = 0, events = 0, content_events = 0, bytes = 0, streams_done = 0, cancelled = 0;
    std::map<std::string, std::uint64_t> errors;
    std::vector<std::pair<std::string, std::int64_t>> closes;  // id, t_ns (cancel mode)

    void merge(const stats& o) {
        latency.merge(o.latency);
        ttfb.merge(o.ttfb);
        first_event.merge(o.first_event);
        gap.merge(o.gap);
        chunk_delay.merge(o.chunk_delay);
        ok += o.ok;
        events += o.events;
        content_events += o.content_events;
        bytes += o.bytes;
        streams_done += o.streams_done;
        cancelled += o.cancelled;
        for (const auto& [k, v] : o.errors) errors[k] += v;
        closes.insert(closes.end(), o.closes.begin(), o.closes.end());
    }
};

// Shared by the connections of one thread (one io_context), so nothing here needs a lock.
struct worker_ctx {
    const options* opts;
    url_parts url;
    tcp::endpoint endpoint;
    stats st;
    std::uint64_t* next_index;  // open loop schedule / request budget, per thread
    std::uint64_t budget;       // requests this thread may start (0 = unbounded)
    double rate;                // this thread's share
    steady_clock::time_point start, deadline;
    int thread_no;
    std::uint64_t id_counter = 0;
};

std::string request_bytes(worker_ctx& w) {
    const auto& o = *w.opts;
    std::string body = o.body;
    if (auto at = body.find("{id}"); at != std::string::npos) {
        body.replace(at, 4, "t" + std::to_string(w.thread_no) + "r" + std::to_string(w.id_counter++));
    }
    std::string r =
        o.method + " " + w.url.target + " HTTP/1.1\r\nHost: " + w.url.host + ":" + w.url.port + "\r\n";
    for (const auto& h : o.headers) r += h + "\r\n";
    if (!body.empty() || o.method == "POST") {
        r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    r += "\r\n";
    r += body;
    return r;
}

std::string id_of(const std::string& req) {
    const auto at = req.find("bench-id:");
    if (at == std::string::npos) return {};
    auto i = at + 9;
    std::string id;
    while (i < req.size() && (std::isalnum(static_cast<unsigned char>(req[i])) || req[i] == '_'))
        id += req[i++];
    return id;
}

// Scans SSE body bytes line by line; returns true when `data: [DONE]` was seen.
struct sse_scanner {
    std::string partial;
    std::int64_t last_content_ns = 0;
    int events = 0;
    int content_events = 0;
    bool done = false;

    void feed(std::string_view data, std::int64_t t, stats& st) {
        while (!data.empty()) {
            const auto nl = data.find('\n');
            if (nl == std::string_view::npos) {
                partial.append(data);
                return;
            }
            if (partial.empty()) {
                line(data.substr(0, nl), t, st);
            } else {
                partial.append(data.substr(0, nl));
                line(partial, t, st);
                partial.clear();
            }
            data.remove_prefix(nl + 1);
        }
    }

    void line(std::string_view l, std::int64_t t, stats& st) {
        if (!l.starts_with("data:")) return;
        l.remove_prefix(5);
        while (!l.empty() && l.front() == ' ') l.remove_prefix(1);
        if (l.starts_with("[DONE]")) {
            done = true;
            return;
        }
        ++st.events;
        ++events;
        if (l.find("\"error\"") != std::string_view::npos) ++st.errors["error_event"];
        const auto stamp = l.find("~T");
        if (stamp == std::string_view::npos) return;
        std::int64_t sent = 0;
        for (auto i = stamp + 2; i < l.size() && l[i] >= '0' && l[i] <= '9'; ++i)
            sent = sent * 10 + (l[i] - '0');
        ++st.content_events;
        ++content_events;
        st.chunk_delay.record(t - sent);
        if (last_content_ns) st.gap.record(t - last_content_ns);
        last_content_ns = t;
    }
};

enum class outcome { ok, cancelled, failed };

// One request on an open stream. Returns whether the connection can be reused.
net::awaitable<outcome> one_request(worker_ctx& w, beast::tcp_stream& s, beast::flat_buffer& buf,
                                    std::int64_t t_start, bool& reusable) {
    const auto& o = *w.opts;
    reusable = false;
    const auto req = request_bytes(w);
    s.expires_after(std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000)));
    auto [wec, wn] = co_await net::async_write(s, net::buffer(req), net::as_tuple(net::use_awaitable));
    if (wec) {
        ++w.st.errors["write"];
        co_return outcome::failed;
    }
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::uint64_t{1} << 40);
    auto [hec, hn] = co_await http::async_read_header(s, buf, parser, net::as_tuple(net::use_awaitable));
    const auto t_head = now_ns();
    if (hec) {
        ++w.st.errors[hec == beast::error::timeout ? "timeout" : "read_header"];
        co_return outcome::failed;
    }
    w.st.ttfb.record(t_head - t_start);
    const auto status = parser.get().result_int();
    sse_scanner sse;
    char body[16384];
    bool first_event = true;
    while (!parser.is_done()) {
        parser.get().body().data = body;
        parser.get().body().size = sizeof body;
        auto [ec, n] = co_await http::async_read_some(s, buf, parser, net::as_tuple(net::use_awaitable));
        if (ec == http::error::need_buffer) ec = {};
        const auto got = sizeof body - parser.get().body().size;
        const auto t = now_ns();
        w.st.bytes += got;
        if (got && o.stream) {
            sse.feed(std::string_view(body, got), t, w.st);
            if (first_event && sse.events > 0) {
                first_event = false;
                w.st.first_event.record(t - t_start);
            }
            if (o.cancel_after > 0 && sse.content_events >= o.cancel_after) {
                const auto t_close = now_ns();
                beast::error_code ignored;
                s.socket().shutdown(tcp::socket::shutdown_both, ignored);
                s.socket().close(ignored);
                w.st.closes.emplace_back(id_of(req), t_close);
                ++w.st.cancelled;
                co_return outcome::cancelled;
            }
        }
        if (ec) {
            ++w.st.errors[ec == beast::error::timeout ? "timeout" : "read_body"];
            co_return outcome::failed;
        }
    }
    if (status < 200 || status > 299) {
        ++w.st.errors["status_" + std::to_string(status)];
        reusable = parser.get().keep_alive();
        co_return outcome::failed;
    }
    if (o.stream) {
        if (!sse.done) {
            ++w.st.errors["stream_without_done"];
            co_return outcome::failed;
        }
        ++w.st.streams_done;
    }
    reusable = parser.get().keep_alive();
    co_return outcome::ok;
}

net::awaitable<void> connection(worker_ctx& w, int conn_no, int conns_in_thread) {
    const auto& o = *w.opts;
    auto exec = co_await net::this_coro::executor;
    net::steady_timer timer(exec);
    if (o.ramp_s > 0 && conns_in_thread > 1) {
        timer.expires_at(w.start + std::chrono::microseconds(
                                       static_cast<long long>(o.ramp_s * 1e6 * conn_no / conns_in_thread)));
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    std::optional<beast::tcp_stream> s;
    beast::flat_buffer buf;
    const auto period_ns = w.rate > 0 ? 1e9 / w.rate : 0.0;
    for (;;) {
        if (steady_clock::now() >= w.deadline) co_return;
        const auto index = (*w.next_index)++;
        if (w.budget && index >= w.budget) co_return;
        std::int64_t t_start;
        if (period_ns > 0) {
            const auto scheduled =
                w.start + std::chrono::nanoseconds(static_cast<long long>(period_ns * index));
            if (scheduled >= w.deadline) co_return;
            timer.expires_at(scheduled);
            co_await timer.async_wait(net::as_tuple(net::use_awaitable));
            t_start =
                std::chrono::duration_cast<std::chrono::nanoseconds>(scheduled.time_since_epoch()).count();
        }
        if (!s) {
            s.emplace(exec);
            s->expires_after(std::chrono::seconds(10));
            auto [ec] = co_await s->async_connect(w.endpoint, net::as_tuple(net::use_awaitable));
            if (ec) {
                ++w.st.errors["connect"];
                s.reset();
                timer.expires_after(std::chrono::milliseconds(10));
                co_await timer.async_wait(net::as_tuple(net::use_awaitable));
                continue;
            }
            s->socket().set_option(tcp::no_delay(true));
            buf.clear();
        }
        if (period_ns <= 0) t_start = now_ns();
        bool reusable = false;
        const auto result = co_await one_request(w, *s, buf, t_start, reusable);
        if (result == outcome::ok) {
            ++w.st.ok;
            w.st.latency.record(now_ns() - t_start);
        }
        if (!reusable) s.reset();
    }
}

struct watch_sample {
    int pid;
    double peak_rss_kb = 0;
    double cpu_start_s = -1, cpu_end_s = -1;
};

double cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto close = s.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream in(s.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; in >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) {
            stime = std::stod(field);
            break;
        }
    }
    return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double rss_kb(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(f, line);) {
        if (line.starts_with("VmRSS:")) return std::stod(line.substr(6));
    }
    return 0;
}

// Sampled on its own thread so that a busy loadgen does not skew the samples.
void watch(std::vector<watch_sample>& samples, const std::atomic<bool>& stop) {
    for (auto& s : samples) s.cpu_start_s = cpu_seconds(s.pid);
    while (!stop.load()) {
        for (auto& s : samples) s.peak_rss_kb = std::max(s.peak_rss_kb, rss_kb(s.pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& s : samples) {
        s.peak_rss_kb = std::max(s.peak_rss_kb, rss_kb(s.pid));
        s.cpu_end_s = cpu_seconds(s.pid);
    }
}

boost::json::object summary(const latency_histogram& h) {
    const auto ms = [](double ns) { return std::round(ns / 1e3) / 1e3; };  // ms with µs precision
    return {{"n", h.count()},
            {"mean", ms(h.mean_ns())},
            {"p50", ms(h.percentile_ns(0.50))},
            {"p90", ms(h.percentile_ns(0.90))},
            {"p99", ms(h.percentile_ns(0.99))},
            {"p999", ms(h.percentile_ns(0.999))},
            {"max", ms(static_cast<double>(h.max_ns()))}};
}

// GET the upstream's close log and pair it with ours by request id.
latency_histogram join_closes(const options& o, const std::vector<std::pair<std::string, std::int64_t>>& ours,
                              std::uint64_t& unmatched) {
    latency_histogram h;
    unmatched = ours.size();
    if (o.closes_url.empty() || ours.empty()) return h;
    const auto u = parse_url(o.closes_url);
    net::io_context ioc;
    beast::tcp_stream s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address(u.host), static_cast<unsigned short>(std::stoi(u.port))));
    http::request<http::empty_body> req{http::verb::get, u.target, 11};
    req.set(http::field::host, u.host);
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    std::map<std::string, std::int64_t> theirs;
    const auto log = boost::json::parse(res.body());  // named: a range-for would not extend its life
    for (const auto& c : log.at("closes").as_array()) {
        theirs[std::string(c.at("id").as_string())] = c.at("t_ns").to_number<std::int64_t>();
    }
    for (const auto& [id, t] : ours) {
        if (auto it = theirs.find(id); it != theirs.end()) {
            h.record(it->second - t);
            --unmatched;
        }
    }
    return h;
}

options parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--url")
            o.url = next();
        else if (a == "--method")
            o.method = next();
        else if (a == "--body")
            o.body = next();
        else if (a == "--body-file") {
            std::ifstream f(next());
            o.body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        } else if (a == "--header")
            o.headers.push_back(next());
        else if (a == "--connections")
            o.connections = std::max(1, std::stoi(next()));
        else if (a == "--requests")
            o.requests = std::stoull(next());
        else if (a == "--duration")
            o.duration_s = std::stod(next());
        else if (a == "--rate")
            o.rate = std::stod(next());
        else if (a == "--stream")
            o.stream = true;
        else if (a == "--ramp-s")
            o.ramp_s = std::stod(next());
        else if (a == "--cancel-after")
            o.cancel_after = std::stoi(next());
        else if (a == "--closes-url")
            o.closes_url = next();
        else if (a == "--watch-pid")
            o.watch_pids.push_back(std::stoi(next()));
        else if (a == "--threads")
            o.threads = std::max(1, std::stoi(next()));
        else if (a == "--timeout-s")
            o.timeout_s = std::stod(next());
        else if (a == "--label")
            o.label = next();
        else if (a == "--json")
            o.json_path = next();
        else
            throw std::runtime_error("unknown option " + a);
    }
    if (o.url.empty()) throw std::runtime_error("--url is required");
    if (o.method.empty()) o.method = o.body.empty() ? "GET" : "POST";
    o.threads = std::min(o.threads, o.connections);
    return o;
}

}  // namespace

int main(int argc, char** argv) try {
    const auto o = parse_args(argc, argv);
    const auto url = parse_url(o.url);
    const tcp::endpoint endpoint(net::ip::make_address(url.host),
                                 static_cast<unsigned short>(std::stoi(url.port)));

    std::vector<watch_sample> samples;
    for (int pid : o.watch_pids) samples.push_back({pid});
    std::atomic<bool> stop_watch{false};
    std::thread watcher([&] { watch(samples, stop_watch); });

    const auto start = steady_clock::now() + std::chrono::milliseconds(20);
    const auto deadline = start + std::chrono::microseconds(static_cast<long long>(o.duration_s * 1e6));
    std::vector<std::unique_ptr<worker_ctx>> workers;
    std::vector<std::uint64_t> indices(static_cast<std::size_t>(o.threads), 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < o.threads; ++t) {
        auto w = std::make_unique<worker_ctx>();
        w->opts = &o;
        w->url = url;
        w->endpoint = endpoint;
        w->next_index = &indices[static_cast<std::size_t>(t)];
        w->budget =
            o.requests
                ? (o.requests / static_cast<std::uint64_t>(o.threads) +
                   (static_cast<std::uint64_t>(t) < o.requests % static_cast<std::uint64_t>(o.threads)))
                : 0;
        w->rate = o.rate / o.threads;
        w->start = start;
        w->deadline = deadline;
        w->thread_no = t;
        workers.push_back(std::move(w));
    }
    for (int t = 0; t < o.threads; ++t) {
        threads.emplace_back([&, t] {
            net::io_context ioc(1);
            auto& w = *workers[static_cast<std::size_t>(t)];
            const int conns = o.connections / o.threads + (t < o.connections % o.threads);
            // A stuck stream cannot hold the run past its deadline plus one request timeout.
            net::steady_timer hard_stop(
                ioc, deadline + std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000 + 1000)));
            hard_stop.async_wait([&](auto ec) {
                if (!ec) ioc.stop();
            });
            int active = conns;
            for (int c = 0; c < conns; ++c) {
                net::co_spawn(ioc, connection(w, c, conns), [&](std::exception_ptr e) {
                    if (e) ++w.st.errors["exception"];
                    if (--active == 0) hard_stop.cancel();
                });
            }
            ioc.run();
        });
    }
    for (auto& t : threads) t.join();
    const auto wall_s = std::chrono::duration<double>(steady_clock::now() - start).count();
    stop_watch = true;
    watcher.join();

    stats total;
    for (const auto& w : workers) total.merge(w->st);
    std::uint64_t unmatched = 0;
    const auto cancel = join_closes(o, total.closes, unmatched);

    std::uint64_t error_count = 0;
    boost::json::object errors;
    for (const auto& [k, v] : total.errors) {
        errors[k] = v;
        if (k != "error_event") error_count += v;
    }
    boost::json::object out{
        {"label", o.label},
        {"url", o.url},
        {"stream", o.stream},
        {"connections", o.connections},
        {"rate", o.rate},
        {"wall_s", wall_s},
        {"requests_ok", total.ok},
        {"errors", errors},
        {"error_count", error_count},
        {"rps", static_cast<double>(total.ok) / wall_s},
        {"latency_ms", summary(total.latency)},
        {"ttfb_ms", summary(total.ttfb)},
    };
    if (o.stream) {
        out["first_event_ms"] = summary(total.first_event);
        out["gap_ms"] = summary(total.gap);
        out["chunk_delay_ms"] = summary(total.chunk_delay);
        out["events"] = total.events;
        out["content_events"] = total.content_events;
        out["content_events_per_s"] = static_cast<double>(total.content_events) / wall_s;
        out["streams_done"] = total.streams_done;
        out["streams_cancelled"] = total.cancelled;
    }
    if (o.cancel_after > 0) {
        out["cancel_ms"] = summary(cancel);
        out["cancel_unmatched"] = unmatched;
    }
    boost::json::array watched;
    for (const auto& s : samples) {
        const double cpu = s.cpu_end_s >= 0 && s.cpu_start_s >= 0 ? s.cpu_end_s - s.cpu_start_s : -1;
        watched.push_back({{"pid", s.pid},
                           {"peak_rss_mb", std::round(s.peak_rss_kb / 102.4) / 10},
                           {"cpu_s", cpu},
                           {"cpu_pct", cpu >= 0 ? std::round(1000 * cpu / wall_s) / 10 : -1}});
    }
    out["watch"] = watched;
    const auto text = boost::json::serialize(out);
    if (!o.json_path.empty()) std::ofstream(o.json_path) << text << "\n";

    const auto ms = [](const latency_histogram& h, double q) { return h.percentile_ns(q) / 1e6; };
    std::printf("%-28s ok=%-8llu err=%-5llu rps=%-9.0f lat p50=%.3fms p99=%.3fms ttfb p99=%.3fms",
                o.label.c_str(), static_cast<unsigned long long>(total.ok),
                static_cast<unsigned long long>(error_count), static_cast<double>(total.ok) / wall_s,
                ms(total.latency, 0.5), ms(total.latency, 0.99), ms(total.ttfb, 0.99));
    if (o.stream) {
        std::printf(" | events/s=%.0f gap p99=%.3fms delay p50=%.3fms p99=%.3fms",
                    static_cast<double>(total.content_events) / wall_s, ms(total.gap, 0.99),
                    ms(total.chunk_delay, 0.5), ms(total.chunk_delay, 0.99));
    }
    if (o.cancel_after > 0) {
        std::printf(" | cancel n=%llu p50=%.3fms p99=%.3fms unmatched=%llu",
                    static_cast<unsigned long long>(cancel.count()), ms(cancel, 0.5), ms(cancel, 0.99),
                    static_cast<unsigned long long>(unmatched));
    }
    for (const auto& s : samples) {
        std::printf(" | pid %d rss %.1fMB cpu %.2fs", s.pid, s.peak_rss_kb / 1024,
                    s.cpu_end_s - s.cpu_start_s);
    }
    std::printf("\n");
    if (!total.errors.empty()) {
        for (const auto& [k, v] : total.errors)
            std::printf("    %s: %llu\n", k.c_str(), static_cast<unsigned long long>(v));
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "loadgen: " << e.what() << "\n";
    return 2;
}
