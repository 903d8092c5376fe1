// The streaming core on its own: relay_stream over a real loopback connection, a scripted provider
// (batches, delays, errors before and after the first delta, a hang, tool-call chunks) and a test
// wire format that writes each chunk as one plain event, so what is checked is the core, no API:
// fallback, heartbeat, deadline, client disconnect, slow reader.
#include "streaming/relay.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "http/server_fixture.h"

namespace sluice {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// One step of a scripted provider: wait `delay`, then hand `batch` to the sink (or hang until
// cancelled).
struct step {
    std::chrono::milliseconds delay{0};
    chunk_batch batch;
    bool hang = false;
};

// What a scripted provider saw, shared with the test thread.
struct provider_log {
    std::atomic<int> batches_sent{0};
    std::atomic<bool> cancelled{false};
    std::atomic<bool> started{false};
};

class scripted_provider final : public provider {
  public:
    scripted_provider(std::string name, std::vector<step> steps, provider_log& log)
        : steps_(std::move(steps)), log_(log) {
        cfg_.name = std::move(name);
        cfg_.provider = "openai";
        cfg_.role = model_role::cloud_large;
    }

    const model_config& config() const override { return cfg_; }
    provider_status status() const override { return {}; }
    int count_tokens(const std::string& text) const override { return static_cast<int>(text.size() / 4); }

    net::awaitable<void> stream(const chat_request&, chunk_sink sink) override {
        log_.started = true;
        net::steady_timer timer{co_await net::this_coro::executor};
        for (auto& s : steps_) {
            const auto wait = s.hang ? std::chrono::milliseconds{3600000} : s.delay;
            if (wait.count() > 0) {
                timer.expires_after(wait);
                auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
                if (ec) {
                    log_.cancelled = true;
                    co_return;
                }
            }
            chunk_batch batch = s.batch;
            co_await sink(batch);
            ++log_.batches_sent;
            const auto state = co_await net::this_coro::cancellation_state;
            if (state.cancelled() != net::cancellation_type::none) {
                log_.cancelled = true;
                co_return;
            }
        }
    }

  private:
    model_config cfg_;
    std::vector<step> steps_;
    provider_log& log_;
};

// Every chunk as one `data:` line of its own: "<kind>:<index>:<text>", ": ping" comments, "end:<reason>",
// "error:<code>:<message>". No API's bytes: the core is what is tested.
class plain_wire final : public wire_format {
  public:
    void content(sse_batch& events, const stream_identity& who, const stream_chunk& chunk,
                 const stream_outcome&) override {
        static constexpr std::array<const char*, 4> k_names = {"delta", "call", "args", "think"};
        const auto kind = static_cast<std::size_t>(chunk.type);
        std::string text = std::string(k_names[kind]) + ":" + std::to_string(chunk.index) + ":" + chunk.id +
                           chunk.name + chunk.text + "@" + who.model;
        events.add_event(text);
    }
    void final(sse_batch& events, const stream_identity&, const stream_outcome& out) override {
        events.add_event("end:" + out.finish_reason);
    }
    void error_events(sse_batch& events, const api_error& error, const stream_identity&) override {
        events.add_event("error:" + std::to_string(error.code) + ":" + error.message);
    }
    http_response error_response(const http_request& request, const api_error& error, std::string_view,
                                 const stream_identity*) override {
        http_response res{static_cast<http_status>(error.code), request.version()};
        res.body() = "early:" + std::to_string(error.code) + ":" + error.message;
        return res;
    }
    std::string whole(const stream_identity&, const stream_outcome& out) override {
        return "whole:" + out.text;
    }
};

// A loopback server whose one route streams the given candidates with the given options.
struct relay_fixture {
    relay_fixture(std::vector<std::shared_ptr<provider>> models, relay_options options) : options_(options) {
        routes_.add(http_verb::post, "/stream",
                    [this, models](exchange& ex) -> net::awaitable<void> {
                        std::vector<relay_candidate> candidates;
                        for (const auto& model : models) {
                            relay_candidate candidate{.model = model, .request = {}, .identity = {}};
                            candidate.identity.model = model->config().name;
                            candidate.identity.route_reason = "test";
                            candidates.push_back(std::move(candidate));
                        }
                        plain_wire wire;
                        relay_options options = options_;
                        options.format = &wire;
                        outcome_hook hook =
                            [this](const stream_outcome& out) -> net::awaitable<std::optional<api_error>> {
                            hook_calls_++;
                            final_seen_ = out;
                            co_return std::nullopt;
                        };
                        co_await relay_stream(ex, std::move(candidates), options, outcome_, std::move(hook),
                                              nullptr);
                        done_.set_value(outcome_);
                    },
                    {.needs_auth = false});
        server_ = std::make_unique<test::running_server>(routes_);
    }

