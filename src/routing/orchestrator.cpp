#include "routing/orchestrator.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "core/metrics.h"

namespace sluice {

namespace {

model_role other_role(model_role role) {
    return role == model_role::local_small ? model_role::cloud_large : model_role::local_small;
}

bool queue_full(const provider& p, const provider_status& status) {
    const int limit = p.config().queue_size;
    return p.config().provider == "llama" && limit > 0 && status.queue_depth >= limit;
}

// What a model lacks to serve `request` ("tools", "images"); empty when it can.
std::string_view missing_feature(const model_config& model, const route_request& request) {
    if (request.needs_tools && !model.can_use_tools()) return "tools";
    if (request.needs_images && !model.can_read_images()) return "images";
    return {};
}

bool has_content(const chunk_batch& batch) {
    return std::any_of(batch.begin(), batch.end(), [](const stream_chunk& chunk) {
        using kind = stream_chunk::kind;
        return chunk.type == kind::delta || chunk.type == kind::tool_call_start ||
               chunk.type == kind::tool_call_delta || chunk.type == kind::reasoning;
    });
}

// A configured provider that reports the time from the start of each stream to its first content
// to the balancer (routing.balance = latency). Wraps the sink without a coroutine of its own, so a
// stream costs one lambda more and no frame.
class timed_provider final : public provider {
  public:
    timed_provider(provider_ptr inner, std::shared_ptr<balancer> latency, std::size_t index,
                   steady_clock_fn clock)
        : inner_(std::move(inner)), latency_(std::move(latency)), index_(index), clock_(std::move(clock)) {}

    const model_config& config() const override { return inner_->config(); }
    provider_status status() const override { return inner_->status(); }
    int count_tokens(const std::string& text) const override { return inner_->count_tokens(text); }
    bool counting_is_costly() const override { return inner_->counting_is_costly(); }

    boost::asio::awaitable<std::optional<int>> count_input_tokens(const chat_request& request) override {
        return inner_->count_input_tokens(request);
    }

    boost::asio::awaitable<void> stream(const chat_request& request, chunk_sink sink) override {
        chunk_sink timed = [latency = latency_, index = index_, clock = clock_, started = clock_(),
                            first = true, sink = std::move(sink)](chunk_batch& batch) mutable {
            if (first && has_content(batch)) {
                first = false;
                latency->record_first_token(index, clock() - started);
            }
            return sink(batch);
        };
        return inner_->stream(request, std::move(timed));
    }

