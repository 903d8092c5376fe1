// The Responses API wire: what Codex, the Agents SDK and the AI SDK send is read (tools and items
// sluice cannot use are dropped, never refused), and the stream's events have OpenAI's order, ids,
// indexes and sequence numbers, with a usage object that is always whole.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/responses.h"

namespace sluice {
namespace {

namespace json = boost::json;

responses_request parse_ok(std::string_view body) {
    auto parsed = parse_responses_request(body);
    if (auto* error = std::get_if<api_error>(&parsed)) ADD_FAILURE() << body << " -> " << error->message;
    return std::get<responses_request>(std::move(parsed));
}

api_error parse_error(std::string_view body) {
    auto parsed = parse_responses_request(body);
    EXPECT_TRUE(std::holds_alternative<api_error>(parsed)) << body;
    return std::holds_alternative<api_error>(parsed) ? std::get<api_error>(parsed) : api_error{};
}

TEST(ResponsesRequest, AStringInputIsOneUserMessageAfterTheInstructions) {
    auto request = parse_ok(R"({"model":"cloud","instructions":"be brief","input":"hi","max_output_tokens":64,
        "temperature":0.2,"top_p":0.5,"stream":true,"store":false,"metadata":{"a":"b"},"prompt_cache_key":"k",
        "include":["reasoning.encrypted_content"],"safety_identifier":"x","truncation":"auto"})");
    ASSERT_EQ(request.messages.size(), 2u);
    EXPECT_TRUE(request.has_instructions);
    EXPECT_EQ(request.messages[0].role, "system");
    EXPECT_EQ(request.messages[0].content, "be brief");
    EXPECT_EQ(request.messages[1].role, "user");
    EXPECT_EQ(request.messages[1].content, "hi");
    EXPECT_EQ(request.model, "cloud");
    EXPECT_TRUE(request.stream);
    EXPECT_FALSE(request.store);
    EXPECT_EQ(request.max_output_tokens, 64);
    EXPECT_DOUBLE_EQ(*request.temperature, 0.2);
    EXPECT_DOUBLE_EQ(*request.top_p, 0.5);
    EXPECT_EQ(request.echo.at("instructions"), "be brief");
    EXPECT_EQ(request.echo.at("metadata").at("a"), "b");
    EXPECT_EQ(request.echo.at("store"), false);
    const auto items = json::parse(request.input_items).as_array();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].at("type"), "message");
    EXPECT_EQ(items[0].at("role"), "user");
    EXPECT_EQ(items[0].at("content").at(0).at("text"), "hi");
    EXPECT_TRUE(items[0].at("id").as_string().starts_with("msg_"));
}

TEST(ResponsesRequest, DefaultsAndErrors) {
    auto request = parse_ok(R"({"input":[{"role":"user","content":"hi"}]})");
    EXPECT_EQ(request.model, "auto");
    EXPECT_TRUE(request.store);
    EXPECT_FALSE(request.stream);
    EXPECT_FALSE(request.max_output_tokens);
    EXPECT_TRUE(request.extra.empty());

    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "JSON"},
        {R"({"model":"x"})", "input"},
        {R"({"input":5})", "input"},
        {R"({"input":[]})", "at least one"},
        {R"({"input":"hi","max_output_tokens":0})", "max_output_tokens"},
        {R"({"input":"hi","temperature":3})", "temperature"},
        {R"({"input":"hi","stream":"yes"})", "stream"},
        {R"({"input":[{"role":"robot","content":"x"}]})", "role"},
        {R"({"input":[{"type":"function_call","name":"f"}]})", "call_id"},
        {R"({"input":"hi","tools":[{"type":"function"}]})", "tools[0].name"},
        {R"({"input":"hi","text":{"format":{"type":"xml"}}})", "text.format"},
    };
    for (const auto& [body, field] : cases) {
        const auto error = parse_error(body);
        EXPECT_EQ(error.code, 400) << body;
        EXPECT_NE(error.message.find(field), std::string::npos) << body << " -> " << error.message;
    }
}

