#include "providers/anthropic_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <memory>
#include <optional>
#include <string>
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

// The content chunks of one kind, in order.
std::vector<stream_chunk> of_kind(const std::vector<stream_chunk>& chunks, stream_chunk::kind kind) {
    std::vector<stream_chunk> out;
    for (const auto& chunk : chunks)
        if (chunk.type == kind) out.push_back(chunk);
    return out;
}

TEST_F(anthropic_provider_test, streams_text_then_two_tool_calls_with_their_argument_fragments) {
    const std::string weather_args = R"({"city":"Paris","unit":"celsius"})";
    const std::string time_args = R"({"zone":"Europe/Paris"})";
    upstream_->script(
        {{"chunks", json::array{"Let me ", "check."}},
         {"tool_calls",
          json::array{
              json::object{{"id", "toolu_weather"}, {"name", "get_weather"}, {"arguments", weather_args}},
              json::object{{"id", "toolu_time"}, {"name", "get_time"}, {"arguments", time_args}}}},
         {"arguments_split", 5}});
    auto chunks = collect();

    std::string text;
    for (const auto& chunk : of_kind(chunks, stream_chunk::kind::delta)) text += chunk.text;
    EXPECT_EQ(text, "Let me check.");
    auto starts = of_kind(chunks, stream_chunk::kind::tool_call_start);
    ASSERT_EQ(starts.size(), 2u);
    EXPECT_EQ(starts[0].index, 0);
    EXPECT_EQ(starts[0].id, "toolu_weather");
    EXPECT_EQ(starts[0].name, "get_weather");
    EXPECT_EQ(starts[1].index, 1);
    EXPECT_EQ(starts[1].id, "toolu_time");
    EXPECT_EQ(starts[1].name, "get_time");
    std::string arguments[2];
    int fragments = 0;
    for (const auto& chunk : of_kind(chunks, stream_chunk::kind::tool_call_delta)) {
        ASSERT_TRUE(chunk.index == 0 || chunk.index == 1) << chunk.index;
        EXPECT_FALSE(chunk.text.empty());
        arguments[chunk.index] += chunk.text;
        ++fragments;
    }
    EXPECT_EQ(arguments[0], weather_args);
    EXPECT_EQ(arguments[1], time_args);
    EXPECT_GT(fragments, 2);  // streamed in pieces, not whole
    // The text comes before the first call, each call's start before its fragments.
    auto first_start = std::find_if(chunks.begin(), chunks.end(), [](const stream_chunk& chunk) {
        return chunk.type == stream_chunk::kind::tool_call_start;
    });
    EXPECT_EQ(std::find_if(first_start, chunks.end(),
                           [](const stream_chunk& chunk) { return chunk.type == stream_chunk::kind::delta; }),
              chunks.end());
    ASSERT_GE(chunks.size(), 2u);
    EXPECT_EQ(chunks[chunks.size() - 2].type, stream_chunk::kind::usage);
    EXPECT_EQ(chunks.back().type, stream_chunk::kind::finish);
    EXPECT_EQ(chunks.back().finish_reason, "tool_calls");
}

TEST_F(anthropic_provider_test, thinking_becomes_reasoning_chunks_with_the_signature) {
    const std::string thinking = "The user wants a greeting; keep it short and friendly.";
    upstream_->script({{"thinking", json::object{{"text", thinking}, {"signature", "sig-EqQBCgIYAhIM"}}},
                       {"chunks", json::array{"Hello!"}}});
    auto chunks = collect();

    auto reasoning = of_kind(chunks, stream_chunk::kind::reasoning);
    ASSERT_GE(reasoning.size(), 2u);
    std::string text;
    std::vector<std::string> signatures;
    for (const auto& chunk : reasoning) {
        text += chunk.text;
        if (!chunk.signature.empty()) signatures.push_back(chunk.signature);
    }
    EXPECT_EQ(text, thinking);
    ASSERT_EQ(signatures.size(), 1u);
    EXPECT_EQ(signatures[0], "sig-EqQBCgIYAhIM");
    // All of the thinking comes before the answer.
    ASSERT_EQ(chunks[reasoning.size()].type, stream_chunk::kind::delta);
    EXPECT_EQ(chunks[reasoning.size()].text, "Hello!");
    EXPECT_EQ(chunks.back().finish_reason, "stop");
}

