// The OpenAI wire format: what the official SDKs send is accepted, what OpenAI rejects is a 400 that
// names the field, and the objects sluice sends have OpenAI's exact shape.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/openai_chat.h"

namespace sluice {
namespace {

namespace json = boost::json;

openai_chat_request parse_ok(std::string_view body) {
    auto parsed = parse_openai_chat_request(body);
    if (auto* error = std::get_if<api_error>(&parsed)) ADD_FAILURE() << body << " -> " << error->message;
    return std::get<openai_chat_request>(std::move(parsed));
}

api_error parse_error(std::string_view body) {
    auto parsed = parse_openai_chat_request(body);
    EXPECT_TRUE(std::holds_alternative<api_error>(parsed)) << body;
    return std::holds_alternative<api_error>(parsed) ? std::get<api_error>(parsed) : api_error{};
}

TEST(OpenaiRequest, TakesEveryFieldTheSdkSends) {
    auto request = parse_ok(R"({"model":"gpt-4o-mini","messages":[
        {"role":"developer","content":"be brief"},{"role":"user","content":"hi"},
        {"role":"assistant","content":"hello"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
        "stream":true,"stream_options":{"include_usage":true},"max_tokens":10,"max_completion_tokens":20,
        "temperature":0.5,"top_p":0.9,"stop":["\n\n","END"],"seed":42,"user":"u1","n":1,"tools":null})");
    ASSERT_EQ(request.messages.size(), 4u);
    EXPECT_EQ(request.messages[0].role, "system");
    EXPECT_EQ(request.messages[3].content, "a\nb");
    EXPECT_EQ(request.model, "gpt-4o-mini");
    EXPECT_TRUE(request.stream);
    EXPECT_TRUE(request.include_usage);
    EXPECT_EQ(request.max_tokens, 20);
    EXPECT_DOUBLE_EQ(*request.temperature, 0.5);
    EXPECT_DOUBLE_EQ(*request.top_p, 0.9);
    EXPECT_EQ(request.stop, (std::vector<std::string>{"\n\n", "END"}));
    EXPECT_EQ(request.seed, 42u);
    // Not interpreted: forwarded as it came.
    EXPECT_EQ(json::parse(request.extra), json::parse(R"({"user":"u1"})"));
}

TEST(OpenaiRequest, DefaultsAndNullsCountAsAbsent) {
    auto request = parse_ok(
        R"({"messages":[{"role":"user","content":"hi"}],"stream":null,"stop":"x","temperature":null})");
    EXPECT_EQ(request.model, "auto");
    EXPECT_FALSE(request.stream);
    EXPECT_FALSE(request.include_usage);
    EXPECT_FALSE(request.max_tokens);
    EXPECT_FALSE(request.temperature);
    EXPECT_EQ(request.stop, std::vector<std::string>{"x"});
}

TEST(OpenaiRequest, RejectsWhatOpenaiRejects) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "JSON"},
        {"[]", "object"},
        {R"({"model":"x"})", "messages"},
        {R"({"messages":[]})", "messages"},
        {R"({"messages":[{"role":"tool","content":"x"}]})", "tool_call_id"},
        {R"({"messages":[{"role":"function","content":"x"}]})", "role"},
        {R"({"messages":[{"role":"user"}]})", "content"},
        {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})", "url"},
        {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]})",
         "http(s) or data:"},
        {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]})",
         "base64"},
        {R"({"messages":[{"role":"user","content":[{"type":"input_audio"}]}]})", "input_audio"},
        {R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","function":{}}]}]})",
         "function.name"},
        {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]})", "function"},
        {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],
            "tool_choice":{"type":"function","function":{"name":"b"}}})",
         "does not offer"},
        {R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"})", "tool_choice"},
        {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}})",
         "response_format"},
        {R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n must be 1"},
        {R"({"messages":[{"role":"user","content":"x"}],"temperature":2.5})", "temperature"},
        {R"({"messages":[{"role":"user","content":"x"}],"top_p":-1})", "top_p"},
        {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens"},
        {R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":"9"})",
         "max_completion_tokens"},
        {R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", "stop"},
        {R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
        {R"({"messages":[{"role":"user","content":"x"}],"seed":1.5})", "seed"},
        {R"({"messages":[{"role":"user","content":"x"}],"model":7})", "model"},
    };
    for (const auto& [body, word] : cases) {
        const auto error = parse_error(body);
        EXPECT_EQ(error.code, 400) << body;
        EXPECT_NE(error.message.find(word), std::string::npos) << body << " -> " << error.message;
    }
}

TEST(OpenaiWire, ErrorObjectHasMessageTypeAndCode) {
    auto error = json::parse(openai_error_json({.code = 401, .message = "bad key"})).as_object();
    const auto& inner = error.at("error").as_object();
    EXPECT_EQ(inner.at("message"), "bad key");
    EXPECT_EQ(inner.at("type"), "invalid_request_error");
    EXPECT_EQ(inner.at("code"), "invalid_api_key");
    EXPECT_TRUE(inner.at("param").is_null());

    http_request request{http_verb::post, "/v1/chat/completions", 11};
    auto res = openai_error_response(request, {.code = 429, .message = "slow down", .retry_after_s = 7});
    EXPECT_EQ(res.result_int(), 429u);
    EXPECT_EQ(res[boost::beast::http::field::retry_after], "7");
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
}

TEST(OpenaiWire, ChunksHaveOpenaisShape) {
    const openai_stream_ids ids{.id = "chatcmpl-1", .created = 1700000000};
    auto role = json::parse(openai_role_chunk(ids, "local", false)).as_object();
    EXPECT_EQ(role.at("object"), "chat.completion.chunk");
    EXPECT_EQ(role.at("id"), "chatcmpl-1");
    EXPECT_EQ(role.at("created"), 1700000000);
    EXPECT_EQ(role.at("model"), "local");
    EXPECT_FALSE(role.contains("usage"));
    const auto& choice = role.at("choices").as_array().at(0).as_object();
    EXPECT_EQ(choice.at("index"), 0);
    EXPECT_EQ(choice.at("delta").at("role"), "assistant");
    EXPECT_TRUE(choice.at("finish_reason").is_null());

    auto content = json::parse(openai_content_chunk(ids, "local", "Hel", true)).as_object();
    EXPECT_EQ(content.at("choices").at(0).at("delta").as_object(), (json::object{{"content", "Hel"}}));
    EXPECT_TRUE(content.at("usage").is_null());

    auto finish = json::parse(openai_finish_chunk(ids, "local", "length", false)).as_object();
    EXPECT_EQ(finish.at("choices").at(0).at("finish_reason"), "length");
    EXPECT_TRUE(finish.at("choices").at(0).at("delta").as_object().empty());

    auto usage = json::parse(openai_usage_chunk(ids, "local", 3, 4)).as_object();
    EXPECT_TRUE(usage.at("choices").as_array().empty());
    EXPECT_EQ(usage.at("usage").at("total_tokens"), 7);
}

// The chunks as json::serialize wrote them before they were built by hand: the bytes must not move.
std::string reference_chunk(const openai_stream_ids& ids, std::string_view model, json::object delta,
                            const json::value& finish_reason, bool include_usage) {
    json::object chunk{{"id", ids.id},
                       {"object", "chat.completion.chunk"},
                       {"created", ids.created},
                       {"model", model},
                       {"system_fingerprint", nullptr}};
    if (include_usage) chunk["usage"] = nullptr;
    chunk["choices"] = json::array{json::object{
        {"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}};
    return json::serialize(chunk);
}

TEST(OpenaiWire, HandBuiltChunksAreByteIdenticalToSerializedObjects) {
    const std::vector<std::string> texts{"",
                                         "Hel",
                                         "a \"quote\" and \\ back",
                                         "line\nbreak\ttab",
                                         std::string("nul\0byte", 8),
                                         "\x01\x1f\x7f",
                                         "h\xC3\xA9 \xF0\x9F\x98\x80",
                                         "</script>",
                                         std::string(300, 'x')};
    const std::vector<openai_stream_ids> all_ids{{.id = "chatcmpl-abc", .created = 1700000000},
                                                 {.id = "chatcmpl-\"odd\"", .created = -5}};
    for (const auto& ids : all_ids) {
        for (bool usage : {false, true}) {
            for (const auto& model : texts) {
                EXPECT_EQ(openai_role_chunk(ids, model, usage),
                          reference_chunk(
                              ids, model,
                              json::object{{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}},
                              nullptr, usage));
                EXPECT_EQ(openai_finish_chunk(ids, model, "length", usage),
                          reference_chunk(ids, model, json::object{}, json::string("length"), usage));
                for (const auto& text : texts) {
                    EXPECT_EQ(openai_content_chunk(ids, model, text, usage),
                              reference_chunk(ids, model, json::object{{"content", text}}, nullptr, usage));
                }
            }
        }
    }
    std::string appended = "data: ";
    append_openai_content_chunk(appended, all_ids[0], "gpt", "Hi", false);
    EXPECT_EQ(appended, "data: " + openai_content_chunk(all_ids[0], "gpt", "Hi", false));
}

TEST(OpenaiWire, CompletionAndModelList) {
    auto completion =
        json::parse(openai_completion_json({.id = "chatcmpl-2", .created = 5}, "gpt", "Hello", "stop", 1, 2))
            .as_object();
    EXPECT_EQ(completion.at("object"), "chat.completion");
    EXPECT_EQ(completion.at("choices").at(0).at("message").at("content"), "Hello");
    EXPECT_EQ(completion.at("choices").at(0).at("message").at("role"), "assistant");
    EXPECT_EQ(completion.at("usage").at("total_tokens"), 3);

    config cfg;
    cfg.models.push_back({.name = "local", .role = model_role::local_small, .provider = "llama"});
    auto list = json::parse(openai_models_json(cfg)).as_object();
    EXPECT_EQ(list.at("object"), "list");
    std::vector<std::string> ids;
    for (const auto& model : list.at("data").as_array()) {
        EXPECT_EQ(model.at("object"), "model");
        ids.emplace_back(model.at("id").as_string());
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"local", "auto", "local_small"}));
}

TEST(OpenaiRequest, ReadsToolsImagesAndToolTurns) {
    auto request = parse_ok(R"({"model":"gpt","messages":[
        {"role":"user","content":[{"type":"text","text":"what is here?"},
                                  {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},
                                  {"type":"image_url","image_url":{"url":"https://x.test/a.jpg","detail":"low"}}]},
        {"role":"assistant","content":null,"tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"sunny"},
        {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"noon"}]}],
        "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
                  "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
                 {"type":"function","function":{"name":"get_time"}}],
        "tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false,
        "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}},
        "reasoning_effort":"low","logprobs":true,"metadata":{"a":"b"}})");
    ASSERT_EQ(request.messages.size(), 4u);
    const auto& user = request.messages[0];
    EXPECT_EQ(user.content, "what is here?");
    ASSERT_EQ(user.parts.size(), 3u);
    EXPECT_EQ(user.parts[1].type, content_part::kind::image);
    EXPECT_EQ(user.parts[1].media_type, "image/png");
    EXPECT_EQ(user.parts[1].text, "iVBOR");
    EXPECT_EQ(user.parts[2].text, "https://x.test/a.jpg");
    EXPECT_TRUE(user.parts[2].media_type.empty());
    const auto& assistant = request.messages[1];
    ASSERT_EQ(assistant.parts.size(), 2u);
    EXPECT_EQ(assistant.parts[0].type, content_part::kind::tool_call);
    EXPECT_EQ(assistant.parts[0].id, "call_1");
    EXPECT_EQ(assistant.parts[0].name, "get_weather");
    EXPECT_EQ(assistant.parts[0].arguments, R"({"city":"Paris"})");
    EXPECT_EQ(request.messages[2].role, "tool");
    ASSERT_EQ(request.messages[2].parts.size(), 1u);
    EXPECT_EQ(request.messages[2].parts[0].type, content_part::kind::tool_result);
    EXPECT_EQ(request.messages[2].parts[0].id, "call_1");
    EXPECT_EQ(request.messages[2].parts[0].text, "sunny");
    EXPECT_EQ(request.messages[3].parts[0].text, "noon");
    ASSERT_EQ(request.tools.size(), 2u);
    EXPECT_EQ(request.tools[0].description, "d");
    EXPECT_EQ(json::parse(request.tools[0].parameters).at("properties").at("city").at("type"), "string");
    EXPECT_EQ(json::parse(request.tools[1].parameters).at("type"), "object");
    EXPECT_EQ(request.tools_choice.type, tool_choice::mode::named);
    EXPECT_EQ(request.tools_choice.name, "get_weather");
    EXPECT_EQ(request.parallel_tool_calls, false);
    EXPECT_EQ(request.format.type, response_format::kind::json_schema);
    EXPECT_EQ(request.format.name, "w");
    EXPECT_TRUE(request.format.strict);
    EXPECT_EQ(json::parse(request.extra),
              json::parse(R"({"reasoning_effort":"low","logprobs":true,"metadata":{"a":"b"}})"));
}

