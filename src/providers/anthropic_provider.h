#pragma once
// provider = "anthropic": Anthropic's Messages API (/v1/messages), streamed.
#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

// `executor` runs the upstream I/O. The key is read from the environment variable cfg.api_key_env at
// construction and sent as x-api-key; it is never logged. base_url defaults to
// https://api.anthropic.com/v1.
std::shared_ptr<provider> make_anthropic_provider(const model_config& cfg,
                                                  boost::asio::any_io_executor executor);

}  // namespace sluice
