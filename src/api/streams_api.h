#pragma once
// GET /api/v1/streams/{id}: resumes a stream started with "resumable": true (seed endpoint,
// /v1/chat/completions) after the event named by Last-Event-ID, then follows it live.
#include "http/router.h"
#include "turn/app_context.h"

namespace sluice {

void add_stream_routes(router& routes, app_context& app);

}  // namespace sluice
