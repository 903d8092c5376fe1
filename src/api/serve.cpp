// `sluice serve`: opens the store, builds one provider per configured model, registers the
// endpoints and runs the HTTP server until SIGINT/SIGTERM.
#include "api/serve.h"

#include <spdlog/spdlog.h>

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "api/anthropic_messages.h"
#include "api/metrics_api.h"
#include "api/openai_chat.h"
#include "api/ops_api.h"
#include "api/responses.h"
#include "api/seed_api.h"
#include "api/sessions_api.h"
#include "api/streams_api.h"
#include "api/ui.h"
#include "api/usage_api.h"
#include "core/ids.h"
#include "core/log.h"
#include "http/auth.h"
#include "http/server.h"
#include "inference/llama_provider.h"
#include "inference/tiny_model.h"
#include "providers/anthropic_provider.h"
#include "providers/openai_provider.h"
#include "routing/orchestrator.h"
#include "store/store.h"
#include "streaming/shared_log.h"
#include "streaming/stream_log.h"
#include "turn/app_context.h"
#include "turn/session_locks.h"
#include "turn/turn_writer.h"
#include "turn/usage_ledger.h"

namespace sluice {

namespace {

// Store round trips run here, never on an io thread.
constexpr std::size_t k_store_threads = 2;
// Tokenizing big prompts (trimming them to a local model's context, estimating usage) runs here.
constexpr std::size_t k_compute_threads = 2;
constexpr const char* k_data_dir = "sluice-data";

// When the store holds no key, `make run` would be useless without one: make one and show it once.
void ensure_first_key(store& db) {
    if (!db.list_keys().empty()) return;
    const std::string key = generate_api_key();
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    db.create_key({.id = new_id("key_"), .name = "default", .hash = sha256_hex(key), .created_ms = now});
    std::cout << "sluice: created API key " << key << std::endl;
}

std::vector<provider_ptr> make_providers(const config& cfg) {
    std::vector<provider_ptr> providers;
    for (const auto& model : cfg.models) {
        if (model.provider == "llama") {
            model_config local = model;
            if (local.path.empty()) {
                local.path = ensure_demo_model(k_data_dir).string();
                spdlog::info("model {}: no path configured, using the tiny demo model {} (random weights)",
                             model.name, local.path);
            }
            providers.push_back(make_llama_provider(local));
        } else if (model.provider == "anthropic") {
            providers.push_back(make_anthropic_provider(model));
        } else {
            providers.push_back(make_openai_provider(model));
        }
        spdlog::info("model {} ({}, {})", model.name, to_string(model.role), model.provider);
    }
    return providers;
}

}  // namespace

int run_serve(const config& cfg) {
    spdlog::info("sluice serve: config from {}", cfg.source);
    std::unique_ptr<store> db;
    try {
        db = open_store(cfg.store);
        ensure_first_key(*db);
    } catch (const std::exception& e) {
        spdlog::error("cannot open the store {}: {}", cfg.store.url, e.what());
        return 1;
    }

    boost::asio::thread_pool store_pool{k_store_threads};
    boost::asio::thread_pool compute_pool{k_compute_threads};
    authenticator auth{*db, store_pool};
    router routes{&auth};
    http_server server{cfg.server, routes};
    bool clean = false;
    {
        // Providers go before the server's io_contexts, while they can still close their sockets
        // (pooled upstream connections live on the contexts of the connections that opened them).
        app_context app{cfg, *db, store_pool, {}};
        try {
            app.providers = make_providers(cfg);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
            return 1;
        }
        orchestrator routing{cfg, app.providers};
        session_locks sessions{*db, store_pool, std::chrono::milliseconds{cfg.routing.session_lock_ttl_ms}};
        usage_ledger usage{*db, store_pool};
        turn_writer turns{*db, store_pool};
        // The request deadline bounds how long a producer runs; a finished log stays resume.ttl_s.
        stream_registry streams{cfg.resume.max_bytes, std::chrono::seconds{cfg.resume.ttl_s},
                                resumable_stream_lifetime(cfg)};
        const shared_log_access shared_logs{.db = db.get(), .pool = &store_pool};
        app.routing = &routing;
        app.streams = &streams;
        if (db->shares_stream_logs()) app.shared_logs = &shared_logs;
        // A producer ends before the server does: at shutdown it is cut with the connections,
        // storing its partial answer as a cut stream does.
        app.spawn_detached = [&server](boost::asio::any_io_executor executor,
                                       boost::asio::awaitable<void> task) {
            server.spawn_detached(std::move(executor), std::move(task));
        };
        app.sessions = &sessions;
        app.usage = &usage;
        app.turns = &turns;
        app.compute_pool = &compute_pool;
        add_ops_routes(routes, app);
        add_chat_routes(routes, app);
        add_openai_routes(routes, app);
        add_responses_routes(routes, app);
        add_anthropic_routes(routes, app);
        add_ui_routes(routes);
        add_session_routes(routes, app);
        add_stream_routes(routes, app);
        add_usage_routes(routes, app);
        add_metrics_route(routes, app, [&routing] { return routing.models_status(); });
        try {
            server.listen();
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
            return 1;
        }
        clean = server.run();
        if (streams.running() > 0) {
            // A resumable stream's producer outlives connections: one still running holds its turn.
            spdlog::warn("{} resumable stream(s) still running at shutdown", streams.running());
            clean = false;
        }
        try {
            usage.flush();  // here, not only in its destructor: an unclean stop leaves with _Exit below
        } catch (const std::exception& e) {
            spdlog::error("usage counts not written at shutdown: {}", e.what());
        }
        store_pool.join();
        compute_pool.join();
        if (!clean) {
            // Connections that did not end even when cut (each stream is told and stored at the cut,
            // so this is work stuck elsewhere, or a second signal): their coroutines still hold
            // provider state, so leave without unwinding them (the store work above has finished),
            // and say so in the exit code.
            spdlog::warn("exiting with connections cut");
            shutdown_logging();  // every waiting line is written: _Exit runs no destructor
            std::_Exit(1);
        }
    }
    return 0;
}

}  // namespace sluice
