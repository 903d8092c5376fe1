#include "providers/cloud_common.h"

#include "core/cancellation.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

namespace sluice {
namespace {

constexpr std::size_t k_max_message_bytes = 300;

std::string trimmed(std::string text) {
    for (auto& c : text)
        if (c == '\r' || c == '\n' || c == '\t') c = ' ';
    if (text.size() > k_max_message_bytes) {
        std::size_t cut = k_max_message_bytes;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 chars
        text.resize(cut);
        text += "...";
    }
    return text;
}

}  // namespace

cloud_endpoint make_cloud_endpoint(const model_config& cfg, std::string_view default_base_url) {
    cloud_endpoint endpoint;
    std::string base_text = cfg.base_url.empty() ? std::string(default_base_url) : cfg.base_url;
    std::string error;
    endpoint.base = parse_url(base_text, &error);
    if (!endpoint.base) {
        endpoint.unavailable = "base_url \"" + base_text + "\" is not usable: " + error;
        return endpoint;
    }
    if (!cfg.api_key_env.empty()) {
        const char* key = std::getenv(cfg.api_key_env.c_str());
        if (key == nullptr || *key == '\0') {
            endpoint.unavailable =
                "the environment variable " + cfg.api_key_env + " (api_key_env) is not set";
        } else {
            endpoint.api_key = key;
        }
    }
    http_client_options options{
        .connect_timeout = std::chrono::milliseconds(cfg.connect_timeout_ms),
        .first_byte_timeout = std::chrono::milliseconds(cfg.first_byte_timeout_ms),
        .idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms),
        .request_timeout = std::chrono::seconds(cfg.request_timeout_s),
        .max_connections = cfg.max_connections,
        .pool_wait = std::chrono::milliseconds(cfg.pool_wait_ms),
    };
    // A private CA (a corporate proxy, a test server) besides the system store.
    if (const char* ca_file = std::getenv("SLUICE_UPSTREAM_CA_FILE"); ca_file && *ca_file) {
        std::ifstream in(ca_file);
        std::stringstream pem;
        pem << in.rdbuf();
        options.extra_ca_pem = pem.str();
        if (options.extra_ca_pem.empty())
            endpoint.unavailable = std::string("SLUICE_UPSTREAM_CA_FILE cannot be read: ") + ca_file;
    }
    try {
        endpoint.client = std::make_unique<http_client>(*endpoint.base, std::move(options));
    } catch (const std::exception& e) {
        endpoint.unavailable = e.what();
    }
    return endpoint;
}

stream_chunk upstream_failure_chunk(const upstream_error& error, const model_config& cfg, bool mid_stream) {
    spdlog::warn("upstream {} ({}): {}", cfg.name, to_string(error.kind), error.detail);
    switch (error.kind) {
        case upstream_failure::pool_timeout: {
            // sluice's own limit (models.max_connections), not the model failing: no breaker count.
            auto busy = stream_chunk::error(
                503, "too many requests to the model " + cfg.name + " at once; retry shortly", 1);
            busy.model_fault = false;
            return busy;
        }
        case upstream_failure::connect:
            return stream_chunk::error(503, "cannot reach the upstream model " + cfg.name);
        case upstream_failure::connect_timeout:
            return stream_chunk::error(504, "connecting to the upstream model " + cfg.name + " timed out");
        case upstream_failure::tls:
            return stream_chunk::error(502,
                                       "the TLS connection to the upstream model " + cfg.name + " failed");
        case upstream_failure::first_byte_timeout:
            return stream_chunk::error(504, "the upstream model " + cfg.name + " did not answer in time");
        case upstream_failure::idle_timeout:
            return stream_chunk::error(504, "the upstream model " + cfg.name + " stopped sending data");
        case upstream_failure::request_timeout:
            return stream_chunk::error(504, "the request to the upstream model " + cfg.name + " timed out");
        case upstream_failure::closed:
            return stream_chunk::error(502, mid_stream ? "the upstream connection closed mid-stream"
                                                       : "the upstream closed the connection");
        case upstream_failure::protocol:
            return stream_chunk::error(502, "the upstream model " + cfg.name + " sent an invalid response");
        case upstream_failure::cancelled:
        case upstream_failure::none:
            break;
    }
    return stream_chunk::error(502, "upstream failure");
}

std::string upstream_error_message(std::string_view body) {
    boost::system::error_code ec;
    auto value = boost::json::parse(body, ec);
    if (!ec) {
        const boost::json::value* message = nullptr;
        if (auto* object = value.if_object()) {
            if (auto* error = object->if_contains("error")) {
                if (auto* inner = error->if_object())
                    message = inner->if_contains("message");
                else if (error->is_string())
                    message = error;
            }
            if (!message) message = object->if_contains("message");
            if (!message) message = object->if_contains("detail");
        }
        if (message && message->is_string()) return trimmed(std::string(message->get_string()));
    }
    return trimmed(std::string(body));
}

