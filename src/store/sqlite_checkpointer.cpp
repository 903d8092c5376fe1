#include "store/sqlite_checkpointer.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <string>

#include "store/store.h"

namespace sluice {

sqlite_checkpointer::sqlite_checkpointer(sqlite3* writer, const std::filesystem::path& path)
    : writer_(writer) {
    const std::string name = path.string();
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(name.c_str(), &own_, flags, nullptr) != SQLITE_OK) {
        const std::string why = own_ ? sqlite3_errmsg(own_) : "out of memory";
        sqlite3_close(own_);
        throw store_unavailable("sqlite store: cannot open " + name + " for checkpoints: " + why);
    }
    // A RESTART checkpoint waits for the writer this long at most (it is between two transactions
    // within milliseconds), then gives up until the next commit asks again.
    sqlite3_busy_timeout(own_, 1000);
    sqlite3_wal_autocheckpoint(writer_, 0);  // replaced by the hook below
    sqlite3_wal_hook(writer_, &sqlite_checkpointer::on_commit, this);
    thread_ = std::thread([this] { run(); });
}

sqlite_checkpointer::~sqlite_checkpointer() {
    sqlite3_wal_hook(writer_, nullptr, nullptr);
    {
        std::lock_guard lock{mutex_};
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
    sqlite3_close(own_);
}

// In the writer's commit, with the store's mutex held: only the hard bound does any I/O here.
int sqlite_checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int pages) {
    auto& me = *static_cast<sqlite_checkpointer*>(self);
    if (pages >= k_hard_pages) {
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        me.inline_.fetch_add(1);
    }
    if (pages >= k_checkpoint_pages) {
        {
            std::lock_guard lock{me.mutex_};
            me.pages_ = pages;
        }
        me.wake_.notify_one();
    }
    return SQLITE_OK;
}

void sqlite_checkpointer::run() {
    std::unique_lock lock{mutex_};
    for (;;) {
        wake_.wait(lock, [this] { return stop_ || pages_ >= k_checkpoint_pages; });
        if (stop_) return;
        const int pages = pages_;
        pages_ = 0;
        lock.unlock();
        const int mode = pages >= k_restart_pages ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE;
        const int rc = sqlite3_wal_checkpoint_v2(own_, nullptr, mode, nullptr, nullptr);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            spdlog::warn("sqlite store: a WAL checkpoint failed: {}", sqlite3_errmsg(own_));
        }
        background_.fetch_add(1);
        lock.lock();
    }
}

}  // namespace sluice
