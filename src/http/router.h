#pragma once
// Method + path -> handler. Patterns are literal paths whose segments may be `{name}` (one whole
// segment, exposed as exchange::param). Unknown path -> 404, known path with another method -> 405.
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_error.h"
#include "http/exchange.h"

namespace sluice {

class authenticator;

using route_handler = std::function<boost::asio::awaitable<void>(exchange&)>;
// Shapes an error for a route's clients (JSON object, one SSE event, OpenAI's error object...).
using error_formatter = std::function<http_response(const http_request&, const api_error&)>;

// {"error": message, "code": code}, application/json; Retry-After when set.
http_response json_error_response(const http_request& request, const api_error& error);

struct route_options {
    bool needs_auth = true;
    error_formatter format_error = json_error_response;
};

struct route_match {
    enum class outcome { found, not_found, method_not_allowed };
    outcome result = outcome::not_found;
    const struct route* matched = nullptr;
    std::string allow;  // for 405: the methods the path accepts
};

struct route {
    http_verb method;
    std::string pattern;
    route_handler handler;
    route_options options;
};

class router {
  public:
    // `auth` may be null only when no route needs it (tests).
    explicit router(authenticator* auth = nullptr) : auth_(auth) {}

    void add(http_verb method, std::string pattern, route_handler handler, route_options options = {});

    // Fills the exchange's params on a match.
    route_match match(http_verb method, std::string_view path, exchange* ex = nullptr) const;

    // How an error is shaped for a request to `path` before it could be routed (413, 400...).
    http_response error_for(const http_request& request, std::string_view path, const api_error& error) const;

    // Routes, authenticates and runs the handler. A handler's exception becomes a 500 when nothing
    // was sent yet, otherwise the connection is closed.
    boost::asio::awaitable<void> dispatch(exchange& ex) const;

  private:
    static bool matches(std::string_view pattern, std::string_view path, exchange* ex);
    boost::asio::awaitable<bool> open_route(exchange& ex, const route*& found) const;
    boost::asio::awaitable<void> handler_failed(exchange& ex, const route& r,
                                                const std::string& failure) const;

    authenticator* auth_;
    std::vector<route> routes_;
};

}  // namespace sluice
