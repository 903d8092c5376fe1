#include "core/ids.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace sluice {

namespace {
constexpr std::string_view k_url_safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

std::string random_token(std::size_t len) {
    std::string bytes(len, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(len)) != 1) {
        throw std::runtime_error("the system random source failed");
    }
    std::string out(len, '\0');
    // 64 symbols: the low six bits of each byte map uniformly.
    for (std::size_t i = 0; i < len; ++i) out[i] = k_url_safe[static_cast<unsigned char>(bytes[i]) & 63U];
    return out;
}

std::string generate_api_key() {
    return "sk-" + random_token(40);
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &digest_len, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(digest_len * 2);
    for (unsigned int i = 0; i < digest_len; ++i) {
        out.push_back(k_hex[digest[i] >> 4]);
        out.push_back(k_hex[digest[i] & 15]);
    }
    return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string new_id(std::string_view prefix) {
    return std::string(prefix) + random_token(20);
}

}  // namespace sluice
