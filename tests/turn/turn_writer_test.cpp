// turn_writer against the real SQLite store: a lone turn is written at once; the turns that arrive
// while a write runs go together in the next transaction (at most k_max_batch); a conflicting turn
// fails alone; a failed transaction fails its batch and the writer goes on with the next.
//
// The store sits behind a gate: a batch that reaches append_many while the gate is closed waits
// there, so the test knows exactly which turns arrive during a write. The callers run on an
// io_context driven by the test thread: poll() runs each new append up to its wait (it is queued).
#include "turn/turn_writer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "core/metrics.h"
#include "store/sqlite_store.h"

namespace sluice {
namespace {

namespace net = boost::asio;

// sqlite_store with a gate before append_many.
class gated_store : public store {
  public:
    explicit gated_store(sqlite_store& inner) : inner_(inner) {}

    void close_gate() {
        std::lock_guard lock{mutex_};
        closed_ = true;
    }
    void open_gate() {
        std::lock_guard lock{mutex_};
        closed_ = false;
        changed_.notify_all();
    }
    // Returns once a batch waits at the closed gate.
    void wait_for_held_batch() {
        std::unique_lock lock{mutex_};
        changed_.wait(lock, [this] { return held_ > 0; });
    }
    std::vector<std::size_t> batch_sizes() const {
        std::lock_guard lock{mutex_};
        return sizes_;
    }

    void append_many(std::vector<session_append>& batch) override {
        {
            std::unique_lock lock{mutex_};
            sizes_.push_back(batch.size());
            if (closed_) {
                ++held_;
                changed_.notify_all();
                changed_.wait(lock, [this] { return !closed_; });
                --held_;
            }
        }
        inner_.append_many(batch);
    }

    void create_key(const api_key_record& r) override { inner_.create_key(r); }
    std::optional<api_key_record> find_key_by_hash(const std::string& h) override {
        return inner_.find_key_by_hash(h);
    }
    std::vector<api_key_record> list_keys() override { return inner_.list_keys(); }
    bool revoke_key(const std::string& id) override { return inner_.revoke_key(id); }
    std::optional<std::string> session_owner(const std::string& s) override {
        return inner_.session_owner(s);
    }
    std::vector<stored_message> load_messages(const std::string& s) override {
        return inner_.load_messages(s);
    }
    void append_messages(const std::string& s, const std::string& k,
                         const std::vector<stored_message>& m) override {
        inner_.append_messages(s, k, m);
    }
    bool delete_session(const std::string& s) override { return inner_.delete_session(s); }
    rate_decision admit_request(const std::string& k, const limits_config& l, std::int64_t now) override {
        return inner_.admit_request(k, l, now);
    }
    void add_tokens(const std::string& k, int t, std::int64_t now) override { inner_.add_tokens(k, t, now); }
    bool acquire_stream(const std::string& k, int m) override { return inner_.acquire_stream(k, m); }
    void release_stream(const std::string& k) override { inner_.release_stream(k); }
    void record_usage(const usage_delta& d) override { inner_.record_usage(d); }
    std::vector<usage_row> usage(const std::optional<std::string>& k) override { return inner_.usage(k); }
    bool healthy() override { return inner_.healthy(); }

  private:
    sqlite_store& inner_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool closed_ = false;
    int held_ = 0;
    std::vector<std::size_t> sizes_;
};

session_append turn(std::string session_id, std::string text = "hi", std::string key_id = "key_a") {
    return {.session_id = std::move(session_id),
            .key_id = std::move(key_id),
            .messages = {{.role = "user", .content = text, .created_ms = 1},
                         {.role = "assistant",
                          .content = "answer to " + text,
                          .model = "m",
                          .finish_reason = "stop",
                          .created_ms = 1}}};
}

std::vector<session_append> turns(int n) {
    std::vector<session_append> out;
    for (int i = 0; i < n; ++i) out.push_back(turn("s" + std::to_string(i)));
    return out;
}

// One caller: appends, then notes whether it was resumed on its own executor.
net::awaitable<void> append_from(turn_writer& writer, session_append& entry, net::io_context& home,
                                 bool& resumed_at_home) {
    auto written = writer.append(entry);
    co_await std::move(written);
    resumed_at_home = home.get_executor().running_in_this_thread();
}

class turn_writer_test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() / ("sluice-turns-" + random_token(12));
        std::filesystem::create_directories(dir_);
        sqlite_ = std::make_unique<sqlite_store>(dir_ / "s.db");
        gated_ = std::make_unique<gated_store>(*sqlite_);
        writer_ = std::make_unique<turn_writer>(*gated_, pool_, figures_);
    }
    void TearDown() override {
        gated_->open_gate();
        pool_.join();
        writer_.reset();
        gated_.reset();
        sqlite_.reset();
        std::filesystem::remove_all(dir_);
    }

