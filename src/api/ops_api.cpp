#include "api/ops_api.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/blocking.h"
#include "routing/orchestrator.h"

namespace sluice {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

net::awaitable<void> healthz(exchange& ex) {
    std::string body = R"({"status":"ok"})";
    co_await ex.respond_json(http_status::ok, std::move(body));
}

net::awaitable<void> readyz(app_context& app, exchange& ex) {
    bool store_ok = false;
    try {
        store_ok = co_await run_blocking(app.store_pool, [&app] { return app.db.healthy(); });
    } catch (const std::exception&) {
        store_ok = false;
    }
    bool any_model = false;
    for (const auto& p : app.providers) any_model = any_model || p->status().available;
    json::object body{{"status", store_ok ? "ready" : "not ready"},
                      {"store", store_ok ? "ok" : "unavailable"},
                      {"models_available", any_model}};
    auto text = json::serialize(body);
    co_await ex.respond_json(store_ok ? http_status::ok : http_status::service_unavailable, std::move(text));
}

// Each model's live state as the orchestrator sees it: available means a request may go there now
// (provider up, queue not full, circuit not open).
net::awaitable<void> models(app_context& app, exchange& ex) {
    json::array list;
    for (const auto& status : app.routing->models_status()) {
        json::object entry{{"name", status.name},
                           {"role", to_string(status.role)},
                           {"provider", status.provider},
                           {"available", status.available},
                           {"circuit", to_string(status.circuit)},
                           {"recent_errors", status.recent_errors},
                           {"queue_depth", status.queue_depth},
                           {"active", status.active},
                           {"supports_tools", status.supports_tools},
                           {"supports_images", status.supports_images}};
        if (!status.detail.empty()) entry["detail"] = status.detail;
        if (status.provider == "llama") {
            entry["gpu_layers"] = status.gpu_layers;
            entry["gpu_offload"] = status.gpu_offload;
        }
        list.push_back(std::move(entry));
    }
    json::object body;
    body["models"] = std::move(list);
    auto text = json::serialize(body);
    co_await ex.respond_json(http_status::ok, std::move(text));
}

}  // namespace

void add_ops_routes(router& routes, app_context& app) {
    routes.add(http_verb::get, "/healthz", healthz, {.needs_auth = false});
    // Probes (load balancers, Kubernetes) carry no key; readiness says nothing secret.
    routes.add(http_verb::get, "/readyz", [&app](exchange& ex) { return readyz(app, ex); },
               {.needs_auth = false});
    routes.add(http_verb::get, "/api/v1/models", [&app](exchange& ex) { return models(app, ex); });
}

}  // namespace sluice
