#pragma once
#include <CLI/CLI.hpp>
#include <functional>

#include "core/config.h"

namespace sluice {

// `sluice models pull ORG/REPO[:QUANT] | list | rm ORG/REPO[:QUANT]` (src/models/).
void add_models_command(CLI::App& app, const std::function<config()>& load);

// Replaces every llama model's `path = "hf:ORG/REPO[:QUANT]"` with the pulled file, pulling it first
// when the models folder has none. Throws std::runtime_error when a pull fails.
void resolve_hub_models(config& cfg);

}  // namespace sluice
