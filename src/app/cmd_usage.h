#pragma once
#include <CLI/CLI.hpp>
#include <functional>

#include "core/config.h"

namespace sluice {

// `sluice usage [--key ID] [--json]`: the usage ledger per key and model, from the store.
void add_usage_command(CLI::App& app, const std::function<config()>& load);

}  // namespace sluice
