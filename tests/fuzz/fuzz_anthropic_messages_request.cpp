// Fuzz target for the Anthropic Messages request parser (POST /v1/messages and
// /v1/messages/count_tokens). Property: any body is either rejected with a 4xx and a message, or
// accepted as a conversation in sluice's model with every field inside its rule; and an accepted
// request turns into an OpenAI-wire upstream body that is one JSON object.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "api/anthropic_messages.h"
#include "conversation_checks.h"
#include "fuzz_check.h"
#include "providers/openai_provider.h"

namespace {

using sluice::fuzz::check;
using sluice::fuzz::valid_utf8;
namespace json = boost::json;

bool is_json_object_text(const std::string& text) {
    return sluice::fuzz::is_json_text(text, json::kind::object);
}

void check_accepted(const sluice::anthropic_messages_request& request, bool count_tokens) {
    check(request.conversation_messages + request.system_messages == request.messages.size(),
          "system + conversation messages are all the messages");
    check(request.conversation_messages >= 1, "accepted: at least one turn");
    for (const auto& message : request.messages)
        sluice::fuzz::check_message(message, {.reasoning = true, .call_ids_and_object_args = true});
    for (const auto& tool : request.tools) {
        check(!tool.name.empty(), "a tool has a name");
        check(is_json_object_text(tool.parameters), "a tool's input_schema is a JSON object");
    }
    check(!request.model.empty(), "a model is named");
    if (!count_tokens)
        check(request.max_tokens && *request.max_tokens >= 1, "max_tokens is given and positive");
    check(!request.temperature || (*request.temperature >= 0 && *request.temperature <= 1),
          "temperature 0..1");
    check(!request.top_p || (*request.top_p >= 0 && *request.top_p <= 1), "top_p 0..1");
    for (const auto& stop : request.stop) check(valid_utf8(stop), "stop sequences are UTF-8");
    check(request.input_estimate >= 0, "the input estimate is not negative");

    // What goes to an OpenAI-wire upstream for it is one JSON object, whatever the request held.
    sluice::chat_request chat{.messages = request.messages,
                              .tools = request.tools,
                              .tools_choice = request.tools_choice,
                              .parallel_tool_calls = request.parallel_tool_calls};
    if (request.max_tokens) chat.params.max_tokens = *request.max_tokens;
    chat.params.stop = request.stop;
    const std::string upstream = json::serialize(sluice::openai_chat_body(chat));
    check(is_json_object_text(upstream), "the upstream body is a JSON object");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    for (const bool count_tokens : {false, true}) {
        const auto parsed = sluice::parse_anthropic_messages_request(body, count_tokens);
        if (const auto* error = std::get_if<sluice::api_error>(&parsed)) {
            check(error->code >= 400 && error->code <= 499, "rejected with a 4xx");
            check(!error->message.empty() && valid_utf8(error->message), "rejected with a message");
            continue;
        }
        check_accepted(std::get<sluice::anthropic_messages_request>(parsed), count_tokens);
    }
    return 0;
}
