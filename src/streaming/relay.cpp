#include "streaming/relay.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/basic_channel.hpp>
#include <boost/asio/experimental/channel_traits.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <charconv>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>

#include "core/blocking.h"
#include "core/cancellation.h"
#include "core/metrics.h"
#include "routing/orchestrator.h"
#include "streaming/stream_log.h"

namespace sluice {

namespace net = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// What travels from the producer side to the writer: the chunks of one provider batch, a heartbeat
// due, the end, or the switch to the next candidate.
struct relay_item {
    enum class kind { chunks, ping, end, next_model };
    kind type = kind::chunks;
    chunk_batch chunks;
    std::size_t candidate = 0;  // next_model: the candidate that answers from here on
};

// The channel's buffer. Asio's default, a std::deque, allocates about 600 B as soon as it exists;
// this one holds at most k_channel_capacity items, and usually none (the writer is waiting when the
// producer sends, so the item is handed over), and allocates only when an item has to wait.
template <typename Element>
class short_queue {
  public:
    std::size_t size() const { return items_.size(); }
    void push_back(Element&& element) { items_.push_back(std::move(element)); }
    void push_back(const Element& element) { items_.push_back(element); }
    Element& front() { return items_.front(); }
    void pop_front() { items_.erase(items_.begin()); }
    void clear() { items_.clear(); }

