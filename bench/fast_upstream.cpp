// A fast scripted OpenAI-compatible upstream for benchmarks: POST /v1/chat/completions, streaming
// (SSE over chunked encoding) or not, with instant or paced tokens.
//
//   fast_upstream [--host 127.0.0.1] [--port 0] [--tokens 20] [--interval-ms 0] [--threads 1]
//
// Prints `PORT <n>` on stdout once listening. Per request, the `model` field can override the
// defaults with dash-separated parts: `i<ms>` (interval between tokens) and `n<count>` (tokens), e.g.
// "bench-i50-n1200"; so one process serves every scenario whichever gateway forwards the body.
//
// Each token's text carries the emission time, `~T<steady ns>~ `, so a client on the same machine
// measures per-chunk delivery latency through a gateway (steady_clock is CLOCK_MONOTONIC, shared by
// processes). A paced stream watches its socket while it writes: when the client closes mid-stream,
// the close time is logged under the request's `bench-id:<id>` (found anywhere in the body).
//
// Control: GET /_closes -> {"closes":[{"id","t_ns"}]}, GET /_stats, POST /_reset.
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
namespace http = boost::beast::http;
using net::ip::tcp;
using namespace net::experimental::awaitable_operators;
using std::chrono::steady_clock;

namespace {

struct options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    int tokens = 20;
    int interval_ms = 0;
    int threads = 1;
};

struct script {
    int tokens = 20;
    int interval_ms = 0;
    bool stream = false;
    bool include_usage = false;
    std::string model;
    std::string id;
};

struct close_record {
    std::string id;
    std::int64_t t_ns;
};

struct state {
    options opts;
    std::mutex mutex;
    std::vector<close_record> closes;
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> streams{0};
    std::atomic<std::uint64_t> closed_early{0};
    std::atomic<std::uint64_t> tokens_sent{0};
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now().time_since_epoch())
        .count();
}

script parse_script(const state& st, const std::string& body) {
    script s{.tokens = st.opts.tokens, .interval_ms = st.opts.interval_ms};
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (!ec && v.is_object()) {
        const auto& o = v.as_object();
        if (auto* p = o.if_contains("stream"); p && p->is_bool()) s.stream = p->as_bool();
        if (auto* p = o.if_contains("stream_options"); p && p->is_object()) {
            if (auto* u = p->as_object().if_contains("include_usage"); u && u->is_bool()) {
                s.include_usage = u->as_bool();
            }
        }
        if (auto* p = o.if_contains("model"); p && p->is_string()) s.model = std::string(p->as_string());
    }
    // model parts: i<ms>, n<count>
    std::string_view m = s.model;
    while (!m.empty()) {
        const auto dash = m.find('-');
        const auto part = m.substr(0, dash);
        int value = 0;
        if (part.size() > 1 && (part[0] == 'i' || part[0] == 'n')) {
            auto [end, err] = std::from_chars(part.data() + 1, part.data() + part.size(), value);
            if (err == std::errc{} && end == part.data() + part.size()) {
                (part[0] == 'i' ? s.interval_ms : s.tokens) = value;
            }
        }
        if (dash == std::string_view::npos) break;
        m.remove_prefix(dash + 1);
    }
    if (auto at = body.find("bench-id:"); at != std::string::npos) {
        auto i = at + 9;
        while (i < body.size() && (std::isalnum(static_cast<unsigned char>(body[i])) || body[i] == '_')) {
            s.id += body[i++];
        }
    }
    return s;
}

void append_event(std::string& out, const script& s, std::string_view delta_json, std::string_view finish) {
    out += R"(data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":")";
    out += s.model;
    out += R"(","choices":[{"index":0,"delta":)";
    out += delta_json;
    out += R"(,"finish_reason":)";
    out += finish;
    out += "}]}\n\n";
}

void append_token(std::string& out, const script& s, bool first) {
    char stamp[64];
    const int n = std::snprintf(stamp, sizeof stamp, R"({%s"content":"~T%lld~ "})",
                                first ? R"("role":"assistant",)" : "", static_cast<long long>(now_ns()));
    append_event(out, s, std::string_view(stamp, static_cast<std::size_t>(n)), "null");
}

void append_tail(std::string& out, const script& s) {
    append_event(out, s, "{}", R"("stop")");
    if (s.include_usage) {
        out +=
            R"(data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":")";
        out += s.model;
        out += R"(","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":)";
        out += std::to_string(s.tokens);
        out += ",\"total_tokens\":" + std::to_string(s.tokens + 5) + "}}\n\n";
    }
    out += "data: [DONE]\n\n";
}

