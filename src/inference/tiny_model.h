#pragma once
// `sluice make-tiny-model`: a random-weight llama-architecture GGUF with a real tokenizer and chat
// template copied from llama.cpp's models/ggml-vocab-<vocab>.gguf.
#include <cstdint>
#include <filesystem>
#include <string>

namespace sluice {

struct tiny_model_options {
    std::string vocab = "qwen2";  // phi-3, qwen2, llama-bpe, ...
    int n_embd = 64;
    int n_layer = 2;
    int n_head = 4;
    int n_ff = 128;
    int n_ctx_train = 4096;
    std::uint64_t seed = 42;
};

// Throws std::runtime_error naming what failed (vocab file not found, write failed).
void make_tiny_model(const std::filesystem::path& out, const tiny_model_options& options);

// The model `serve` uses when no local model path is configured: created once under data_dir.
std::filesystem::path ensure_demo_model(const std::filesystem::path& data_dir);

}  // namespace sluice
