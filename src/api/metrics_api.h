#pragma once
// GET /metrics: the Prometheus text (exposition format 0.0.4) of metrics::get().
//
// It needs an API key like every endpoint but /healthz (SPEC: keys guard every endpoint except
// health). Prometheus scrapes that as it is with `authorization: {type: Bearer, credentials_file:
// ...}` in its scrape_config; an open /metrics would tell anyone who can reach the port which models
// are configured and how busy they are, so it stays behind the key.
#include <functional>
#include <vector>

#include "http/router.h"
#include "routing/orchestrator.h"
#include "turn/app_context.h"

namespace sluice {

// Per-model state read at each scrape (circuit, queue depth): the orchestrator's models_status().
// Without it (empty function) the providers' own status is used and circuits read closed.
using models_status_fn = std::function<std::vector<model_status>()>;

void add_metrics_route(router& routes, app_context& app, models_status_fn models_status = {});

}  // namespace sluice
