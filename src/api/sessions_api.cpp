#include "api/sessions_api.h"

// GCC 12 misreads Asio's awaitable frame allocator after inlining a coroutine here (see chat_api.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <optional>

#include "api/seed_request.h"
#include "core/blocking.h"
#include "core/chat_json.h"
#include "core/ids.h"
#include "http/router.h"
#include "turn/session_locks.h"

namespace sluice {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

enum class session_access { found, not_found, store_down };

// Whether the caller's key owns the session; a foreign session is reported as absent.
net::awaitable<session_access> check_owner(app_context& app, const exchange& ex,
                                           const std::string& session_id) {
    const std::string key_id = ex.key() ? ex.key()->id : std::string{};
    try {
        auto owner = co_await run_blocking(app.store_pool, [&] { return app.db.session_owner(session_id); });
        if (!owner || !constant_time_equal(*owner, key_id)) co_return session_access::not_found;
        co_return session_access::found;
    } catch (const std::exception& e) {
        spdlog::warn("session {}: store failed: {}", session_id, e.what());
        co_return session_access::store_down;
    }
}

net::awaitable<void> respond_error(exchange& ex, int code, std::string message) {
    auto res = json_error_response(ex.request(), api_error{.code = code, .message = std::move(message)});
    co_await ex.respond(std::move(res));
}

net::awaitable<void> respond_access_error(exchange& ex, session_access access) {
    const bool down = access == session_access::store_down;
    // Named first: g++ 12 mishandles class temporaries made inside a co_await expression.
    std::string message = down ? "the session store is unavailable" : "session not found";
    co_await respond_error(ex, down ? 503 : 404, std::move(message));
}

net::awaitable<void> get_session(app_context& app, exchange& ex) {
    const std::string session_id{ex.param("id")};
    if (!is_valid_session_id(session_id)) {
        co_await respond_error(ex, 404, "session not found");
        co_return;
    }
    const auto access = co_await check_owner(app, ex, session_id);
    if (access != session_access::found) {
        co_await respond_access_error(ex, access);
        co_return;
    }
    std::vector<stored_message> messages;
    bool store_failed = false;
    try {
        messages = co_await run_blocking(app.store_pool, [&] { return app.db.load_messages(session_id); });
    } catch (const std::exception& e) {
        spdlog::warn("session {}: store failed: {}", session_id, e.what());
        store_failed = true;
    }
    if (store_failed) {
        co_await respond_error(ex, 503, "the session store is unavailable");
        co_return;
    }
    auto body = session_json(session_id, messages);
    co_await ex.respond_json(http_status::ok, std::move(body));
}

net::awaitable<void> delete_session(app_context& app, exchange& ex) {
    const std::string session_id{ex.param("id")};
    if (!is_valid_session_id(session_id)) {
        co_await respond_error(ex, 404, "session not found");
        co_return;
    }
    // A turn in flight would store its answer after the delete and bring the session back: wait it out.
    std::optional<session_locks::guard> turn;
    if (app.sessions) {
        const auto wait = std::chrono::milliseconds{app.cfg.routing.session_wait_ms};
        turn = co_await app.sessions->acquire(session_id, wait);
        if (!turn) {
            co_await respond_error(ex, 409, "session busy");
            co_return;
        }
    }
    const auto access = co_await check_owner(app, ex, session_id);
    if (access != session_access::found) {
        co_await respond_access_error(ex, access);
        co_return;
    }
    bool store_failed = false;
    try {
        co_await run_blocking(app.store_pool, [&] { return app.db.delete_session(session_id); });
    } catch (const std::exception& e) {
        spdlog::warn("session {}: store failed: {}", session_id, e.what());
        store_failed = true;
    }
    if (store_failed) {
        co_await respond_error(ex, 503, "the session store is unavailable");
        co_return;
    }
    json::object body{{"session_id", session_id}, {"deleted", true}};
    auto text = json::serialize(body);
    co_await ex.respond_json(http_status::ok, std::move(text));
}

}  // namespace

std::string session_json(const std::string& session_id, const std::vector<stored_message>& messages) {
    json::array list;
    for (const auto& m : messages) {
        json::object entry{{"role", m.role},
                           {"content", m.content},
                           {"model", m.model},
                           {"prompt_tokens", m.prompt_tokens},
                           {"completion_tokens", m.completion_tokens},
                           {"finish_reason", m.finish_reason},
                           {"created_ms", m.created_ms}};
        // Tool calls, tool results, images and reasoning, as they happened.
        if (!m.parts.empty()) entry["parts"] = parts_to_json_array(m.parts);
        list.push_back(std::move(entry));
    }
    json::object body{{"session_id", session_id}};
    body["messages"] = std::move(list);
    return json::serialize(body);
}

void add_session_routes(router& routes, app_context& app) {
    routes.add(http_verb::get, "/api/v1/sessions/{id}",
               [&app](exchange& ex) { return get_session(app, ex); });
    routes.add(http_verb::delete_, "/api/v1/sessions/{id}",
               [&app](exchange& ex) { return delete_session(app, ex); });
}

}  // namespace sluice
