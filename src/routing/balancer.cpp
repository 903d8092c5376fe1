#include "routing/balancer.h"

#include <algorithm>
#include <cmath>

namespace sluice {

namespace {

// A new sample's share of the average.
constexpr double k_latency_new_sample_weight = 0.3;

}  // namespace

std::optional<balance_policy> parse_balance_policy(std::string_view text) {
    if (text == "weighted") return balance_policy::weighted;
    if (text == "least_busy") return balance_policy::least_busy;
    if (text == "latency") return balance_policy::latency;
    return std::nullopt;
}

balancer::balancer(balance_policy policy, std::size_t models, steady_clock_fn clock)
    : policy_(policy),
      clock_(clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); }),
      current_(models, 0),
      latency_(models) {}

double balancer::latency_now(std::size_t model) const {
    const auto& sample = latency_[model];
    if (!sample.known) return 0;
    const std::chrono::duration<double> age = clock_() - sample.at;
    const double half_lives =
        std::max(0.0, age.count()) / std::chrono::duration<double>(k_latency_half_life).count();
    return sample.average_ms * std::exp2(-half_lives);
}

// Smooth weighted round robin (as nginx does it) over members[first, end): every member gains its
// weight, the largest current weight wins and gives back the total.
std::size_t balancer::round_robin(const std::vector<member>& members, std::size_t first, std::size_t end,
                                  bool take) {
    long long total = 0;
    for (std::size_t i = first; i < end; ++i) total += members[i].weight;
    if (total == 0) return first;  // only weight-0 members: the first of them
    std::size_t best = end;
    long long best_weight = 0;
    for (std::size_t i = first; i < end; ++i) {
        if (members[i].weight == 0) continue;
        const long long candidate = current_[members[i].model] + members[i].weight;
        if (best == end || candidate > best_weight) {
            best = i;
            best_weight = candidate;
        }
    }
    if (take) {
        for (std::size_t i = first; i < end; ++i) current_[members[i].model] += members[i].weight;
        current_[members[best].model] -= total;
    }
    return best;
}

void balancer::order(std::vector<member>& members, bool take) {
    if (members.size() < 2) return;
    const std::lock_guard lock(mutex_);
    if (policy_ != balance_policy::weighted) {
        // Preference first (stable: the given order breaks ties), then the round robin among the best.
        std::vector<double> cost(current_.size(), 0);
        for (const auto& m : members)
            cost[m.model] = policy_ == balance_policy::least_busy ? m.active : latency_now(m.model);
        std::stable_sort(members.begin(), members.end(),
                         [&](const member& a, const member& b) { return cost[a.model] < cost[b.model]; });
        std::size_t tied = 1;
        while (tied < members.size() && cost[members[tied].model] == cost[members[0].model]) ++tied;
        const std::size_t pick = round_robin(members, 0, tied, take);
        std::rotate(members.begin(), members.begin() + static_cast<std::ptrdiff_t>(pick),
                    members.begin() + static_cast<std::ptrdiff_t>(pick) + 1);
        return;
    }
    const std::size_t pick = round_robin(members, 0, members.size(), take);
    std::rotate(members.begin(), members.begin() + static_cast<std::ptrdiff_t>(pick),
                members.begin() + static_cast<std::ptrdiff_t>(pick) + 1);
}

void balancer::record_first_token(std::size_t model, std::chrono::nanoseconds ttft) {
    if (model >= latency_.size()) return;
    const double ms = std::chrono::duration<double, std::milli>(ttft).count();
    const std::lock_guard lock(mutex_);
    auto& sample = latency_[model];
    const double before = latency_now(model);
    sample.average_ms = sample.known ? before + k_latency_new_sample_weight * (ms - before) : ms;
    sample.at = clock_();
    sample.known = true;
}

std::optional<double> balancer::latency_ms(std::size_t model) const {
    const std::lock_guard lock(mutex_);
    if (model >= latency_.size() || !latency_[model].known) return std::nullopt;
    return latency_now(model);
}

}  // namespace sluice
