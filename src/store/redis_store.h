#pragma once
// The shared store: everything in one Redis database, so several sluice processes behind a load
// balancer see the same keys, sessions, limits and usage.
//
// Why synchronous hiredis: the store interface is synchronous and only ever called from the store's
// own thread pool (core/blocking.h), never from an io thread, so a blocking round trip costs a pool
// thread, not the event loop. A small pool of connections (each used by one call at a time) lets the
// pool threads overlap their round trips. Connect and command timeouts (1 s) bound every wait. After any
// failure the connection is dropped and the next call reconnects, so service resumes by itself when Redis
// comes back; each failure surfaces as store_unavailable (a 503 for the request), never a crash.
//
// Atomicity: every call that reads-then-writes (rate check-and-count, session append with its
// ownership check, key creation, stream slots) is one Lua script, i.e. one atomic round trip. The
// scripts touch keys they compute from the prefix, so this targets a single Redis (not Cluster).
//
// Layout (prefix "sluice:"): key:<id> hash, keyhash:<sha256> -> id, keys set; session:<id> hash
// (owner, created_ms, updated_ms), messages:<id> list of JSON; rate:<key>:<window> hash (requests,
// tokens) expiring after two windows; streams:<key> sorted set of slots scored by expiry;
// usage:<key>:<model> hash, usage_models:<key> set, usage_keys set; session_lock:<id> the holder's
// token (SET NX PX: it expires unless refreshed; refreshed and deleted only by a script that compares
// the token first); response:<id> hash expiring at the response's expires_ms; a resumable stream's
// shared log (redis_stream_logs.cpp): log:<id> a Redis Stream whose entry ids are 0-<event id>,
// log_meta:<id> hash (owner, last, done, overflow, orphan, cancel), log_alive:<id> the producer's
// heartbeat and log_reader:<id> a remote reader's presence, both expiring unless refreshed.
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/redis_connection.h"
#include "store/store.h"
#include "store/store_url.h"

namespace sluice {

class redis_store final : public store {
  public:
    // A stream slot held by a process that died is freed after this long (a safety net; a live
    // stream releases its slot as soon as it ends). Longer than any request_timeout_s in use.
    static constexpr std::int64_t k_stream_slot_ttl_ms = 15 * 60 * 1000;
    // Connections shared by the calling threads: a slow or hung round trip holds up only its own.
    static constexpr int k_connections = 4;

    // Connects at once: throws store_unavailable when Redis cannot be reached or refuses the password.
    redis_store(redis_url url, std::string password);
    ~redis_store() override;
    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    void create_key(const api_key_record& key) override;
    std::optional<api_key_record> find_key_by_hash(const std::string& hash) override;
    std::vector<api_key_record> list_keys() override;
    bool revoke_key(const std::string& id) override;

    std::optional<std::string> session_owner(const std::string& session_id) override;
    std::vector<stored_message> load_messages(const std::string& session_id) override;
    void append_messages(const std::string& session_id, const std::string& key_id,
                         const std::vector<stored_message>& messages) override;
    // One script for the batch: one round trip, each turn its own outcome.
    void append_many(std::vector<session_append>& batch) override;
    bool delete_session(const std::string& session_id) override;

    rate_decision admit_request(const std::string& key_id, const limits_config& limits,
                                std::int64_t now_ms) override;
    void add_tokens(const std::string& key_id, int tokens, std::int64_t now_ms) override;
    bool acquire_stream(const std::string& key_id, int max_streams) override;
    void release_stream(const std::string& key_id) override;

    bool shares_sessions() const override { return true; }
    bool try_lock_session(const std::string& session_id, const std::string& token,
                          std::int64_t ttl_ms) override;
    bool refresh_session_lock(const std::string& session_id, const std::string& token,
                              std::int64_t ttl_ms) override;
    void unlock_session(const std::string& session_id, const std::string& token) override;
    void save_response(const stored_response& response) override;
    std::optional<stored_response> load_response(const std::string& id, std::int64_t now_ms) override;
    bool delete_response(const std::string& id) override;

    // In redis_stream_logs.cpp.
    bool shares_stream_logs() const override { return true; }
    shared_log_feedback publish_log(const shared_log_update& update) override;
    std::optional<shared_log_slice> read_shared_log(const std::string& id, std::uint64_t after,
                                                    std::size_t max_events, std::int64_t reader_ttl_ms,
                                                    bool cancel) override;

    void record_usage(const usage_delta& delta) override;
    std::vector<usage_row> usage(const std::optional<std::string>& key_id) override;

    bool healthy() override;

  private:
    // Exclusive use of one pooled connection for the length of one call.
    class lease {
      public:
        lease(redis_store& owner, std::unique_ptr<redis_connection> c) : owner_(owner), c_(std::move(c)) {}
        ~lease();
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        redis_connection* operator->() const { return c_.get(); }

      private:
        redis_store& owner_;
        std::unique_ptr<redis_connection> c_;
    };
    lease connection();

    const redis_url url_;
    const std::string password_;
    const std::string prefix_ = "sluice:";
    const std::string instance_id_;  // names this process's stream slots

    std::mutex pool_mutex_;
    std::condition_variable pool_returned_;
    std::vector<std::unique_ptr<redis_connection>> idle_;  // k_connections made up front, connect lazily

    std::mutex slots_mutex_;
    std::uint64_t next_slot_ = 0;
    std::map<std::string, std::vector<std::string>> slots_;  // key id -> slots this process holds
    // Slots whose release failed (Redis unreachable): freed before the next acquire, or by expiry.
    std::vector<std::pair<std::string, std::string>> pending_releases_;
};

}  // namespace sluice
