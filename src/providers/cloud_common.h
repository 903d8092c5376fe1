#pragma once
// What the cloud wire formats (openai, anthropic) share: the HTTP client set-up from a model's
// config, the API key from the environment, and the mapping of upstream failures to client errors.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/chunk.h"
#include "core/config.h"
#include "upstream/http_client.h"
#include "upstream/upstream_error.h"

namespace sluice {

// The pieces every cloud provider holds; `unavailable` explains why it cannot serve, when it cannot.
struct cloud_endpoint {
    std::optional<url> base;
    std::string api_key;  // never logged
    std::string unavailable;
    std::unique_ptr<http_client> client;
};

// Parses base_url and reads the key from cfg.api_key_env (when one is named). Never throws.
cloud_endpoint make_cloud_endpoint(const model_config& cfg, boost::asio::any_io_executor executor,
                                   std::string_view default_base_url);

// A transport failure before or during the stream, as the error chunk a client sees.
stream_chunk upstream_failure_chunk(const upstream_error& error, const model_config& cfg, bool mid_stream);

// A non-2xx upstream response, as the error chunk a client sees (401/403 → 502 credentials,
// 429 → 429 with Retry-After, other statuses → 502 with the upstream's own message).
stream_chunk upstream_status_chunk(unsigned status, std::string_view body, std::string_view retry_after);

// The human message inside an upstream error body ({"error":{"message"}} and similar), trimmed.
std::string upstream_error_message(std::string_view body);

// Retry-After as seconds (delta-seconds or an HTTP date); `fallback` when absent or unreadable.
int parse_retry_after(std::string_view value, int fallback);

// The model name sent upstream.
inline const std::string& upstream_model_name(const model_config& cfg) {
    return cfg.model.empty() ? cfg.name : cfg.model;
}

// ≈ 4 bytes per token: a cloud tokenizer is not at hand, and trimming only needs an estimate.
inline int estimate_tokens(std::string_view text) {
    return static_cast<int>((text.size() + 3) / 4);
}

boost::asio::awaitable<bool> caller_cancelled();

}  // namespace sluice
