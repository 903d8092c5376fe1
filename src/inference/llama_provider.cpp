#include "inference/llama_provider.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "inference/local_provider.h"

namespace sluice {
namespace {

// Whatever way the consumer leaves (cancellation, an exception from the sink, its frame destroyed),
// a request that did not reach its last chunk is cancelled, so its slot goes to the next request.
class cancel_on_exit {
  public:
    cancel_on_exit(llama_engine& engine, std::shared_ptr<generation> request)
        : engine_(engine), request_(std::move(request)) {}
    ~cancel_on_exit() {
        if (!complete_) engine_.cancel(*request_);
    }
    cancel_on_exit(const cancel_on_exit&) = delete;
    cancel_on_exit& operator=(const cancel_on_exit&) = delete;
    void complete() { complete_ = true; }

  private:
    llama_engine& engine_;
    std::shared_ptr<generation> request_;
    bool complete_ = false;
};

}  // namespace

llama_local_provider::llama_local_provider(const model_config& cfg, engine_options options)
    : cfg_(cfg), engine_(std::make_unique<llama_engine>(cfg, options)) {}

provider_status llama_local_provider::status() const {
    provider_status status;
    status.available = true;
    status.queue_depth = engine_->queue_depth();
    status.active = engine_->active();
    status.gpu_layers = engine_->gpu_layers();
    status.gpu_offload = engine_->gpu_offload();
    return status;
}

int llama_local_provider::count_tokens(const std::string& text) const {
    return engine_->count_tokens(text);
}

boost::asio::awaitable<void> llama_local_provider::stream(const chat_request& request, chunk_sink sink) {
    auto executor = co_await boost::asio::this_coro::executor;
    chunk_batch batch;
    chat_request owned = request;  // the engine thread's own copy
    auto item = engine_->submit(std::move(owned));
    if (!item) {
        batch.push_back(stream_chunk::error(
            503, "local model is busy: every slot is taken and the queue is full", engine_->retry_after_s()));
        co_await sink(batch);
        co_return;
    }
    cancel_on_exit guard(*engine_, item);
    for (;;) {
        auto [ec, chunk] =
            co_await item->chunks.async_pop(executor, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec == boost::asio::error::operation_aborted) throw boost::system::system_error(ec);
        if (ec) {
            guard.complete();
            batch.push_back(stream_chunk::error(503, "local model stopped"));
            co_await sink(batch);
            co_return;
        }
        // What else the engine already queued (a slow client lets chunks pile up) goes along.
        bool last = false;
        for (;;) {
            engine_->consumed(*item);
            last = chunk.type == stream_chunk::kind::finish || chunk.type == stream_chunk::kind::error;
            batch.push_back(std::move(chunk));
            if (last || !item->chunks.try_pop(chunk)) break;
        }
        if (last) guard.complete();
        co_await sink(batch);
        batch.clear();
        if (last) co_return;
    }
}

std::shared_ptr<llama_local_provider> make_llama_local_provider(const model_config& cfg,
                                                                engine_options options) {
    return std::make_shared<llama_local_provider>(cfg, options);
}

std::shared_ptr<provider> make_llama_provider(const model_config& cfg) {
    return make_llama_local_provider(cfg);
}

}  // namespace sluice
