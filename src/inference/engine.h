#pragma once
// The llama.cpp worker: one thread owns the model and the context and decodes up to n_parallel
// sequences together in each llama_decode call (continuous batching). Requests wait in a bounded
// queue; each one gets a bounded channel its tokens come back through, bridged to the requester's
// Asio executor. A sequence whose channel is full pauses (keeps its KV cells, is left out of the
// next batches) until its consumer catches up, so a slow client never blocks the others.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/chat.h"
#include "core/chunk.h"
#include "core/config.h"
#include "inference/chunk_queue.h"

struct llama_model;
struct llama_context;
struct llama_vocab;

namespace sluice {

struct engine_options {
    bool ignore_eos = false;            // never stop at end-of-generation (benchmarks: equal lengths)
    std::size_t channel_capacity = 64;  // chunks buffered per request before its sequence pauses
};

// Counters for tests and benchmarks.
struct engine_stats {
    std::uint64_t decode_steps = 0;       // llama_decode calls
    int max_sequences_per_step = 0;       // most sequences carried by one llama_decode call
    std::uint64_t tokens_generated = 0;   // sampled tokens, all requests
    std::uint64_t requests_admitted = 0;  // requests that got a sequence slot
    int max_steps_after_cancel = 0;       // decode steps a sequence took part in after its cancel
};

// One request, shared by the engine thread and the consumer coroutine.
class generation {
  public:
    generation(std::size_t capacity, chat_request request) : chunks(capacity), request(std::move(request)) {}

    chunk_queue chunks;    // delta* usage? (finish | error), in order
    chat_request request;  // read by the engine thread only once admitted
    std::atomic<bool> cancelled{false};
    std::atomic<bool> waiting_for_space{false};  // the engine paused it on a full channel
    std::atomic<std::uint64_t> cancel_step{0};   // decode_steps when cancel() was called
};

class llama_engine {
  public:
    // Loads the model at cfg.path and starts the inference thread. Throws config_error naming the
    // path when the file is missing, not GGUF, or llama.cpp cannot load it.
    llama_engine(const model_config& cfg, engine_options options = {});
    ~llama_engine();
    llama_engine(const llama_engine&) = delete;
    llama_engine& operator=(const llama_engine&) = delete;

    // Queues a request. Returns nullptr when the queue is full (the caller answers 503).
    std::shared_ptr<generation> submit(chat_request request);

    // From any thread. A queued request leaves the queue at once; a running one is dropped before
    // the next decode step and its KV cells are freed.
    void cancel(generation& request);

    // The consumer took a chunk: a sequence paused on a full channel may go on.
    void consumed(generation& request);

    int count_tokens(const std::string& text) const;  // thread-safe: the vocabulary is read-only
    int queue_depth() const;
    int active() const;
    int context_per_sequence() const { return n_ctx_seq_; }
    int gpu_layers() const { return gpu_layers_; }     // layers offloaded (0: CPU only)
    bool gpu_offload() const { return gpu_offload_; }  // this build has a GPU backend
    int retry_after_s() const { return 1; }
    engine_stats stats() const;

  private:
    struct sequence;

    void run();
    void admit(std::vector<std::pair<std::size_t, std::shared_ptr<generation>>>& admitted);
    bool start(sequence& seq, std::shared_ptr<generation> request);
    std::string format_prompt(const chat_request& request) const;
    std::vector<int> tokenize(const std::string& text, bool add_special) const;
    void sample(sequence& seq, int batch_index);
    void finish(sequence& seq, const std::string& reason);
    void release(sequence& seq);
    void flush_outboxes();
    void wait_for_work();

    model_config cfg_;
    engine_options options_;
    llama_model* model_ = nullptr;
    llama_context* ctx_ = nullptr;
    const llama_vocab* vocab_ = nullptr;
    std::string chat_template_;
    int n_ctx_seq_ = 0;
    int n_batch_ = 0;
    int gpu_layers_ = 0;
    bool gpu_offload_ = false;
    static constexpr int k_all_layers = 100000;  // n_gpu_layers past the model's count means all
    std::vector<int> eog_tokens_;                // end-of-generation tokens, masked out when ignore_eos

    std::vector<std::unique_ptr<sequence>> slots_;  // index = llama seq id; engine thread only

    // Finished requests whose last chunks did not fit their channel yet; engine thread only.
    struct draining {
        std::shared_ptr<generation> request;
        std::deque<stream_chunk> outbox;
    };
    std::vector<draining> draining_;

    mutable std::mutex mutex_;
    std::condition_variable wake_cv_;
    bool wake_ = false;
    bool stopping_ = false;
    std::deque<std::shared_ptr<generation>> waiting_;
    int active_ = 0;

    std::atomic<std::uint64_t> decode_steps_{0};
    std::atomic<int> max_sequences_per_step_{0};
    std::atomic<std::uint64_t> tokens_generated_{0};
    std::atomic<std::uint64_t> requests_admitted_{0};
    std::atomic<int> max_steps_after_cancel_{0};

    std::thread thread_;
};

}  // namespace sluice
