#pragma once
#include <CLI/CLI.hpp>

namespace sluice {

// `sluice make-tiny-model OUT.gguf [--vocab NAME] [--embd N] [--layers N] [--heads N] [--ff N] [--seed N]`
void add_make_tiny_model_command(CLI::App& app);

}  // namespace sluice
