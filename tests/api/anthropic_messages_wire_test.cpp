// The Anthropic Messages wire format: what Claude Code and the SDKs send is accepted and mapped onto
// the shared conversation model, what Anthropic rejects is a 400 naming the field, and the events and
// messages sluice sends have Anthropic's exact shape and order.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/anthropic_messages.h"
#include "core/config.h"
#include "turn/model_names.h"

namespace sluice {
namespace {

namespace json = boost::json;

anthropic_messages_request parse_ok(std::string_view body, bool count_tokens = false) {
    auto parsed = parse_anthropic_messages_request(body, count_tokens);
    if (auto* error = std::get_if<api_error>(&parsed)) ADD_FAILURE() << body << " -> " << error->message;
    return std::get<anthropic_messages_request>(std::move(parsed));
}

api_error parse_error(std::string_view body) {
    auto parsed = parse_anthropic_messages_request(body);
    EXPECT_TRUE(std::holds_alternative<api_error>(parsed)) << body;
    return std::holds_alternative<api_error>(parsed) ? std::get<api_error>(parsed) : api_error{};
}

TEST(AnthropicRequest, TakesWhatClaudeCodeSends) {
    auto request = parse_ok(R"({"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,
        "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}},
                  {"type":"text","text":"Be brief."}],
        "messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]},
                    {"role":"system","content":[{"type":"text","text":"# Environment"}]}],
        "tools":[{"name":"Bash","description":"Run a command","input_schema":{"type":"object",
                  "properties":{"command":{"type":"string"}},"required":["command"]}},
                 {"type":"web_search_20250305","name":"web_search","max_uses":5}],
        "tool_choice":{"type":"auto","disable_parallel_tool_use":true},
        "thinking":{"type":"adaptive","display":"omitted"},"output_config":{"effort":"medium"},"metadata":{"user_id":"u"},
        "temperature":1,"top_p":0.9,"top_k":5,"stop_sequences":["END"],"context_management":{"edits":[]}})");
    ASSERT_EQ(request.messages.size(), 3u);
    EXPECT_EQ(request.messages[2].role, "system");
    EXPECT_EQ(request.messages[2].content, "# Environment");
    EXPECT_EQ(request.system_messages, 2u);
    EXPECT_EQ(request.messages[0].role, "system");
    EXPECT_EQ(request.messages[0].content, "You are Claude Code.\nBe brief.");
    EXPECT_EQ(request.messages[1].role, "user");
    EXPECT_EQ(request.messages[1].content, "hi");
    EXPECT_FALSE(request.messages[1].has_parts());
    ASSERT_EQ(request.tools.size(), 1u);  // the server tool is dropped
    EXPECT_EQ(request.tools[0].name, "Bash");
    EXPECT_EQ(json::parse(request.tools[0].parameters).at("required").at(0), "command");
    EXPECT_EQ(request.parallel_tool_calls, false);
    EXPECT_EQ(request.model, "claude-sonnet-4-5");
    EXPECT_TRUE(request.stream);
    EXPECT_EQ(request.max_tokens, 32000);
    EXPECT_DOUBLE_EQ(*request.temperature, 1.0);
    EXPECT_EQ(request.stop, std::vector<std::string>{"END"});
    EXPECT_EQ(request.conversation_messages, 1u);
    EXPECT_GT(request.input_estimate, 0);
}

