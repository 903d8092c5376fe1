// redis_store's part in resumable streams shared between processes: a stream's events in a Redis
// Stream, its state in a hash, the producer's heartbeat and a remote reader's presence in two keys
// that expire unless refreshed. Each call is one Lua script: one atomic round trip.
#include <charconv>
#include <string_view>

#include "store/redis_store.h"

namespace sluice {

namespace {

// KEYS: log, meta, alive, reader. ARGV: owner, finished, overflowed, orphan, alive_ttl_ms, keep_ms,
// then (id, text) pairs. Events at or below `last` are there already (a retried write) and skipped;
// entry ids are 0-<event id>, so XRANGE after an event id is exact.
constexpr std::string_view k_publish = R"lua(
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
local newest = nil
for i = 7, #ARGV - 1, 2 do
  if tonumber(ARGV[i]) > last then
    redis.call('XADD', KEYS[1], '0-' .. ARGV[i], 'e', ARGV[i + 1])
    last = tonumber(ARGV[i])
    newest = ARGV[i]
  end
end
if newest then redis.call('HSET', KEYS[2], 'last', newest) end
redis.call('HSET', KEYS[2], 'owner', ARGV[1])
if ARGV[2] == '1' then redis.call('HSET', KEYS[2], 'done', '1') end
if ARGV[3] == '1' then redis.call('HSET', KEYS[2], 'overflow', '1') end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'orphan', ARGV[4]) end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[3])
else
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
local cancel = redis.call('HGET', KEYS[2], 'cancel')
return {cancel == '1' and 1 or 0, redis.call('EXISTS', KEYS[4])}
)lua";

// KEYS: log, meta, alive, reader. ARGV: after, max events, reader_ttl_ms, cancel.
constexpr std::string_view k_read = R"lua(
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
if ARGV[4] == '1' then redis.call('HSET', KEYS[2], 'cancel', '1') end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[4], '1', 'PX', ARGV[3]) end
local events = {}
if tonumber(ARGV[2]) > 0 then
  events = redis.call('XRANGE', KEYS[1], '(0-' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return {redis.call('HGETALL', KEYS[2]), events, redis.call('EXISTS', KEYS[3])}
)lua";

std::uint64_t event_id_of(std::string_view entry_id) {
    // "0-<event id>"
    const auto dash = entry_id.find('-');
    if (dash == std::string_view::npos) throw store_unavailable("redis store: a log entry id is malformed");
    std::uint64_t id = 0;
    const auto digits = entry_id.substr(dash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        throw store_unavailable("redis store: a log entry id is malformed");
    return id;
}

}  // namespace

shared_log_feedback redis_store::publish_log(const shared_log_update& update) {
    std::vector<std::string> args{
        update.owner,        update.finished ? "1" : "0",         update.overflowed ? "1" : "0",
        update.orphan_event, std::to_string(update.alive_ttl_ms), std::to_string(update.keep_ms)};
    args.reserve(args.size() + 2 * update.events.size());
    for (std::size_t i = 0; i < update.events.size(); ++i) {
        args.push_back(std::to_string(update.first_id + i));
        args.push_back(update.events[i]);
    }
    const auto& id = update.id;
    const auto reply = connection()->eval(k_publish,
                                          {prefix_ + "log:" + id, prefix_ + "log_meta:" + id,
                                           prefix_ + "log_alive:" + id, prefix_ + "log_reader:" + id},
                                          args);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
        throw store_unavailable("redis store: unexpected reply to a log write");
    return {.cancel_requested = reply_int(reply->element[0]) == 1,
            .remote_reader = reply_int(reply->element[1]) == 1};
}

std::optional<shared_log_slice> redis_store::read_shared_log(const std::string& id, std::uint64_t after,
                                                             std::size_t max_events,
                                                             std::int64_t reader_ttl_ms, bool cancel) {
    const auto reply = connection()->eval(k_read,
                                          {prefix_ + "log:" + id, prefix_ + "log_meta:" + id,
                                           prefix_ + "log_alive:" + id, prefix_ + "log_reader:" + id},
                                          {std::to_string(after), std::to_string(max_events),
                                           std::to_string(reader_ttl_ms), cancel ? "1" : "0"});
    if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[1]->type != REDIS_REPLY_ARRAY)
        throw store_unavailable("redis store: unexpected reply to a log read");
    shared_log_slice slice;
    const redisReply* meta = reply->element[0];
    for (std::size_t i = 0; i + 1 < meta->elements; i += 2) {
        const auto name = reply_string(meta->element[i]);
        const redisReply* value = meta->element[i + 1];
        if (name == "owner")
            slice.owner = reply_string(value);
        else if (name == "last")
            slice.last_id = static_cast<std::uint64_t>(reply_int(value));
        else if (name == "done")
            slice.finished = reply_int(value) == 1;
        else if (name == "overflow")
            slice.overflowed = reply_int(value) == 1;
        else if (name == "orphan")
            slice.orphan_event = reply_string(value);
    }
    const redisReply* events = reply->element[1];
    slice.events.reserve(events->elements);
    for (std::size_t i = 0; i < events->elements; ++i) {
        const redisReply* entry = events->element[i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
            entry->element[1]->type != REDIS_REPLY_ARRAY || entry->element[1]->elements != 2)
            throw store_unavailable("redis store: unexpected log entry");
        slice.events.emplace_back(event_id_of(reply_string(entry->element[0])),
                                  reply_string(entry->element[1]->element[1]));
    }
    slice.producer_alive = reply_int(reply->element[2]) == 1;
    return slice;
}

}  // namespace sluice
