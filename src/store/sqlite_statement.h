#pragma once
// Small RAII helpers over the SQLite C API for sqlite_store: cached prepared statements (preparing
// costs more than running most of our queries) and write transactions.
#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "store/store.h"

namespace sluice {

[[noreturn]] inline void sqlite_fail(sqlite3* db, const std::string& what) {
    throw store_unavailable("sqlite store: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// One use of a cached prepared statement; reset (and its bindings cleared) at scope exit.
class statement {
  public:
    statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
    ~statement() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    statement& bind(int index, const std::string& value) {
        check(
            sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
        return *this;
    }
    statement& bind(int index, std::int64_t value) {
        check(sqlite3_bind_int64(stmt_, index, value));
        return *this;
    }
    statement& bind_null(int index) {
        check(sqlite3_bind_null(stmt_, index));
        return *this;
    }
    // True while there is a row to read.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        sqlite_fail(db_, "step");
    }
    void reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    std::string text(int col) const {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
    }
    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
    bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

  private:
    void check(int rc) {
        if (rc != SQLITE_OK) sqlite_fail(db_, "bind");
    }
    sqlite3* db_;
    sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE takes the write lock up front, so a transaction never has to be retried half way.
class transaction {
  public:
    explicit transaction(sqlite3* db) : db_(db) { run("BEGIN IMMEDIATE"); }
    ~transaction() {
        if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    void commit() {
        run("COMMIT");
        done_ = true;
    }

  private:
    void run(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) sqlite_fail(db_, sql);
    }
    sqlite3* db_;
    bool done_ = false;
};

// Prepared statements by SQL text, kept for the life of the connection. Each SQL text is used by
// one statement at a time (callers hold the store's mutex and never nest the same query).
class statement_cache {
  public:
    explicit statement_cache(sqlite3* db) : db_(db) {}
    ~statement_cache() {
        for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    }
    statement_cache(const statement_cache&) = delete;
    statement_cache& operator=(const statement_cache&) = delete;

    statement operator()(const char* sql) {
        auto [it, inserted] = cache_.try_emplace(sql, nullptr);
        if (inserted &&
            sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second, nullptr) != SQLITE_OK) {
            cache_.erase(it);
            sqlite_fail(db_, "prepare");
        }
        return statement(db_, it->second);
    }

  private:
    sqlite3* db_;
    std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace sluice
