#pragma once
// A resumable stream's log shared between the processes of one Redis store, so that a client whose
// reconnect lands on another process resumes there (the store's part: store.h, shared_log_update).
//
// The producing process keeps its memory_stream_log (its own readers read it as before) and
// publishes a copy as it grows: the new events, its state and a heartbeat every second, one store
// round trip each, off the relay's path. A reader in another process is a remote_stream_log: it
// polls the store for the events after the last it has, and keeps the producer from finding its
// stream abandoned (its presence expires unless refreshed) and can ask it to stop (cancel). When the
// producer's heartbeat stops before the log's end (the process died), the reader gets the error
// event the producer left for that case, in the stream's own API, and the stream ends: never a hang.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "store/store.h"
#include "streaming/stream_log.h"

namespace sluice {

// Where shared logs are kept: a store that shares_stream_logs(), reached on its pool.
struct shared_log_access {
    store* db = nullptr;
    boost::asio::thread_pool* pool = nullptr;
};

struct shared_log_timing {
    // A producer heartbeat this much older means the producer is gone.
    static constexpr std::chrono::milliseconds k_alive_ttl{5000};
    static constexpr std::chrono::milliseconds k_heartbeat{1000};
    // A remote reader counts as attached this long after its last look.
    static constexpr std::chrono::milliseconds k_reader_ttl{3000};
    // How often a remote reader with nothing new looks again.
    static constexpr std::chrono::milliseconds k_poll{100};
};

struct publish_settings {
    std::string id;
    std::string owner;  // the key id
    // SSE text: what a remote reader ends with if the producer dies, as things stand. Rendered on
    // the producer's thread with the first write, then again at most once a heartbeat (a write with
    // events): what it says of the answer (the Responses API's output and sequence number) may be
    // up to a second old.
    std::function<std::string()> orphan_event;
    std::chrono::milliseconds running_keep;   // how long the copy lives while the producer runs
    std::chrono::milliseconds finished_keep;  // resume.ttl_s: how long it lives once finished
};

// Makes the shared log exist (its owner and the producer's first heartbeat, no event yet) before its
// first client is answered, so that a reconnect or a GET through another instance a moment later
// finds it. A store failure is logged: the publisher keeps trying.
boost::asio::awaitable<void> open_shared_log(shared_log_access access, const publish_settings& settings);

// Publishes `log` until it finished and all of it was written (or, once it finished, the store
// stayed unreachable for a few seconds: its readers here still have it in memory). Relays a cancel
// asked through another process to the log, and a reader there as one attached reader.
boost::asio::awaitable<void> publish_log(shared_log_access access, memory_stream_log& log,
                                         publish_settings settings);

// One remote reader's view of a shared log (each resume makes its own; used by one coroutine).
class remote_stream_log final : public stream_log {
  public:
    remote_stream_log(shared_log_access access, std::string id, const shared_log_slice& state);

    // Not a producer: these do nothing.
    void append(std::string_view framed_batch, bool done_marker) override;
    void finish() override;
    boost::asio::awaitable<void> wait_until_abandoned(std::chrono::milliseconds keep) override;
    // Sent with the next look at the store.
    void cancel() override;
    bool cancel_requested() const override;

    log_read read_after(std::uint64_t& after_id, sse_batch& out, std::size_t max_bytes) override;
    // Looks at the store every k_poll until something changed or `timeout`.
    boost::asio::awaitable<void> wait_change(std::uint64_t seen, std::chrono::milliseconds timeout) override;
    std::uint64_t version() const override { return version_; }
    bool resumable_after(std::uint64_t after_id) const override;
    void attach_reader() override {}
    void detach_reader() override {}

    bool finished() const override { return finished_; }
    std::uint64_t last_id() const override { return last_id_; }

  private:
    boost::asio::awaitable<void> look();
    void take(shared_log_slice slice);

    const shared_log_access access_;
    const std::string id_;
    std::deque<std::pair<std::uint64_t, std::string>> events_;  // fetched, not yet read
    std::uint64_t fetched_ = 0;                                 // the last event id fetched
    bool started_ = false;                                      // fetched_ was set from the first read
    std::uint64_t last_id_ = 0;
    bool finished_ = false;
    bool overflowed_ = false;
    bool producer_alive_ = true;
    bool store_lost_ = false;  // unreachable for k_alive_ttl, or the log expired
    bool orphan_sent_ = false;
    std::string orphan_event_;
    bool cancel_wanted_ = false;
    bool cancel_sent_ = false;
    std::uint64_t version_ = 0;
    std::chrono::steady_clock::time_point failing_since_{};  // store unreachable since (else epoch)
};

// The stream `id` when `owner` made it: in this process's registry, else, with `shared`, in the
// shared store (a remote reader). Null when neither has it (or the store cannot be reached).
boost::asio::awaitable<std::shared_ptr<stream_log>> find_stream(stream_registry& local,
                                                                const shared_log_access* shared,
                                                                std::string_view id, std::string_view owner);

}  // namespace sluice
