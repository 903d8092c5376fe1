#include "inference/engine.h"

#include <llama.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "core/api_error.h"
#include "inference/llama_backend.h"
#include "inference/text_assembler.h"

namespace sluice {
namespace {

struct sampler_deleter {
    void operator()(llama_sampler* sampler) const { llama_sampler_free(sampler); }
};
using sampler_ptr = std::unique_ptr<llama_sampler, sampler_deleter>;

void check_model_file(const std::string& path) {
    if (path.empty()) throw config_error("llama model: no model path configured");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error("llama model: cannot open model file '" + path + "'");
    char magic[4] = {};
    in.read(magic, sizeof magic);
    if (in.gcount() != 4 || std::string_view(magic, 4) != "GGUF") {
        throw config_error("llama model: '" + path + "' is not a GGUF file");
    }
}

}  // namespace

struct llama_engine::sequence {
    std::shared_ptr<generation> request;
    llama_seq_id id = 0;
    std::vector<llama_token> prompt;
    std::size_t prefilled = 0;  // prompt tokens already in the KV cache
    llama_pos n_past = 0;       // tokens of this sequence in the KV cache
    llama_token last = 0;       // sampled, not yet decoded
    int generated = 0;
    int max_tokens = 0;
    sampler_ptr sampler;
    text_assembler assembler;
    std::deque<stream_chunk> outbox;  // chunks that did not fit the channel yet
    int batch_index = -1;             // where its logits are in the current batch
    std::uint64_t last_step = 0;      // the last decode step it took part in
    bool done = false;

    bool prefilling() const { return prefilled < prompt.size(); }
};

llama_engine::llama_engine(const model_config& cfg, engine_options options) : cfg_(cfg), options_(options) {
    check_model_file(cfg_.path);
    ensure_llama_backend();

    llama_model_params model_params = llama_model_default_params();
    gpu_offload_ = llama_supports_gpu_offload();
    const int asked = cfg_.n_gpu_layers.value_or(gpu_offload_ ? k_all_layers : 0);
    if (!gpu_offload_ && asked > 0) {
        spdlog::warn(
            "llama model '{}': n_gpu_layers = {} but this build has no GPU backend (build with "
            "SLUICE_GPU=cuda): every layer runs on the CPU",
            cfg_.name, asked);
    }
    model_params.n_gpu_layers = gpu_offload_ ? asked : 0;
    model_ = llama_model_load_from_file(cfg_.path.c_str(), model_params);
    if (!model_) throw config_error("llama model: llama.cpp could not load '" + cfg_.path + "'");
    vocab_ = llama_model_get_vocab(model_);
    // llama.cpp offloads the repeating layers and then the output layer: n_layer + 1 in all.
    gpu_layers_ = std::min(model_params.n_gpu_layers, llama_model_n_layer(model_) + 1);

    const int n_parallel = std::max(1, cfg_.n_parallel);
    const int n_threads = cfg_.n_threads > 0
                              ? cfg_.n_threads
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    llama_context_params ctx_params = llama_context_default_params();
    // n_ctx is what one conversation may use; every sequence gets its own share of that size.
    ctx_params.n_ctx = static_cast<std::uint32_t>(std::max(16, cfg_.n_ctx) * n_parallel);
    ctx_params.n_seq_max = static_cast<std::uint32_t>(n_parallel);
    ctx_params.n_batch = static_cast<std::uint32_t>(std::max(cfg_.n_batch, n_parallel));
    ctx_params.n_ubatch = ctx_params.n_batch;
    ctx_params.n_threads = n_threads;
    ctx_params.n_threads_batch = n_threads;
    ctx_params.no_perf = true;
    ctx_ = llama_init_from_model(model_, ctx_params);
    if (!ctx_) {
        llama_model_free(model_);
        throw config_error("llama model: cannot create a context for '" + cfg_.path + "' (n_ctx " +
                           std::to_string(cfg_.n_ctx) + ", n_parallel " + std::to_string(n_parallel) + ")");
    }
    n_ctx_seq_ = static_cast<int>(llama_n_ctx_seq(ctx_));
    n_batch_ = static_cast<int>(llama_n_batch(ctx_));

    if (const char* tmpl = llama_model_chat_template(model_, nullptr)) chat_template_ = tmpl;
    // llama_chat_apply_template only knows built-in template families; fall back to ChatML.
    const llama_chat_message probe{"user", "x"};
    if (chat_template_.empty() ||
        llama_chat_apply_template(chat_template_.c_str(), &probe, 1, true, nullptr, 0) < 0) {
        spdlog::info("llama model '{}': no usable chat template in the file, using chatml", cfg_.name);
        chat_template_ = "chatml";
    }

    for (llama_token t = 0; t < llama_vocab_n_tokens(vocab_); ++t) {
        if (llama_vocab_is_eog(vocab_, t)) eog_tokens_.push_back(t);
    }
    slots_.resize(static_cast<std::size_t>(n_parallel));
    spdlog::info(
        "llama model '{}' loaded from {}: {} parameters, {} sequences x {} tokens of context, {} threads, {}",
        cfg_.name, cfg_.path, llama_model_n_params(model_), n_parallel, n_ctx_seq_, n_threads,
        gpu_layers_ > 0 ? std::to_string(gpu_layers_) + " layers on the GPU"
                        : std::string(gpu_offload_ ? "no layer on the GPU (n_gpu_layers = 0)"
                                                   : "CPU only (a build without a GPU backend)"));
    thread_ = std::thread([this] { run(); });
}

llama_engine::~llama_engine() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    llama_free(ctx_);
    llama_model_free(model_);
}

