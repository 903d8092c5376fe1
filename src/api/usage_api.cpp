#include "api/usage_api.h"

// GCC 12 misreads Asio's awaitable frame allocator after inlining a coroutine here (a false
// positive: frames are allocated and freed by the same awaitable_frame_base operators).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <optional>

#include "core/blocking.h"
#include "turn/usage_ledger.h"

namespace sluice {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

// {"key_id", "usage": [{model, requests, prompt_tokens, completion_tokens, cancelled, errors}],
//  "totals": {...}}: only the caller's own key, so one key never learns about another.
std::string usage_json(const std::string& key_id, const std::vector<usage_row>& rows) {
    json::array list;
    usage_row total;
    for (const auto& row : rows) {
        list.push_back(json::object{{"model", row.model},
                                    {"requests", row.requests},
                                    {"prompt_tokens", row.prompt_tokens},
                                    {"completion_tokens", row.completion_tokens},
                                    {"cancelled", row.cancelled},
                                    {"errors", row.errors}});
        total.requests += row.requests;
        total.prompt_tokens += row.prompt_tokens;
        total.completion_tokens += row.completion_tokens;
        total.cancelled += row.cancelled;
        total.errors += row.errors;
    }
    json::object body{{"key_id", key_id},
                      {"usage", std::move(list)},
                      {"totals", json::object{{"requests", total.requests},
                                              {"prompt_tokens", total.prompt_tokens},
                                              {"completion_tokens", total.completion_tokens},
                                              {"cancelled", total.cancelled},
                                              {"errors", total.errors}}}};
    return json::serialize(body);
}

net::awaitable<void> usage(app_context& app, exchange& ex) {
    if (!ex.key()) {
        co_await ex.respond_json(http_status::unauthorized,
                                 R"({"error":"an API key is required","code":401})");
        co_return;
    }
    const std::string key_id = ex.key()->id;
    std::optional<std::vector<usage_row>> rows;
    try {
        auto found = co_await run_blocking(app.store_pool, [&app, &key_id] {
            // Every finished request counts: what the ledger still holds is written first.
            app.usage->flush();
            return app.db.usage(std::optional<std::string>{key_id});
        });
        rows = std::move(found);
    } catch (const std::exception& e) {
        spdlog::warn("usage for key {}: store failed: {}", key_id, e.what());
    }
    if (!rows) {
        co_await ex.respond_json(http_status::service_unavailable,
                                 R"({"error":"the usage store is unavailable; try again later","code":503})");
        co_return;
    }
    auto body = usage_json(key_id, *rows);
    co_await ex.respond_json(http_status::ok, std::move(body));
}

}  // namespace

void add_usage_routes(router& routes, app_context& app) {
    routes.add(http_verb::get, "/api/v1/usage", [&app](exchange& ex) { return usage(app, ex); });
}

}  // namespace sluice
