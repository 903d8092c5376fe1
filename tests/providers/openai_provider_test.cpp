#include "providers/openai_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "core/ids.h"
#include "providers/scripted_upstream_process.h"
#include "upstream/test_server.h"

namespace sluice {
namespace {

using namespace sluice::testing;
using net::experimental::awaitable_operators::operator||;
namespace json = boost::json;

constexpr const char* k_key_env = "SLUICE_TEST_OPENAI_KEY";
constexpr const char* k_key = "sk-test-0123456789abcdef0123456789abcdef";

class openai_provider_test : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { upstream_ = std::make_unique<scripted_upstream_process>(); }
    static void TearDownTestSuite() { upstream_.reset(); }

    void SetUp() override {
        upstream_->reset();
        setenv(k_key_env, k_key, 1);
        cfg_.name = "cloud";
        cfg_.role = model_role::cloud_large;
        cfg_.provider = "openai";
        cfg_.base_url = upstream_->base_url();
        cfg_.model = "gpt-test";
        cfg_.api_key_env = k_key_env;
        cfg_.connect_timeout_ms = 2000;
        cfg_.first_byte_timeout_ms = 5000;
        cfg_.idle_timeout_ms = 5000;
        cfg_.request_timeout_s = 30;
    }

    static chat_request hello() {
        chat_request request;
        request.messages = {{"system", "Be brief."}, {"user", "Say hello"}};
        request.params.max_tokens = 64;
        request.params.temperature = 0.5;
        return request;
    }

    std::vector<stream_chunk> collect(chat_request request = hello()) {
        auto provider = make_openai_provider(cfg_);
        std::vector<stream_chunk> chunks;
        run(io_, provider->stream(std::move(request), [&](chunk_batch& batch) -> net::awaitable<void> {
            for (auto& chunk : batch) chunks.push_back(std::move(chunk));
            co_return;
        }));
        EXPECT_EQ(provider->status().active, 0);
        return chunks;
    }

    static std::string text_of(const std::vector<stream_chunk>& chunks) {
        std::string text;
        for (const auto& chunk : chunks)
            if (chunk.type == stream_chunk::kind::delta) text += chunk.text;
        return text;
    }

    static const stream_chunk& last(const std::vector<stream_chunk>& chunks) { return chunks.back(); }

