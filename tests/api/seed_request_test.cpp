// The validation table of POST /api/v1/chat/stream (SPEC §3): every field, both sides of every
// bound, wrong JSON types, invalid UTF-8, empty and non-object bodies.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "api/seed_request.h"

namespace sluice {
namespace {

std::vector<model_config> models() {
    model_config local{.name = "local", .role = model_role::local_small, .provider = "llama"};
    local.n_ctx = 4096;
    model_config cloud{.name = "cloud", .role = model_role::cloud_large, .provider = "openai"};
    cloud.max_tokens_limit = 8000;
    return {local, cloud};
}

seed_request ok(const std::string& body) {
    auto result = parse_seed_request(body, models());
    if (auto* error = std::get_if<api_error>(&result)) ADD_FAILURE() << body << " -> " << error->message;
    return std::holds_alternative<seed_request>(result) ? std::get<seed_request>(result) : seed_request{};
}

api_error fails(const std::string& body) {
    auto result = parse_seed_request(body, models());
    if (std::holds_alternative<seed_request>(result)) {
        ADD_FAILURE() << body << " was accepted";
        return {};
    }
    return std::get<api_error>(result);
}

TEST(seed_request, minimal_body_takes_the_defaults) {
    auto r = ok(R"({"message":"hi"})");
    EXPECT_EQ(r.message, "hi");
    EXPECT_FALSE(r.session_id);
    EXPECT_FALSE(r.max_tokens);
    EXPECT_FALSE(r.temperature);
    EXPECT_FALSE(r.model_type);
    EXPECT_FALSE(r.preferred_model);
    EXPECT_FALSE(r.stream);
}

TEST(seed_request, every_field_is_read) {
    auto r = ok(R"({"message":"hi","session_id":"a_b.c:d-1","max_tokens":10,"temperature":1.5,)"
                R"("model_type":"cloud_large","preferred_model":"cloud","stream":true,"extra":{"x":[1]}})");
    EXPECT_EQ(r.session_id, "a_b.c:d-1");
    EXPECT_EQ(r.max_tokens, 10);
    EXPECT_EQ(r.temperature, 1.5);
    EXPECT_EQ(r.model_type, "cloud_large");
    EXPECT_EQ(r.preferred_model, "cloud");
    EXPECT_TRUE(r.stream);
}

TEST(seed_request, body_must_be_a_json_object) {
    EXPECT_EQ(fails("").code, 400);
    EXPECT_EQ(fails("  \n").message, "request body is empty");
    EXPECT_EQ(fails("{").code, 400);
    EXPECT_EQ(fails(R"({"message":"hi"} x)").code, 400);
    EXPECT_EQ(fails("[]").message, "request body must be a JSON object");
    EXPECT_EQ(fails(R"("hi")").code, 400);
    EXPECT_EQ(fails("null").code, 400);
}

TEST(seed_request, message_is_required_non_empty_valid_utf8) {
    EXPECT_EQ(fails("{}").message, "message is required");
    EXPECT_EQ(fails(R"({"message":null})").message, "message is required");
    EXPECT_EQ(fails(R"({"message":""})").message, "message must not be empty");
    EXPECT_EQ(fails(R"({"message":5})").message, "message must be a string");
    EXPECT_EQ(fails(R"({"message":["hi"]})").code, 400);
    EXPECT_EQ(fails("{\"message\":\"\xff\"}").message, "message must be valid UTF-8");
    EXPECT_EQ(fails("{\"message\":\"\xc3\"}").message, "message must be valid UTF-8");          // truncated
    EXPECT_EQ(fails("{\"message\":\"\xc0\xaf\"}").message, "message must be valid UTF-8");      // overlong
    EXPECT_EQ(fails("{\"message\":\"\xed\xa0\x80\"}").message, "message must be valid UTF-8");  // surrogate
    EXPECT_EQ(ok("{\"message\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}").message,
              "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT_EQ(ok(R"({"message":"\u00e9"})").message, "\xc3\xa9");
    EXPECT_EQ(ok(R"({"message":" "})").message, " ");
}

TEST(seed_request, session_id_pattern_and_length) {
    EXPECT_EQ(ok(R"({"message":"m","session_id":"a"})").session_id, "a");
    EXPECT_EQ(ok(R"({"message":"m","session_id":")" + std::string(128, 'x') + R"("})").session_id,
              std::string(128, 'x'));
    EXPECT_EQ(fails(R"({"message":"m","session_id":")" + std::string(129, 'x') + R"("})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","session_id":""})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","session_id":"a b"})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","session_id":"a/b"})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","session_id":7})").message, "session_id must be a string");
    EXPECT_FALSE(ok(R"({"message":"m","session_id":null})").session_id);
}

