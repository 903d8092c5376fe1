// The OpenAI wire format: what the official SDKs send is accepted, what OpenAI rejects is a 400 that
// names the field, and the objects sluice sends have OpenAI's exact shape.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/openai_compat.h"

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
    EXPECT_EQ(request.user, "u1");
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
        {R"({"messages":[{"role":"tool","content":"x"}]})", "role"},
        {R"({"messages":[{"role":"user"}]})", "content"},
        {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})", "text parts"},
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

}  // namespace
}  // namespace sluice