  private:
    provider_ptr inner_;
    std::shared_ptr<balancer> latency_;
    std::size_t index_;
    steady_clock_fn clock_;
};

}  // namespace

std::string_view to_string(failure_kind kind) {
    switch (kind) {
        case failure_kind::connect:
            return "connect";
        case failure_kind::timeout:
            return "timeout";
        case failure_kind::rate_limited:
            return "rate_limited";
        case failure_kind::server_error:
            return "upstream_5xx";
        case failure_kind::queue_full:
            return "queue_full";
        case failure_kind::bad_request:
            return "bad_request";
        case failure_kind::other:
            return "error";
    }
    return "error";
}

failure_kind failure_kind_from_code(int code, bool local) {
    if (code == 429) return failure_kind::rate_limited;
    if (code == 503) return local ? failure_kind::queue_full : failure_kind::connect;
    if (code == 504 || code == 408) return failure_kind::timeout;
    if (code >= 500) return failure_kind::server_error;
    if (code >= 400) return failure_kind::bad_request;
    return failure_kind::other;
}

orchestrator::orchestrator(const config& cfg, std::vector<provider_ptr> providers, steady_clock_fn clock)
    : routing_(cfg.routing),
      policy_(cfg.routing),
      rules_(cfg.routing.rules),
      providers_(std::move(providers)) {
    if (!clock) clock = [] { return std::chrono::steady_clock::now(); };
    const auto policy = parse_balance_policy(routing_.balance).value_or(balance_policy::weighted);
    balancer_ = std::make_shared<balancer>(policy, providers_.size(), clock);
    // Only the latency policy reads first-token times: the other policies' streams go unwrapped.
    const bool timed = policy == balance_policy::latency;
    entries_.reserve(providers_.size());
    for (std::size_t i = 0; i < providers_.size(); ++i) {
        const auto& p = providers_[i];
        if (!p) throw std::invalid_argument("orchestrator: null provider");
        const auto& mc = p->config();
        provider_ptr planned = timed ? std::make_shared<timed_provider>(p, balancer_, i, clock) : p;
        entries_.push_back({std::move(planned),
                            std::make_unique<circuit_breaker>(mc.circuit_failures,
                                                              std::chrono::seconds(mc.circuit_open_s), clock),
                            i});
    }
}

void orchestrator::balance_order(std::vector<const model_entry*>& models, bool take) const {
    if (models.size() < 2) return;
    std::vector<balancer::member> members;
    members.reserve(models.size());
    for (const auto* e : models) {
        const int active =
            balancer_->policy() == balance_policy::least_busy ? e->provider->status().active : 0;
        members.push_back({.model = e->index, .weight = e->provider->config().weight, .active = active});
    }
    balancer_->order(members, take);
    for (std::size_t i = 0; i < members.size(); ++i) models[i] = &entries_[members[i].model];
}

std::optional<std::size_t> orchestrator::matching_rule(const route_request& request) const {
    if (rules_.size() == 0) return std::nullopt;
    std::string_view requested;
    if (request.requested_model) {
        requested = *request.requested_model;
    } else if (request.preferred_model) {
        requested = *request.preferred_model;
    } else if (request.model_type) {
        requested = *request.model_type;
    }
    const rule_input input{
        .key_name = request.key_name,
        .requested_model = requested,
        .headers = &request.headers,
        .prompt_tokens = estimate_prompt_tokens(request.message.size(), request.conversation_chars),
        .has_tools = request.needs_tools,
        .has_images = request.needs_images,
        .message = request.message};
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        if (!rules_.matches(i, input)) continue;
        // A rule only applies when its target has a model that can serve the request.
        const std::string& use = rules_.rule(i).use;
        if (use == "auto") return i;
        const auto role = parse_model_role(use);
        const bool can = std::any_of(entries_.begin(), entries_.end(), [&](const model_entry& e) {
            const auto& cfg = e.provider->config();
            return (role ? cfg.role == *role : cfg.name == use) && missing_feature(cfg, request).empty();
        });
        if (can) return i;
    }
    return std::nullopt;
}

const orchestrator::model_entry* orchestrator::find(std::string_view name) const {
    for (const auto& e : entries_) {
        if (e.provider->config().name == name) return &e;
    }
    return nullptr;
}

bool orchestrator::usable(const model_entry& entry) const {
    const auto status = entry.provider->status();
    return status.available && !queue_full(*entry.provider, status) && entry.breaker->would_allow();
}

std::vector<const orchestrator::model_entry*> orchestrator::usable_of(model_role role,
                                                                      const route_request& request) const {
    std::vector<const model_entry*> out;
    for (const auto& e : entries_) {
        const auto& cfg = e.provider->config();
        if (cfg.role == role && missing_feature(cfg, request).empty() && usable(e)) out.push_back(&e);
    }
    return out;
}

route_plan orchestrator::make_plan(const std::vector<const model_entry*>& primary, model_role role,
                                   const route_request& request) const {
    route_plan plan;
    plan.role = role;
    for (const auto* e : primary) plan.candidates.push_back(e->provider);
    if (routing_.fallback) {
        auto others = usable_of(other_role(role), request);
        balance_order(others, false);
        for (const auto* e : others) plan.candidates.push_back(e->provider);
    } else if (plan.candidates.size() > 1) {
        plan.candidates.resize(1);
    }
    return plan;
}

