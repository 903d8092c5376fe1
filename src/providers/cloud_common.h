#pragma once
// What the cloud wire formats (openai, anthropic) share: the HTTP client set-up from a model's
// config, the API key from the environment, and the mapping of upstream failures to client errors.
#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/chunk.h"
#include "core/config.h"
#include "providers/provider.h"
#include "upstream/http_client.h"
#include "upstream/sse_parser.h"
#include "upstream/upstream_error.h"

namespace sluice {

// The pieces every cloud provider holds; `unavailable` explains why it cannot serve, when it cannot.
struct cloud_endpoint {
    std::optional<url> base;
    std::string api_key;  // never logged
    std::string unavailable;
    std::unique_ptr<http_client> client;
};

// Parses base_url and reads the key from cfg.api_key_env (when one is named). Never throws.
// The client opens its connections on the io_context of each calling coroutine.
cloud_endpoint make_cloud_endpoint(const model_config& cfg, std::string_view default_base_url);

// A transport failure before or during the stream, as the error chunk a client sees.
stream_chunk upstream_failure_chunk(const upstream_error& error, const model_config& cfg, bool mid_stream);

// A non-2xx upstream response, as the error chunk a client sees (401/403 → 502 credentials,
// 429 → 429 with Retry-After, other statuses → 502 with the upstream's own message).
stream_chunk upstream_status_chunk(unsigned status, std::string_view body, std::string_view retry_after);

// The human message inside an upstream error body ({"error":{"message"}} and similar), trimmed.
std::string upstream_error_message(std::string_view body);

// Retry-After as seconds (delta-seconds or an HTTP date); `fallback` when absent or unreadable.
int parse_retry_after(std::string_view value, int fallback);

// The model name sent upstream.
inline const std::string& upstream_model_name(const model_config& cfg) {
    return cfg.model.empty() ? cfg.name : cfg.model;
}

// A token count an upstream sent: a JSON integer in [0, 2^28], else `unknown` (found by
// fuzz_openai_upstream_events: counts past INT_MAX wrapped negative).
inline int token_count(const boost::json::value* value, int unknown) {
    constexpr std::int64_t k_max = std::int64_t{1} << 28;  // three of them still add up inside an int
    if (!value || !value->is_int64()) return unknown;
    const std::int64_t count = value->get_int64();
    return count >= 0 && count <= k_max ? static_cast<int>(count) : unknown;
}

// ≈ 4 bytes per token: a cloud tokenizer is not at hand, and trimming only needs an estimate.
inline int estimate_tokens(std::string_view text) {
    return static_cast<int>((text.size() + 3) / 4);
}

// Parses the JSON of upstream events, one after the other, without a heap allocation per event: one
// parser reused for every event (one per io thread, see thread_event_json_parser), and each value
// built in a fixed buffer that the next parse reuses (an event too big for it spills to the heap).
// Same rules as boost::json::parse.
class event_json_parser {
  public:
    event_json_parser();
    event_json_parser(const event_json_parser&) = delete;
    event_json_parser& operator=(const event_json_parser&) = delete;

    // The value, valid until the next call; null when `text` is not one whole JSON value.
    const boost::json::value* parse(std::string_view text);

  private:
    alignas(std::max_align_t) std::array<unsigned char, 4096> values_buffer_;
    std::array<unsigned char, 1024> parser_buffer_;
    std::optional<boost::json::monotonic_resource> values_;
    boost::json::parser parser_;
    std::optional<boost::json::value> value_;
};

// What one SSE stream has told us so far. Formats send finish and usage in different orders; the
// provider contract wants usage, then finish, so both are held until the stream ends.
struct cloud_stream_state {
    std::string finish_reason;  // "stop" | "length" once the upstream said so
    bool has_usage = false;
    int prompt_tokens = 0;
    int completion_tokens = 0;
    int cached_tokens = 0;
    int cache_write_tokens = 0;
    int reasoning_tokens = 0;
    int deltas = 0;
    bool ended = false;  // the format's end marker ([DONE], message_stop) was seen
    // Tool calls: the upstream's index of a call (OpenAI's tool_calls[].index, Anthropic's content
    // block index) -> the call's 0-based number in this answer, and how many began. A map, not a
    // vector indexed by the upstream's number: an upstream may send any index (found by
    // fuzz_anthropic_upstream_events: an index of 2e9 resized a vector to 8 GB).
    std::map<std::int64_t, int> call_of;
    int tool_calls = 0;

    // The number of the call the upstream numbers `upstream_index`; -1 when none began there.
    int call_at(std::int64_t upstream_index) const {
        const auto found = call_of.find(upstream_index);
        return found == call_of.end() ? -1 : found->second;
    }
    // Numbers a new call found at `upstream_index` (a negative index counts as 0).
    int begin_call(std::int64_t upstream_index) {
        call_of[upstream_index < 0 ? 0 : upstream_index] = tool_calls;
        return tool_calls++;
    }
};

// This thread's event parser. An event's value is read and dropped inside one synchronous
// handler call, so every stream on the thread can share one parser and its 5 KiB of buffers
// (kept in each stream, they were a fifth of a waiting stream's memory).
event_json_parser& thread_event_json_parser();

// Handles one SSE event of a wire format: updates `state`, appends its chunks (deltas, or an error)
// to `out`. Returns false to stop the stream (after appending an error).
using cloud_event_handler = std::function<bool(const sse_event&, cloud_stream_state&, chunk_batch&)>;

// The shared life of a cloud stream: open the request, map a failure or a non-200 status to an
// error chunk, feed the SSE body to `on_event` piece by piece and hand the chunks of each piece to
// the sink together (each sink call is awaited before the next read: backpressure), then emit usage
// (an estimate when the upstream gave none) and finish. Emits nothing once the caller has cancelled.
// `active` (may be null) counts the streams in flight while this one runs. `chat`, `on_event` and the
// client must outlive the stream.
boost::asio::awaitable<void> run_cloud_stream(http_client& client, const model_config& cfg,
                                              upstream_request request, const chat_request& chat,
                                              chunk_sink sink, const cloud_event_handler& on_event,
                                              std::atomic<int>* active = nullptr);

// Hands `batch` to the sink (when it holds anything) unless the caller has cancelled, then clears
// it; false when the caller has cancelled.
boost::asio::awaitable<bool> emit_batch(const chunk_sink& sink, chunk_batch& batch);
// One chunk alone, the same way.
boost::asio::awaitable<bool> emit_chunk(const chunk_sink& sink, stream_chunk chunk);

// What every cloud provider shares: availability, the count of streams in flight and the stream
// loop. A wire format supplies only its request and the mapping of its events.
class cloud_provider : public provider {
  public:
    cloud_provider(model_config cfg, std::string_view default_base_url);

    const model_config& config() const override { return cfg_; }
    provider_status status() const override;
    int count_tokens(const std::string& text) const override { return estimate_tokens(text); }
    boost::asio::awaitable<void> stream(const chat_request& request, chunk_sink sink) override;

  protected:
    virtual upstream_request build_request(const chat_request& request) const = 0;
    virtual bool take_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) const = 0;

    model_config cfg_;
    cloud_endpoint endpoint_;

  private:
    cloud_event_handler on_event_;  // take_event, made once
    mutable std::atomic<int> active_{0};
};

}  // namespace sluice
