#include "store/sqlite_store.h"

#include <array>
#include <system_error>

#include "core/chat_json.h"
#include "store/rate_window.h"
#include "store/sqlite_statement.h"

namespace sluice {

namespace {

// Each entry moves the schema one version up; entries are never edited once released, only added.
constexpr std::array k_migrations = {
    // v1
    R"sql(
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0,
        requests_per_minute INTEGER,      -- NULL: the key follows [limits]
        tokens_per_minute INTEGER,
        max_concurrent_streams INTEGER
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE messages (
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        finish_reason TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE usage (
        key_id TEXT NOT NULL,
        model TEXT NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cancelled INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, model)
    ) WITHOUT ROWID;
    CREATE TABLE rate_counters (
        key_id TEXT NOT NULL,
        window_start_ms INTEGER NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, window_start_ms)
    ) WITHOUT ROWID;
    )sql",
    // v2: a message's parts (tool calls, tool results, images, reasoning) as JSON; '' for plain text
    R"sql(
    ALTER TABLE messages ADD COLUMN parts TEXT NOT NULL DEFAULT '';
    )sql",
    // v3: stored responses of the OpenAI Responses API (JSON as served), until expires_ms
    R"sql(
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        previous_response_id TEXT NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        input_items TEXT NOT NULL,
        response TEXT NOT NULL
    );
    CREATE INDEX responses_expiry ON responses (expires_ms);
    )sql",
};

api_key_record read_key(const statement& s) {
    api_key_record key{.id = s.text(0),
                       .name = s.text(1),
                       .hash = s.text(2),
                       .created_ms = s.int64(3),
                       .revoked = s.int64(4) != 0};
    if (!s.is_null(5)) {
        key.limits = limits_config{.requests_per_minute = static_cast<int>(s.int64(5)),
                                   .tokens_per_minute = static_cast<int>(s.int64(6)),
                                   .max_concurrent_streams = static_cast<int>(s.int64(7))};
    }
    return key;
}

}  // namespace

sqlite_store::sqlite_store(const std::filesystem::path& path) {
    const std::string name = path.string();
    if (name != ":memory:" && path.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
        if (ec) {
            throw store_unavailable("sqlite store: cannot create directory " + path.parent_path().string() +
                                    ": " + ec.message());
        }
    }
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(name.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw store_unavailable("sqlite store: cannot open " + name + ": " + why);
    }
    try {
        statements_ = std::make_unique<statement_cache>(db_);
        sqlite3_busy_timeout(db_, 5000);
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        exec("PRAGMA foreign_keys=ON");
        migrate();
        if (name != ":memory:") checkpoints_ = std::make_unique<sqlite_checkpointer>(db_, path);
    } catch (...) {
        checkpoints_.reset();
        statements_.reset();
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

sqlite_store::~sqlite_store() {
    checkpoints_.reset();  // its thread and connection go first; the close checkpoints what is left
    statements_.reset();   // finalized before the close, or the close fails
    sqlite3_close(db_);
}

void sqlite_store::exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
        const std::string why = error ? error : sqlite3_errmsg(db_);
        sqlite3_free(error);
        throw store_unavailable("sqlite store: " + why);
    }
}

void sqlite_store::migrate() {
    exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    // Another process may be migrating the same file: the write lock serialises us, and the version
    // is read again inside the transaction.
    transaction tx(db_);
    std::int64_t version = 0;
    {
        auto s = (*statements_)("SELECT version FROM schema_version");
        if (s.step()) version = s.int64(0);
    }
    if (version > static_cast<std::int64_t>(k_migrations.size())) {
        throw store_unavailable("sqlite store: the database has schema version " + std::to_string(version) +
                                ", newer than this sluice understands (" +
                                std::to_string(k_migrations.size()) + ")");
    }
    if (version == static_cast<std::int64_t>(k_migrations.size())) return;  // rolls back: nothing written
    for (auto v = version; v < static_cast<std::int64_t>(k_migrations.size()); ++v) {
        exec(k_migrations[static_cast<std::size_t>(v)]);
    }
    exec("DELETE FROM schema_version");
    (*statements_)("INSERT INTO schema_version (version) VALUES (?)")
        .bind(1, static_cast<std::int64_t>(k_migrations.size()))
        .step();
    tx.commit();
}

