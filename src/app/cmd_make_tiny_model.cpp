#include "app/cmd_make_tiny_model.h"

#include <iostream>
#include <memory>
#include <string>

#include "inference/tiny_model.h"

namespace sluice {

void add_make_tiny_model_command(CLI::App& app) {
    struct options {
        std::string out;
        tiny_model_options model;
        int heads = 0;
        int ff = 0;
    };
    auto opts = std::make_shared<options>();
    auto* cmd = app.add_subcommand(
        "make-tiny-model", "Write a random-weight llama model with a real tokenizer (for tests and demos)");
    cmd->add_option("out", opts->out, "Output .gguf file")->required();
    cmd->add_option("--vocab", opts->model.vocab, "Tokenizer from llama.cpp's models/ggml-vocab-NAME.gguf")
        ->capture_default_str();
    cmd->add_option("--embd", opts->model.n_embd, "Embedding width")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--layers", opts->model.n_layer, "Transformer blocks")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--heads", opts->heads, "Attention heads (default: 4, or embd/64 from embd 256)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--ff", opts->ff, "Feed-forward width (default: 2*embd, or 8/3*embd from embd 256)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--ctx", opts->model.n_ctx_train, "Training context length recorded in the file")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--seed", opts->model.seed, "Weight seed (same seed, same file)")->capture_default_str();
    cmd->callback([opts] {
        auto& model = opts->model;
        const bool wide = model.n_embd >= 256;
        model.n_head = opts->heads > 0 ? opts->heads : (wide ? model.n_embd / 64 : 4);
        // Real llama models use a SwiGLU width of about 8/3 of the embedding, rounded up to 256.
        model.n_ff =
            opts->ff > 0 ? opts->ff : (wide ? (model.n_embd * 8 / 3 + 255) / 256 * 256 : 2 * model.n_embd);
        make_tiny_model(opts->out, model);
        std::cout << "wrote " << opts->out << " (vocab " << model.vocab << ", embd " << model.n_embd << ", "
                  << model.n_layer << " layers)\n";
    });
}

}  // namespace sluice
