// POST /v1/responses, GET|DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items: the
// Responses request becomes a chat_turn and runs through the same turn as every API; the turn's
// outcome is kept as a stored response (store: true), which previous_response_id continues.
#include "api/responses.h"

// GCC 12 misreads Asio's awaitable frame allocator after inlining a coroutine here (see chat_turn.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <mutex>
#include <unordered_map>

#include "api/openai_chat.h"
#include "core/blocking.h"
#include "core/ids.h"
#include "http/router.h"
#include "streaming/log_reader.h"
#include "streaming/shared_log.h"
#include "streaming/stream_log.h"
#include "turn/chat_turn.h"

namespace sluice {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

// previous_response_id links followed at most: each is one store round trip.
constexpr std::size_t k_max_chain = 256;
constexpr std::int64_t k_ms_per_day = 24LL * 60 * 60 * 1000;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string key_of(const exchange& ex) {
    return ex.key() ? ex.key()->id : std::string{};
}

// Background responses not finished yet, for GET /v1/responses/{id} before the stored copy exists:
// what does not change while the stream runs (id, created_at, echo, key), never the live items.
class running_responses {
  public:
    void add(const response_state& state, std::string model) {
        auto copy = std::make_shared<response_state>();
        copy->id = state.id;
        copy->created_at = state.created_at;
        copy->echo = state.echo;
        copy->key_id = state.key_id;
        std::lock_guard lock{mutex_};
        running_[state.id] = {std::move(copy), std::move(model)};
    }
    void remove(const std::string& id) {
        std::lock_guard lock{mutex_};
        running_.erase(id);
    }
    // The in_progress object of a running background response of `key_id`; empty when none.
    std::string in_progress(const std::string& id, const std::string& key_id) const {
        std::lock_guard lock{mutex_};
        const auto it = running_.find(id);
        if (it == running_.end() || !constant_time_equal(it->second.first->key_id, key_id)) return {};
        return json::serialize(response_object(*it->second.first, nullptr, it->second.second, "in_progress"));
    }

