// Redis going away must cost requests a clear store_unavailable, never a crash, and service must
// come back by itself when Redis does.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/api_error.h"
#include "store/store.h"
#include "store/test_support.h"

namespace sluice {
namespace {

using testing::redis_server;

#define START_OR_SKIP(server, ...)                                                                    \
    do {                                                                                              \
        if (const auto why = (server).start(__VA_ARGS__); !why.empty()) {                             \
            GTEST_SKIP() << "\n\n*** SKIPPING a Redis fault test: redis-server cannot start (" << why \
                         << "). Install it with `make deps`. ***\n";                                  \
        }                                                                                             \
    } while (false)

api_key_record sample_key(const std::string& id) {
    return {.id = id, .name = "n", .hash = "hash_" + id, .created_ms = 1};
}

TEST(redis_faults, calls_throw_while_redis_is_down_and_resume_by_themselves) {
    redis_server server;
    START_OR_SKIP(server);
    auto s = open_store({.url = server.url()});
    s->create_key(sample_key("key_a"));
    ASSERT_TRUE(s->acquire_stream("key_a", 5));
    ASSERT_TRUE(s->healthy());

    server.stop();
    EXPECT_FALSE(s->healthy());
    EXPECT_THROW(s->find_key_by_hash("hash_key_a"), store_unavailable);
    EXPECT_THROW(s->list_keys(), store_unavailable);
    EXPECT_THROW(s->create_key(sample_key("key_b")), store_unavailable);
    EXPECT_THROW(s->append_messages("s1", "key_a", {{.role = "user", .content = "hi"}}), store_unavailable);
    EXPECT_THROW(s->load_messages("s1"), store_unavailable);
    EXPECT_THROW(s->session_owner("s1"), store_unavailable);
    EXPECT_THROW(s->admit_request("key_a", {.requests_per_minute = 5}, 0), store_unavailable);
    EXPECT_THROW(s->add_tokens("key_a", 5, 0), store_unavailable);
    EXPECT_THROW(s->acquire_stream("key_a", 5), store_unavailable);
    EXPECT_NO_THROW(s->release_stream("key_a")) << "clean-up paths must not throw";
    EXPECT_THROW(s->record_usage({"key_a", "local", 1}), store_unavailable);
    EXPECT_THROW(s->usage(std::nullopt), store_unavailable);
    try {
        s->find_key_by_hash("hash_key_a");
    } catch (const store_unavailable& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(server.port())), std::string::npos)
            << e.what();
    }

    // Same port, empty data (no persistence): the very next call reconnects.
    ASSERT_EQ(server.start(), "");
    EXPECT_TRUE(s->healthy());
    s->create_key(sample_key("key_c"));
    EXPECT_TRUE(s->find_key_by_hash("hash_key_c"));
    EXPECT_TRUE(s->admit_request("key_c", {.requests_per_minute = 5}, 0).allowed);
}

TEST(redis_faults, a_restart_between_calls_costs_no_call) {
    redis_server server;
    START_OR_SKIP(server);
    auto s = open_store({.url = server.url()});
    ASSERT_TRUE(s->healthy());
    server.stop();
    ASSERT_EQ(server.start(), "");
    // The old connection is dead; the store notices before sending and reconnects.
    s->create_key(sample_key("key_a"));
    EXPECT_TRUE(s->find_key_by_hash("hash_key_a"));
}

TEST(redis_faults, a_slot_released_while_redis_is_down_is_freed_when_it_is_back) {
    redis_server server;
    START_OR_SKIP(server);
    auto first = open_store({.url = server.url()});
    auto second = open_store({.url = server.url()});
    ASSERT_TRUE(first->acquire_stream("key_a", 1));

    server.stop_saving();
    EXPECT_NO_THROW(first->release_stream("key_a"));
    ASSERT_EQ(server.start(), "");  // the saved data, slot included, is back

    EXPECT_FALSE(second->acquire_stream("key_a", 1)) << "the slot is still held in Redis";
    EXPECT_TRUE(first->acquire_stream("key_a", 1)) << "the pending release went first";
    EXPECT_FALSE(second->acquire_stream("key_a", 1));
    first->release_stream("key_a");
    EXPECT_TRUE(second->acquire_stream("key_a", 1));
}

// A Redis that stops answering (but keeps the connection open) costs a call its command timeout,
// not a hang.
TEST(redis_faults, a_hung_redis_times_out) {
    redis_server server;
    START_OR_SKIP(server);
    auto s = open_store({.url = server.url()});
    s->create_key(sample_key("key_a"));
    server.pause();
    EXPECT_FALSE(s->healthy());
    EXPECT_THROW(s->find_key_by_hash("hash_key_a"), store_unavailable);
    server.resume();
    EXPECT_TRUE(s->find_key_by_hash("hash_key_a"));
}

TEST(redis_faults, open_fails_cleanly_when_nothing_listens) {
    redis_server server;
    START_OR_SKIP(server);
    const auto url = server.url();
    server.stop();
    try {
        open_store({.url = url});
        FAIL() << "open_store succeeded without a server";
    } catch (const store_unavailable& e) {
        EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
    }
}

TEST(redis_faults, password_comes_from_the_named_environment_variable) {
    const std::string password = "pw-s3cret-for-test";
    redis_server server;
    START_OR_SKIP(server, {"--requirepass", password});

    EXPECT_THROW(open_store({.url = server.url(), .password_env = "SLUICE_TEST_UNSET_REDIS_PW"}),
                 config_error);

    ::setenv("SLUICE_TEST_REDIS_PW", password.c_str(), 1);
    auto s = open_store({.url = server.url(2), .password_env = "SLUICE_TEST_REDIS_PW"});
    EXPECT_TRUE(s->healthy());
    s->create_key(sample_key("key_a"));
    EXPECT_TRUE(s->find_key_by_hash("hash_key_a"));

    ::setenv("SLUICE_TEST_REDIS_PW", "wrong-password-xyz", 1);
    try {
        open_store({.url = server.url(), .password_env = "SLUICE_TEST_REDIS_PW"});
        FAIL() << "a wrong password was accepted";
    } catch (const store_unavailable& e) {
        EXPECT_EQ(std::string(e.what()).find("wrong-password-xyz"), std::string::npos)
            << "secret in an error";
    }
    // Without a password the server refuses: a clear error, not a crash.
    EXPECT_THROW(open_store({.url = server.url()})->find_key_by_hash("x"), store_unavailable);
    ::unsetenv("SLUICE_TEST_REDIS_PW");
}

}  // namespace
}  // namespace sluice
