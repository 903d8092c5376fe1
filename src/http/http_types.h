#pragma once
// The HTTP message types every part of the server shares.
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace sluice {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;
using http_status = boost::beast::http::status;
using http_verb = boost::beast::http::verb;

}  // namespace sluice
