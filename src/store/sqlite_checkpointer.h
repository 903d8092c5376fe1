#pragma once
// WAL checkpoints of the embedded store, off the request path. SQLite's automatic checkpoint runs
// inside the commit that crosses 1,000 WAL pages: that commit (and every store call waiting on the
// store's mutex) pays for copying the WAL into the database and its fsync. Here the writer
// connection only notes the WAL's size (a wal_hook: no I/O), and a thread of its own, on a
// connection of its own, runs the checkpoints:
//
//   - past k_checkpoint_pages a PASSIVE checkpoint: it copies what it can without waiting for
//     anyone, and the next write after a complete one starts the WAL from its beginning again;
//   - past k_restart_pages (writes kept coming, so no PASSIVE pass ever caught up) a RESTART
//     checkpoint: it waits for the writer between two transactions (the busy timeout) and makes the
//     next write start the WAL over, so the file stops growing;
//   - past k_hard_pages (the thread could not keep up at all) the writer checkpoints in its own
//     commit, as SQLite would: the WAL has a bound whatever happens.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

struct sqlite3;

namespace sluice {

class sqlite_checkpointer {
  public:
    static constexpr int k_checkpoint_pages = 1000;  // SQLite's own autocheckpoint point
    static constexpr int k_restart_pages = 4000;     // about 16 MB of WAL with 4 KiB pages
    static constexpr int k_hard_pages = 16000;       // about 64 MB

    // Hooks `writer` (the store's connection; automatic checkpoints are turned off on it) and opens
    // a connection of its own to `path`. Throws store_unavailable when that cannot be opened.
    sqlite_checkpointer(sqlite3* writer, const std::filesystem::path& path);
    // Stops the thread after its current checkpoint; the last one is left to the store's close.
    ~sqlite_checkpointer();
    sqlite_checkpointer(const sqlite_checkpointer&) = delete;
    sqlite_checkpointer& operator=(const sqlite_checkpointer&) = delete;

    // For tests and metrics: checkpoints run by the thread, and by the writer past k_hard_pages.
    std::uint64_t background_checkpoints() const { return background_.load(); }
    std::uint64_t inline_checkpoints() const { return inline_.load(); }

  private:
    static int on_commit(void* self, sqlite3* db, const char* schema, int pages);
    void run();

    sqlite3* writer_;
    sqlite3* own_ = nullptr;
    std::mutex mutex_;
    std::condition_variable wake_;
    int pages_ = 0;  // the WAL's size at the last commit
    bool stop_ = false;
    std::atomic<std::uint64_t> background_{0};
    std::atomic<std::uint64_t> inline_{0};
    std::thread thread_;
};

}  // namespace sluice
