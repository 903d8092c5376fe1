#pragma once
// The embedded store: one SQLite file in WAL mode (readers never wait for the writer), with
// synchronous=NORMAL (a committed transaction survives a process crash; only an OS crash can lose
// the last few) and a busy timeout so `sluice keys` can write while `serve` runs. One connection
// behind a mutex: the store is called from a small pool and every call is short, so a connection
// per thread would buy little and cost a cache each. Concurrent-stream slots live in memory: a
// SQLite store serves one process. WAL checkpoints run on a thread of their own
// (sqlite_checkpointer.h), not inside a request's commit.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "store/sqlite_checkpointer.h"
#include "store/store.h"

struct sqlite3;

namespace sluice {
class statement_cache;
}

namespace sluice {

class sqlite_store final : public store {
  public:
    // `path` may be ":memory:". Creates the parent directory and runs the migrations.
    explicit sqlite_store(const std::filesystem::path& path);
    ~sqlite_store() override;
    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    void create_key(const api_key_record& key) override;
    std::optional<api_key_record> find_key_by_hash(const std::string& hash) override;
    std::vector<api_key_record> list_keys() override;
    bool revoke_key(const std::string& id) override;

    std::optional<std::string> session_owner(const std::string& session_id) override;
    std::vector<stored_message> load_messages(const std::string& session_id) override;
    void append_messages(const std::string& session_id, const std::string& key_id,
                         const std::vector<stored_message>& messages) override;
    // One transaction for the whole batch, a savepoint per entry: a conflicting entry is rolled
    // back alone; a failure of the transaction fails every entry with store_unavailable.
    void append_many(std::vector<session_append>& batch) override;
    bool delete_session(const std::string& session_id) override;

    rate_decision admit_request(const std::string& key_id, const limits_config& limits,
                                std::int64_t now_ms) override;
    void add_tokens(const std::string& key_id, int tokens, std::int64_t now_ms) override;
    bool acquire_stream(const std::string& key_id, int max_streams) override;
    void release_stream(const std::string& key_id) override;

    void save_response(const stored_response& response) override;
    std::optional<stored_response> load_response(const std::string& id, std::int64_t now_ms) override;
    bool delete_response(const std::string& id) override;

    void record_usage(const usage_delta& delta) override;
    std::vector<usage_row> usage(const std::optional<std::string>& key_id) override;

    bool healthy() override;

    // The schema version after the start-up migrations (for tests and the start-up log).
    int schema_version();
    // The WAL's checkpoints (null for ":memory:"), for tests.
    const sqlite_checkpointer* checkpointer() const { return checkpoints_.get(); }
    // Transactions append_messages and append_many have committed (for tests: group commit).
    std::uint64_t append_commits() const { return append_commits_.load(std::memory_order_relaxed); }

  private:
    void migrate();
    void exec(const char* sql);
    // The body of append_messages, inside the caller's transaction and lock.
    void append_locked(const std::string& session_id, const std::string& key_id,
                       const std::vector<stored_message>& messages);

    std::mutex mutex_;
    sqlite3* db_ = nullptr;
    std::unique_ptr<statement_cache> statements_;
    std::map<std::string, int> streams_;  // key id -> open streams
    std::unique_ptr<sqlite_checkpointer> checkpoints_;
    std::atomic<std::uint64_t> append_commits_{0};
};

}  // namespace sluice
