#pragma once
// provider = "anthropic": Anthropic's Messages API (/v1/messages), streamed.
#include <memory>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

// The upstream I/O runs on the io_context of each calling coroutine (see http_client.h). The key is
// read from the environment variable cfg.api_key_env at construction and sent as x-api-key; it is
// never logged. base_url defaults to https://api.anthropic.com/v1.
std::shared_ptr<provider> make_anthropic_provider(const model_config& cfg);

}  // namespace sluice
