#pragma once
// The concrete provider = "llama": chat_request in, chunks out, through the llama_engine. Tests and
// benchmarks use this header for the engine's counters; everyone else sees only `provider`.
#include <memory>

#include "inference/engine.h"
#include "providers/provider.h"

namespace sluice {

class llama_local_provider final : public provider {
  public:
    llama_local_provider(const model_config& cfg, engine_options options);

    const model_config& config() const override { return cfg_; }
    provider_status status() const override;
    int count_tokens(const std::string& text) const override;
    bool counting_is_costly() const override { return true; }
    boost::asio::awaitable<void> stream(const chat_request& request, chunk_sink sink) override;

    llama_engine& engine() { return *engine_; }

  private:
    model_config cfg_;
    std::unique_ptr<llama_engine> engine_;
};

std::shared_ptr<llama_local_provider> make_llama_local_provider(const model_config& cfg,
                                                                engine_options options = {});

}  // namespace sluice