// What Codex sends, shortened: a developer message, a user turn, the function tools it runs itself
// among tool types only OpenAI knows, reasoning, include, prompt_cache_key, and an earlier turn's
// call, output and reasoning.
TEST(ResponsesRequest, ACodexBodyKeepsFunctionToolsAndDropsTheOthers) {
    auto request = parse_ok(R"({"model":"auto","instructions":"You are Codex.","input":[
        {"type":"message","role":"developer","content":[{"type":"input_text","text":"sandbox: none"}]},
        {"type":"message","role":"user","content":[{"type":"input_text","text":"<env/>"},{"type":"input_text","text":"run it"}]},
        {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"I should run it"}],"encrypted_content":"gAAAA-openai"},
        {"type":"function_call","id":"fc_1","call_id":"call_1","name":"exec_command","arguments":"{\"cmd\":\"ls\"}"},
        {"type":"function_call_output","call_id":"call_1","output":"a.txt"},
        {"type":"custom_tool_call","call_id":"c2","name":"apply_patch","input":"*** Begin"},
        {"type":"web_search_call","id":"ws_1","status":"completed"}],
      "tools":[
        {"type":"function","name":"exec_command","description":"Runs a command","strict":false,
         "parameters":{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}},
        {"type":"custom","name":"apply_patch","format":{"type":"grammar","syntax":"lark","definition":"x"}},
        {"type":"web_search"},{"type":"local_shell"},{"type":"namespace","name":"mcp","tools":[]},
        {"type":"function","function":{"name":"chat_shaped","parameters":{"type":"object"}}}],
      "tool_choice":"auto","parallel_tool_calls":false,"reasoning":{"effort":"high","summary":"auto"},
      "store":false,"stream":true,"include":["reasoning.encrypted_content"],"prompt_cache_key":"conv-1",
      "text":{"verbosity":"medium"},"client_metadata":{"x":1}})");
    ASSERT_EQ(request.tools.size(), 2u);
    EXPECT_EQ(request.tools[0].name, "exec_command");
    EXPECT_EQ(request.tools[0].description, "Runs a command");
    EXPECT_EQ(json::parse(request.tools[0].parameters).at("required").at(0), "cmd");
    EXPECT_EQ(request.tools[1].name, "chat_shaped");
    EXPECT_EQ(request.echo.at("tools").as_array().size(), 2u);
    EXPECT_EQ(request.parallel_tool_calls, false);
    EXPECT_EQ(json::parse(request.extra), json::parse(R"({"reasoning_effort":"high"})"));
    EXPECT_EQ(request.echo.at("reasoning").at("effort"), "high");

    ASSERT_EQ(request.messages.size(), 5u);
    EXPECT_EQ(request.messages[0].content, "You are Codex.");
    EXPECT_EQ(request.messages[1].role, "system");  // developer
    EXPECT_EQ(request.messages[1].content, "sandbox: none");
    EXPECT_EQ(request.messages[2].role, "user");
    EXPECT_EQ(request.messages[2].content, "<env/>\nrun it");
    EXPECT_FALSE(request.messages[2].has_parts());
    const auto& call = request.messages[3];
    EXPECT_EQ(call.role, "assistant");
    // OpenAI's own encrypted reasoning is no signature any upstream behind sluice could check.
    ASSERT_EQ(call.parts.size(), 2u);
    EXPECT_EQ(call.parts[0].type, content_part::kind::reasoning);
    EXPECT_EQ(call.parts[0].text, "I should run it");
    EXPECT_TRUE(call.parts[0].signature.empty());
    EXPECT_EQ(call.parts[1].type, content_part::kind::tool_call);
    EXPECT_EQ(call.parts[1].id, "call_1");
    EXPECT_EQ(call.parts[1].name, "exec_command");
    EXPECT_EQ(call.parts[1].arguments, R"({"cmd":"ls"})");
    const auto& result = request.messages[4];
    EXPECT_EQ(result.role, "tool");
    ASSERT_EQ(result.parts.size(), 1u);
    EXPECT_EQ(result.parts[0].type, content_part::kind::tool_result);
    EXPECT_EQ(result.parts[0].id, "call_1");
    EXPECT_EQ(result.parts[0].text, "a.txt");
}

