#include "routing/rules.h"

#include <algorithm>

#include "core/glob.h"

namespace sluice {

std::size_t estimate_prompt_tokens(std::size_t message_bytes, std::size_t conversation_bytes) {
    return (message_bytes + conversation_bytes + 3) / 4;
}

rule_set::rule_set(const std::vector<routing_rule>& rules) {
    rules_.reserve(rules.size());
    for (const auto& rule : rules) {
        compiled c{.rule = rule, .regex = std::nullopt};
        if (rule.message_regex) {
            std::string error;
            c.regex = rule_regex::compile(*rule.message_regex, error);
            if (!c.regex) throw config_error("routing.rules." + rule.name + ".when.message_regex: " + error);
        }
        if (!rule.header_name.empty() &&
            std::find(header_names_.begin(), header_names_.end(), rule.header_name) == header_names_.end())
            header_names_.push_back(rule.header_name);
        rules_.push_back(std::move(c));
    }
}

// Cheapest matches first; the regex last, over a bounded window of the message.
bool rule_set::matches(std::size_t index, const rule_input& input) const {
    const auto& [rule, regex] = rules_[index];
    if (rule.has_tools && *rule.has_tools != input.has_tools) return false;
    if (rule.has_images && *rule.has_images != input.has_images) return false;
    if (rule.min_prompt_tokens && input.prompt_tokens < static_cast<std::size_t>(*rule.min_prompt_tokens))
        return false;
    if (rule.max_prompt_tokens && input.prompt_tokens > static_cast<std::size_t>(*rule.max_prompt_tokens))
        return false;
    if (rule.key_name && !glob_match(*rule.key_name, input.key_name)) return false;
    if (rule.model && !glob_match(*rule.model, input.requested_model)) return false;
    if (!rule.header_name.empty()) {
        bool found = false;
        if (input.headers) {
            for (const auto& [name, value] : *input.headers) {
                if (name == rule.header_name && glob_match(rule.header_value, value)) {
                    found = true;
                    break;
                }
            }
        }
        if (!found) return false;
    }
    if (regex) {
        const auto window = input.message.substr(0, std::min(input.message.size(), k_rule_regex_window));
        if (!regex->search(window)) return false;
    }
    return true;
}

}  // namespace sluice
