// usage_ledger against the real SQLite store: counts added from many threads arrive merged and
// exact, by themselves within the interval, at once on flush(), and a store that fails keeps them
// until it accepts writes again.
#include "turn/usage_ledger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/ids.h"

namespace sluice {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// The real store, with a switch that makes record_usage fail as an unreachable store does.
class switchable_store : public store {
  public:
    explicit switchable_store(std::unique_ptr<store> inner) : inner_(std::move(inner)) {}
    std::atomic<bool> down{false};
    std::atomic<int> writes{0};

    void create_key(const api_key_record& r) override { inner_->create_key(r); }
    std::optional<api_key_record> find_key_by_hash(const std::string& h) override {
        return inner_->find_key_by_hash(h);
    }
    std::vector<api_key_record> list_keys() override { return inner_->list_keys(); }
    bool revoke_key(const std::string& id) override { return inner_->revoke_key(id); }
    std::optional<std::string> session_owner(const std::string& s) override {
        return inner_->session_owner(s);
    }
    std::vector<stored_message> load_messages(const std::string& s) override {
        return inner_->load_messages(s);
    }
    void append_messages(const std::string& s, const std::string& k,
                         const std::vector<stored_message>& m) override {
        inner_->append_messages(s, k, m);
    }
    bool delete_session(const std::string& s) override { return inner_->delete_session(s); }
    rate_decision admit_request(const std::string& k, const limits_config& l, std::int64_t now) override {
        return inner_->admit_request(k, l, now);
    }
    void add_tokens(const std::string& k, int t, std::int64_t now) override { inner_->add_tokens(k, t, now); }
    bool acquire_stream(const std::string& k, int m) override { return inner_->acquire_stream(k, m); }
    void release_stream(const std::string& k) override { inner_->release_stream(k); }
    void record_usage(const usage_delta& d) override {
        if (down) throw store_unavailable("connection refused");
        ++writes;
        inner_->record_usage(d);
    }
    std::vector<usage_row> usage(const std::optional<std::string>& k) override { return inner_->usage(k); }
    bool healthy() override { return !down; }

  private:
    std::unique_ptr<store> inner_;
};

class usage_ledger_test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("sluice-ledger-" + random_token(12));
        std::filesystem::create_directories(dir_);
        db_ = std::make_unique<switchable_store>(open_store({.url = "sqlite://" + (dir_ / "s.db").string()}));
    }
    void TearDown() override {
        pool_.join();
        db_.reset();
        std::filesystem::remove_all(dir_);
    }

    usage_row row(const std::string& key, const std::string& model) {
        for (const auto& r : db_->usage(std::nullopt))
            if (r.key_id == key && r.model == model) return r;
        return {};
    }

    std::filesystem::path dir_;
    std::unique_ptr<switchable_store> db_;
    net::thread_pool pool_{1};
};

TEST_F(usage_ledger_test, counts_from_many_threads_arrive_merged_and_exact) {
    usage_ledger ledger{*db_, pool_, std::chrono::hours(1)};  // only flush() writes
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&ledger, t] {
            for (int i = 0; i < 500; ++i) {
                ledger.add({.key_id = t % 2 ? "key_a" : "key_b",
                            .model = "m",
                            .requests = 1,
                            .prompt_tokens = 2,
                            .completion_tokens = 3,
                            .cancelled = i % 10 == 0 ? 1 : 0,
                            .errors = i % 25 == 0 ? 1 : 0});
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(ledger.pending(), 2u);
    EXPECT_EQ(row("key_a", "m").requests, 0);  // nothing written before the flush
    ledger.flush();
    EXPECT_EQ(ledger.pending(), 0u);
    EXPECT_EQ(db_->writes.load(), 2);  // one write per key and model, not per request
    for (const char* key : {"key_a", "key_b"}) {
        const auto r = row(key, "m");
        EXPECT_EQ(r.requests, 1000);
        EXPECT_EQ(r.prompt_tokens, 2000);
        EXPECT_EQ(r.completion_tokens, 3000);
        EXPECT_EQ(r.cancelled, 100);
        EXPECT_EQ(r.errors, 40);
    }
}

TEST_F(usage_ledger_test, writes_by_itself_within_the_interval) {
    usage_ledger ledger{*db_, pool_, 20ms};
    ledger.add({.key_id = "key_a", .model = "m", .requests = 1, .completion_tokens = 7});
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (row("key_a", "m").requests == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(row("key_a", "m").requests, 1);
    EXPECT_EQ(row("key_a", "m").completion_tokens, 7);
    EXPECT_EQ(ledger.pending(), 0u);
}

TEST_F(usage_ledger_test, a_failing_store_keeps_the_counts_until_it_recovers) {
    usage_ledger ledger{*db_, pool_, std::chrono::hours(1)};
    ledger.add({.key_id = "key_a", .model = "m", .requests = 1, .prompt_tokens = 1});
    db_->down = true;
    EXPECT_THROW(ledger.flush(), store_unavailable);
    EXPECT_EQ(ledger.pending(), 1u);
    ledger.add({.key_id = "key_a", .model = "m", .requests = 1, .prompt_tokens = 1});
    db_->down = false;
    ledger.flush();
    EXPECT_EQ(ledger.pending(), 0u);
    EXPECT_EQ(row("key_a", "m").requests, 2);
    EXPECT_EQ(row("key_a", "m").prompt_tokens, 2);
}

TEST_F(usage_ledger_test, what_is_pending_is_written_when_the_ledger_goes) {
    {
        usage_ledger ledger{*db_, pool_, std::chrono::hours(1)};
        ledger.add({.key_id = "key_b", .model = "m", .requests = 3});
    }
    EXPECT_EQ(row("key_b", "m").requests, 3);
}

}  // namespace
}  // namespace sluice
