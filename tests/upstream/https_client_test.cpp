// The client over TLS against an in-test server with a certificate made on the spot: trusted and
// matching → the request goes through; wrong name or unknown issuer → a TLS failure, never data.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/http/write.hpp>
#include <memory>

#include "upstream/http_client.h"
#include "upstream/test_server.h"

namespace sluice {
namespace {

using namespace sluice::testing;
namespace ssl = net::ssl;

struct test_certificate {
    std::string cert_pem;
    std::string key_pem;
};

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

// A self-signed certificate for `dns_name`, valid for an hour.
test_certificate make_certificate(const std::string& dns_name) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(dns_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:" + dns_name},
                              std::pair{NID_basic_constraints, std::string("critical,CA:TRUE")}}) {
        X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
        X509_add_ext(cert.get(), extension, -1);
        X509_EXTENSION_free(extension);
    }
    X509_sign(cert.get(), key.get(), EVP_sha256());

    std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_X509(cert_bio.get(), cert.get());
    PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    return {bio_text(cert_bio.get()), bio_text(key_bio.get())};
}

class https_client_test : public ::testing::Test {
  protected:
    https_client_test() : certificate_(make_certificate("localhost")), server_tls_(ssl::context::tls_server) {
        server_tls_.use_certificate_chain(net::buffer(certificate_.cert_pem));
        server_tls_.use_private_key(net::buffer(certificate_.key_pem), ssl::context::pem);
    }

    // Serves one request over TLS; a failed handshake just ends the connection.
    net::awaitable<void> serve(tcp::socket socket) {
        ssl::stream<tcp::socket> stream(std::move(socket), server_tls_);
        auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::server, k_tuple);
        if (handshake_error) co_return;
        boost::beast::flat_buffer buffer;
        boost::beast::http::request<boost::beast::http::string_body> request;
        auto [read_error, read] = co_await boost::beast::http::async_read(stream, buffer, request, k_tuple);
        if (read_error) co_return;
        std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure";
        co_await net::async_write(stream, net::buffer(response), k_tuple);
    }

    net::awaitable<std::pair<std::string, upstream_error>> fetch(http_client& client) {
        upstream_request request;
        request.target = "/v1/chat/completions";
        request.body = "{}";
        auto opened = co_await client.open(std::move(request));
        if (opened.error) co_return std::pair{std::string(), opened.error};
        co_return co_await opened.response->read_all(1024);
    }

    http_client_options options(bool trust_test_ca) {
        http_client_options out;
        out.connect_timeout = std::chrono::seconds(5);
        if (trust_test_ca) out.extra_ca_pem = certificate_.cert_pem;
        return out;
    }

    test_certificate certificate_;
    ssl::context server_tls_;
    net::io_context io_;
    test_server server_{io_, [this](tcp::socket socket) { return serve(std::move(socket)); }};
};

TEST_F(https_client_test, a_trusted_certificate_for_the_host_name_works) {
    http_client client(*parse_url("https://localhost:" + std::to_string(server_.port())), options(true));
    auto [body, error] = run(io_, fetch(client));
    ASSERT_FALSE(error) << error.detail;
    EXPECT_EQ(body, "secure");
}

TEST_F(https_client_test, a_certificate_for_another_name_is_refused) {
    http_client client(*parse_url("https://127.0.0.1:" + std::to_string(server_.port())), options(true));
    auto [body, error] = run(io_, fetch(client));
    EXPECT_EQ(error.kind, upstream_failure::tls) << error.detail;
    EXPECT_TRUE(body.empty());
}

TEST_F(https_client_test, an_unknown_issuer_is_refused) {
    http_client client(*parse_url("https://localhost:" + std::to_string(server_.port())), options(false));
    auto [body, error] = run(io_, fetch(client));
    EXPECT_EQ(error.kind, upstream_failure::tls) << error.detail;
}

}  // namespace
}  // namespace sluice
