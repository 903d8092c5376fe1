#pragma once
// A resumable stream's event log: the producer (a relay running without a client socket) appends
// the SSE events its wire format made; every client, the first one included, is a reader that
// replays the log after an event id and then tails it live. Knows no API: an event is its SSE
// text, numbered 1, 2, 3... in the order it was appended, and the number goes out as its `id:` line.
//
// Bounded: past max_bytes the log stops being resumable (a resume is refused) and keeps only the
// events no live reader has read yet, within the same bound; a reader that falls out of it ends.
// The producer keeps running while a reader is attached, and for `keep` after the last one left.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

namespace sluice {

class sse_batch;

// What read_after found.
enum class log_read {
    events,        // events were added (maybe not all there are: read again)
    nothing_yet,   // nothing after that id yet: wait_change, then read again
    finished,      // nothing after that id, and nothing more will come
    out_of_range,  // the id is no longer (or not yet) in the log
};

class stream_log {
  public:
    virtual ~stream_log() = default;

    // ---- the producer ----
    // Appends the events of a chunk-framed batch (sse_batch::wire_bytes()), each with the next id;
    // comments are not logged (every reader sends its own heartbeat). With `done_marker`, data:
    // [DONE] follows as an event of its own.
    virtual void append(std::string_view framed_batch, bool done_marker) = 0;
    // No event follows: readers end once they have read everything.
    virtual void finish() = 0;
    // Waits until no reader has been attached for `keep` (immediately when keep is zero and no
    // reader is there), or until cancel(); a cancelled wait returns too. A reader coming back resets
    // the wait. keep = milliseconds::max(): only cancel() ends it.
    virtual boost::asio::awaitable<void> wait_until_abandoned(std::chrono::milliseconds keep) = 0;
    // Asks the producer to stop (POST /v1/responses/{id}/cancel): wait_until_abandoned returns.
    virtual void cancel() = 0;
    virtual bool cancel_requested() const = 0;

    // ---- the readers ----
    // Adds the events after `after_id` to `out` (each as one HTTP chunk with its `id:` line), at most
    // about `max_bytes` of them (at least one), and moves `after_id` past them.
    virtual log_read read_after(std::uint64_t& after_id, sse_batch& out, std::size_t max_bytes) = 0;
    // Completes when something changed since `version()` returned `seen` (an event, the end, a
    // reader), or after `timeout`, or when cancelled.
    virtual boost::asio::awaitable<void> wait_change(std::uint64_t seen,
                                                     std::chrono::milliseconds timeout) = 0;
    virtual std::uint64_t version() const = 0;
    // Whether a new reader may still start after `after_id`: the log kept everything after it.
    virtual bool resumable_after(std::uint64_t after_id) const = 0;
    virtual void attach_reader() = 0;
    virtual void detach_reader() = 0;

    virtual bool finished() const = 0;
    virtual std::uint64_t last_id() const = 0;
};

// The SSE text of a chunk-framed batch's events (sse_batch::wire_bytes()), without the framing.
std::string unframed_events(std::string_view framed_batch);

// The log in this process's memory (the SQLite store case; one process only).
class memory_stream_log final : public stream_log {
  public:
    explicit memory_stream_log(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    void append(std::string_view framed_batch, bool done_marker) override;
    void finish() override;
    boost::asio::awaitable<void> wait_until_abandoned(std::chrono::milliseconds keep) override;
    void cancel() override;
    bool cancel_requested() const override;

    log_read read_after(std::uint64_t& after_id, sse_batch& out, std::size_t max_bytes) override;
    boost::asio::awaitable<void> wait_change(std::uint64_t seen, std::chrono::milliseconds timeout) override;
    std::uint64_t version() const override;
    bool resumable_after(std::uint64_t after_id) const override;
    void attach_reader() override;
    void detach_reader() override;

    bool finished() const override;
    std::uint64_t last_id() const override;
    // As read_after, each event's text into `out` (the shared log's publisher copies them).
    log_read copy_after(std::uint64_t& after_id, std::vector<std::string>& out, std::size_t max_bytes) const;
    // Past max_bytes: no new reader may start.
    bool overflowed() const;
    std::size_t readers() const;
    std::size_t bytes() const;

  private:
    struct entry {
        std::uint64_t id;
        std::string text;  // "id: N\n" + the event
    };
    void add_locked(std::string_view event);
    template <typename Fn>
    log_read visit_after_locked(std::uint64_t& after_id, std::size_t max_bytes, Fn&& take) const;

    const std::size_t max_bytes_;
    mutable std::mutex mutex_;
    std::deque<entry> entries_;  // ids first_id .. last_id, consecutive
    std::uint64_t next_id_ = 1;
    std::size_t bytes_ = 0;
    std::uint64_t version_ = 0;
    std::size_t readers_ = 0;
    bool finished_ = false;
    bool overflowed_ = false;
    bool cancelled_ = false;
    std::vector<std::weak_ptr<boost::asio::steady_timer>> waiters_;  // readers in wait_change
    std::uint64_t reader_version_ = 0;                               // moves when a reader comes or goes
    std::vector<std::weak_ptr<boost::asio::steady_timer>> reader_waiters_;  // the producer
};

// The resumable streams of this process, by id: who may read each and for how long it stays.
class stream_registry {
  public:
    using clock = std::chrono::steady_clock;
    // A finished stream stays readable for `ttl`; an unfinished one at most `max_age` (the request
    // deadline plus the ttl: its producer is then long gone).
    stream_registry(std::size_t max_bytes, std::chrono::seconds ttl, std::chrono::seconds max_age)
        : max_bytes_(max_bytes), ttl_(ttl), max_age_(max_age) {}

    // A new log owned by `owner` (the key's id) under `id` (empty: a new one).
    std::pair<std::string, std::shared_ptr<memory_stream_log>> create(std::string owner, std::string id = {},
                                                                      clock::time_point now = clock::now());
    // The log when it exists and belongs to `owner`; null otherwise (the caller says 404 either way).
    std::shared_ptr<stream_log> find(std::string_view id, std::string_view owner,
                                     clock::time_point now = clock::now());
    // The producer finished: the ttl starts.
    void finished(std::string_view id, clock::time_point now = clock::now());
    // Producers still running (at shutdown: their frames still hold the turn).
    std::size_t running() const;
    // Drops expired streams.
    void sweep(clock::time_point now = clock::now());
    std::size_t size() const;

  private:
    struct item {
        std::shared_ptr<stream_log> log;
        std::string owner;
        clock::time_point created;
        std::optional<clock::time_point> finished;
    };
    void sweep_locked(clock::time_point now);

    const std::size_t max_bytes_;
    const std::chrono::seconds ttl_;
    const std::chrono::seconds max_age_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, item> items_;
    clock::time_point last_sweep_{};
};

}  // namespace sluice
