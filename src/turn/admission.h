#pragma once
// Per-key limits at the door of every model request (seed and OpenAI endpoints alike): requests and
// tokens per minute, and concurrent streams. A request path calls admit() once before it streams
// and keeps the returned slot for the life of the stream; the slot's settle() (run from the
// stream's outcome hook, i.e. before the last event goes out) counts the streamed tokens and frees
// the stream slot, so a client that reads [DONE] and asks again at once is judged on settled
// counts. Whatever path leaves the handler without settling (early error, exception, cancel before
// the stream) still frees the slot in the destructor.
//
//     auto admitted = co_await admit(app, ex);
//     if (auto* error = std::get_if<api_error>(&admitted)) { /* answer *error: 429 + Retry-After, 503 */ }
//     auto& slot = std::get<stream_slot>(admitted);  // must not move once wrap() was called
//     outcome_hook hook = slot.wrap(persist);        // relay_stream(..., hook, ...)
#include <boost/asio/awaitable.hpp>
#include <string>
#include <variant>

#include "core/api_error.h"
#include "http/exchange.h"
#include "streaming/relay.h"
#include "turn/app_context.h"

namespace sluice {

// The limits that apply to a key: its own values when it has them, else [limits].
limits_config effective_limits(const config& cfg, const authenticated_key& key);

class stream_slot {
  public:
    stream_slot() = default;
    stream_slot(app_context& app, std::string key_id, bool holds_stream, bool count_tokens);
    stream_slot(stream_slot&& other) noexcept;
    stream_slot& operator=(stream_slot&& other) noexcept;
    stream_slot(const stream_slot&) = delete;
    stream_slot& operator=(const stream_slot&) = delete;
    ~stream_slot();

    // Counts the completion tokens that reached the client (cancelled partial answers included)
    // and frees the stream slot. Idempotent; never throws (a store that is down loses the count).
    boost::asio::awaitable<void> settle(const stream_outcome& outcome);

    // `inner` preceded by settle(): pass the result to relay_stream as its outcome hook.
    outcome_hook wrap(outcome_hook inner);

  private:
    void release_later() noexcept;

    app_context* app_ = nullptr;
    std::string key_id_;
    bool holds_stream_ = false;
    bool count_tokens_ = false;  // only a tokens-per-minute limit reads the count
    bool settled_ = false;
};

// 429 with retry_after_s when a limit is reached, 503 when the store cannot be reached, else a slot.
// A request without a key (auth disabled) is admitted with an empty slot.
boost::asio::awaitable<std::variant<stream_slot, api_error>> admit(app_context& app, const exchange& ex);

}  // namespace sluice