int sqlite_store::schema_version() {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)("SELECT version FROM schema_version");
    return s.step() ? static_cast<int>(s.int64(0)) : 0;
}

void sqlite_store::create_key(const api_key_record& key) {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)(
        "INSERT INTO api_keys (id, name, hash, created_ms, revoked, requests_per_minute, "
        "tokens_per_minute, max_concurrent_streams) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, key.id).bind(2, key.name).bind(3, key.hash).bind(4, key.created_ms);
    s.bind(5, std::int64_t{key.revoked ? 1 : 0});
    if (key.limits) {
        s.bind(6, std::int64_t{key.limits->requests_per_minute})
            .bind(7, std::int64_t{key.limits->tokens_per_minute})
            .bind(8, std::int64_t{key.limits->max_concurrent_streams});
    } else {
        s.bind_null(6).bind_null(7).bind_null(8);
    }
    s.step();
}

std::optional<api_key_record> sqlite_store::find_key_by_hash(const std::string& hash) {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)(
        "SELECT id, name, hash, created_ms, revoked, requests_per_minute, tokens_per_minute, "
        "max_concurrent_streams FROM api_keys WHERE hash = ?");
    s.bind(1, hash);
    if (!s.step()) return std::nullopt;
    return read_key(s);
}

std::vector<api_key_record> sqlite_store::list_keys() {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)(
        "SELECT id, name, hash, created_ms, revoked, requests_per_minute, tokens_per_minute, "
        "max_concurrent_streams FROM api_keys ORDER BY created_ms, id");
    std::vector<api_key_record> keys;
    while (s.step()) keys.push_back(read_key(s));
    return keys;
}

bool sqlite_store::revoke_key(const std::string& id) {
    std::lock_guard lock(mutex_);
    (*statements_)("UPDATE api_keys SET revoked = 1 WHERE id = ?").bind(1, id).step();
    return sqlite3_changes(db_) > 0;
}

std::optional<std::string> sqlite_store::session_owner(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)("SELECT key_id FROM sessions WHERE id = ?");
    s.bind(1, session_id);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

std::vector<stored_message> sqlite_store::load_messages(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)(
        "SELECT role, content, model, prompt_tokens, completion_tokens, finish_reason, created_ms, parts "
        "FROM messages WHERE session_id = ? ORDER BY seq");
    s.bind(1, session_id);
    std::vector<stored_message> messages;
    while (s.step()) {
        messages.push_back({.role = s.text(0),
                            .content = s.text(1),
                            .parts = parts_from_json(s.text(7)),
                            .model = s.text(2),
                            .prompt_tokens = static_cast<int>(s.int64(3)),
                            .completion_tokens = static_cast<int>(s.int64(4)),
                            .finish_reason = s.text(5),
                            .created_ms = s.int64(6)});
    }
    return messages;
}

void sqlite_store::append_messages(const std::string& session_id, const std::string& key_id,
                                   const std::vector<stored_message>& messages) {
    std::lock_guard lock(mutex_);
    transaction tx(db_);
    append_locked(session_id, key_id, messages);
    tx.commit();
    append_commits_.fetch_add(1, std::memory_order_relaxed);
}

void sqlite_store::append_many(std::vector<session_append>& batch) {
    if (batch.empty()) return;
    std::lock_guard lock(mutex_);
    try {
        transaction tx(db_);
        for (auto& entry : batch) {
            entry.error = nullptr;
            exec("SAVEPOINT turn");
            try {
                append_locked(entry.session_id, entry.key_id, entry.messages);
            } catch (const session_conflict&) {
                // Nothing of this entry was written (the owner is checked first); the rollback
                // keeps that true whatever append_locked becomes.
                entry.error = std::current_exception();
                exec("ROLLBACK TO turn");
            }
            exec("RELEASE turn");
        }
        tx.commit();
        append_commits_.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception& e) {
        // The transaction is rolled back: nothing of the batch was stored.
        const std::string why = e.what();
        for (auto& entry : batch) entry.error = std::make_exception_ptr(store_unavailable(why));
    }
}

