#pragma once
// The checks on a request head between Beast's parser and the router (no I/O here): the parser's
// limits, absolute-form targets, and the framing rules that keep request smuggling out.
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <optional>

#include "core/api_error.h"
#include "http/http_types.h"

namespace sluice {

// The largest request head sluice reads (431 past it).
inline constexpr std::size_t k_request_header_limit = 16 * 1024;

// Sets the head and body limits the server reads requests with (server.max_body_bytes).
inline void limit_request_parser(boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
                                 std::size_t max_body_bytes) {
    parser.header_limit(k_request_header_limit);
    parser.body_limit(max_body_bytes);
}

// RFC 9112 §6: whether the head frames its body unambiguously, checked before any body is read
// (Beast reads a request whose Transfer-Encoding does not end in chunked as having no body, and
// the bytes after the head would then be served as the next request: request smuggling). Also
// one Host header for HTTP/1.1. Every error returned (400, or 501 for codings besides chunked) is
// answered and the connection closed.
std::optional<api_error> framing_error(const http_request& head);

// An absolute-form target (`POST http://host/path HTTP/1.1`, RFC 9112 §3.2.2) becomes its origin
// form (`/path`): the rest of the server only ever sees that.
void to_origin_form(http_request& head);

}  // namespace sluice
