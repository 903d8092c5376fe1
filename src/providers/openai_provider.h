#pragma once
// provider = "openai": any OpenAI-compatible /chat/completions endpoint, streamed.
#include <memory>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

// The upstream I/O runs on the io_context of each calling coroutine (see http_client.h). The key is
// read from the environment variable cfg.api_key_env at construction; it is never logged.
std::shared_ptr<provider> make_openai_provider(const model_config& cfg);

}  // namespace sluice