// The chunks of one stream, each as the JSON object of its data: line.
std::vector<json::object> stream_objects(const sse_batch& events) {
    std::vector<json::object> out;
    std::string_view bytes = events.wire_bytes();
    for (;;) {
        const auto start = bytes.find("data: ");
        if (start == std::string_view::npos) break;
        const auto end = bytes.find("\n\n", start);
        out.push_back(json::parse(bytes.substr(start + 6, end - start - 6)).as_object());
        bytes.remove_prefix(end);
    }
    return out;
}

TEST(OpenaiWire, StreamsToolCallsAsOpenaiDoes) {
    auto format = make_openai_chat_wire_format(true);
    const stream_identity who{.model = "gpt"};
    sse_batch events;
    stream_outcome out;
    const std::vector<stream_chunk> chunks{stream_chunk::delta("Let me check."),
                                           stream_chunk::tool_call_start(0, "call_a", "get_weather"),
                                           stream_chunk::tool_call_delta(0, R"({"city":)"),
                                           stream_chunk::tool_call_delta(0, R"("Paris"})"),
                                           stream_chunk::tool_call_start(1, "call_b", "get_time"),
                                           stream_chunk::tool_call_delta(1, "{}")};
    for (const auto& chunk : chunks) {
        out.take_content(chunk);
        format->content(events, who, chunk, out);
    }
    out.finish_reason = "tool_calls";
    out.prompt_tokens = 3;
    out.completion_tokens = 9;
    format->final(events, who, out);
    const auto objects = stream_objects(events);
    ASSERT_EQ(objects.size(), 9u);
    EXPECT_EQ(objects[0].at("choices").at(0).at("delta").at("role"), "assistant");
    EXPECT_EQ(objects[1].at("choices").at(0).at("delta").at("content"), "Let me check.");
    const auto& first = objects[2].at("choices").at(0).at("delta").at("tool_calls").at(0).as_object();
    EXPECT_EQ(first.at("index"), 0);
    EXPECT_EQ(first.at("id"), "call_a");
    EXPECT_EQ(first.at("type"), "function");
    EXPECT_EQ(first.at("function").at("name"), "get_weather");
    EXPECT_EQ(first.at("function").at("arguments"), "");
    const auto& fragment = objects[3].at("choices").at(0).at("delta").at("tool_calls").at(0).as_object();
    EXPECT_EQ(fragment.at("index"), 0);
    EXPECT_FALSE(fragment.contains("id"));
    EXPECT_FALSE(fragment.at("function").as_object().contains("name"));
    EXPECT_EQ(fragment.at("function").at("arguments"), R"({"city":)");
    EXPECT_EQ(objects[5].at("choices").at(0).at("delta").at("tool_calls").at(0).at("index"), 1);
    EXPECT_EQ(objects[7].at("choices").at(0).at("finish_reason"), "tool_calls");
    EXPECT_EQ(objects[8].at("usage").at("total_tokens"), 12);
    for (const auto& object : objects) EXPECT_EQ(object.at("object"), "chat.completion.chunk");

    const auto whole = json::parse(format->whole(who, out)).as_object();
    const auto& message = whole.at("choices").at(0).at("message").as_object();
    EXPECT_EQ(message.at("content"), "Let me check.");
    ASSERT_EQ(message.at("tool_calls").as_array().size(), 2u);
    EXPECT_EQ(message.at("tool_calls").at(0).at("function").at("arguments"), R"({"city":"Paris"})");
    EXPECT_EQ(whole.at("choices").at(0).at("finish_reason"), "tool_calls");
}

TEST(OpenaiWire, AnAnswerOfOnlyToolCallsHasNullContent) {
    stream_outcome out;
    out.take_content(stream_chunk::tool_call_start(0, "call_a", "f"));
    out.take_content(stream_chunk::tool_call_delta(0, "{}"));
    const auto whole = json::parse(openai_completion_json({.id = "c", .created = 1}, "gpt", out.text,
                                                          "tool_calls", 1, 1, out.tool_calls))
                           .as_object();
    EXPECT_TRUE(whole.at("choices").at(0).at("message").at("content").is_null());
}

}  // namespace
}  // namespace sluice
