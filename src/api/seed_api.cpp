#include "api/seed_api.h"

// GCC 12 misreads Asio's awaitable frame allocator after inlining a coroutine here (a false
// positive: frames are allocated and freed by the same awaitable_frame_base operators).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <memory>

#include "api/seed_request.h"
#include "api/seed_wire.h"
#include "core/ids.h"
#include "turn/chat_turn.h"

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

// The session_id of a body, when it has a valid one; for error events sent before validation.
std::string session_id_of(std::string_view body) {
    boost::system::error_code ec;
    auto root = boost::json::parse(body, ec);
    if (ec || !root.is_object()) return {};
    const auto* id = root.get_object().if_contains("session_id");
    if (!id || !id->is_string() || !is_valid_session_id(id->get_string())) return {};
    return std::string(id->get_string());
}

bool accepts_event_stream(const http_request& request) {
    auto it = request.find(http::field::accept);
    return it != request.end() &&
           std::string_view{it->value()}.find("text/event-stream") != std::string_view::npos;
}

http_response json_seed_error(const http_request& request, const api_error& error,
                              std::string_view session_id) {
    http_response res{static_cast<http_status>(error.code), request.version()};
    res.set(http::field::content_type, "application/json");
    if (error.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(error.retry_after_s));
    res.body() = error_event_json(error, session_id);
    return res;
}

// POST /api/v1/chat answers errors as JSON, unless the client asked for a stream.
http_response seed_chat_error(const http_request& request, const api_error& error) {
    if (accepts_event_stream(request) || body_requests_stream(request.body()))
        return seed_sse_error(request, error);
    return json_seed_error(request, error, session_id_of(request.body()));
}

}  // namespace

bool asks_resumable(const http_request& request) {
    const auto it = request.find("X-Sluice-Resumable");
    if (it == request.end()) return false;
    const std::string_view value{it->value()};
    return value == "1" || value == "true";
}

namespace {

// Not a coroutine: the request is checked here and then run_chat_turn's coroutines run on their
// own, so no frame of this layer waits for the stream.
net::awaitable<void> handle_chat(app_context& app, exchange& ex, bool always_stream) {
    const auto& request = ex.request();
    auto parsed = parse_seed_request(request.body(), app.cfg.models);
    if (auto* error = std::get_if<api_error>(&parsed)) {
        auto res = always_stream ? seed_sse_error(request, *error) : seed_chat_error(request, *error);
        return ex.respond(std::move(res));
    }
    auto& seed = std::get<seed_request>(parsed);
    chat_turn turn{.session_id = seed.session_id.value_or(new_id("s_")),
                   .lock_session = seed.session_id.has_value(),
                   .new_session = !seed.session_id.has_value(),
                   .preferred_model = seed.preferred_model,
                   .model_type = seed.model_type,
                   .max_tokens = seed.max_tokens,
                   .streaming = always_stream || seed.stream};
    turn.request.messages.push_back({.role = "user", .content = std::move(seed.message)});
    turn.request.params.temperature = seed.temperature.value_or(k_default_temperature);
    turn.resumable = seed.resumable || asks_resumable(request);
    auto format = make_seed_wire_format(turn.streaming);
    return run_chat_turn(app, ex, std::move(turn), std::move(format));
}

}  // namespace

http_response seed_sse_error(const http_request& request, const api_error& error) {
    return sse_error_response(static_cast<http_status>(error.code),
                              error_event_json(error, session_id_of(request.body())), error.retry_after_s,
                              request.version(), request.keep_alive());
}

void add_chat_routes(router& routes, app_context& app) {
    routes.add(http_verb::post, "/api/v1/chat/stream",
               [&app](exchange& ex) { return handle_chat(app, ex, true); }, {.format_error = seed_sse_error});
    routes.add(http_verb::post, "/api/v1/chat", [&app](exchange& ex) { return handle_chat(app, ex, false); },
               {.format_error = seed_chat_error});
}

}  // namespace sluice
