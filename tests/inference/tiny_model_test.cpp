#include "inference/tiny_model.h"

#include <gtest/gtest.h>
#include <llama.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "inference/llama_backend.h"
#include "inference_fixture.h"

namespace sluice {
namespace {

std::string read_all(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(tiny_model, loads_with_the_real_tokenizer_and_chat_template) {
    temp_dir dir;
    const auto path = dir.path() / "tiny.gguf";
    make_tiny_model(path, tiny_model_options{});

    ensure_llama_backend();
    llama_model_params params = llama_model_default_params();
    std::unique_ptr<llama_model, decltype(&llama_model_free)> model(
        llama_model_load_from_file(path.c_str(), params), llama_model_free);
    ASSERT_TRUE(model);
    EXPECT_EQ(llama_model_n_embd(model.get()), 64);
    EXPECT_EQ(llama_model_n_layer(model.get()), 2);
    const llama_vocab* vocab = llama_model_get_vocab(model.get());
    EXPECT_GT(llama_vocab_n_tokens(vocab), 150000);  // qwen2's vocabulary
    const char* chat_template = llama_model_chat_template(model.get(), nullptr);
    ASSERT_NE(chat_template, nullptr);
    EXPECT_NE(std::string(chat_template).find("im_start"), std::string::npos);
}

TEST(tiny_model, same_seed_gives_the_same_file) {
    temp_dir dir;
    tiny_model_options options;
    options.vocab = "phi-3";  // the smallest real vocabulary keeps this quick
    options.n_embd = 32;
    make_tiny_model(dir.path() / "a.gguf", options);
    make_tiny_model(dir.path() / "b.gguf", options);
    tiny_model_options other = options;
    other.seed = 7;
    make_tiny_model(dir.path() / "c.gguf", other);
    EXPECT_EQ(read_all(dir.path() / "a.gguf"), read_all(dir.path() / "b.gguf"));
    EXPECT_NE(read_all(dir.path() / "a.gguf"), read_all(dir.path() / "c.gguf"));
}

TEST(tiny_model, unknown_vocabulary_is_named) {
    temp_dir dir;
    tiny_model_options options;
    options.vocab = "no-such-vocab";
    try {
        make_tiny_model(dir.path() / "x.gguf", options);
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("no-such-vocab"), std::string::npos);
    }
}

TEST(tiny_model, demo_model_is_made_once) {
    temp_dir dir;
    const auto first = ensure_demo_model(dir.path() / "data");
    EXPECT_EQ(first.filename(), "tiny-demo.gguf");
    const auto written = std::filesystem::last_write_time(first);
    EXPECT_EQ(ensure_demo_model(dir.path() / "data"), first);
    EXPECT_EQ(std::filesystem::last_write_time(first), written);
}

}  // namespace
}  // namespace sluice
