// Fuzz target for the config file (src/core/config.h). The input is the TOML text; its comment lines
// `#!env NAME=VALUE` also set environment overrides (they stay TOML comments). Property: parse_config
// either throws config_error with a message, or returns a config whose every value is within its
// rule; never another exception.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "core/config.h"
#include "fuzz_check.h"

namespace {

using sluice::fuzz::check;

bool in(double value, double low, double high) {
    return value >= low && value <= high;  // false for NaN
}

void check_config(const sluice::config& cfg) {
    const auto& s = cfg.server;
    const auto colon = s.listen.rfind(':');
    check(colon != std::string::npos && colon > 0, "listen is HOST:PORT");
    const auto port = s.listen.substr(colon + 1);
    check(!port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos &&
              std::stoi(port) <= 65535,
          "the port is 0..65535");
    check(in(s.heartbeat_interval_s, 1, 3600) && in(static_cast<double>(s.max_body_bytes), 64, 1 << 30) &&
              in(s.request_timeout_s, 1, 86400) && in(s.header_timeout_s, 1, 3600) &&
              in(s.idle_timeout_s, 1, 86400) && in(s.write_timeout_s, 0, 86400) &&
              in(s.io_threads, 0, 1024) && in(s.shutdown_grace_s, 0, 3600) &&
              in(static_cast<double>(s.max_connections), 0, 1e7),
          "server values in range");
    check(cfg.store.url.starts_with("sqlite://") || cfg.store.url.starts_with("redis://"), "store.url");
    const auto& r = cfg.routing;
    check(r.default_model_type == "auto" || r.default_model_type == "local_small" ||
              r.default_model_type == "cloud_large",
          "routing.default_model_type");
    check(!(r.threshold && r.cloud_share), "threshold or cloud_share, not both");
    check(!r.threshold || in(*r.threshold, 0, 1), "routing.threshold 0..1");
    check(!r.cloud_share || in(*r.cloud_share, 0, 1), "routing.cloud_share 0..1");
    check(in(r.session_wait_ms, 0, 3600000), "routing.session_wait_ms");
    const auto& l = cfg.limits;
    check(in(l.requests_per_minute, 0, 1e9) && in(l.tokens_per_minute, 0, 1e9) &&
              in(l.max_concurrent_streams, 0, 1e9),
          "limits in range");
    check(!cfg.models.empty(), "there is a model");
    std::set<std::string> names;
    for (const auto& m : cfg.models) {
        check(!m.name.empty() && names.insert(m.name).second, "model names are unique and non-empty");
        check(m.provider == "llama" || m.provider == "openai" || m.provider == "anthropic",
              "a known provider");
        if (m.provider != "llama")
            check(m.base_url.starts_with("http://") || m.base_url.starts_with("https://"),
                  "a cloud base_url");
        check(!m.model.empty(), "the upstream model name is set");
        check(in(m.n_ctx, 16, 1048576) && in(m.n_parallel, 1, 256) && in(m.n_threads, 0, 1024) &&
                  in(m.n_batch, 1, 65536) && in(m.queue_size, 0, 100000),
              "llama values in range");
        check(in(m.connect_timeout_ms, 1, 600000) && in(m.first_byte_timeout_ms, 1, 3600000) &&
                  in(m.idle_timeout_ms, 1, 3600000) && in(m.request_timeout_s, 1, 86400) &&
                  in(m.max_connections, 1, 100000) && in(m.pool_wait_ms, 0, 600000),
              "cloud values in range");
        check(in(m.max_tokens_limit, 1, 10000000), "max_tokens_limit 1..1e7 once resolved");
        check(in(m.circuit_failures, 1, 100000) && in(m.circuit_open_s, 1, 86400), "circuit values in range");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::map<std::string, std::string> env;
    for (std::size_t at = 0; at < text.size();) {
        const auto end = std::min(text.find('\n', at), text.size());
        const auto line = text.substr(at, end - at);
        if (line.starts_with("#!env ")) {
            const auto entry = line.substr(6);
            const auto eq = entry.find('=');
            if (eq != std::string_view::npos) env[std::string(entry.substr(0, eq))] = entry.substr(eq + 1);
        }
        at = end + 1;
    }
    try {
        check_config(sluice::parse_config(text, env));
    } catch (const sluice::config_error& e) {
        const std::string_view message = e.what();
        check(message.starts_with("config: ") && message.size() > 8, "a config_error has a message");
    } catch (...) {
        sluice::fuzz::violated("parse_config threw something else than config_error");
    }
    return 0;
}