// One HTTP/1.1 chunk frame around `data`.
std::string frame(std::string_view data) {
    char size[20];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out;
    out.reserve(data.size() + static_cast<std::size_t>(n) + 2);
    out.append(size, static_cast<std::size_t>(n));
    out += data;
    out += "\r\n";
    return out;
}

std::string simple_response(int status, std::string_view type, std::string_view body, bool keep_alive) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") +
                      "\r\nContent-Type: " + std::string(type) +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    out += body;
    return out;
}

// Completes when the peer closes (EOF/reset); bytes it reads (a pipelined request) stay in `buf`.
net::awaitable<void> wait_close(tcp::socket& sock, boost::beast::flat_buffer& buf) {
    for (;;) {
        auto [ec, n] = co_await sock.async_read_some(buf.prepare(4096), net::as_tuple(net::use_awaitable));
        buf.commit(n);
        if (ec) co_return;
    }
}

net::awaitable<bool> write_paced(tcp::socket& sock, const script& s, state& st) {
    net::steady_timer timer(sock.get_executor());
    const auto start = steady_clock::now();
    // One buffer reused for every token, framed in place and sent with one write: 10,000 paced
    // streams are 200,000 writes a second, so the upstream must not be what limits the benchmark.
    std::string event;
    event.reserve(512);
    char size_line[20];
    for (int i = 0; i < s.tokens; ++i) {
        timer.expires_at(start + std::chrono::milliseconds(static_cast<long long>(s.interval_ms) * i));
        co_await timer.async_wait(net::use_awaitable);
        const bool last = i + 1 == s.tokens;
        event.clear();
        append_token(event, s, i == 0);
        if (last) append_tail(event, s);
        const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", event.size());
        event += last ? "\r\n0\r\n\r\n" : "\r\n";
        const std::array<net::const_buffer, 2> buffers{net::buffer(size_line, static_cast<std::size_t>(n)),
                                                       net::buffer(event)};
        co_await net::async_write(sock, buffers, net::use_awaitable);
        st.tokens_sent.fetch_add(1, std::memory_order_relaxed);
    }
    if (s.tokens == 0) {
        event.clear();
        append_tail(event, s);
        co_await net::async_write(sock, net::buffer(frame(event) + "0\r\n\r\n"), net::use_awaitable);
    }
    co_return true;
}

