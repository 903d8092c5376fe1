#include "app/cmd_route.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "routing/offline_model.h"
#include "routing/orchestrator.h"
#include "routing/policy.h"
#include "routing/router_model.h"
#include "turn/model_names.h"

namespace sluice {

namespace {

struct route_options {
    std::string message;
    bool jsonl = false;
    bool json = false;
    bool model_info = false;
    int turns = 0;
    std::size_t conversation_chars = 0;
    // What [[routing.rules]] may match on besides the message.
    std::string key_name;
    std::vector<std::string> headers;  // "name: value"
    std::string model;                 // as a client would name it: a model, an alias, auto, a role
    bool tools = false;
    bool images = false;
};

// "rule batch (use local_small)", "auto policy", "model_type", "preferred_model": who decided.
std::string decided_by(const config& cfg, const route_plan& plan) {
    if (!plan.rule.empty()) {
        for (const auto& rule : cfg.routing.rules) {
            if (rule.name == plan.rule) return "rule " + rule.name + " (use " + rule.use + ")";
        }
    }
    for (const auto& reason : plan.reasons) {
        if (reason == "preferred_model" || reason == "model_type") return reason;
    }
    return "auto policy";
}

// Scores print with fixed decimals (Boost.JSON would write 4.6E-1), reasons through the JSON
// serializer so any text stays valid JSON.
std::string to_json(const policy_decision& d, std::optional<double> threshold = std::nullopt) {
    boost::json::array reasons;
    for (const auto& r : d.reasons) reasons.emplace_back(r);
    char score[32];
    std::snprintf(score, sizeof score, "%.6f", d.score);
    std::string out = std::string(R"({"score":)") + score + R"(,"role":")" + std::string(to_string(d.role)) +
                      R"(","reason":)" + boost::json::serialize(boost::json::value(d.reason)) +
                      R"(,"reasons":)" + boost::json::serialize(reasons);
    if (threshold) {
        std::snprintf(score, sizeof score, "%.6f", *threshold);
        out += std::string(R"(,"threshold":)") + score;
    }
    return out + "}";
}

// One decision per input line; a line that is not {"message": string} gets {"error": ...} so the
// output stays aligned with the input.
int run_jsonl(const auto_policy& policy) {
    std::string line;
    std::ios::sync_with_stdio(false);
    while (std::getline(std::cin, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        boost::system::error_code ec;
        const auto value = boost::json::parse(line, ec);
        const auto* obj = ec ? nullptr : value.if_object();
        const auto* message = obj ? obj->if_contains("message") : nullptr;
        if (!message || !message->is_string()) {
            std::cout << R"({"error":"expected {\"message\": string}"})" << '\n';
            continue;
        }
        int turns = 0;
        std::size_t conversation_chars = 0;
        if (const auto* t = obj->if_contains("turns_so_far"); t && t->is_int64() && t->as_int64() >= 0) {
            turns = static_cast<int>(std::min<std::int64_t>(t->as_int64(), 1 << 20));
        }
        if (const auto* c = obj->if_contains("conversation_chars");
            c && c->is_int64() && c->as_int64() >= 0) {
            conversation_chars = static_cast<std::size_t>(c->as_int64());
        }
        std::cout << to_json(policy.decide(message->as_string(), turns, conversation_chars)) << '\n';
    }
    std::cout.flush();
    return 0;
}

