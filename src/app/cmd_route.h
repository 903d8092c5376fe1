#pragma once
#include <CLI/CLI.hpp>
#include <functional>

#include "core/config.h"

namespace sluice {

// `sluice route MESSAGE [--turns N] [--json]`: the auto policy's decision, score and reasons, no
// model call. `sluice route --jsonl`: reads lines {"message": "...", "turns_so_far"?: n,
// "conversation_chars"?: n} on stdin and writes {"score": s, "role": "...", "reason": "...",
// "reasons": [...]} per line (offline evaluation, scripts/eval_router.py).
void add_route_command(CLI::App& app, const std::function<config()>& load_config);

}  // namespace sluice
