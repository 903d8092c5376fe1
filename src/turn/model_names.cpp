#include "turn/model_names.h"

namespace sluice {

namespace {

bool is_routing_name(std::string_view name) {
    return name == "auto" || name == "local_small" || name == "cloud_large";
}

}  // namespace

std::optional<model_choice> resolve_model_name(const config& cfg, std::string_view requested) {
    if (is_routing_name(requested)) return model_choice{.model_type = std::string(requested)};
    for (const auto& model : cfg.models) {
        if (model.name == requested) return model_choice{.preferred_model = model.name};
    }
    for (const auto& model : cfg.models) {
        for (const auto& alias : model.aliases) {
            if (glob_match(alias, requested)) return model_choice{.preferred_model = model.name};
        }
    }
    return std::nullopt;
}

std::string known_model_names(const config& cfg) {
    std::string out = "auto";
    for (const auto role : {model_role::local_small, model_role::cloud_large}) {
        for (const auto& model : cfg.models) {
            if (model.role != role) continue;
            out += ", ";
            out += to_string(role);
            break;
        }
    }
    std::string aliases;
    for (const auto& model : cfg.models) {
        out += ", " + model.name;
        for (const auto& alias : model.aliases) aliases += (aliases.empty() ? "" : ", ") + alias;
    }
    if (!aliases.empty()) out += " (aliases: " + aliases + ")";
    return out;
}

}  // namespace sluice
