#pragma once
// Parsing of store.url: "sqlite://PATH" (relative to the working directory; "sqlite:///abs/path"
// for an absolute one; "sqlite://:memory:" for tests) or "redis://HOST[:PORT][/DB]".
#include <string>
#include <variant>

namespace sluice {

struct sqlite_url {
    std::string path;
};

struct redis_url {
    std::string host;
    int port = 6379;
    int db = 0;
};

using store_url = std::variant<sqlite_url, redis_url>;

// Throws config_error naming store.url, the value and what is allowed.
store_url parse_store_url(const std::string& url);

}  // namespace sluice
