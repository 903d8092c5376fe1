#include "http/auth.h"

#include <spdlog/spdlog.h>

#include "core/blocking.h"
#include "core/ids.h"

namespace sluice {

namespace net = boost::asio;

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
        if (x != y) return false;
    }
    return true;
}

api_error unauthorized(std::string message) {
    return {.code = 401, .message = std::move(message)};
}

// The cache is pruned when it grows past this, so a flood of distinct keys cannot grow it.
constexpr std::size_t k_max_cached_keys = 10000;

}  // namespace

std::optional<std::string_view> parse_bearer(std::string_view value) {
    while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
    while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
    auto space = value.find_first_of(" \t");
    if (space == std::string_view::npos || !iequals(value.substr(0, space), "bearer")) return std::nullopt;
    auto token = value.substr(space);
    while (!token.empty() && is_space(token.front())) token.remove_prefix(1);
    if (token.empty()) return std::nullopt;
    for (char c : token) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
    }
    return token;
}

std::optional<std::string_view> parse_api_key(std::string_view value) {
    while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
    while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
    if (value.empty()) return std::nullopt;
    for (char c : value) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
    }
    return value;
}

authenticator::authenticator(store& keys, net::thread_pool& store_pool, std::chrono::milliseconds cache_ttl)
    : store_(keys), pool_(store_pool), ttl_(cache_ttl) {}

net::awaitable<auth_result> authenticator::check(std::string_view header_value, std::string_view api_key) {
    std::optional<std::string_view> token;
    if (!header_value.empty()) {
        token = parse_bearer(header_value);
        if (!token)
            co_return auth_result{.error =
                                      unauthorized("malformed Authorization header: expected Bearer <key>")};
    } else if (!api_key.empty()) {
        token = parse_api_key(api_key);
        if (!token) co_return auth_result{.error = unauthorized("malformed x-api-key header")};
    } else {
        co_return auth_result{
            .error = unauthorized("missing API key: send Authorization: Bearer <key> or x-api-key: <key>")};
    }
    std::string hash = sha256_hex(*token);

    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock{mutex_};
        if (auto it = cache_.find(hash); it != cache_.end()) {
            if (it->second.expires > now) co_return auth_result{.key = it->second.key};
            cache_.erase(it);
        }
    }

    std::optional<api_key_record> record;
    try {
        // A named callable: GCC 12 destroys a capturing lambda temporary inside co_await twice.
        auto lookup = [this, &hash] { return store_.find_key_by_hash(hash); };
        record = co_await run_blocking(pool_, lookup);
    } catch (const std::exception& e) {
        spdlog::warn("auth: key lookup failed: {}", e.what());
        co_return auth_result{.error = {.code = 503, .message = "the key store is unavailable"}};
    }
    if (!record || record->revoked || !constant_time_equal(record->hash, hash)) {
        co_return auth_result{.error = unauthorized("invalid API key")};
    }
    authenticated_key key{.id = record->id, .name = record->name, .limits = record->limits};
    {
        std::lock_guard lock{mutex_};
        if (cache_.size() >= k_max_cached_keys) cache_.clear();
        cache_[hash] = cached{key, std::chrono::steady_clock::now() + ttl_};
    }
    co_return auth_result{.key = std::move(key)};
}

}  // namespace sluice
