// POST /v1/chat/completions and GET /v1/models: the OpenAI request becomes a chat_turn and runs
// through the same path as the seed endpoint (routing, session memory, streaming core, usage);
// only the wire format (openai_wire.cpp) differs.
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <memory>

#include "api/chat_api.h"
#include "api/openai_compat.h"
#include "api/seed_request.h"
#include "api/stream_relay.h"
#include "core/ids.h"
#include "http/router.h"
#include "http/sse.h"

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view k_session_header = "X-Sluice-Session";

openai_stream_ids new_stream_ids() {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return {.id = new_id("chatcmpl-"),
            .created = std::chrono::duration_cast<std::chrono::seconds>(now).count()};
}

std::string_view openai_finish_reason(const std::string& reason) {
    return reason == "length" ? "length" : "stop";  // cancelled answers reach nobody
}

struct openai_stream_state {
    openai_stream_ids ids;
    bool usage = false;  // stream_options.include_usage
};

// How the shared streaming core speaks OpenAI: a role chunk first, content chunks, the finish chunk,
// the usage chunk when asked for, then [DONE]; errors as OpenAI's error object. The functions share
// one state: a shared_ptr fits in std::function's own storage, a copy of the ids in each would not
// (and would be allocated three times).
stream_format openai_format(const openai_chat_request& request) {
    const auto state = std::make_shared<const openai_stream_state>(
        openai_stream_state{new_stream_ids(), request.include_usage});
    stream_format format;
    format.delta = [state](sse_batch& events, const stream_identity& who, std::string_view content,
                           bool first) {
        const auto& [ids, usage] = *state;
        if (first) {
            append_openai_role_chunk(events.begin_event(), ids, who.model, usage);
            events.end_event();
        }
        append_openai_content_chunk(events.begin_event(), ids, who.model, content, usage);
        events.end_event();
    };
    format.final = [state](sse_batch& events, const stream_identity& who, const stream_outcome& out) {
        const auto& [ids, usage] = *state;
        if (out.text.empty()) {
            append_openai_role_chunk(events.begin_event(), ids, who.model, usage);
            events.end_event();
        }
        append_openai_finish_chunk(events.begin_event(), ids, who.model,
                                   openai_finish_reason(out.finish_reason), usage);
        events.end_event();
        if (usage)
            events.add_event(openai_usage_chunk(ids, who.model, out.prompt_tokens, out.completion_tokens));
    };
    format.error_event = [](const api_error& error, const stream_identity&) {
        return openai_error_json(error);
    };
    format.error_response = [](const http_request& req, const api_error& error, std::string_view,
                               const stream_identity*) { return openai_error_response(req, error); };
    format.whole = [state](const stream_identity& who, const stream_outcome& out) {
        return openai_completion_json(state->ids, who.model, out.text,
                                      openai_finish_reason(out.finish_reason), out.prompt_tokens,
                                      out.completion_tokens);
    };
    return format;
}

// `model` is a configured name or one of the routing names; anything else is OpenAI's 404.
std::optional<api_error> route_model(const app_context& app, const std::string& model, chat_turn& turn) {
    if (model == "auto" || model == "local_small" || model == "cloud_large") {
        turn.model_type = model;
        return std::nullopt;
    }
    for (const auto& configured : app.cfg.models) {
        if (configured.name == model) {
            turn.preferred_model = model;
            return std::nullopt;
        }
    }
    return api_error{.code = 404, .message = "The model `" + model + "` does not exist"};
}

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
    }
    turn.messages = std::move(request.messages);
    turn.max_tokens = request.max_tokens;
    turn.params.temperature = request.temperature.value_or(k_default_temperature);
    turn.params.top_p = request.top_p.value_or(1.0);
    turn.params.stop = std::move(request.stop);
    turn.params.seed = request.seed;
    turn.streaming = request.stream;
    auto format = openai_format(request);
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