TEST_F(anthropic_provider_test, sends_images_tool_calls_and_merged_tool_results_in_the_anthropic_shape) {
    chat_request request;
    request.messages.push_back({"system", "You are a weather bot."});
    chat_message question{"user", "What is this? And the weather?", {}};
    question.parts = {content_part::text_part("What is this? And the weather?"),
                      {.type = content_part::kind::image, .text = "iVBORw0KGgo=", .media_type = "image/png"},
                      {.type = content_part::kind::image, .text = "https://example.com/cat.jpg"}};
    request.messages.push_back(question);
    chat_message answer{"assistant", "Checking.", {}};
    answer.parts = {
        content_part::text_part("Checking."),
        content_part::tool_call("toolu_1", "get_weather", R"({"city":"Paris"})"),
        content_part::tool_call("toolu_2", "get_time", "not json"),
        // Listed after the text, sent first; the unsigned one is not sent at all.
        {.type = content_part::kind::reasoning, .text = "Two tools.", .signature = "sig-1"},
        {.type = content_part::kind::reasoning, .text = "unsigned"},
    };
    request.messages.push_back(answer);
    request.messages.push_back({"tool", "18C", {content_part::tool_result("toolu_1", "18C")}});
    request.messages.push_back(
        {"tool", "no clock", {content_part::tool_result("toolu_2", "no clock", /*is_error=*/true)}});
    request.messages.push_back({"user", "Thanks"});
    request.tools = {{"get_weather", "The weather in a city",
                      R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})"},
                     {"get_time", "", "not a schema"}};
    request.tools_choice.type = tool_choice::mode::required;
    collect(request);

    auto log = upstream_->requests();
    ASSERT_EQ(log.size(), 1u);
    const auto& body = log[0].at("body").as_object();
    EXPECT_EQ(body.at("system").as_string(), "You are a weather bot.");
    const auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 3u);

    EXPECT_EQ(messages[0].at("role").as_string(), "user");
    const auto& asked = messages[0].at("content").as_array();
    ASSERT_EQ(asked.size(), 3u);
    EXPECT_EQ(asked[0], (json::value{{"type", "text"}, {"text", "What is this? And the weather?"}}));
    EXPECT_EQ(asked[1], json::parse(R"({"type":"image","source":{"type":"base64","media_type":"image/png",)"
                                    R"("data":"iVBORw0KGgo="}})"));
    EXPECT_EQ(asked[2],
              json::parse(R"({"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}})"));

    EXPECT_EQ(messages[1].at("role").as_string(), "assistant");
    const auto& answered = messages[1].at("content").as_array();
    ASSERT_EQ(answered.size(), 4u);
    EXPECT_EQ(answered[0], json::parse(R"({"type":"thinking","thinking":"Two tools.","signature":"sig-1"})"));
    EXPECT_EQ(answered[1], json::parse(R"({"type":"text","text":"Checking."})"));
    EXPECT_EQ(
        answered[2],
        json::parse(R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}})"));
    EXPECT_EQ(answered[3], json::parse(R"({"type":"tool_use","id":"toolu_2","name":"get_time","input":{}})"));

    EXPECT_EQ(messages[2].at("role").as_string(), "user");  // both results and the text: one turn
    const auto& results = messages[2].at("content").as_array();
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0], json::parse(R"({"type":"tool_result","tool_use_id":"toolu_1","content":"18C"})"));
    EXPECT_EQ(results[1], json::parse(R"({"type":"tool_result","tool_use_id":"toolu_2","content":"no clock",)"
                                      R"("is_error":true})"));
    EXPECT_EQ(results[2], json::parse(R"({"type":"text","text":"Thanks"})"));

    const auto& tools = body.at("tools").as_array();
    ASSERT_EQ(tools.size(), 2u);
    EXPECT_EQ(tools[0],
              json::parse(R"({"name":"get_weather","description":"The weather in a city",)"
                          R"("input_schema":{"type":"object","properties":{"city":{"type":"string"}},)"
                          R"("required":["city"]}})"));
    EXPECT_EQ(tools[1],
              json::parse(R"({"name":"get_time","input_schema":{"type":"object","properties":{}}})"));
    EXPECT_EQ(body.at("tool_choice"), json::parse(R"({"type":"any"})"));
}

