#include "store/redis_store.h"

#include "core/chat_json.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>

#include <spdlog/spdlog.h>
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <tuple>

#include "core/ids.h"
#include "store/rate_window.h"

namespace sluice {

namespace {

// KEYS: key:<id>, keyhash:<hash>, keys. ARGV: id, then field/value pairs.
constexpr std::string_view k_create_key = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('duplicate key id or hash')
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
)lua";

// KEYS: keyhash:<hash>. ARGV: prefix.
constexpr std::string_view k_find_key = R"lua(
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. 'key:' .. id)
)lua";

// KEYS: keys. ARGV: prefix.
constexpr std::string_view k_list_keys = R"lua(
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('HGETALL', ARGV[1] .. 'key:' .. id)
  if #record > 0 then table.insert(out, record) end
end
return out
)lua";

// KEYS: key:<id>.
constexpr std::string_view k_revoke_key = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
)lua";

// KEYS: session:<id>, messages:<id>. ARGV: owner, created_ms, updated_ms, messages...
constexpr std::string_view k_append = R"lua(
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
if not owner then redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created_ms', ARGV[2]) end
redis.call('HSET', KEYS[1], 'updated_ms', ARGV[3])
for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return 1
)lua";

// k_append for a batch of turns in one round trip. KEYS: session:<id>, messages:<id> of each turn.
// ARGV: per turn key_id, created_ms, updated_ms, message count, then its messages. Returns one
// 1 (stored) or 0 (another key's session: nothing of that turn stored) per turn.
constexpr std::string_view k_append_many = R"lua(
local out = {}
local a = 1
for t = 1, #KEYS / 2 do
  local session, list = KEYS[2 * t - 1], KEYS[2 * t]
  local key, created, updated, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local owner = redis.call('HGET', session, 'owner')
  if owner and owner ~= key then
    out[t] = 0
  else
    if not owner then redis.call('HSET', session, 'owner', key, 'created_ms', created) end
    redis.call('HSET', session, 'updated_ms', updated)
    for i = a + 4, a + 3 + n do redis.call('RPUSH', list, ARGV[i]) end
    out[t] = 1
  end
  a = a + 4 + n
end
return out
)lua";

// KEYS: rate:<key>:<window>. ARGV: requests_per_minute, tokens_per_minute, ttl seconds.
// Returns {requests, tokens, admitted}.
constexpr std::string_view k_admit = R"lua(
local requests = tonumber(redis.call('HGET', KEYS[1], 'requests') or '0')
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if (rpm > 0 and requests >= rpm) or (tpm > 0 and tokens >= tpm) then
  return {requests, tokens, 0}
end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {requests, tokens, 1}
)lua";

// KEYS: rate:<key>:<window>. ARGV: tokens, ttl seconds.
constexpr std::string_view k_add_tokens = R"lua(
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
)lua";

// KEYS: streams:<key>. ARGV: now_ms, max (0 = none), slot expiry ms, slot name, key ttl ms.
constexpr std::string_view k_acquire_stream = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local max = tonumber(ARGV[2])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
)lua";

// KEYS: usage:<key>:<model>, usage_models:<key>, usage_keys. ARGV: key id, model, five counts.
constexpr std::string_view k_record_usage = R"lua(
local fields = {'requests', 'prompt_tokens', 'completion_tokens', 'cancelled', 'errors'}
for i, field in ipairs(fields) do redis.call('HINCRBY', KEYS[1], field, ARGV[i + 2]) end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
)lua";

// KEYS: usage_keys. ARGV: prefix, key id or ''. Returns flat rows of 7: key, model, five counts.
constexpr std::string_view k_usage = R"lua(
local ids = {}
if ARGV[2] ~= '' then ids = {ARGV[2]} else ids = redis.call('SMEMBERS', KEYS[1]) end
local out = {}
local fields = {'requests', 'prompt_tokens', 'completion_tokens', 'cancelled', 'errors'}
for _, id in ipairs(ids) do
  for _, model in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'usage_models:' .. id)) do
    local counts = redis.call('HMGET', ARGV[1] .. 'usage:' .. id .. ':' .. model, unpack(fields))
    table.insert(out, id)
    table.insert(out, model)
    for i = 1, 5 do table.insert(out, counts[i] or '0') end
  end