std::shared_ptr<generation> llama_engine::submit(chat_request request) {
    auto item = std::make_shared<generation>(options_.channel_capacity, std::move(request));
    {
        std::lock_guard lock(mutex_);
        const int free_slots = static_cast<int>(slots_.size()) - active_;
        if (static_cast<int>(waiting_.size()) >= cfg_.queue_size + std::max(0, free_slots)) return nullptr;
        waiting_.push_back(item);
        wake_ = true;
    }
    wake_cv_.notify_one();
    return item;
}

void llama_engine::cancel(generation& request) {
    request.cancel_step.store(decode_steps_.load());
    request.cancelled.store(true);
    {
        std::lock_guard lock(mutex_);
        std::erase_if(waiting_, [&](const auto& item) { return item.get() == &request; });
        wake_ = true;
    }
    wake_cv_.notify_one();
}

void llama_engine::consumed(generation& request) {
    if (!request.waiting_for_space.load()) return;
    {
        std::lock_guard lock(mutex_);
        wake_ = true;
    }
    wake_cv_.notify_one();
}

int llama_engine::count_tokens(const std::string& text) const {
    return static_cast<int>(tokenize(text, false).size());
}

int llama_engine::queue_depth() const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(waiting_.size());
}

int llama_engine::active() const {
    std::lock_guard lock(mutex_);
    return active_;
}

engine_stats llama_engine::stats() const {
    return {decode_steps_.load(), max_sequences_per_step_.load(), tokens_generated_.load(),
            requests_admitted_.load(), max_steps_after_cancel_.load()};
}

std::vector<int> llama_engine::tokenize(const std::string& text, bool add_special) const {
    std::vector<llama_token> tokens(text.size() + 8);
    int n = llama_tokenize(vocab_, text.data(), static_cast<std::int32_t>(text.size()), tokens.data(),
                           static_cast<std::int32_t>(tokens.size()), add_special, true);
    if (n < 0) {
        tokens.resize(static_cast<std::size_t>(-n));
        n = llama_tokenize(vocab_, text.data(), static_cast<std::int32_t>(text.size()), tokens.data(),
                           static_cast<std::int32_t>(tokens.size()), add_special, true);
    }
    tokens.resize(static_cast<std::size_t>(std::max(0, n)));
    return tokens;
}

