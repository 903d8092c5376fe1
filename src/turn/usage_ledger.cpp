#include "turn/usage_ledger.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <exception>
#include <map>
#include <mutex>
#include <utility>

namespace sluice {

namespace net = boost::asio;

namespace {

using row_key = std::pair<std::string, std::string>;  // key id, model

void merge(usage_delta& into, const usage_delta& delta) {
    into.requests += delta.requests;
    into.prompt_tokens += delta.prompt_tokens;
    into.completion_tokens += delta.completion_tokens;
    into.cancelled += delta.cancelled;
    into.errors += delta.errors;
}

}  // namespace

struct usage_ledger::state : std::enable_shared_from_this<usage_ledger::state> {
    state(store& db_, net::thread_pool& pool, std::chrono::milliseconds interval_)
        : db(db_), strand(net::make_strand(pool)), interval(interval_) {}

    store& db;
    net::strand<net::thread_pool::executor_type> strand;  // the timer is only touched here
    const std::chrono::milliseconds interval;
    mutable std::mutex mutex;
    std::map<row_key, usage_delta> pending;
    std::shared_ptr<net::steady_timer> timer;  // set while a write is scheduled
    bool failing = false;                      // the last write failed: said once, not once per interval

    void add(const usage_delta& delta) {
        std::lock_guard lock{mutex};
        auto [it, fresh] = pending.try_emplace({delta.key_id, delta.model});
        if (fresh) {
            it->second.key_id = delta.key_id;
            it->second.model = delta.model;
        }
        merge(it->second, delta);
        schedule_locked();
    }

    void schedule_locked() {
        if (timer) return;
        timer = std::make_shared<net::steady_timer>(strand, interval);
        timer->async_wait([self = shared_from_this(), armed = timer](boost::system::error_code ec) {
            {
                std::lock_guard lock{self->mutex};
                if (self->timer == armed) self->timer.reset();
            }
            if (ec == net::error::operation_aborted) return;  // the ledger went; it flushed itself
            try {
                self->flush();
            } catch (const std::exception&) {
                // flush() kept the counts and said so; the next add (or this retry) writes them.
                std::lock_guard lock{self->mutex};
                if (!self->pending.empty()) self->schedule_locked();
            }
        });
    }

    void flush() {
        std::map<row_key, usage_delta> batch;
        {
            std::lock_guard lock{mutex};
            batch.swap(pending);
        }
        auto it = batch.begin();
        try {
            for (; it != batch.end(); ++it) db.record_usage(it->second);
        } catch (const std::exception& e) {
            std::lock_guard lock{mutex};
            if (!failing) spdlog::warn("usage ledger: the store failed, counts kept for later: {}", e.what());
            failing = true;
            for (; it != batch.end(); ++it) {
                auto [slot, fresh] = pending.try_emplace(it->first, it->second);
                if (!fresh) merge(slot->second, it->second);
            }
            throw;
        }
        std::lock_guard lock{mutex};
        if (failing) spdlog::info("usage ledger: the store accepts writes again");
        failing = false;
    }
};

usage_ledger::usage_ledger(store& db, net::thread_pool& pool, std::chrono::milliseconds interval)
    : state_(std::make_shared<state>(db, pool, interval)) {}

usage_ledger::~usage_ledger() {
    {
        std::lock_guard lock{state_->mutex};
        if (auto timer = state_->timer) net::post(state_->strand, [timer] { timer->cancel(); });
    }
    try {
        state_->flush();
    } catch (const std::exception& e) {
        spdlog::error("usage ledger: counts lost at shutdown: {}", e.what());
    }
}

void usage_ledger::add(const usage_delta& delta) {
    state_->add(delta);
}

void usage_ledger::flush() {
    state_->flush();
}

std::size_t usage_ledger::pending() const {
    std::lock_guard lock{state_->mutex};
    return state_->pending.size();
}

}  // namespace sluice