int parse_retry_after(std::string_view value, int fallback) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value.empty()) return fallback;
    bool digits = true;
    for (char c : value) digits = digits && c >= '0' && c <= '9';
    if (digits) return value.size() > 6 ? 86400 : std::max(0, std::atoi(std::string(value).c_str()));
    std::tm when{};
    std::string text(value);
    if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &when) == nullptr) return fallback;
    auto seconds = static_cast<long>(timegm(&when) - std::time(nullptr));
    return seconds > 0 ? static_cast<int>(std::min(seconds, 86400L)) : 0;
}

stream_chunk upstream_status_chunk(unsigned status, std::string_view body, std::string_view retry_after) {
    if (status == 401 || status == 403) return stream_chunk::error(502, "upstream rejected the credentials");
    std::string message = upstream_error_message(body);
    std::string suffix = message.empty() ? "" : ": " + message;
    if (status == 429) {
        return stream_chunk::error(429, "the upstream rate limit was reached" + suffix,
                                   parse_retry_after(retry_after, 1));
    }
    if (status >= 500)
        return stream_chunk::error(502, "upstream error (HTTP " + std::to_string(status) + ")" + suffix);
    return stream_chunk::error(502,
                               "upstream refused the request (HTTP " + std::to_string(status) + ")" + suffix);
}

boost::asio::awaitable<bool> emit_batch(const chunk_sink& sink, chunk_batch& batch) {
    bool cancelled = co_await is_cancelled();
    if (cancelled) {
        batch.clear();
        co_return false;
    }
    if (!batch.empty()) {
        co_await sink(batch);
        batch.clear();
    }
    co_return true;
}

boost::asio::awaitable<bool> emit_chunk(const chunk_sink& sink, stream_chunk chunk) {
    chunk_batch batch;
    batch.push_back(std::move(chunk));
    co_return co_await emit_batch(sink, batch);
}

event_json_parser::event_json_parser()
    : parser_(boost::json::storage_ptr(), boost::json::parse_options(), parser_buffer_.data(),
              parser_buffer_.size()) {}

event_json_parser& thread_event_json_parser() {
    thread_local event_json_parser parser;
    return parser;
}

const boost::json::value* event_json_parser::parse(std::string_view text) {
    // The old value (and whatever a failed parse left on the parser's stack) lives in the old
    // resource: both let go of it before the buffer starts over.
    value_.reset();
    parser_.reset();
    values_.emplace(values_buffer_.data(), values_buffer_.size());
    parser_.reset(boost::json::storage_ptr(&*values_));
    boost::system::error_code ec;
    parser_.write(text.data(), text.size(), ec);
    if (ec) return nullptr;
    value_.emplace(parser_.release());
    return &*value_;
}

// g++ 12 at -O2 reports a false -Wmismatched-new-delete on Asio's coroutine frame allocator here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {

// Opens the upstream request. On a failure or a non-2xx status the error chunk goes to the sink and
// the result is null. Its own short coroutine, so that the request, the error paths and their
// temporaries never sit in the frame that lives for the whole stream.
boost::asio::awaitable<std::unique_ptr<upstream_response>> open_stream(http_client& client,
                                                                       const model_config& cfg,
                                                                       upstream_request request,
                                                                       const chunk_sink& sink) {
    constexpr std::size_t k_error_body_limit = 64 * 1024;
    auto opened = co_await client.open(std::move(request));
    if (opened.error) {
        if (opened.error.kind != upstream_failure::cancelled) {
            stream_chunk failure = upstream_failure_chunk(opened.error, cfg, false);
            co_await emit_chunk(sink, std::move(failure));
        }
        co_return nullptr;
    }
    const unsigned status = opened.response->status();
    if (status < 200 || status > 299) {
        auto [body, error] = co_await opened.response->read_all(k_error_body_limit);
        std::string retry_after(opened.response->headers()[boost::beast::http::field::retry_after]);
        stream_chunk failure = upstream_status_chunk(status, body, retry_after);
        co_await emit_chunk(sink, std::move(failure));
        co_return nullptr;
    }
    co_return std::move(opened.response);
}