  private:
    std::vector<Element> items_;
};

using relay_signature = void(boost::system::error_code, relay_item);

struct relay_channel_traits : net::experimental::channel_traits<relay_signature> {
    template <typename... Signatures>
    struct rebind {
        using other = relay_channel_traits;
    };
    template <typename Element>
    struct container {
        using type = short_queue<Element>;
    };
};

using relay_channel =
    net::experimental::basic_channel<net::any_io_executor, relay_channel_traits, relay_signature>;
using clock = std::chrono::steady_clock;

// A couple of batches (each at most one upstream read) of slack between the provider and the
// socket: enough to read the next piece while one is written, small enough that a slow client slows
// the provider almost at once.
constexpr std::size_t k_channel_capacity = 2;
// How long the closing error event may take to write when the deadline already passed.
constexpr auto k_final_write_timeout = std::chrono::seconds{5};
// The same when the server cuts the stream at the end of its shutdown grace (which gives the whole
// connection 2 s more before it stops the io threads).
constexpr auto k_shutdown_write_timeout = std::chrono::milliseconds{1000};

bool cancelled(const net::cancellation_state& state) {
    return state.cancelled() != net::cancellation_type::none;
}

// Every coroutine of the race below ends by returning, never by throwing, when the race is decided
// without it: a cancelled wait comes back as an error code (as_tuple) and the coroutine returns.
// Before a new wait each checks whether it was cancelled meanwhile, since Asio throws when an
// operation starts in a cancelled coroutine.

// GCC 12 destroys some temporaries inside a co_await expression twice, so everything non-trivial
// handed to an awaited call in this file is a named variable first.
net::awaitable<bool> send_item(relay_channel& channel, relay_item item) {
    const auto cancellation = co_await net::this_coro::cancellation_state;
    if (cancelled(cancellation)) co_return false;
    auto [ec] = co_await channel.async_send(boost::system::error_code{}, std::move(item),
                                            net::as_tuple(net::use_awaitable));
    co_return !ec;
}

bool is_local(const provider& model) {
    return model.config().provider == "llama";
}

// One candidate's stream as the producer sees it. Until its first delta nothing it says is final: an
// error may be held back (another candidate answers instead) and a usage chunk waits with it.
struct attempt_state {
    relay_channel& channel;
    bool may_fall_back = false;
    bool delta_seen = false;
    // On the heap: rarely used, and the state lives in produce's frame for the whole stream.
    std::unique_ptr<stream_chunk> held_usage;
    std::unique_ptr<stream_chunk> held_error;
};

// Moves what may go out of `batch` into one channel item and sends it.
net::awaitable<void> forward_batch(attempt_state& attempt, chunk_batch& batch) {
    relay_item item{.type = relay_item::kind::chunks};
    item.chunks.reserve(batch.size() + 1);
    for (auto& chunk : batch) {
        if (attempt.held_error) break;  // a provider says nothing after its error
        if (!attempt.delta_seen) {
            if (chunk.type == stream_chunk::kind::error && attempt.may_fall_back) {
                attempt.held_error = std::make_unique<stream_chunk>(std::move(chunk));
                continue;
            }
            if (chunk.type == stream_chunk::kind::usage) {
                attempt.held_usage = std::make_unique<stream_chunk>(std::move(chunk));
                continue;
            }
            if (chunk.is_content()) attempt.delta_seen = true;
            if (attempt.held_usage) {
                item.chunks.push_back(std::move(*attempt.held_usage));
                attempt.held_usage.reset();
            }
        }
        item.chunks.push_back(std::move(chunk));
    }
    if (item.chunks.empty()) co_return;
    // A failed send means the race is over; the provider sees the cancellation itself.
    co_await send_item(attempt.channel, std::move(item));
}

net::awaitable<bool> send_chunk(relay_channel& channel, stream_chunk chunk) {
    relay_item item{.type = relay_item::kind::chunks};
    item.chunks.push_back(std::move(chunk));
    const bool sent = co_await send_item(channel, std::move(item));
    co_return sent;
}

// Starts one candidate's stream. Not a coroutine: the sink goes straight into the provider's frame
// instead of living in produce's for the whole stream. The provider reads the candidate's request in
// place (the candidates outlive the race), so a cloud stream copies no conversation.
net::awaitable<void> stream_attempt(const relay_candidate& candidate, attempt_state& attempt) {
    chunk_sink sink = [&attempt](chunk_batch& batch) { return forward_batch(attempt, batch); };
    return candidate.model->stream(candidate.request, std::move(sink));
}

enum class attempt_end { answered, fall_back, race_over };

// What follows a candidate's stream: its error or usage held back goes out, or the next candidate is
// announced. A coroutine of its own, so that none of this is in produce's frame during the stream.
net::awaitable<attempt_end> end_attempt(std::vector<relay_candidate>& candidates, std::size_t i,
                                        attempt_state& attempt, const std::string& failure,
                                        orchestrator* routing) {
    provider& model = *candidates[i].model;
    if (!failure.empty()) {
        spdlog::error("provider {} failed: {}", model.config().name, failure);
        chunk_batch error{stream_chunk::error(502, "the model failed")};
        co_await forward_batch(attempt, error);
    }
    if (!attempt.held_error) {
        if (attempt.held_usage) {
            const bool sent = co_await send_chunk(attempt.channel, std::move(*attempt.held_usage));
            if (!sent) co_return attempt_end::race_over;
        }
        co_return attempt_end::answered;
    }
    const auto kind = failure_kind_from_code(attempt.held_error->code, is_local(model));
    if (kind == failure_kind::bad_request || !attempt.held_error->model_fault) {
        // The request was at fault, not the model: another model would be asked the same thing.
        const bool sent = co_await send_chunk(attempt.channel, std::move(*attempt.held_error));
        co_return sent ? attempt_end::answered : attempt_end::race_over;
    }
    spdlog::warn("model {} failed before its first token ({} {}: {}); {} answers instead",
                 model.config().name, to_string(kind), attempt.held_error->code, attempt.held_error->message,
                 candidates[i + 1].model->config().name);
    if (routing && attempt.held_error->model_fault) routing->report_failure(model.config().name, kind);
    candidates[i + 1].identity.route_reason = "fallback:" + std::string(to_string(kind));
    relay_item next{.type = relay_item::kind::next_model, .candidate = i + 1};
    const bool sent = co_await send_item(attempt.channel, std::move(next));
    co_return sent ? attempt_end::fall_back : attempt_end::race_over;
}

// Marks the end, then waits to be cancelled.
net::awaitable<void> end_production(relay_channel& channel) {
    relay_item end{.type = relay_item::kind::end};
    const bool sent = co_await send_item(channel, std::move(end));
    if (!sent) co_return;
    // The writer may take the end and finish the race before this resumes: awaiting anything in a
    // cancelled coroutine throws (an exception per request, 4% of the CPU at 5,000 requests/s).
    const auto after_end = co_await net::this_coro::cancellation_state;
    if (cancelled(after_end)) co_return;
    co_await wait_until_cancelled();
}

// Runs the candidates in order until one gets past its first delta, or ends without an error, or is
// the last; then marks the end and waits to be cancelled, so that it never wins the race against the
// writer (which must drain the channel first). Its frame lives for the whole stream: the work before
// and after each candidate's stream is in the functions above.
net::awaitable<void> produce(std::vector<relay_candidate>& candidates, relay_channel& channel,
                             orchestrator* routing) {
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        attempt_state attempt{.channel = channel, .may_fall_back = i + 1 < candidates.size()};
        std::string failure;
        try {
            co_await stream_attempt(candidates[i], attempt);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (cancelled(cancellation)) co_return;
        const auto end = co_await end_attempt(candidates, i, attempt, failure, routing);
        if (end == attempt_end::race_over) co_return;
        if (end == attempt_end::answered) break;
    }
    co_await end_production(channel);
}

// One timer for both: queues a heartbeat whenever nothing was written for `heartbeat`, and ends the
// race when `deadline` passes (the only way it returns uncancelled, so winning means timing out). The writer
// stays the only one touching the socket; a full channel means data is flowing, so no ping is needed then.
net::awaitable<void> watch(relay_channel& channel, const clock::time_point& last_write,
                           clock::duration heartbeat, clock::time_point deadline) {
    net::steady_timer timer{co_await net::this_coro::executor};
    clock::time_point last_ping{};
    for (;;) {
        timer.expires_at(std::min(std::max(last_write, last_ping) + heartbeat, deadline));
        auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        const auto state = co_await net::this_coro::cancellation_state;
        if (ec || cancelled(state)) co_return;
        const auto now = clock::now();
        if (now >= deadline) co_return;
        if (now - std::max(last_write, last_ping) < heartbeat) continue;
        channel.try_send(boost::system::error_code{}, relay_item{.type = relay_item::kind::ping});
        last_ping = now;
    }
}

net::awaitable<void> expire_after(std::chrono::milliseconds timeout) {
    net::steady_timer timer{co_await net::this_coro::executor, timeout};
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
}

void estimate_usage(stream_outcome& out, const provider& model, const chat_request& request) {
    if (out.usage_reported) return;
    int prompt = 0;
    for (const auto& message : request.messages) prompt += model.count_tokens(message.content);
    out.prompt_tokens = prompt;
    int completion = out.text.empty() ? 0 : model.count_tokens(out.text);
    if (!out.reasoning.empty()) completion += model.count_tokens(out.reasoning);
    for (const auto& call : out.tool_calls) completion += model.count_tokens(call.name + call.arguments);
    out.completion_tokens = completion;
}

http_status to_status(int code) {
    return static_cast<http_status>(code >= 400 && code <= 599 ? code : 502);
}

struct relay_state {
    exchange* ex;  // null: the events go to `log` (a resumable stream, which outlives its clients)
    std::vector<relay_candidate>& candidates;
    const relay_candidate* current;  // the one that answers now; a fallback moves it on
    stream_outcome& out;
    outcome_hook& on_final;  // relay_stream's parameter
    wire_format& format;     // how events and answers are written: the API's own bytes
    clock::time_point started;
    stream_log* log = nullptr;         // set when ex is null
    std::chrono::milliseconds keep{};  // with a log: how long the stream runs on with no reader
    sse_writer* sse = nullptr;         // null (and no log): collect for one JSON answer
    bool final_reported = false;
    bool responded_whole = false;  // an early error went out as a whole response, not on `sse`
    clock::time_point last_write = clock::now();
    metrics::stream_timer timer{metrics::get(), started};
    orchestrator* routing = nullptr;
    sse_batch events;                  // the SSE events of one write, reused
    std::size_t max_answer_bytes = 0;  // relay_options::max_answer_bytes
    boost::asio::thread_pool* compute_pool = nullptr;
    std::size_t answer_bytes = 0;  // of text, reasoning and tool calls so far
    int completion_estimate = 0;   // tokens, for the max_tokens cap (cloud models)
    bool capped = false;           // the answer reached a cap: it ends with "length"

