#include <charconv>
#include <cstdlib>

#include "core/api_error.h"
#include "store/redis_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "store/store_url.h"

namespace sluice {

namespace {

[[noreturn]] void bad_url(const std::string& url, const std::string& why) {
    throw config_error("store.url = \"" + url + "\": " + why +
                       "; allowed: \"sqlite://PATH\" (e.g. sqlite://sluice-data/sluice.db) or "
                       "\"redis://HOST:PORT/DB\" (e.g. redis://127.0.0.1:6379/0)");
}

int parse_number(const std::string& url, std::string_view text, const char* what, int lo, int hi) {
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < lo || value > hi) {
        bad_url(url, std::string(what) + " must be a number from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
    }
    return value;
}

}  // namespace

store_url parse_store_url(const std::string& url) {
    constexpr std::string_view k_sqlite = "sqlite://";
    constexpr std::string_view k_redis = "redis://";
    const std::string_view text = url;
    if (text.starts_with(k_sqlite)) {
        const auto path = text.substr(k_sqlite.size());
        if (path.empty()) bad_url(url, "the sqlite path is empty");
        return sqlite_url{std::string(path)};
    }
    if (text.starts_with(k_redis)) {
        auto rest = text.substr(k_redis.size());
        if (rest.find('@') != std::string_view::npos) {
            bad_url(
                url,
                "a password in the URL is not allowed (name an environment variable in store.password_env)");
        }
        redis_url out;
        const auto slash = rest.find('/');
        if (slash != std::string_view::npos) {
            out.db = parse_number(url, rest.substr(slash + 1), "the database number", 0, 1'000'000);
            rest = rest.substr(0, slash);
        }
        const auto colon = rest.rfind(':');
        if (colon != std::string_view::npos) {
            out.port = parse_number(url, rest.substr(colon + 1), "the port", 1, 65535);
            rest = rest.substr(0, colon);
        }
        if (rest.empty()) bad_url(url, "the redis host is empty");
        out.host = std::string(rest);
        return out;
    }
    bad_url(url, "unknown scheme");
}

std::unique_ptr<store> open_store(const store_config& cfg) {
    const auto url = parse_store_url(cfg.url);
    if (const auto* sqlite = std::get_if<sqlite_url>(&url))
        return std::make_unique<sqlite_store>(sqlite->path);
    const auto& redis = std::get<redis_url>(url);
    std::string password;
    if (!cfg.password_env.empty()) {
        const char* value = std::getenv(cfg.password_env.c_str());
        if (!value || !*value) {
            throw config_error("store.password_env = \"" + cfg.password_env +
                               "\": that environment variable is not set; set it to the Redis password or "
                               "leave store.password_env empty");
        }
        password = value;
    }
    return std::make_unique<redis_store>(redis, std::move(password));
}

}  // namespace sluice

namespace sluice {

void store::save_response(const stored_response&) {
    throw store_unavailable("this store keeps no responses");
}

std::optional<stored_response> store::load_response(const std::string&, std::int64_t) {
    throw store_unavailable("this store keeps no responses");
}

bool store::delete_response(const std::string&) {
    throw store_unavailable("this store keeps no responses");
}

shared_log_feedback store::publish_log(const shared_log_update&) {
    throw store_unavailable("this store shares no stream logs");
}

std::optional<shared_log_slice> store::read_shared_log(const std::string&, std::uint64_t, std::size_t,
                                                       std::int64_t, bool) {
    throw store_unavailable("this store shares no stream logs");
}

void store::append_many(std::vector<session_append>& batch) {
    for (auto& entry : batch) {
        try {
            append_messages(entry.session_id, entry.key_id, entry.messages);
            entry.error = nullptr;
        } catch (...) {
            entry.error = std::current_exception();
        }
    }
}

}  // namespace sluice
