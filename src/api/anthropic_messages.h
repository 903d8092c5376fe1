#pragma once
// Anthropic's Messages API (SPEC §4): POST /v1/messages and POST /v1/messages/count_tokens, shaped
// so Claude Code and the Anthropic SDKs work unchanged against any model behind sluice. Requests go
// through the same turn as every API; only these bytes differ. anthropic_messages_wire.cpp parses
// the request and writes the events, the message and the errors; anthropic_messages.cpp is the
// endpoint.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"
#include "http/http_types.h"
#include "streaming/wire_format.h"
#include "turn/app_context.h"

namespace sluice {

class router;

struct anthropic_messages_request {
    // system (one message, its text blocks joined), then the turns: a user turn's tool_result blocks
    // become one `tool` message each, before a user message with its text and images.
    std::vector<chat_message> messages;
    std::vector<tool_definition> tools;  // client tools; server tools (web_search, bash_...) are dropped
    tool_choice tools_choice;
    std::optional<bool> parallel_tool_calls;  // false: tool_choice.disable_parallel_tool_use
    std::string model;
    bool stream = false;
    std::optional<int> max_tokens;  // required on /v1/messages, absent on count_tokens
    std::optional<double> temperature;
    std::optional<double> top_p;
    std::vector<std::string> stop;          // stop_sequences
    std::size_t conversation_messages = 0;  // the non-system ones above
    std::size_t system_messages = 0;
    int input_estimate = 0;  // tokens: characters / 4 of everything the model reads, for message_start
};

// Validates the body as Anthropic does (400 with a message naming the field); unknown fields are
// ignored. `count_tokens`: max_tokens is not required.
std::variant<anthropic_messages_request, api_error> parse_anthropic_messages_request(
    std::string_view body, bool count_tokens = false);

// {"type": "error", "error": {"type", "message"}} with Anthropic's type for the status, and the
// status Anthropic would answer with (sluice's 503, no model can take it, is 529 overloaded_error).
std::string anthropic_error_json(const api_error& error);
int anthropic_error_status(int code);
http_response anthropic_error_response(const http_request& request, const api_error& error);

// Anthropic's stop_reason for one of sluice's finish reasons (tool calls made: tool_use).
std::string_view anthropic_stop_reason(std::string_view finish_reason, bool has_tool_calls);

// The stream's wire format: message_start, content_block_start / _delta / _stop per block with
// increasing indexes (text, thinking with its signature, tool_use with input_json_delta),
// message_delta (stop_reason, usage) and message_stop; `event: ping`; errors as Anthropic's.
// `model` is the name the client asked for, echoed as Anthropic does.
std::unique_ptr<wire_format> make_anthropic_messages_wire_format(std::string model, int input_estimate);

// POST /v1/messages, POST /v1/messages/count_tokens.
void add_anthropic_routes(router& routes, app_context& app);

}  // namespace sluice