    provider& model() const { return *current->model; }
    const stream_identity& id() const { return current->identity; }
    // Events are written (to the client, or to the log); otherwise the answer is collected.
    bool streams() const { return sse != nullptr || log != nullptr; }

    // Sends the head; it names the model that answers (X-Sluice-Route).
    void open_sse() {
        auto head = ex->sse_head();
        head.set("X-Sluice-Route", route_header_value(id()));
        sse = &ex->open_sse(std::move(head));
        sse->set_done_marker(format.done_marker());
    }

    // The writer's side of a fallback.
    void switch_model(std::size_t index) {
        current = &candidates[index];
        // Nothing written yet (no heartbeat either): the header can still name the model that answers.
        if (sse && !sse->started()) open_sse();
    }

    void report_failure(const stream_chunk& error) {
        if (routing && error.model_fault)
            routing->report_failure(model().config().name,
                                    failure_kind_from_code(error.code, is_local(model())));
    }

    // Records the outcome (once). Returns the error to end the stream with instead of its final
    // event when it could not be recorded (see outcome_hook).
    net::awaitable<std::optional<api_error>> report_final() {
        if (final_reported) co_return std::nullopt;
        final_reported = true;
        out.model = model().config().name;
        if (!out.usage_reported && compute_pool && model().counting_is_costly()) {
            // A tokenizer over the whole prompt: not on the io thread.
            co_await run_blocking(*compute_pool, [this] { estimate_usage(out, model(), current->request); });
        } else {
            estimate_usage(out, model(), current->request);
        }
        metrics::get().count_tokens(model().config().name, model().config().role, out.prompt_tokens,
                                    out.completion_tokens);
        if (!out.tool_calls.empty())
            metrics::get()
                .tool_calls(model().config().name)
                .inc(static_cast<std::uint64_t>(out.tool_calls.size()));
        std::optional<api_error> unsaved;
        try {
            unsaved = co_await on_final(out);
        } catch (const std::exception& e) {
            spdlog::warn("session {}: recording the outcome failed: {}", id().session_id, e.what());
            unsaved = api_error{.code = 500, .message = "the answer was not saved"};
        }
        co_return unsaved;
    }

