#pragma once
// Bearer-key authentication against the store. Keys are looked up by their SHA-256 only; positive
// answers are cached for at most `cache_ttl` so a revoked key stops working within that time.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/api_error.h"
#include "http/exchange.h"
#include "store/store.h"

namespace sluice {

// The token of an `Authorization: Bearer <token>` header value. nullopt when the value is not of
// that shape (other scheme, no token, spaces inside the token).
std::optional<std::string_view> parse_bearer(std::string_view header_value);

// The key of an `x-api-key` header value (Anthropic's clients): the trimmed value, nullopt when
// empty or holding spaces or control characters.
std::optional<std::string_view> parse_api_key(std::string_view header_value);

struct auth_result {
    std::optional<authenticated_key> key;
    api_error error;  // when !key: 401 (missing, malformed, unknown, revoked) or 503 (store down)
};

class authenticator {
  public:
    authenticator(store& keys, boost::asio::thread_pool& store_pool,
                  std::chrono::milliseconds cache_ttl = std::chrono::milliseconds{1000});

    // `header_value` is the Authorization header (empty when absent); without one, `api_key` (the
    // x-api-key header Anthropic's clients send; empty when absent) is the key. Never logs the key.
    boost::asio::awaitable<auth_result> check(std::string_view header_value, std::string_view api_key = {});

  private:
    struct cached {
        authenticated_key key;
        std::chrono::steady_clock::time_point expires;
    };

    store& store_;
    boost::asio::thread_pool& pool_;
    std::chrono::milliseconds ttl_;
    std::mutex mutex_;
    std::unordered_map<std::string, cached> cache_;  // by sha256_hex of the key
};

}  // namespace sluice
