#pragma once
// The orchestrator (SPEC §5): picks which configured model answers a request, in which order the
// others may stand in, and keeps each model's circuit breaker. It never calls a model itself: the
// HTTP layer runs the plan.
//
// How the HTTP layer uses it, per request:
//
//     auto outcome = orch.plan({.message = text, .turns_so_far = n, .preferred_model = ..., ...});
//     if (!outcome.ok()) -> reply outcome.error (404 unknown preferred_model, 400 bad model_type,
//                           503 no model available; retry_after_s set for 503)
//     std::string reason = outcome.plan.reason;
//     for (auto& candidate : outcome.plan.candidates) {
//         stream candidate->stream(...):
//           - a delta arrives first          -> commit to this model; at the end report_success(name)
//                                               (an error after a delta: report_failure, error event,
//                                               no further candidate: never a silent switch)
//           - an error chunk before any delta -> report_failure(name, failure_kind_from_code(code)),
//                                               reason = "fallback:" + to_string(kind); next candidate
//     }
//     all candidates failed before a delta -> the last error (its code) goes to the client.
//     the client went away -> report nothing (a half-open probe's claim lapses after circuit_open_s).
//
// Thread-safe: plan(), report_*() and models_status() may be called from any thread at once.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/api_error.h"
#include "core/chat.h"
#include "core/config.h"
#include "providers/provider.h"
#include "routing/balancer.h"
#include "routing/circuit_breaker.h"
#include "routing/policy.h"
#include "routing/rules.h"

namespace sluice {

struct route_request {
    std::string_view message;                    // the new user turn
    int turns_so_far = 0;                        // user turns earlier in the session
    std::size_t conversation_chars = 0;          // size of the earlier turns, in bytes
    std::optional<std::string> preferred_model;  // a configured model's name: wins over everything
                                                 // (unless the client named it by an alias)
    std::optional<std::string> model_type;       // "auto" | "local_small" | "cloud_large"; unset =
                                                 // routing.default_model_type
    bool needs_tools = false;                    // tools offered, or calls and results in the conversation
    bool needs_images = false;                   // an image part in the conversation
    // What [[routing.rules]] match on besides the above. Never the key's secret.
    std::string_view key_name;  // the API key's name
    // The model name as the client wrote it (a name, an alias, auto, a role); unset: none named, or
    // the name is preferred_model itself. A preferred_model reached through an alias gives way to
    // the rules.
    std::optional<std::string> requested_model;
    // (lower-case name, value) of the request's headers that orchestrator::rule_headers() names.
    std::vector<std::pair<std::string_view, std::string_view>> headers;
};

struct route_plan {
    // Ordered: candidates[0] answers; the rest stand in, in order, if it fails before its first token.
    // Never empty. Only models that are available and whose circuit lets a request through; with
    // routing.fallback = false, exactly one.
    std::vector<provider_ptr> candidates;
    model_role role = model_role::local_small;  // the role of candidates[0]
    double score = 0;                           // the auto policy's score (computed for every request)
    std::string reason;                         // route.reason: preferred_model, model_type, rule:<name>,
                                                // short_chat, code, ..., or fallback:<why> when the role
                                                // was switched
    std::string rule;                           // the [[routing.rules]] name that decided; empty: none
    std::vector<std::string> reasons;           // all tags, reason first (for logs and `sluice route`)
};

struct plan_outcome {
    route_plan plan;  // valid when ok()
    api_error error;  // valid when !ok()
    bool failed = false;