    // The error goes out as a real status when nothing was sent yet, else as in-band events.
    net::awaitable<void> write_error(const api_error& error) {
        if (!log && (!sse || !sse->started())) {
            api_error shown = error;
            shown.code = static_cast<int>(to_status(error.code));
            // A JSON answer that failed part-way says what it had (it was stored).
            auto res = out.has_content()
                           ? format.partial_error_response(ex->request(), shown, id(), out)
                           : format.error_response(ex->request(), shown, id().session_id, &id());
            res.set("X-Sluice-Route", route_header_value(id()));
            responded_whole = true;
            co_await ex->respond(std::move(res));
            co_return;
        }
        events.clear();
        format.error_events(events, error, id());
        if (log) {
            append_to_log(events, true);
            co_return;
        }
        auto ec = co_await sse->send(events, true);
        if (ec) throw boost::system::system_error(ec, "sse write");
    }

    // One socket write of `events` (with [DONE] and the end of the response when `last`); false when
    // it failed, which means the client is gone unless we were cancelled.
    net::awaitable<bool> write(const sse_batch& batch, bool last) {
        out.first_byte_sent = true;
        if (log) {
            append_to_log(batch, last);
            last_write = clock::now();
            co_return true;
        }
        auto ec = co_await sse->send(batch, last);
        if (ec) {
            co_await note_failed_write();
            co_return false;
        }
        last_write = clock::now();
        co_return true;
    }

    // A resumable stream's events: the log never refuses them (it stops being resumable instead).
    void append_to_log(const sse_batch& batch, bool last) {
        log->append(batch.wire_bytes(), last && format.done_marker());
        if (last) log->finish();
    }

    // Writes one batch: its deltas as one write; a finish or an error ends the stream (after the
    // deltas before it went out), and so does a cap. True when the stream is over.
    net::awaitable<bool> take_batch(chunk_batch& chunks) {
        bool deltas = false;  // since the last write
        stream_chunk* const end = collect(chunks, deltas);
        // Content never waits for the bookkeeping of the end.
        if (deltas) {
            if (streams()) {
                const bool written = co_await write(events, false);
                if (!written) co_return true;
            }
            timer.chunk_end();
        }
        if (capped) {
            // The upstream is cancelled when this ends the race.
            co_await end_with("length");
            co_return true;
        }
        if (!end) co_return false;
        if (end->type == stream_chunk::kind::finish) {
            co_await end_with(end->finish_reason);
        } else {
            co_await end_with_error(*end);
        }
        co_return true;
    }

