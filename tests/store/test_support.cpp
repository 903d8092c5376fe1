#include "store/test_support.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace sluice::testing {

namespace {

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
}

}  // namespace

temp_dir::temp_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("sluice-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

redis_server::~redis_server() {
    stop();
}

bool redis_server::answers_ping() const {
    const timeval timeout{0, 200'000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    bool ok = false;
    if (c && !c->err) {
        auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
        // A password-protected server answers NOAUTH: it is up all the same.
        ok =
            reply &&
            (reply->type == REDIS_REPLY_STATUS ||
             (reply->type == REDIS_REPLY_ERROR && std::string(reply->str, reply->len).starts_with("NOAUTH")));
        if (reply) freeReplyObject(reply);
    }
    if (c) redisFree(c);
    return ok;
}

std::string redis_server::launch() {
    const std::string port = std::to_string(port_);
    const std::string dir = dir_->path().string();
    const std::string log = (dir_->path() / "redis.log").string();
    std::vector<std::string> args{
        "redis-server", "--port", port, "--bind",    "127.0.0.1", "--save",      "",  "--appendonly",
        "no",           "--dir",  dir,  "--logfile", log,         "--daemonize", "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
        ::execvp("redis-server", argv.data());
        ::_exit(127);
    }
    pid_ = pid;
    // Poll until it answers (or exits): readiness, bounded by a generous deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "redis-server is not installed"
                                                                   : "redis-server exited at start-up";
        }
        if (answers_ping()) return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    return "redis-server did not answer PING within 10 s";
}

std::string redis_server::start(std::vector<std::string> extra_args) {
    if (running()) return {};
    if (!extra_args.empty()) extra_args_ = std::move(extra_args);
    if (!dir_) dir_.emplace();
    if (port_ != 0) return launch();
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {  // another process may take the port first
        port_ = free_port();
        if (port_ == 0) return "no free port";
        why = launch();
        if (why.empty()) return {};
    }
    port_ = 0;
    return why;
}

void redis_server::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);  // works on a paused server too
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void redis_server::stop_saving() {
    if (pid_ <= 0) return;
    const timeval timeout{5, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    if (c && !c->err) {
        if (auto* reply = redisCommand(c, "SHUTDOWN SAVE")) freeReplyObject(reply);
    }
    if (c) redisFree(c);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void redis_server::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void redis_server::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void redis_server::flush_all() const {
    const timeval timeout{2, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    if (c && !c->err) {
        if (auto* reply = redisCommand(c, "FLUSHALL")) freeReplyObject(reply);
    }
    if (c) redisFree(c);
}

redis_server* shared_redis(std::string& why) {
    static redis_server server;
    static const std::string start_error = server.start();
    why = start_error;
    return start_error.empty() ? &server : nullptr;
}

}  // namespace sluice::testing
