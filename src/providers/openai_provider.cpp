#include "providers/openai_provider.h"

namespace sluice {
namespace {

// Placeholder until the upstream client lands: reports itself unavailable.
class openai_provider final : public provider {
  public:
    explicit openai_provider(model_config cfg) : cfg_(std::move(cfg)) {}

    const model_config& config() const override { return cfg_; }
    provider_status status() const override { return {.available = false, .detail = "not implemented yet"}; }
    int count_tokens(const std::string& text) const override { return static_cast<int>(text.size() / 4 + 1); }

    boost::asio::awaitable<void> stream(chat_request, chunk_sink sink) override {
        co_await sink(stream_chunk::error(503, "the openai provider is not implemented yet"));
    }

  private:
    model_config cfg_;
};

}  // namespace

std::shared_ptr<provider> make_openai_provider(const model_config& cfg, boost::asio::any_io_executor) {
    return std::make_shared<openai_provider>(cfg);
}

}  // namespace sluice
