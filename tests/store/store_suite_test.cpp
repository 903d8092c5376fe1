// One suite, two stores: every behaviour of the store interface is checked against SQLite and
// against a real redis-server, so the two implementations cannot drift apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "store/test_support.h"

namespace sluice {
namespace {

using testing::redis_server;
using testing::temp_dir;

struct sqlite_backend {
    static constexpr bool k_shares_stream_slots = false;  // in memory: one process
    temp_dir dir;
    std::string skip_reason() { return {}; }
    std::unique_ptr<store> open() {
        return open_store({.url = "sqlite://" + (dir.path() / "data" / "sluice.db").string()});
    }
};

struct redis_backend {
    static constexpr bool k_shares_stream_slots = true;
    redis_server* server = nullptr;
    std::string skip_reason() {
        std::string why;
        server = testing::shared_redis(why);
        if (server) server->flush_all();
        return why;
    }
    std::unique_ptr<store> open() { return open_store({.url = server->url(3)}); }
};

template <typename Backend>
class store_suite : public ::testing::Test {
  protected:
    void SetUp() override {
        if (const auto why = backend_.skip_reason(); !why.empty()) {
            GTEST_SKIP() << "\n\n*** SKIPPING the Redis store tests: redis-server cannot start (" << why
                         << "). Install it with `make deps`. ***\n";
        }
        store_ = backend_.open();
    }

    static stored_message message(std::string role, std::string content, std::int64_t at = 1000) {
        return {.role = std::move(role),
                .content = std::move(content),
                .model = "local",
                .prompt_tokens = 3,
                .completion_tokens = 5,
                .finish_reason = "stop",
                .created_ms = at};
    }

    static api_key_record key(std::string id, std::string hash, std::int64_t created = 1) {
        return {
            .id = std::move(id), .name = "name of " + hash, .hash = std::move(hash), .created_ms = created};
    }

    Backend backend_;
    std::unique_ptr<store> store_;
};

using backends = ::testing::Types<sqlite_backend, redis_backend>;
class backend_names {
  public:
    template <typename T>
    static std::string GetName(int) {
        return std::is_same_v<T, sqlite_backend> ? "sqlite" : "redis";
    }
};
TYPED_TEST_SUITE(store_suite, backends, backend_names);

// A fixed minute boundary, so window arithmetic is exact.
constexpr std::int64_t k_minute = 1'700'000'040'000;
static_assert(k_minute % 60'000 == 0);

TYPED_TEST(store_suite, healthy_when_reachable) {
    EXPECT_TRUE(this->store_->healthy());
}

TYPED_TEST(store_suite, keys_create_find_list_revoke) {
    auto& s = *this->store_;
    auto limited = this->key("key_b", "hash_b", 2);
    limited.limits =
        limits_config{.requests_per_minute = 7, .tokens_per_minute = 0, .max_concurrent_streams = 2};
    s.create_key(this->key("key_a", "hash_a", 1));
    s.create_key(limited);

    const auto a = s.find_key_by_hash("hash_a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->id, "key_a");
    EXPECT_EQ(a->name, "name of hash_a");
    EXPECT_EQ(a->created_ms, 1);
    EXPECT_FALSE(a->revoked);
    EXPECT_FALSE(a->limits);

    const auto b = s.find_key_by_hash("hash_b");
    ASSERT_TRUE(b && b->limits);
    EXPECT_EQ(b->limits->requests_per_minute, 7);
    EXPECT_EQ(b->limits->tokens_per_minute, 0);
    EXPECT_EQ(b->limits->max_concurrent_streams, 2);

    EXPECT_FALSE(s.find_key_by_hash("hash_unknown"));

    const auto all = s.list_keys();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].id, "key_a");
    EXPECT_EQ(all[1].id, "key_b");

    EXPECT_TRUE(s.revoke_key("key_a"));
    EXPECT_FALSE(s.revoke_key("key_unknown"));
    const auto revoked = s.find_key_by_hash("hash_a");
    ASSERT_TRUE(revoked);
    EXPECT_TRUE(revoked->revoked);
    EXPECT_FALSE(s.find_key_by_hash("hash_b")->revoked);
}

TYPED_TEST(store_suite, duplicate_key_is_refused) {
    auto& s = *this->store_;
    s.create_key(this->key("key_a", "hash_a"));
    EXPECT_ANY_THROW(s.create_key(this->key("key_a", "hash_other")));
    EXPECT_ANY_THROW(s.create_key(this->key("key_other", "hash_a")));
    EXPECT_EQ(s.list_keys().size(), 1u);
}

TYPED_TEST(store_suite, session_belongs_to_the_key_that_created_it) {
    auto& s = *this->store_;
    EXPECT_FALSE(s.session_owner("s1"));
    s.append_messages("s1", "key_a", {this->message("user", "hi")});
    EXPECT_EQ(s.session_owner("s1"), "key_a");

    EXPECT_THROW(s.append_messages("s1", "key_b", {this->message("user", "intruder")}), session_conflict);
    const auto messages = s.load_messages("s1");
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].content, "hi");
    EXPECT_EQ(s.session_owner("s1"), "key_a");
}

