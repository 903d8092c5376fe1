#include "inference/tiny_model.h"

#include <gguf.h>
#include <llama.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "inference/llama_backend.h"

#ifndef SLUICE_LLAMA_SOURCE_DIR
#define SLUICE_LLAMA_SOURCE_DIR ""
#endif

namespace sluice {
namespace {

struct gguf_deleter {
    void operator()(gguf_context* ctx) const { gguf_free(ctx); }
};
struct ggml_deleter {
    void operator()(ggml_context* ctx) const { ggml_free(ctx); }
};
struct model_deleter {
    void operator()(llama_model* model) const { llama_model_free(model); }
};
using gguf_ptr = std::unique_ptr<gguf_context, gguf_deleter>;

// std::hash is not specified across standard libraries; the weights must be the same everywhere.
std::uint64_t fnv1a(std::string_view text) {
    std::uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : text) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash;
}

struct weight_init {
    std::uint64_t seed;
};

// Norm weights start at 1 and biases at 0, as in a freshly initialised network; rope frequency factors
// must be 1 (random ones would scramble positions). Everything else: small normal noise, seeded per
// tensor name so the result does not depend on the order the loader visits tensors.
void fill_tensor(ggml_tensor* tensor, void* user_data) {
    const auto& init = *static_cast<const weight_init*>(user_data);
    const std::string_view name = ggml_get_name(tensor);
    const std::int64_t count = ggml_nelements(tensor);
    std::vector<float> values(static_cast<std::size_t>(count));
    if (name.find("norm") != std::string_view::npos || name.find("rope_freqs") != std::string_view::npos) {
        std::fill(values.begin(), values.end(), 1.0f);
    } else if (name.ends_with(".bias")) {
        std::fill(values.begin(), values.end(), 0.0f);
    } else {
        // splitmix64 and a sum of four uniforms (Irwin-Hall) instead of <random>'s normal
        // distribution: the same numbers on every platform, and fast enough in Debug/ASan builds,
        // where the test suite makes a model per test process.
        std::uint64_t state = init.seed ^ fnv1a(name);
        const auto next = [&state] {
            std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            return z ^ (z >> 31);
        };
        // A wide spread keeps the random logits peaked enough that sampling wanders over the whole
        // vocabulary (multi-byte pieces included) instead of collapsing onto one token.
        constexpr float k_stdev = 0.3f;
        constexpr float k_scale = k_stdev * 1.7320508f / 65536.0f;  // sum of 4 x 16 bits: sd 65536/sqrt(3)
        for (auto& value : values) {
            const std::uint64_t bits = next();
            const float sum = static_cast<float>((bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) +
                                                 ((bits >> 32) & 0xFFFF) + ((bits >> 48) & 0xFFFF));
            value = (sum - 2.0f * 65535.0f) * k_scale;
        }
    }
    if (tensor->type == GGML_TYPE_F32) {
        ggml_backend_tensor_set(tensor, values.data(), 0, ggml_nbytes(tensor));
    } else {
        std::vector<ggml_fp16_t> half(values.size());
        ggml_fp32_to_fp16_row(values.data(), half.data(), count);
        ggml_backend_tensor_set(tensor, half.data(), 0, ggml_nbytes(tensor));
    }
}

gguf_ptr read_gguf(const std::filesystem::path& path, bool with_data, ggml_context** data_ctx) {
    gguf_init_params params{.no_alloc = !with_data, .ctx = data_ctx};
    gguf_ptr ctx(gguf_init_from_file(path.c_str(), params));
    if (!ctx) throw std::runtime_error("cannot read GGUF file " + path.string());
    return ctx;
}

std::filesystem::path vocab_path(const std::string& vocab) {
    const std::filesystem::path source_dir = SLUICE_LLAMA_SOURCE_DIR;
    auto path = source_dir / "models" / ("ggml-vocab-" + vocab + ".gguf");
    if (!std::filesystem::exists(path)) {
        throw std::runtime_error("vocabulary '" + vocab + "' not found: " + path.string() +
                                 " does not exist (try qwen2, phi-3, llama-bpe)");
    }
    return path;
}

}  // namespace

