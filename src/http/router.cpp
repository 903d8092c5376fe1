#include "http/router.h"

#include <spdlog/spdlog.h>

#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/metrics.h"
#include "http/auth.h"

namespace sluice {

namespace net = boost::asio;
namespace http = boost::beast::http;

http_response json_error_response(const http_request& request, const api_error& error) {
    http_response res{static_cast<http_status>(error.code), request.version()};
    res.set(http::field::content_type, "application/json");
    if (error.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(error.retry_after_s));
    res.body() = boost::json::serialize(boost::json::object{{"error", error.message}, {"code", error.code}});
    return res;
}

void router::add(http_verb method, std::string pattern, route_handler handler, route_options options) {
    routes_.push_back(route{method, std::move(pattern), std::move(handler), std::move(options)});
}

bool router::matches(std::string_view pattern, std::string_view path, exchange* ex) {
    while (!pattern.empty() && !path.empty()) {
        auto pattern_end = pattern.find('/', 1);
        auto path_end = path.find('/', 1);
        auto pattern_segment = pattern.substr(0, pattern_end);
        auto path_segment = path.substr(0, path_end);
        if (pattern_segment.size() > 2 && pattern_segment[1] == '{' && pattern_segment.back() == '}') {
            if (path_segment.size() < 2) return false;  // "{name}" needs a non-empty segment
            if (ex) {
                ex->set_param(std::string(pattern_segment.substr(2, pattern_segment.size() - 3)),
                              std::string(path_segment.substr(1)));
            }
        } else if (pattern_segment != path_segment) {
            return false;
        }
        pattern = pattern_end == std::string_view::npos ? std::string_view{} : pattern.substr(pattern_end);
        path = path_end == std::string_view::npos ? std::string_view{} : path.substr(path_end);
    }
    return pattern.empty() && path.empty();
}

route_match router::match(http_verb method, std::string_view path, exchange* ex) const {
    route_match result;
    for (const auto& r : routes_) {
        if (!matches(r.pattern, path, nullptr)) continue;
        if (r.method == method) {
            if (ex) matches(r.pattern, path, ex);
            result.result = route_match::outcome::found;
            result.matched = &r;
            return result;
        }
        result.result = route_match::outcome::method_not_allowed;
        if (!result.allow.empty()) result.allow += ", ";
        result.allow += std::string(http::to_string(r.method));
    }
    return result;
}

http_response router::error_for(const http_request& request, std::string_view path,
                                const api_error& error) const {
    for (const auto& r : routes_) {
        if (matches(r.pattern, path, nullptr)) return r.options.format_error(request, error);
    }
    return json_error_response(request, error);
}

// Routes and authenticates; sets `found` to the matched route (for the request count) and returns
// whether its handler may run, having answered the request itself when not. A coroutine of its own:
// its frame (the error responses, the auth check) is gone while the handler runs.
net::awaitable<bool> router::open_route(exchange& ex, const route*& found) const {
    const auto& req = ex.request();
    auto m = match(req.method(), ex.path(), &ex);
    found = m.matched;
    if (m.result == route_match::outcome::not_found) {
        const api_error error{.code = 404, .message = "no such endpoint"};
        auto res = json_error_response(req, error);
        co_await ex.respond(std::move(res));
        co_return false;
    }
    if (m.result == route_match::outcome::method_not_allowed) {
        const api_error error{.code = 405, .message = "method not allowed; use " + m.allow};
        auto res = json_error_response(req, error);
        res.set(http::field::allow, m.allow);
        co_await ex.respond(std::move(res));
        co_return false;
    }
    const route& r = *m.matched;
    if (r.options.needs_auth) {
        if (!auth_) throw std::logic_error("router: a route needs auth but no authenticator is set");
        auto it = req.find(http::field::authorization);
        const std::string_view header = it == req.end() ? std::string_view{} : std::string_view{it->value()};
        auto key_it = req.find("x-api-key");
        const std::string_view api_key =
            key_it == req.end() ? std::string_view{} : std::string_view{key_it->value()};
        auto result = co_await auth_->check(header, api_key);
        if (!result.key) {
            auto res = r.options.format_error(req, result.error);
            if (result.error.code == 401) res.set(http::field::www_authenticate, "Bearer");
            co_await ex.respond(std::move(res));
            co_return false;
        }
        ex.set_key(std::move(*result.key));
    }
    co_return true;
}

// A handler threw: a 500 when nothing was sent yet, else the connection closes after this request.
net::awaitable<void> router::handler_failed(exchange& ex, const route& r, const std::string& failure) const {
    const auto& req = ex.request();
    // A failed write means the peer is gone; anything else is a bug worth a log line.
    spdlog::error("{} {}: handler failed: {}", std::string(http::to_string(req.method())),
                  std::string(ex.path()), failure);
    if (!ex.responded()) {
        const api_error error{.code = 500, .message = "internal error"};
        auto res = r.options.format_error(req, error);
        co_await ex.respond(std::move(res));
    } else {
        ex.close_after();
    }
}

// The frame of this coroutine lives as long as the handler (a stream: minutes), so everything
// else is in open_route and handler_failed.
net::awaitable<void> router::dispatch(exchange& ex) const {
    const route* found = nullptr;
    // One count per request on every exit; the label is the route pattern, never the raw path.
    metrics::at_scope_exit count{[&] {
        const std::string_view endpoint = found ? std::string_view{found->pattern} : "unmatched";
        metrics::get().requests(endpoint, ex.status() ? ex.status() : 499).inc();
    }};
    const bool open = co_await open_route(ex, found);
    if (!open) co_return;
    std::string failure;
    try {
        co_await found->handler(ex);
        co_return;
    } catch (const std::exception& e) {
        failure = e.what();
    }
    co_await handler_failed(ex, *found, failure);
}

}  // namespace sluice
