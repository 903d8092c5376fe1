#pragma once
// `sluice serve`: opens the store, builds the providers and the orchestrator, listens, and runs
// until SIGINT/SIGTERM (then drains streams for server.shutdown_grace_s).
#include "core/config.h"

namespace sluice {

// Returns the process exit code. Start-up errors (bad model path, store unreachable, port in use)
// are logged with a clear message and give a non-zero code.
int run_serve(const config& cfg);

}  // namespace sluice
