// POST /v1/chat/completions and GET /v1/models: the OpenAI request becomes a chat_turn and runs
// through the same turn as every API (routing, session memory, streaming core, usage); only the
// wire format (openai_chat_wire.cpp) differs.
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <memory>

#include "api/openai_chat.h"
#include "api/seed_api.h"
#include "api/seed_request.h"
#include "http/router.h"
#include "turn/chat_turn.h"
#include "turn/model_names.h"

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view k_session_header = "X-Sluice-Session";

}  // namespace

// `model` is a configured name, an alias or one of the routing names; anything else is OpenAI's 404.
std::optional<api_error> route_model(const app_context& app, const std::string& model, chat_turn& turn) {
    auto choice = resolve_model_name(app.cfg, model);
    if (!choice) return api_error{.code = 404, .message = "The model `" + model + "` does not exist"};
    turn.preferred_model = std::move(choice->preferred_model);
    turn.model_type = std::move(choice->model_type);
    turn.requested_model = model;
    return std::nullopt;
}

namespace {

// Not a coroutine: the request is checked here, then run_chat_turn's coroutines run on their own, so
// no frame of this layer waits for the stream.
net::awaitable<void> chat_completions(app_context& app, exchange& ex) {
    const auto& http_req = ex.request();
    auto parsed = parse_openai_chat_request(http_req.body());
    if (auto* error = std::get_if<api_error>(&parsed)) {
        auto res = openai_error_response(http_req, *error);
        return ex.respond(std::move(res));
    }
    auto& request = std::get<openai_chat_request>(parsed);

    chat_turn turn;
    if (auto error = route_model(app, request.model, turn)) {
        auto res = openai_error_response(http_req, *error, "model_not_found");
        return ex.respond(std::move(res));
    }
    // Session memory is opt-in here: OpenAI clients send the whole conversation themselves.
    if (auto it = http_req.find(k_session_header); it != http_req.end()) {
        const std::string_view session{it->value()};
        if (!is_valid_session_id(session)) {
            auto res = openai_error_response(
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
    shape.format = std::move(request.format);
    shape.openai_extra = std::move(request.extra);
    shape.params.temperature = request.temperature.value_or(k_default_temperature);
    shape.params.top_p = request.top_p.value_or(1.0);
    shape.params.stop = std::move(request.stop);
    shape.params.seed = request.seed;
    turn.max_tokens = request.max_tokens;
    turn.streaming = request.stream;
    turn.resumable = request.resumable || asks_resumable(http_req);
    auto format = make_openai_chat_wire_format(request.include_usage);
    return run_chat_turn(app, ex, std::move(turn), std::move(format));
}

net::awaitable<void> list_models(app_context& app, exchange& ex) {
    auto body = openai_models_json(app.cfg);
    co_await ex.respond_json(http_status::ok, std::move(body));
}

http_response format_error(const http_request& request, const api_error& error) {
    return openai_error_response(request, error);
}

}  // namespace

void add_openai_routes(router& routes, app_context& app) {
    routes.add(http_verb::post, "/v1/chat/completions",
               [&app](exchange& ex) { return chat_completions(app, ex); }, {.format_error = format_error});
    routes.add(http_verb::get, "/v1/models", [&app](exchange& ex) { return list_models(app, ex); },
               {.format_error = format_error});
}

}  // namespace sluice
