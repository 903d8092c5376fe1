#include "inference/llama_provider.h"

#include "core/api_error.h"

namespace sluice {

std::shared_ptr<provider> make_llama_provider(const model_config& cfg) {
    throw config_error("llama provider: not implemented yet (" + cfg.path + ")");
}

}  // namespace sluice