// Returns whether the connection can serve another request.
net::awaitable<bool> serve_chat(tcp::socket& sock, boost::beast::flat_buffer& buf, const script& s,
                                bool keep_alive, state& st) {
    if (!s.stream) {
        std::string content;
        for (int i = 0; i < s.tokens; ++i) content += "tok ";
        const std::string body =
            R"({"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":")" + s.model +
            R"(","choices":[{"index":0,"message":{"role":"assistant","content":")" + content +
            R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":)" +
            std::to_string(s.tokens) + ",\"total_tokens\":" + std::to_string(s.tokens + 5) + "}}";
        co_await net::async_write(sock,
                                  net::buffer(simple_response(200, "application/json", body, keep_alive)),
                                  net::use_awaitable);
        st.tokens_sent.fetch_add(static_cast<std::uint64_t>(s.tokens), std::memory_order_relaxed);
        co_return keep_alive;
    }
    st.streams.fetch_add(1, std::memory_order_relaxed);
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\n";
    head += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
    if (s.interval_ms <= 0) {
        // Instant: every event in one write, the fastest an upstream can be.
        std::string events;
        events.reserve(static_cast<std::size_t>(s.tokens) * 200 + 512);
        for (int i = 0; i < s.tokens; ++i) append_token(events, s, i == 0);
        append_tail(events, s);
        head += frame(events);
        head += "0\r\n\r\n";
        co_await net::async_write(sock, net::buffer(head), net::use_awaitable);
        st.tokens_sent.fetch_add(static_cast<std::uint64_t>(s.tokens), std::memory_order_relaxed);
        co_return keep_alive;
    }
    co_await net::async_write(sock, net::buffer(head), net::use_awaitable);
    auto result = co_await (write_paced(sock, s, st) || wait_close(sock, buf));
    if (result.index() == 1) {
        const auto t = now_ns();
        st.closed_early.fetch_add(1, std::memory_order_relaxed);
        if (!s.id.empty()) {
            std::lock_guard lock(st.mutex);
            st.closes.push_back({s.id, t});
        }
        co_return false;
    }
    co_return keep_alive;
}

std::string control(state& st, std::string_view target) {
    boost::json::object o;
    if (target == "/_closes") {
        boost::json::array closes;
        std::lock_guard lock(st.mutex);
        for (const auto& c : st.closes) closes.push_back({{"id", c.id}, {"t_ns", c.t_ns}});
        o["closes"] = std::move(closes);
    } else if (target == "/_stats") {
        o = {{"requests", st.requests.load()},
             {"streams", st.streams.load()},
             {"closed_early", st.closed_early.load()},
             {"tokens_sent", st.tokens_sent.load()}};
    } else {  // /_reset
        std::lock_guard lock(st.mutex);
        st.closes.clear();
        st.requests = st.streams = st.closed_early = st.tokens_sent = 0;
        o["ok"] = true;
    }
    return boost::json::serialize(o);
}

net::awaitable<void> session(tcp::socket sock, state& st) {
    sock.set_option(tcp::no_delay(true));
    boost::beast::flat_buffer buf;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(8 * 1024 * 1024);
        auto [ec, n] = co_await http::async_read(sock, buf, parser, net::as_tuple(net::use_awaitable));
        if (ec) co_return;
        const auto& req = parser.get();
        const bool keep_alive = req.keep_alive();
        const std::string_view target(req.target().data(), req.target().size());
        bool again = keep_alive;
        if (target.starts_with("/v1/chat/completions") && req.method() == http::verb::post) {
            st.requests.fetch_add(1, std::memory_order_relaxed);
            const auto s = parse_script(st, req.body());
            try {
                again = co_await serve_chat(sock, buf, s, keep_alive, st);
            } catch (const boost::system::system_error&) {
                again = false;  // the client went away mid-write
            }
        } else if (target == "/_closes" || target == "/_stats" || target == "/_reset") {
            co_await net::async_write(
                sock, net::buffer(simple_response(200, "application/json", control(st, target), keep_alive)),
                net::as_tuple(net::use_awaitable));
        } else if (target == "/v1/models") {
            co_await net::async_write(
                sock,
                net::buffer(simple_response(200, "application/json",
                                            R"({"object":"list","data":[{"id":"bench","object":"model"}]})",
                                            keep_alive)),
                net::as_tuple(net::use_awaitable));
        } else {
            co_await net::async_write(
                sock,
                net::buffer(simple_response(404, "application/json", R"({"error":"not found"})", keep_alive)),
                net::as_tuple(net::use_awaitable));
        }
        if (!again) co_return;
    }
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, net::io_context& ioc, state& st) {
    for (;;) {
        // A strand only when several threads could run one connection's reader and writer at once.
        const auto exec = st.opts.threads > 1 ? net::any_io_executor(net::make_strand(ioc))
                                              : net::any_io_executor(ioc.get_executor());
        auto [ec, sock] = co_await acceptor.async_accept(exec, net::as_tuple(net::use_awaitable));
        if (ec) {
            if (ec == net::error::operation_aborted) co_return;
            continue;  // EMFILE and friends: keep serving the connections we have
        }
        auto sock_exec = sock.get_executor();
        net::co_spawn(sock_exec, session(std::move(sock), st), net::detached);
    }
}

int int_arg(const std::string& v) {
    return std::stoi(v);
}

}  // namespace

int main(int argc, char** argv) {
    state st;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--host")
            st.opts.host = next();
        else if (a == "--port")
            st.opts.port = static_cast<unsigned short>(int_arg(next()));
        else if (a == "--tokens")
            st.opts.tokens = int_arg(next());
        else if (a == "--interval-ms")
            st.opts.interval_ms = int_arg(next());
        else if (a == "--threads")
            st.opts.threads = std::max(1, int_arg(next()));
        else {
            std::cerr << "usage: fast_upstream [--host H] [--port P] [--tokens N] [--interval-ms X] "
                         "[--threads T]\n";
            return 2;
        }
    }
    net::io_context ioc(st.opts.threads);
    tcp::acceptor acceptor(ioc, {net::ip::make_address(st.opts.host), st.opts.port});
    acceptor.listen(4096);
    std::cout << "PORT " << acceptor.local_endpoint().port() << std::endl;
    net::co_spawn(ioc, accept_loop(acceptor, ioc, st), net::detached);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { ioc.stop(); });
    std::vector<std::thread> threads;
    for (int t = 1; t < st.opts.threads; ++t) threads.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    return 0;
}