    // Starts the appends of entries[from, to) and runs each up to its wait.
    void start(std::vector<session_append>& entries, std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            net::co_spawn(io_, append_from(*writer_, entries[i], io_, at_home_[&entries[i]]),
                          [](std::exception_ptr error) {
                              if (error) std::rethrow_exception(error);
                          });
        }
        io_.restart();
        io_.poll();
    }
    // Runs every started append to its end.
    void finish() {
        io_.restart();
        io_.run();
    }
    bool resumed_at_home(const session_append& entry) { return at_home_[&entry]; }

    std::filesystem::path dir_;
    std::unique_ptr<sqlite_store> sqlite_;
    std::unique_ptr<gated_store> gated_;
    metrics::registry figures_;
    net::thread_pool pool_{2};
    net::io_context io_;
    std::unique_ptr<turn_writer> writer_;
    std::map<const session_append*, bool> at_home_;
};

TEST_F(turn_writer_test, a_lone_turn_is_written_at_once) {
    auto entries = turns(1);
    start(entries, 0, 1);
    finish();
    EXPECT_FALSE(entries[0].error);
    EXPECT_TRUE(resumed_at_home(entries[0]));
    const auto stored = sqlite_->load_messages("s0");
    ASSERT_EQ(stored.size(), 2u);
    EXPECT_EQ(stored[0].content, "hi");
    EXPECT_EQ(stored[1].content, "answer to hi");
    EXPECT_EQ(gated_->batch_sizes(), std::vector<std::size_t>{1});  // it waited for no company
    EXPECT_EQ(sqlite_->append_commits(), 1u);
    EXPECT_EQ(figures_.turn_batches().value(), 1u);
    EXPECT_EQ(figures_.turns_stored().value(), 1u);
}

TEST_F(turn_writer_test, turns_that_arrive_during_a_write_share_the_next_transaction) {
    auto entries = turns(41);
    gated_->close_gate();
    start(entries, 0, 1);
    gated_->wait_for_held_batch();
    start(entries, 1, 41);
    gated_->open_gate();
    finish();
    for (const auto& entry : entries) {
        EXPECT_FALSE(entry.error) << entry.session_id;
        EXPECT_TRUE(resumed_at_home(entry)) << entry.session_id;
        EXPECT_EQ(sqlite_->load_messages(entry.session_id).size(), 2u) << entry.session_id;
    }
    EXPECT_EQ(gated_->batch_sizes(), (std::vector<std::size_t>{1, 40}));
    EXPECT_EQ(sqlite_->append_commits(), 2u);
    EXPECT_EQ(figures_.turn_batches().value(), 2u);
    EXPECT_EQ(figures_.turns_stored().value(), 41u);
}

TEST_F(turn_writer_test, a_wave_bigger_than_the_cap_is_split) {
    static_assert(turn_writer::k_max_batch == 128);
    auto entries = turns(301);
    gated_->close_gate();
    start(entries, 0, 1);
    gated_->wait_for_held_batch();
    start(entries, 1, 301);
    gated_->open_gate();
    finish();
    for (const auto& entry : entries) EXPECT_FALSE(entry.error) << entry.session_id;
    EXPECT_EQ(gated_->batch_sizes(), (std::vector<std::size_t>{1, 128, 128, 44}));
    EXPECT_EQ(sqlite_->append_commits(), 4u);
    EXPECT_EQ(figures_.turns_stored().value(), 301u);
    EXPECT_EQ(sqlite_->load_messages("s300").size(), 2u);
}

