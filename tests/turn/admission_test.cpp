// admit() and stream_slot against the real SQLite store: each limit refuses with 429 and a
// Retry-After, a settled slot frees its stream and counts its tokens, a failing store is a 503.
#include "turn/admission.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <variant>

#include "core/ids.h"
#include "store/store.h"

namespace sluice {
namespace {

namespace net = boost::asio;

// Answers every call by throwing, as a store that went away does (release_stream never throws).
class unreachable_store : public store {
  public:
    void create_key(const api_key_record&) override { fail(); }
    std::optional<api_key_record> find_key_by_hash(const std::string&) override { fail(); }
    std::vector<api_key_record> list_keys() override { fail(); }
    bool revoke_key(const std::string&) override { fail(); }
    std::optional<std::string> session_owner(const std::string&) override { fail(); }
    std::vector<stored_message> load_messages(const std::string&) override { fail(); }
    void append_messages(const std::string&, const std::string&,
                         const std::vector<stored_message>&) override {
        fail();
    }
    bool delete_session(const std::string&) override { fail(); }
    rate_decision admit_request(const std::string&, const limits_config&, std::int64_t) override { fail(); }
    void add_tokens(const std::string&, int, std::int64_t) override { fail(); }
    bool acquire_stream(const std::string&, int) override { fail(); }
    void release_stream(const std::string&) override {}
    void record_usage(const usage_delta&) override { fail(); }
    std::vector<usage_row> usage(const std::optional<std::string>&) override { fail(); }
    bool healthy() override { return false; }

  private:
    [[noreturn]] static void fail() { throw store_unavailable("connection refused"); }
};

class admission_test : public ::testing::Test {
  protected:
    void SetUp() override {
        // Rate windows are whole clock minutes: start each test well inside one, so a boundary can
        // never split a test's requests across two windows.
        const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
        const auto into_minute = since_epoch % std::chrono::minutes(1);
        if (into_minute > std::chrono::seconds(55))
            std::this_thread::sleep_for(std::chrono::minutes(1) - into_minute);
        dir_ = std::filesystem::temp_directory_path() / ("sluice-admission-" + random_token(12));
        std::filesystem::create_directories(dir_);
        db_ = open_store({.url = "sqlite://" + (dir_ / "s.db").string()});
    }
    void TearDown() override {
        slots_.clear();
        pool_.join();
        db_.reset();
        std::filesystem::remove_all(dir_);
    }

    // admit() for a key with these limits, run to completion; the slot (if any) is kept in slots_.
    std::optional<api_error> admit_with(store& db, const limits_config& limits) {
        apps_.push_back(std::make_unique<app_context>(app_context{cfg_, db, pool_, {}}));
        net::io_context io;
        boost::beast::tcp_stream stream{io};
        boost::beast::flat_buffer buffer;
        exchange ex{stream, buffer, http_request{}, true};
        ex.set_key({.id = "key_a", .name = "a", .limits = limits});
        auto result = net::co_spawn(io, admit(*apps_.back(), ex), net::use_future);
        io.run();
        auto admitted = result.get();
        if (auto* error = std::get_if<api_error>(&admitted)) return *error;
        slots_.push_back(std::make_unique<stream_slot>(std::move(std::get<stream_slot>(admitted))));
        return std::nullopt;
    }

    void settle(stream_slot& slot, int completion_tokens) {
        stream_outcome outcome;
        outcome.completion_tokens = completion_tokens;
        net::io_context io;
        auto done = net::co_spawn(io, slot.settle(outcome), net::use_future);
        io.run();
        done.get();
    }

    std::filesystem::path dir_;
    std::unique_ptr<store> db_;
    config cfg_;
    net::thread_pool pool_{1};
    std::vector<std::unique_ptr<app_context>> apps_;  // the slots point at theirs
    std::vector<std::unique_ptr<stream_slot>> slots_;
};

TEST_F(admission_test, requests_per_minute_refuses_the_next_with_retry_after) {
    const limits_config limits{.requests_per_minute = 2};
    EXPECT_FALSE(admit_with(*db_, limits));
    EXPECT_FALSE(admit_with(*db_, limits));
    auto refused = admit_with(*db_, limits);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, 429);
    EXPECT_GE(refused->retry_after_s, 1);
    EXPECT_LE(refused->retry_after_s, 60);
    EXPECT_NE(refused->message.find("requests_per_minute"), std::string::npos);
}

TEST_F(admission_test, a_stream_slot_is_held_until_settled) {
    const limits_config limits{.max_concurrent_streams = 1};
    ASSERT_FALSE(admit_with(*db_, limits));
    auto refused = admit_with(*db_, limits);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, 429);
    EXPECT_GE(refused->retry_after_s, 1);
    EXPECT_NE(refused->message.find("max_concurrent_streams"), std::string::npos);
    settle(*slots_.front(), 0);
    EXPECT_FALSE(admit_with(*db_, limits));
}

TEST_F(admission_test, a_dropped_slot_frees_its_stream) {
    const limits_config limits{.max_concurrent_streams = 1};
    ASSERT_FALSE(admit_with(*db_, limits));
    slots_.clear();  // e.g. the handler left on an error before streaming
    // The release was posted to the store pool, which has one thread: wait for what follows it.
    std::promise<void> drained;
    net::post(pool_, [&drained] { drained.set_value(); });
    drained.get_future().wait();
    EXPECT_FALSE(admit_with(*db_, limits));
}

TEST_F(admission_test, a_request_refused_for_its_rate_gives_back_its_stream_slot) {
    const limits_config limits{.requests_per_minute = 1, .max_concurrent_streams = 1};
    ASSERT_FALSE(admit_with(*db_, limits));
    settle(*slots_.front(), 0);
    auto refused = admit_with(*db_, limits);
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->message.find("requests_per_minute"), std::string::npos);
    // The stream slot went back: only the rate still refuses.
    EXPECT_TRUE(db_->acquire_stream("key_a", 1));
}

TEST_F(admission_test, settled_tokens_count_against_tokens_per_minute) {
    const limits_config limits{.tokens_per_minute = 10};
    ASSERT_FALSE(admit_with(*db_, limits));
    settle(*slots_.front(), 6);
    ASSERT_FALSE(admit_with(*db_, limits));
    settle(*slots_.back(), 6);
    settle(*slots_.back(), 6);  // settling twice counts once
    auto refused = admit_with(*db_, limits);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, 429);
    EXPECT_NE(refused->message.find("tokens_per_minute"), std::string::npos);
}

TEST_F(admission_test, no_limits_needs_no_store) {
    unreachable_store down;
    EXPECT_FALSE(admit_with(down, limits_config{}));
    settle(*slots_.back(), 100);  // nothing to count: no round trip, no error
}

TEST_F(admission_test, an_unreachable_store_is_a_503) {
    unreachable_store down;
    auto refused = admit_with(down, limits_config{.requests_per_minute = 5, .max_concurrent_streams = 2});
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, 503);
    EXPECT_NE(refused->message.find("unavailable"), std::string::npos);
}

TEST_F(admission_test, the_key_limits_win_over_the_config) {
    cfg_.limits.requests_per_minute = 1;
    authenticated_key own{.id = "k", .name = "k", .limits = limits_config{.requests_per_minute = 5}};
    EXPECT_EQ(effective_limits(cfg_, own).requests_per_minute, 5);
    authenticated_key plain{.id = "k", .name = "k"};
    EXPECT_EQ(effective_limits(cfg_, plain).requests_per_minute, 1);
}

}  // namespace
}  // namespace sluice
