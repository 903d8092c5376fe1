// Fuzz target for the HTTP head handling in front of the handlers: Beast's request parser with the
// server's limits (http/framing.h), the absolute-form rewrite and the framing checks against request
// smuggling, then what a handler reads of the request: the path and query split, the route match,
// the bearer token (http/auth.h) and the X-Sluice-Session id. Property: a head is either rejected
// (by Beast, or with 400/501 and a message) or accepted in a shape sluice and Beast agree on: one
// Host on HTTP/1.1, a Transfer-Encoding only as a lone `chunked` that Beast reads as chunked, an
// origin-form target whose path and query put back together give the target.
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/seed_request.h"
#include "fuzz_check.h"
#include "http/auth.h"
#include "http/exchange.h"
#include "http/framing.h"
#include "http/router.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using sluice::fuzz::check;

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        const char c = text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
        if (c != prefix[i]) return false;
    }
    return true;
}

// The server's routes (src/api/*.cpp add_*_routes), with handlers that are never run.
const sluice::router& routes() {
    static const sluice::router r = [] {
        sluice::router out;
        const sluice::route_handler none = [](sluice::exchange&) -> net::awaitable<void> { co_return; };
        using sluice::http_verb;
        for (const auto& [verb, pattern] : std::initializer_list<std::pair<http_verb, const char*>>{
                 {http_verb::get, "/"},
                 {http_verb::get, "/healthz"},
                 {http_verb::get, "/readyz"},
                 {http_verb::get, "/metrics"},
                 {http_verb::get, "/api/v1/models"},
                 {http_verb::post, "/api/v1/chat/stream"},
                 {http_verb::post, "/api/v1/chat"},
                 {http_verb::get, "/api/v1/sessions/{id}"},
                 {http_verb::delete_, "/api/v1/sessions/{id}"},
                 {http_verb::get, "/api/v1/usage"},
                 {http_verb::post, "/v1/chat/completions"},
                 {http_verb::get, "/v1/models"},
             })
            out.add(verb, pattern, none);
        return out;
    }();
    return r;
}

void check_request(sluice::http_request request, const http::request_parser<http::string_body>& parser) {
    static net::io_context io;
    static beast::tcp_stream stream(io);
    beast::flat_buffer buffer;
    const std::string target(request.target());
    const bool keep_alive = parser.keep_alive();
    sluice::exchange ex(stream, buffer, std::move(request), keep_alive);

    const auto path = ex.path();
    const auto query = ex.query();
    check(path.find('?') == std::string_view::npos, "the path holds no '?'");
    const bool has_query = target.find('?') != std::string::npos;
    check(std::string(path) + (has_query ? "?" + std::string(query) : "") == target,
          "path and query make the target");

    const auto m = routes().match(ex.request().method(), path, &ex);
    if (m.result == sluice::route_match::outcome::found) {
        check(m.matched != nullptr && m.matched->method == ex.request().method(), "a match has the method");
        if (m.matched->pattern.find("{id}") != std::string::npos) {
            const auto id = ex.param("id");
            check(!id.empty() && id.find('/') == std::string_view::npos, "{id} is one non-empty segment");
            check(path.ends_with(id), "{id} is the path's last segment");
        }
    } else if (m.result == sluice::route_match::outcome::method_not_allowed) {
        check(!m.allow.empty(), "a 405 says which methods the path takes");
    }

    for (auto it = ex.request().find(http::field::authorization);
         it != ex.request().end() && it->name() == http::field::authorization; ++it) {
        const std::string_view value = it->value();
        if (const auto token = sluice::parse_bearer(value)) {
            check(!token->empty(), "a bearer token is not empty");
            check(
                token->data() >= value.data() && token->data() + token->size() <= value.data() + value.size(),
                "a bearer token is part of the header");
            for (const char c : *token)
                check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f,
                      "a bearer token has no space or control");
        }
    }
    if (const auto it = ex.request().find("X-Sluice-Session"); it != ex.request().end()) {
        const std::string_view id = it->value();
        if (sluice::is_valid_session_id(id)) {
            check(!id.empty() && id.size() <= 128, "a session id has 1..128 bytes");
            for (const char c : id)
                check((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '.' || c == ':' || c == '-',
                      "a session id is [A-Za-z0-9_.:-]");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    http::request_parser<http::string_body> parser;
    sluice::limit_request_parser(parser, 64 * 1024);
    boost::system::error_code ec;
    // As http::async_read_header: the head first (Beast finds its end in the buffer it is given).
    std::size_t used = parser.put(net::buffer(bytes.data(), bytes.size()), ec);
    if (ec || !parser.is_header_done()) return 0;  // Beast rejects it (400/431/413) or wants more

    auto& head = parser.get();
    const std::string before(head.target());
    sluice::to_origin_form(head);
    if (iequals_prefix(before, "http://") || iequals_prefix(before, "https://"))
        check(head.target().starts_with("/"), "an absolute-form target becomes origin-form");
    if (const auto framing = sluice::framing_error(head)) {
        check(framing->code == 400 || framing->code == 501, "a framing error is 400 or 501");
        check(!framing->message.empty(), "a framing error has a message");
        return 0;
    }
    const auto hosts = head.count(http::field::host);
    check(hosts <= 1 && (head.version() < 11 || hosts == 1), "one Host header on HTTP/1.1");
    if (head.count(http::field::transfer_encoding) != 0) {
        check(head.version() >= 11, "Transfer-Encoding only on HTTP/1.1");
        check(head.count(http::field::content_length) == 0, "never Transfer-Encoding and Content-Length");
        check(parser.chunked(), "an accepted Transfer-Encoding is one Beast reads as chunked");
    }
    // Then the body, as http::async_read.
    parser.eager(true);
    while (!parser.is_done() && used < bytes.size()) {
        const auto n = parser.put(net::buffer(bytes.data() + used, bytes.size() - used), ec);
        used += n;
        if (ec || n == 0) break;
    }
    if (!parser.is_done() || ec) return 0;  // a body cut short or malformed: 400, no handler
    check_request(parser.release(), parser);
    return 0;
}