void sqlite_store::append_locked(const std::string& session_id, const std::string& key_id,
                                 const std::vector<stored_message>& messages) {
    std::int64_t now = messages.empty() ? 0 : messages.back().created_ms;
    {
        auto owner = (*statements_)("SELECT key_id FROM sessions WHERE id = ?");
        owner.bind(1, session_id);
        if (owner.step()) {
            if (owner.text(0) != key_id) throw session_conflict("session belongs to another key");
            (*statements_)("UPDATE sessions SET updated_ms = max(updated_ms, ?) WHERE id = ?")
                .bind(1, now)
                .bind(2, session_id)
                .step();
        } else {
            (*statements_)("INSERT INTO sessions (id, key_id, created_ms, updated_ms) VALUES (?, ?, ?, ?)")
                .bind(1, session_id)
                .bind(2, key_id)
                .bind(3, messages.empty() ? 0 : messages.front().created_ms)
                .bind(4, now)
                .step();
        }
    }
    std::int64_t seq = 0;
    {
        auto last = (*statements_)("SELECT coalesce(max(seq), 0) FROM messages WHERE session_id = ?");
        last.bind(1, session_id);
        if (last.step()) seq = last.int64(0);
    }
    auto insert = (*statements_)(
        "INSERT INTO messages (session_id, seq, role, content, model, prompt_tokens, "
        "completion_tokens, finish_reason, created_ms, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& m : messages) {
        insert.bind(1, session_id).bind(2, ++seq).bind(3, m.role).bind(4, m.content).bind(5, m.model);
        insert.bind(6, std::int64_t{m.prompt_tokens}).bind(7, std::int64_t{m.completion_tokens});
        insert.bind(8, m.finish_reason).bind(9, m.created_ms).bind(10, parts_to_json(m.parts));
        insert.step();
        insert.reset();
    }
}

bool sqlite_store::delete_session(const std::string& session_id) {
    std::lock_guard lock(mutex_);
    transaction tx(db_);
    (*statements_)("DELETE FROM messages WHERE session_id = ?").bind(1, session_id).step();
    (*statements_)("DELETE FROM sessions WHERE id = ?").bind(1, session_id).step();
    const bool existed = sqlite3_changes(db_) > 0;
    tx.commit();
    return existed;
}

void sqlite_store::save_response(const stored_response& r) {
    std::lock_guard lock(mutex_);
    transaction tx(db_);
    // Expired responses go as new ones come: the index makes this a short range delete.
    (*statements_)("DELETE FROM responses WHERE expires_ms <= ?").bind(1, r.created_ms).step();
    (*statements_)(
        "INSERT OR REPLACE INTO responses (id, key_id, previous_response_id, model, status, created_ms, "
        "expires_ms, input_items, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(1, r.id)
        .bind(2, r.key_id)
        .bind(3, r.previous_response_id)
        .bind(4, r.model)
        .bind(5, r.status)
        .bind(6, r.created_ms)
        .bind(7, r.expires_ms)
        .bind(8, r.input_items)
        .bind(9, r.response)
        .step();
    tx.commit();
}

std::optional<stored_response> sqlite_store::load_response(const std::string& id, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)(
        "SELECT id, key_id, previous_response_id, model, status, created_ms, expires_ms, input_items, "
        "response FROM responses WHERE id = ? AND expires_ms > ?");
    s.bind(1, id).bind(2, now_ms);
    if (!s.step()) return std::nullopt;
    return stored_response{.id = s.text(0),
                           .key_id = s.text(1),
                           .previous_response_id = s.text(2),
                           .model = s.text(3),
                           .status = s.text(4),
                           .created_ms = s.int64(5),
                           .expires_ms = s.int64(6),
                           .input_items = s.text(7),
                           .response = s.text(8)};
}

bool sqlite_store::delete_response(const std::string& id) {
    std::lock_guard lock(mutex_);
    (*statements_)("DELETE FROM responses WHERE id = ?").bind(1, id).step();
    return sqlite3_changes(db_) > 0;
}