TYPED_TEST(store_suite, appends_keep_order_and_fields) {
    auto& s = *this->store_;
    s.append_messages("s1", "key_a", {this->message("user", "one", 10)});
    auto answer = this->message("assistant", "two \"quoted\"\nline é", 11);
    answer.finish_reason = "cancelled";
    answer.prompt_tokens = 12;
    answer.completion_tokens = 40;
    s.append_messages("s1", "key_a", {answer, this->message("user", "three", 12)});
    s.append_messages("s2", "key_a", {this->message("user", "other session")});

    const auto messages = s.load_messages("s1");
    ASSERT_EQ(messages.size(), 3u);
    EXPECT_EQ(messages[0].content, "one");
    EXPECT_EQ(messages[1].role, "assistant");
    EXPECT_EQ(messages[1].content, "two \"quoted\"\nline é");
    EXPECT_EQ(messages[1].model, "local");
    EXPECT_EQ(messages[1].prompt_tokens, 12);
    EXPECT_EQ(messages[1].completion_tokens, 40);
    EXPECT_EQ(messages[1].finish_reason, "cancelled");
    EXPECT_EQ(messages[1].created_ms, 11);
    EXPECT_EQ(messages[2].content, "three");
    EXPECT_TRUE(s.load_messages("unknown").empty());
}

TYPED_TEST(store_suite, append_many_stores_each_entry_and_fails_a_conflict_alone) {
    auto& s = *this->store_;
    s.append_messages("owned", "key_b", {this->message("user", "mine")});
    std::vector<session_append> batch;
    batch.push_back({.session_id = "s1",
                     .key_id = "key_a",
                     .messages = {this->message("user", "one", 10), this->message("assistant", "two", 11)}});
    batch.push_back(
        {.session_id = "owned", .key_id = "key_a", .messages = {this->message("user", "intruder")}});
    // The same session twice in one batch: appended in batch order.
    batch.push_back(
        {.session_id = "s1", .key_id = "key_a", .messages = {this->message("user", "three", 12)}});
    batch.push_back({.session_id = "s2", .key_id = "key_c", .messages = {this->message("user", "other")}});
    s.append_many(batch);

    EXPECT_FALSE(batch[0].error);
    ASSERT_TRUE(batch[1].error);
    EXPECT_THROW(std::rethrow_exception(batch[1].error), session_conflict);
    EXPECT_FALSE(batch[2].error);
    EXPECT_FALSE(batch[3].error);

    const auto s1 = s.load_messages("s1");
    ASSERT_EQ(s1.size(), 3u);
    EXPECT_EQ(s1[0].content, "one");
    EXPECT_EQ(s1[1].content, "two");
    EXPECT_EQ(s1[2].content, "three");
    EXPECT_EQ(s.session_owner("s1"), "key_a");
    const auto owned = s.load_messages("owned");
    ASSERT_EQ(owned.size(), 1u);
    EXPECT_EQ(owned[0].content, "mine");
    EXPECT_EQ(s.session_owner("owned"), "key_b");
    EXPECT_EQ(s.session_owner("s2"), "key_c");

    std::vector<session_append> nothing;
    s.append_many(nothing);
    EXPECT_EQ(s.load_messages("s1").size(), 3u);
}

TYPED_TEST(store_suite, delete_forgets_the_session) {
    auto& s = *this->store_;
    s.append_messages("s1", "key_a", {this->message("user", "hi"), this->message("assistant", "hello")});
    EXPECT_TRUE(s.delete_session("s1"));
    EXPECT_TRUE(s.load_messages("s1").empty());
    EXPECT_FALSE(s.session_owner("s1"));
    EXPECT_FALSE(s.delete_session("s1"));
    // The id is free again: another key may start it afresh.
    s.append_messages("s1", "key_b", {this->message("user", "new")});
    EXPECT_EQ(s.session_owner("s1"), "key_b");
    EXPECT_EQ(s.load_messages("s1").size(), 1u);
}

