#include "inference_fixture.h"

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>

#include "inference/tiny_model.h"

namespace sluice {

const std::filesystem::path& tiny_model_path() {
    static temp_dir dir;
    static const std::filesystem::path path = [] {
        const auto file = dir.path() / "tiny-qwen2.gguf";
        make_tiny_model(file, tiny_model_options{});  // qwen2 vocab, n_embd 64, 2 layers
        return file;
    }();
    return path;
}

model_config tiny_model_config(int n_parallel, int n_ctx, int queue_size) {
    model_config cfg;
    cfg.name = "local";
    cfg.provider = "llama";
    cfg.path = tiny_model_path().string();
    cfg.n_ctx = n_ctx;
    cfg.n_parallel = n_parallel;
    cfg.n_threads = 1;  // spinning thread barriers crawl on a busy shared machine
    cfg.n_batch = 256;
    cfg.queue_size = queue_size;
    return cfg;
}

chat_request user_request(const std::string& text, int max_tokens, double temperature, std::uint64_t seed) {
    chat_request request;
    request.messages.push_back({"user", text});
    request.params.max_tokens = max_tokens;
    request.params.temperature = temperature;
    request.params.seed = seed;
    return request;
}

std::string collected::text() const {
    std::string result;
    for (const auto& chunk : chunks) {
        if (chunk.type == stream_chunk::kind::delta) result += chunk.text;
    }
    return result;
}

std::vector<std::string> collected::deltas() const {
    std::vector<std::string> result;
    for (const auto& chunk : chunks) {
        if (chunk.type == stream_chunk::kind::delta) result.push_back(chunk.text);
    }
    return result;
}

const stream_chunk* collected::find(stream_chunk::kind type) const {
    for (const auto& chunk : chunks) {
        if (chunk.type == type) return &chunk;
    }
    return nullptr;
}

chunk_sink collect_into(collected& out) {
    return [&out](chunk_batch& batch) -> boost::asio::awaitable<void> {
        for (auto& chunk : batch) out.chunks.push_back(std::move(chunk));
        co_return;
    };
}

boost::asio::awaitable<void> stream_owned(provider& provider, chat_request request, chunk_sink sink) {
    co_await provider.stream(request, std::move(sink));
}

void spawn_stream(boost::asio::io_context& io, provider& provider, chat_request request, collected& out) {
    boost::asio::co_spawn(io, stream_owned(provider, std::move(request), collect_into(out)),
                          [&out](std::exception_ptr e) {
                              out.error = e;
                              out.done = true;
                          });
}

collected run_stream(provider& provider, chat_request request) {
    boost::asio::io_context io;
    collected out;
    spawn_stream(io, provider, std::move(request), out);
    run_all(io);
    return out;
}

void run_all(boost::asio::io_context& io, std::chrono::seconds limit) {
    io.run_for(limit);
    EXPECT_TRUE(io.stopped()) << "the io_context still had work after " << limit.count() << "s";
}

}  // namespace sluice
