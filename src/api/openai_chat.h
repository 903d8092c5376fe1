#pragma once
// The OpenAI chat wire (SPEC §4): POST /v1/chat/completions and GET /v1/models, shaped so the
// official SDKs work unchanged: tool calls, image parts and response formats included. Requests go
// through the same turn as every API; only these bytes differ. openai_chat_wire.cpp parses the
// request and writes the chunks, the completion and the errors; openai_chat.cpp is the endpoint.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <memory>

#include "core/api_error.h"
#include "core/chat.h"
#include "http/http_types.h"
#include "streaming/wire_format.h"
#include "turn/app_context.h"

namespace sluice {

class router;
struct stream_identity;
struct stream_outcome;

struct openai_chat_request {
    std::vector<chat_message> messages;  // roles normalised to system/user/assistant/tool
    std::vector<tool_definition> tools;
    tool_choice tools_choice;
    std::optional<bool> parallel_tool_calls;
    response_format format;
    std::string extra;           // members sluice does not interpret, as one JSON object's text
    std::string model = "auto";  // as asked: a configured name, auto, local_small, cloud_large
    bool stream = false;
    bool resumable = false;         // sluice's own member: the stream may be resumed after a disconnect
    bool include_usage = false;     // stream_options.include_usage
    std::optional<int> max_tokens;  // max_completion_tokens wins over the older max_tokens
    std::optional<double> temperature;
    std::optional<double> top_p;
    std::vector<std::string> stop;
    std::optional<std::uint64_t> seed;
};

// Validates the body as OpenAI does (400 with a message naming the field); unknown fields are ignored.
std::variant<openai_chat_request, api_error> parse_openai_chat_request(std::string_view body);

// {"error": {"message", "type", "code", "param": null}} with OpenAI's type and code for `error.code`
// (`code` overrides the code string, e.g. "model_not_found").
std::string openai_error_json(const api_error& error, std::string_view code = {});
http_response openai_error_response(const http_request& request, const api_error& error,
                                    std::string_view code = {});

// The chunk and completion objects, exactly as OpenAI sends them.
struct openai_stream_ids {
    std::string id;  // chatcmpl-...
    std::int64_t created = 0;
};
std::string openai_role_chunk(const openai_stream_ids& ids, std::string_view model, bool include_usage);
std::string openai_content_chunk(const openai_stream_ids& ids, std::string_view model,
                                 std::string_view content, bool include_usage);
std::string openai_finish_chunk(const openai_stream_ids& ids, std::string_view model,
                                std::string_view finish_reason, bool include_usage);
// The same three chunks appended to `out`, for the stream's reused buffer.
void append_openai_role_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                              bool include_usage);
void append_openai_content_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                                 std::string_view content, bool include_usage);
void append_openai_finish_chunk(std::string& out, const openai_stream_ids& ids, std::string_view model,
                                std::string_view finish_reason, bool include_usage);
std::string openai_usage_chunk(const openai_stream_ids& ids, std::string_view model, int prompt_tokens,
                               int completion_tokens);
std::string openai_completion_json(const openai_stream_ids& ids, std::string_view model,
                                   std::string_view content, std::string_view finish_reason,
                                   int prompt_tokens, int completion_tokens,
                                   const std::vector<content_part>& tool_calls = {});
// The finish_reason OpenAI's clients know for one of sluice's (cancelled answers reach nobody).
std::string_view openai_finish_reason(std::string_view reason);
// The stream's wire format: a role chunk, content and tool-call chunks as OpenAI streams them, the
// finish chunk, the usage chunk when asked for, then [DONE]; errors as OpenAI's error object.
std::unique_ptr<wire_format> make_openai_chat_wire_format(bool include_usage);
// GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}.
std::string openai_models_json(const config& cfg);

// The model a request names (`model` of the OpenAI-shaped APIs: a configured name, auto,
// local_small or cloud_large) as the turn's routing choice; otherwise OpenAI's 404 error.
struct chat_turn;
std::optional<api_error> route_model(const app_context& app, const std::string& model, chat_turn& turn);

// POST /v1/chat/completions, GET /v1/models.
void add_openai_routes(router& routes, app_context& app);

}  // namespace sluice
