#pragma once
// A configured model as the router sees it without running it: nothing loaded, nothing called; its
// status is whatever its holder sets (available and idle by default). `sluice route` plans over
// these, and the routing tests drive the orchestrator with them.
#include <boost/asio/awaitable.hpp>
#include <string>
#include <utility>

#include "core/config.h"
#include "providers/provider.h"

namespace sluice {

class offline_model final : public provider {
  public:
    explicit offline_model(model_config cfg) : cfg_(std::move(cfg)) {}

    const model_config& config() const override { return cfg_; }
    provider_status status() const override { return reported; }
    int count_tokens(const std::string& text) const override { return static_cast<int>(text.size() / 4); }
    boost::asio::awaitable<void> stream(const chat_request&, chunk_sink) override { co_return; }

    provider_status reported;  // what status() answers

  private:
    model_config cfg_;
};

}  // namespace sluice
