#pragma once
// sluice's configuration (SPEC §2): one TOML file, every key overridable by SLUICE_<SECTION>_<KEY>.
// load_config() validates everything and throws config_error naming the key, the value and what is
// allowed, so a bad file stops start-up with one clear message.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"

namespace sluice {

struct server_config {
    std::string listen = "127.0.0.1:8080";
    int heartbeat_interval_s = 15;  // SSE ": ping" while no data flows
    std::size_t max_body_bytes = 1048576;
    int request_timeout_s = 300;  // whole stream, upstream included
    int header_timeout_s = 10;    // a client must send its request head within this (a new connection too)
    int idle_timeout_s = 60;      // keep-alive connection with no request, after its first
    int write_timeout_s = 30;  // a response write that makes no progress this long: the client left (0 = off)
    int io_threads = 0;        // 0 = number of cores
    int shutdown_grace_s = 10;  // streams get this long to finish on SIGTERM
    // Open client connections; 0 = derived from the open-file limit (RLIMIT_NOFILE / 2 - 64: a
    // stream may hold an upstream socket too, and the store, the model and the logs need some).
    std::size_t max_connections = 0;
    // An answer longer than this (text, reasoning and tool arguments, in bytes) is cut: the upstream
    // is cancelled and the answer ends with finish_reason "length"; so is a cloud answer past the
    // request's max_tokens. 0 = neither cap (the upstream is trusted).
    std::size_t max_answer_bytes = 4 * 1024 * 1024;
    std::string system_prompt;  // always sent first, never trimmed away
};

struct store_config {
    std::string url = "sqlite://sluice-data/sluice.db";  // or redis://host:port/db
    std::string password_env;                            // redis: env var holding the password
    int response_retention_days = 30;  // stored Responses API responses (store: true) live this long
    // Where `sluice models pull` (and a model's `path = "hf:ORG/REPO:QUANT"`) keeps GGUF files; empty
    // = $XDG_CACHE_HOME/sluice/models, else ~/.cache/sluice/models.
    std::string models_dir;
};

struct model_config {
    std::string name;
    model_role role = model_role::local_small;
    std::string provider;  // "llama" | "openai" | "anthropic"
    // Glob patterns (`*` any run, `?` one character; case-insensitive) of other names clients may ask
    // for this model by, e.g. "claude-*" for Claude Code. The first model whose alias matches wins.
    std::vector<std::string> aliases;

    // provider = "llama"
    // GGUF file; empty = the tiny demo model; "hf:ORG/REPO[:QUANT]" = pulled from Hugging Face on first
    // start into store.models_dir (src/models/), then loaded from there.
    std::string path;
    int n_ctx = 4096;
    int n_parallel = 4;  // sequences decoded together
    int n_threads = 0;   // 0 = number of cores
    int n_batch = 512;
    int queue_size = 16;  // requests waiting for a slot before 503
    // Layers offloaded to the GPU. Unset: every layer when llama.cpp was built with a GPU backend
    // (SLUICE_GPU=cuda, docs/OPERATIONS.md), none otherwise; asked of a CPU-only build: a warning, none.
    std::optional<int> n_gpu_layers;

    // provider = "openai" | "anthropic"
    std::string base_url;
    std::string model;        // the name sent upstream (defaults to name)
    std::string api_key_env;  // env var that holds the key; the key itself never in config
    int connect_timeout_ms = 5000;
    int first_byte_timeout_ms = 60000;
    int idle_timeout_ms = 60000;  // gap between two upstream chunks
    int request_timeout_s = 300;
    int max_connections = 1024;  // per model: open upstream connections (pooled keep-alive)
    int pool_wait_ms = 2000;  // all max_connections busy: a request waits this long, then 503 + Retry-After

    int max_tokens_limit = 0;  // 0 = n_ctx for local, 128000 for cloud
    int weight = 1;            // its share of its role's traffic (routing.balance); 0: only as a stand-in
    int circuit_failures = 5;  // consecutive failures before the circuit opens
    int circuit_open_s = 30;   // how long requests skip an open circuit

