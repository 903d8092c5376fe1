#pragma once
// provider = "openai": any OpenAI-compatible /chat/completions endpoint, streamed.
#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

// `executor` runs the upstream I/O (the server's io_context). The key is read from the environment
// variable cfg.api_key_env at construction; it is never logged.
std::shared_ptr<provider> make_openai_provider(const model_config& cfg,
                                               boost::asio::any_io_executor executor);

}  // namespace sluice