    // The outcome once the relay returned (waits at most `timeout`).
    std::optional<stream_outcome> outcome(std::chrono::milliseconds timeout = 5000ms) {
        auto future = done_.get_future();
        if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
        return future.get();
    }

    test::client connect() { return test::client(server_->port()); }
    static http_request request() { return test::make_request(http_verb::post, "/stream", "{}"); }

    relay_options options_;
    router routes_;
    stream_outcome outcome_;
    stream_outcome final_seen_;
    std::atomic<int> hook_calls_{0};
    std::promise<stream_outcome> done_;
    std::unique_ptr<test::running_server> server_;
};

// The data: lines and comments of an SSE body, in order.
std::vector<std::string> events_of(const std::string& body) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < body.size()) {
        const auto end = body.find("\n\n", at);
        if (end == std::string::npos) break;
        std::string event = body.substr(at, end - at);
        if (event.starts_with("data: ")) event = event.substr(6);
        out.push_back(event);
        at = end + 2;
    }
    return out;
}

relay_options fast_options() {
    return {.heartbeat_interval = 10000ms, .request_timeout = 10000ms, .streaming = true};
}

TEST(relay, batches_and_tool_call_chunks_reach_the_wire_in_order) {
    provider_log log;
    auto model = std::make_shared<scripted_provider>(
        "m",
        std::vector<step>{
            {.batch = {stream_chunk::delta("Hel"), stream_chunk::delta("lo")}},
            {.delay = 20ms,
             .batch = {stream_chunk::tool_call_start(0, "c1", "f"),
                       stream_chunk::tool_call_delta(0, "{\"a\""), stream_chunk::tool_call_delta(0, ":1}")}},
            {.batch = {stream_chunk::usage(3, 4), stream_chunk::finish("tool_calls")}}},
        log);
    relay_fixture fx({model}, fast_options());
    auto client = fx.connect();
    const auto response = client.send(relay_fixture::request());
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(events_of(response.body()),
              (std::vector<std::string>{"delta:0:Hel@m", "delta:0:lo@m", "call:0:c1f@m", "args:0:{\"a\"@m",
                                        "args:0::1}@m", "end:tool_calls", "[DONE]"}));
    const auto out = fx.outcome();
    ASSERT_TRUE(out);
    EXPECT_EQ(out->text, "Hello");
    ASSERT_EQ(out->tool_calls.size(), 1u);
    EXPECT_EQ(out->tool_calls[0].arguments, "{\"a\":1}");
    EXPECT_EQ(out->finish_reason, "tool_calls");
    EXPECT_EQ(out->prompt_tokens, 3);
    EXPECT_EQ(out->completion_tokens, 4);
    EXPECT_EQ(fx.hook_calls_, 1);
}

TEST(relay, an_error_before_the_first_delta_falls_back_and_the_client_sees_only_the_next_model) {
    provider_log first_log;
    provider_log second_log;
    auto first = std::make_shared<scripted_provider>(
        "first", std::vector<step>{{.batch = {stream_chunk::usage(1, 0), stream_chunk::error(502, "boom")}}},
        first_log);
    auto second = std::make_shared<scripted_provider>(
        "second", std::vector<step>{{.batch = {stream_chunk::delta("ok"), stream_chunk::finish("stop")}}},
        second_log);
    relay_fixture fx({first, second}, fast_options());
    auto client = fx.connect();
    const auto response = client.send(relay_fixture::request());
    EXPECT_EQ(events_of(response.body()),
              (std::vector<std::string>{"delta:0:ok@second", "end:stop", "[DONE]"}));
    EXPECT_NE(std::string(response["X-Sluice-Route"]).find("model=second"), std::string::npos);
    const auto out = fx.outcome();
    ASSERT_TRUE(out);
    EXPECT_EQ(out->model, "second");
    EXPECT_FALSE(out->error);
}

TEST(relay, an_error_after_the_first_delta_is_an_in_band_event_and_no_fallback) {
    provider_log first_log;
    provider_log second_log;
    auto first = std::make_shared<scripted_provider>(
        "first",
        std::vector<step>{{.batch = {stream_chunk::tool_call_start(0, "c", "f")}},
                          {.delay = 10ms, .batch = {stream_chunk::error(502, "cut")}}},
        first_log);
    auto second = std::make_shared<scripted_provider>("second", std::vector<step>{}, second_log);
    relay_fixture fx({first, second}, fast_options());
    auto client = fx.connect();
    const auto response = client.send(relay_fixture::request());
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(events_of(response.body()),
              (std::vector<std::string>{"call:0:cf@first", "error:502:cut", "[DONE]"}));
    EXPECT_FALSE(second_log.started);
    const auto out = fx.outcome();
    ASSERT_TRUE(out);
    EXPECT_EQ(out->finish_reason, "error");
}

