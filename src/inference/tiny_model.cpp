#include "inference/tiny_model.h"

#include <stdexcept>

namespace sluice {

void make_tiny_model(const std::filesystem::path& out, const tiny_model_options&) {
    throw std::runtime_error("make_tiny_model: not implemented yet (" + out.string() + ")");
}

std::filesystem::path ensure_demo_model(const std::filesystem::path& data_dir) {
    return data_dir / "tiny-demo.gguf";
}

}  // namespace sluice
