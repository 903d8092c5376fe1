#include "streaming/stream_log.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "core/ids.h"
#include "http/sse.h"

namespace sluice {

namespace net = boost::asio;

namespace {

constexpr std::string_view k_done_event = "data: [DONE]\n\n";
// What a reader learns when the log passed its bound: every client may ignore it (a comment).
constexpr std::string_view k_overflow_notice =
    ": sluice: this stream is no longer resumable (its log passed resume.max_bytes)\n\n";
// A producer with readers waits this long between looks at the reader count.
constexpr auto k_idle_look = std::chrono::hours{1};

bool is_cancelled(const net::cancellation_state& state) {
    return state.cancelled() != net::cancellation_type::none;
}

// Each payload of a chunk-framed batch (`<hex size>\r\n<payload>\r\n`...).
template <typename Fn>
void for_each_chunk(std::string_view framed, Fn&& fn) {
    while (!framed.empty()) {
        std::size_t size = 0;
        const auto line_end = framed.find("\r\n");
        const auto [end, ec] = std::from_chars(framed.data(), framed.data() + framed.size(), size, 16);
        if (ec != std::errc{} || line_end == std::string_view::npos || end != framed.data() + line_end ||
            line_end + 2 + size + 2 > framed.size())
            return;  // sse_batch never makes such bytes
        fn(framed.substr(line_end + 2, size));
        framed.remove_prefix(line_end + 2 + size + 2);
    }
}

void wake(const std::vector<std::weak_ptr<net::steady_timer>>& waiters) {
    for (const auto& waiter : waiters) {
        auto timer = waiter.lock();
        if (!timer) continue;
        // On the waiter's own executor: a timer is not thread-safe, and its wait is already pending
        // there (it registered and started waiting without yielding in between).
        const auto executor = timer->get_executor();
        net::post(executor, [timer = std::move(timer)] { timer->cancel(); });
    }
}

// Registers a timer in `waiters` unless `version` moved past `seen`, then waits for it.
net::awaitable<void> wait_on(std::mutex& mutex, std::vector<std::weak_ptr<net::steady_timer>>& waiters,
                             const std::uint64_t& version, std::uint64_t seen,
                             std::chrono::milliseconds timeout) {
    const auto cancellation = co_await net::this_coro::cancellation_state;
    if (is_cancelled(cancellation)) co_return;
    const auto executor = co_await net::this_coro::executor;
    auto timer = std::make_shared<net::steady_timer>(executor, timeout);
    bool changed = false;
    {
        std::lock_guard lock{mutex};
        changed = version != seen;
        if (!changed) {
            std::erase_if(waiters, [](const auto& waiter) { return waiter.expired(); });
            waiters.push_back(timer);
        }
    }
    if (changed) co_return;
    auto [ec] = co_await timer->async_wait(net::as_tuple(net::use_awaitable));
    (void)ec;
}

}  // namespace

std::string unframed_events(std::string_view framed_batch) {
    std::string text;
    for_each_chunk(framed_batch, [&text](std::string_view event) { text.append(event); });
    return text;
}

void memory_stream_log::add_locked(std::string_view event) {
    entry added{.id = next_id_++, .text = {}};
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, added.id).ptr;
    added.text.reserve(event.size() + 6 + static_cast<std::size_t>(end - digits));
    added.text.append("id: ").append(digits, end).append("\n").append(event);
    bytes_ += added.text.size();
    entries_.push_back(std::move(added));
    if (!overflowed_ && bytes_ > max_bytes_) {
        overflowed_ = true;
        add_locked(k_overflow_notice);
    }
    // Past the bound the log only feeds the live readers: it keeps the newest events within it.
    while (overflowed_ && bytes_ > max_bytes_ && entries_.size() > 1) {
        bytes_ -= entries_.front().text.size();
        entries_.pop_front();
    }
}

void memory_stream_log::append(std::string_view framed_batch, bool done_marker) {
    std::vector<std::weak_ptr<net::steady_timer>> waiters;
    {
        std::lock_guard lock{mutex_};
        if (finished_) return;
        for_each_chunk(framed_batch, [this](std::string_view event) {
            if (!event.empty() && event.front() == ':') return;  // a comment: each reader pings itself
            add_locked(event);
        });
        if (done_marker) add_locked(k_done_event);
        ++version_;
        waiters.swap(waiters_);
    }
    wake(waiters);
}

void memory_stream_log::finish() {
    std::vector<std::weak_ptr<net::steady_timer>> waiters;
    {
        std::lock_guard lock{mutex_};
        if (finished_) return;
        finished_ = true;
        ++version_;
        waiters.swap(waiters_);
    }
    wake(waiters);
}

net::awaitable<void> memory_stream_log::wait_until_abandoned(std::chrono::milliseconds keep) {
    using clock = std::chrono::steady_clock;
    std::optional<clock::time_point> alone_since;
    for (;;) {
        const auto cancellation = co_await net::this_coro::cancellation_state;
        if (is_cancelled(cancellation)) co_return;
        std::uint64_t seen = 0;
        std::size_t readers = 0;
        {
            std::lock_guard lock{mutex_};
            if (cancelled_) co_return;
            seen = reader_version_;
            readers = readers_;
        }
        auto timeout = std::chrono::milliseconds{k_idle_look};
        if (readers == 0 && keep != std::chrono::milliseconds::max()) {
            const auto now = clock::now();
            if (!alone_since) alone_since = now;
            const auto alone = std::chrono::duration_cast<std::chrono::milliseconds>(now - *alone_since);
            if (alone >= keep) co_return;
            timeout = keep - alone;
        } else {
            alone_since.reset();
        }
        co_await wait_on(mutex_, reader_waiters_, reader_version_, seen, timeout);
    }
}