TYPED_TEST(store_suite, responses_save_load_delete_and_expire) {
    auto& s = *this->store_;
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const stored_response saved{.id = "resp_1",
                                .key_id = "key_a",
                                .previous_response_id = "resp_0",
                                .model = "cloud",
                                .status = "completed",
                                .created_ms = now,
                                .expires_ms = now + 60'000,
                                .input_items = R"([{"type":"message"}])",
                                .response = R"({"id":"resp_1"})"};
    s.save_response(saved);
    const auto loaded = s.load_response("resp_1", now);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->key_id, "key_a");
    EXPECT_EQ(loaded->previous_response_id, "resp_0");
    EXPECT_EQ(loaded->model, "cloud");
    EXPECT_EQ(loaded->status, "completed");
    EXPECT_EQ(loaded->created_ms, now);
    EXPECT_EQ(loaded->expires_ms, now + 60'000);
    EXPECT_EQ(loaded->input_items, saved.input_items);
    EXPECT_EQ(loaded->response, saved.response);
    EXPECT_FALSE(s.load_response("resp_1", now + 60'000));  // past its retention
    EXPECT_FALSE(s.load_response("resp_2", now));
    EXPECT_TRUE(s.delete_response("resp_1"));
    EXPECT_FALSE(s.load_response("resp_1", now));
    EXPECT_FALSE(s.delete_response("resp_1"));
}

TYPED_TEST(store_suite, concurrent_appends_land_whole_and_in_order) {
    constexpr int k_threads = 6;
    constexpr int k_calls = 20;
    constexpr int k_per_call = 3;
    // Two store instances, as two server threads (or, for Redis, two processes) would use.
    auto second = this->backend_.open();
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            store& s = t % 2 ? *second : *this->store_;
            for (int c = 0; c < k_calls; ++c) {
                std::vector<stored_message> batch;
                for (int m = 0; m < k_per_call; ++m) {
                    batch.push_back(this->message(
                        "user", std::to_string(t) + "/" + std::to_string(c) + "/" + std::to_string(m)));
                }
                s.append_messages("shared", "key_a", batch);
            }
        });
    }
    for (auto& th : threads) th.join();

    const auto messages = this->store_->load_messages("shared");
    ASSERT_EQ(messages.size(), static_cast<std::size_t>(k_threads * k_calls * k_per_call));
    std::vector<int> next_call(k_threads, 0);
    for (std::size_t i = 0; i < messages.size(); i += k_per_call) {
        int t = -1, c = -1, m = -1;
        ASSERT_EQ(std::sscanf(messages[i].content.c_str(), "%d/%d/%d", &t, &c, &m), 3);
        ASSERT_GE(t, 0);
        ASSERT_LT(t, k_threads);
        EXPECT_EQ(c, next_call[t]++) << "calls of one thread out of order";
        for (int j = 0; j < k_per_call; ++j) {
            EXPECT_EQ(messages[i + j].content,
                      std::to_string(t) + "/" + std::to_string(c) + "/" + std::to_string(j))
                << "a call's messages were split or reordered";
        }
    }
}

TYPED_TEST(store_suite, usage_upserts_sum) {
    auto& s = *this->store_;
    s.record_usage({"key_a", "local", 1, 10, 20, 0, 0});
    s.record_usage({"key_a", "local", 1, 5, 7, 1, 0});
    s.record_usage({"key_a", "gpt", 1, 100, 200, 0, 1});
    s.record_usage({"key_b", "local", 2, 1, 1, 0, 0});

    const auto a = s.usage(std::string("key_a"));
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].model, "gpt");
    EXPECT_EQ(a[0].errors, 1);
    EXPECT_EQ(a[1].model, "local");
    EXPECT_EQ(a[1].key_id, "key_a");
    EXPECT_EQ(a[1].requests, 2);
    EXPECT_EQ(a[1].prompt_tokens, 15);
    EXPECT_EQ(a[1].completion_tokens, 27);
    EXPECT_EQ(a[1].cancelled, 1);
    EXPECT_EQ(a[1].errors, 0);

    const auto all = s.usage(std::nullopt);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[2].key_id, "key_b");
    EXPECT_EQ(all[2].requests, 2);
    EXPECT_TRUE(s.usage(std::string("key_none")).empty());
}

