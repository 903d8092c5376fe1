#pragma once
// Download progress for `sluice models pull`: a redrawn bar on a terminal, plain lines otherwise.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace sluice {

// "1.5 MiB", "12 KiB", "800 B".
std::string format_bytes(double bytes);
// "0:07", "1:02:03"; "?" for a negative (unknown) time.
std::string format_duration(double seconds);
// One progress line: "[=====>    ]  45%  12.0 MiB / 27.0 MiB  5.1 MiB/s  0:03 left" (bar `width` wide;
// with total 0 (unknown size): the bytes and the rate only).
std::string format_progress(std::uint64_t done, std::uint64_t total, double bytes_per_second, int width);

class progress_printer {
  public:
    // `terminal`: redraw one line with '\r' (at most every 100 ms); else a line per 10 %.
    progress_printer(std::FILE* out, bool terminal);
    // `resumed_from`: bytes that were already on disk (not counted in the rate).
    void start(const std::string& what, std::uint64_t total, std::uint64_t resumed_from);
    void update(std::uint64_t done);
    void finish(std::uint64_t done);

  private:
    double rate(std::uint64_t done) const;

    std::FILE* out_;
    bool terminal_;
    std::uint64_t total_ = 0;
    std::uint64_t resumed_from_ = 0;
    std::chrono::steady_clock::time_point started_{};
    std::chrono::steady_clock::time_point last_draw_{};
    int last_tenth_ = -1;
};

}  // namespace sluice
