#include "upstream/url.h"

#include <cctype>
#include <charconv>

namespace sluice {
namespace {

std::optional<url> fail(std::string* error, std::string message) {
    if (error) *error = std::move(message);
    return std::nullopt;
}

}  // namespace

std::string url::host_header() const {
    std::string name = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    bool default_port = (tls() && port == 443) || (!tls() && port == 80);
    return default_port ? name : name + ":" + std::to_string(port);
}

std::string url::origin() const {
    return scheme + "://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

std::string url::join(std::string_view suffix) const {
    std::string out = path == "/" ? std::string() : path;
    if (!suffix.starts_with('/')) out.push_back('/');
    out.append(suffix);
    return out;
}

std::optional<url> parse_url(std::string_view text, std::string* error) {
    url out;
    auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) return fail(error, "expected http:// or https://");
    out.scheme = std::string(text.substr(0, scheme_end));
    for (auto& c : out.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (out.scheme != "http" && out.scheme != "https") return fail(error, "the scheme must be http or https");
    text.remove_prefix(scheme_end + 3);

    auto authority_end = text.find_first_of("/?#");
    std::string_view authority = text.substr(0, authority_end);
    std::string_view rest = authority_end == std::string_view::npos ? "" : text.substr(authority_end);
    if (!rest.empty() && rest.front() != '/') return fail(error, "a query or fragment is not allowed");
    if (rest.find_first_of("?#") != std::string_view::npos)
        return fail(error, "a query or fragment is not allowed");
    if (authority.find('@') != std::string_view::npos) return fail(error, "user info is not allowed");

    std::string_view port_text;
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return fail(error, "unclosed '[' in the host");
        out.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail(error, "unexpected text after the host");
            port_text = after.substr(1);
        }
    } else {
        auto colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    }
    if (out.host.empty()) return fail(error, "the host is empty");
    if (out.host.find_first_of(" \t\r\n/\\") != std::string::npos)
        return fail(error, "the host has invalid characters");

    if (port_text.empty()) {
        out.port = out.tls() ? 443 : 80;
    } else {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 || value > 65535)
            return fail(error, "the port must be 1-65535");
        out.port = static_cast<std::uint16_t>(value);
    }

    out.path = rest.empty() ? "/" : std::string(rest);
    while (out.path.size() > 1 && out.path.back() == '/') out.path.pop_back();
    if (out.path.find_first_of(" \t\r\n") != std::string::npos)
        return fail(error, "the path has invalid characters");
    return out;
}

}  // namespace sluice