    static inline std::unique_ptr<scripted_upstream_process> upstream_;
    net::io_context io_;
    model_config cfg_;
};

TEST_F(openai_provider_test, streams_deltas_in_order_then_usage_then_finish) {
    upstream_->script({{"chunks", json::array{"Hel", "lo", " world"}},
                       {"usage", json::object{{"prompt_tokens", 7}, {"completion_tokens", 3}}}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 5u);
    EXPECT_EQ(chunks[0].text, "Hel");
    EXPECT_EQ(chunks[1].text, "lo");
    EXPECT_EQ(chunks[2].text, " world");
    EXPECT_EQ(chunks[3].type, stream_chunk::kind::usage);
    EXPECT_EQ(chunks[3].prompt_tokens, 7);
    EXPECT_EQ(chunks[3].completion_tokens, 3);
    EXPECT_EQ(chunks[4].type, stream_chunk::kind::finish);
    EXPECT_EQ(chunks[4].finish_reason, "stop");
}

TEST_F(openai_provider_test, a_delta_larger_than_the_parse_buffer_arrives_whole) {
    const std::string big(20000, 'x');
    upstream_->script({{"chunks", json::array{"a", json::string(big), "b\u00e9\"\\"}}});
    auto chunks = collect();
    EXPECT_EQ(text_of(chunks), "a" + big + "b\xC3\xA9\"\\");
    EXPECT_EQ(last(chunks).type, stream_chunk::kind::finish);
}

TEST_F(openai_provider_test, sends_the_openai_request_with_the_key_from_the_environment) {
    auto request = hello();
    request.params.top_p = 0.9;
    request.params.stop = {"\n\n"};
    request.params.seed = 42;
    collect(request);
    auto log = upstream_->requests();
    ASSERT_EQ(log.size(), 1u);
    const auto& entry = log[0].as_object();
    EXPECT_EQ(entry.at("path").as_string(), "/v1/chat/completions");
    const auto& body = entry.at("body").as_object();
    EXPECT_EQ(body.at("model").as_string(), "gpt-test");
    EXPECT_EQ(body.at("stream").as_bool(), true);
    EXPECT_EQ(body.at("stream_options").at("include_usage").as_bool(), true);
    EXPECT_EQ(body.at("max_tokens").as_int64(), 64);
    EXPECT_DOUBLE_EQ(body.at("temperature").as_double(), 0.5);
    EXPECT_DOUBLE_EQ(body.at("top_p").as_double(), 0.9);
    EXPECT_EQ(body.at("stop").as_array()[0].as_string(), "\n\n");
    EXPECT_EQ(body.at("seed").to_number<std::int64_t>(), 42);
    const auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at("role").as_string(), "system");
    EXPECT_EQ(messages[1].at("content").as_string(), "Say hello");
    EXPECT_EQ(entry.at("key_sha256").as_string(), sha256_hex(k_key));
}

TEST_F(openai_provider_test, the_model_name_defaults_to_the_configured_name) {
    cfg_.model.clear();
    collect();
    EXPECT_EQ(upstream_->requests()[0].at("body").at("model").as_string(), "cloud");
}

TEST_F(openai_provider_test, length_finish_reason_is_passed_on) {
    upstream_->script({{"finish_reason", "length"}});
    auto chunks = collect();
    EXPECT_EQ(last(chunks).type, stream_chunk::kind::finish);
    EXPECT_EQ(last(chunks).finish_reason, "length");
}

TEST_F(openai_provider_test, any_byte_split_of_the_stream_gives_the_same_chunks) {
    for (int split : {1, 2, 7, 50}) {
        upstream_->script({{"chunks", json::array{"é", "日本", "!"}}, {"split_bytes", split}});
        auto chunks = collect();
        EXPECT_EQ(text_of(chunks), "é日本!") << split;
        EXPECT_EQ(last(chunks).type, stream_chunk::kind::finish) << split;
    }
}

TEST_F(openai_provider_test, rejected_credentials_map_to_502_without_the_key) {
    for (int status : {401, 403}) {
        upstream_->script(
            {{"status", status},
             {"error_body",
              json::object{
                  {"error", json::object{{"message", std::string("Incorrect API key ") + k_key}}}}}});
        auto chunks = collect();
        ASSERT_EQ(chunks.size(), 1u);
        EXPECT_EQ(chunks[0].type, stream_chunk::kind::error);
        EXPECT_EQ(chunks[0].code, 502);
        EXPECT_EQ(chunks[0].message, "upstream rejected the credentials");
    }
}

TEST_F(openai_provider_test, rate_limit_keeps_429_and_retry_after) {
    upstream_->script({{"status", 429}, {"retry_after", 7}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 429);
    EXPECT_EQ(chunks[0].retry_after_s, 7);
}

TEST_F(openai_provider_test, other_client_errors_carry_the_upstream_message) {
    upstream_->script(
        {{"status", 400},
         {"error_body", json::object{{"error", json::object{{"message", "max_tokens is too large"}}}}}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 502);
    EXPECT_NE(chunks[0].message.find("max_tokens is too large"), std::string::npos) << chunks[0].message;
}

TEST_F(openai_provider_test, server_errors_map_to_502) {
    upstream_->script({{"status", 500}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 502);
    EXPECT_NE(chunks[0].message.find("500"), std::string::npos);
}

TEST_F(openai_provider_test, connect_refused_maps_to_503) {
    {
        tcp::acceptor closed(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
        cfg_.base_url = "http://127.0.0.1:" + std::to_string(closed.local_endpoint().port()) + "/v1";
    }
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 503);
}

TEST_F(openai_provider_test, reset_mid_stream_is_an_error_after_the_deltas) {
    upstream_->script({{"chunks", json::array{"one", "two", "three"}}, {"reset_after", 1}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 2u);
    EXPECT_EQ(chunks[0].text, "one");
    EXPECT_EQ(chunks[1].type, stream_chunk::kind::error);
    EXPECT_EQ(chunks[1].code, 502);
}

TEST_F(openai_provider_test, a_hanging_upstream_hits_the_idle_deadline) {
    cfg_.idle_timeout_ms = 300;
    upstream_->script({{"hang", true}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 504);
}

TEST_F(openai_provider_test, a_slow_first_byte_hits_the_first_byte_deadline) {
    cfg_.first_byte_timeout_ms = 200;
    upstream_->script({{"first_byte_delay_ms", 2000}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 504);
}

TEST_F(openai_provider_test, an_error_event_mid_stream_becomes_an_error_chunk) {
    upstream_->script({{"chunks", json::array{"partial"}},
                       {"error_event", json::object{{"message", "overloaded"}, {"type", "server_error"}}}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 2u);
    EXPECT_EQ(chunks[0].text, "partial");
    EXPECT_EQ(chunks[1].code, 502);
    EXPECT_NE(chunks[1].message.find("overloaded"), std::string::npos);
}

TEST_F(openai_provider_test, a_missing_key_makes_the_model_unavailable) {
    unsetenv(k_key_env);
    auto provider = make_openai_provider(cfg_);
    EXPECT_FALSE(provider->status().available);
    EXPECT_NE(provider->status().detail.find(k_key_env), std::string::npos);
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].code, 503);
    EXPECT_TRUE(upstream_->requests().empty());
}

TEST_F(openai_provider_test, cancellation_closes_the_upstream_connection_and_stops_the_chunks) {
    json::array many;
    for (int i = 0; i < 200; ++i) many.push_back(json::string("x"));
    upstream_->script({{"chunks", many}, {"chunk_delay_ms", 20}});
    auto provider = make_openai_provider(cfg_);
    std::vector<stream_chunk> chunks;
    net::steady_timer client_gone(io_, net::steady_timer::time_point::max());
    run(io_, [&]() -> net::awaitable<void> {
        const chat_request request = hello();
        auto streaming = provider->stream(request, [&](chunk_batch& batch) -> net::awaitable<void> {
            for (auto& chunk : batch) chunks.push_back(std::move(chunk));
            client_gone.cancel();  // the client leaves after the first delta
            co_return;
        });
        co_await (std::move(streaming) || client_gone.async_wait(net::as_tuple(net::use_awaitable)));
    }());
    EXPECT_EQ(chunks.size(), 1u);
    EXPECT_EQ(provider->status().active, 0);
    // The upstream sees its client go; poll its log (bounded) rather than guess a delay.
    bool closed = false;
    for (int attempt = 0; attempt < 200 && !closed; ++attempt) {
        closed = upstream_->requests()[0].at("closed_by_client").as_bool();
        if (!closed) usleep(10000);
    }
    EXPECT_TRUE(closed);
}

// The relay stops the provider as soon as it holds the finish chunk; the end of the upstream body
// must have been read by then, so that the next answer reuses the connection instead of opening one.
TEST_F(openai_provider_test, a_caller_that_stops_at_the_finish_chunk_leaves_the_connection_pooled) {
    upstream_->script({{"chunks", json::array{"a", "b"}}});
    upstream_->script({{"chunks", json::array{"c"}}});
    auto provider = make_openai_provider(cfg_);
    for (int turn = 0; turn < 2; ++turn) {
        net::steady_timer finished(io_, net::steady_timer::time_point::max());
        bool got_finish = false;
        run(io_, [&]() -> net::awaitable<void> {
            const chat_request request = hello();
            auto streaming = provider->stream(request, [&](chunk_batch& batch) -> net::awaitable<void> {
                for (const auto& chunk : batch) {
                    if (chunk.type != stream_chunk::kind::finish) continue;
                    got_finish = true;
                    finished.cancel();  // the caller ends the race here, cancelling the provider
                }
                co_return;
            });
            co_await (std::move(streaming) || finished.async_wait(net::as_tuple(net::use_awaitable)));
        }());
        EXPECT_TRUE(got_finish);
    }
    const auto log = upstream_->requests();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].at("peer_port"), log[1].at("peer_port"));
    EXPECT_FALSE(log[0].at("closed_by_client").as_bool());
}

}  // namespace
}  // namespace sluice
