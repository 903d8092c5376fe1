// Fuzz target for the OpenAI chat request parser (POST /v1/chat/completions). Property: any body is
// either rejected with a 4xx and a message, or accepted with every field inside its rule; and an
// accepted request turns into an upstream /chat/completions body that is one JSON object.
#include <algorithm>
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "api/openai_chat.h"
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto parsed = sluice::parse_openai_chat_request(body);
    if (const auto* error = std::get_if<sluice::api_error>(&parsed)) {
        check(error->code >= 400 && error->code <= 499, "rejected with a 4xx");
        check(!error->message.empty() && valid_utf8(error->message), "rejected with a message");
        return 0;
    }
    const auto& request = std::get<sluice::openai_chat_request>(parsed);
    check(!request.messages.empty(), "accepted: messages non-empty");
    for (const auto& message : request.messages)
        sluice::fuzz::check_message(message, {.image_urls_are_http = true});
    for (const auto& tool : request.tools) {
        check(!tool.name.empty(), "a tool has a name");
        check(is_json_object_text(tool.parameters), "a tool's parameters are a JSON object");
    }
    if (request.tools_choice.type == sluice::tool_choice::mode::named) {
        check(std::any_of(request.tools.begin(), request.tools.end(),
                          [&](const auto& tool) { return tool.name == request.tools_choice.name; }),
              "a named tool_choice names an offered tool");
    }
    if (request.format.type == sluice::response_format::kind::json_schema && !request.format.schema.empty())
        check(is_json_object_text(request.format.schema), "a json_schema's schema is a JSON object");
    check(request.extra.empty() || is_json_object_text(request.extra), "extra is a JSON object or empty");
    check(!request.model.empty(), "a model is named");
    check(!request.max_tokens || *request.max_tokens >= 1, "max_tokens is positive");
    check(!request.temperature || (*request.temperature >= 0 && *request.temperature <= 2),
          "temperature 0..2");
    check(!request.top_p || (*request.top_p >= 0 && *request.top_p <= 1), "top_p 0..1");
    check(request.stop.size() <= 4, "at most 4 stop sequences");
    for (const auto& stop : request.stop) check(!stop.empty(), "no empty stop sequence");

    // What goes upstream for it is one JSON object, whatever the request held.
    sluice::chat_request chat{.messages = request.messages,
                              .tools = request.tools,
                              .tools_choice = request.tools_choice,
                              .parallel_tool_calls = request.parallel_tool_calls,
                              .format = request.format,
                              .openai_extra = request.extra};
    if (request.max_tokens) chat.params.max_tokens = *request.max_tokens;
    chat.params.stop = request.stop;
    const std::string upstream = json::serialize(sluice::openai_chat_body(chat));
    check(is_json_object_text(upstream), "the upstream body is a JSON object");
    return 0;
}
