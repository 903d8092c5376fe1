#pragma once
// provider = "llama": llama.cpp in process. One inference thread owns the model and context; requests
// reach it through a bounded queue; tokens come back through a bounded per-request channel.
#include <memory>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

// Loads the model at cfg.path. Throws config_error naming the path when it is missing or not GGUF.
std::shared_ptr<provider> make_llama_provider(const model_config& cfg);

}  // namespace sluice