end
return out
)lua";

// KEYS: session_lock:<id>. ARGV: token, ttl ms. 1 while the lock is the token's.
constexpr std::string_view k_refresh_lock = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)lua";

// KEYS: session_lock:<id>. ARGV: token.
constexpr std::string_view k_unlock = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// KEYS: response:<id>. ARGV: expires_ms, then field/value pairs. A response replaced whole.
constexpr std::string_view k_save_response = R"lua(
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
)lua";

std::int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::map<std::string, std::string> as_map(const redisReply* r) {
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
        out[reply_string(r->element[i])] = reply_string(r->element[i + 1]);
    }
    return out;
}

std::int64_t field_int(const std::map<std::string, std::string>& m, const std::string& name) {
    const auto it = m.find(name);
    if (it == m.end() || it->second.empty()) return 0;
    try {
        return std::stoll(it->second);
    } catch (const std::exception&) {
        throw store_unavailable("redis store: field " + name + " is not a number");
    }
}

api_key_record key_from_map(const std::map<std::string, std::string>& m) {
    auto get = [&](const char* name) {
        const auto it = m.find(name);
        return it == m.end() ? std::string() : it->second;
    };
    api_key_record key{.id = get("id"),
                       .name = get("name"),
                       .hash = get("hash"),
                       .created_ms = field_int(m, "created_ms"),
                       .revoked = get("revoked") == "1"};
    if (m.contains("requests_per_minute")) {
        key.limits =
            limits_config{.requests_per_minute = static_cast<int>(field_int(m, "requests_per_minute")),
                          .tokens_per_minute = static_cast<int>(field_int(m, "tokens_per_minute")),
                          .max_concurrent_streams = static_cast<int>(field_int(m, "max_concurrent_streams"))};
    }
    return key;
}

std::string encode_message(const stored_message& m) {
    boost::json::object message{{"role", m.role},
                                {"content", m.content},
                                {"model", m.model},
                                {"prompt_tokens", m.prompt_tokens},
                                {"completion_tokens", m.completion_tokens},
                                {"finish_reason", m.finish_reason},
                                {"created_ms", m.created_ms}};
    if (!m.parts.empty()) message["parts"] = parts_to_json_array(m.parts);
    return boost::json::serialize(message);
}

stored_message decode_message(std::string_view text) {
    boost::system::error_code ec;
    const auto value = boost::json::parse(text, ec);
    if (ec || !value.is_object()) throw store_unavailable("redis store: a stored message is not valid JSON");
    const auto& o = value.get_object();
    auto str = [&](const char* name) {
        const auto* v = o.if_contains(name);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    auto num = [&](const char* name) -> std::int64_t {
        const auto* v = o.if_contains(name);
        return v && v->is_int64() ? v->get_int64() : 0;
    };
    std::vector<content_part> parts;
    if (const auto* stored = o.if_contains("parts"); stored && stored->is_array())
        parts = parts_from_json(boost::json::serialize(*stored));
    return {.role = str("role"),
            .content = str("content"),
            .parts = std::move(parts),
            .model = str("model"),
            .prompt_tokens = static_cast<int>(num("prompt_tokens")),
            .completion_tokens = static_cast<int>(num("completion_tokens")),
            .finish_reason = str("finish_reason"),
            .created_ms = num("created_ms")};
}

// Rate windows expire after two windows: long enough to finish counting, short enough to vanish.
const std::string k_rate_ttl_s = std::to_string(2 * k_rate_window_ms / 1000);

}  // namespace

redis_store::redis_store(redis_url url, std::string password)
    : url_(std::move(url)), password_(std::move(password)), instance_id_(new_id("inst_")) {
    // hiredis writes with plain write(): a Redis that vanished would otherwise kill the whole process
    // with SIGPIPE instead of failing one call. Left alone when someone already chose a handler.
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
        ::signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < k_connections; ++i)
        idle_.push_back(std::make_unique<redis_connection>(url_, password_));
    connection()->connect();  // fail at start-up, with a clear message, when Redis is not there
}

