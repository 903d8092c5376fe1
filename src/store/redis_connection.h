#pragma once
// One synchronous hiredis connection with connect and command timeouts. It connects on first use,
// drops itself after any failure and reconnects on the next call, so a Redis that comes back is
// used again without anyone restarting anything. Not thread-safe: redis_store leases each
// connection to one caller at a time.
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"
#include "store/store_url.h"

namespace sluice {

struct redis_reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using redis_reply = std::unique_ptr<redisReply, redis_reply_deleter>;

class redis_connection {
  public:
    redis_connection(const redis_url& url, const std::string& password) : url_(url), password_(password) {}
    ~redis_connection() { close(); }
    redis_connection(const redis_connection&) = delete;
    redis_connection& operator=(const redis_connection&) = delete;

    // Throws store_unavailable on any failure, error replies included; the message names the server
    // and the command, never the arguments (which may hold the password).
    redis_reply command(const std::vector<std::string>& args);
    // EVAL: a Lua script runs atomically, in one round trip.
    redis_reply eval(std::string_view script, const std::vector<std::string>& keys,
                     const std::vector<std::string>& args);
    void connect();
    void close();

  private:
    std::string where() const { return url_.host + ":" + std::to_string(url_.port); }

    const redis_url& url_;
    const std::string& password_;
    redisContext* context_ = nullptr;
};

// Reply helpers: a reply of an unexpected shape is a store failure, not a crash.
std::string reply_string(const redisReply* r);
std::int64_t reply_int(const redisReply* r);

}  // namespace sluice