TEST(ResponsesRequest, ItemsBecomeOneAssistantTurnPerAnswer) {
    auto request = parse_ok(R"({"input":[
        {"role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"},
                                  {"type":"input_image","image_url":"https://example.test/a.jpg","detail":"auto"},
                                  {"type":"input_file","file_id":"file_1"}]},
        {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking both.","annotations":[]}]},
        {"type":"function_call","call_id":"c1","name":"a","arguments":"{}"},
        {"type":"function_call","call_id":"c2","name":"b","arguments":"{\"x\":1}"},
        {"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"one"},{"type":"input_text","text":"two"}]},
        {"type":"function_call_output","call_id":"c2","output":"three"},
        {"type":"item_reference","id":"msg_9"}],
      "tools":[{"type":"function","name":"a"},{"type":"function","name":"b"}],"tool_choice":{"type":"function","name":"b"},
      "text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},"strict":true}}})");
    ASSERT_EQ(request.messages.size(), 4u);
    const auto& user = request.messages[0];
    ASSERT_EQ(user.parts.size(), 3u);
    EXPECT_EQ(user.parts[1].type, content_part::kind::image);
    EXPECT_EQ(user.parts[1].media_type, "image/png");
    EXPECT_EQ(user.parts[1].text, "AAAA");
    EXPECT_EQ(user.parts[2].text, "https://example.test/a.jpg");
    const auto& answer = request.messages[1];
    EXPECT_EQ(answer.content, "Checking both.");
    ASSERT_EQ(answer.parts.size(), 3u);
    EXPECT_EQ(answer.parts[1].id, "c1");
    EXPECT_EQ(answer.parts[2].id, "c2");
    EXPECT_EQ(request.messages[2].parts[0].text, "one\ntwo");
    EXPECT_EQ(request.messages[3].content, "three");
    EXPECT_EQ(request.tools_choice.type, tool_choice::mode::named);
    EXPECT_EQ(request.tools_choice.name, "b");
    EXPECT_EQ(request.format.type, response_format::kind::json_schema);
    EXPECT_EQ(request.format.name, "w");
    EXPECT_TRUE(request.format.strict);
    const auto items = json::parse(request.input_items).as_array();
    EXPECT_EQ(items.size(), 7u);
    EXPECT_TRUE(items[2].at("id").as_string().starts_with("fc_"));
}

// The events of one stream, as (type, data object) pairs; checks that each `event:` line names the
// type its data carries.
std::vector<json::object> events_of(const sse_batch& events) {
    std::vector<json::object> out;
    std::string_view bytes = events.wire_bytes();
    for (;;) {
        const auto name_at = bytes.find("event: ");
        if (name_at == std::string_view::npos) break;
        const auto name_end = bytes.find('\n', name_at);
        const auto name = bytes.substr(name_at + 7, name_end - name_at - 7);
        const auto data_at = bytes.find("data: ", name_end);
        const auto end = bytes.find("\n\n", data_at);
        out.push_back(json::parse(bytes.substr(data_at + 6, end - data_at - 6)).as_object());
        EXPECT_EQ(out.back().at("type").as_string(), name);
        bytes.remove_prefix(end);
    }
    return out;
}

std::vector<std::string> types_of(const std::vector<json::object>& events) {
    std::vector<std::string> types;
    for (const auto& event : events) types.emplace_back(event.at("type").as_string());
    return types;
}

struct streamed {
    std::shared_ptr<response_state> state = std::make_shared<response_state>();
    std::unique_ptr<wire_format> format;
    stream_outcome out;
    sse_batch events;
    stream_identity who{.model = "cloud"};

    streamed() {
        state->id = "resp_test";
        state->created_at = 1700000000;
        format = make_responses_wire_format(state);
    }
    void feed(const std::vector<stream_chunk>& chunks) {
        for (const auto& chunk : chunks) {
            out.take_content(chunk);
            format->content(events, who, chunk, out);
        }
    }
    std::vector<json::object> finish(std::string reason = "stop") {
        out.finish_reason = std::move(reason);
        format->final(events, who, out);
        return events_of(events);
    }
};

void expect_increasing_sequence(const std::vector<json::object>& events) {
    for (std::size_t i = 0; i < events.size(); ++i)
        EXPECT_EQ(events[i].at("sequence_number").as_int64(), static_cast<std::int64_t>(i));
}

void expect_whole_usage(const json::value& usage, int input, int output) {
    EXPECT_EQ(usage.at("input_tokens"), input);
    EXPECT_EQ(usage.at("input_tokens_details").at("cached_tokens"), 0);
    EXPECT_EQ(usage.at("output_tokens"), output);
    EXPECT_EQ(usage.at("output_tokens_details").at("reasoning_tokens"), 0);
    EXPECT_EQ(usage.at("total_tokens"), input + output);
}