// The Messages API refuses tool_use/tool_result blocks in a request without tools: a session that
// used tools and goes on without them (the seed endpoint) sends the calls and results as text.
TEST_F(anthropic_provider_test, tool_history_without_tools_goes_as_text) {
    chat_request request;
    request.messages.push_back({"user", "Weather?"});
    chat_message answer{"assistant", "", {}};
    answer.parts = {content_part::tool_call("toolu_1", "get_weather", R"({"city":"Paris"})")};
    request.messages.push_back(answer);
    request.messages.push_back({"tool", "18C", {content_part::tool_result("toolu_1", "18C")}});
    request.messages.push_back(
        {"tool", "down", {content_part::tool_result("toolu_2", "down", /*is_error=*/true)}});
    request.messages.push_back({"user", "And tomorrow?"});
    collect(request);

    auto log = upstream_->requests();
    ASSERT_EQ(log.size(), 1u);
    const auto& body = log[0].at("body").as_object();
    EXPECT_FALSE(body.contains("tools"));
    const auto text = json::serialize(body.at("messages"));
    EXPECT_EQ(text.find("tool_use"), std::string::npos) << text;
    EXPECT_EQ(text.find("tool_result"), std::string::npos) << text;
    const auto& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 3u);
    EXPECT_EQ(messages[1].at("content").as_array()[0],
              json::parse(R"({"type":"text","text":"[called tool get_weather with {\"city\":\"Paris\"}]"})"));
    const auto& results = messages[2].at("content").as_array();
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0], json::parse(R"({"type":"text","text":"[tool result: 18C]"})"));
    EXPECT_EQ(results[1], json::parse(R"({"type":"text","text":"[tool error: down]"})"));
    EXPECT_EQ(results[2], json::parse(R"({"type":"text","text":"And tomorrow?"})"));
}

TEST_F(anthropic_provider_test, tool_choice_modes_and_serial_calls_map_to_anthropic_tool_choice) {
    auto with = [](tool_choice::mode mode, std::optional<bool> parallel) {
        auto request = hello();
        request.tools = {{"get_weather", "", R"({"type":"object"})"}};
        request.tools_choice = {mode, mode == tool_choice::mode::named ? "get_weather" : ""};
        request.parallel_tool_calls = parallel;
        request.format.type = response_format::kind::json_object;  // no Anthropic parameter: left out
        return request;
    };
    collect(with(tool_choice::mode::auto_, std::nullopt));
    collect(with(tool_choice::mode::auto_, false));
    collect(with(tool_choice::mode::named, false));
    collect(with(tool_choice::mode::none, std::nullopt));
    collect(with(tool_choice::mode::required, true));
    auto log = upstream_->requests();
    ASSERT_EQ(log.size(), 5u);
    auto choice = [&](std::size_t i) -> json::value {
        const auto& body = log[i].at("body").as_object();
        EXPECT_FALSE(body.contains("response_format")) << i;
        auto* found = body.if_contains("tool_choice");
        return found ? *found : json::value(nullptr);
    };
    EXPECT_TRUE(choice(0).is_null());
    EXPECT_EQ(choice(1), json::parse(R"({"type":"auto","disable_parallel_tool_use":true})"));
    EXPECT_EQ(choice(2),
              json::parse(R"({"type":"tool","name":"get_weather","disable_parallel_tool_use":true})"));
    EXPECT_EQ(choice(3), json::parse(R"({"type":"none"})"));
    EXPECT_EQ(choice(4), json::parse(R"({"type":"any"})"));
    // Plain text messages keep their string content.
    EXPECT_EQ(log[0].at("body").at("messages").as_array()[0].at("content").as_string(), "Say hello");
}

TEST_F(anthropic_provider_test, cached_prompt_tokens_are_reported_with_the_usage) {
    // The scripted upstream sends no cache counts: this upstream writes the events by hand.
    const std::string events =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":"
        "\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-test\",\"usage\":"
        "{\"input_tokens\":12,\"cache_creation_input_tokens\":30,\"cache_read_input_tokens\":100,"
        "\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
        "\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    test_server server(io_, [&](tcp::socket socket) -> net::awaitable<void> {
        boost::beast::flat_buffer buffer;
        bool read = co_await read_request(socket, buffer);
        if (!read) co_return;
        std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " +
                               std::to_string(events.size()) + "\r\n\r\n" + events;
        co_await send(socket, std::move(response));
        co_await wait_for_close(socket);
    });
    cfg_.base_url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v1";
    auto chunks = collect();
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_EQ(chunks[0].text, "ok");
    EXPECT_EQ(chunks[1].type, stream_chunk::kind::usage);
    EXPECT_EQ(chunks[1].prompt_tokens, 142);  // the whole prompt: uncached + read + written
    EXPECT_EQ(chunks[1].cached_tokens, 100);
    EXPECT_EQ(chunks[1].cache_write_tokens, 30);
    EXPECT_EQ(chunks[1].completion_tokens, 3);
    EXPECT_EQ(chunks[2].finish_reason, "stop");
}

}  // namespace
}  // namespace sluice
