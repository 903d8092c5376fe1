#include "api/ui.h"

#include <boost/beast/http/field.hpp>
#include <cstddef>

#include "http/router.h"

namespace sluice {

namespace embedded {
// Generated at build time from src/api/ui/index.html (src/api/ui/embed.cmake).
extern const unsigned char chat_page[];
extern const std::size_t chat_page_size;
}  // namespace embedded

namespace {

namespace http = boost::beast::http;

// The page loads nothing from elsewhere and talks only to the server it came from; saying so
// keeps an injected script (were one ever to slip into an answer) from reaching anywhere else.
constexpr const char* k_content_security_policy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

boost::asio::awaitable<void> serve_page(exchange& ex) {
    http_response res{http_status::ok, ex.request().version()};
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.set(http::field::cache_control, "no-cache");
    res.set("Content-Security-Policy", k_content_security_policy);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.body() = chat_page_html();
    co_await ex.respond(std::move(res));
}

}  // namespace

std::string_view chat_page_html() {
    return {reinterpret_cast<const char*>(embedded::chat_page), embedded::chat_page_size};
}

void add_ui_routes(router& routes) {
    routes.add(http_verb::get, "/", serve_page, {.needs_auth = false});
}

}  // namespace sluice