TEST(ResponsesWire, StreamsTextAsOpenaiDoes) {
    streamed s;
    s.feed({stream_chunk::delta("Hel"), stream_chunk::delta("lo")});
    s.out.prompt_tokens = 5;
    s.out.completion_tokens = 2;
    const auto events = s.finish();
    EXPECT_EQ(types_of(events),
              (std::vector<std::string>{"response.created", "response.in_progress",
                                        "response.output_item.added", "response.content_part.added",
                                        "response.output_text.delta", "response.output_text.delta",
                                        "response.output_text.done", "response.content_part.done",
                                        "response.output_item.done", "response.completed"}));
    expect_increasing_sequence(events);
    EXPECT_EQ(events[0].at("response").at("id"), "resp_test");
    EXPECT_EQ(events[0].at("response").at("status"), "in_progress");
    EXPECT_TRUE(events[0].at("response").at("output").as_array().empty());
    const auto item_id = events[2].at("item").at("id").as_string();
    EXPECT_TRUE(item_id.starts_with("msg_"));
    for (std::size_t i = 3; i <= 8; ++i) {
        const auto& id = i == 8 ? events[i].at("item").at("id") : events[i].at("item_id");
        EXPECT_EQ(id, item_id) << i;
        EXPECT_EQ(events[i].at("output_index"), 0) << i;
    }
    EXPECT_EQ(events[4].at("delta"), "Hel");
    EXPECT_EQ(events[4].at("content_index"), 0);
    EXPECT_EQ(events[6].at("text"), "Hello");
    EXPECT_EQ(events[7].at("part").at("text"), "Hello");
    EXPECT_EQ(events[8].at("item").at("content").at(0).at("text"), "Hello");
    const auto& response = events[9].at("response");
    EXPECT_EQ(response.at("status"), "completed");
    EXPECT_EQ(response.at("object"), "response");
    EXPECT_EQ(response.at("model"), "cloud");
    EXPECT_EQ(response.at("output").at(0).at("id"), item_id);
    EXPECT_EQ(response.at("output").at(0).at("role"), "assistant");
    EXPECT_EQ(response.at("output").at(0).at("content").at(0).at("type"), "output_text");
    EXPECT_EQ(response.at("output").at(0).at("content").at(0).at("text"), "Hello");
    expect_whole_usage(response.at("usage"), 5, 2);
    EXPECT_FALSE(s.format->done_marker());
}

TEST(ResponsesWire, StreamsAFunctionCallAsOpenaiDoes) {
    streamed s;
    s.feed({stream_chunk::tool_call_start(0, "call_a", "get_weather"),
            stream_chunk::tool_call_delta(0, R"({"city":)"),
            stream_chunk::tool_call_delta(0, R"("Paris"})")});
    const auto events = s.finish("tool_calls");
    EXPECT_EQ(
        types_of(events),
        (std::vector<std::string>{
            "response.created", "response.in_progress", "response.output_item.added",
            "response.function_call_arguments.delta", "response.function_call_arguments.delta",
            "response.function_call_arguments.done", "response.output_item.done", "response.completed"}));
    expect_increasing_sequence(events);
    const auto& added = events[2].at("item");
    EXPECT_EQ(added.at("type"), "function_call");
    EXPECT_EQ(added.at("call_id"), "call_a");
    EXPECT_EQ(added.at("name"), "get_weather");
    EXPECT_EQ(added.at("arguments"), "");
    EXPECT_TRUE(added.at("id").as_string().starts_with("fc_"));
    EXPECT_EQ(events[3].at("item_id"), added.at("id"));
    EXPECT_EQ(events[5].at("arguments"), R"({"city":"Paris"})");
    EXPECT_EQ(events[6].at("item").at("arguments"), R"({"city":"Paris"})");
    EXPECT_EQ(events[6].at("item").at("status"), "completed");
    const auto& output = events[7].at("response").at("output");
    ASSERT_EQ(output.as_array().size(), 1u);
    EXPECT_EQ(output.at(0).at("call_id"), "call_a");
    expect_whole_usage(events[7].at("response").at("usage"), 0, 0);
}

