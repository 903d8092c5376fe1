// POST /v1/messages and POST /v1/messages/count_tokens: the Anthropic request becomes a chat_turn
// and runs through the same turn as every API (routing, session memory, streaming core, usage); only
// the wire format (anthropic_messages_wire.cpp) differs.
#include "api/anthropic_messages.h"

#include <boost/json.hpp>
#include <memory>

#include "api/seed_request.h"
#include "http/router.h"
#include "routing/orchestrator.h"
#include "turn/chat_turn.h"
#include "turn/conversation.h"
#include "turn/model_names.h"

namespace sluice {

namespace net = boost::asio;

namespace {

constexpr std::string_view k_session_header = "X-Sluice-Session";

std::string_view header_value(const http_request& request, std::string_view name) {
    const auto it = request.find(name);
    return it == request.end() ? std::string_view{} : std::string_view{it->value()};
}

std::optional<api_error> route_model(const app_context& app, const std::string& model, chat_turn& turn) {
    auto choice = resolve_model_name(app.cfg, model);
    if (!choice)
        return api_error{.code = 404,
                         .message = "model: " + model + " (known: " + known_model_names(app.cfg) + ")"};
    turn.preferred_model = std::move(choice->preferred_model);
    turn.model_type = std::move(choice->model_type);
    turn.requested_model = model;
    return std::nullopt;
}

bool has_anthropic_model(const config& cfg) {
    for (const auto& model : cfg.models)
        if (model.provider == "anthropic") return true;
    return false;
}

// Not a coroutine: the request is checked here, then run_chat_turn's coroutines run on their own, so
// no frame of this layer waits for the stream.
net::awaitable<void> messages(app_context& app, exchange& ex) {
    const auto& http_req = ex.request();
    auto parsed = parse_anthropic_messages_request(http_req.body());
    if (auto* error = std::get_if<api_error>(&parsed)) {
        auto res = anthropic_error_response(http_req, *error);
        return ex.respond(std::move(res));
    }
    auto& request = std::get<anthropic_messages_request>(parsed);

    chat_turn turn;
    if (auto error = route_model(app, request.model, turn)) {
        auto res = anthropic_error_response(http_req, *error);
        return ex.respond(std::move(res));
    }
    // Session memory is opt-in: Anthropic clients send the whole conversation themselves.
    const std::string_view session = header_value(http_req, k_session_header);
    if (!session.empty()) {
        if (!is_valid_session_id(session)) {
            auto res = anthropic_error_response(
                http_req, {.code = 400, .message = "X-Sluice-Session must match [A-Za-z0-9_.:-]{1,128}"});
            return ex.respond(std::move(res));
        }
        turn.session_id = std::string(session);
        turn.lock_session = true;  // one turn at a time per session, as on every API
    }
    auto& shape = turn.request;
    shape.messages = std::move(request.messages);
    shape.tools = std::move(request.tools);
    shape.tools_choice = std::move(request.tools_choice);
    shape.parallel_tool_calls = request.parallel_tool_calls;
    shape.params.temperature = request.temperature.value_or(k_default_temperature);
    shape.params.top_p = request.top_p.value_or(1.0);
    shape.params.stop = std::move(request.stop);
    // An Anthropic upstream takes the client's own body; with a session, the history makes it another
    // conversation, so it goes the translated way.
    if (session.empty() && has_anthropic_model(app.cfg)) {
        shape.anthropic_body = std::string(http_req.body());
        shape.anthropic_message_count = request.conversation_messages;
        shape.anthropic_system_count = request.system_messages;
        shape.anthropic_beta = std::string(header_value(http_req, "anthropic-beta"));
    }
    turn.max_tokens = request.max_tokens;
    turn.streaming = request.stream;
    auto format = make_anthropic_messages_wire_format(std::move(request.model), request.input_estimate);
    return run_chat_turn(app, ex, std::move(turn), std::move(format));
}

// The model a request would go to first, as a turn would route it. Counting needs no feature of the
// model, so one that cannot call tools still counts a request that offers them.
provider_ptr first_candidate(app_context& app, const chat_turn& turn, std::optional<api_error>& error) {
    auto route = route_request_for(turn.request.messages, turn.preferred_model, turn.model_type);
    route.requested_model = turn.requested_model;
    auto planned = app.routing->plan(route, /*commit=*/false);  // a count is not a request
    if (!planned.ok() || planned.plan.candidates.empty()) {
        error = planned.ok() ? api_error{.code = 503, .message = "no model is available"} : planned.error;
        return nullptr;
    }
    return planned.plan.candidates.front();
}

// What the model reads, as one text: the messages, their tool calls and results, the tools.
std::string counted_text(const chat_request& request) {
    std::string text;
    for (const auto& message : request.messages) {
        text += message.content;
        text += '\n';
        for (const auto& part : message.parts) {
            if (part.type == content_part::kind::tool_call) text += part.name + " " + part.arguments + "\n";
            if (part.type == content_part::kind::tool_result) text += part.text + "\n";
            if (part.type == content_part::kind::reasoning && !part.redacted) text += part.text + "\n";
        }
    }
    for (const auto& tool : request.tools)
        text += tool.name + " " + tool.description + " " + tool.parameters + "\n";
    return text;
}

// {"input_tokens": N}: an Anthropic upstream's own count (forwarded); otherwise the local model
// counts with its own tokenizer, and another cloud model's count is sluice's estimate (about 4 bytes
// a token), plus k_tokens_per_message per message.
net::awaitable<void> count_tokens(app_context& app, exchange& ex) {
    const auto& http_req = ex.request();
    auto parsed = parse_anthropic_messages_request(http_req.body(), true);
    if (auto* error = std::get_if<api_error>(&parsed)) {
        auto res = anthropic_error_response(http_req, *error);
        co_await ex.respond(std::move(res));
        co_return;
    }
    auto& request = std::get<anthropic_messages_request>(parsed);
    chat_turn turn;
    std::optional<api_error> error = route_model(app, request.model, turn);
    turn.request.messages = std::move(request.messages);
    turn.request.tools = std::move(request.tools);
    turn.request.tools_choice = std::move(request.tools_choice);
    provider_ptr model = error ? nullptr : first_candidate(app, turn, error);
    if (error) {
        auto res = anthropic_error_response(http_req, *error);
        co_await ex.respond(std::move(res));
        co_return;
    }
    // An Anthropic upstream counts the client's own body (thinking, cache_control and all).
    if (has_anthropic_model(app.cfg)) {
        turn.request.anthropic_body = std::string(http_req.body());
        turn.request.anthropic_message_count = request.conversation_messages;
        turn.request.anthropic_system_count = request.system_messages;
        turn.request.anthropic_beta = std::string(header_value(http_req, "anthropic-beta"));
    }
    const std::optional<int> counted = co_await model->count_input_tokens(turn.request);
    const int tokens = counted ? *counted
                               : model->count_tokens(counted_text(turn.request)) +
                                     k_tokens_per_message * static_cast<int>(turn.request.messages.size());
    auto body = boost::json::serialize(boost::json::object{{"input_tokens", tokens}});
    co_await ex.respond_json(http_status::ok, std::move(body));
}

http_response format_error(const http_request& request, const api_error& error) {
    return anthropic_error_response(request, error);
}

}  // namespace

void add_anthropic_routes(router& routes, app_context& app) {
    routes.add(http_verb::post, "/v1/messages", [&app](exchange& ex) { return messages(app, ex); },
               {.format_error = format_error});
    routes.add(http_verb::post, "/v1/messages/count_tokens",
               [&app](exchange& ex) { return count_tokens(app, ex); }, {.format_error = format_error});
}

}  // namespace sluice
