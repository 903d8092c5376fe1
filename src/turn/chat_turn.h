#pragma once
// One chat turn, whatever API it arrived through: admission (limits), the session lock and history,
// routing, the streaming core, storage of the turn and usage. An endpoint parses its request into a
// chat_turn and hands over its wire format; nothing here knows any API's bytes.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/chat.h"
#include "http/exchange.h"
#include "streaming/wire_format.h"
#include "turn/app_context.h"

namespace sluice {

struct chat_turn {
    // The new messages (after the stored history; system ones allowed) and how to answer them: tools,
    // tool choice, response format, sampling. params.max_tokens is replaced by max_tokens below.
    chat_request request;
    std::string session_id;     // empty: no session memory (nothing loaded or stored)
    bool lock_session = false;  // an existing session may be continued: one turn at a time
    bool new_session = false;   // session_id was just generated: nothing is stored under it
    std::optional<std::string> preferred_model;
    std::optional<std::string> model_type;  // "auto" | "local_small" | "cloud_large"; nullopt: the default
    // The model name as the client wrote it, when the API has one (OpenAI's and Anthropic's `model`):
    // what [[routing.rules]] `model` matches, and how an alias is told from a configured name.
    std::optional<std::string> requested_model;
    std::optional<int> max_tokens;  // nullopt: k_default_max_tokens; capped at the model's limit
    bool streaming = true;
    // Run once with the final outcome, after the turn is stored and before the last event goes out
    // (or after the stream when it was cut): an API that keeps its own record of the answer (the
    // Responses API's stored responses) does it here. Null: nothing more.
    std::function<boost::asio::awaitable<void>(const stream_outcome&)> on_outcome;

    // Resumable (SPEC §4, docs/API.md "Resuming a stream"): the events go to a stream log, the
    // answer goes on for resume.keep_s after the client left, and any client of the same key may
    // read the log again (GET /api/v1/streams/{id}). Needs streaming.
    bool resumable = false;
    // With resumable: the stream runs to its end whether or not any client stays (the Responses
    // API's background), and may be cancelled through the registry.
    bool background = false;
    std::string stream_id;  // with resumable: the log's id (empty: a new one)
    // With background: when set, the request is answered with this instead of reading the log (a
    // background response that does not stream gets its queued object at once).
    std::function<http_response()> background_reply;
};

boost::asio::awaitable<void> run_chat_turn(app_context& app, exchange& ex, chat_turn turn,
                                           std::unique_ptr<wire_format> format);

// A stored message as the conversation model holds it, and back.
chat_message to_chat_message(stored_message stored);

}  // namespace sluice