TEST(AnthropicRequest, MapsToolUseToolResultsImagesAndThinking) {
    auto request = parse_ok(R"({"model":"m","max_tokens":10,"messages":[
        {"role":"user","content":"weather?"},
        {"role":"assistant","content":[{"type":"thinking","thinking":"let me see","signature":"sig1"},
            {"type":"redacted_thinking","data":"enc"},
            {"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
            {"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"21 C"},
            {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,
             "content":[{"type":"text","text":"no"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA"}}]},
            {"type":"text","text":"and now?"},
            {"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]})");
    ASSERT_EQ(request.messages.size(), 5u);
    const auto& assistant = request.messages[1];
    EXPECT_EQ(assistant.role, "assistant");
    EXPECT_EQ(assistant.content, "Checking.");
    ASSERT_EQ(assistant.parts.size(), 5u);
    EXPECT_EQ(assistant.parts[0].type, content_part::kind::reasoning);
    EXPECT_EQ(assistant.parts[0].text, "let me see");
    EXPECT_EQ(assistant.parts[0].signature, "sig1");
    EXPECT_TRUE(assistant.parts[1].redacted);
    EXPECT_EQ(assistant.parts[1].text, "enc");
    EXPECT_EQ(assistant.parts[3].type, content_part::kind::tool_call);
    EXPECT_EQ(assistant.parts[3].id, "toolu_1");
    EXPECT_EQ(json::parse(assistant.parts[3].arguments), json::parse(R"({"city":"Paris"})"));

    EXPECT_EQ(request.messages[2].role, "tool");
    ASSERT_EQ(request.messages[2].parts.size(), 1u);
    EXPECT_EQ(request.messages[2].parts[0].id, "toolu_1");
    EXPECT_EQ(request.messages[2].parts[0].text, "21 C");
    EXPECT_EQ(request.messages[3].role, "tool");
    EXPECT_TRUE(request.messages[3].parts[0].is_error);
    EXPECT_EQ(request.messages[3].parts[0].text, "no");

    const auto& user = request.messages[4];
    EXPECT_EQ(user.role, "user");
    EXPECT_EQ(user.content, "and now?");
    ASSERT_EQ(user.parts.size(), 3u);  // the result's image, the text, the URL image
    EXPECT_EQ(user.parts[0].media_type, "image/png");
    EXPECT_EQ(user.parts[2].text, "https://x/y.png");
    EXPECT_EQ(request.conversation_messages, 5u);
}

TEST(AnthropicRequest, AUserTurnOfOnlyToolResultsIsOnlyToolMessages) {
    auto request = parse_ok(R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"q"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]})");
    ASSERT_EQ(request.messages.size(), 3u);
    EXPECT_EQ(request.messages.back().role, "tool");
}

TEST(AnthropicRequest, ToolChoiceModes) {
    const std::string tools = R"("tools":[{"name":"f","input_schema":{"type":"object"}}])";
    auto any = parse_ok(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],)" + tools +
                        R"(,"tool_choice":{"type":"any"}})");
    EXPECT_EQ(any.tools_choice.type, tool_choice::mode::required);
    auto named = parse_ok(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],)" +
                          tools + R"(,"tool_choice":{"type":"tool","name":"f"}})");
    EXPECT_EQ(named.tools_choice.type, tool_choice::mode::named);
    EXPECT_EQ(named.tools_choice.name, "f");
    auto none = parse_ok(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],)" +
                         tools + R"(,"tool_choice":{"type":"none"}})");
    EXPECT_EQ(none.tools_choice.type, tool_choice::mode::none);
}

TEST(AnthropicRequest, RejectsWhatAnthropicRejects) {
    EXPECT_NE(
        parse_error(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").message.find("max_tokens"),
        std::string::npos);
    EXPECT_NE(
        parse_error(R"({"max_tokens":1,"messages":[{"role":"user","content":"x"}]})").message.find("model"),
        std::string::npos);
    EXPECT_EQ(parse_error(R"({"model":"m","max_tokens":1,"messages":[]})").code, 400);
    EXPECT_EQ(parse_error("not json").code, 400);
    EXPECT_NE(parse_error(R"({"model":"m","max_tokens":1,"messages":[{"role":"tool","content":"x"}]})")
                  .message.find("role"),
              std::string::npos);
    EXPECT_NE(
        parse_error(
            R"({"model":"m","max_tokens":1,"temperature":1.5,"messages":[{"role":"user","content":"x"}]})")
            .message.find("temperature"),
        std::string::npos);
    EXPECT_NE(parse_error(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
        {"type":"tool_result","content":"x"}]}]})")
                  .message.find("tool_use_id"),
              std::string::npos);
    EXPECT_NE(parse_error(R"({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],
        "tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool","name":"g"}})")
                  .message.find("'g'"),
              std::string::npos);
    // Nothing for a model to answer: only system turns.
    EXPECT_NE(parse_error(R"({"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]})")
                  .message.find("user or assistant turn"),
              std::string::npos);
    // ... while one system turn beside a user turn is what Claude Code sends.
    EXPECT_EQ(parse_ok(R"({"model":"m","max_tokens":1,"messages":[{"role":"system","content":"env"},
        {"role":"user","content":"x"}]})")
                  .conversation_messages,
              1u);
    // count_tokens takes no max_tokens
    EXPECT_EQ(parse_ok(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", true).max_tokens,
              std::nullopt);
}