std::string llama_engine::format_prompt(const chat_request& request) const {
    std::vector<llama_chat_message> messages;
    std::size_t size = 64;
    for (const auto& message : request.messages) {
        messages.push_back({message.role.c_str(), message.content.c_str()});
        size += message.role.size() + message.content.size() + 32;
    }
    std::string text(size * 2, '\0');
    int n = llama_chat_apply_template(chat_template_.c_str(), messages.data(), messages.size(), true,
                                      text.data(), static_cast<std::int32_t>(text.size()));
    if (n > static_cast<int>(text.size())) {
        text.resize(static_cast<std::size_t>(n));
        n = llama_chat_apply_template(chat_template_.c_str(), messages.data(), messages.size(), true,
                                      text.data(), static_cast<std::int32_t>(text.size()));
    }
    text.resize(static_cast<std::size_t>(std::max(0, n)));
    return text;
}

// Sets up a slot for a request. Returns false (with an error chunk queued) when it cannot run.
bool llama_engine::start(sequence& seq, std::shared_ptr<generation> request) {
    const auto& params = request->request.params;
    seq.request = std::move(request);
    seq.prompt = tokenize(format_prompt(seq.request->request), true);
    // A template that writes BOS itself plus add_special would give two; keep one.
    const llama_token bos = llama_vocab_bos(vocab_);
    if (seq.prompt.size() >= 2 && seq.prompt[0] == bos && seq.prompt[1] == bos)
        seq.prompt.erase(seq.prompt.begin());
    const int prompt_tokens = static_cast<int>(seq.prompt.size());
    if (prompt_tokens == 0 || prompt_tokens >= n_ctx_seq_) {
        const int over = prompt_tokens - (n_ctx_seq_ - 1);
        seq.outbox.push_back(stream_chunk::error(
            400, "prompt is " + std::to_string(prompt_tokens) + " tokens, " + std::to_string(over) +
                     " over the context of " + std::to_string(n_ctx_seq_) +
                     " tokens (at least one token must be left for the answer)"));
        return false;
    }
    seq.prefilled = 0;
    seq.n_past = 0;
    seq.generated = 0;
    seq.max_tokens = params.max_tokens > 0 ? params.max_tokens : n_ctx_seq_;
    seq.assembler = text_assembler(params.stop);
    seq.done = false;

    llama_sampler_chain_params chain_params = llama_sampler_chain_default_params();
    chain_params.no_perf = true;
    seq.sampler.reset(llama_sampler_chain_init(chain_params));
    if (options_.ignore_eos) {
        std::vector<llama_logit_bias> biases;
        for (const int token : eog_tokens_) biases.push_back({token, -INFINITY});
        llama_sampler_chain_add(
            seq.sampler.get(),
            llama_sampler_init_logit_bias(llama_vocab_n_tokens(vocab_),
                                          static_cast<std::int32_t>(biases.size()), biases.data()));
    }
    if (params.temperature <= 0.0) {
        llama_sampler_chain_add(seq.sampler.get(), llama_sampler_init_greedy());
    } else {
        if (params.top_p < 1.0) {
            llama_sampler_chain_add(seq.sampler.get(),
                                    llama_sampler_init_top_p(static_cast<float>(params.top_p), 1));
        }
        llama_sampler_chain_add(seq.sampler.get(),
                                llama_sampler_init_temp(static_cast<float>(params.temperature)));
        const auto seed = params.seed ? static_cast<std::uint32_t>(*params.seed) : std::random_device{}();
        llama_sampler_chain_add(seq.sampler.get(), llama_sampler_init_dist(seed));
    }
    return true;
}

void llama_engine::finish(sequence& seq, const std::string& reason) {
    if (auto tail = seq.assembler.flush(); !tail.empty())
        seq.outbox.push_back(stream_chunk::delta(std::move(tail)));
    seq.outbox.push_back(stream_chunk::usage(static_cast<int>(seq.prompt.size()), seq.generated));
    seq.outbox.push_back(stream_chunk::finish(reason));
    seq.done = true;
}

