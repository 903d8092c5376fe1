#pragma once
// A log-linear latency histogram (the HdrHistogram idea): 128 sub-buckets per power of two, so a
// percentile is within 0.8% of the true value whatever the range, in a fixed 58 KiB and with one
// increment per sample. Millions of inter-chunk gaps fit without keeping the samples.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>

namespace sluice::bench {

class latency_histogram {
  public:
    static constexpr int k_sub_bits = 7;
    static constexpr std::size_t k_sub = std::size_t{1} << k_sub_bits;
    static constexpr std::size_t k_buckets = (64 - k_sub_bits + 1) * k_sub;

    latency_histogram() : counts_(std::make_unique<std::array<std::uint64_t, k_buckets>>()) {}

    void record(std::int64_t ns) {
        const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
        ++(*counts_)[index(v)];
        ++total_;
        sum_ += static_cast<double>(v);
        max_ = std::max(max_, v);
    }

    void merge(const latency_histogram& other) {
        for (std::size_t i = 0; i < k_buckets; ++i) (*counts_)[i] += (*other.counts_)[i];
        total_ += other.total_;
        sum_ += other.sum_;
        max_ = std::max(max_, other.max_);
    }

    std::uint64_t count() const { return total_; }
    double mean_ns() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }
    std::uint64_t max_ns() const { return max_; }

    // The value below which a fraction q of the samples lie (midpoint of its bucket).
    double percentile_ns(double q) const {
        if (total_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < k_buckets; ++i) {
            seen += (*counts_)[i];
            if (seen >= std::max<std::uint64_t>(rank, 1)) {
                return std::min(static_cast<double>(max_), midpoint(i));
            }
        }
        return static_cast<double>(max_);
    }

  private:
    static std::size_t index(std::uint64_t v) {
        if (v < k_sub) return static_cast<std::size_t>(v);
        const int msb = 63 - std::countl_zero(v);
        const int shift = msb - k_sub_bits;
        const auto mantissa = static_cast<std::size_t>(v >> shift) - k_sub;  // 0..127
        return static_cast<std::size_t>(shift + 1) * k_sub + mantissa;
    }
    static double midpoint(std::size_t i) {
        if (i < k_sub) return static_cast<double>(i);
        const auto shift = static_cast<int>(i / k_sub) - 1;
        const double lower = std::ldexp(static_cast<double>(i % k_sub + k_sub), shift);
        return lower + std::ldexp(0.5, shift);
    }

    std::unique_ptr<std::array<std::uint64_t, k_buckets>> counts_;
    std::uint64_t total_ = 0;
    double sum_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace sluice::bench