TEST(ResponsesWire, TextReasoningAndTwoCallsAreFourItemsInOrder) {
    streamed s;
    s.feed({stream_chunk::reasoning("think"), stream_chunk::reasoning("", "sig"),
            stream_chunk::delta("Let me check."), stream_chunk::tool_call_start(0, "call_a", "a"),
            stream_chunk::tool_call_delta(0, "{}"), stream_chunk::tool_call_start(1, "call_b", "b"),
            stream_chunk::tool_call_delta(1, R"({"x":1})")});
    s.out.reasoning_tokens = 3;
    const auto events = s.finish("tool_calls");
    expect_increasing_sequence(events);
    std::vector<std::pair<std::int64_t, std::string>> items;
    for (const auto& event : events) {
        if (event.at("type") == "response.output_item.done")
            items.emplace_back(event.at("output_index").as_int64(),
                               std::string(event.at("item").at("type").as_string()));
        if (event.contains("output_index") && event.contains("item_id")) {
            // every event names the item it belongs to by both its id and its index
            const auto index = static_cast<std::size_t>(event.at("output_index").as_int64());
            EXPECT_EQ(std::string(event.at("item_id").as_string()), s.state->items.at(index).id);
        }
    }
    EXPECT_EQ(items, (std::vector<std::pair<std::int64_t, std::string>>{
                         {0, "reasoning"}, {1, "message"}, {2, "function_call"}, {3, "function_call"}}));
    const auto types = types_of(events);
    EXPECT_NE(std::find(types.begin(), types.end(), "response.reasoning_summary_text.delta"), types.end());
    const auto& output = events.back().at("response").at("output").as_array();
    ASSERT_EQ(output.size(), 4u);
    EXPECT_EQ(output[0].at("summary").at(0).at("text"), "think");
    EXPECT_EQ(std::string(output[0].at("encrypted_content").as_string()), response_signature("sig"));
    EXPECT_EQ(output[1].at("content").at(0).at("text"), "Let me check.");
    EXPECT_EQ(output[3].at("arguments"), R"({"x":1})");
    EXPECT_EQ(events.back().at("response").at("usage").at("output_tokens_details").at("reasoning_tokens"), 3);

    // Read back as input (previous_response_id), the answer is one assistant turn with the signature.
    stored_response stored{.id = "resp_test",
                           .input_items = R"([{"type":"message","role":"user","content":"hi"}])",
                           .response = json::serialize(events.back().at("response"))};
    const auto history = history_from_responses({stored});
    ASSERT_EQ(history.size(), 2u);
    ASSERT_EQ(history[1].parts.size(), 4u);
    EXPECT_EQ(history[1].parts[0].type, content_part::kind::reasoning);
    EXPECT_EQ(history[1].parts[0].signature, "sig");
    EXPECT_EQ(history[1].parts[1].text, "Let me check.");
    EXPECT_EQ(history[1].parts[3].arguments, R"({"x":1})");
}

TEST(ResponsesWire, CutAtMaxOutputTokensIsIncomplete) {
    streamed s;
    s.feed({stream_chunk::delta("Hel")});
    const auto events = s.finish("length");
    EXPECT_EQ(events.back().at("type"), "response.incomplete");
    EXPECT_EQ(events.back().at("response").at("status"), "incomplete");
    EXPECT_EQ(events.back().at("response").at("incomplete_details").at("reason"), "max_output_tokens");
}

TEST(ResponsesWire, AnErrorAfterTheFirstByteIsResponseFailed) {
    streamed s;
    s.format->error_events(s.events, api_error{.code = 429, .message = "slow down"}, s.who);
    auto events = events_of(s.events);
    EXPECT_EQ(types_of(events),
              (std::vector<std::string>{"response.created", "response.in_progress", "response.failed"}));
    EXPECT_EQ(events[2].at("response").at("status"), "failed");
    EXPECT_EQ(events[2].at("response").at("error").at("code"), "rate_limit_exceeded");
    EXPECT_EQ(events[2].at("response").at("error").at("message"), "slow down");

    streamed mid;
    mid.feed({stream_chunk::delta("Hel")});
    mid.out.error = api_error{.code = 502, .message = "upstream reset"};
    mid.state->outcome = &mid.out;
    mid.format->error_events(mid.events, *mid.out.error, mid.who);
    events = events_of(mid.events);
    EXPECT_EQ(events.back().at("response").at("error").at("code"), "server_error");
    expect_whole_usage(events.back().at("response").at("usage"), 0, 0);
    EXPECT_EQ(events.back().at("response").at("output").at(0).at("content").at(0).at("text"), "Hel");
}