TEST(AnthropicWire, ErrorObjectsAndStatuses) {
    const auto body =
        json::parse(anthropic_error_json({.code = 401, .message = "invalid API key"})).as_object();
    EXPECT_EQ(body.at("type"), "error");
    EXPECT_EQ(body.at("error").at("type"), "authentication_error");
    EXPECT_EQ(body.at("error").at("message"), "invalid API key");
    auto type_of = [](int code) {
        return std::string(
            json::parse(anthropic_error_json({.code = code})).at("error").at("type").as_string());
    };
    EXPECT_EQ(type_of(400), "invalid_request_error");
    EXPECT_EQ(type_of(403), "permission_error");
    EXPECT_EQ(type_of(404), "not_found_error");
    EXPECT_EQ(type_of(429), "rate_limit_error");
    EXPECT_EQ(type_of(500), "api_error");
    EXPECT_EQ(type_of(503), "overloaded_error");
    EXPECT_EQ(anthropic_error_status(503), 529);
    EXPECT_EQ(anthropic_error_status(429), 429);

    http_request request{boost::beast::http::verb::post, "/v1/messages", 11};
    const auto res =
        anthropic_error_response(request, {.code = 429, .message = "slow down", .retry_after_s = 7});
    EXPECT_EQ(res.result_int(), 429);
    EXPECT_EQ(res[boost::beast::http::field::retry_after], "7");
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
}

struct named_event {
    std::string name;
    json::object data;
};

// The events of one stream, each with its name and the JSON object of its data: line.
std::vector<named_event> stream_events(const sse_batch& events) {
    std::vector<named_event> out;
    std::string_view bytes = events.wire_bytes();
    for (;;) {
        const auto start = bytes.find("event: ");
        if (start == std::string_view::npos) break;
        const auto name_end = bytes.find('\n', start);
        const auto data = bytes.find("data: ", name_end);
        EXPECT_EQ(data, name_end + 1);  // the data line right after the event line
        const auto end = bytes.find("\n\n", data);
        out.push_back({std::string(bytes.substr(start + 7, name_end - start - 7)),
                       json::parse(bytes.substr(data + 6, end - data - 6)).as_object()});
        bytes.remove_prefix(end);
    }
    return out;
}

std::vector<std::string> names(const std::vector<named_event>& events) {
    std::vector<std::string> out;
    for (const auto& event : events) {
        EXPECT_EQ(std::string(event.data.at("type").as_string()), event.name);  // named by its type
        out.push_back(event.name);
    }
    return out;
}