void make_tiny_model(const std::filesystem::path& out, const tiny_model_options& options) {
    if (options.n_embd <= 0 || options.n_layer <= 0 || options.n_head <= 0 || options.n_ff <= 0 ||
        options.n_embd % options.n_head != 0) {
        throw std::runtime_error("make_tiny_model: n_embd must be a positive multiple of n_head");
    }
    ensure_llama_backend();
    const auto vocab_file = vocab_path(options.vocab);
    const gguf_ptr vocab = read_gguf(vocab_file, false, nullptr);

    // The metadata: the vocabulary file's tokenizer and chat template, then llama hyper-parameters.
    gguf_ptr meta(gguf_init_empty());
    gguf_set_kv(meta.get(), vocab.get());
    gguf_remove_key(meta.get(), "general.file_type");
    gguf_set_val_str(meta.get(), "general.architecture", "llama");
    const std::string name = "sluice-tiny-" + options.vocab + "-e" + std::to_string(options.n_embd) + "-l" +
                             std::to_string(options.n_layer);
    gguf_set_val_str(meta.get(), "general.name", name.c_str());
    gguf_set_val_u32(meta.get(), "llama.context_length", static_cast<std::uint32_t>(options.n_ctx_train));
    gguf_set_val_u32(meta.get(), "llama.embedding_length", static_cast<std::uint32_t>(options.n_embd));
    gguf_set_val_u32(meta.get(), "llama.block_count", static_cast<std::uint32_t>(options.n_layer));
    gguf_set_val_u32(meta.get(), "llama.feed_forward_length", static_cast<std::uint32_t>(options.n_ff));
    gguf_set_val_u32(meta.get(), "llama.attention.head_count", static_cast<std::uint32_t>(options.n_head));
    gguf_set_val_u32(meta.get(), "llama.attention.head_count_kv", static_cast<std::uint32_t>(options.n_head));
    gguf_set_val_f32(meta.get(), "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_set_val_f32(meta.get(), "llama.rope.freq_base", 10000.0f);

    weight_init init{options.seed};
    llama_model_params model_params = llama_model_default_params();
    std::unique_ptr<llama_model, model_deleter> model(
        llama_model_init_from_user(meta.get(), fill_tensor, &init, model_params));
    if (!model) throw std::runtime_error("make_tiny_model: llama.cpp could not build the model");

    // llama_model_save_to_file writes weights and tokenizer but not the chat template: save to a
    // temporary file, then add the template from the vocabulary file and write the final one.
    std::filesystem::path staging = out;
    staging += ".partial";
    llama_model_save_to_file(model.get(), staging.c_str());
    model.reset();

    ggml_context* data_raw = nullptr;
    gguf_ptr saved;
    try {
        saved = read_gguf(staging, true, &data_raw);
    } catch (...) {
        std::filesystem::remove(staging);
        throw std::runtime_error("make_tiny_model: could not write " + out.string());
    }
    std::unique_ptr<ggml_context, ggml_deleter> data(data_raw);
    // A file-backed gguf context cannot be written back as is (its tensor infos carry no data), so
    // the final file is a fresh context over the loaded tensors.
    gguf_ptr final_meta(gguf_init_empty());
    gguf_set_kv(final_meta.get(), saved.get());
    const auto template_id = gguf_find_key(vocab.get(), "tokenizer.chat_template");
    if (template_id >= 0) {
        gguf_set_val_str(final_meta.get(), "tokenizer.chat_template",
                         gguf_get_val_str(vocab.get(), template_id));
    }
    for (std::int64_t i = 0; i < gguf_get_n_tensors(saved.get()); ++i) {
        gguf_add_tensor(final_meta.get(), ggml_get_tensor(data.get(), gguf_get_tensor_name(saved.get(), i)));
    }
    const bool written = gguf_write_to_file(final_meta.get(), out.c_str(), false);
    std::error_code ignored;
    std::filesystem::remove(staging, ignored);
    if (!written) throw std::runtime_error("make_tiny_model: could not write " + out.string());
}

std::filesystem::path ensure_demo_model(const std::filesystem::path& data_dir) {
    auto path = data_dir / "tiny-demo.gguf";
    if (std::filesystem::exists(path)) return path;
    std::filesystem::create_directories(data_dir);
    // Written under another name first, so a crash never leaves a half-written demo model behind.
    auto pending = path;
    pending += ".new";
    make_tiny_model(pending, tiny_model_options{});
    std::filesystem::rename(pending, path);
    return path;
}

}  // namespace sluice