// The usage (an estimate when the upstream gave none) and the finish that end a whole stream.
void add_stream_end(cloud_stream_state& state, const chat_request& chat, chunk_batch& batch) {
    if (!state.has_usage) {
        // Some compatible servers ignore stream_options; an estimate beats no ledger entry.
        state.prompt_tokens = 0;
        for (const auto& message : chat.messages) state.prompt_tokens += estimate_tokens(message.content);
        state.completion_tokens = state.deltas;
    }
    // Counts that contradict each other (cached past the prompt) are kept within the prompt.
    state.cache_write_tokens = std::min(state.cache_write_tokens, state.prompt_tokens);
    state.cached_tokens = std::min(state.cached_tokens, state.prompt_tokens - state.cache_write_tokens);
    auto usage = stream_chunk::usage(state.prompt_tokens, state.completion_tokens);
    usage.cached_tokens = state.cached_tokens;
    usage.cache_write_tokens = state.cache_write_tokens;
    usage.reasoning_tokens = state.reasoning_tokens;
    batch.push_back(std::move(usage));
    std::string finish = state.finish_reason.empty() ? "stop" : state.finish_reason;
    // Some compatible servers end a turn of tool calls with "stop"; clients run tools on tool_calls.
    if (state.tool_calls > 0 && finish == "stop") finish = "tool_calls";
    batch.push_back(stream_chunk::finish(std::move(finish)));
}

struct active_count {
    std::atomic<int>& count;
    explicit active_count(std::atomic<int>& c) : count(c) { ++count; }
    ~active_count() { --count; }
    active_count(const active_count&) = delete;
    active_count& operator=(const active_count&) = delete;
};

}  // namespace

boost::asio::awaitable<void> run_cloud_stream(http_client& client, const model_config& cfg,
                                              upstream_request request, const chat_request& chat,
                                              chunk_sink sink, const cloud_event_handler& on_event,
                                              std::atomic<int>* active) {
    constexpr std::chrono::milliseconds k_body_end_wait{50};
    std::optional<active_count> counted;
    if (active) counted.emplace(*active);
    std::unique_ptr<upstream_response> response = co_await open_stream(client, cfg, std::move(request), sink);
    if (!response) co_return;

    sse_parser parser;
    cloud_stream_state state;
    chunk_batch batch;  // the chunks of one read, handed over together
    std::string piece;
    bool stopped = false;  // on_event said so, after appending its error
    const sse_parser::event_handler take = [&](const sse_event& event) {
        if (!on_event(event, state, batch)) {
            stopped = true;
            return false;
        }
        return !state.ended;
    };
    while (!state.ended && !response->done()) {
        upstream_error error = co_await response->read_some(piece);
        if (error) {
            if (error.kind == upstream_failure::cancelled) co_return;
            batch.push_back(upstream_failure_chunk(error, cfg, state.deltas > 0));
            co_await emit_batch(sink, batch);
            co_return;
        }
        parser.feed(piece, take);
        if (!stopped && parser.overflowed()) {
            batch.push_back(stream_chunk::error(502, "the upstream sent an oversized event"));
            stopped = true;
        }
        if (stopped) {
            co_await emit_batch(sink, batch);
            co_return;
        }
        // The last piece's deltas go out with the usage and finish below, in one batch.
        if (state.ended || response->done()) break;
        bool emitted = co_await emit_batch(sink, batch);
        if (!emitted) co_return;
    }
    if (!state.ended && state.finish_reason.empty()) {
        batch.push_back(stream_chunk::error(502, "the upstream stream ended before it finished"));
        co_await emit_batch(sink, batch);
        co_return;
    }
    if (!response->done()) {
        // The upstream said [DONE]; the end of its body is normally in the same read or the next
        // one. Read it before the last chunks go to the caller, who ends the stream (cancelling
        // this coroutine) as soon as it has them: a cancelled read would close a reusable
        // connection. An upstream that holds the body open costs one short wait, then the socket.
        co_await response->finish_body(k_body_end_wait);
    }
    add_stream_end(state, chat, batch);
    co_await emit_batch(sink, batch);
}
#pragma GCC diagnostic pop

cloud_provider::cloud_provider(model_config cfg, std::string_view default_base_url)
    : cfg_(std::move(cfg)),
      endpoint_(make_cloud_endpoint(cfg_, default_base_url)),
      on_event_([this](const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
          return take_event(event, state, out);
      }) {}

provider_status cloud_provider::status() const {
    return {.available = endpoint_.unavailable.empty(),
            .detail = endpoint_.unavailable,
            .active = active_.load()};
}

namespace {

boost::asio::awaitable<void> emit_unavailable(chunk_sink sink, std::string message) {
    stream_chunk unavailable = stream_chunk::error(503, std::move(message));
    co_await emit_chunk(sink, std::move(unavailable));
}

}  // namespace

// Not a coroutine: the stream's one long-lived frame is run_cloud_stream's.
boost::asio::awaitable<void> cloud_provider::stream(const chat_request& request, chunk_sink sink) {
    if (!endpoint_.unavailable.empty())
        return emit_unavailable(std::move(sink),
                                "model " + cfg_.name + " is unavailable: " + endpoint_.unavailable);
    upstream_request upstream = build_request(request);
    return run_cloud_stream(*endpoint_.client, cfg_, std::move(upstream), request, std::move(sink), on_event_,
                            &active_);
}

}  // namespace sluice
