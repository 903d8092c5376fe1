#pragma once
#include <CLI/CLI.hpp>
#include <functional>

#include "core/config.h"

namespace sluice {

// `sluice keys create --name N [--rpm N] [--tpm N] [--max-streams N] | list | revoke ID`
void add_keys_command(CLI::App& app, const std::function<config()>& load);

}  // namespace sluice
