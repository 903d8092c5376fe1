#include "models/progress.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace sluice {

std::string format_bytes(double bytes) {
    constexpr std::array<const char*, 5> k_units{"B", "KiB", "MiB", "GiB", "TiB"};
    std::size_t unit = 0;
    while (bytes >= 1024 && unit + 1 < k_units.size()) {
        bytes /= 1024;
        ++unit;
    }
    char text[32];
    if (unit == 0) {
        std::snprintf(text, sizeof text, "%.0f B", bytes);
    } else {
        std::snprintf(text, sizeof text, "%.1f %s", bytes, k_units[unit]);
    }
    return text;
}

std::string format_duration(double seconds) {
    if (seconds < 0 || !std::isfinite(seconds)) return "?";
    const auto whole = static_cast<long long>(std::llround(seconds));
    char text[32];
    if (whole >= 3600) {
        std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", whole / 3600, whole / 60 % 60, whole % 60);
    } else {
        std::snprintf(text, sizeof text, "%lld:%02lld", whole / 60, whole % 60);
    }
    return text;
}

std::string format_progress(std::uint64_t done, std::uint64_t total, double bytes_per_second, int width) {
    const std::string rate = format_bytes(bytes_per_second) + "/s";
    if (total == 0) return format_bytes(static_cast<double>(done)) + "  " + rate;
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(fraction * width);
    std::string bar = "[";
    for (int i = 0; i < width; ++i) bar += i < filled ? '=' : (i == filled ? '>' : ' ');
    bar += "]";
    char percent[8];
    std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100));
    const double left =
        bytes_per_second > 0 ? static_cast<double>(total - std::min(done, total)) / bytes_per_second : -1;
    return bar + " " + percent + "  " + format_bytes(static_cast<double>(done)) + " / " +
           format_bytes(static_cast<double>(total)) + "  " + rate + "  " + format_duration(left) + " left";
}

progress_printer::progress_printer(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

void progress_printer::start(const std::string& what, std::uint64_t total, std::uint64_t resumed_from) {
    total_ = total;
    resumed_from_ = resumed_from;
    started_ = std::chrono::steady_clock::now();
    last_draw_ = {};
    last_tenth_ = -1;
    if (resumed_from > 0) {
        std::fprintf(out_, "downloading %s (%s, resuming at %s)\n", what.c_str(),
                     format_bytes(static_cast<double>(total)).c_str(),
                     format_bytes(static_cast<double>(resumed_from)).c_str());
    } else {
        std::fprintf(out_, "downloading %s (%s)\n", what.c_str(),
                     format_bytes(static_cast<double>(total)).c_str());
    }
    std::fflush(out_);
}

double progress_printer::rate(std::uint64_t done) const {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const double fresh = static_cast<double>(done - std::min(done, resumed_from_));
    return seconds > 0 ? fresh / seconds : 0;
}

void progress_printer::update(std::uint64_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (terminal_) {
        if (now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        std::fprintf(out_, "\r%s\033[K", format_progress(done, total_, rate(done), 30).c_str());
        std::fflush(out_);
        return;
    }
    if (total_ == 0) return;
    const int tenth = static_cast<int>(std::min<std::uint64_t>(10, done * 10 / total_));
    if (tenth <= last_tenth_ || tenth == 10) return;  // 100 % is finish()'s line
    last_tenth_ = tenth;
    std::fprintf(out_, "%s\n", format_progress(done, total_, rate(done), 20).c_str());
    std::fflush(out_);
}

void progress_printer::finish(std::uint64_t done) {
    const std::string line = format_progress(done, total_, rate(done), terminal_ ? 30 : 20);
    std::fprintf(out_, terminal_ ? "\r%s\033[K\n" : "%s\n", line.c_str());
    std::fflush(out_);
}

}  // namespace sluice
