#include "app/cmd_route.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "routing/policy.h"
#include "routing/router_model.h"

namespace sluice {

namespace {

struct route_options {
    std::string message;
    bool jsonl = false;
    bool json = false;
    bool model_info = false;
    int turns = 0;
    std::size_t conversation_chars = 0;
};

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
    const auto d = policy.decide(opts.message, opts.turns, opts.conversation_chars);
    if (opts.json) {
        std::cout << to_json(d, policy.threshold()) << '\n';
        return;
    }
    std::string model = "(none configured)";
    for (const auto& m : cfg.models) {
        if (m.role == d.role) {
            model = m.name;
            break;
        }
    }
    std::cout << "role:      " << to_string(d.role) << "\n"
              << "model:     " << model << "\n"
              << "score:     " << d.score << " (threshold " << policy.threshold() << ")\n"
              << "reason:    " << d.reason << "\n"
              << "reasons:  ";
    for (const auto& r : d.reasons) std::cout << ' ' << r;
    std::cout << "\n";
}

}  // namespace

void add_route_command(CLI::App& app, std::function<config()> load_config) {
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
