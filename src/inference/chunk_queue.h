#pragma once
// The bounded hand-off from the inference thread to one consumer coroutine. The engine pushes
// without ever blocking (a full queue says so and the engine pauses that sequence); the consumer
// awaits the next chunk as an Asio operation that completes on its own executor and honours its
// cancellation slot.
//
// Why not asio's concurrent_channel: a channel belongs to its io_context's services, and the engine
// thread may hold the last reference after that io_context is gone. This queue touches the
// consumer's executor only while a consumer is waiting, i.e. while the io_context is certainly alive
// (the wait counts as outstanding work).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include "core/chunk.h"

namespace sluice {

class chunk_queue {
  public:
    explicit chunk_queue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
    chunk_queue(const chunk_queue&) = delete;
    chunk_queue& operator=(const chunk_queue&) = delete;

    // Engine side, any thread. False when the queue is full (the chunk was not taken).
    bool try_push(const stream_chunk& chunk) {
        std::unique_lock lock(mutex_);
        if (closed_) return true;  // nobody will read it: drop
        if (waiter_) {
            auto waiter = std::move(waiter_);
            lock.unlock();
            waiter->complete({}, chunk);
            return true;
        }
        if (items_.size() >= capacity_) return false;
        items_.push_back(chunk);
        return true;
    }

    // A waiting or later pop completes with boost::asio::error::eof once the items are gone.
    void close() {
        std::unique_lock lock(mutex_);
        closed_ = true;
        if (waiter_ && items_.empty()) {
            auto waiter = std::move(waiter_);
            lock.unlock();
            waiter->complete(boost::asio::error::eof, {});
        }
    }

    // Consumer side: takes a chunk that is already waiting, without blocking; false when none is.
    bool try_pop(stream_chunk& out) {
        std::lock_guard lock(mutex_);
        if (items_.empty()) return false;
        out = std::move(items_.front());
        items_.pop_front();
        return true;
    }

    // Consumer side: completes with (error_code, stream_chunk) on the handler's executor (falling
    // back to `executor`). Cancellation through the handler's slot completes it with
    // operation_aborted.
    template <typename CompletionToken>
    auto async_pop(boost::asio::any_io_executor executor, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, stream_chunk)>(
            [this, executor](auto handler) { initiate_pop(std::move(handler), executor); }, token);
    }

  private:
    struct waiter {
        virtual ~waiter() = default;
        virtual void complete(boost::system::error_code ec, stream_chunk chunk) = 0;
    };

    template <typename Handler>
    struct waiter_for final : waiter {
        waiter_for(Handler h, boost::asio::any_io_executor fallback)
            : handler(std::move(h)),
              executor(boost::asio::get_associated_executor(handler, fallback)),
              work(boost::asio::prefer(executor, boost::asio::execution::outstanding_work.tracked)) {}

        // Always through post: the engine thread never runs consumer code, and the slot is
        // cleared on the consumer's own executor.
        void complete(boost::system::error_code ec, stream_chunk chunk) override {
            boost::asio::post(executor, [h = std::move(handler), ec, chunk = std::move(chunk)]() mutable {
                auto slot = boost::asio::get_associated_cancellation_slot(h);
                if (slot.is_connected()) slot.clear();
                std::move(h)(ec, std::move(chunk));
            });
            work = boost::asio::any_io_executor();
        }

        Handler handler;
        boost::asio::any_io_executor executor;
        boost::asio::any_io_executor work;  // keeps the consumer's io_context running while it waits
    };

    template <typename Handler>
    void initiate_pop(Handler handler, const boost::asio::any_io_executor& fallback) {
        std::unique_lock lock(mutex_);
        if (!items_.empty() || closed_) {
            boost::system::error_code ec;
            stream_chunk chunk;
            if (!items_.empty()) {
                chunk = std::move(items_.front());
                items_.pop_front();
            } else {
                ec = boost::asio::error::eof;
            }
            lock.unlock();
            waiter_for<Handler>(std::move(handler), fallback).complete(ec, std::move(chunk));
            return;
        }
        // The slot is armed before the waiter is published, so its completion (which clears the
        // slot, maybe on another io thread) can never race with arming it.
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
            slot.assign([this](boost::asio::cancellation_type type) {
                if ((type &
                     (boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial |
                      boost::asio::cancellation_type::total)) == boost::asio::cancellation_type::none) {
                    return;
                }
                std::unique_lock lock(mutex_);
                auto waiter = std::move(waiter_);
                lock.unlock();
                if (waiter) waiter->complete(boost::asio::error::operation_aborted, {});
            });
        }
        waiter_ = std::make_unique<waiter_for<Handler>>(std::move(handler), fallback);
    }

    std::mutex mutex_;
    std::deque<stream_chunk> items_;
    std::size_t capacity_;
    bool closed_ = false;
    std::unique_ptr<waiter> waiter_;
};

}  // namespace sluice
