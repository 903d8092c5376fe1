// SQLite specifics: the file, the migrations, and surviving a SIGKILL in the middle of writing.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "store/test_support.h"

namespace sluice {
namespace {

using testing::temp_dir;

std::string integrity_check(const std::filesystem::path& db) {
    sqlite3* handle = nullptr;
    std::string result = "cannot open";
    if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(handle, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        }
        sqlite3_finalize(stmt);
    }
    sqlite3_close(handle);
    return result;
}

TEST(sqlite_store, creates_the_directory_and_migrates_once) {
    temp_dir dir;
    const auto path = dir.path() / "nested" / "deeper" / "sluice.db";
    {
        sqlite_store s(path);
        EXPECT_EQ(s.schema_version(), 3);
        s.create_key({.id = "key_a", .name = "a", .hash = "h", .created_ms = 1});
    }
    EXPECT_TRUE(std::filesystem::exists(path));
    // The last connection closing checkpoints and removes the WAL: the store closed cleanly.
    EXPECT_FALSE(std::filesystem::exists(path.string() + "-wal"));
    sqlite_store again(path);  // migrations are not re-run on an up-to-date file
    EXPECT_EQ(again.schema_version(), 3);
    EXPECT_TRUE(again.find_key_by_hash("h"));
}

TEST(sqlite_store, refuses_a_newer_schema) {
    temp_dir dir;
    const auto path = dir.path() / "sluice.db";
    { sqlite_store s(path); }
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &handle), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(handle, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(handle);
    try {
        sqlite_store s(path);
        FAIL() << "opened a database from the future";
    } catch (const store_unavailable& e) {
        EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
    }
}

TEST(sqlite_store, unusable_path_is_a_clear_error) {
    temp_dir dir;
    const auto file = dir.path() / "plain-file";
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_TRUE(f);
    std::fclose(f);
    EXPECT_THROW(sqlite_store(file / "sub" / "sluice.db"), store_unavailable);
}

// Writes back to back as fast as one connection commits, with no pause in which a PASSIVE
// checkpoint could catch up: the WAL still has its bound (k_hard_pages, where the writer
// checkpoints in its own commit) while three times that goes through it; the thread did checkpoint,
// and every turn is there afterwards.
TEST(sqlite_store, wal_is_checkpointed_in_the_background_and_stays_bounded) {
    temp_dir dir;
    const auto db = dir.path() / "sluice.db";
    const auto wal = dir.path() / "sluice.db-wal";
    const std::string text(20 * 1024, 'x');
    constexpr std::uintmax_t k_page = 4096;
    const std::uintmax_t written_goal = 3 * sqlite_checkpointer::k_hard_pages * k_page;
    const int turns = static_cast<int>(written_goal / text.size());
    std::uintmax_t largest = 0;
    {
        sqlite_store store{db};
        ASSERT_NE(store.checkpointer(), nullptr);
        for (int i = 0; i < turns; ++i) {
            const std::string session = "s" + std::to_string(i % 50);
            store.append_messages(session, "key_a", {{.role = "user", .content = text, .created_ms = i}});
            if (i % 1000 == 999)
                store.delete_session("s" + std::to_string((i / 1000) % 50));  // keep the file small
            std::error_code ec;
            const auto size = std::filesystem::file_size(wal, ec);
            if (!ec) largest = std::max(largest, size);
        }
        EXPECT_GT(store.checkpointer()->background_checkpoints(), 0u);
        EXPECT_EQ(store.load_messages("s49").size(), static_cast<std::size_t>(turns / 50));  // never deleted
    }
    // The bound plus one commit's frames (a frame is a page and its 24-byte header). Automatic
    // checkpoints are off: without these the WAL would hold all of it.
    EXPECT_LT(largest, (sqlite_checkpointer::k_hard_pages + 64) * (k_page + 24)) << "largest WAL " << largest;
    EXPECT_EQ(integrity_check(db), "ok");
}

TEST(sqlite_store, in_memory_database_works) {
    sqlite_store s(":memory:");
    s.append_messages("s", "k", {{.role = "user", .content = "hi"}});
    EXPECT_EQ(s.load_messages("s").size(), 1u);
}

// Makes an insert of a message whose content is `poison` fail inside SQLite, as a full disk would,
// through a connection of its own (the store's connection sees the new schema at its next step).
void refuse_messages_with(const std::filesystem::path& db, const std::string& poison) {
    sqlite3* handle = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
    const auto sql = "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages WHEN NEW.content = '" + poison +
                     "' BEGIN SELECT RAISE(ABORT, 'the disk is full'); END;";
    EXPECT_EQ(sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(handle);
    sqlite3_close(handle);
}

session_append turn(std::string session_id, std::string content) {
    return {.session_id = std::move(session_id),
            .key_id = "key_a",
            .messages = {{.role = "user", .content = std::move(content), .created_ms = 1}}};
}

TEST(sqlite_store, append_many_commits_the_batch_in_one_transaction) {
    temp_dir dir;
    sqlite_store s(dir.path() / "sluice.db");
    s.append_messages("owned", "key_b", {{.role = "user", .content = "mine"}});
    EXPECT_EQ(s.append_commits(), 1u);
    std::vector<session_append> batch;
    for (int i = 0; i < 10; ++i) batch.push_back(turn("s" + std::to_string(i), "hi"));
    batch.push_back(turn("owned", "intruder"));  // fails alone, inside the same transaction
    s.append_many(batch);
    EXPECT_EQ(s.append_commits(), 2u);
    for (int i = 0; i < 10; ++i) {
        EXPECT_FALSE(batch[static_cast<std::size_t>(i)].error) << i;
        EXPECT_EQ(s.load_messages("s" + std::to_string(i)).size(), 1u) << i;
    }
    EXPECT_THROW(std::rethrow_exception(batch.back().error), session_conflict);
    EXPECT_EQ(s.load_messages("owned").size(), 1u);
}

TEST(sqlite_store, a_failed_append_many_transaction_fails_every_entry_and_stores_none) {
    temp_dir dir;
    const auto path = dir.path() / "sluice.db";
    sqlite_store s(path);
    s.append_messages("owned", "key_b", {{.role = "user", .content = "mine"}});
    refuse_messages_with(path, "boom");
    std::vector<session_append> batch{turn("s1", "before"), turn("owned", "intruder"), turn("s2", "boom"),
                                      turn("s3", "after")};
    s.append_many(batch);
    EXPECT_EQ(s.append_commits(), 1u);
    for (const auto& entry : batch) {
        ASSERT_TRUE(entry.error) << entry.session_id;
        EXPECT_THROW(std::rethrow_exception(entry.error), store_unavailable) << entry.session_id;
    }
    for (const char* session : {"s1", "s2", "s3"}) {
        EXPECT_TRUE(s.load_messages(session).empty()) << session;
        EXPECT_FALSE(s.session_owner(session)) << session;
    }
    // The connection is usable again: the next batch commits.
    std::vector<session_append> next{turn("s1", "again")};
    s.append_many(next);
    EXPECT_FALSE(next[0].error);
    EXPECT_EQ(s.load_messages("s1").size(), 1u);
    EXPECT_EQ(s.append_commits(), 2u);
}

// A writer killed with SIGKILL in the middle of its appends leaves a file that opens cleanly and holds
// every append that had committed (the child reports each commit through a pipe before the next).
TEST(sqlite_store, sigkill_mid_write_keeps_every_committed_append) {
    temp_dir dir;
    const auto path = dir.path() / "data" / "sluice.db";
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(report[0]);
        try {
            sqlite_store s(path);
            const std::string filler(2000, 'x');  // bigger transactions: more time inside a write
            for (int i = 0;; ++i) {
                s.append_messages("s", "key_a",
                                  {{.role = "user", .content = "q" + std::to_string(i) + filler},
                                   {.role = "assistant", .content = "a" + std::to_string(i) + filler}});
                s.record_usage({"key_a", "local", 1, 1, 1});
                if (::write(report[1], &i, sizeof(i)) != sizeof(i)) ::_exit(3);
            }
        } catch (...) {
            ::_exit(2);
        }
    }
    ::close(report[1]);
    int last = -1;
    int got = 0;
    while (last < 200 && ::read(report[0], &got, sizeof(got)) == sizeof(got)) last = got;
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    // Commits the child finished after our last read may be there too; drain the reports it sent.
    while (::read(report[0], &got, sizeof(got)) == sizeof(got)) last = got;
    ::close(report[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped before it was killed";
    ASSERT_GE(last, 200);

    sqlite_store reopened(path);
    EXPECT_TRUE(reopened.healthy());
    const auto messages = reopened.load_messages("s");
    ASSERT_GE(messages.size(), static_cast<std::size_t>(2 * (last + 1)));
    ASSERT_EQ(messages.size() % 2, 0u) << "an append was torn";
    for (std::size_t i = 0; i < messages.size(); i += 2) {
        const auto n = std::to_string(i / 2);
        EXPECT_TRUE(messages[i].content.starts_with("q" + n + "x")) << i;
        EXPECT_TRUE(messages[i + 1].content.starts_with("a" + n + "x")) << i;
    }
    reopened.append_messages("s", "key_a", {{.role = "user", .content = "after"}});
    EXPECT_EQ(reopened.load_messages("s").back().content, "after");
    EXPECT_EQ(integrity_check(path), "ok");
}

}  // namespace
}  // namespace sluice