redis_store::~redis_store() = default;

redis_store::lease redis_store::connection() {
    std::unique_lock lock(pool_mutex_);
    pool_returned_.wait(lock, [&] { return !idle_.empty(); });
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return lease(*this, std::move(c));
}

redis_store::lease::~lease() {
    {
        std::lock_guard lock(owner_.pool_mutex_);
        owner_.idle_.push_back(std::move(c_));
    }
    owner_.pool_returned_.notify_one();
}

void redis_store::create_key(const api_key_record& key) {
    std::vector<std::string> args{key.id,
                                  "id",
                                  key.id,
                                  "name",
                                  key.name,
                                  "hash",
                                  key.hash,
                                  "created_ms",
                                  std::to_string(key.created_ms),
                                  "revoked",
                                  key.revoked ? "1" : "0"};
    if (key.limits) {
        args.insert(args.end(),
                    {"requests_per_minute", std::to_string(key.limits->requests_per_minute),
                     "tokens_per_minute", std::to_string(key.limits->tokens_per_minute),
                     "max_concurrent_streams", std::to_string(key.limits->max_concurrent_streams)});
    }
    connection()->eval(k_create_key,
                       {prefix_ + "key:" + key.id, prefix_ + "keyhash:" + key.hash, prefix_ + "keys"}, args);
}

std::optional<api_key_record> redis_store::find_key_by_hash(const std::string& hash) {
    const auto reply = connection()->eval(k_find_key, {prefix_ + "keyhash:" + hash}, {prefix_});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return std::nullopt;
    return key_from_map(as_map(reply.get()));
}

std::vector<api_key_record> redis_store::list_keys() {
    std::vector<api_key_record> keys;
    {
        const auto reply = connection()->eval(k_list_keys, {prefix_ + "keys"}, {prefix_});
        for (std::size_t i = 0; i < reply->elements; ++i)
            keys.push_back(key_from_map(as_map(reply->element[i])));
    }
    std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
        return std::tie(a.created_ms, a.id) < std::tie(b.created_ms, b.id);
    });
    return keys;
}

bool redis_store::revoke_key(const std::string& id) {
    return reply_int(connection()->eval(k_revoke_key, {prefix_ + "key:" + id}, {}).get()) == 1;
}

std::optional<std::string> redis_store::session_owner(const std::string& session_id) {
    const auto reply = connection()->command({"HGET", prefix_ + "session:" + session_id, "owner"});
    if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
    return reply_string(reply.get());
}

std::vector<stored_message> redis_store::load_messages(const std::string& session_id) {
    std::vector<stored_message> messages;
    const auto reply = connection()->command({"LRANGE", prefix_ + "messages:" + session_id, "0", "-1"});
    messages.reserve(reply->elements);
    for (std::size_t i = 0; i < reply->elements; ++i) {
        const auto* e = reply->element[i];
        messages.push_back(decode_message(std::string_view(e->str, e->len)));
    }
    return messages;
}

void redis_store::append_messages(const std::string& session_id, const std::string& key_id,
                                  const std::vector<stored_message>& messages) {
    const std::int64_t first = messages.empty() ? 0 : messages.front().created_ms;
    const std::int64_t last = messages.empty() ? 0 : messages.back().created_ms;
    std::vector<std::string> args{key_id, std::to_string(first), std::to_string(last)};
    for (const auto& m : messages) args.push_back(encode_message(m));
    const auto reply = connection()->eval(
        k_append, {prefix_ + "session:" + session_id, prefix_ + "messages:" + session_id}, args);
    if (reply_int(reply.get()) == 0) throw session_conflict("session belongs to another key");
}