TEST(relay, an_error_before_anything_was_sent_is_the_wire_formats_early_response) {
    provider_log log;
    auto model = std::make_shared<scripted_provider>(
        "m", std::vector<step>{{.batch = {stream_chunk::error(429, "slow down", 7)}}}, log);
    relay_fixture fx({model}, fast_options());
    auto client = fx.connect();
    const auto response = client.send(relay_fixture::request());
    EXPECT_EQ(response.result_int(), 429);
    EXPECT_EQ(response.body(), "early:429:slow down");
}

TEST(relay, heartbeats_flow_while_the_model_is_silent) {
    provider_log log;
    auto model = std::make_shared<scripted_provider>(
        "m",
        std::vector<step>{
            {.delay = 350ms, .batch = {stream_chunk::delta("late"), stream_chunk::finish("stop")}}},
        log);
    relay_fixture fx({model}, {.heartbeat_interval = 100ms, .request_timeout = 10000ms, .streaming = true});
    auto client = fx.connect();
    const auto response = client.send(relay_fixture::request());
    const auto events = events_of(response.body());
    ASSERT_GE(events.size(), 4u);
    int pings = 0;
    for (const auto& event : events) pings += event == ": ping";
    EXPECT_GE(pings, 2);
    EXPECT_LE(pings, 4);
    EXPECT_EQ(events[events.size() - 3], "delta:0:late@m");
}

TEST(relay, the_deadline_ends_a_hung_model_with_an_error_and_cancels_it) {
    provider_log log;
    auto model = std::make_shared<scripted_provider>(
        "m", std::vector<step>{{.batch = {stream_chunk::delta("a")}}, {.hang = true}}, log);
    relay_fixture fx({model}, {.heartbeat_interval = 10000ms, .request_timeout = 300ms, .streaming = true});
    auto client = fx.connect();
    const auto started = std::chrono::steady_clock::now();
    const auto response = client.send(relay_fixture::request());
    const auto took = std::chrono::steady_clock::now() - started;
    const auto events = events_of(response.body());
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0], "delta:0:a@m");
    EXPECT_TRUE(events[1].starts_with("error:504:")) << events[1];
    EXPECT_LT(took, 5s);
    const auto out = fx.outcome();
    ASSERT_TRUE(out);
    EXPECT_TRUE(out->timed_out);
    EXPECT_TRUE(log.cancelled);
}

TEST(relay, a_client_that_leaves_cancels_the_model_at_once) {
    provider_log log;
    auto model = std::make_shared<scripted_provider>(
        "m", std::vector<step>{{.batch = {stream_chunk::delta("first")}}, {.hang = true}}, log);
    relay_fixture fx({model}, fast_options());
    {
        auto client = fx.connect();
        auto request = relay_fixture::request();
        request.prepare_payload();
        boost::beast::http::write(client.socket(), request);
        // Read until the first event arrived, then go away.
        std::string seen;
        std::array<char, 4096> piece{};
        while (seen.find("delta:0:first") == std::string::npos) {
            const auto n = client.socket().read_some(net::buffer(piece));
            seen.append(piece.data(), n);
        }
        client.socket().close();
    }
    const auto out = fx.outcome(3000ms);
    ASSERT_TRUE(out);
    EXPECT_TRUE(out->client_gone);
    EXPECT_EQ(out->finish_reason, "cancelled");
    EXPECT_EQ(out->text, "first");
    EXPECT_TRUE(log.cancelled);
    EXPECT_EQ(fx.hook_calls_, 1);
}

TEST(relay, a_slow_reader_slows_the_model_instead_of_filling_a_buffer) {
    provider_log log;
    constexpr int k_batches = 64;
    std::vector<step> steps;
    const std::string big(512 * 1024, 'x');
    for (int i = 0; i < k_batches; ++i) steps.push_back({.batch = {stream_chunk::delta(big)}});
    steps.push_back({.batch = {stream_chunk::finish("stop")}});
    auto model = std::make_shared<scripted_provider>("m", std::move(steps), log);
    relay_fixture fx({model}, fast_options());
    auto client = fx.connect();
    auto request = relay_fixture::request();
    request.prepare_payload();
    boost::beast::http::write(client.socket(), request);
    // The client reads nothing for a while: the provider may run ahead only by what the channel and
    // the socket buffers hold, not by the whole answer.
    std::this_thread::sleep_for(500ms);
    const int ahead = log.batches_sent.load();
    EXPECT_LT(ahead, k_batches / 2) << "the provider ran ahead of a client that did not read";
    // Then it reads everything.
    const auto response = client.read();
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(log.batches_sent.load(), k_batches + 1);
    const auto out = fx.outcome();
    ASSERT_TRUE(out);
    EXPECT_EQ(out->text.size(), big.size() * k_batches);
}

}  // namespace
}  // namespace sluice