  private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::pair<std::shared_ptr<response_state>, std::string>> running_;
};

running_responses& running() {
    static running_responses responses;
    return responses;
}

// What a request needs once the previous response's conversation is loaded.
struct pending_response {
    chat_turn turn;
    std::unique_ptr<wire_format> format;
    std::string previous_response_id;
    std::vector<std::string> references;  // item ids the input refers to
    bool has_instructions = false;
};

stored_response make_record(const app_context& app, response_state& state, const stream_outcome& out) {
    state.settle(out);
    const auto status = response_status(out);
    const auto now = now_ms();
    return {.id = state.id,
            .key_id = state.key_id,
            .previous_response_id = state.previous_response_id,
            .model = out.model,
            .status = std::string(status),
            .created_ms = state.created_at * 1000,
            .expires_ms = now + app.cfg.store.response_retention_days * k_ms_per_day,
            .input_items = state.input_items,
            .response = json::serialize(response_object(state, &out, out.model, status))};
}

// A running background response as the store keeps it until its end replaces it; it expires with
// the producer's deadline (a turn refused before it started leaves no stream, and GET says 404).
stored_response in_progress_record(const app_context& app, const response_state& state,
                                   const std::string& model) {
    const auto now = now_ms();
    const auto lifetime_ms = std::chrono::milliseconds{resumable_stream_lifetime(app.cfg)}.count();
    return {.id = state.id,
            .key_id = state.key_id,
            .previous_response_id = state.previous_response_id,
            .model = model,
            .status = "in_progress",
            .created_ms = state.created_at * 1000,
            .expires_ms = now + lifetime_ms,
            .input_items = state.input_items,
            .response = json::serialize(response_object(state, nullptr, model, "in_progress"))};
}

net::awaitable<void> announce_then(app_context& app, stored_response record, net::awaitable<void> then) {
    try {
        co_await run_blocking(app.store_pool, [&app, &record] { app.db.save_response(record); });
    } catch (const std::exception& e) {
        spdlog::warn("response {}: its in_progress state was not stored: {}", record.id, e.what());
    }
    co_await std::move(then);
}

// The turn's outcome hook: runs before the last event, so a GET or a previous_response_id right
// after response.completed finds the response.
net::awaitable<void> record_response(app_context& app, std::shared_ptr<response_state> state,
                                     const stream_outcome& out) {
    state->outcome = &out;
    if (!state->store) co_return;
    const stored_response record = make_record(app, *state, out);
    try {
        co_await run_blocking(app.store_pool, [&app, &record] { app.db.save_response(record); });
    } catch (const std::exception& e) {
        spdlog::warn("response {}: not stored: {}", record.id, e.what());
    }
    running().remove(record.id);  // GET finds the stored copy from here on
}

// The responses that previous_response_id names, oldest first; null when the first is not there (or
// is another key's). An ancestor that was deleted or expired ends the chain: the history starts after it.
std::optional<std::vector<stored_response>> load_chain(store& db, const std::string& id,
                                                       const std::string& key_id) {
    const auto now = now_ms();
    std::vector<stored_response> chain;
    std::string next = id;
    while (!next.empty() && chain.size() < k_max_chain) {
        auto found = db.load_response(next, now);
        if (!found || !constant_time_equal(found->key_id, key_id)) {
            if (chain.empty()) return std::nullopt;
            break;
        }
        next = found->previous_response_id;
        chain.push_back(std::move(*found));
    }
    std::reverse(chain.begin(), chain.end());
    return chain;
}

// What a request's earlier state is: the previous_response_id chain, and the stored responses that
// its item_references point into (only the key's own).
struct earlier_responses {
    std::optional<std::vector<stored_response>> chain;  // null: the previous response is not there
    std::vector<stored_response> referenced;
};

earlier_responses load_earlier(store& db, const pending_response& pending, const std::string& key_id) {
    earlier_responses found;
    if (!pending.previous_response_id.empty())
        found.chain = load_chain(db, pending.previous_response_id, key_id);
    std::vector<std::string> ids;
    for (const auto& item : pending.references) {
        auto id = response_id_of_item(item);
        if (!id.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(std::move(id));
    }
    const auto now = now_ms();
    for (const auto& id : ids) {
        auto response = db.load_response(id, now);
        if (response && constant_time_equal(response->key_id, key_id))
            found.referenced.push_back(std::move(*response));
    }
    return found;
}

// The input again, with its item_references replaced by the stored items they name.
std::vector<chat_message> resolve_references(std::string_view body,
                                             const std::vector<stored_response>& referenced,
                                             std::vector<chat_message> messages) {
    std::vector<json::value> outputs;
    outputs.reserve(referenced.size());
    for (const auto& response : referenced) {
        boost::system::error_code ec;
        auto whole = json::parse(response.response, ec);
        if (!ec && whole.is_object()) outputs.push_back(std::move(whole));
    }
    const item_resolver resolve = [&outputs](std::string_view id) -> const json::object* {
        for (const auto& whole : outputs) {
            const auto* output = whole.get_object().if_contains("output");
            if (!output || !output->is_array()) continue;
            for (const auto& item : output->get_array()) {
                const auto* object = item.if_object();
                const auto* item_id = object ? object->if_contains("id") : nullptr;
                if (item_id && item_id->is_string() && item_id->get_string() == id) return object;
            }
        }
        return nullptr;
    };
    auto parsed = parse_responses_request(body, &resolve);
    if (auto* request = std::get_if<responses_request>(&parsed)) return std::move(request->messages);
    return messages;
}

// Puts the earlier responses' conversation before the new input and resolves its item
// references; false when an error response went out instead.
net::awaitable<bool> load_history(app_context& app, exchange& ex, pending_response& pending) {
    const std::string key_id = key_of(ex);
    const std::string& id = pending.previous_response_id;
    earlier_responses earlier;
    std::optional<api_error> failure;
    std::string code;
    try {
        earlier =
            co_await run_blocking(app.store_pool, [&] { return load_earlier(app.db, pending, key_id); });
    } catch (const std::exception& e) {
        spdlog::warn("response {}: store failed: {}", id, e.what());
        failure = api_error{.code = 503, .message = "the response store is unavailable"};
    }
    if (!failure && !id.empty() && !earlier.chain) {
        failure = api_error{.code = 400, .message = "Previous response with id '" + id + "' not found."};
        code = "previous_response_not_found";
    }
    if (failure) {
        auto res = openai_error_response(ex.request(), *failure, code);
        co_await ex.respond(std::move(res));
        co_return false;
    }
    auto& messages = pending.turn.request.messages;
    if (!earlier.referenced.empty())
        messages = resolve_references(ex.request().body(), earlier.referenced, std::move(messages));
    if (earlier.chain) {
        auto history = history_from_responses(*earlier.chain);
        const auto at = messages.begin() + (pending.has_instructions ? 1 : 0);
        messages.insert(at, std::make_move_iterator(history.begin()), std::make_move_iterator(history.end()));
    }
    co_return true;
}

// Its frame lives for the whole stream: it holds the pending request's pointer and the turn's awaitable.
net::awaitable<void> continue_response(app_context& app, exchange& ex,
                                       std::unique_ptr<pending_response> pending) {
    const bool loaded = co_await load_history(app, ex, *pending);
    if (!loaded) co_return;
    auto run = run_chat_turn(app, ex, std::move(pending->turn), std::move(pending->format));
    co_await std::move(run);
}

// Not a coroutine: the request is checked here, then run_chat_turn's coroutines run on their own.
net::awaitable<void> create_response(app_context& app, exchange& ex) {
    const auto& http_req = ex.request();
    auto parsed = parse_responses_request(http_req.body());
    if (auto* error = std::get_if<api_error>(&parsed)) {
        auto res = openai_error_response(http_req, *error);
        return ex.respond(std::move(res));
    }
    auto& request = std::get<responses_request>(parsed);

    auto pending = std::make_unique<pending_response>();
    auto& turn = pending->turn;
    if (auto error = route_model(app, request.model, turn)) {
        auto res = openai_error_response(http_req, *error, "model_not_found");
        return ex.respond(std::move(res));
    }
    auto& shape = turn.request;
    shape.messages = std::move(request.messages);
    shape.tools = std::move(request.tools);
    shape.tools_choice = std::move(request.tools_choice);
    shape.parallel_tool_calls = request.parallel_tool_calls;
    shape.format = std::move(request.format);
    shape.openai_extra = std::move(request.extra);
    shape.params.temperature = request.temperature.value_or(k_default_temperature);
    shape.params.top_p = request.top_p.value_or(1.0);
    turn.max_tokens = request.max_output_tokens;
    turn.streaming = request.stream;

    auto state = std::make_shared<response_state>();
    state->id = new_id("resp_");
    state->created_at = now_ms() / 1000;
    state->echo = std::move(request.echo);
    state->store = request.store;
    state->key_id = key_of(ex);
    state->previous_response_id = request.previous_response_id;
    state->input_items = std::move(request.input_items);
    turn.on_outcome = [&app, state](const stream_outcome& out) { return record_response(app, state, out); };
    if (request.background) {
        if (!request.store || !app.streams) {
            auto res = openai_error_response(
                http_req,
                {.code = 400, .message = "background responses must be stored: store cannot be false"});
            return ex.respond(std::move(res));
        }
        // The answer runs to its end whoever reads it; its events are the log of stream `resp_...`.
        turn.resumable = true;
        turn.background = true;
        turn.streaming = true;
        turn.stream_id = state->id;
        running().add(*state, request.model);
        if (!request.stream) {
            turn.background_reply = [state, model = request.model, version = http_req.version()] {
                http_response res{http_status::ok, version};
                res.set(boost::beast::http::field::content_type, "application/json");
                res.body() = json::serialize(response_object(*state, nullptr, model, "queued"));
                return res;
            };
        }
    }
    // With a store that several instances share, a background response is in_progress there too,
    // so that a GET through another instance finds it while it runs.
    std::optional<stored_response> announced;
    if (request.background && app.shared_logs) announced = in_progress_record(app, *state, request.model);
    pending->format = make_responses_wire_format(std::move(state));
    if (request.previous_response_id.empty() && request.references.empty()) {
        auto run = run_chat_turn(app, ex, std::move(turn), std::move(pending->format));
        if (announced) return announce_then(app, std::move(*announced), std::move(run));
        return run;
    }
    pending->previous_response_id = std::move(request.previous_response_id);
    pending->references = std::move(request.references);
    pending->has_instructions = request.has_instructions;
    auto run = continue_response(app, ex, std::move(pending));
    if (announced) return announce_then(app, std::move(*announced), std::move(run));
    return run;
}

// The response `{id}` when the caller's key owns it; otherwise the error went out and it is null.
net::awaitable<std::optional<stored_response>> find_owned(app_context& app, exchange& ex) {
    const std::string id{ex.param("id")};
    const std::string key_id = key_of(ex);
    std::optional<stored_response> found;
    bool store_failed = false;
    try {
        found = co_await run_blocking(app.store_pool, [&] { return app.db.load_response(id, now_ms()); });
    } catch (const std::exception& e) {
        spdlog::warn("response {}: store failed: {}", id, e.what());
        store_failed = true;
    }
    if (found && !constant_time_equal(found->key_id, key_id)) found.reset();  // another key's: not there
    if (!found) {
        const api_error error =
            store_failed ? api_error{.code = 503, .message = "the response store is unavailable"}
                         : api_error{.code = 404, .message = "No response found with id '" + id + "'."};
        auto res = openai_error_response(ex.request(), error);
        co_await ex.respond(std::move(res));
    }
    co_return found;
}

// `name`'s value in a query string (no percent-decoding: the values here are ids and words).
std::string_view query_value(std::string_view query, std::string_view name);

// GET /v1/responses/{id}?stream=true[&starting_after=N]: a background response's events after
// sequence number N (event id N + 1: the log numbers events from 1, the wire from 0), then live.
net::awaitable<void> stream_response(app_context& app, exchange& ex) {
    const std::string id{ex.param("id")};
    const std::string owner = key_of(ex);
    std::shared_ptr<stream_log> log;
    if (app.streams) log = co_await find_stream(*app.streams, app.shared_logs, id, owner);
    const auto after_text = query_value(ex.query(), "starting_after");
    std::int64_t after = -1;
    std::optional<api_error> error;
    if (!after_text.empty()) {
        const auto [end, ec] =
            std::from_chars(after_text.data(), after_text.data() + after_text.size(), after);
        if (ec != std::errc{} || end != after_text.data() + after_text.size() || after < -1)
            error = api_error{.code = 400, .message = "starting_after must be a sequence number"};
    }
    const auto after_id = static_cast<std::uint64_t>(after + 1);
    if (!error && !log)
        error = api_error{.code = 404,
                          .message = "No streamable response found with id '" + id +
                                     "' (only background responses can be streamed again, while kept)."};
    if (!error && !log->resumable_after(after_id))
        error = api_error{.code = 400,
                          .message = "starting_after names no event this response's stream still holds"};
    if (error) {
        auto res = openai_error_response(ex.request(), *error);
        co_await ex.respond(std::move(res));
        co_return;
    }
    log_reader_options options{.stream_id = id,
                               .route = {},
                               .heartbeat = std::chrono::seconds{app.cfg.server.heartbeat_interval_s},
                               .retry = std::chrono::milliseconds{app.cfg.resume.retry_ms},
                               .resumed = true};
    co_await serve_stream_log(ex, std::move(log), after_id, std::move(options));
}

net::awaitable<void> get_response(app_context& app, exchange& ex) {
    if (query_value(ex.query(), "stream") == "true") {
        co_await stream_response(app, ex);
        co_return;
    }
    auto running_body = running().in_progress(std::string(ex.param("id")), key_of(ex));
    // Only while its producer runs (a turn refused before it started leaves no log).
    std::shared_ptr<stream_log> live;
    if (!running_body.empty() && app.streams) live = app.streams->find(ex.param("id"), key_of(ex));
    if (live && !live->finished()) {
        co_await ex.respond_json(http_status::ok, std::move(running_body));
        co_return;
    }
    auto found = co_await find_owned(app, ex);
    if (!found) co_return;
    if (found->status == "in_progress" && app.streams) {
        // Another instance's: only while its stream is there (a turn refused before it started).
        const std::string id = found->id;
        const std::string owner = key_of(ex);
        const auto stream = co_await find_stream(*app.streams, app.shared_logs, id, owner);
        if (!stream) {
            auto res = openai_error_response(
                ex.request(), {.code = 404, .message = "No response found with id '" + id + "'."});
            co_await ex.respond(std::move(res));
            co_return;
        }
    }
    auto body = std::move(found->response);
    co_await ex.respond_json(http_status::ok, std::move(body));
}

// POST /v1/responses/{id}/cancel: a running background response stops (the upstream or the local
// decoding with it), keeps what it had and is stored as cancelled; the answer is that response. A
// finished one is answered as it is.
net::awaitable<void> cancel_response(app_context& app, exchange& ex) {
    std::shared_ptr<stream_log> log;
    if (app.streams) {
        const std::string id{ex.param("id")};
        const std::string owner = key_of(ex);
        log = co_await find_stream(*app.streams, app.shared_logs, id, owner);
    }
    if (log && !log->finished()) {
        log->cancel();
        // The producer stores the response before it finishes the log.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (!log->finished() && std::chrono::steady_clock::now() < deadline) {
            const auto seen = log->version();
            if (log->finished()) break;
            co_await log->wait_change(seen, std::chrono::milliseconds{200});
        }
    }
    auto found = co_await find_owned(app, ex);
    if (!found) co_return;
    auto body = std::move(found->response);
    co_await ex.respond_json(http_status::ok, std::move(body));
}

net::awaitable<void> delete_response(app_context& app, exchange& ex) {
    auto found = co_await find_owned(app, ex);
    if (!found) co_return;
    const std::string id = found->id;
    bool store_failed = false;
    try {
        co_await run_blocking(app.store_pool, [&] { return app.db.delete_response(id); });
    } catch (const std::exception& e) {
        spdlog::warn("response {}: store failed: {}", id, e.what());
        store_failed = true;
    }
    if (store_failed) {
        auto res = openai_error_response(ex.request(),
                                         {.code = 503, .message = "the response store is unavailable"});
        co_await ex.respond(std::move(res));
        co_return;
    }
    auto body = json::serialize(json::object{{"id", id}, {"object", "response"}, {"deleted", true}});
    co_await ex.respond_json(http_status::ok, std::move(body));
}

std::string_view query_value(std::string_view query, std::string_view name) {
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

// OpenAI's list of a response's input items: newest first unless order=asc, `limit` (1-100, 20) after
// the item `after`.
std::string input_items_page(std::string_view items_json, std::string_view query) {
    boost::system::error_code ec;
    auto items = json::parse(items_json, ec);
    json::array all = !ec && items.is_array() ? std::move(items.get_array()) : json::array{};
    if (query_value(query, "order") != "asc") std::reverse(all.begin(), all.end());
    std::size_t limit = 20;
    const auto limit_text = query_value(query, "limit");
    if (!limit_text.empty()) {
        std::from_chars(limit_text.data(), limit_text.data() + limit_text.size(), limit);
        limit = std::clamp<std::size_t>(limit, 1, 100);
    }
    std::size_t start = 0;
    if (const auto after = query_value(query, "after"); !after.empty()) {
        for (std::size_t i = 0; i < all.size(); ++i) {
            const auto* id = all[i].is_object() ? all[i].get_object().if_contains("id") : nullptr;
            if (id && id->is_string() && id->get_string() == after) start = i + 1;
        }
    }
    json::array page;
    for (std::size_t i = start; i < all.size() && page.size() < limit; ++i) page.push_back(all[i]);
    auto id_of = [](const json::value& item) -> json::value {
        const auto* id = item.is_object() ? item.get_object().if_contains("id") : nullptr;
        return id ? *id : json::value(nullptr);
    };
    const bool more = start + page.size() < all.size();
    json::object list{{"object", "list"},
                      {"first_id", page.empty() ? json::value(nullptr) : id_of(page.front())},
                      {"last_id", page.empty() ? json::value(nullptr) : id_of(page.back())},
                      {"has_more", more}};
    list["data"] = std::move(page);
    return json::serialize(list);
}

net::awaitable<void> list_input_items(app_context& app, exchange& ex) {
    auto found = co_await find_owned(app, ex);
    if (!found) co_return;
    auto body = input_items_page(found->input_items, ex.query());
    co_await ex.respond_json(http_status::ok, std::move(body));
}

http_response format_error(const http_request& request, const api_error& error) {
    return openai_error_response(request, error);
}

}  // namespace

void add_responses_routes(router& routes, app_context& app) {
    const route_options options{.format_error = format_error};
    routes.add(
        http_verb::post, "/v1/responses", [&app](exchange& ex) { return create_response(app, ex); }, options);
    routes.add(
        http_verb::get, "/v1/responses/{id}", [&app](exchange& ex) { return get_response(app, ex); },
        options);
    routes.add(
        http_verb::post, "/v1/responses/{id}/cancel",
        [&app](exchange& ex) { return cancel_response(app, ex); }, options);
    routes.add(
        http_verb::delete_, "/v1/responses/{id}", [&app](exchange& ex) { return delete_response(app, ex); },
        options);
    routes.add(
        http_verb::get, "/v1/responses/{id}/input_items",
        [&app](exchange& ex) { return list_input_items(app, ex); }, options);
}

}  // namespace sluice
