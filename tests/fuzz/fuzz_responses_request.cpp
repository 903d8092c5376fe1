// Fuzz target for the Responses API request parser (POST /v1/responses). Property: any body is
// either rejected with a 4xx and a message, or accepted as a conversation in sluice's model with
// every field inside its rule, its input items stored as one JSON array; and an accepted request
// turns into an OpenAI-wire upstream body that is one JSON object.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "api/responses.h"
#include "conversation_checks.h"
#include "fuzz_check.h"
#include "providers/openai_provider.h"

namespace {

using sluice::fuzz::check;
using sluice::fuzz::is_json_text;
using sluice::fuzz::valid_utf8;
namespace json = boost::json;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto parsed = sluice::parse_responses_request(body);
    if (const auto* error = std::get_if<sluice::api_error>(&parsed)) {
        check(error->code >= 400 && error->code <= 499, "rejected with a 4xx");
        check(!error->message.empty() && valid_utf8(error->message), "rejected with a message");
        return 0;
    }
    const auto& request = std::get<sluice::responses_request>(parsed);
    for (const auto& message : request.messages) sluice::fuzz::check_message(message, {.reasoning = true});
    if (request.has_instructions)
        check(!request.messages.empty() && request.messages[0].role == "system", "instructions come first");
    check(is_json_text(request.input_items, json::kind::array), "the input items are one JSON array");
    for (const auto& tool : request.tools) {
        check(!tool.name.empty(), "a tool has a name");
        check(is_json_text(tool.parameters, json::kind::object), "a tool's parameters are a JSON object");
    }
    if (request.format.type == sluice::response_format::kind::json_schema && !request.format.schema.empty())
        check(is_json_text(request.format.schema, json::kind::object),
              "a json_schema's schema is a JSON object");
    check(request.extra.empty() || is_json_text(request.extra, json::kind::object), "extra is a JSON object");
    check(!request.model.empty(), "a model is named");
    check(!request.max_output_tokens || *request.max_output_tokens >= 1, "max_output_tokens is positive");
    check(!request.temperature || (*request.temperature >= 0 && *request.temperature <= 2),
          "temperature 0..2");
    check(!request.top_p || (*request.top_p >= 0 && *request.top_p <= 1), "top_p 0..1");
    for (const auto& id : request.references) check(!id.empty(), "an unresolved item_reference has an id");

    sluice::chat_request chat{.messages = request.messages,
                              .tools = request.tools,
                              .tools_choice = request.tools_choice,
                              .parallel_tool_calls = request.parallel_tool_calls,
                              .format = request.format,
                              .openai_extra = request.extra};
    if (request.max_output_tokens) chat.params.max_tokens = *request.max_output_tokens;
    const std::string upstream = json::serialize(sluice::openai_chat_body(chat));
    check(is_json_text(upstream, json::kind::object), "the upstream body is a JSON object");
    return 0;
}
