#pragma once
// Everything that must outlive a request: API keys (hashes only), sessions, rate-limit counters and
// the usage ledger. Two implementations: sqlite_store (embedded default, WAL) and redis_store
// (shared by several sluice processes). The interface is synchronous and thread-safe; io threads
// reach it only through run_blocking (core/blocking.h) on the store's own pool.
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config.h"

namespace sluice {

// The store could not be reached or failed; requests that need it get 503.
class store_unavailable : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// append_messages on a session that another key owns (two keys racing for one client-chosen id);
// the caller answers as for any session it cannot see (404).
class session_conflict : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct api_key_record {
    std::string id;  // "key_..." — public, shown in lists and logs
    std::string name;
    std::string hash;  // sha256_hex of the secret key; the secret itself is never stored
    std::int64_t created_ms = 0;
    bool revoked = false;
    std::optional<limits_config> limits;  // per-key override of [limits]
};

struct stored_message {
    std::string role;  // system | user | assistant | tool
    std::string content;
    std::vector<content_part> parts;  // tool calls, results, images, reasoning (see core/chat.h)
    std::string model;                // configured model name (assistant turns)
    int prompt_tokens = 0;
    int completion_tokens = 0;
    std::string finish_reason;  // assistant turns: stop | length | cancelled | error
    std::int64_t created_ms = 0;
};

struct usage_delta {
    std::string key_id;
    std::string model;
    int requests = 0;
    int prompt_tokens = 0;
    int completion_tokens = 0;
    int cancelled = 0;
    int errors = 0;
};

struct usage_row {
    std::string key_id;
    std::string model;
    std::int64_t requests = 0;
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
    std::int64_t cancelled = 0;
    std::int64_t errors = 0;
};

// A response of the OpenAI Responses API kept for GET /v1/responses/{id} and previous_response_id:
// owned by the key that made it, gone after expires_ms.
struct stored_response {
    std::string id;  // resp_...
    std::string key_id;
    std::string previous_response_id;  // empty: none
    std::string model;                 // the configured name that answered
    std::string status;                // completed | incomplete | failed | cancelled
    std::int64_t created_ms = 0;
    std::int64_t expires_ms = 0;
    std::string input_items;  // this request's input, a JSON array of Responses items
    std::string response;     // the response object (output items, usage...) as JSON
};

// A resumable stream's event log kept in a store that several processes share (Redis Streams; see
// streaming/shared_log.h), so that a client whose reconnect lands on another process resumes there.
// The producer's write: new events, the log's state and its heartbeat.
struct shared_log_update {
    std::string id;
    std::string owner;                // the key id: only its key may read the log
    std::uint64_t first_id = 0;       // events[i] has the id first_id + i
    std::vector<std::string> events;  // each its SSE text, "id: N" line first
    bool finished = false;            // no event follows
    bool overflowed = false;          // past resume.max_bytes: no reader may start any more
    std::string orphan_event;         // what a reader ends with if the producer dies (first update)
    std::int64_t alive_ttl_ms = 0;    // the producer counts as gone this long after its last update
    std::int64_t keep_ms = 0;         // the whole log expires this long after this update
};

// What the producer learns from its write.
struct shared_log_feedback {
    bool cancel_requested = false;  // POST .../cancel reached another process
    bool remote_reader = false;     // a client reads the log through another process
};

// A reader's view: the events after an id, and the log's state.
struct shared_log_slice {
    std::string owner;
    std::vector<std::pair<std::uint64_t, std::string>> events;  // id, SSE text
    std::uint64_t last_id = 0;
    bool finished = false;
    bool overflowed = false;
    bool producer_alive = false;
    std::string orphan_event;
};

struct rate_decision {
    bool allowed = true;
    int retry_after_s = 0;
    std::string reason;  // which limit, for the error message
};

// One session's turn in a store::append_many batch, with its own outcome.
struct session_append {
    std::string session_id;
    std::string key_id;
    std::vector<stored_message> messages;
    std::exception_ptr error;  // set by append_many: what append_messages would have thrown
};

class store {
  public:
    virtual ~store() = default;

    // keys
    virtual void create_key(const api_key_record& key) = 0;
    virtual std::optional<api_key_record> find_key_by_hash(const std::string& hash) = 0;
    virtual std::vector<api_key_record> list_keys() = 0;
    virtual bool revoke_key(const std::string& id) = 0;  // false when no such key

