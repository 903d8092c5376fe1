#pragma once
// GET /api/v1/sessions/{id} (the stored messages) and DELETE (forgets them). A session belongs to the
// key that made it: any other key gets 404, exactly as for a session that does not exist.
#include <string>
#include <vector>

#include "store/store.h"
#include "turn/app_context.h"

namespace sluice {

class router;

// {"session_id", "messages": [{"role", "content", "model", "prompt_tokens", "completion_tokens",
// "finish_reason", "created_ms"}]}
std::string session_json(const std::string& session_id, const std::vector<stored_message>& messages);

void add_session_routes(router& routes, app_context& app);

}  // namespace sluice