TEST(ResponsesWire, TheWholeAnswerHasItsItemsInOrderAndStableIds) {
    streamed s;
    s.out.take_content(stream_chunk::delta("Checking."));
    s.out.take_content(stream_chunk::tool_call_start(0, "call_a", "a"));
    s.out.take_content(stream_chunk::tool_call_delta(0, "{}"));
    s.out.finish_reason = "tool_calls";
    s.out.prompt_tokens = 4;
    s.out.completion_tokens = 6;
    s.out.cached_tokens = 2;
    const auto whole = json::parse(s.format->whole(s.who, s.out)).as_object();
    EXPECT_EQ(whole.at("id"), "resp_test");
    EXPECT_EQ(whole.at("status"), "completed");
    ASSERT_EQ(whole.at("output").as_array().size(), 2u);
    EXPECT_EQ(whole.at("output").at(0).at("type"), "message");
    EXPECT_EQ(whole.at("output").at(1).at("type"), "function_call");
    EXPECT_EQ(whole.at("usage").at("input_tokens_details").at("cached_tokens"), 2);
    EXPECT_EQ(whole.at("usage").at("total_tokens"), 10);
    // The stored copy, made from the same state, names the same items.
    const auto again = response_object(*s.state, &s.out, "cloud", "completed");
    EXPECT_EQ(again.at("output").at(1).at("id"), whole.at("output").at(1).at("id"));
}

TEST(ResponsesWire, ItemIdsNameTheirResponseSoThatReferencesResolve) {
    streamed s;
    s.feed({stream_chunk::delta("Checking."), stream_chunk::tool_call_start(0, "call_a", "a")});
    const auto events = s.finish("tool_calls");
    const auto& output = events.back().at("response").at("output").as_array();
    const std::string message_id(output[0].at("id").as_string());
    EXPECT_EQ(message_id, "msg_test_0");
    EXPECT_EQ(std::string(output[1].at("id").as_string()), "fc_test_1");
    EXPECT_EQ(response_id_of_item(message_id), "resp_test");
    EXPECT_EQ(response_id_of_item("msg_a_b_7"), "resp_a_b");
    EXPECT_EQ(response_id_of_item("nothing"), "");

    // What the AI SDK sends for an earlier step's text when responses are stored.
    const std::string body =
        R"({"input":[{"role":"user","content":"hi"},{"type":"item_reference","id":"msg_test_0"},
        {"type":"function_call","call_id":"call_a","name":"a","arguments":"{}"},
        {"type":"function_call_output","call_id":"call_a","output":"done"}]})";
    EXPECT_EQ(parse_ok(body).references, std::vector<std::string>{"msg_test_0"});
    const item_resolver resolve = [&](std::string_view id) -> const json::object* {
        return id == message_id ? &output[0].as_object() : nullptr;
    };
    auto parsed = parse_responses_request(body, &resolve);
    ASSERT_TRUE(std::holds_alternative<responses_request>(parsed));
    const auto& request = std::get<responses_request>(parsed);
    EXPECT_TRUE(request.references.empty());
    ASSERT_EQ(request.messages.size(), 3u);
    EXPECT_EQ(request.messages[1].role, "assistant");
    EXPECT_EQ(request.messages[1].content, "Checking.");
    ASSERT_EQ(request.messages[1].parts.size(), 2u);
    EXPECT_EQ(request.messages[1].parts[1].id, "call_a");
}

TEST(ResponsesWire, ErrorCodesForFailedResponses) {
    EXPECT_EQ(response_error_code({.code = 429}), "rate_limit_exceeded");
    EXPECT_EQ(response_error_code({.code = 400, .message = "maximum context length exceeded"}),
              "context_length_exceeded");
    EXPECT_EQ(response_error_code({.code = 502}), "server_error");
    EXPECT_EQ(response_error_code({.code = 503}), "server_error");
}

}  // namespace
}  // namespace sluice