void redis_store::append_many(std::vector<session_append>& batch) {
    if (batch.empty()) return;
    std::vector<std::string> keys;
    std::vector<std::string> args;
    keys.reserve(2 * batch.size());
    for (const auto& entry : batch) {
        const auto& m = entry.messages;
        keys.push_back(prefix_ + "session:" + entry.session_id);
        keys.push_back(prefix_ + "messages:" + entry.session_id);
        args.push_back(entry.key_id);
        args.push_back(std::to_string(m.empty() ? 0 : m.front().created_ms));
        args.push_back(std::to_string(m.empty() ? 0 : m.back().created_ms));
        args.push_back(std::to_string(m.size()));
        for (const auto& message : m) args.push_back(encode_message(message));
    }
    try {
        const auto reply = connection()->eval(k_append_many, keys, args);
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != batch.size())
            throw store_unavailable("redis store: unexpected reply to a batch of turns");
        for (std::size_t i = 0; i < batch.size(); ++i) {
            batch[i].error =
                reply_int(reply->element[i]) == 1
                    ? nullptr
                    : std::make_exception_ptr(session_conflict("session belongs to another key"));
        }
    } catch (const store_unavailable&) {
        // The script ran whole or not at all: every turn of the batch shares its fate.
        const auto error = std::current_exception();
        for (auto& entry : batch) entry.error = error;
    }
}

bool redis_store::delete_session(const std::string& session_id) {
    const auto reply =
        connection()->command({"DEL", prefix_ + "session:" + session_id, prefix_ + "messages:" + session_id});
    return reply_int(reply.get()) > 0;
}

void redis_store::save_response(const stored_response& r) {
    connection()->eval(k_save_response, {prefix_ + "response:" + r.id},
                       {std::to_string(r.expires_ms), "id", r.id, "key_id", r.key_id, "previous_response_id",
                        r.previous_response_id, "model", r.model, "status", r.status, "created_ms",
                        std::to_string(r.created_ms), "expires_ms", std::to_string(r.expires_ms),
                        "input_items", r.input_items, "response", r.response});
}

std::optional<stored_response> redis_store::load_response(const std::string& id, std::int64_t now_ms) {
    const auto reply = connection()->command({"HGETALL", prefix_ + "response:" + id});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return std::nullopt;
    const auto m = as_map(reply.get());
    auto get = [&](const char* name) {
        const auto it = m.find(name);
        return it == m.end() ? std::string() : it->second;
    };
    stored_response r{.id = get("id"),
                      .key_id = get("key_id"),
                      .previous_response_id = get("previous_response_id"),
                      .model = get("model"),
                      .status = get("status"),
                      .created_ms = field_int(m, "created_ms"),
                      .expires_ms = field_int(m, "expires_ms"),
                      .input_items = get("input_items"),
                      .response = get("response")};
    if (r.expires_ms <= now_ms) return std::nullopt;  // Redis expires it a moment later
    return r;
}

bool redis_store::delete_response(const std::string& id) {
    return reply_int(connection()->command({"DEL", prefix_ + "response:" + id}).get()) > 0;
}

rate_decision redis_store::admit_request(const std::string& key_id, const limits_config& limits,
                                         std::int64_t now_ms) {
    if (limits.requests_per_minute <= 0 && limits.tokens_per_minute <= 0) return {};
    const auto window_key = prefix_ + "rate:" + key_id + ":" + std::to_string(rate_window_start(now_ms));
    const auto reply = connection()->eval(
        k_admit, {window_key},
        {std::to_string(limits.requests_per_minute), std::to_string(limits.tokens_per_minute), k_rate_ttl_s});
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        throw store_unavailable("redis store: unexpected reply to the rate check");
    }
    return decide_rate(limits, reply_int(reply->element[0]), reply_int(reply->element[1]), now_ms);
}

void redis_store::add_tokens(const std::string& key_id, int tokens, std::int64_t now_ms) {
    if (tokens <= 0) return;
    const auto window_key = prefix_ + "rate:" + key_id + ":" + std::to_string(rate_window_start(now_ms));
    connection()->eval(k_add_tokens, {window_key}, {std::to_string(tokens), k_rate_ttl_s});
}

