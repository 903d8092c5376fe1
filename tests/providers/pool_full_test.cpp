// A full upstream pool is sluice's own limit: a 503 with Retry-After that the circuit breaker does
// not count (stream_chunk::model_fault), unlike a model that cannot be reached.
#include <gtest/gtest.h>

#include "providers/cloud_common.h"

namespace sluice {
namespace {

TEST(pool_full, is_503_with_retry_after_and_not_the_models_fault) {
    model_config cfg;
    cfg.name = "cloud";
    const auto chunk =
        upstream_failure_chunk(upstream_error{upstream_failure::pool_timeout, "all 2 busy"}, cfg, false);
    EXPECT_EQ(chunk.type, stream_chunk::kind::error);
    EXPECT_EQ(chunk.code, 503);
    EXPECT_GE(chunk.retry_after_s, 1);
    EXPECT_FALSE(chunk.model_fault);
}

TEST(pool_full, an_unreachable_model_is_still_its_fault) {
    model_config cfg;
    cfg.name = "cloud";
    const auto chunk =
        upstream_failure_chunk(upstream_error{upstream_failure::connect, "refused"}, cfg, false);
    EXPECT_EQ(chunk.code, 503);
    EXPECT_TRUE(chunk.model_fault);
}

}  // namespace
}  // namespace sluice