plan_outcome orchestrator::plan(const route_request& request, bool commit) {
    plan_outcome out;
    const auto fail = [&out](int code, std::string message, int retry_after_s = 0) {
        out.failed = true;
        out.error = api_error{code, std::move(message), retry_after_s};
        return out;
    };

    const policy_decision decision =
        policy_.decide(request.message, request.turns_so_far, request.conversation_chars);

    // Why no model of `role` can take a request now: the tag after "fallback:".
    const auto why_unusable = [this](model_role role) -> std::string {
        bool configured = false, open = false, full = false;
        for (const auto& e : entries_) {
            if (e.provider->config().role != role) continue;
            configured = true;
            open = open || !e.breaker->would_allow();
            full = full || queue_full(*e.provider, e.provider->status());
        }
        if (!configured) return "not_configured";
        if (open) return "circuit_open";
        if (full) return "queue_full";
        return "unavailable";
    };
    const auto retry_after = [this] {
        int seconds = 1;
        for (const auto& e : entries_) {
            if (!e.breaker->would_allow()) seconds = std::max(seconds, e.provider->config().circuit_open_s);
        }
        return seconds;
    };

    for (const std::string_view feature : {"tools", "images"}) {
        const bool needed = feature == "tools" ? request.needs_tools : request.needs_images;
        if (!needed) continue;
        const bool served = std::any_of(entries_.begin(), entries_.end(), [&](const model_entry& e) {
            const auto& cfg = e.provider->config();
            return feature == "tools" ? cfg.can_use_tools() : cfg.can_read_images();
        });
        if (!served)
            return fail(
                400, "no configured model supports " + std::string(feature) + ", which this request needs");
    }

    std::string reason;
    std::string rule_name;
    model_role wanted = decision.role;
    std::vector<const model_entry*> primary;
    std::optional<api_error> refused;

    // A model chosen by name (by the client or a rule): it first, then the others of its role.
    const auto take_model = [&](const model_entry& entry, std::string why) {
        wanted = entry.provider->config().role;
        reason = std::move(why);
        if (usable(entry)) {
            primary.push_back(&entry);
            auto others = usable_of(wanted, request);
            std::erase(others, &entry);
            balance_order(others, false);
            primary.insert(primary.end(), others.begin(), others.end());
        } else if (!routing_.fallback) {
            refused = api_error{503, "model '" + entry.provider->config().name + "' is not available",
                                retry_after()};
        } else {
            primary = usable_of(wanted, request);
            balance_order(primary, commit);
            reason =
                std::string("fallback:") + (entry.breaker->would_allow() ? "unavailable" : "circuit_open");
        }
    };
    // A role: its usable models, the balance's pick first.
    const auto take_role = [&](model_role role, std::string why) {
        wanted = role;
        reason = std::move(why);
        primary = usable_of(wanted, request);
        balance_order(primary, commit);
    };
    // The auto policy's role; when none of its models can serve the request, the other role's.
    const auto take_auto = [&](std::string why) {
        take_role(decision.role, std::move(why));
        if (!primary.empty()) return;
        for (const auto& e : entries_) {
            const auto& cfg = e.provider->config();
            if (cfg.role != wanted) continue;
            const auto lacks = missing_feature(cfg, request);
            if (lacks.empty()) continue;
            take_role(other_role(wanted), "needs_" + std::string(lacks));
            return;
        }
    };
    // A client's choice of a model by name or alias: a 404 or a 400 when it cannot be.
    const auto preferred = [&]() -> const model_entry* {
        const model_entry* entry = find(*request.preferred_model);
        if (!entry) {
            refused = api_error{404, "unknown preferred_model '" + *request.preferred_model + "'"};
        } else if (const auto lacks = missing_feature(entry->provider->config(), request); !lacks.empty()) {
            refused = api_error{400, "model '" + *request.preferred_model + "' does not support " +
                                         std::string(lacks) + ", which this request needs"};
            entry = nullptr;
        }
        return entry;
    };
    // A role chosen explicitly none of whose models can serve the request is the caller's mistake.
    const auto role_refuses = [&](model_role role) {
        std::string_view lacks;
        bool any_capable = false;
        for (const auto& e : entries_) {
            const auto& cfg = e.provider->config();
            if (cfg.role != role) continue;
            const auto missing = missing_feature(cfg, request);
            if (missing.empty()) any_capable = true;
            if (lacks.empty()) lacks = missing;
        }
        if (!any_capable && !lacks.empty()) {
            refused = api_error{400, "no " + std::string(to_string(role)) + " model supports " +
                                         std::string(lacks) + ", which this request needs"};
        }
        return refused.has_value();
    };

    const bool has_preferred = request.preferred_model && !request.preferred_model->empty();
    const bool by_alias =
        has_preferred && request.requested_model && *request.requested_model != *request.preferred_model;
    const bool explicit_type =
        request.model_type && !request.model_type->empty() && *request.model_type != "auto";

    if (has_preferred && !by_alias) {
        if (const auto* entry = preferred()) take_model(*entry, "preferred_model");
    } else if (!has_preferred && explicit_type) {
        if (auto role = parse_model_role(*request.model_type)) {
            if (!role_refuses(*role)) take_role(*role, "model_type");
        } else {
            refused = api_error{400, "model_type must be auto, local_small or cloud_large"};
        }
    } else if (const auto rule = matching_rule(request)) {
        const auto& matched = rules_.rule(*rule);
        rule_name = matched.name;
        const std::string why = "rule:" + rule_name;
        if (matched.use == "auto") {
            take_auto(why);
        } else if (auto role = parse_model_role(matched.use)) {
            take_role(*role, why);
        } else if (const auto* entry = find(matched.use)) {
            take_model(*entry, why);
        }
    } else if (has_preferred) {
        if (const auto* entry = preferred()) take_model(*entry, "preferred_model");
    } else {
        const std::string& type = request.model_type ? *request.model_type : routing_.default_model_type;
        if (type.empty() || type == "auto") {
            take_auto(decision.reason);
        } else if (auto role = parse_model_role(type)) {
            if (!role_refuses(*role)) take_role(*role, "model_type");
        } else {
            refused = api_error{400, "model_type must be auto, local_small or cloud_large"};
        }
    }
    if (refused) return fail(refused->code, std::move(refused->message), refused->retry_after_s);

    model_role role = wanted;
    if (primary.empty()) {
        if (!routing_.fallback || usable_of(other_role(wanted), request).empty()) {
            return fail(503, "no model available for " + std::string(to_string(wanted)), retry_after());
        }
        if (!reason.starts_with("fallback:")) reason = "fallback:" + why_unusable(wanted);
        role = other_role(wanted);
        primary = usable_of(role, request);
        balance_order(primary, commit);
    }

    out.plan = make_plan(primary, role, request);
    // Claim the first candidate (the half-open probe, if its circuit is half open). Another request
    // may have claimed the probe since usable() looked: then the next candidate goes first.
    auto& candidates = out.plan.candidates;
    while (!candidates.empty()) {
        const model_entry* e = find(candidates.front()->config().name);
        if (e && (!commit || e->breaker->try_acquire())) break;
        candidates.erase(candidates.begin());
        if (!reason.starts_with("fallback:")) reason = "fallback:circuit_open";
    }
    if (candidates.empty()) return fail(503, "no model available", retry_after());
    out.plan.role = candidates.front()->config().role;
    out.plan.score = decision.score;
    out.plan.reason = reason;
    out.plan.rule = rule_name;
    out.plan.reasons.push_back(reason);
    if (!rule_name.empty() && reason != "rule:" + rule_name) out.plan.reasons.push_back("rule:" + rule_name);
    for (const auto& r : decision.reasons) {
        if (r != reason) out.plan.reasons.push_back(r);
    }
    return out;
}

