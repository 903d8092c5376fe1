// Bearer auth against the real SQLite store: valid, unknown, revoked keys; the positive cache.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <filesystem>
#include <vector>

#include "core/ids.h"
#include "http/auth.h"
#include "store/store.h"

namespace sluice {
namespace {

namespace net = boost::asio;

class auth_store : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("sluice-auth-" + random_token(12));
        std::filesystem::create_directories(dir_);
        db_ = open_store({.url = "sqlite://" + (dir_ / "s.db").string()});
        key_ = generate_api_key();
        db_->create_key({.id = "key_test", .name = "t", .hash = sha256_hex(key_), .created_ms = 1});
    }
    void TearDown() override {
        db_.reset();
        std::filesystem::remove_all(dir_);
    }
    auth_result check(authenticator& auth, std::string header) {
        net::io_context io;
        auto result = net::co_spawn(io, auth.check(header), net::use_future);
        io.run();
        return result.get();
    }

    std::filesystem::path dir_;
    std::unique_ptr<store> db_;
    std::string key_;
    net::thread_pool pool_{1};
};

TEST_F(auth_store, a_valid_key_passes) {
    authenticator auth{*db_, pool_};
    auto result = check(auth, "Bearer " + key_);
    ASSERT_TRUE(result.key);
    EXPECT_EQ(result.key->id, "key_test");
    EXPECT_EQ(result.key->name, "t");
}

TEST_F(auth_store, missing_malformed_and_unknown_are_401) {
    authenticator auth{*db_, pool_};
    const std::vector<std::string> headers{"", "Bearer", "Basic abc",
                                           "Bearer sk-unknownunknownunknownunknown", key_};
    for (const auto& header : headers) {
        auto result = check(auth, header);
        EXPECT_FALSE(result.key) << header;
        EXPECT_EQ(result.error.code, 401) << header;
        EXPECT_EQ(result.error.message.find(key_), std::string::npos);
    }
}

TEST_F(auth_store, a_revoked_key_stops_once_the_cache_entry_expires) {
    authenticator uncached{*db_, pool_, std::chrono::milliseconds{0}};
    ASSERT_TRUE(check(uncached, "Bearer " + key_).key);
    authenticator cached{*db_, pool_, std::chrono::hours{1}};
    ASSERT_TRUE(check(cached, "Bearer " + key_).key);
    ASSERT_TRUE(db_->revoke_key("key_test"));
    EXPECT_EQ(check(uncached, "Bearer " + key_).error.code, 401);
    // Within its (here: long) lifetime the positive answer stands; the server uses at most 1 s.
    EXPECT_TRUE(check(cached, "Bearer " + key_).key);
}

}  // namespace
}  // namespace sluice
