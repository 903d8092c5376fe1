#pragma once
// Shared pieces of the inference tests: a temporary directory and a tiny model made once per binary.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/chat.h"
#include "core/chunk.h"
#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

class temp_dir {
  public:
    temp_dir() {
        std::random_device random;
        path_ = std::filesystem::temp_directory_path() /
                ("sluice-inference-" + std::to_string(random()) + std::to_string(random()));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// The tiny model every provider test loads: made once per test binary, removed at exit.
const std::filesystem::path& tiny_model_path();

model_config tiny_model_config(int n_parallel = 1, int n_ctx = 512, int queue_size = 4);

chat_request user_request(const std::string& text, int max_tokens, double temperature = 0.0,
                          std::uint64_t seed = 1);

// Everything one stream produced.
struct collected {
    std::vector<stream_chunk> chunks;
    std::exception_ptr error;  // the stream coroutine's exception (e.g. cancelled)
    bool done = false;

    std::string text() const;
    std::vector<std::string> deltas() const;
    const stream_chunk* last() const { return chunks.empty() ? nullptr : &chunks.back(); }
    const stream_chunk* find(stream_chunk::kind type) const;
};

// A sink that appends to `out`.
chunk_sink collect_into(collected& out);

// Starts provider.stream(request) on `io`, filling `out`.
// provider.stream() over a request this coroutine owns (the provider reads it in place).
boost::asio::awaitable<void> stream_owned(provider& provider, chat_request request, chunk_sink sink);
void spawn_stream(boost::asio::io_context& io, provider& provider, chat_request request, collected& out);

// Runs one stream to its end on a fresh io_context.
collected run_stream(provider& provider, chat_request request);

// Runs `io` until it has no more work; a stuck test fails after `limit` instead of hanging.
void run_all(boost::asio::io_context& io, std::chrono::seconds limit = std::chrono::seconds(120));

}  // namespace sluice
