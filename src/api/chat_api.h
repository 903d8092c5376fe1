#pragma once
// The seed endpoints (SPEC §3, §4): POST /api/v1/chat/stream and POST /api/v1/chat.
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/app.h"
#include "api/stream_relay.h"
#include "core/chat.h"
#include "http/router.h"

namespace sluice {

void add_chat_routes(router& routes, app_context& app);

// One chat turn, whatever API it arrived through: routing, session memory, the streaming core,
// storage and usage. The seed endpoints and the OpenAI-compatible one differ only in how they parse
// the request and in `format`.
struct chat_turn {
    std::vector<chat_message> messages;  // the new turn, after the stored history; system ones allowed
    std::string session_id;              // empty: no session memory (nothing loaded or stored)
    bool lock_session = false;           // an existing session is continued: one turn at a time
    bool new_session = false;            // session_id was just generated: nothing is stored under it
    std::optional<std::string> preferred_model;
    std::optional<std::string> model_type;  // "auto" | "local_small" | "cloud_large"; nullopt: the default
    std::optional<int> max_tokens;          // nullopt: k_default_max_tokens; capped at the model's limit
    generation_params params;               // its max_tokens is replaced by the one above
    bool streaming = true;
};

boost::asio::awaitable<void> run_chat_turn(app_context& app, exchange& ex, chat_turn turn,
                                           stream_format format);

// An error for the seed stream endpoint before anything was sent: the real status and a body of
// one error event + [DONE] (session_id taken from the body when it holds a valid one).
http_response seed_sse_error(const http_request& request, const api_error& error);

}  // namespace sluice
