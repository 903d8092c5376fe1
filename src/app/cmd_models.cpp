#include "app/cmd_models.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "models/hub_pull.h"

namespace sluice {

namespace {

hf_ref parse_or_throw(const std::string& text) {
    std::string error;
    auto ref = parse_hf_ref(text, &error);
    if (!ref) throw config_error("models: \"" + text + "\": " + error);
    return *ref;
}

std::filesystem::path models_dir_of(const config& cfg, const std::string& override_dir) {
    return default_models_dir(override_dir.empty() ? cfg.store.models_dir : override_dir,
                              process_environment());
}

}  // namespace

void add_models_command(CLI::App& app, const std::function<config()>& load) {
    auto* models =
        app.add_subcommand("models", "Pull GGUF models from Hugging Face by name, list and remove them");
    models->require_subcommand(1);
    auto dir = std::make_shared<std::string>();
    models->add_option("--dir", *dir,
                       "Models folder (default: store.models_dir, else ~/.cache/sluice/models)");

    auto pull_ref = std::make_shared<std::string>();
    auto* pull = models->add_subcommand(
        "pull", "Download ORG/REPO[:QUANT] (default quant Q4_K_M, else the first .gguf)");
    pull->add_option("ref", *pull_ref, "ORG/REPO[:QUANT], e.g. ggml-org/gemma-3-1b-it-GGUF:Q4_K_M")
        ->required();
    pull->callback([pull_ref, dir, load] {
        const auto cfg = load();
        const auto ref = parse_or_throw(*pull_ref);
        progress_printer progress(stdout, ::isatty(STDOUT_FILENO) == 1);
        auto options = pull_options_from_env(models_dir_of(cfg, *dir), process_environment());
        options.progress = &progress;
        const auto outcome = pull_model(ref, options);
        if (!outcome.manifest)
            throw std::runtime_error("models pull " + to_string(ref) + ": " + outcome.error);
        const auto& manifest = *outcome.manifest;
        std::cout << (outcome.already_present ? "already pulled: " : "pulled: ")
                  << manifest.local_path.string() << " (" << format_bytes(static_cast<double>(manifest.size))
                  << ", sha256 " << manifest.sha256 << ")\n";
    });

    auto* list = models->add_subcommand("list", "List the pulled models");
    list->callback([dir, load] {
        const auto cfg = load();
        const auto folder = models_dir_of(cfg, *dir);
        const auto pulled = list_pulled(folder);
        if (pulled.empty()) {
            std::cout << "no models pulled in " << folder.string() << "\n";
            return;
        }
        for (const auto& manifest : pulled) {
            std::cout << manifest.repo << ":" << (manifest.quant.empty() ? "-" : manifest.quant) << "\t"
                      << format_bytes(static_cast<double>(manifest.size)) << "\t" << manifest.pulled_at
                      << "\t" << manifest.local_path.string() << "\n";
        }
    });

    auto rm_ref = std::make_shared<std::string>();
    auto* rm = models->add_subcommand("rm", "Delete a pulled model (every quant of the repo without :QUANT)");
    rm->add_option("ref", *rm_ref, "ORG/REPO[:QUANT]")->required();
    rm->callback([rm_ref, dir, load] {
        const auto cfg = load();
        const auto ref = parse_or_throw(*rm_ref);
        const auto removed = remove_pulled(models_dir_of(cfg, *dir), ref);
        if (removed.empty())
            throw std::runtime_error("models rm " + to_string(ref) + ": no such pulled model");
        for (const auto& manifest : removed) std::cout << "removed " << manifest.local_path.string() << "\n";
    });
}

void resolve_hub_models(config& cfg) {
    for (auto& model : cfg.models) {
        if (model.provider != "llama" || !model.path.starts_with("hf:")) continue;
        std::string error;
        const auto ref = parse_hf_ref(model.path, &error);
        if (!ref)
            throw config_error("config: models." + model.name + ".path = \"" + model.path + "\": " + error);
        progress_printer progress(stdout, ::isatty(STDOUT_FILENO) == 1);
        auto options = pull_options_from_env(models_dir_of(cfg, ""), process_environment());
        options.progress = &progress;
        const auto outcome = ensure_model(*ref, options);
        if (!outcome.manifest)
            throw std::runtime_error("model " + model.name + ": pulling " + to_string(*ref) + ": " +
                                     outcome.error);
        spdlog::info("model {}: {} is {}{}", model.name, model.path, outcome.manifest->local_path.string(),
                     outcome.already_present ? "" : " (pulled now)");
        model.path = outcome.manifest->local_path.string();
    }
}

}  // namespace sluice