void llama_engine::sample(sequence& seq, int batch_index) {
    const llama_token token = llama_sampler_sample(seq.sampler.get(), ctx_, batch_index);
    tokens_generated_.fetch_add(1, std::memory_order_relaxed);
    if (!options_.ignore_eos && llama_vocab_is_eog(vocab_, token)) {
        finish(seq, "stop");
        return;
    }
    ++seq.generated;
    char buffer[256];
    int n = llama_token_to_piece(vocab_, token, buffer, sizeof buffer, 0, false);
    std::string piece;
    if (n < 0) {
        piece.resize(static_cast<std::size_t>(-n));
        n = llama_token_to_piece(vocab_, token, piece.data(), -n, 0, false);
        piece.resize(static_cast<std::size_t>(std::max(0, n)));
    } else {
        piece.assign(buffer, static_cast<std::size_t>(n));
    }
    auto out = seq.assembler.push(piece);
    if (!out.text.empty()) seq.outbox.push_back(stream_chunk::delta(std::move(out.text)));
    if (out.stopped) {
        finish(seq, "stop");
    } else if (seq.generated >= seq.max_tokens || seq.n_past + 1 >= n_ctx_seq_) {
        finish(seq, "length");
    } else {
        seq.last = token;
    }
}

// Frees the slot and its KV cells; undelivered chunks move to draining_.
void llama_engine::release(sequence& seq) {
    llama_memory_seq_rm(llama_get_memory(ctx_), seq.id, -1, -1);
    if (!seq.request->cancelled.load() && !seq.outbox.empty()) {
        draining_.push_back({seq.request, std::move(seq.outbox)});
    }
    if (seq.request->cancelled.load()) {
        const auto after =
            static_cast<int>(seq.last_step - std::min(seq.last_step, seq.request->cancel_step.load()));
        int seen = max_steps_after_cancel_.load();
        while (after > seen && !max_steps_after_cancel_.compare_exchange_weak(seen, after)) {
        }
    }
    slots_[static_cast<std::size_t>(seq.id)].reset();
    std::lock_guard lock(mutex_);
    --active_;
}

// Moves queued chunks into their channels; a request whose channel is full waits for its consumer.
void llama_engine::flush_outboxes() {
    const auto drain = [](generation& request, std::deque<stream_chunk>& outbox) {
        while (!outbox.empty()) {
            if (request.chunks.try_push(outbox.front())) {
                outbox.pop_front();
                continue;
            }
            // Announce the wait before retrying, so a consumer that frees space in between wakes us.
            request.waiting_for_space.store(true);
            if (!request.chunks.try_push(outbox.front())) return;
            outbox.pop_front();
        }
        request.waiting_for_space.store(false);
    };
    for (auto& slot : slots_) {
        if (slot && !slot->request->cancelled.load()) drain(*slot->request, slot->outbox);
    }
    for (auto& item : draining_) {
        if (!item.request->cancelled.load()) drain(*item.request, item.outbox);
    }
    std::erase_if(draining_,
                  [](const draining& item) { return item.outbox.empty() || item.request->cancelled.load(); });
}

void llama_engine::admit(std::vector<std::pair<std::size_t, std::shared_ptr<generation>>>& admitted) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < slots_.size() && !waiting_.empty(); ++i) {
        if (slots_[i]) continue;
        slots_[i] = std::make_unique<sequence>();
        slots_[i]->id = static_cast<llama_seq_id>(i);
        ++active_;
        admitted.emplace_back(i, std::move(waiting_.front()));
        waiting_.pop_front();
    }
}

void llama_engine::wait_for_work() {
    std::unique_lock lock(mutex_);
    wake_cv_.wait(lock, [&] { return wake_ || stopping_; });
    wake_ = false;
}

