#pragma once
// Operational endpoints: GET /healthz (no key), GET /readyz, GET /api/v1/models.
#include "http/router.h"
#include "turn/app_context.h"

namespace sluice {

void add_ops_routes(router& routes, app_context& app);

}  // namespace sluice