void orchestrator::report_success(std::string_view model_name) {
    if (const auto* e = find(model_name)) e->breaker->record_success();
}

void orchestrator::report_first_token(std::string_view model_name, std::chrono::nanoseconds ttft) {
    if (const auto* e = find(model_name)) balancer_->record_first_token(e->index, ttft);
}

void orchestrator::report_failure(std::string_view model_name, failure_kind kind) {
    metrics::get().upstream_errors(model_name, to_string(kind)).inc();
    if (kind == failure_kind::bad_request) return;
    if (const auto* e = find(model_name)) e->breaker->record_failure();
}

std::vector<model_status> orchestrator::models_status() const {
    std::vector<model_status> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) {
        const auto& mc = e.provider->config();
        const auto status = e.provider->status();
        model_status s;
        s.name = mc.name;
        s.role = mc.role;
        s.provider = mc.provider;
        s.circuit = e.breaker->state();
        s.available = status.available && s.circuit != circuit_state::open;
        s.recent_errors = e.breaker->recent_errors();
        s.queue_depth = status.queue_depth;
        s.active = status.active;
        s.supports_tools = mc.can_use_tools();
        s.supports_images = mc.can_read_images();
        s.gpu_layers = status.gpu_layers;
        s.gpu_offload = status.gpu_offload;
        s.detail =
            status.available ? (s.circuit == circuit_state::open ? "circuit open" : "") : status.detail;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace sluice