bool redis_store::acquire_stream(const std::string& key_id, int max_streams) {
    const std::int64_t now = wall_clock_ms();
    auto c = connection();
    std::vector<std::pair<std::string, std::string>> pending;
    std::string slot;
    {
        std::lock_guard lock(slots_mutex_);
        pending.swap(pending_releases_);
        slot = instance_id_ + ":" + std::to_string(next_slot_++);
    }
    while (!pending.empty()) {
        try {
            c->command({"ZREM", prefix_ + "streams:" + pending.back().first, pending.back().second});
        } catch (const store_unavailable&) {
            std::lock_guard lock(slots_mutex_);
            pending_releases_.insert(pending_releases_.end(), pending.begin(), pending.end());
            throw;
        }
        pending.pop_back();
    }
    const auto reply =
        c->eval(k_acquire_stream, {prefix_ + "streams:" + key_id},
                {std::to_string(now), std::to_string(std::max(0, max_streams)),
                 std::to_string(now + k_stream_slot_ttl_ms), slot, std::to_string(k_stream_slot_ttl_ms)});
    if (reply_int(reply.get()) != 1) return false;
    std::lock_guard lock(slots_mutex_);
    slots_[key_id].push_back(std::move(slot));
    return true;
}

void redis_store::release_stream(const std::string& key_id) {
    std::string slot;
    {
        std::lock_guard lock(slots_mutex_);
        auto it = slots_.find(key_id);
        if (it == slots_.end() || it->second.empty()) return;
        slot = std::move(it->second.back());
        it->second.pop_back();
        if (it->second.empty()) slots_.erase(it);
    }
    try {
        connection()->command({"ZREM", prefix_ + "streams:" + key_id, slot});
    } catch (const store_unavailable& e) {
        spdlog::warn("{}; the stream slot will be freed when Redis is back", e.what());
        std::lock_guard lock(slots_mutex_);
        pending_releases_.emplace_back(key_id, std::move(slot));
    }
}

bool redis_store::try_lock_session(const std::string& session_id, const std::string& token,
                                   std::int64_t ttl_ms) {
    const auto reply = connection()->command(
        {"SET", prefix_ + "session_lock:" + session_id, token, "NX", "PX", std::to_string(ttl_ms)});
    return reply->type == REDIS_REPLY_STATUS;  // +OK; nil when another holds it
}

bool redis_store::refresh_session_lock(const std::string& session_id, const std::string& token,
                                       std::int64_t ttl_ms) {
    const auto reply = connection()->eval(k_refresh_lock, {prefix_ + "session_lock:" + session_id},
                                          {token, std::to_string(ttl_ms)});
    return reply_int(reply.get()) == 1;
}

void redis_store::unlock_session(const std::string& session_id, const std::string& token) {
    connection()->eval(k_unlock, {prefix_ + "session_lock:" + session_id}, {token});
}

void redis_store::record_usage(const usage_delta& d) {
    connection()->eval(
        k_record_usage,
        {prefix_ + "usage:" + d.key_id + ":" + d.model, prefix_ + "usage_models:" + d.key_id,
         prefix_ + "usage_keys"},
        {d.key_id, d.model, std::to_string(d.requests), std::to_string(d.prompt_tokens),
         std::to_string(d.completion_tokens), std::to_string(d.cancelled), std::to_string(d.errors)});
}

std::vector<usage_row> redis_store::usage(const std::optional<std::string>& key_id) {
    std::vector<usage_row> rows;
    {
        const auto reply =
            connection()->eval(k_usage, {prefix_ + "usage_keys"}, {prefix_, key_id.value_or("")});
        for (std::size_t i = 0; i + 6 < reply->elements; i += 7) {
            auto* const* e = reply->element + i;
            rows.push_back({reply_string(e[0]), reply_string(e[1]), reply_int(e[2]), reply_int(e[3]),
                            reply_int(e[4]), reply_int(e[5]), reply_int(e[6])});
        }
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return std::tie(a.key_id, a.model) < std::tie(b.key_id, b.model);
    });
    return rows;
}

bool redis_store::healthy() {
    try {
        return reply_string(connection()->command({"PING"}).get()) == "PONG";
    } catch (const store_unavailable&) {
        return false;
    }
}

}  // namespace sluice
