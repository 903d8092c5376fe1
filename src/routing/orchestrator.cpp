#include "routing/orchestrator.h"

#include <algorithm>
#include <stdexcept>

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
    : routing_(cfg.routing), policy_(cfg.routing), providers_(std::move(providers)) {
    entries_.reserve(providers_.size());
    for (const auto& p : providers_) {
        if (!p) throw std::invalid_argument("orchestrator: null provider");
        const auto& mc = p->config();
        entries_.push_back({p, std::make_unique<circuit_breaker>(
                                   mc.circuit_failures, std::chrono::seconds(mc.circuit_open_s), clock)});
    }
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

route_plan orchestrator::make_plan(std::vector<const model_entry*> primary, model_role role,
                                   const route_request& request) const {
    route_plan plan;
    plan.role = role;
    for (const auto* e : primary) plan.candidates.push_back(e->provider);
    if (routing_.fallback) {
        for (const auto* e : usable_of(other_role(role), request)) plan.candidates.push_back(e->provider);
    } else if (plan.candidates.size() > 1) {
        plan.candidates.resize(1);
    }
    return plan;
}

plan_outcome orchestrator::plan(const route_request& request) {
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
    model_role wanted = decision.role;
    std::vector<const model_entry*> primary;

    if (request.preferred_model && !request.preferred_model->empty()) {
        const model_entry* entry = find(*request.preferred_model);
        if (!entry) return fail(404, "unknown preferred_model '" + *request.preferred_model + "'");
        if (const auto lacks = missing_feature(entry->provider->config(), request); !lacks.empty()) {
            return fail(400, "model '" + *request.preferred_model + "' does not support " +
                                 std::string(lacks) + ", which this request needs");
        }
        wanted = entry->provider->config().role;
        reason = "preferred_model";
        if (usable(*entry)) {
            primary.push_back(entry);
            for (const auto* e : usable_of(wanted, request)) {
                if (e != entry) primary.push_back(e);
            }
        } else if (!routing_.fallback) {
            return fail(503, "model '" + *request.preferred_model + "' is not available", retry_after());
        } else {
            primary = usable_of(wanted, request);
            reason =
                std::string("fallback:") + (entry->breaker->would_allow() ? "unavailable" : "circuit_open");
        }
    } else {
        const std::string& type = request.model_type ? *request.model_type : routing_.default_model_type;
        if (type.empty() || type == "auto") {
            reason = decision.reason;
        } else if (auto role = parse_model_role(type)) {
            wanted = *role;
            reason = "model_type";
            // An explicit role none of whose models can serve the request is the caller's mistake.
            std::string_view lacks;
            bool any_capable = false;
            for (const auto& e : entries_) {
                const auto& cfg = e.provider->config();
                if (cfg.role != wanted) continue;
                const auto missing = missing_feature(cfg, request);
                if (missing.empty()) any_capable = true;
                if (lacks.empty()) lacks = missing;
            }
            if (!any_capable && !lacks.empty()) {
                return fail(400, "no " + std::string(to_string(wanted)) + " model supports " +
                                     std::string(lacks) + ", which this request needs");
            }
        } else {
            return fail(400, "model_type must be auto, local_small or cloud_large");
        }
        primary = usable_of(wanted, request);
        // The auto policy's role has models, but none that can serve this request.
        if (reason == decision.reason && primary.empty()) {
            for (const auto& e : entries_) {
                const auto& cfg = e.provider->config();
                if (cfg.role != wanted) continue;
                const auto lacks = missing_feature(cfg, request);
                if (lacks.empty()) continue;
                reason = "needs_" + std::string(lacks);
                break;
            }
            if (reason.starts_with("needs_")) {
                wanted = other_role(wanted);
                primary = usable_of(wanted, request);
            }
        }
    }

    model_role role = wanted;
    if (primary.empty()) {
        if (!routing_.fallback || usable_of(other_role(wanted), request).empty()) {
            return fail(503, "no model available for " + std::string(to_string(wanted)), retry_after());
        }
        if (!reason.starts_with("fallback:")) reason = "fallback:" + why_unusable(wanted);
        role = other_role(wanted);
        primary = usable_of(role, request);
    }

    out.plan = make_plan(std::move(primary), role, request);
    // Claim the first candidate (the half-open probe, if its circuit is half open). Another request
    // may have claimed the probe since usable() looked: then the next candidate goes first.
    auto& candidates = out.plan.candidates;
    while (!candidates.empty()) {
        const model_entry* e = find(candidates.front()->config().name);
        if (e && e->breaker->try_acquire()) break;
        candidates.erase(candidates.begin());
        if (!reason.starts_with("fallback:")) reason = "fallback:circuit_open";
    }
    if (candidates.empty()) return fail(503, "no model available", retry_after());
    out.plan.role = candidates.front()->config().role;
    out.plan.score = decision.score;
    out.plan.reason = reason;
    out.plan.reasons.push_back(reason);
    for (const auto& r : decision.reasons) {
        if (r != reason) out.plan.reasons.push_back(r);
    }
    return out;
}

void orchestrator::report_success(std::string_view model_name) {
    if (const auto* e = find(model_name)) e->breaker->record_success();
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
        s.detail =
            status.available ? (s.circuit == circuit_state::open ? "circuit open" : "") : status.detail;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace sluice
