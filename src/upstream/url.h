#pragma once
// The parts of an upstream base URL (`https://api.openai.com/v1`) the HTTP client needs.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct url {
    std::string scheme;  // "http" or "https"
    std::string host;    // a name or an address; IPv6 without the brackets
    std::uint16_t port = 0;
    std::string path;  // starts with '/'; no trailing '/' unless it is only "/"

    bool tls() const { return scheme == "https"; }
    // The Host header value: the port is left out when it is the scheme's default.
    std::string host_header() const;
    // Identifies a pool of interchangeable connections: scheme://host:port.
    std::string origin() const;
    // path + suffix with exactly one '/' between them: join("/chat/completions").
    std::string join(std::string_view suffix) const;
};

// Accepts http:// and https:// URLs with an optional port and path; no user info, query or fragment.
// Returns nullopt (and fills *error, when given) for anything else.
std::optional<url> parse_url(std::string_view text, std::string* error = nullptr);

}  // namespace sluice