    // sessions; a session belongs to the key that created it
    virtual std::optional<std::string> session_owner(const std::string& session_id) = 0;
    virtual std::vector<stored_message> load_messages(const std::string& session_id) = 0;
    // Appends atomically; creates the session owned by key_id when it does not exist yet. Throws
    // session_conflict (and appends nothing) when the session exists and belongs to another key.
    virtual void append_messages(const std::string& session_id, const std::string& key_id,
                                 const std::vector<stored_message>& messages) = 0;
    // append_messages for each entry in order, each outcome in its `error` (null: stored); never
    // throws. A session_conflict fails its entry alone; a store failure may fail every entry. The
    // default calls append_messages per entry; sqlite_store commits the batch in one transaction.
    virtual void append_many(std::vector<session_append>& batch);
    virtual bool delete_session(const std::string& session_id) = 0;

    // rate limits (one atomic check-and-count per call), per key, in fixed one-minute windows aligned
    // to the epoch minute; retry_after_s is the time left in the window. A refused request is not
    // counted. tokens_per_minute refuses new requests once the tokens counted in the window reach it.
    virtual rate_decision admit_request(const std::string& key_id, const limits_config& limits,
                                        std::int64_t now_ms) = 0;
    virtual void add_tokens(const std::string& key_id, int tokens, std::int64_t now_ms) = 0;
    // concurrent streams: acquire returns false when at the limit; release always pairs an acquire
    virtual bool acquire_stream(const std::string& key_id, int max_streams) = 0;
    // Never throws (it runs on clean-up paths): a slot it cannot free now is freed later.
    virtual void release_stream(const std::string& key_id) = 0;

    // One turn at a time per session across processes, for a store several processes share
    // (Redis; see turn/session_locks.h). The lock is `token` stored under the session's name that
    // expires ttl_ms after it was taken or last refreshed, so a holder that died frees it. A store
    // used by one process only (SQLite) has no such lock: the in-process one suffices.
    virtual bool shares_sessions() const { return false; }
    // True when taken: nobody held it, or its holder's time ran out.
    virtual bool try_lock_session(const std::string& session_id, const std::string& token,
                                  std::int64_t ttl_ms) {
        (void)session_id, (void)token, (void)ttl_ms;
        return true;
    }
    // False when the lock is no longer `token`'s (it expired, and maybe another took it).
    virtual bool refresh_session_lock(const std::string& session_id, const std::string& token,
                                      std::int64_t ttl_ms) {
        (void)session_id, (void)token, (void)ttl_ms;
        return true;
    }
    // Frees the lock if it is still `token`'s.
    virtual void unlock_session(const std::string& session_id, const std::string& token) {
        (void)session_id, (void)token;
    }
    // stored responses (the Responses API). Not pure: a store that keeps none (a test's) need not
    // say so; these defaults refuse as a store that is down would.
    virtual void save_response(const stored_response& response);
    // Null when absent or expired (expires_ms <= now_ms).
    virtual std::optional<stored_response> load_response(const std::string& id, std::int64_t now_ms);
    virtual bool delete_response(const std::string& id);  // false when no such response

    // resumable streams' shared event logs (see shared_log_update). Not pure: a store used by one
    // process (SQLite) shares none, and the log stays in the producer's memory.
    virtual bool shares_stream_logs() const { return false; }
    // Appends what the update holds (events already there are skipped, so a retried write is
    // harmless) and refreshes the producer's heartbeat.
    virtual shared_log_feedback publish_log(const shared_log_update& update);
    // Up to max_events after `after` and the state; marks a reader present for reader_ttl_ms (0:
    // not a reader) and, with `cancel`, asks the producer to stop. nullopt: no such log.
    virtual std::optional<shared_log_slice> read_shared_log(const std::string& id, std::uint64_t after,
                                                            std::size_t max_events,
                                                            std::int64_t reader_ttl_ms, bool cancel);

    // usage ledger
    virtual void record_usage(const usage_delta& delta) = 0;
    virtual std::vector<usage_row> usage(const std::optional<std::string>& key_id) = 0;

    virtual bool healthy() = 0;
};

// Opens the store that `cfg.url` names (sqlite://path or redis://host:port/db), creating or
// migrating the schema. Throws store_unavailable or config_error with a clear message.
std::unique_ptr<store> open_store(const store_config& cfg);

}  // namespace sluice
