#include "turn/model_names.h"

namespace sluice {

namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_routing_name(std::string_view name) {
    return name == "auto" || name == "local_small" || name == "cloud_large";
}

}  // namespace

// Iterative with one backtrack point (the last `*`): linear in practice, no recursion on hostile input.
bool glob_match(std::string_view pattern, std::string_view text) {
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

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
