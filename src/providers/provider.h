#pragma once
// The provider interface: one per wire format (openai, anthropic, llama_local). A provider turns a
// chat_request into a sequence of stream_chunk values handed to `sink`, in order:
//   delta* usage? (finish | error)
// The sink is awaited before the provider reads the next upstream chunk, so a slow client slows the
// upstream read instead of filling a buffer (backpressure).
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
#include <string>

#include "core/chat.h"
#include "core/chunk.h"
#include "core/config.h"

namespace sluice {

using chunk_sink = std::function<boost::asio::awaitable<void>(stream_chunk)>;

struct provider_status {
    bool available = true;  // loaded / reachable as far as we know
    std::string detail;     // why not, when not
    int queue_depth = 0;    // local: requests waiting for a slot
    int active = 0;         // streams in flight
};

class provider {
  public:
    virtual ~provider() = default;

    virtual const model_config& config() const = 0;
    virtual provider_status status() const = 0;

    // Counts tokens of a text the way this model would (exact for local, an estimate for cloud);
    // used to trim session history to the context budget.
    virtual int count_tokens(const std::string& text) const = 0;

    virtual boost::asio::awaitable<void> stream(chat_request request, chunk_sink sink) = 0;
};

using provider_ptr = std::shared_ptr<provider>;

}  // namespace sluice
