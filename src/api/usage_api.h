#pragma once
// GET /api/v1/usage: the usage ledger rows of the caller's own key, per model.
#include "http/router.h"
#include "turn/app_context.h"

namespace sluice {

void add_usage_routes(router& routes, app_context& app);

}  // namespace sluice
