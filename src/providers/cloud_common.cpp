#include "providers/cloud_common.h"

#include <spdlog/spdlog.h>

#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

namespace sluice {
namespace {

constexpr std::size_t k_max_message_bytes = 300;

std::string trimmed(std::string text) {
    for (auto& c : text)
        if (c == '\r' || c == '\n' || c == '\t') c = ' ';
    if (text.size() > k_max_message_bytes) {
        std::size_t cut = k_max_message_bytes;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 chars
        text.resize(cut);
        text += "...";
    }
    return text;
}

}  // namespace

cloud_endpoint make_cloud_endpoint(const model_config& cfg, boost::asio::any_io_executor executor,
                                   std::string_view default_base_url) {
    cloud_endpoint endpoint;
    std::string base_text = cfg.base_url.empty() ? std::string(default_base_url) : cfg.base_url;
    std::string error;
    endpoint.base = parse_url(base_text, &error);
    if (!endpoint.base) {
        endpoint.unavailable = "base_url \"" + base_text + "\" is not usable: " + error;
        return endpoint;
    }
    if (!cfg.api_key_env.empty()) {
        const char* key = std::getenv(cfg.api_key_env.c_str());
        if (key == nullptr || *key == '\0') {
            endpoint.unavailable =
                "the environment variable " + cfg.api_key_env + " (api_key_env) is not set";
        } else {
            endpoint.api_key = key;
        }
    }
    http_client_options options{
        .connect_timeout = std::chrono::milliseconds(cfg.connect_timeout_ms),
        .first_byte_timeout = std::chrono::milliseconds(cfg.first_byte_timeout_ms),
        .idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms),
        .request_timeout = std::chrono::seconds(cfg.request_timeout_s),
        .max_connections = cfg.max_connections,
    };
    // A private CA (a corporate proxy, a test server) besides the system store.
    if (const char* ca_file = std::getenv("SLUICE_UPSTREAM_CA_FILE"); ca_file && *ca_file) {
        std::ifstream in(ca_file);
        std::stringstream pem;
        pem << in.rdbuf();
        options.extra_ca_pem = pem.str();
        if (options.extra_ca_pem.empty())
            endpoint.unavailable = std::string("SLUICE_UPSTREAM_CA_FILE cannot be read: ") + ca_file;
    }
    try {
        endpoint.client =
            std::make_unique<http_client>(std::move(executor), *endpoint.base, std::move(options));
    } catch (const std::exception& e) {
        endpoint.unavailable = e.what();
    }
    return endpoint;
}

stream_chunk upstream_failure_chunk(const upstream_error& error, const model_config& cfg, bool mid_stream) {
    spdlog::warn("upstream {} ({}): {}", cfg.name, to_string(error.kind), error.detail);
    switch (error.kind) {
        case upstream_failure::connect:
        case upstream_failure::pool_timeout:
            return stream_chunk::error(503, "cannot reach the upstream model " + cfg.name);
        case upstream_failure::connect_timeout:
            return stream_chunk::error(504, "connecting to the upstream model " + cfg.name + " timed out");
        case upstream_failure::tls:
            return stream_chunk::error(502,
                                       "the TLS connection to the upstream model " + cfg.name + " failed");
        case upstream_failure::first_byte_timeout:
            return stream_chunk::error(504, "the upstream model " + cfg.name + " did not answer in time");
        case upstream_failure::idle_timeout:
            return stream_chunk::error(504, "the upstream model " + cfg.name + " stopped sending data");
        case upstream_failure::request_timeout:
            return stream_chunk::error(504, "the request to the upstream model " + cfg.name + " timed out");
        case upstream_failure::closed:
            return stream_chunk::error(502, mid_stream ? "the upstream connection closed mid-stream"
                                                       : "the upstream closed the connection");
        case upstream_failure::protocol:
            return stream_chunk::error(502, "the upstream model " + cfg.name + " sent an invalid response");
        case upstream_failure::cancelled:
        case upstream_failure::none:
            break;
    }
    return stream_chunk::error(502, "upstream failure");
}

std::string upstream_error_message(std::string_view body) {
    boost::system::error_code ec;
    auto value = boost::json::parse(body, ec);
    if (!ec) {
        const boost::json::value* message = nullptr;
        if (auto* object = value.if_object()) {
            if (auto* error = object->if_contains("error")) {
                if (auto* inner = error->if_object())
                    message = inner->if_contains("message");
                else if (error->is_string())
                    message = error;
            }
            if (!message) message = object->if_contains("message");
            if (!message) message = object->if_contains("detail");
        }
        if (message && message->is_string()) return trimmed(std::string(message->get_string()));
    }
    return trimmed(std::string(body));
}

int parse_retry_after(std::string_view value, int fallback) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return fallback;
    bool digits = true;
    for (char c : value) digits = digits && c >= '0' && c <= '9';
    if (digits) return value.size() > 6 ? 86400 : std::max(0, std::atoi(std::string(value).c_str()));
    std::tm when{};
    std::string text(value);
    if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &when) == nullptr) return fallback;
    auto seconds = static_cast<long>(timegm(&when) - std::time(nullptr));
    return seconds > 0 ? static_cast<int>(std::min(seconds, 86400L)) : 0;
}

stream_chunk upstream_status_chunk(unsigned status, std::string_view body, std::string_view retry_after) {
    if (status == 401 || status == 403) return stream_chunk::error(502, "upstream rejected the credentials");
    std::string message = upstream_error_message(body);
    std::string suffix = message.empty() ? "" : ": " + message;
    if (status == 429) {
        return stream_chunk::error(429, "the upstream rate limit was reached" + suffix,
                                   parse_retry_after(retry_after, 1));
    }
    if (status >= 500)
        return stream_chunk::error(502, "upstream error (HTTP " + std::to_string(status) + ")" + suffix);
    return stream_chunk::error(502,
                               "upstream refused the request (HTTP " + std::to_string(status) + ")" + suffix);
}

boost::asio::awaitable<bool> caller_cancelled() {
    auto state = co_await boost::asio::this_coro::cancellation_state;
    co_return state.cancelled() != boost::asio::cancellation_type::none;
}

}  // namespace sluice
