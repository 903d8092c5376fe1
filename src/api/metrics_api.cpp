#include "api/metrics_api.h"

#include "core/metrics.h"

namespace sluice {

namespace net = boost::asio;

namespace {

std::int64_t circuit_value(circuit_state state) {
    switch (state) {
        case circuit_state::open:
            return metrics::k_circuit_open;
        case circuit_state::half_open:
            return metrics::k_circuit_half_open;
        case circuit_state::closed:
            break;
    }
    return metrics::k_circuit_closed;
}

// Gauges of state that lives elsewhere are refreshed when scraped rather than on every change, so
// neither the circuit breaker nor the llama queue has to know about metrics.
void refresh_model_gauges(app_context& app, const models_status_fn& models_status) {
    auto& m = metrics::get();
    if (models_status) {
        for (const auto& s : models_status()) {
            m.circuit_state(s.name).set(circuit_value(s.circuit));
            if (s.role == model_role::local_small) m.local_queue_depth(s.name).set(s.queue_depth);
        }
        return;
    }
    for (std::size_t i = 0; i < app.providers.size() && i < app.cfg.models.size(); ++i) {
        const auto& cfg = app.cfg.models[i];
        const auto status = app.providers[i]->status();
        m.circuit_state(cfg.name).set(status.available ? metrics::k_circuit_closed : metrics::k_circuit_open);
        if (cfg.role == model_role::local_small) m.local_queue_depth(cfg.name).set(status.queue_depth);
    }
}

net::awaitable<void> serve_metrics(app_context& app, const models_status_fn& models_status, exchange& ex) {
    refresh_model_gauges(app, models_status);
    http_response res{http_status::ok, ex.request().version()};
    res.set(boost::beast::http::field::content_type, metrics::k_content_type);
    res.set(boost::beast::http::field::cache_control, "no-cache");
    res.body() = metrics::get().render();
    co_await ex.respond(std::move(res));
}

}  // namespace

void add_metrics_route(router& routes, app_context& app, models_status_fn models_status) {
    routes.add(http_verb::get, "/metrics", [&app, models_status = std::move(models_status)](exchange& ex) {
        return serve_metrics(app, models_status, ex);
    });
}

}  // namespace sluice
