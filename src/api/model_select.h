#pragma once
// Which configured model answers a seed request. This is the stand-in for the orchestrator
// (src/routing): preferred_model, then an explicit model_type, else the first configured model.
#include <optional>
#include <string>
#include <variant>

#include "api/app.h"
#include "core/api_error.h"

namespace sluice {

struct model_choice {
    std::size_t index = 0;  // into cfg.models / providers
    std::string reason;     // route.reason: preferred_model | explicit | default
    double score = 0.0;
};

// `model_type`: "auto", "local_small", "cloud_large" or nullopt (then routing.default_model_type).
// Errors: 404 unknown preferred_model, 503 when no model of the wanted role is configured.
std::variant<model_choice, api_error> choose_model(const app_context& app,
                                                   const std::optional<std::string>& preferred_model,
                                                   const std::optional<std::string>& model_type);

}  // namespace sluice
