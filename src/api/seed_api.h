#pragma once
// The seed endpoints (SPEC §3, §4): POST /api/v1/chat/stream and POST /api/v1/chat. Their bytes are
// in seed_wire; the turn itself is turn/chat_turn.
#include "http/http_types.h"
#include "http/router.h"
#include "turn/app_context.h"

namespace sluice {

void add_chat_routes(router& routes, app_context& app);

// An error for the seed stream endpoint before anything was sent: the real status and a body of
// one error event + [DONE] (session_id taken from the body when it holds a valid one).
http_response seed_sse_error(const http_request& request, const api_error& error);

// The header `X-Sluice-Resumable: 1` (or `true`): the stream is to be resumable, whatever the API.
bool asks_resumable(const http_request& request);

}  // namespace sluice
