#include "app/cmd_usage.h"

#include <boost/json.hpp>
#include <cstdio>
#include <iostream>

#include "store/store.h"

namespace sluice {

void add_usage_command(CLI::App& app, const std::function<config()>& load) {
    struct usage_options {
        std::optional<std::string> key_id;
        bool json = false;
    };
    auto opts = std::make_shared<usage_options>();
    auto* usage =
        app.add_subcommand("usage", "Show the usage ledger (requests and tokens per key and model)");
    usage->add_option("--key", opts->key_id, "Only this key's rows (its id, key_...)");
    usage->add_flag("--json", opts->json, "One JSON object per row");
    usage->callback([opts, load] {
        const auto cfg = load();
        auto store = open_store(cfg.store);
        const auto rows = store->usage(opts->key_id);
        if (opts->json) {
            for (const auto& r : rows) {
                std::cout << boost::json::serialize(
                                 boost::json::object{{"key_id", r.key_id},
                                                     {"model", r.model},
                                                     {"requests", r.requests},
                                                     {"prompt_tokens", r.prompt_tokens},
                                                     {"completion_tokens", r.completion_tokens},
                                                     {"cancelled", r.cancelled},
                                                     {"errors", r.errors}})
                          << "\n";
            }
            return;
        }
        std::printf("%-26s %-20s %10s %14s %18s %10s %8s\n", "key", "model", "requests", "prompt_tokens",
                    "completion_tokens", "cancelled", "errors");
        for (const auto& r : rows) {
            std::printf("%-26s %-20s %10lld %14lld %18lld %10lld %8lld\n", r.key_id.c_str(), r.model.c_str(),
                        static_cast<long long>(r.requests), static_cast<long long>(r.prompt_tokens),
                        static_cast<long long>(r.completion_tokens), static_cast<long long>(r.cancelled),
                        static_cast<long long>(r.errors));
        }
    });
}

}  // namespace sluice
