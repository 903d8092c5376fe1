#include "api/streams_api.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "api/seed_api.h"
#include "streaming/log_reader.h"
#include "streaming/shared_log.h"
#include "streaming/stream_log.h"

namespace sluice {

namespace net = boost::asio;

namespace {

// The event id to resume after: the Last-Event-ID header (what EventSource sends), else the
// `last_event_id` query parameter, else 0 (from the start). nullopt: not an event id.
std::optional<std::uint64_t> resume_after(const exchange& ex) {
    std::string_view text;
    if (const auto it = ex.request().find("Last-Event-ID"); it != ex.request().end()) {
        text = it->value();
    } else {
        const auto query = ex.query();
        constexpr std::string_view k_name = "last_event_id=";
        for (std::size_t at = 0; at < query.size();) {
            const auto end = std::min(query.find('&', at), query.size());
            const auto pair = query.substr(at, end - at);
            if (pair.starts_with(k_name)) text = pair.substr(k_name.size());
            at = end + 1;
        }
    }
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    if (text.empty()) return 0;
    std::uint64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return id;
}

net::awaitable<void> resume_stream(app_context& app, exchange& ex) {
    const std::string owner = ex.key() ? ex.key()->id : std::string{};
    std::shared_ptr<stream_log> log;
    // Another key's stream is as unknown as a stream that never was. With a shared store the
    // stream may be another instance's.
    if (app.streams) {
        const std::string_view id = ex.param("id");
        log = co_await find_stream(*app.streams, app.shared_logs, id, owner);
    }
    std::optional<api_error> error;
    const auto after = resume_after(ex);
    if (!log) {
        error = api_error{.code = 404, .message = "stream not found (or expired)"};
    } else if (!after) {
        error = api_error{.code = 400, .message = "Last-Event-ID must be an event id (a decimal number)"};
    } else if (!log->resumable_after(*after)) {
        error = api_error{
            .code = 410,
            // A log that passed its bound refuses every resume, whatever the id.
            .message = log->resumable_after(0)
                           ? "Last-Event-ID names no event of this stream"
                           : "this stream is no longer resumable (its log passed resume.max_bytes)"};
    }
    if (error) {
        auto res = seed_sse_error(ex.request(), *error);
        co_await ex.respond(std::move(res));
        co_return;
    }
    log_reader_options options{.stream_id = std::string(ex.param("id")),
                               .route = {},
                               .heartbeat = std::chrono::seconds{app.cfg.server.heartbeat_interval_s},
                               .retry = std::chrono::milliseconds{app.cfg.resume.retry_ms},
                               .resumed = true};
    co_await serve_stream_log(ex, std::move(log), *after, std::move(options));
}

}  // namespace

void add_stream_routes(router& routes, app_context& app) {
    routes.add(http_verb::get, "/api/v1/streams/{id}",
               [&app](exchange& ex) { return resume_stream(app, ex); }, {.format_error = seed_sse_error});
}

}  // namespace sluice