    bool ok() const { return !failed; }
};

// Why a model failed before its first token. Client errors (400, 401, 404, 413, 422) do not count
// toward the circuit: the request was at fault, not the model.
enum class failure_kind {
    connect,       // refused, reset, DNS, TLS
    timeout,       // connect, first byte or idle deadline
    rate_limited,  // 429 from upstream
    server_error,  // 5xx from upstream
    queue_full,    // local: no slot and the wait queue is full
    bad_request,   // 4xx other than 429: not the model's fault, circuit unchanged
    other,
};

std::string_view to_string(failure_kind kind);  // connect, timeout, rate_limited, upstream_5xx, ...

// Maps an error chunk's code as the providers use them (providers/cloud_common.cpp): 429 ->
// rate_limited, 503 -> queue_full from a local model, connect (cannot reach) from a cloud one,
// 504/408 -> timeout, 502 (the upstream's own 5xx, or a broken response) and other 5xx ->
// server_error, other 4xx -> bad_request.
failure_kind failure_kind_from_code(int code, bool local = false);

struct model_status {
    std::string name;
    model_role role = model_role::local_small;
    std::string provider;    // "llama", "openai", ...
    bool available = false;  // the provider is up and its circuit is not open
    circuit_state circuit = circuit_state::closed;
    int recent_errors = 0;  // failures in the last minute
    int queue_depth = 0;
    int active = 0;
    std::string detail;  // why not available, when not
    bool supports_tools = false;
    bool supports_images = false;
    int gpu_layers = 0;  // local models: layers on the GPU
    bool gpu_offload = false;
};

class orchestrator {
  public:
    // `providers` in the same order as cfg.models (provider->config() gives name and role). The
    // clock drives the circuit breakers (inject one in tests).
    orchestrator(const config& cfg, std::vector<provider_ptr> providers, steady_clock_fn clock = {});

    // Decision order: preferred_model (by its name) -> explicit model_type -> [[routing.rules]] ->
    // preferred_model named by an alias -> routing.default_model_type / the auto policy. A rule whose
    // target has no model that can serve the request (tools, images) is passed over. Within a role
    // the first candidate is the routing.balance pick, the others of the role stand in before the
    // other role. A role with no usable
    // model -> the other role when routing.fallback, else 503. A model that cannot serve the request
    // (tools, images) is never a candidate: chosen explicitly it is a 400 naming what it lacks; the
    // auto policy passes to the other role with reason needs_tools / needs_images. Claims the
    // half-open probe of the first candidate, if its circuit is half open. With `commit` false the
    // plan is only a look (count_tokens, `sluice route`): no balancing pick is counted, no probe
    // claimed.
    plan_outcome plan(const route_request& request, bool commit = true);

    // Feed the circuit breakers. Unknown names are ignored.
    void report_success(std::string_view model_name);
    void report_failure(std::string_view model_name, failure_kind kind);
    // Time from the start of a model's stream to its first content (the plans' providers report it
    // themselves; see timed_provider in orchestrator.cpp): feeds routing.balance = latency.
    void report_first_token(std::string_view model_name, std::chrono::nanoseconds ttft);

    // Lower-case names of the headers the rules look at: route_request::headers needs only these.
    const std::vector<std::string>& rule_headers() const { return rules_.header_names(); }
    const rule_set& rules() const { return rules_; }
    const balancer& balance() const { return *balancer_; }

    std::vector<model_status> models_status() const;  // for GET /api/v1/models, in config order

    const auto_policy& policy() const { return policy_; }
    const std::vector<provider_ptr>& providers() const { return providers_; }

  private:
    struct model_entry {
        provider_ptr
            provider;  // the configured provider; with balance = latency, wrapped to time its first token
        std::unique_ptr<circuit_breaker> breaker;
        std::size_t index = 0;  // config order
    };

    const model_entry* find(std::string_view name) const;
    bool usable(const model_entry& entry) const;  // available, queue not full, circuit lets through
    // Usable models of `role` that can serve `request` (tools, images), in config order.
    std::vector<const model_entry*> usable_of(model_role role, const route_request& request) const;
    // Builds the candidate list: `chosen` first, then same role, then (with fallback) the other role.
    route_plan make_plan(const std::vector<const model_entry*>& primary, model_role role,
                         const route_request& request) const;
    // routing.balance: the pick first (with `take`, counted as a request), the rest in preference.
    void balance_order(std::vector<const model_entry*>& models, bool take) const;
    // The first rule that matches and whose target can serve the request; nullopt: none.
    std::optional<std::size_t> matching_rule(const route_request& request) const;

    routing_config routing_;
    auto_policy policy_;
    rule_set rules_;
    std::shared_ptr<balancer> balancer_;
    std::vector<provider_ptr> providers_;
    std::vector<model_entry> entries_;
};

}  // namespace sluice
