#include "turn/admission.h"

// GCC 12 misreads Asio's awaitable frame allocator after inlining a coroutine here (a false
// positive: frames are allocated and freed by the same awaitable_frame_base operators).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <exception>
#include <utility>

#include "core/blocking.h"

namespace sluice {

namespace net = boost::asio;

namespace {

// A refused stream slot frees when some stream of the key ends, which nobody can predict; one
// second is what a client should wait before asking again.
constexpr int k_stream_retry_after_s = 1;

std::int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

api_error store_down() {
    return api_error{.code = 503, .message = "the rate-limit store is unavailable; try again later"};
}

struct admission_result {
    bool store_failed = false;
    bool stream_refused = false;
    bool holds_stream = false;
    rate_decision rate;
};

// Both checks in one trip to the store pool. The stream slot is taken first so that a request the
// slot refuses is not counted against requests per minute; a request the rate refuses gives it back.
admission_result check_limits(store& db, const std::string& key_id, const limits_config& limits) {
    admission_result result;
    try {
        if (limits.max_concurrent_streams > 0) {
            if (!db.acquire_stream(key_id, limits.max_concurrent_streams)) {
                result.stream_refused = true;
                return result;
            }
            result.holds_stream = true;
        }
        if (limits.requests_per_minute > 0 || limits.tokens_per_minute > 0) {
            result.rate = db.admit_request(key_id, limits, wall_clock_ms());
        }
        if (!result.rate.allowed && result.holds_stream) {
            db.release_stream(key_id);
            result.holds_stream = false;
        }
    } catch (const std::exception& e) {
        spdlog::warn("limits for key {}: store failed: {}", key_id, e.what());
        if (result.holds_stream) db.release_stream(key_id);
        result.holds_stream = false;
        result.store_failed = true;
    }
    return result;
}

net::awaitable<std::optional<api_error>> settle_then(stream_slot& slot, const outcome_hook& inner,
                                                     const stream_outcome& outcome) {
    co_await slot.settle(outcome);
    if (!inner) co_return std::nullopt;
    auto unsaved = co_await inner(outcome);
    co_return unsaved;
}

}  // namespace

limits_config effective_limits(const config& cfg, const authenticated_key& key) {
    return key.limits.value_or(cfg.limits);
}

stream_slot::stream_slot(app_context& app, std::string key_id, bool holds_stream, bool count_tokens)
    : app_(&app), key_id_(std::move(key_id)), holds_stream_(holds_stream), count_tokens_(count_tokens) {}

stream_slot::stream_slot(stream_slot&& other) noexcept
    : app_(other.app_),
      key_id_(std::move(other.key_id_)),
      holds_stream_(std::exchange(other.holds_stream_, false)),
      count_tokens_(other.count_tokens_),
      settled_(other.settled_) {}

stream_slot& stream_slot::operator=(stream_slot&& other) noexcept {
    if (this != &other) {
        release_later();
        app_ = other.app_;
        key_id_ = std::move(other.key_id_);
        holds_stream_ = std::exchange(other.holds_stream_, false);
        count_tokens_ = other.count_tokens_;
        settled_ = other.settled_;
    }
    return *this;
}

stream_slot::~stream_slot() {
    release_later();
}

// The destructor cannot wait: the release goes to the store pool, which the server joins before it
// exits, so it still happens on shutdown.
void stream_slot::release_later() noexcept {
    if (!holds_stream_ || !app_) return;
    holds_stream_ = false;
    try {
        net::post(app_->store_pool, [&db = app_->db, key_id = key_id_] { db.release_stream(key_id); });
    } catch (const std::exception& e) {
        spdlog::error("key {}: could not schedule a stream slot release: {}", key_id_, e.what());
    }
}

net::awaitable<void> stream_slot::settle(const stream_outcome& outcome) {
    if (settled_ || !app_ || key_id_.empty()) co_return;
    settled_ = true;
    const int tokens = count_tokens_ ? outcome.completion_tokens : 0;
    const bool release = std::exchange(holds_stream_, false);
    if (tokens <= 0 && !release) co_return;
    std::string failure;
    try {
        co_await run_blocking(app_->store_pool, [this, tokens, release] {
            if (release) app_->db.release_stream(key_id_);
            if (tokens > 0) app_->db.add_tokens(key_id_, tokens, wall_clock_ms());
        });
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (!failure.empty()) spdlog::warn("key {}: counting {} tokens failed: {}", key_id_, tokens, failure);
}

outcome_hook stream_slot::wrap(outcome_hook inner) {
    return [this, inner = std::move(inner)](const stream_outcome& outcome) {
        return settle_then(*this, inner, outcome);
    };
}

net::awaitable<std::variant<stream_slot, api_error>> admit(app_context& app, const exchange& ex) {
    if (!ex.key()) co_return stream_slot{};
    const std::string key_id = ex.key()->id;
    const limits_config limits = effective_limits(app.cfg, *ex.key());
    if (limits.max_concurrent_streams <= 0 && limits.requests_per_minute <= 0 &&
        limits.tokens_per_minute <= 0) {
        co_return stream_slot{app, key_id, false, false};
    }
    const admission_result result = co_await run_blocking(
        app.store_pool, [&app, &key_id, &limits] { return check_limits(app.db, key_id, limits); });
    if (result.store_failed) co_return store_down();
    if (result.stream_refused) {
        co_return api_error{.code = 429,
                            .message = "max_concurrent_streams limit reached (" +
                                       std::to_string(limits.max_concurrent_streams) + " streams)",
                            .retry_after_s = k_stream_retry_after_s};
    }
    if (!result.rate.allowed) {
        co_return api_error{
            .code = 429, .message = result.rate.reason, .retry_after_s = result.rate.retry_after_s};
    }
    co_return stream_slot{app, key_id, result.holds_stream, limits.tokens_per_minute > 0};
}

}  // namespace sluice