template <typename Fn>
log_read memory_stream_log::visit_after_locked(std::uint64_t& after_id, std::size_t max_bytes,
                                               Fn&& take) const {
    const std::uint64_t first = entries_.empty() ? next_id_ : entries_.front().id;
    if (after_id + 1 < first || after_id >= next_id_) return log_read::out_of_range;
    auto index = static_cast<std::size_t>(after_id + 1 - first);
    if (index == entries_.size()) return finished_ ? log_read::finished : log_read::nothing_yet;
    std::size_t added = 0;
    while (index < entries_.size() && (added == 0 || added < max_bytes)) {
        const auto& event = entries_[index++];
        take(event.text);
        added += event.text.size();
        after_id = event.id;
    }
    return log_read::events;
}

log_read memory_stream_log::read_after(std::uint64_t& after_id, sse_batch& out, std::size_t max_bytes) {
    std::lock_guard lock{mutex_};
    return visit_after_locked(after_id, max_bytes, [&out](const std::string& text) { out.add_raw(text); });
}

log_read memory_stream_log::copy_after(std::uint64_t& after_id, std::vector<std::string>& out,
                                       std::size_t max_bytes) const {
    std::lock_guard lock{mutex_};
    return visit_after_locked(after_id, max_bytes, [&out](const std::string& text) { out.push_back(text); });
}

net::awaitable<void> memory_stream_log::wait_change(std::uint64_t seen, std::chrono::milliseconds timeout) {
    return wait_on(mutex_, waiters_, version_, seen, timeout);
}

std::uint64_t memory_stream_log::version() const {
    std::lock_guard lock{mutex_};
    return version_;
}

bool memory_stream_log::resumable_after(std::uint64_t after_id) const {
    std::lock_guard lock{mutex_};
    return !overflowed_ && after_id < next_id_;
}

void memory_stream_log::attach_reader() {
    std::vector<std::weak_ptr<net::steady_timer>> waiters;
    {
        std::lock_guard lock{mutex_};
        ++readers_;
        ++reader_version_;
        waiters.swap(reader_waiters_);
    }
    wake(waiters);
}

void memory_stream_log::detach_reader() {
    std::vector<std::weak_ptr<net::steady_timer>> waiters;
    {
        std::lock_guard lock{mutex_};
        if (readers_ > 0) --readers_;
        ++reader_version_;
        waiters.swap(reader_waiters_);
    }
    wake(waiters);
}

void memory_stream_log::cancel() {
    std::vector<std::weak_ptr<net::steady_timer>> waiters;
    {
        std::lock_guard lock{mutex_};
        cancelled_ = true;
        ++reader_version_;
        waiters.swap(reader_waiters_);
    }
    wake(waiters);
}

bool memory_stream_log::cancel_requested() const {
    std::lock_guard lock{mutex_};
    return cancelled_;
}

bool memory_stream_log::finished() const {
    std::lock_guard lock{mutex_};
    return finished_;
}

std::uint64_t memory_stream_log::last_id() const {
    std::lock_guard lock{mutex_};
    return next_id_ - 1;
}

bool memory_stream_log::overflowed() const {
    std::lock_guard lock{mutex_};
    return overflowed_;
}

std::size_t memory_stream_log::readers() const {
    std::lock_guard lock{mutex_};
    return readers_;
}

std::size_t memory_stream_log::bytes() const {
    std::lock_guard lock{mutex_};
    return bytes_;
}

// ---- the registry ----

std::pair<std::string, std::shared_ptr<memory_stream_log>> stream_registry::create(std::string owner,
                                                                                   std::string id,
                                                                                   clock::time_point now) {
    if (id.empty()) id = new_id("st_");
    auto log = std::make_shared<memory_stream_log>(max_bytes_);
    std::lock_guard lock{mutex_};
    sweep_locked(now);
    items_.insert_or_assign(
        id, item{.log = log, .owner = std::move(owner), .created = now, .finished = std::nullopt});
    return {std::move(id), std::move(log)};
}

std::shared_ptr<stream_log> stream_registry::find(std::string_view id, std::string_view owner,
                                                  clock::time_point now) {
    std::lock_guard lock{mutex_};
    sweep_locked(now);
    const auto it = items_.find(std::string(id));
    if (it == items_.end() || !constant_time_equal(it->second.owner, owner)) return nullptr;
    return it->second.log;
}

void stream_registry::finished(std::string_view id, clock::time_point now) {
    std::lock_guard lock{mutex_};
    const auto it = items_.find(std::string(id));
    if (it != items_.end() && !it->second.finished) it->second.finished = now;
    sweep_locked(now);  // so that expired logs go even when no stream is made or looked up
}

std::size_t stream_registry::running() const {
    std::lock_guard lock{mutex_};
    return static_cast<std::size_t>(
        std::count_if(items_.begin(), items_.end(), [](const auto& pair) { return !pair.second.finished; }));
}

void stream_registry::sweep(clock::time_point now) {
    std::lock_guard lock{mutex_};
    last_sweep_ = {};
    sweep_locked(now);
}

void stream_registry::sweep_locked(clock::time_point now) {
    // At most once a second: a lookup should not walk every stream.
    if (last_sweep_ != clock::time_point{} && now - last_sweep_ < std::chrono::seconds{1}) return;
    last_sweep_ = now;
    std::erase_if(items_, [&](const auto& pair) {
        const auto& held = pair.second;
        if (held.finished) return now - *held.finished >= ttl_;
        return now - held.created >= max_age_;
    });
}

std::size_t stream_registry::size() const {
    std::lock_guard lock{mutex_};
    return items_.size();
}

}  // namespace sluice
