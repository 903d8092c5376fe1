// The stream log on its own: ids, replay after an id, the live tail (a reader waiting on one
// thread while the producer appends on another), the byte bound, the keep wait, cancel, and the
// registry's owner check and ttl.
#include "streaming/stream_log.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "http/sse.h"

namespace sluice {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// One framed batch of `data:` events, as a wire format makes them.
std::string batch_of(std::initializer_list<std::string_view> jsons, bool with_comment = false) {
    sse_batch batch;
    for (auto json : jsons) batch.add_event(json);
    if (with_comment) batch.add_comment("ping");
    return std::string(batch.wire_bytes());
}

// What a reader gets after `after`, without the chunk framing.
std::string read_text(stream_log& log, std::uint64_t& after, log_read* status = nullptr,
                      std::size_t max_bytes = 1 << 20) {
    sse_batch out;
    const auto got = log.read_after(after, out, max_bytes);
    if (status) *status = got;
    std::string text;
    std::string_view framed = out.wire_bytes();
    while (!framed.empty()) {  // <hex>\r\n<payload>\r\n
        const auto line_end = framed.find("\r\n");
        const auto size = std::stoul(std::string(framed.substr(0, line_end)), nullptr, 16);
        text.append(framed.substr(line_end + 2, size));
        framed.remove_prefix(line_end + 2 + size + 2);
    }
    return text;
}

TEST(StreamLog, NumbersEventsAndReplaysAfterAnId) {
    memory_stream_log log{1 << 20};
    log.append(batch_of({R"({"a":1})", R"({"a":2})"}, true), false);
    log.append(batch_of({R"({"a":3})"}), true);
    EXPECT_EQ(log.last_id(), 4u);  // three events and [DONE]; the comment is not logged
    std::uint64_t after = 0;
    EXPECT_EQ(read_text(log, after),
              "id: 1\ndata: {\"a\":1}\n\nid: 2\ndata: {\"a\":2}\n\nid: 3\ndata: {\"a\":3}\n\n"
              "id: 4\ndata: [DONE]\n\n");
    EXPECT_EQ(after, 4u);
    after = 2;
    EXPECT_EQ(read_text(log, after), "id: 3\ndata: {\"a\":3}\n\nid: 4\ndata: [DONE]\n\n");
    log_read status{};
    EXPECT_EQ(read_text(log, after, &status), "");
    EXPECT_EQ(status, log_read::nothing_yet);
    log.finish();
    read_text(log, after, &status);
    EXPECT_EQ(status, log_read::finished);
    after = 9;  // an id the stream never had
    read_text(log, after, &status);
    EXPECT_EQ(status, log_read::out_of_range);
    EXPECT_FALSE(log.resumable_after(9));
    EXPECT_TRUE(log.resumable_after(2));
}

TEST(StreamLog, ReadsInPiecesOfAboutMaxBytes) {
    memory_stream_log log{1 << 20};
    log.append(batch_of({R"({"a":1})", R"({"a":2})", R"({"a":3})"}), false);
    std::uint64_t after = 0;
    EXPECT_EQ(read_text(log, after, nullptr, 1), "id: 1\ndata: {\"a\":1}\n\n");  // at least one
    EXPECT_EQ(after, 1u);
    EXPECT_EQ(read_text(log, after, nullptr, 1), "id: 2\ndata: {\"a\":2}\n\n");
}

TEST(StreamLog, PastItsBoundItSaysSoAndIsNoLongerResumable) {
    memory_stream_log log{200};
    const std::string payload(60, 'x');
    const std::string json = "{\"t\":\"" + payload + "\"}";
    log.append(batch_of({json, json}), false);
    EXPECT_FALSE(log.overflowed());
    EXPECT_TRUE(log.resumable_after(0));
    log.append(batch_of({json, json}), false);
    EXPECT_TRUE(log.overflowed());
    EXPECT_LE(log.bytes(), 200u);
    EXPECT_FALSE(log.resumable_after(0));
    EXPECT_FALSE(log.resumable_after(log.last_id()));
    // The oldest events are gone; the newest, and the notice, are still there for a live reader.
    std::uint64_t after = 0;
    log_read status{};
    read_text(log, after, &status);
    EXPECT_EQ(status, log_read::out_of_range);
    after = log.last_id() - 2;  // the notice came right after the event that crossed the bound
    const auto tail = read_text(log, after, &status);
    EXPECT_EQ(status, log_read::events);
    EXPECT_NE(tail.find("no longer resumable"), std::string::npos) << tail;
}

TEST(StreamLog, AReaderOnAnotherThreadTailsItLive) {
    memory_stream_log log{1 << 20};
    net::io_context reader_context;
    std::string seen;
    auto reader = [&]() -> net::awaitable<void> {
        std::uint64_t after = 0;
        for (;;) {
            const auto version = log.version();
            log_read status{};
            seen += read_text(log, after, &status);
            if (status == log_read::finished) co_return;
            if (status == log_read::nothing_yet) co_await log.wait_change(version, 10s);
        }
    };
    auto done = net::co_spawn(reader_context, reader(), net::use_future);
    std::thread reader_thread{[&] { reader_context.run(); }};
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        const std::string json = "{\"n\":" + std::to_string(i) + "}";
        log.append(batch_of({json}), false);
        std::this_thread::sleep_for(1ms);
    }
    log.finish();
    EXPECT_EQ(done.wait_for(5s), std::future_status::ready);
    reader_thread.join();
    // Woken by each append, not by its 10 s timeout.
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    for (int i = 0; i < 20; ++i)
        EXPECT_NE(seen.find("id: " + std::to_string(i + 1) + "\ndata: {\"n\":" + std::to_string(i) + "}"),
                  std::string::npos);
}