TYPED_TEST(store_suite, requests_per_minute_admits_up_to_the_limit) {
    auto& s = *this->store_;
    const limits_config limits{.requests_per_minute = 3};
    const auto now = k_minute + 15'500;
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.admit_request("key_a", limits, now + i).allowed) << i;

    const auto refused = s.admit_request("key_a", limits, now + 3);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after_s, 45);  // 44.497 s left in the minute, rounded up
    EXPECT_NE(refused.reason.find("requests_per_minute"), std::string::npos);
    // A refused request is not counted, and the last second of the window still refuses.
    const auto late = s.admit_request("key_a", limits, k_minute + 59'999);
    EXPECT_FALSE(late.allowed);
    EXPECT_EQ(late.retry_after_s, 1);

    EXPECT_TRUE(s.admit_request("key_b", limits, now).allowed) << "limits are per key";
    EXPECT_TRUE(s.admit_request("key_a", limits, k_minute + 60'000).allowed) << "a new window";
}

TYPED_TEST(store_suite, tokens_per_minute_counts_streamed_tokens) {
    auto& s = *this->store_;
    const limits_config limits{.tokens_per_minute = 100};
    const auto now = k_minute + 1'000;
    EXPECT_TRUE(s.admit_request("key_a", limits, now).allowed);
    s.add_tokens("key_a", 60, now);
    EXPECT_TRUE(s.admit_request("key_a", limits, now).allowed) << "60 < 100";
    s.add_tokens("key_a", 39, now);
    EXPECT_TRUE(s.admit_request("key_a", limits, now).allowed) << "99 < 100";
    s.add_tokens("key_a", 1, now);
    const auto refused = s.admit_request("key_a", limits, now);
    EXPECT_FALSE(refused.allowed) << "100 tokens reached";
    EXPECT_EQ(refused.retry_after_s, 59);
    EXPECT_NE(refused.reason.find("tokens_per_minute"), std::string::npos);
    EXPECT_TRUE(s.admit_request("key_a", limits, k_minute + 60'000).allowed);
}

TYPED_TEST(store_suite, no_limits_always_admit) {
    auto& s = *this->store_;
    for (int i = 0; i < 50; ++i) EXPECT_TRUE(s.admit_request("key_a", {}, k_minute + i).allowed);
    s.add_tokens("key_a", 1'000'000, k_minute);
    EXPECT_TRUE(s.admit_request("key_a", {}, k_minute).allowed);
}

TYPED_TEST(store_suite, stream_slots_at_and_over_the_limit) {
    auto& s = *this->store_;
    EXPECT_TRUE(s.acquire_stream("key_a", 2));
    EXPECT_TRUE(s.acquire_stream("key_a", 2));
    EXPECT_FALSE(s.acquire_stream("key_a", 2));
    EXPECT_TRUE(s.acquire_stream("key_b", 2)) << "slots are per key";
    s.release_stream("key_a");
    EXPECT_TRUE(s.acquire_stream("key_a", 2));
    EXPECT_FALSE(s.acquire_stream("key_a", 2));
    s.release_stream("key_a");
    s.release_stream("key_a");
    EXPECT_TRUE(s.acquire_stream("key_a", 2));
    EXPECT_TRUE(s.acquire_stream("key_a", 2));
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(s.acquire_stream("key_c", 0)) << "0 = no limit";
}

TYPED_TEST(store_suite, stream_slots_from_many_threads_never_exceed_the_limit) {
    constexpr int k_limit = 3;
    std::atomic<int> open{0};
    std::atomic<int> most{0};
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 40; ++i) {
                if (!this->store_->acquire_stream("key_a", k_limit)) continue;
                ++granted;
                const int now_open = ++open;
                int seen = most.load();
                while (now_open > seen && !most.compare_exchange_weak(seen, now_open)) {
                }
                --open;
                this->store_->release_stream("key_a");
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_LE(most.load(), k_limit);
    EXPECT_GT(granted.load(), 0);
    // Every slot came back.
    for (int i = 0; i < k_limit; ++i) EXPECT_TRUE(this->store_->acquire_stream("key_a", k_limit));
    EXPECT_FALSE(this->store_->acquire_stream("key_a", k_limit));
}

TYPED_TEST(store_suite, a_second_instance_shares_the_data) {
    auto& a = *this->store_;
    auto b = this->backend_.open();
    a.create_key(this->key("key_a", "hash_a"));
    ASSERT_TRUE(b->find_key_by_hash("hash_a"));
    EXPECT_TRUE(b->revoke_key("key_a"));
    EXPECT_TRUE(a.find_key_by_hash("hash_a")->revoked) << "a revocation is seen at once";

    a.append_messages("s1", "key_a", {this->message("user", "hi")});
    b->append_messages("s1", "key_a", {this->message("assistant", "hello")});
    EXPECT_EQ(a.load_messages("s1").size(), 2u);

    const limits_config limits{.requests_per_minute = 2};
    EXPECT_TRUE(a.admit_request("key_a", limits, k_minute).allowed);
    EXPECT_TRUE(b->admit_request("key_a", limits, k_minute).allowed);
    EXPECT_FALSE(a.admit_request("key_a", limits, k_minute).allowed) << "the limit holds across instances";

    if constexpr (TypeParam::k_shares_stream_slots) {
        EXPECT_TRUE(a.acquire_stream("key_a", 1));
        EXPECT_FALSE(b->acquire_stream("key_a", 1));
        a.release_stream("key_a");
        EXPECT_TRUE(b->acquire_stream("key_a", 1));
    }
}

TYPED_TEST(store_suite, a_shared_stream_log_is_read_after_an_id_by_another_instance) {
    auto& a = *this->store_;
    if constexpr (!TypeParam::k_shares_stream_slots) {
        EXPECT_FALSE(a.shares_stream_logs()) << "one process: the log stays in its memory";
        EXPECT_THROW(a.read_shared_log("st_x", 0, 10, 0, false), store_unavailable);
    } else {
        ASSERT_TRUE(a.shares_stream_logs());
        auto b = this->backend_.open();
        EXPECT_FALSE(b->read_shared_log("st_1", 0, 10, 0, false)) << "no such log";
        shared_log_update update{.id = "st_1",
                                 .owner = "key_a",
                                 .first_id = 1,
                                 .events = {"id: 1\ndata: a\n\n", "id: 2\ndata: b\n\n"},
                                 .orphan_event = "data: lost\n\n",
                                 .alive_ttl_ms = 60000,
                                 .keep_ms = 60000};
        auto feedback = a.publish_log(update);
        EXPECT_FALSE(feedback.cancel_requested);
        EXPECT_FALSE(feedback.remote_reader);
        // A retried write (its reply was lost) adds nothing twice; the next one goes on.
        a.publish_log(update);
        update.first_id = 3;
        update.events = {"id: 3\ndata: c\n\n"};
        update.orphan_event.clear();
        a.publish_log(update);

        auto slice = b->read_shared_log("st_1", 1, 10, 3000, false);
        ASSERT_TRUE(slice);
        EXPECT_EQ(slice->owner, "key_a");
        EXPECT_EQ(slice->last_id, 3u);
        ASSERT_EQ(slice->events.size(), 2u);
        EXPECT_EQ(slice->events[0], (std::pair<std::uint64_t, std::string>{2, "id: 2\ndata: b\n\n"}));
        EXPECT_EQ(slice->events[1].first, 3u);
        EXPECT_TRUE(slice->producer_alive);
        EXPECT_FALSE(slice->finished);
        EXPECT_EQ(slice->orphan_event, "data: lost\n\n") << "kept from the first write";
        EXPECT_EQ(b->read_shared_log("st_1", 0, 1, 0, false)->events.size(), 1u) << "at most max_events";

        // The reader's presence and its cancel reach the producer with its next write.
        b->read_shared_log("st_1", 3, 10, 3000, true);
        update.events.clear();
        update.first_id = 4;
        feedback = a.publish_log(update);
        EXPECT_TRUE(feedback.cancel_requested);
        EXPECT_TRUE(feedback.remote_reader);

        update.finished = true;
        a.publish_log(update);
        slice = b->read_shared_log("st_1", 3, 10, 0, false);
        EXPECT_TRUE(slice->finished);
        EXPECT_FALSE(slice->producer_alive) << "a finished producer has no heartbeat";
        EXPECT_TRUE(slice->events.empty());

        // A producer that stops writing is gone once its heartbeat expires.
        shared_log_update dying{
            .id = "st_2", .owner = "key_a", .first_id = 1, .alive_ttl_ms = 50, .keep_ms = 60000};
        a.publish_log(dying);
        EXPECT_TRUE(b->read_shared_log("st_2", 0, 10, 0, false)->producer_alive);
        std::this_thread::sleep_for(std::chrono::milliseconds{150});
        EXPECT_FALSE(b->read_shared_log("st_2", 0, 10, 0, false)->producer_alive);
    }
}

}  // namespace
}  // namespace sluice