    // Adds the events of the batch's deltas to `events` and takes its usage, up to its first finish
    // or error, which it returns (null: none). Not a coroutine: none of this is kept in a frame
    // while the write waits.
    stream_chunk* collect(chunk_batch& chunks, bool& deltas) {
        for (auto& chunk : chunks) {
            switch (chunk.type) {
                case stream_chunk::kind::delta:
                case stream_chunk::kind::tool_call_start:
                case stream_chunk::kind::tool_call_delta:
                case stream_chunk::kind::reasoning: {
                    if (!chunk.is_content()) break;
                    if (!deltas) timer.chunk_begin();
                    deltas = true;
                    capped = take_within_caps(chunk);
                    out.take_content(chunk);
                    if (streams()) format.content(events, id(), chunk, out);
                    if (capped) return nullptr;  // what follows the cap is dropped
                    break;
                }
                case stream_chunk::kind::usage:
                    out.prompt_tokens = chunk.prompt_tokens;
                    out.completion_tokens = chunk.completion_tokens;
                    out.cached_tokens = chunk.cached_tokens;
                    out.cache_write_tokens = chunk.cache_write_tokens;
                    out.reasoning_tokens = chunk.reasoning_tokens;
                    out.usage_reported = true;
                    break;
                case stream_chunk::kind::finish:
                case stream_chunk::kind::error:
                    return &chunk;
            }
        }
        return nullptr;
    }

    // Counts a content chunk against the answer's caps (relay_options::max_answer_bytes), cutting
    // the text that would cross the byte cap (at a UTF-8 boundary); true when the answer is at a cap.
    bool take_within_caps(stream_chunk& chunk) {
        if (max_answer_bytes == 0) return false;  // caps off: the upstream is trusted
        bool at_cap = false;
        if (answer_bytes + chunk.text.size() + chunk.name.size() >= max_answer_bytes) {
            const std::size_t room = max_answer_bytes > answer_bytes + chunk.name.size()
                                         ? max_answer_bytes - answer_bytes - chunk.name.size()
                                         : 0;
            std::size_t keep = std::min(room, chunk.text.size());
            while (keep > 0 && keep < chunk.text.size() &&
                   (static_cast<unsigned char>(chunk.text[keep]) & 0xC0) == 0x80)
                --keep;
            chunk.text.resize(keep);
            at_cap = true;
        }
        const std::size_t bytes = chunk.text.size() + chunk.name.size();
        answer_bytes += bytes;
        // A local model counts its tokens exactly and stops at max_tokens itself.
        const int max_tokens = current->request.params.max_tokens;
        if (!is_local(model()) && max_tokens > 0) {
            completion_estimate += static_cast<int>(std::max<std::size_t>(1, bytes / 4));
            if (completion_estimate > max_tokens) at_cap = true;
        }
        return at_cap;
    }

    net::awaitable<void> end_with(const std::string& finish_reason) {
        timer.model_end();
        out.finish_reason = finish_reason.empty() ? "stop" : finish_reason;
        if (routing) routing->report_success(model().config().name);
        auto unsaved = co_await report_final();
        if (unsaved) {
            // The answer went out but is not stored: an error, not the final event of a success.
            out.error = std::move(unsaved);
            co_await send_error(*out.error);
            co_return;
        }
        if (streams()) {
            events.clear();
            format.final(events, id(), out);
            co_await write(events, true);
            co_return;
        }
        http_response res{http_status::ok, ex->request().version()};
        res.set(boost::beast::http::field::content_type, "application/json");
        res.set("X-Sluice-Route", route_header_value(id()));
        res.body() = format.whole(id(), out);
        bool failed = false;
        try {
            co_await ex->respond(std::move(res));
        } catch (const boost::system::system_error&) {
            failed = true;
        }
        if (failed) co_await note_failed_write();
    }

    // A write failed while nobody cancelled us: the client is gone.
    net::awaitable<void> note_failed_write() {
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (!cancelled(cancellation)) out.client_gone = true;
    }

    net::awaitable<void> end_with_error(const stream_chunk& chunk) {
        timer.model_end();
        report_failure(chunk);
        out.finish_reason = "error";
        out.error =
            api_error{.code = chunk.code, .message = chunk.message, .retry_after_s = chunk.retry_after_s};
        co_await report_final();
        co_await send_error(*out.error);
    }

    // write_error, for a writer that ends the stream: a failed write means the client left.
    net::awaitable<void> send_error(const api_error& error) {
        bool failed = false;
        try {
            co_await write_error(error);
        } catch (const boost::system::system_error&) {
            failed = true;
        }
        if (failed) co_await note_failed_write();
    }