rate_decision sqlite_store::admit_request(const std::string& key_id, const limits_config& limits,
                                          std::int64_t now_ms) {
    if (limits.requests_per_minute <= 0 && limits.tokens_per_minute <= 0) return {};
    const std::int64_t window = rate_window_start(now_ms);
    std::lock_guard lock(mutex_);
    transaction tx(db_);
    (*statements_)("DELETE FROM rate_counters WHERE key_id = ? AND window_start_ms < ?")
        .bind(1, key_id)
        .bind(2, window)
        .step();
    std::int64_t requests = 0;
    std::int64_t tokens = 0;
    {
        auto s = (*statements_)(
            "SELECT requests, tokens FROM rate_counters WHERE key_id = ? AND window_start_ms = ?");
        s.bind(1, key_id).bind(2, window);
        if (s.step()) {
            requests = s.int64(0);
            tokens = s.int64(1);
        }
    }
    auto decision = decide_rate(limits, requests, tokens, now_ms);
    if (decision.allowed) {
        (*statements_)(
            "INSERT INTO rate_counters (key_id, window_start_ms, requests) VALUES (?, ?, 1) "
            "ON CONFLICT (key_id, window_start_ms) DO UPDATE SET requests = requests + 1")
            .bind(1, key_id)
            .bind(2, window)
            .step();
    }
    tx.commit();
    return decision;
}

void sqlite_store::add_tokens(const std::string& key_id, int tokens, std::int64_t now_ms) {
    if (tokens <= 0) return;
    std::lock_guard lock(mutex_);
    (*statements_)(
        "INSERT INTO rate_counters (key_id, window_start_ms, tokens) VALUES (?, ?, ?) "
        "ON CONFLICT (key_id, window_start_ms) DO UPDATE SET tokens = tokens + excluded.tokens")
        .bind(1, key_id)
        .bind(2, rate_window_start(now_ms))
        .bind(3, std::int64_t{tokens})
        .step();
}

bool sqlite_store::acquire_stream(const std::string& key_id, int max_streams) {
    std::lock_guard lock(mutex_);
    int& open = streams_[key_id];
    if (max_streams > 0 && open >= max_streams) return false;
    ++open;
    return true;
}

void sqlite_store::release_stream(const std::string& key_id) {
    std::lock_guard lock(mutex_);
    auto it = streams_.find(key_id);
    if (it == streams_.end()) return;
    if (--it->second <= 0) streams_.erase(it);
}

void sqlite_store::record_usage(const usage_delta& d) {
    std::lock_guard lock(mutex_);
    (*statements_)(
        "INSERT INTO usage (key_id, model, requests, prompt_tokens, completion_tokens, cancelled, errors) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id, model) DO UPDATE SET "
        "requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = completion_tokens + excluded.completion_tokens, "
        "cancelled = cancelled + excluded.cancelled, errors = errors + excluded.errors")
        .bind(1, d.key_id)
        .bind(2, d.model)
        .bind(3, std::int64_t{d.requests})
        .bind(4, std::int64_t{d.prompt_tokens})
        .bind(5, std::int64_t{d.completion_tokens})
        .bind(6, std::int64_t{d.cancelled})
        .bind(7, std::int64_t{d.errors})
        .step();
}

std::vector<usage_row> sqlite_store::usage(const std::optional<std::string>& key_id) {
    std::lock_guard lock(mutex_);
    auto s = (*statements_)(
        "SELECT key_id, model, requests, prompt_tokens, completion_tokens, cancelled, errors FROM usage "
        "WHERE ?1 IS NULL OR key_id = ?1 ORDER BY key_id, model");
    if (key_id) {
        s.bind(1, *key_id);
    } else {
        s.bind_null(1);
    }
    std::vector<usage_row> rows;
    while (s.step()) {
        rows.push_back({s.text(0), s.text(1), s.int64(2), s.int64(3), s.int64(4), s.int64(5), s.int64(6)});
    }
    return rows;
}

bool sqlite_store::healthy() {
    try {
        std::lock_guard lock(mutex_);
        auto s = (*statements_)("SELECT 1");
        return s.step();
    } catch (const store_unavailable&) {
        return false;
    }
}

}  // namespace sluice