void print_decision(const config& cfg, const auto_policy& policy, const route_options& opts) {
    std::vector<provider_ptr> models;
    for (const auto& m : cfg.models) models.push_back(std::make_shared<offline_model>(m));
    orchestrator router(cfg, std::move(models));

    route_request request{.message = opts.message,
                          .turns_so_far = opts.turns,
                          .conversation_chars = opts.conversation_chars,
                          .needs_tools = opts.tools,
                          .needs_images = opts.images,
                          .key_name = opts.key_name};
    if (!opts.model.empty()) {
        const auto choice = resolve_model_name(cfg, opts.model);
        if (!choice)
            throw CLI::ValidationError("--model",
                                       "no model " + opts.model + " (known: " + known_model_names(cfg) + ")");
        request.preferred_model = choice->preferred_model;
        request.model_type = choice->model_type;
        request.requested_model = opts.model;
    }
    std::vector<std::string> header_names;  // lower case; request.headers points into these
    header_names.reserve(opts.headers.size());
    for (const auto& header : opts.headers) {
        const auto colon = header.find(':');
        if (colon == std::string::npos)
            throw CLI::ValidationError("--header", "expected NAME: VALUE, got " + header);
        std::string name;
        for (char c : header.substr(0, colon))
            name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        header_names.push_back(std::move(name));
    }
    for (std::size_t i = 0; i < opts.headers.size(); ++i) {
        std::string_view value = std::string_view(opts.headers[i]).substr(opts.headers[i].find(':') + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        request.headers.emplace_back(header_names[i], value);
    }

    const auto d = policy.decide(opts.message, opts.turns, opts.conversation_chars);
    const auto planned = router.plan(request, /*commit=*/false);
    if (opts.json) {
        std::string out = to_json(d, policy.threshold());
        out.pop_back();
        if (planned.ok()) {
            out +=
                R"(,"planned_role":")" + std::string(to_string(planned.plan.role)) + R"(","model":)" +
                boost::json::serialize(boost::json::value(planned.plan.candidates.front()->config().name)) +
                R"(,"route_reason":)" + boost::json::serialize(boost::json::value(planned.plan.reason)) +
                R"(,"decided_by":)" +
                boost::json::serialize(boost::json::value(decided_by(cfg, planned.plan))) + R"(,"rule":)" +
                boost::json::serialize(boost::json::value(planned.plan.rule));
        } else {
            out += R"(,"error":)" + boost::json::serialize(boost::json::value(planned.error.message));
        }
        std::cout << out << "}\n";
        return;
    }
    if (!planned.ok()) {
        std::cout << "error:     " << planned.error.code << " " << planned.error.message << "\n"
                  << "score:     " << d.score << " (threshold " << policy.threshold() << ")\n";
        return;
    }
    const auto& plan = planned.plan;
    std::cout << "role:      " << to_string(plan.role) << "\n"
              << "model:     " << plan.candidates.front()->config().name << "\n"
              << "decided:   " << decided_by(cfg, plan) << "\n"
              << "score:     " << d.score << " (threshold " << policy.threshold() << ")\n"
              << "reason:    " << plan.reason << "\n"
              << "reasons:  ";
    for (const auto& r : plan.reasons) std::cout << ' ' << r;
    std::cout << "\n";
}

}  // namespace

void add_route_command(CLI::App& app, const std::function<config()>& load_config) {
    auto opts = std::make_shared<route_options>();
    auto* cmd = app.add_subcommand("route", "Print the routing decision for MESSAGE and why (no model call)");
    cmd->add_option("message", opts->message, "The message to route");
    cmd->add_flag("--jsonl", opts->jsonl,
                  "Read {\"message\": ...} lines on stdin, write one decision per line");
    cmd->add_flag("--json", opts->json, "Print the decision as one JSON object");
    cmd->add_option("--turns", opts->turns, "Turns of the conversation before this message")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--conversation-chars", opts->conversation_chars, "Size of the earlier turns in bytes");
    cmd->add_flag("--model-info", opts->model_info, "Describe the shipped routing model");
    cmd->add_option("--key-name", opts->key_name, "The API key's name, for [[routing.rules]] key_name");
    cmd->add_option("--header", opts->headers, "A request header \"NAME: VALUE\" (repeatable), for rules")
        ->allow_extra_args(false);
    cmd->add_option("--model", opts->model, "The model a client asks for: a name, an alias, auto or a role");
    cmd->add_flag("--tools", opts->tools, "The request offers tools");
    cmd->add_flag("--images", opts->images, "The request holds an image");
    cmd->callback([opts, load_config] {
        const config cfg = load_config();
        const auto_policy policy(cfg.routing);
        if (opts->model_info) {
            std::cout << router_model::get().description << "\nthreshold " << policy.threshold() << "\n";
            return;
        }
        if (opts->jsonl) {
            run_jsonl(policy);
            return;
        }
        if (opts->message.empty()) throw CLI::ValidationError("route", "MESSAGE or --jsonl is required");
        print_decision(cfg, policy, *opts);
    });
}

}  // namespace sluice