TEST(seed_request, max_tokens_is_an_integer_from_1_to_the_model_limit) {
    EXPECT_EQ(ok(R"({"message":"m","max_tokens":1})").max_tokens, 1);
    EXPECT_EQ(ok(R"({"message":"m","max_tokens":8000})").max_tokens, 8000);  // the largest model limit
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":8001})").message, "max_tokens must be between 1 and 8000");
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":0})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":-1})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":18446744073709551615})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":1.5})").message, "max_tokens must be an integer");
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":"10"})").message, "max_tokens must be an integer");
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":true})").code, 400);
    // The bound follows the models the request can reach.
    EXPECT_EQ(ok(R"({"message":"m","max_tokens":4096,"model_type":"local_small"})").max_tokens, 4096);
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":4097,"model_type":"local_small"})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","max_tokens":4097,"preferred_model":"local"})").code, 400);
    EXPECT_EQ(ok(R"({"message":"m","max_tokens":8000,"preferred_model":"cloud"})").max_tokens, 8000);
}

TEST(seed_request, temperature_is_a_number_from_0_to_2) {
    EXPECT_EQ(ok(R"({"message":"m","temperature":0})").temperature, 0.0);
    EXPECT_EQ(ok(R"({"message":"m","temperature":2})").temperature, 2.0);
    EXPECT_EQ(ok(R"({"message":"m","temperature":0.7})").temperature, 0.7);
    EXPECT_EQ(fails(R"({"message":"m","temperature":-0.001})").message,
              "temperature must be between 0 and 2");
    EXPECT_EQ(fails(R"({"message":"m","temperature":2.001})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","temperature":"1"})").message, "temperature must be a number");
    EXPECT_EQ(fails(R"({"message":"m","temperature":false})").code, 400);
}

TEST(seed_request, model_type_is_one_of_three) {
    EXPECT_EQ(ok(R"({"message":"m","model_type":"auto"})").model_type, "auto");
    EXPECT_EQ(ok(R"({"message":"m","model_type":"local_small"})").model_type, "local_small");
    EXPECT_EQ(ok(R"({"message":"m","model_type":"cloud_large"})").model_type, "cloud_large");
    EXPECT_EQ(fails(R"({"message":"m","model_type":"large"})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","model_type":"AUTO"})").code, 400);
    EXPECT_EQ(fails(R"({"message":"m","model_type":1})").message, "model_type must be a string");
}

TEST(seed_request, preferred_model_names_a_configured_model) {
    EXPECT_EQ(ok(R"({"message":"m","preferred_model":"local"})").preferred_model, "local");
    auto unknown = fails(R"({"message":"m","preferred_model":"gpt-9"})");
    EXPECT_EQ(unknown.code, 404);
    EXPECT_EQ(unknown.message, "preferred_model 'gpt-9' is not a configured model");
    EXPECT_EQ(fails(R"({"message":"m","preferred_model":["local"]})").code, 400);
    // A long name is not echoed back whole.
    auto longer = fails(R"({"message":"m","preferred_model":")" + std::string(500, 'z') + R"("})");
    EXPECT_LT(longer.message.size(), 120u);
}

TEST(seed_request, stream_must_be_boolean_and_is_otherwise_ignored) {
    EXPECT_TRUE(ok(R"({"message":"m","stream":true})").stream);
    EXPECT_FALSE(ok(R"({"message":"m","stream":false})").stream);
    EXPECT_EQ(fails(R"({"message":"m","stream":"yes"})").message, "stream must be a boolean");
    EXPECT_EQ(fails(R"({"message":"m","stream":1})").code, 400);
}

TEST(seed_request, unknown_fields_are_ignored) {
    EXPECT_EQ(ok(R"({"message":"m","foo":1,"bar":{"baz":null},"model":"x"})").message, "m");
}

TEST(seed_request, body_requests_stream) {
    EXPECT_TRUE(body_requests_stream(R"({"message":"m","stream":true})"));
    EXPECT_FALSE(body_requests_stream(R"({"message":"m","stream":false})"));
    EXPECT_FALSE(body_requests_stream(R"({"message":"m"})"));
    EXPECT_FALSE(body_requests_stream("not json"));
}

TEST(seed_request, token_limits_per_model) {
    auto m = models();
    EXPECT_EQ(model_token_limit(m[0]), 4096);
    EXPECT_EQ(model_token_limit(m[1]), 8000);
    model_config cloud{.name = "c", .role = model_role::cloud_large, .provider = "openai"};
    EXPECT_EQ(model_token_limit(cloud), 128000);
}

}  // namespace
}  // namespace sluice
