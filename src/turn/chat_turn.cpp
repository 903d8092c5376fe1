#include "turn/chat_turn.h"

// GCC 12 misreads Asio's awaitable frame allocator after inlining a coroutine here (a false
// positive: frames are allocated and freed by the same awaitable_frame_base operators).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <memory>

#include "core/blocking.h"
#include "core/ids.h"
#include "core/metrics.h"
#include "streaming/log_reader.h"
#include "streaming/relay.h"
#include "streaming/shared_log.h"
#include "streaming/stream_log.h"
#include "turn/admission.h"
#include "turn/conversation.h"
#include "turn/session_locks.h"
#include "turn/turn_writer.h"
#include "turn/usage_ledger.h"

namespace sluice {

namespace net = boost::asio;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct turn_record {
    std::string key_id;
    std::string session_id;  // empty: nothing is stored, only the usage counted
    std::vector<chat_message> new_messages;
    std::string model;
    std::function<net::awaitable<void>(const stream_outcome&)> on_outcome;  // chat_turn::on_outcome
};

// Appends a turn's messages to its session: through the turn writer (group commit) when there is
// one, else on the store pool by itself. Throws what append_messages throws.
net::awaitable<void> store_messages(app_context& app, const turn_record& turn,
                                    std::vector<stored_message>& messages) {
    if (!app.turns) {
        auto direct = run_blocking(app.store_pool, [&app, &turn, &messages] {
            app.db.append_messages(turn.session_id, turn.key_id, messages);
        });
        co_await std::move(direct);
        co_return;
    }
    session_append entry{
        .session_id = turn.session_id, .key_id = turn.key_id, .messages = std::move(messages)};
    auto written = app.turns->append(entry);
    co_await std::move(written);
    if (entry.error) std::rethrow_exception(entry.error);
}

// Stores the new turn and the answer (whatever ended it), and counts the usage. Returns the error
// the stream must end with when the answer could not be stored (the client was not told yet).
net::awaitable<std::optional<api_error>> persist_turn(app_context& app, turn_record turn,
                                                      const stream_outcome& out) {
    const bool answered = !(out.error && !out.has_content() && !out.client_gone);
    const auto now = now_ms();
    if (!out.model.empty()) turn.model = out.model;  // a fallback model answered
    std::vector<stored_message> messages;
    if (answered && !turn.session_id.empty()) {
        for (const auto& message : turn.new_messages) {
            if (message.role == "system") continue;  // a request's system prompt is not the session's
            messages.push_back({.role = message.role,
                                .content = message.content,
                                .parts = message.parts,
                                .created_ms = now});
        }
        messages.push_back({.role = "assistant",
                            .content = out.text,
                            .parts = out.answer_parts(),
                            .model = turn.model,
                            .prompt_tokens = out.prompt_tokens,
                            .completion_tokens = out.completion_tokens,
                            .finish_reason = out.finish_reason,
                            .created_ms = now});
    }
    std::optional<api_error> unsaved;
    if (!messages.empty()) {
        try {
            auto stored = store_messages(app, turn, messages);
            co_await std::move(stored);
        } catch (const session_conflict&) {
            // Another key made this session meanwhile: as for any session the key cannot see.
            unsaved = api_error{.code = 404, .message = "the answer was not saved: session not found"};
        } catch (const std::exception& e) {
            spdlog::warn("session {}: storing the turn failed: {}", turn.session_id, e.what());
            unsaved = api_error{.code = 503,
                                .message = "the answer was not saved: the session store is unavailable"};
        }
    }
    // The model was used even when the append failed; a turn that was not stored is an error. The
    // ledger batches the counts off the request path (and keeps them while the store is down).
    usage_delta usage{.key_id = turn.key_id,
                      .model = turn.model,
                      .requests = 1,
                      .prompt_tokens = out.prompt_tokens,
                      .completion_tokens = out.completion_tokens,
                      .cancelled = out.finish_reason == "cancelled" ? 1 : 0,
                      .errors = out.error || unsaved ? 1 : 0};
    app.usage->add(usage);
    if (turn.on_outcome && !unsaved) {
        auto recorded = turn.on_outcome(out);
        co_await std::move(recorded);
    }
    co_return unsaved;
}

// What a turn holds while its stream runs. It lives on the heap, and only its pointer in the frame
// of the coroutine that waits for the whole stream: GCC 12 gives every local and temporary that
// lives across a co_await a slot of its own in the frame, so the admission, session and routing
// work is done in prepare_turn, whose frame is gone before the stream starts.
struct turn_in_flight {
    explicit turn_in_flight(std::unique_ptr<wire_format> wire) : format(std::move(wire)) {}

    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::unique_ptr<wire_format> format;
    std::string session_id;
    std::string key_id;
    stream_slot slot;  // must not move once wrap() was called: the turn never moves
    std::optional<session_locks::guard> turn_lock;
    std::vector<relay_candidate> candidates;
    relay_options options;
    outcome_hook persist;
    stream_outcome outcome;
    // chat_turn's resumable fields.
    bool resumable = false;
    bool background = false;
    std::string stream_id;
    std::function<http_response()> background_reply;
};

// Admission, the session lock and history, routing: the turn ready to stream, or null when an
// error response went out instead.
net::awaitable<std::unique_ptr<turn_in_flight>> prepare_turn(app_context& app, exchange& ex, chat_turn turn,
                                                             std::unique_ptr<wire_format> format) {
    auto flight = std::make_unique<turn_in_flight>(std::move(format));
    const auto& request = ex.request();
    const std::string& session_id = flight->session_id = std::move(turn.session_id);
    auto fail = [&](const api_error& error) {
        return flight->format->error_response(request, error, session_id, nullptr);
    };

    // Per-key limits (429) before any model or session work; the slot lives as long as the stream.
    auto admitted = co_await admit(app, ex);
    if (auto* error = std::get_if<api_error>(&admitted)) {
        auto res = fail(*error);
        co_await ex.respond(std::move(res));
        co_return nullptr;
    }
    flight->slot = std::move(std::get<stream_slot>(admitted));
    const std::string& key_id = flight->key_id = ex.key() ? ex.key()->id : std::string{};

    // One turn at a time per session (across processes with a Redis store; see session_locks.h):
    // held from loading the history until the answer is stored.
    if (app.sessions && turn.lock_session && !session_id.empty()) {
        const auto wait = std::chrono::milliseconds{app.cfg.routing.session_wait_ms};
        std::optional<api_error> lock_error;
        try {
            flight->turn_lock = co_await app.sessions->acquire(session_id, wait);
            if (!flight->turn_lock)
                lock_error =
                    api_error{.code = 409, .message = "session busy: another request on it is running"};
        } catch (const std::exception& e) {
            spdlog::warn("session {}: store failed taking its lock: {}", session_id, e.what());
            lock_error = api_error{.code = 503, .message = "the session store is unavailable"};
        }
        if (lock_error) {
            auto res = fail(*lock_error);
            co_await ex.respond(std::move(res));
            co_return nullptr;
        }
    }

    // Session memory: only the key that made a session may continue it.
    std::vector<stored_message> history;
    std::optional<api_error> session_error;
    try {
        std::optional<std::string> owner;
        // A session id sluice just made up has no owner and no history yet: no store round trip.
        if (!session_id.empty() && !turn.new_session)
            owner = co_await run_blocking(app.store_pool, [&] { return app.db.session_owner(session_id); });
        if (owner && !constant_time_equal(*owner, key_id)) {
            session_error = api_error{.code = 404, .message = "session not found"};
        } else if (owner) {
            history = co_await run_blocking(app.store_pool, [&] { return app.db.load_messages(session_id); });
        }
    } catch (const std::exception& e) {
        spdlog::warn("session {}: store failed: {}", session_id, e.what());
        session_error = api_error{.code = 503, .message = "the session store is unavailable"};
    }
    if (session_error) {
        auto res = fail(*session_error);
        co_await ex.respond(std::move(res));
        co_return nullptr;
    }

    std::vector<chat_message> conversation;
    for (auto& message : history) {
        if (message.role == "system" || (message.content.empty() && message.parts.empty())) continue;
        conversation.push_back(to_chat_message(std::move(message)));
    }
    for (const auto& message : turn.request.messages) conversation.push_back(message);

    auto route = route_request_for(conversation, turn.preferred_model, turn.model_type);
    route.needs_tools = turn.request.needs_tools() || needs_tools(conversation);
    route.needs_images = needs_images(conversation);
    if (ex.key()) route.key_name = ex.key()->name;
    route.requested_model = std::move(turn.requested_model);
    for (const auto& name : app.routing->rule_headers()) {
        const auto occurrences = request.equal_range(name);
        for (auto field = occurrences.first; field != occurrences.second; ++field)
            route.headers.emplace_back(name, std::string_view(field->value()));
    }
    auto planned = app.routing->plan(route);
    if (!planned.ok()) {
        auto res = fail(planned.error);
        co_await ex.respond(std::move(res));
        co_return nullptr;
    }
    chat_request shape = std::move(turn.request);
    std::vector<chat_message> new_messages = std::move(shape.messages);
    shape.params.max_tokens = turn.max_tokens.value_or(k_default_max_tokens);
    const stream_identity base{.session_id = session_id};
    // A tokenizer over a big conversation takes CPU time no io thread may spend (every connection
    // on the thread would wait): trimming for such a model runs on the compute pool.
    const bool costly = std::any_of(planned.plan.candidates.begin(), planned.plan.candidates.end(),
                                    [](const provider_ptr& model) { return model->counting_is_costly(); });
    if (costly && app.compute_pool) {
        flight->candidates = co_await run_blocking(*app.compute_pool, [&] {
            return make_candidates(planned.plan, app.cfg.server.system_prompt, conversation, shape, base);
        });
    } else {
        flight->candidates =
            make_candidates(planned.plan, app.cfg.server.system_prompt, conversation, shape, base);
    }
    flight->options = {.heartbeat_interval = std::chrono::seconds{app.cfg.server.heartbeat_interval_s},
                       .request_timeout = std::chrono::seconds{app.cfg.server.request_timeout_s},
                       .max_answer_bytes = app.cfg.server.max_answer_bytes,
                       .compute_pool = app.compute_pool,
                       .streaming = turn.streaming,
                       .format = flight->format.get()};
    turn_record record{.key_id = key_id,
                       .session_id = session_id,
                       .new_messages = std::move(new_messages),
                       .model = flight->candidates.front().identity.model,
                       .on_outcome = std::move(turn.on_outcome)};
    flight->resumable = turn.resumable && turn.streaming && app.streams != nullptr;
    flight->background = turn.background;
    flight->stream_id = std::move(turn.stream_id);
    flight->background_reply = std::move(turn.background_reply);
    flight->persist = flight->slot.wrap([&app, record = std::move(record)](const stream_outcome& out) {
        return persist_turn(app, record, out);
    });
    co_return std::move(flight);
}

void log_turn(const turn_in_flight& flight) {
    const auto& outcome = flight.outcome;
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - flight.started);
    spdlog::info("chat key={} session={} model={} finish={} tokens={}+{} {} ms{}{}", flight.key_id,
                 flight.session_id, outcome.model, outcome.finish_reason, outcome.prompt_tokens,
                 outcome.completion_tokens, elapsed.count(), flight.resumable ? " resumable" : "",
                 outcome.error ? " error: " + outcome.error->message : std::string{});
}

