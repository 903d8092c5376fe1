#pragma once
// The body of POST /api/v1/chat/stream and /api/v1/chat (SPEC §3), parsed and validated. Every
// rule of the SPEC's table is checked here, in the table's order; the first violation is returned.
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"
#include "core/config.h"

namespace sluice {

struct seed_request {
    std::string message;
    std::optional<std::string> session_id;
    std::optional<int> max_tokens;
    std::optional<double> temperature;
    std::optional<std::string> model_type;  // "auto" | "local_small" | "cloud_large"; nullopt: absent
    std::optional<std::string> preferred_model;
    bool stream = false;
    bool resumable = false;  // sluice's own: the stream may be resumed after a disconnect
};

bool is_well_formed_utf8(std::string_view text);
bool is_valid_session_id(std::string_view id);

// `models` bounds max_tokens (by the models the request could reach) and resolves preferred_model.
// Errors: 400 for every malformed field, 404 for an unknown preferred_model. A null field counts
// as absent.
std::variant<seed_request, api_error> parse_seed_request(std::string_view body,
                                                         const std::vector<model_config>& models);

// Whether a body asks for a stream ({"stream": true}); false when it is not even JSON.
bool body_requests_stream(std::string_view body);

}  // namespace sluice