// Runs wait_until_abandoned(keep) on a context of its own thread; the future is ready when it returns.
struct abandon_watch {
    net::io_context context;
    std::future<void> done;
    std::thread thread;
    abandon_watch(stream_log& log, std::chrono::milliseconds keep) {
        done = net::co_spawn(context, log.wait_until_abandoned(keep), net::use_future);
        thread = std::thread{[this] { context.run(); }};
    }
    ~abandon_watch() {
        context.stop();
        thread.join();
    }
};

TEST(StreamLog, TheProducerGoesOnForKeepAfterTheLastReaderLeft) {
    memory_stream_log log{1 << 20};
    log.attach_reader();
    abandon_watch watch{log, 300ms};
    EXPECT_EQ(watch.done.wait_for(400ms), std::future_status::timeout);  // a reader is there
    log.detach_reader();
    const auto left = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(150ms);
    log.attach_reader();  // back in time: the wait starts over when it leaves again
    EXPECT_EQ(watch.done.wait_for(400ms), std::future_status::timeout);
    log.detach_reader();
    const auto left_again = std::chrono::steady_clock::now();
    ASSERT_EQ(watch.done.wait_for(2s), std::future_status::ready);
    EXPECT_GE(std::chrono::steady_clock::now() - left_again, 290ms);
    EXPECT_GE(std::chrono::steady_clock::now() - left, 700ms);
}

TEST(StreamLog, CancelEndsTheWaitEvenForABackgroundStream) {
    memory_stream_log log{1 << 20};
    abandon_watch watch{log, std::chrono::milliseconds::max()};  // no reader, but kept forever
    EXPECT_EQ(watch.done.wait_for(300ms), std::future_status::timeout);
    log.cancel();
    EXPECT_TRUE(log.cancel_requested());
    EXPECT_EQ(watch.done.wait_for(2s), std::future_status::ready);
}

TEST(StreamRegistry, OnlyTheOwnerFindsAStreamAndItExpiresAfterItsTtl) {
    stream_registry streams{1 << 20, 60s, 600s};
    const auto t0 = stream_registry::clock::now();
    auto [id, log] = streams.create("key_a", {}, t0);
    EXPECT_EQ(id.rfind("st_", 0), 0u);
    EXPECT_EQ(streams.find(id, "key_a", t0), log);
    EXPECT_EQ(streams.find(id, "key_b", t0), nullptr);
    EXPECT_EQ(streams.find("st_nothing", "key_a", t0), nullptr);
    EXPECT_EQ(streams.running(), 1u);
    streams.finished(id, t0 + 10s);
    EXPECT_EQ(streams.running(), 0u);
    EXPECT_EQ(streams.find(id, "key_a", t0 + 69s), log);
    EXPECT_EQ(streams.find(id, "key_a", t0 + 71s), nullptr);
    // An unfinished stream goes after max_age; a given id is used as it is.
    auto named = streams.create("key_a", "resp_1", t0);
    EXPECT_EQ(named.first, "resp_1");
    EXPECT_NE(streams.find("resp_1", "key_a", t0 + 599s), nullptr);
    EXPECT_EQ(streams.find("resp_1", "key_a", t0 + 601s), nullptr);
}

}  // namespace
}  // namespace sluice