// How stream `id`'s shared log is kept (orphan_event: the producer's to set).
publish_settings shared_log_settings(const app_context& app, std::string id, std::string owner) {
    return {.id = std::move(id),
            .owner = std::move(owner),
            .orphan_event = {},
            .running_keep = resumable_stream_lifetime(app.cfg),
            .finished_keep = std::chrono::seconds{app.cfg.resume.ttl_s}};
}

// What a reader in another process ends with if this one dies before the stream's end.
std::string orphan_event(turn_in_flight& flight, const stream_identity& who) {
    sse_batch events;
    const api_error lost{.code = 502,
                         .message =
                             "the sluice instance producing this stream stopped before its end: "
                             "the rest of the answer is lost"};
    flight.format->lost_events(events, lost, who);
    auto text = unframed_events(events.wire_bytes());
    if (flight.format->done_marker()) text.append(k_sse_done);
    return text;
}

// The relay writing to the log; the log ends when it does, even when the relay could not write its end.
net::awaitable<void> relay_then_finish(app_context& app, memory_stream_log& log, std::string_view stream_id,
                                       std::chrono::milliseconds keep, turn_in_flight& flight) {
    try {
        co_await relay_to_log(log, keep, flight.started, std::move(flight.candidates), flight.options,
                              flight.outcome, std::move(flight.persist), app.routing);
    } catch (const std::exception& e) {
        spdlog::error("stream {}: the producer failed: {}", stream_id, e.what());
    }
    log.finish();
}

