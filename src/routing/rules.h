#pragma once
// [[routing.rules]] compiled for the router (docs/ROUTING.md, "Rules"): the globs as written, the
// regular expressions compiled once. A rule matches when every match it gives holds.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/rule_regex.h"

namespace sluice {

// What a rule can see of a request; never the key's secret (only its name).
struct rule_input {
    std::string_view key_name;
    std::string_view requested_model;  // as the client wrote it: a name, an alias, auto, ...; "" if none
    // (lower-case name, value) of the headers the rules name (rule_set::header_names()).
    const std::vector<std::pair<std::string_view, std::string_view>>* headers = nullptr;
    std::size_t prompt_tokens = 0;  // the conversation with the new message, estimated (bytes / 4)
    bool has_tools = false;
    bool has_images = false;
    std::string_view message;  // the new user turn (a regex reads its first k_rule_regex_window bytes)
};

// Bytes / 4, rounded up: the estimate the rules' prompt token bounds compare with.
std::size_t estimate_prompt_tokens(std::size_t message_bytes, std::size_t conversation_bytes);

class rule_set {
  public:
    // Throws config_error for a regex that does not compile (load_config has checked them all).
    explicit rule_set(const std::vector<routing_rule>& rules);

    std::size_t size() const { return rules_.size(); }
    const routing_rule& rule(std::size_t index) const { return rules_[index].rule; }
    bool matches(std::size_t index, const rule_input& input) const;
    // Lower-case names of the headers some rule looks at (each once): all a request must hand over.
    const std::vector<std::string>& header_names() const { return header_names_; }

  private:
    struct compiled {
        routing_rule rule;
        std::optional<rule_regex> regex;
    };
    std::vector<compiled> rules_;
    std::vector<std::string> header_names_;
};

}  // namespace sluice