TEST_F(turn_writer_test, a_conflicting_turn_fails_alone) {
    sqlite_->append_messages("owned", "key_b", {{.role = "user", .content = "mine", .created_ms = 1}});
    std::vector<session_append> entries{turn("s0"), turn("s1"), turn("owned", "intruder"), turn("s2")};
    gated_->close_gate();
    start(entries, 0, 1);
    gated_->wait_for_held_batch();
    start(entries, 1, entries.size());
    gated_->open_gate();
    finish();
    EXPECT_FALSE(entries[0].error);
    EXPECT_FALSE(entries[1].error);
    ASSERT_TRUE(entries[2].error);
    EXPECT_THROW(std::rethrow_exception(entries[2].error), session_conflict);
    EXPECT_FALSE(entries[3].error);
    EXPECT_EQ(sqlite_->load_messages("s1").size(), 2u);
    EXPECT_EQ(sqlite_->load_messages("s2").size(), 2u);
    EXPECT_EQ(sqlite_->load_messages("owned").size(), 1u);
    EXPECT_EQ(sqlite_->session_owner("owned"), "key_b");
    EXPECT_EQ(gated_->batch_sizes(), (std::vector<std::size_t>{1, 3}));
    EXPECT_EQ(sqlite_->append_commits(), 3u);  // the owner's append, then one per batch
    EXPECT_EQ(figures_.turns_stored().value(), 3u);
}

TEST_F(turn_writer_test, a_failed_transaction_fails_its_batch_and_the_writer_goes_on) {
    // An insert of "boom" fails inside SQLite (as a full disk would), failing the transaction.
    {
        sqlite3* handle = nullptr;
        ASSERT_EQ(sqlite3_open((dir_ / "s.db").c_str(), &handle), SQLITE_OK);
        EXPECT_EQ(
            sqlite3_exec(handle,
                         "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.content = 'boom' "
                         "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
        sqlite3_close(handle);
    }
    std::vector<session_append> entries{turn("s0"), turn("s1"), turn("s2", "boom"), turn("s3"), turn("s4")};
    gated_->close_gate();
    start(entries, 0, 1);
    gated_->wait_for_held_batch();
    start(entries, 1, 4);
    gated_->open_gate();
    finish();
    EXPECT_FALSE(entries[0].error);
    for (std::size_t i = 1; i < 4; ++i) {
        ASSERT_TRUE(entries[i].error) << i;
        EXPECT_THROW(std::rethrow_exception(entries[i].error), store_unavailable) << i;
        EXPECT_TRUE(sqlite_->load_messages(entries[i].session_id).empty()) << i;
    }
    // The next turn finds the writer idle and is stored.
    start(entries, 4, 5);
    finish();
    EXPECT_FALSE(entries[4].error);
    EXPECT_EQ(sqlite_->load_messages("s4").size(), 2u);
    EXPECT_EQ(gated_->batch_sizes(), (std::vector<std::size_t>{1, 3, 1}));
    EXPECT_EQ(sqlite_->append_commits(), 2u);
    EXPECT_EQ(figures_.turn_batches().value(), 3u);
    EXPECT_EQ(figures_.turns_stored().value(), 2u);
}

TEST_F(turn_writer_test, turns_from_many_threads_are_all_stored_each_resumed_at_home) {
    constexpr int k_threads = 4;
    constexpr int k_turns_each = 200;
    std::vector<std::unique_ptr<net::io_context>> homes;
    std::vector<std::vector<session_append>> entries(k_threads);
    std::vector<std::deque<bool>> at_home(k_threads, std::deque<bool>(k_turns_each, false));
    for (int t = 0; t < k_threads; ++t) {
        homes.push_back(std::make_unique<net::io_context>(1));
        for (int i = 0; i < k_turns_each; ++i)
            entries[t].push_back(turn("t" + std::to_string(t) + "-" + std::to_string(i)));
    }
    for (int t = 0; t < k_threads; ++t) {
        for (int i = 0; i < k_turns_each; ++i) {
            net::co_spawn(*homes[t], append_from(*writer_, entries[t][i], *homes[t], at_home[t][i]),
                          net::detached);
        }
    }
    std::vector<std::thread> threads;
    for (auto& home : homes) threads.emplace_back([&home] { home->run(); });
    for (auto& thread : threads) thread.join();
    std::uint64_t stored = 0;
    for (int t = 0; t < k_threads; ++t) {
        for (int i = 0; i < k_turns_each; ++i) {
            EXPECT_FALSE(entries[t][i].error) << t << " " << i;
            EXPECT_TRUE(at_home[t][i]) << t << " " << i;
        }
        stored += static_cast<std::uint64_t>(k_turns_each);
    }
    EXPECT_EQ(figures_.turns_stored().value(), stored);
    EXPECT_EQ(sqlite_->append_commits(), figures_.turn_batches().value());
    EXPECT_LE(figures_.turn_batches().value(), stored);
    EXPECT_EQ(sqlite_->load_messages("t3-199").size(), 2u);
}

}  // namespace
}  // namespace sluice
