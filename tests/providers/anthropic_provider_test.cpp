#include "providers/anthropic_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <vector>

#include "core/ids.h"
#include "providers/scripted_upstream_process.h"
#include "upstream/test_server.h"

namespace sluice {
namespace {

using namespace sluice::testing;
namespace json = boost::json;

constexpr const char* k_key_env = "SLUICE_TEST_ANTHROPIC_KEY";
constexpr const char* k_key = "sk-ant-test-0123456789abcdef0123456789";

class anthropic_provider_test : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { upstream_ = std::make_unique<scripted_upstream_process>(); }
    static void TearDownTestSuite() { upstream_.reset(); }

    void SetUp() override {
        upstream_->reset();
        setenv(k_key_env, k_key, 1);
        cfg_.name = "claude";
        cfg_.role = model_role::cloud_large;
        cfg_.provider = "anthropic";
        cfg_.base_url = upstream_->base_url();
        cfg_.model = "claude-test";
        cfg_.api_key_env = k_key_env;
        cfg_.idle_timeout_ms = 5000;
    }

    static chat_request hello() {
        chat_request request;
        request.messages = {{"system", "Be brief."}, {"user", "Say hello"}};
        request.params.max_tokens = 64;
        request.params.temperature = 0.5;
        return request;
    }

    std::vector<stream_chunk> collect(chat_request request = hello()) {
        auto provider = make_anthropic_provider(cfg_);
        std::vector<stream_chunk> chunks;
        run(io_, provider->stream(std::move(request), [&](chunk_batch& batch) -> net::awaitable<void> {
            for (auto& chunk : batch) chunks.push_back(std::move(chunk));
            co_return;
        }));
        EXPECT_EQ(provider->status().active, 0);
        return chunks;
    }

    static inline std::unique_ptr<scripted_upstream_process> upstream_;
    net::io_context io_;
    model_config cfg_;
};

TEST_F(anthropic_provider_test, streams_deltas_then_usage_then_finish) {
    upstream_->script({{"chunks", json::array{"Hi", " there"}},
                       {"usage", json::object{{"prompt_tokens", 9}, {"completion_tokens", 2}}}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 4u);
    EXPECT_EQ(chunks[0].text, "Hi");
    EXPECT_EQ(chunks[1].text, " there");
    EXPECT_EQ(chunks[2].type, stream_chunk::kind::usage);
    EXPECT_EQ(chunks[2].prompt_tokens, 9);
    EXPECT_EQ(chunks[2].completion_tokens, 2);
    EXPECT_EQ(chunks[3].type, stream_chunk::kind::finish);
    EXPECT_EQ(chunks[3].finish_reason, "stop");
}

TEST_F(anthropic_provider_test, sends_the_messages_request_with_system_split_out) {
    auto request = hello();
    request.messages.push_back({"assistant", "Hello!"});
    request.messages.push_back({"user", "Again"});
    request.messages.push_back({"user", "Please"});
    request.params.temperature = 1.5;
    request.params.stop = {"END"};
    collect(request);
    auto log = upstream_->requests();
    ASSERT_EQ(log.size(), 1u);
    const auto& entry = log[0].as_object();
    EXPECT_EQ(entry.at("path").as_string(), "/v1/messages");
    EXPECT_EQ(entry.at("key_sha256").as_string(), sha256_hex(k_key));
    EXPECT_EQ(entry.at("headers").at("anthropic-version").as_string(), "2023-06-01");
    EXPECT_FALSE(entry.at("headers").as_object().contains("authorization"));
    const auto& body = entry.at("body").as_object();
    EXPECT_EQ(body.at("model").as_string(), "claude-test");
    EXPECT_EQ(body.at("system").as_string(), "Be brief.");
    EXPECT_EQ(body.at("stream").as_bool(), true);
    EXPECT_EQ(body.at("max_tokens").as_int64(), 64);
    EXPECT_DOUBLE_EQ(body.at("temperature").as_double(), 1.0);  // Anthropic's range ends at 1
    EXPECT_EQ(body.at("stop_sequences").as_array()[0].as_string(), "END");
    const auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 3u);
    EXPECT_EQ(messages[0].at("role").as_string(), "user");
    EXPECT_EQ(messages[1].at("role").as_string(), "assistant");
    EXPECT_EQ(messages[2].at("content").as_string(), "Again\n\nPlease");  // one turn per role change
}

TEST_F(anthropic_provider_test, max_tokens_stop_is_length) {
    upstream_->script({{"finish_reason", "length"}});
    auto chunks = collect();
    EXPECT_EQ(chunks.back().finish_reason, "length");
}

TEST_F(anthropic_provider_test, any_byte_split_gives_the_same_chunks) {
    for (int split : {1, 3, 16}) {
        upstream_->script({{"chunks", json::array{"é", "日本"}}, {"split_bytes", split}});
        auto chunks = collect();
        ASSERT_EQ(chunks.size(), 4u) << split;
        EXPECT_EQ(chunks[0].text + chunks[1].text, "é日本");
    }
}

TEST_F(anthropic_provider_test, an_error_event_ends_the_stream_with_an_error) {
    upstream_->script(
        {{"chunks", json::array{"partial"}},
         {"error_event", json::object{{"type", "overloaded_error"}, {"message", "Overloaded"}}}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 2u);
    EXPECT_EQ(chunks[0].text, "partial");
    EXPECT_EQ(chunks[1].type, stream_chunk::kind::error);
    EXPECT_NE(chunks[1].message.find("Overloaded"), std::string::npos);
}

TEST_F(anthropic_provider_test, statuses_map_like_the_openai_ones) {
    upstream_->script({{"queue", json::array{json::object{{"status", 401}},
                                             json::object{{"status", 429}, {"retry_after", 3}},
                                             json::object{{"status", 529}}}}});
    auto rejected = collect();
    ASSERT_EQ(rejected.size(), 1u);
    EXPECT_EQ(rejected[0].code, 502);
    EXPECT_EQ(rejected[0].message, "upstream rejected the credentials");
    auto limited = collect();
    EXPECT_EQ(limited[0].code, 429);
    EXPECT_EQ(limited[0].retry_after_s, 3);
    auto overloaded = collect();
    EXPECT_EQ(overloaded[0].code, 502);
    EXPECT_NE(overloaded[0].message.find("529"), std::string::npos);
}

TEST_F(anthropic_provider_test, reset_mid_stream_is_an_error_after_the_deltas) {
    upstream_->script({{"chunks", json::array{"one", "two"}}, {"reset_after", 1}});
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 2u);
    EXPECT_EQ(chunks[0].text, "one");
    EXPECT_EQ(chunks[1].code, 502);
}

}  // namespace
}  // namespace sluice
