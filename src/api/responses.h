#pragma once
// OpenAI's Responses API (SPEC §4): POST /v1/responses (stream and not), GET and DELETE
// /v1/responses/{id}, GET /v1/responses/{id}/input_items, so the Codex CLI, the Agents SDK and
// @ai-sdk/openai work unchanged. A request becomes a chat_turn and runs through the same turn as
// every API; responses_wire.cpp parses the request and writes the events and the response object,
// responses.cpp is the endpoints and the stored responses (store: true, previous_response_id).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

#include "core/api_error.h"
#include "core/chat.h"
#include "store/store.h"
#include "streaming/wire_format.h"
#include "turn/app_context.h"

namespace sluice {

class router;

struct responses_request {
    std::vector<chat_message> messages;  // `instructions` as a system message first, then `input`
    bool has_instructions = false;       // messages[0] is the instructions
    std::string input_items;             // `input` as a JSON array of items (ids added), for storage
    std::vector<tool_definition> tools;  // the function tools; other types were dropped
    tool_choice tools_choice;
    std::optional<bool> parallel_tool_calls;
    response_format format;
    std::string extra;  // for OpenAI-compatible upstreams (reasoning_effort), one JSON object's text
    std::string model = "auto";
    bool stream = false;
    bool store = true;
    bool background = false;  // runs to its end whether or not a client stays (resumable)
    std::string previous_response_id;
    std::optional<int> max_output_tokens;
    std::optional<double> temperature;
    std::optional<double> top_p;
    // What the response object repeats of the request: instructions, tools, tool_choice, text,
    // reasoning, metadata, temperature, top_p, max_output_tokens, parallel_tool_calls, store...
    boost::json::object echo;
    // The ids of `item_reference` items the resolver did not know (or all of them, without one).
    std::vector<std::string> references;
};

// An output item of a stored response by its id; null when unknown.
using item_resolver = std::function<const boost::json::object*(std::string_view item_id)>;

// Validates the body as OpenAI does (400 naming the field); unknown fields and tool types, input
// items and content parts sluice cannot use are ignored (Codex sends many), never refused. An
// `item_reference` becomes the item `resolve` finds (without one, or unknown: left out and listed).
std::variant<responses_request, api_error> parse_responses_request(std::string_view body,
                                                                   const item_resolver* resolve = nullptr);

// The stored response an output item belongs to (its id names it: msg_<r>_<n> is in resp_<r>);
// empty for an id sluice did not make.
std::string response_id_of_item(std::string_view item_id);

// Stored responses, oldest first, as the conversation they hold: each one's input items, then its
// output items (function calls join the assistant message before them; reasoning joins the next).
std::vector<chat_message> history_from_responses(const std::vector<stored_response>& chain);

// A reasoning item's encrypted_content for the upstream's signature (empty for none); only what
// this makes is read back as a signature from input items.
std::string response_signature(std::string_view signature);

// One response as it is built: what the stream's events, the whole answer and the stored copy
// share, so that all three carry the same ids.
struct response_state {
    enum class item_kind { reasoning, message, function_call };
    struct item {
        item_kind kind = item_kind::message;
        std::string id;                       // rs_..., msg_..., fc_...
        std::size_t begin = 0;                // reasoning, message: where its text starts in the outcome's
        std::size_t end = std::string::npos;  // ... and ends (npos: still open, to the end)
        std::size_t call = 0;                 // function_call: its index in the outcome's tool_calls
    };

    std::string id;  // resp_...
    std::int64_t created_at = 0;
    boost::json::object echo;  // responses_request::echo
    std::vector<item> items;   // the output items, in output_index order
    // Set by the endpoint for storage.
    bool store = true;
    std::string key_id;
    std::string previous_response_id;
    std::string input_items;
    // The final outcome, once the turn reported it (null before): response.failed shows its output.
    const stream_outcome* outcome = nullptr;

    // For an answer that was not streamed: its items (reasoning, message, calls) from the outcome,
    // once; a streamed answer has them already.
    void settle(const stream_outcome& out);
    // A new output item's id: its kind's prefix, this response's id and its output index, so that
    // an item_reference finds it (response_id_of_item).
    std::string next_item_id(item_kind kind) const;
};

// "completed", "incomplete" (finish length), "failed" (an error), "cancelled" (the client left).
std::string_view response_status(const stream_outcome& out);
// The response object: status, output, usage (always whole: zeros where unknown; null with no
// outcome yet), and for a failed one its error (`error`, else the outcome's).
boost::json::object response_object(const response_state& state, const stream_outcome* out,
                                    std::string_view model, std::string_view status,
                                    const api_error* error = nullptr);
// The usage object Codex insists on: input_tokens, input_tokens_details.cached_tokens,
// output_tokens, output_tokens_details.reasoning_tokens, total_tokens.
boost::json::object response_usage(const stream_outcome& out);
// The `code` of a failed response's error for an HTTP-like status (rate_limit_exceeded, ...).
std::string_view response_error_code(const api_error& error);

// The stream's wire format: response.created, response.in_progress, the output items' events as
// OpenAI sends them, then response.completed / response.incomplete / response.failed; no [DONE].
std::unique_ptr<wire_format> make_responses_wire_format(std::shared_ptr<response_state> state);

// POST /v1/responses, GET|DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items.
void add_responses_routes(router& routes, app_context& app);

}  // namespace sluice
