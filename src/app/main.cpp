// sluice: the command line (SPEC §1). Wiring only; each subcommand lives with the part it drives.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>

#include "api/serve.h"
#include "app/cmd_chat.h"
#include "app/cmd_keys.h"
#include "app/cmd_make_tiny_model.h"
#include "app/cmd_models.h"
#include "app/cmd_route.h"
#include "app/cmd_usage.h"
#include "core/config.h"
#include "core/log.h"

int main(int argc, char** argv) {
    // Last out: every line still waiting for stderr is written before the process ends.
    struct logs_written {
        logs_written() = default;
        logs_written(const logs_written&) = delete;
        logs_written& operator=(const logs_written&) = delete;
        ~logs_written() { sluice::shutdown_logging(); }
    } const logs;
    CLI::App app{"sluice: a streaming chat gateway in front of local and cloud models"};
    app.require_subcommand(1);
    app.fallthrough();  // --config and --log-level work before or after the subcommand

    std::optional<std::string> config_path;
    std::string log_level = "info";
    app.add_option("--config", config_path,
                   "TOML config file (default ./sluice.toml, else embedded defaults)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off");

    std::optional<std::string> listen;
    bool logging_ready = false;
    bool serving = false;  // the server logs asynchronously (core/log.h)
    const auto load = [&]() {
        if (!logging_ready) sluice::init_logging(log_level, serving);
        logging_ready = true;
        std::optional<std::filesystem::path> path;
        if (config_path) path = *config_path;
        auto env = sluice::process_environment();
        // --listen is the strongest override; it goes through the same validation as the file.
        if (listen) env["SLUICE_SERVER_LISTEN"] = *listen;
        return sluice::load_config(path, env);
    };

    // serve runs after parsing (not in a callback) so its exit code is main's.
    auto* serve = app.add_subcommand("serve", "Serve the API");
    serve->add_option("--listen", listen, "HOST:PORT (overrides server.listen)");

    sluice::add_keys_command(app, load);
    sluice::add_chat_command(app);
    sluice::add_route_command(app, load);
    sluice::add_make_tiny_model_command(app);
    sluice::add_usage_command(app, load);
    sluice::add_models_command(app, load);

    app.add_subcommand("version", "Print the version")->callback([] {
        std::cout << "sluice " << SLUICE_VERSION << "\n";
    });

    try {
        app.parse(argc, argv);
        if (serve->parsed()) {
            serving = true;
            auto cfg = load();
            sluice::resolve_hub_models(cfg);  // path = "hf:..." is pulled on first start
            return sluice::run_serve(cfg);
        }
        return 0;
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const sluice::config_error& e) {
        std::cerr << "sluice: " << e.what() << std::endl;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "sluice: " << e.what() << std::endl;
        return 1;
    }
}
