// `sluice serve`: wiring of store, providers and the HTTP server (being built).
#include "api/serve.h"

#include <spdlog/spdlog.h>

namespace sluice {

int run_serve(const config& cfg) {
    spdlog::error("serve is not implemented yet (listen {})", cfg.server.listen);
    return 1;
}

}  // namespace sluice