// A resumable stream's producer: the relay writing to the log, holding the turn (its admission
// slot, session lock and outcome hook) until the answer is stored, whoever reads it. With a shared
// store the log is published there too, for readers in other processes.
net::awaitable<void> produce_to_log(app_context& app, std::shared_ptr<memory_stream_log> log,
                                    std::string stream_id, std::chrono::milliseconds keep,
                                    std::unique_ptr<turn_in_flight> flight) {
    // Before the relay takes the candidates.
    const auto identity = std::make_shared<const stream_identity>(flight->candidates.front().identity);
    auto relaying = relay_then_finish(app, *log, stream_id, keep, *flight);
    if (app.shared_logs) {
        using namespace boost::asio::experimental::awaitable_operators;
        auto settings = shared_log_settings(app, stream_id, flight->key_id);
        settings.orphan_event = [&flight = *flight, identity] { return orphan_event(flight, *identity); };
        auto publishing = publish_log(*app.shared_logs, *log, std::move(settings));
        co_await (std::move(relaying) && std::move(publishing));
    } else {
        co_await std::move(relaying);
    }
    app.streams->finished(stream_id);
    log_turn(*flight);
}

// The producer runs on its own; this client is the log's first reader (or, with a background
// reply, gets that at once).
net::awaitable<void> stream_resumable(app_context& app, exchange& ex,
                                      std::unique_ptr<turn_in_flight> flight) {
    auto created = app.streams->create(flight->key_id, flight->stream_id);
    const std::string stream_id = created.first;
    std::shared_ptr<memory_stream_log> log = std::move(created.second);
    metrics::get().resumable_streams().inc();
    const auto keep = flight->background
                          ? std::chrono::milliseconds::max()
                          : std::chrono::milliseconds{std::chrono::seconds{app.cfg.resume.keep_s}};
    log_reader_options options{.stream_id = stream_id,
                               .route = route_header_value(flight->candidates.front().identity),
                               .heartbeat = flight->options.heartbeat_interval,
                               .retry = std::chrono::milliseconds{app.cfg.resume.retry_ms}};
    if (app.shared_logs) {
        // There before this client is answered: it may reconnect through another instance at once.
        const auto opening = shared_log_settings(app, stream_id, flight->key_id);
        co_await open_shared_log(*app.shared_logs, opening);
    }
    std::optional<http_response> reply;
    if (flight->background_reply) reply = flight->background_reply();
    // Before the producer starts, which must not find its log abandoned.
    if (!reply) log->attach_reader();
    const auto executor = co_await net::this_coro::executor;
    auto producing = produce_to_log(app, log, stream_id, keep, std::move(flight));
    if (app.spawn_detached) {
        app.spawn_detached(executor, std::move(producing));
    } else {
        net::co_spawn(executor, std::move(producing), [](const std::exception_ptr&) {});
    }
    if (reply) {
        co_await ex.respond(std::move(*reply));
        co_return;
    }
    co_await serve_stream_log(ex, std::move(log), 0, std::move(options), true);
}

// Waits for the whole stream: its frame holds little more than the turn's pointer.
net::awaitable<void> stream_turn(app_context& app, exchange& ex,
                                 net::awaitable<std::unique_ptr<turn_in_flight>> prepare) {
    auto flight = co_await std::move(prepare);
    if (!flight) co_return;
    if (flight->resumable) {
        co_await stream_resumable(app, ex, std::move(flight));
        co_return;
    }
    co_await relay_stream(ex, std::move(flight->candidates), flight->options, flight->outcome,
                          std::move(flight->persist), app.routing);
    log_turn(*flight);
}

}  // namespace

chat_message to_chat_message(stored_message stored) {
    return {.role = std::move(stored.role),
            .content = std::move(stored.content),
            .parts = std::move(stored.parts)};
}

// Not a coroutine either: prepare_turn's frame (large: admission, session, routing) ends before
// the stream, and stream_turn, which waits for the stream, stays small.
net::awaitable<void> run_chat_turn(app_context& app, exchange& ex, chat_turn turn,
                                   std::unique_ptr<wire_format> format) {
    auto prepare = prepare_turn(app, ex, std::move(turn), std::move(format));
    return stream_turn(app, ex, std::move(prepare));
}

}  // namespace sluice
