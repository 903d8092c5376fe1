#pragma once
// The provider interface: one per wire format (openai, anthropic, llama_local). A provider turns a
// chat_request into a sequence of stream_chunk values handed to `sink`, in order:
//   delta* usage? (finish | error)
// The chunks come in batches: whatever one upstream read (or one wake-up of the local engine) made
// ready goes in one call, so a relay can write them with one socket write. The sink is awaited
// before the provider reads the next upstream chunk, so a slow client slows the upstream read
// instead of filling a buffer (backpressure); a batch is bounded by one read.
//
// Errors: an error chunk before any delta means "nothing reached the client": the orchestrator may
// fall back to another model. An error after a delta ends the stream with an in-band error event.
//
// Cancellation: the caller cancels through the coroutine's cancellation slot (e.g. awaitable
// operator || with a disconnect watcher). The provider must stop at once: close the upstream
// connection, or drop the local sequence at the next decode step. It may not emit further chunks.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/chat.h"
#include "core/chunk.h"
#include "core/config.h"

namespace sluice {

// The sink may move the chunks out; the provider clears the batch after the call and reuses it.
using chunk_batch = std::vector<stream_chunk>;
using chunk_sink = std::function<boost::asio::awaitable<void>(chunk_batch&)>;

struct provider_status {
    bool available = true;  // loaded / reachable as far as we know
    std::string detail;     // why not, when not
    int queue_depth = 0;    // local: requests waiting for a slot
    int active = 0;         // streams in flight
    // local: layers on the GPU (0: CPU only) and whether this build can offload at all
    int gpu_layers = 0;
    bool gpu_offload = false;
};

class provider {
  public:
    virtual ~provider() = default;

    virtual const model_config& config() const = 0;
    virtual provider_status status() const = 0;

    // Counts tokens of a text the way this model would (exact for local, an estimate for cloud);
    // used to trim session history to the context budget.
    virtual int count_tokens(const std::string& text) const = 0;
    // Whether count_tokens costs real CPU on a big text (a tokenizer: a 1 MiB prompt takes a
    // significant fraction of a second): callers then count on a thread pool, never on an io thread.
    virtual bool counting_is_costly() const { return false; }

    // `request` stays alive and unchanged until the stream's coroutine has finished.
    virtual boost::asio::awaitable<void> stream(const chat_request& request, chunk_sink sink) = 0;

    // The prompt's input tokens as the model's own service counts them (Anthropic's
    // /v1/messages/count_tokens); nullopt when it has no such service or it failed: the caller then
    // counts with count_tokens().
    virtual boost::asio::awaitable<std::optional<int>> count_input_tokens(const chat_request& request) {
        (void)request;
        co_return std::nullopt;
    }
};

using provider_ptr = std::shared_ptr<provider>;

}  // namespace sluice