void llama_engine::run() {
    llama_batch batch = llama_batch_init(n_batch_, 0, 1);
    std::vector<std::pair<std::size_t, std::shared_ptr<generation>>> admitted;
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) break;
        }
        // 1. Cancelled and finished sequences leave; their slots are free for this very step.
        for (auto& slot : slots_) {
            if (slot && (slot->request->cancelled.load() || slot->done)) release(*slot);
        }
        // 2. New requests join between steps.
        admit(admitted);
        for (auto& [index, request] : admitted) {
            sequence& seq = *slots_[index];
            if (request->cancelled.load()) {
                seq.request = std::move(request);
                release(seq);
                continue;
            }
            requests_admitted_.fetch_add(1, std::memory_order_relaxed);
            if (!start(seq, std::move(request))) release(seq);
        }
        admitted.clear();
        flush_outboxes();

        // 3. One batch: a token for every decoding sequence, then prompt chunks in the room left.
        batch.n_tokens = 0;
        const auto add = [&](sequence& seq, llama_token token, bool logits) {
            const int i = batch.n_tokens++;
            batch.token[i] = token;
            batch.pos[i] = seq.n_past++;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = seq.id;
            batch.logits[i] = static_cast<std::int8_t>(logits);
            if (logits) seq.batch_index = i;
            seq.last_step = decode_steps_.load() + 1;
        };
        int sequences = 0;
        for (auto& slot : slots_) {
            if (!slot || slot->done || slot->prefilling() || !slot->outbox.empty()) continue;
            if (batch.n_tokens >= n_batch_) break;
            add(*slot, slot->last, true);
            ++sequences;
        }
        for (auto& slot : slots_) {
            if (!slot || slot->done || !slot->prefilling()) continue;
            if (batch.n_tokens >= n_batch_) break;
            const std::size_t take = std::min(slot->prompt.size() - slot->prefilled,
                                              static_cast<std::size_t>(n_batch_ - batch.n_tokens));
            for (std::size_t k = 0; k < take; ++k) {
                const bool last_of_prompt = slot->prefilled + k + 1 == slot->prompt.size();
                add(*slot, slot->prompt[slot->prefilled + k], last_of_prompt);
            }
            slot->prefilled += take;
            ++sequences;
        }
        if (batch.n_tokens == 0) {
            wait_for_work();
            continue;
        }

        const int rc = llama_decode(ctx_, batch);
        decode_steps_.fetch_add(1);
        int seen = max_sequences_per_step_.load();
        while (sequences > seen && !max_sequences_per_step_.compare_exchange_weak(seen, sequences)) {
        }
        if (rc != 0) {
            spdlog::error("llama model '{}': llama_decode failed with code {}", cfg_.name, rc);
        }

        // 4. Sample the sequences that produced logits, unless they were cancelled meanwhile.
        for (auto& slot : slots_) {
            if (!slot || slot->batch_index < 0) continue;
            const int index = slot->batch_index;
            slot->batch_index = -1;
            if (slot->request->cancelled.load()) continue;
            if (rc != 0) {
                slot->outbox.push_back(stream_chunk::error(500, "local model failed to decode"));
                slot->done = true;
                continue;
            }
            sample(*slot, index);
        }
        if (rc != 0) {
            for (auto& slot : slots_) {
                if (slot && !slot->done && slot->prefilling()) {
                    slot->outbox.push_back(stream_chunk::error(500, "local model failed to decode"));
                    slot->done = true;
                }
            }
        }
        // Finished sequences leave now, before their last chunks are delivered: by the time a
        // consumer sees its finish, the slot is already free for the next request.
        for (auto& slot : slots_) {
            if (slot && slot->done) release(*slot);
        }
        flush_outboxes();
    }

    llama_batch_free(batch);
    // Whoever still waits learns that the model went away.
    for (auto& slot : slots_) {
        if (slot && slot->request) slot->request->chunks.close();
    }
    for (auto& item : draining_) item.request->chunks.close();
    std::lock_guard lock(mutex_);
    for (auto& request : waiting_) request->chunks.close();
    waiting_.clear();
}

}  // namespace sluice
