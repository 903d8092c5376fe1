// The sluice half of bench/llama_vs_server.py: runs the llama provider in process on a model and
// prints one JSON line per round: completion tokens, wall time, time to first token per stream.
//
//   llama_vs_server --model M.gguf [--streams 4] [--max-tokens 128] [--n-ctx 1024] [--n-parallel 4]
//                   [--threads N] [--n-batch 512] [--rounds 3] [--prompt TEXT]
//   llama_vs_server --make-model OUT.gguf [--vocab phi-3] [--embd 768] [--layers 12]
//       (the same generator as `sluice make-tiny-model`, for when the binary is not built)
#include <sys/resource.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "inference/local_provider.h"
#include "inference/tiny_model.h"

namespace {

using clock_type = std::chrono::steady_clock;

// CPU seconds this process has used (all threads): a measure of cost that other processes on a
// shared machine cannot inflate the way they inflate wall time.
double cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct stream_result {
    double ttft_ms = -1;
    int completion_tokens = 0;
    std::string finish_reason;
};

struct options {
    std::string model;
    int streams = 1;
    int max_tokens = 128;
    int n_ctx = 1024;
    int n_parallel = 4;
    int threads = 0;
    int n_batch = 512;
    int rounds = 3;
    std::string prompt = "Write a long story about a river that runs through a city of glass.";
    std::string make_model;
    sluice::tiny_model_options model_options;
};

options parse(int argc, char** argv) {
    options opts;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view key = argv[i];
        const std::string value = argv[i + 1];
        if (key == "--model")
            opts.model = value;
        else if (key == "--streams")
            opts.streams = std::stoi(value);
        else if (key == "--max-tokens")
            opts.max_tokens = std::stoi(value);
        else if (key == "--n-ctx")
            opts.n_ctx = std::stoi(value);
        else if (key == "--n-parallel")
            opts.n_parallel = std::stoi(value);
        else if (key == "--threads")
            opts.threads = std::stoi(value);
        else if (key == "--n-batch")
            opts.n_batch = std::stoi(value);
        else if (key == "--rounds")
            opts.rounds = std::stoi(value);
        else if (key == "--prompt")
            opts.prompt = value;
        else if (key == "--make-model")
            opts.make_model = value;
        else if (key == "--vocab")
            opts.model_options.vocab = value;
        else if (key == "--embd")
            opts.model_options.n_embd = std::stoi(value);
        else if (key == "--layers")
            opts.model_options.n_layer = std::stoi(value);
        else {
            std::cerr << "unknown option " << key << "\n";
            std::exit(2);
        }
    }
    if (!opts.make_model.empty()) {
        auto& m = opts.model_options;
        m.n_head = m.n_embd >= 256 ? m.n_embd / 64 : 4;
        m.n_ff = m.n_embd >= 256 ? (m.n_embd * 8 / 3 + 255) / 256 * 256 : 2 * m.n_embd;
        sluice::make_tiny_model(opts.make_model, m);
        std::exit(0);
    }
    if (opts.model.empty()) {
        std::cerr << "--model is required\n";
        std::exit(2);
    }
    return opts;
}

}  // namespace

int main(int argc, char** argv) {
    const auto opts = parse(argc, argv);
    sluice::model_config cfg;
    cfg.name = "bench";
    cfg.provider = "llama";
    cfg.path = opts.model;
    cfg.n_ctx = opts.n_ctx;
    cfg.n_parallel = opts.n_parallel;
    cfg.n_threads = opts.threads;
    cfg.n_batch = opts.n_batch;
    cfg.queue_size = 64;
    // Equal lengths on both sides: llama-server gets "ignore_eos": true.
    auto provider = sluice::make_llama_local_provider(cfg, {.ignore_eos = true});

    // Round 0 warms up (graph allocation, caches), like llama-server's start-up warm-up.
    for (int round = 0; round <= opts.rounds; ++round) {
        boost::asio::io_context io;
        std::vector<stream_result> results(static_cast<std::size_t>(opts.streams));
        const auto start = clock_type::now();
        const double cpu_start = cpu_seconds();
        for (int s = 0; s < opts.streams; ++s) {
            sluice::chat_request request;
            // Distinct prompts (as llama-server's side uses), so no stream reuses another's prefill.
            request.messages.push_back({"user", opts.prompt + " (" + std::to_string(s) + ")"});
            request.params.max_tokens = opts.max_tokens;
            request.params.temperature = 0.0;
            request.params.seed = 1;
            auto& result = results[static_cast<std::size_t>(s)];
            sluice::chunk_sink sink = [&result,
                                       start](sluice::chunk_batch& batch) -> boost::asio::awaitable<void> {
                using kind = sluice::stream_chunk::kind;
                for (const auto& chunk : batch) {
                    if (chunk.type == kind::delta && result.ttft_ms < 0) {
                        result.ttft_ms =
                            std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
                    } else if (chunk.type == kind::usage) {
                        result.completion_tokens = chunk.completion_tokens;
                    } else if (chunk.type == kind::finish) {
                        result.finish_reason = chunk.finish_reason;
                    } else if (chunk.type == kind::error) {
                        result.finish_reason = "error " + std::to_string(chunk.code) + ": " + chunk.message;
                    }
                }
                co_return;
            };
            auto stream = [](sluice::provider& model, sluice::chat_request owned,
                             sluice::chunk_sink on_chunks) -> boost::asio::awaitable<void> {
                co_await model.stream(owned, std::move(on_chunks));
            };
            boost::asio::co_spawn(io, stream(*provider, std::move(request), sink), [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        }
        io.run();
        const double wall_s = std::chrono::duration<double>(clock_type::now() - start).count();
        const double cpu_s = cpu_seconds() - cpu_start;
        if (round == 0) continue;
        int tokens = 0;
        std::string ttfts;
        for (const auto& r : results) {
            tokens += r.completion_tokens;
            if (!ttfts.empty()) ttfts += ",";
            ttfts += std::to_string(r.ttft_ms);
            if (r.finish_reason != "length") std::cerr << "stream ended with " << r.finish_reason << "\n";
        }
        std::printf(
            "{\"round\":%d,\"streams\":%d,\"tokens\":%d,\"wall_s\":%.6f,\"cpu_s\":%.6f,\"ttft_ms\":[%s]}\n",
            round, opts.streams, tokens, wall_s, cpu_s, ttfts.c_str());
        std::fflush(stdout);
    }
    const auto stats = provider->engine().stats();
    std::printf("{\"decode_steps\":%llu,\"max_sequences_per_step\":%d}\n",
                static_cast<unsigned long long>(stats.decode_steps), stats.max_sequences_per_step);
    return 0;
}
