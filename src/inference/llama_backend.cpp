#include "inference/llama_backend.h"

#include <llama.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string_view>

namespace sluice {
namespace {

void forward_log(ggml_log_level level, const char* text, void*) {
    std::string_view line = text ? text : "";
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty()) return;
    switch (level) {
        case GGML_LOG_LEVEL_ERROR:
            spdlog::error("llama.cpp: {}", line);
            break;
        case GGML_LOG_LEVEL_WARN:
            // The vocabulary files llama.cpp ships trip this harmless check on every load.
            if (line.find("control-looking token") != std::string_view::npos) {
                spdlog::debug("llama.cpp: {}", line);
                break;
            }
            spdlog::warn("llama.cpp: {}", line);
            break;
        default:
            spdlog::trace("llama.cpp: {}", line);
            break;
    }
}

}  // namespace

void ensure_llama_backend() {
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(forward_log, nullptr);
        llama_backend_init();
    });
}

}  // namespace sluice
