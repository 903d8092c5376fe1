#include "http/framing.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

namespace http = boost::beast::http;

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim_ows(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

api_error bad_framing(std::string message) {
    return {.code = 400, .message = std::move(message)};
}

}  // namespace

std::optional<api_error> framing_error(const http_request& head) {
    const auto hosts = head.count(http::field::host);
    if (head.version() >= 11 && hosts != 1) {
        return bad_framing(hosts == 0 ? "malformed HTTP request: HTTP/1.1 needs a Host header"
                                      : "malformed HTTP request: more than one Host header");
    }
    if (hosts > 1) return bad_framing("malformed HTTP request: more than one Host header");
    if (head.count(http::field::transfer_encoding) == 0) return std::nullopt;
    if (head.version() < 11) {
        return bad_framing("malformed HTTP request: Transfer-Encoding is not allowed in HTTP/1.0");
    }
    if (head.count(http::field::content_length) != 0) {
        return bad_framing("malformed HTTP request: both Transfer-Encoding and Content-Length");
    }
    // The codings of every Transfer-Encoding line, in order; only a lone `chunked` is understood.
    std::vector<std::string_view> codings;
    auto [first, last] = head.equal_range(http::field::transfer_encoding);
    for (auto it = first; it != last; ++it) {
        std::string_view list = it->value();
        while (!list.empty()) {
            const auto comma = list.find(',');
            const auto coding = trim_ows(list.substr(0, comma));
            if (!coding.empty()) codings.push_back(coding);
            list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        }
    }
    if (codings.empty() || !iequals(codings.back(), "chunked")) {
        return bad_framing("malformed HTTP request: the last Transfer-Encoding must be chunked");
    }
    if (codings.size() > 1) {
        return api_error{.code = 501, .message = "Transfer-Encoding other than chunked is not supported"};
    }
    return std::nullopt;
}

void to_origin_form(http_request& head) {
    const std::string_view target = head.target();
    const auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return;
    const auto scheme = target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return;
    const auto authority = target.substr(scheme_end + 3);
    const auto path_start = authority.find_first_of("/?");
    // "/" then the path; a bare query gets the root path (appended, not inserted: g++ 12 sees a
    // -Wrestrict overlap in a string insert at 0 that is not there).
    std::string origin_form = "/";
    if (path_start != std::string_view::npos) {
        const auto rest = authority.substr(path_start);
        origin_form.append(rest.front() == '/' ? rest.substr(1) : rest);
    }
    head.target(origin_form);
}

}  // namespace sluice