    // Takes one item at a time and writes it before taking the next (backpressure).
    net::awaitable<void> consume(relay_channel& channel) {
        timer.model_begin();
        for (;;) {
            const auto cancellation = co_await net::this_coro::cancellation_state;
            if (cancelled(cancellation)) co_return;
            // The next item may be seconds away (a slow model): the last batch's bytes (about 1 KiB)
            // are not kept meanwhile, at the cost of one allocation per write.
            events.release();
            auto [ec, item] = co_await channel.async_receive(net::as_tuple(net::use_awaitable));
            if (ec) co_return;  // cancelled: the race is decided elsewhere
            if (item.type == relay_item::kind::ping) {
                if (sse) {
                    format.ping(events);  // `events` is empty between items
                    const bool written = co_await write(events, false);
                    if (!written) co_return;
                }
                continue;
            }
            if (item.type == relay_item::kind::next_model) {
                switch_model(item.candidate);
                continue;
            }
            // The provider ended without saying why: what it sent stands as the answer.
            if (item.type == relay_item::kind::end) item.chunks.push_back(stream_chunk::finish("stop"));
            const bool over = co_await take_batch(item.chunks);
            if (over) co_return;
        }
    }
};

}  // namespace

std::string route_header_value(const stream_identity& identity) {
    std::array<char, 32> score{};
    auto [end, ec] = std::to_chars(score.data(), score.data() + score.size(), identity.route_score);
    if (ec != std::errc{}) end = score.data();
    return "role=" + identity.model_used + "; model=" + identity.model + "; reason=" + identity.route_reason +
           "; score=" + std::string(score.data(), end);
}

namespace {

// The client leaving; for a resumable stream, the last reader leaving and not coming back in time.
net::awaitable<void> leave_watch(relay_state& state) {
    if (state.log) return state.log->wait_until_abandoned(state.keep);
    return state.ex->wait_for_disconnect();
}

// The four coroutines of the race, started together when awaited. Not a coroutine: the group of
// operations moves into the returned awaitable, so it takes no room in relay_stream's frame.
auto start_race(relay_state& state, relay_channel& channel, clock::duration heartbeat,
                clock::time_point deadline) {
    const auto executor = channel.get_executor();
    auto race = net::experimental::make_parallel_group(
        net::co_spawn(executor, state.consume(channel), net::deferred),
        net::co_spawn(executor, produce(state.candidates, channel, state.routing), net::deferred),
        net::co_spawn(executor, watch(channel, state.last_write, heartbeat, deadline), net::deferred),
        net::co_spawn(executor, leave_watch(state), net::deferred));
    return race.async_wait(net::experimental::wait_for_one(), net::use_awaitable);
}

// Which of the race ended it (0 consume, 1 produce, 2 watch, 3 the disconnect watch); rethrows what
// that one threw. What a loser threw while being cancelled does not matter.
template <typename RaceResult>
std::size_t race_winner(const RaceResult& result, std::string_view session_id) {
    const auto& [order, consume_error, produce_error, watch_error, disconnect_error] = result;
    const std::array<std::exception_ptr, 4> errors{consume_error, produce_error, watch_error,
                                                   disconnect_error};
    if (errors[order[0]]) std::rethrow_exception(errors[order[0]]);
    for (const auto& error : errors) {
        if (!error) continue;
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            spdlog::debug("session {}: a cancelled relay branch threw: {}", session_id, e.what());
        }
    }
    return order[0];
}

// The deadline passed before the answer was complete: the model is blamed, and the client hears it
// when it still can.
net::awaitable<void> end_timed_out(relay_state& state, const relay_options& options) {
    if (state.routing) state.routing->report_failure(state.model().config().name, failure_kind::timeout);
    state.out.finish_reason = "error";
    state.out.error = api_error{.code = 504,
                                .message = "request timed out after " +
                                           std::to_string(options.request_timeout.count() / 1000) + " s"};
    co_await state.report_final();
    if (!(state.sse && state.sse->broken())) {
        try {
            co_await (state.write_error(*state.out.error) || expire_after(k_final_write_timeout));
        } catch (const std::exception&) {
        }
    }
}

