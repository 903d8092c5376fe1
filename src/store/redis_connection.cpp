#include "store/redis_connection.h"

#include <poll.h>

namespace sluice {

namespace {

constexpr timeval k_connect_timeout{1, 0};
constexpr timeval k_command_timeout{1, 0};

}  // namespace

void redis_connection::close() {
    if (context_) redisFree(context_);
    context_ = nullptr;
}

void redis_connection::connect() {
    close();
    context_ = redisConnectWithTimeout(url_.host.c_str(), url_.port, k_connect_timeout);
    if (!context_ || context_->err) {
        const std::string why = context_ ? context_->errstr : "out of memory";
        close();
        throw store_unavailable("redis store: cannot connect to " + where() + ": " + why);
    }
    if (redisSetTimeout(context_, k_command_timeout) != REDIS_OK) {
        close();
        throw store_unavailable("redis store: cannot set the command timeout for " + where());
    }
    try {
        if (!password_.empty()) command({"AUTH", password_});
        if (url_.db != 0) command({"SELECT", std::to_string(url_.db)});
    } catch (...) {
        close();  // half set up: the next call starts again from the connect
        throw;
    }
}

redis_reply redis_connection::command(const std::vector<std::string>& args) {
    // Between our calls Redis never speaks first, so a readable socket means it closed (e.g. it
    // restarted): reconnect before sending, so a Redis restart costs no request a failure.
    if (context_) {
        pollfd idle{.fd = context_->fd, .events = POLLIN, .revents = 0};
        if (::poll(&idle, 1, 0) != 0) close();
    }
    if (!context_) connect();
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    redis_reply reply(static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data())));
    if (!reply) {
        const std::string why = context_->errstr[0] ? context_->errstr : "connection lost";
        close();  // the next call reconnects
        throw store_unavailable("redis store: " + where() + ": " + why);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        const std::string why(reply->str, reply->len);
        // A server that is loading, became a replica or lost our AUTH may recover: start afresh.
        if (why.starts_with("LOADING") || why.starts_with("READONLY") || why.starts_with("NOAUTH")) close();
        throw store_unavailable("redis store: " + where() + ": " + args.front() + " failed: " + why);
    }
    return reply;
}

redis_reply redis_connection::eval(std::string_view script, const std::vector<std::string>& keys,
                                   const std::vector<std::string>& args) {
    std::vector<std::string> argv{"EVAL", std::string(script), std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return command(argv);
}

std::string reply_string(const redisReply* r) {
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return std::string(r->str, r->len);
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    return {};
}

std::int64_t reply_int(const redisReply* r) {
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    const auto text = reply_string(r);
    try {
        return text.empty() ? 0 : std::stoll(text);
    } catch (const std::exception&) {
        throw store_unavailable("redis store: unexpected non-number in a reply");
    }
}

}  // namespace sluice
