#pragma once
// Identifiers, API keys and their hashes.
#include <string>
#include <string_view>

namespace sluice {

// `len` URL-safe random characters from a CSPRNG (OpenSSL RAND_bytes).
std::string random_token(std::size_t len);

// A new API key: "sk-" + 40 URL-safe characters.
std::string generate_api_key();

// Lower-case hex SHA-256; keys are stored and looked up only by this.
std::string sha256_hex(std::string_view data);

// Equality in time independent of where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

// A short id for sessions, keys and requests: prefix + 20 random characters.
std::string new_id(std::string_view prefix);

}  // namespace sluice