// Cancelled from outside, which only the server does, when its shutdown grace is over: the stream
// still ends as a stream should. The partial answer is stored like a cancelled one (usage included),
// and the client hears why, with the end marker and the end of the body, when it still can.
net::awaitable<void> end_shut_down(relay_state& state) {
    if (state.ex) state.ex->close_after();
    if (state.final_reported) co_return;  // the end was already on its way
    state.out.finish_reason = "cancelled";
    state.out.error = api_error{.code = 503, .message = "server shutting down", .retry_after_s = 1};
    co_await state.report_final();
    if (state.sse && (state.sse->broken() || state.sse->finished())) co_return;
    if (state.log && state.log->finished()) co_return;
    try {
        co_await (state.write_error(*state.out.error) || expire_after(k_shutdown_write_timeout));
    } catch (const std::exception&) {
    }
}

}  // namespace

namespace {

// Its frame lives for the whole stream: whatever is needed only before or after the race is in the
// functions above, and the state refers to the candidates rather than copying one. Writes to the
// client of `ex`, or (ex null) to `log`.
net::awaitable<void> run_relay(exchange* ex, stream_log* log, std::chrono::milliseconds keep,
                               clock::time_point started, std::vector<relay_candidate> candidates,
                               const relay_options& options, stream_outcome& outcome, outcome_hook on_final,
                               orchestrator* routing) {
    if (candidates.empty()) throw std::invalid_argument("relay_stream: no candidate");
    if (!options.format) throw std::invalid_argument("relay_stream: no wire format");
    relay_state state{ex,  candidates, &candidates.front(), outcome, on_final, *options.format, started,
                      log, keep};
    state.routing = routing;
    state.max_answer_bytes = options.max_answer_bytes;
    state.compute_pool = options.compute_pool;
    metrics::get().route_decisions(state.model().config().role, state.id().route_reason).inc();
    std::optional<metrics::gauge_guard> live_stream;
    if (options.streaming && ex) live_stream.emplace(metrics::get().active_streams());
    if (options.streaming && ex) state.open_sse();
    const auto executor = co_await net::this_coro::executor;
    relay_channel channel{executor, k_channel_capacity};
    if (ex) ex->stream().expires_never();  // our own deadlines apply from here

    // The heartbeat only matters for a stream; a JSON answer cannot carry comments.
    const auto heartbeat = options.streaming
                               ? std::chrono::duration_cast<clock::duration>(options.heartbeat_interval)
                               : clock::duration::max() / 4;
    // The first of the four to finish decides; the others are cancelled and return (none throws).
    auto race = start_race(state, channel, heartbeat, clock::now() + options.request_timeout);
    const auto result = co_await std::move(race);
    const auto winner = race_winner(result, state.id().session_id);
    // Cancelled from outside: the server shutting down. Awaiting anything in a cancelled coroutine
    // throws, so the cancellation is cleared first (a second one, the server's last resort, still
    // reaches what follows).
    const auto cancellation = co_await net::this_coro::cancellation_state;
    if (cancelled(cancellation)) {
        co_await net::this_coro::reset_cancellation_state();
        co_await end_shut_down(state);
        co_return;
    }
    if (winner == 3) outcome.client_gone = true;
    if (winner == 2) outcome.timed_out = true;
    if (outcome.client_gone) {
        if (!state.final_reported) outcome.finish_reason = "cancelled";
        if (ex) ex->close_after();
    } else if (outcome.timed_out && !state.final_reported) {
        co_await end_timed_out(state, options);
    }
    co_await state.report_final();
    if (ex && state.sse && !state.sse->finished() && !state.responded_whole) ex->close_after();
}

}  // namespace

// Not coroutines: the arguments go straight into run_relay's frame.
net::awaitable<void> relay_stream(exchange& ex, std::vector<relay_candidate> candidates,
                                  const relay_options& options, stream_outcome& outcome,
                                  outcome_hook on_final, orchestrator* routing) {
    return run_relay(&ex, nullptr, {}, ex.started_at(), std::move(candidates), options, outcome,
                     std::move(on_final), routing);
}

net::awaitable<void> relay_to_log(stream_log& log, std::chrono::milliseconds keep,
                                  std::chrono::steady_clock::time_point started,
                                  std::vector<relay_candidate> candidates, const relay_options& options,
                                  stream_outcome& outcome, outcome_hook on_final, orchestrator* routing) {
    return run_relay(nullptr, &log, keep, started, std::move(candidates), options, outcome,
                     std::move(on_final), routing);
}

}  // namespace sluice
