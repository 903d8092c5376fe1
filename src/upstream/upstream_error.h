#pragma once
// Why an upstream exchange failed, as a value: the provider maps each kind to a client-facing status.
#include <string>
#include <string_view>

namespace sluice {

enum class upstream_failure {
    none,
    connect,             // refused, unreachable, DNS failure
    connect_timeout,     // connect (and TLS handshake) took longer than connect_timeout_ms
    tls,                 // handshake or certificate verification failed
    pool_timeout,        // every pooled connection stayed busy until the connect deadline
    first_byte_timeout,  // no response head within first_byte_timeout_ms
    idle_timeout,        // no body bytes within idle_timeout_ms
    request_timeout,     // the whole exchange passed request_timeout_s
    closed,              // the upstream closed or reset the connection mid-message
    protocol,            // the upstream sent something that is not HTTP/1.1
    cancelled,           // our caller cancelled (client gone)
};

inline std::string_view to_string(upstream_failure kind) {
    switch (kind) {
        case upstream_failure::none:
            return "none";
        case upstream_failure::connect:
            return "connect failed";
        case upstream_failure::connect_timeout:
            return "connect timed out";
        case upstream_failure::tls:
            return "TLS failed";
        case upstream_failure::pool_timeout:
            return "no free upstream connection";
        case upstream_failure::first_byte_timeout:
            return "no response in time";
        case upstream_failure::idle_timeout:
            return "stream stalled";
        case upstream_failure::request_timeout:
            return "request timed out";
        case upstream_failure::closed:
            return "connection closed";
        case upstream_failure::protocol:
            return "protocol error";
        case upstream_failure::cancelled:
            return "cancelled";
    }
    return "unknown";
}

struct upstream_error {
    upstream_failure kind = upstream_failure::none;
    std::string detail;  // for logs: what failed and where; never a header value

    explicit operator bool() const { return kind != upstream_failure::none; }
};

}  // namespace sluice