TEST(AnthropicWire, StreamsThinkingTextAndToolUseAsAnthropicDoes) {
    auto format = make_anthropic_messages_wire_format("claude-x", 42);
    EXPECT_FALSE(format->done_marker());
    const stream_identity who{.model = "cloud"};
    sse_batch events;
    stream_outcome out;
    const std::vector<stream_chunk> chunks{stream_chunk::reasoning("hmm, "),
                                           stream_chunk::reasoning("ok"),
                                           stream_chunk::reasoning({}, "sig-1"),
                                           stream_chunk::delta("Let me "),
                                           stream_chunk::delta("check."),
                                           stream_chunk::tool_call_start(0, "toolu_a", "get_weather"),
                                           stream_chunk::tool_call_delta(0, R"({"city":)"),
                                           stream_chunk::tool_call_delta(0, R"("Paris"})"),
                                           stream_chunk::tool_call_start(1, "toolu_b", "get_time"),
                                           stream_chunk::tool_call_delta(1, "{}")};
    for (const auto& chunk : chunks) {
        out.take_content(chunk);
        format->content(events, who, chunk, out);
    }
    out.finish_reason = "tool_calls";
    out.prompt_tokens = 30;
    out.cached_tokens = 10;
    out.cache_write_tokens = 5;
    out.completion_tokens = 9;
    format->final(events, who, out);
    const auto stream = stream_events(events);
    EXPECT_EQ(names(stream),
              (std::vector<std::string>{
                  "message_start", "content_block_start", "content_block_delta", "content_block_delta",
                  "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
                  "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
                  "content_block_delta", "content_block_stop", "content_block_start", "content_block_delta",
                  "content_block_stop", "message_delta", "message_stop"}));
    const auto& message = stream[0].data.at("message").as_object();
    EXPECT_EQ(message.at("model"), "claude-x");
    EXPECT_EQ(message.at("role"), "assistant");
    EXPECT_TRUE(message.at("content").as_array().empty());
    EXPECT_EQ(message.at("usage").at("input_tokens"), 42);
    EXPECT_TRUE(std::string(message.at("id").as_string()).starts_with("msg_"));

    EXPECT_EQ(stream[1].data.at("index"), 0);
    EXPECT_EQ(stream[1].data.at("content_block").at("type"), "thinking");
    EXPECT_EQ(stream[2].data.at("delta"), json::parse(R"({"type":"thinking_delta","thinking":"hmm, "})"));
    EXPECT_EQ(stream[4].data.at("delta"), json::parse(R"({"type":"signature_delta","signature":"sig-1"})"));
    EXPECT_EQ(stream[5].data.at("index"), 0);
    EXPECT_EQ(stream[6].data.at("index"), 1);
    EXPECT_EQ(stream[6].data.at("content_block"), json::parse(R"({"type":"text","text":""})"));
    EXPECT_EQ(stream[7].data.at("delta"), json::parse(R"({"type":"text_delta","text":"Let me "})"));
    EXPECT_EQ(stream[10].data.at("index"), 2);
    EXPECT_EQ(stream[10].data.at("content_block"),
              json::parse(R"({"type":"tool_use","id":"toolu_a","name":"get_weather","input":{}})"));
    EXPECT_EQ(stream[11].data.at("delta"),
              json::parse(R"({"type":"input_json_delta","partial_json":"{\"city\":"})"));
    EXPECT_EQ(stream[11].data.at("index"), 2);
    EXPECT_EQ(stream[14].data.at("index"), 3);
    EXPECT_EQ(stream[15].data.at("index"), 3);
    EXPECT_EQ(stream[16].data.at("index"), 3);
    const auto& delta = stream[17].data;
    EXPECT_EQ(delta.at("delta").at("stop_reason"), "tool_use");
    EXPECT_TRUE(delta.at("delta").at("stop_sequence").is_null());
    EXPECT_EQ(delta.at("usage").at("output_tokens"), 9);
    EXPECT_EQ(delta.at("usage").at("input_tokens"), 15);
    EXPECT_EQ(delta.at("usage").at("cache_read_input_tokens"), 10);
    EXPECT_EQ(delta.at("usage").at("cache_creation_input_tokens"), 5);

    const auto whole = json::parse(format->whole(who, out)).as_object();
    EXPECT_EQ(whole.at("type"), "message");
    EXPECT_EQ(whole.at("stop_reason"), "tool_use");
    const auto& content = whole.at("content").as_array();
    ASSERT_EQ(content.size(), 4u);
    EXPECT_EQ(content[0], json::parse(R"({"type":"thinking","thinking":"hmm, ok","signature":"sig-1"})"));
    EXPECT_EQ(content[1], json::parse(R"({"type":"text","text":"Let me check."})"));
    EXPECT_EQ(content[2].at("input"), json::parse(R"({"city":"Paris"})"));
    EXPECT_EQ(content[3].at("name"), "get_time");
}

TEST(AnthropicWire, PingOpensTheMessageAndAnEmptyAnswerStillEndsWell) {
    auto format = make_anthropic_messages_wire_format("m", 0);
    const stream_identity who{};
    sse_batch events;
    format->ping(events);
    format->ping(events);
    stream_outcome out;
    out.finish_reason = "length";
    format->final(events, who, out);
    const auto stream = stream_events(events);
    EXPECT_EQ(names(stream),
              (std::vector<std::string>{"message_start", "ping", "ping", "message_delta", "message_stop"}));
    EXPECT_EQ(stream[3].data.at("delta").at("stop_reason"), "max_tokens");
}

TEST(AnthropicWire, ErrorEventsAfterTheFirstFrame) {
    auto format = make_anthropic_messages_wire_format("m", 0);
    sse_batch events;
    format->error_events(events, {.code = 503, .message = "busy"}, {});
    format->error_events(events, {.code = 502, .message = "upstream broke"}, {});
    const auto stream = stream_events(events);
    ASSERT_EQ(stream.size(), 2u);
    EXPECT_EQ(stream[0].name, "error");
    EXPECT_EQ(stream[0].data.at("error").at("type"), "overloaded_error");
    EXPECT_EQ(stream[1].data.at("error").at("type"), "api_error");
    EXPECT_EQ(stream[1].data.at("error").at("message"), "upstream broke");
}

TEST(ModelNames, GlobsRolesNamesAndAliases) {
    EXPECT_TRUE(glob_match("claude-*", "claude-sonnet-4-5"));
    EXPECT_TRUE(glob_match("*haiku*", "claude-3-5-HAIKU-20241022"));
    EXPECT_TRUE(glob_match("gpt-?", "gpt-5"));
    EXPECT_FALSE(glob_match("gpt-?", "gpt-55"));
    EXPECT_FALSE(glob_match("claude-*", "gpt-4o"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
    EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));

    const auto cfg = parse_config(R"toml(
[[models]]
name = "small"
role = "local_small"
provider = "llama"
aliases = ["*haiku*"]
[[models]]
name = "big"
role = "cloud_large"
provider = "openai"
base_url = "http://127.0.0.1:1/v1"
aliases = ["claude-*", "gpt-*"]
)toml");
    EXPECT_EQ(resolve_model_name(cfg, "auto")->model_type, "auto");
    EXPECT_EQ(resolve_model_name(cfg, "cloud_large")->model_type, "cloud_large");
    EXPECT_EQ(resolve_model_name(cfg, "big")->preferred_model, "big");
    EXPECT_EQ(resolve_model_name(cfg, "claude-3-5-haiku-latest")->preferred_model, "small");  // first match
    EXPECT_EQ(resolve_model_name(cfg, "claude-opus-4")->preferred_model, "big");
    EXPECT_FALSE(resolve_model_name(cfg, "llama3"));
    const auto known = known_model_names(cfg);
    EXPECT_NE(known.find("big"), std::string::npos);
    EXPECT_NE(known.find("claude-*"), std::string::npos);
}

TEST(ModelNames, AliasesAreValidated) {
    EXPECT_THROW(
        parse_config(
            "[[models]]\nname = \"a\"\nrole = \"local_small\"\nprovider = \"llama\"\naliases = \"x\"\n"),
        config_error);
    EXPECT_THROW(
        parse_config(
            "[[models]]\nname = \"a\"\nrole = \"local_small\"\nprovider = \"llama\"\naliases = [\"\"]\n"),
        config_error);
    EXPECT_THROW(
        parse_config(
            "[[models]]\nname = \"a\"\nrole = \"local_small\"\nprovider = \"llama\"\naliases = [\"auto\"]\n"),
        config_error);
    const auto cfg = parse_config("[[models]]\nname = \"a\"\nrole = \"local_small\"\nprovider = \"llama\"\n",
                                  {{"SLUICE_MODELS_A_ALIASES", "claude-*,*haiku*"}});
    EXPECT_EQ(cfg.models[0].aliases, (std::vector<std::string>{"claude-*", "*haiku*"}));
}

}  // namespace
}  // namespace sluice
