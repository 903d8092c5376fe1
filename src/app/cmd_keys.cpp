#include "app/cmd_keys.h"

#include <chrono>
#include <iostream>

#include "core/ids.h"
#include "store/store.h"

namespace sluice {

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string format_limit(int value) {
    return value == 0 ? "unlimited" : std::to_string(value);
}

}  // namespace

void add_keys_command(CLI::App& app, const std::function<config()>& load) {
    auto* keys = app.add_subcommand("keys", "Create, list and revoke API keys");
    keys->require_subcommand(1);

    struct create_options {
        std::string name;
        int rpm = -1;
        int tpm = -1;
        int max_streams = -1;
    };
    auto opts = std::make_shared<create_options>();
    auto* create =
        keys->add_subcommand("create", "Create a key; it is printed once, only its hash is stored");
    create->add_option("--name", opts->name, "A name to recognise the key by")->required();
    create->add_option("--rpm", opts->rpm, "Requests per minute for this key (0 = no limit)")
        ->check(CLI::NonNegativeNumber);
    create->add_option("--tpm", opts->tpm, "Tokens per minute for this key (0 = no limit)")
        ->check(CLI::NonNegativeNumber);
    create->add_option("--max-streams", opts->max_streams, "Concurrent streams for this key (0 = no limit)")
        ->check(CLI::NonNegativeNumber);
    create->callback([opts, load] {
        const auto cfg = load();
        auto store = open_store(cfg.store);
        const auto secret = generate_api_key();
        api_key_record record{
            .id = new_id("key_"), .name = opts->name, .hash = sha256_hex(secret), .created_ms = now_ms()};
        if (opts->rpm >= 0 || opts->tpm >= 0 || opts->max_streams >= 0) {
            limits_config limits = cfg.limits;
            if (opts->rpm >= 0) limits.requests_per_minute = opts->rpm;
            if (opts->tpm >= 0) limits.tokens_per_minute = opts->tpm;
            if (opts->max_streams >= 0) limits.max_concurrent_streams = opts->max_streams;
            record.limits = limits;
        }
        store->create_key(record);
        std::cout << secret << std::endl;
        std::cerr << "created key " << record.id << " (" << record.name
                  << "); this is the only time it is shown: keep it safe" << std::endl;
    });

    auto* list = keys->add_subcommand("list", "List keys (ids and names, never the keys themselves)");
    list->callback([load] {
        const auto cfg = load();
        auto store = open_store(cfg.store);
        for (const auto& key : store->list_keys()) {
            std::cout << key.id << "\t" << key.name << "\t" << (key.revoked ? "revoked" : "active");
            if (key.limits) {
                std::cout << "\trpm=" << format_limit(key.limits->requests_per_minute)
                          << " tpm=" << format_limit(key.limits->tokens_per_minute)
                          << " streams=" << format_limit(key.limits->max_concurrent_streams);
            }
            std::cout << "\n";
        }
    });

    auto id = std::make_shared<std::string>();
    auto* revoke = keys->add_subcommand("revoke", "Revoke a key by its id (key_...)");
    revoke->add_option("ID", *id, "The key's id, as `keys list` shows it")->required();
    revoke->callback([id, load] {
        const auto cfg = load();
        auto store = open_store(cfg.store);
        if (!store->revoke_key(*id)) throw CLI::RuntimeError("no key with id " + *id, 1);
        std::cerr << "revoked " << *id << std::endl;
    });
}

}  // namespace sluice
