// Fuzz target for the seed request parser (SPEC §3). Property: any body is either rejected with a
// 4xx error or accepted with every field inside its rule.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>
#include <vector>

#include "api/seed_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::vector<sluice::model_config> models = [] {
        sluice::model_config local{.name = "local", .provider = "llama", .max_tokens_limit = 4096};
        return std::vector<sluice::model_config>{local};
    }();
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto parsed = sluice::parse_seed_request(body, models);
    if (const auto* error = std::get_if<sluice::api_error>(&parsed)) {
        if (error->code < 400 || error->code > 499 || error->message.empty()) std::abort();
        return 0;
    }
    const auto& request = std::get<sluice::seed_request>(parsed);
    if (request.message.empty() || !sluice::is_well_formed_utf8(request.message)) std::abort();
    if (request.session_id && !sluice::is_valid_session_id(*request.session_id)) std::abort();
    if (request.max_tokens && (*request.max_tokens < 1 || *request.max_tokens > 4096)) std::abort();
    if (request.temperature && (*request.temperature < 0 || *request.temperature > 2)) std::abort();
    return 0;
}
