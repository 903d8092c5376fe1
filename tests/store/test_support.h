#pragma once
// Helpers for the store tests: a temporary directory and a real redis-server child process.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// A redis-server on 127.0.0.1 with persistence off, in its own temp dir. start() picks a free port
// the first time and reuses it on restart, so clients configured with the port find it again.
class redis_server {
  public:
    redis_server() = default;
    ~redis_server();
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    // Returns an empty string on success, else why redis-server could not start. `extra_args` (e.g.
    // {"--requirepass", "pw"}) are kept for restarts.
    std::string start(std::vector<std::string> extra_args = {});
    void stop();         // SIGKILL: the data is gone
    void stop_saving();  // SHUTDOWN SAVE: the next start() loads the data again
    void pause();        // SIGSTOP: connections stay open, nothing answers
    void resume();       // SIGCONT
    bool running() const { return pid_ > 0; }
    int port() const { return port_; }
    std::string url(int db = 0) const {
        return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
    }
    // Removes every key (between tests that share one server).
    void flush_all() const;

  private:
    std::string launch();
    bool answers_ping() const;

    std::optional<temp_dir> dir_;
    std::vector<std::string> extra_args_;
    pid_t pid_ = -1;
    int port_ = 0;
};

// One server shared by every test in the binary, started on first use; nullptr with `why` set when
// redis-server cannot start.
redis_server* shared_redis(std::string& why);

}  // namespace sluice::testing
