#pragma once
// The model a client asks for by name, the same on every API: a configured model's name, a routing
// name (auto, local_small, cloud_large), or one of a model's `aliases` (glob patterns such as
// "claude-*", which is how Claude Code and the Anthropic SDKs reach a model of any wire).
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/glob.h"

namespace sluice {

// What a name asks the router for: a model (preferred_model) or a role (model_type).
struct model_choice {
    std::optional<std::string> preferred_model;
    std::optional<std::string> model_type;  // "auto" | "local_small" | "cloud_large"
};

// Routing names first, then configured names, then aliases in config order. nullopt: no such model.
std::optional<model_choice> resolve_model_name(const config& cfg, std::string_view requested);

// "auto, local_small, cloud_large, local, gpt (aliases: claude-*)": what a client may ask for, for
// the message of an unknown model's 404.
std::string known_model_names(const config& cfg);

}  // namespace sluice