    // What the model can read and do; unset: cloud models can (the APIs behind them take tools and
    // images), the local model cannot until its template and grammar support land.
    std::optional<bool> supports_tools;
    std::optional<bool> supports_images;
    bool can_use_tools() const { return supports_tools.value_or(provider != "llama"); }
    bool can_read_images() const { return supports_images.value_or(provider != "llama"); }
};

// The largest max_tokens a model accepts: its max_tokens_limit, else n_ctx (local) or 128000.
int model_token_limit(const model_config& model);

// One [[routing.rules]] entry: when every match in `when` holds, `use` decides (docs/ROUTING.md).
struct routing_rule {
    std::string name;  // `rule<N>` (N counted from 1) when the file gives none; route.reason rule:<name>
    std::optional<std::string> key_name;   // glob over the API key's name
    std::string header_name;               // lower case; empty: no header match
    std::string header_value;              // glob over that header's value (any of its occurrences)
    std::optional<std::string> model;      // glob over the model name the client asked for ("" if none)
    std::optional<int> min_prompt_tokens;  // the conversation's estimated tokens (bytes / 4), inclusive
    std::optional<int> max_prompt_tokens;
    std::optional<bool> has_tools;
    std::optional<bool> has_images;
    std::optional<std::string> message_regex;  // ECMAScript, case-insensitive, over the new message
    std::string use;                           // a configured model's name, local_small, cloud_large, or auto
};

struct routing_config {
    std::string default_model_type = "auto";  // auto | local_small | cloud_large
    std::optional<double> threshold;          // score >= threshold goes to cloud_large
    std::optional<double> cloud_share;        // or: the share of traffic for the cloud (calibrated)
    bool fallback = true;                     // another model answers when the chosen one fails early
    int session_wait_ms = 30000;              // a second request on a busy session waits this long, then 409
    // Redis store: the session lock held in Redis expires this long after its holder last refreshed
    // it (a live holder refreshes it every third of this), so a lock whose process died frees itself.
    int session_lock_ttl_ms = 15000;
    // How the models of one role share its traffic: weighted (smooth weighted round robin by
    // `weight`), least_busy (fewest active streams), latency (lowest decayed time to first token).
    std::string balance = "weighted";
    std::vector<routing_rule> rules;  // [[routing.rules]], checked in order before the auto policy
};

// Resumable streams ("resumable": true, Responses API background): each keeps its events in a log
// that clients replay after an event id (docs/API.md, "Resuming a stream").
struct resume_config {
    // A stream's log holds at most this many bytes of events; past it the stream is no longer
    // resumable (an event says so) and the log keeps only the newest events for its live readers.
    std::size_t max_bytes = 1024 * 1024;
    int keep_s = 30;      // with no client attached the answer goes on this long, then is cancelled
    int ttl_s = 300;      // a finished stream stays resumable this long
    int retry_ms = 1000;  // the SSE `retry:` hint: how soon a client should reconnect
};

struct limits_config {  // per API key; 0 = no limit
    int requests_per_minute = 0;
    int tokens_per_minute = 0;
    int max_concurrent_streams = 0;
};

struct config {
    server_config server;
    store_config store;
    std::vector<model_config> models;
    routing_config routing;
    limits_config limits;
    resume_config resume;
    std::string source = "embedded defaults";  // where it came from, for the start-up log
};

// Loads `path` (or ./sluice.toml when it exists, or the embedded defaults when path is empty), then
// applies SLUICE_* environment overrides from `env`, then validates. Throws config_error.
config load_config(const std::optional<std::filesystem::path>& path,
                   const std::map<std::string, std::string>& env);

// How long a resumable stream (and its log, in memory or shared) may exist while its producer runs:
// the request deadline bounds the producer, and a finished log stays resume.ttl_s after it.
inline std::chrono::seconds resumable_stream_lifetime(const config& cfg) {
    return std::chrono::seconds{cfg.server.request_timeout_s + cfg.resume.ttl_s};
}

// Parses TOML text (no file, no env); for tests and for the embedded defaults.
config parse_config(std::string_view toml_text, const std::map<std::string, std::string>& env = {});

// The process environment as a map, for load_config.
std::map<std::string, std::string> process_environment();

}  // namespace sluice
