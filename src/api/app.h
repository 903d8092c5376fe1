#pragma once
// What the endpoints share for the life of the server: the configuration, the store (reached only
// through run_blocking on its own pool) and one provider per configured model.
#include <boost/asio/thread_pool.hpp>
#include <vector>

#include "core/config.h"
#include "providers/provider.h"
#include "store/store.h"

namespace sluice {

struct app_context {
    const config& cfg;
    store& db;
    boost::asio::thread_pool& store_pool;
    std::vector<provider_ptr> providers;  // providers[i] serves cfg.models[i]
};

}  // namespace sluice
