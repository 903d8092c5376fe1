#include "core/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <variant>

#include "core/rule_regex.h"

extern char** environ;

namespace sluice {

namespace {

// The embedded defaults: what `sluice serve` runs with when there is no sluice.toml.
constexpr std::string_view k_embedded_defaults = R"toml(
[server]
listen = "127.0.0.1:8080"

[store]
url = "sqlite://sluice-data/sluice.db"

[[models]]
name = "local"
role = "local_small"
provider = "llama"
path = ""
)toml";

enum class value_kind { string, integer, number, boolean, string_list };

std::string_view kind_name(value_kind kind) {
    switch (kind) {
        case value_kind::string:
            return "a string";
        case value_kind::integer:
            return "an integer";
        case value_kind::number:
            return "a number";
        case value_kind::boolean:
            return "true or false";
        case value_kind::string_list:
            return "a list of non-empty strings";
    }
    return "?";
}

// One configurable key of a section: its type, its allowed range or values, and where it goes.
template <typename Section>
struct field {
    std::string_view key;
    value_kind kind;
    std::function<void(Section&, const toml::node&)> assign;
    double min = 0;
    double max = 0;  // min == max == 0: no range check
    std::vector<std::string_view> allowed;
};

[[noreturn]] void fail(const std::string& path, const std::string& value, const std::string& allowed) {
    throw config_error("config: " + path + " = " + value + " is not allowed: expected " + allowed);
}

std::string render(const toml::node& node) {
    std::ostringstream out;
    node.visit([&](auto&& v) { out << v; });
    return out.str();
}

template <typename Section, typename T>
field<Section> make_field(std::string_view key, T Section::*member, double min = 0, double max = 0,
                          std::vector<std::string_view> allowed = {}) {
    value_kind kind;
    if constexpr (std::is_same_v<T, std::string>) {
        kind = value_kind::string;
    } else if constexpr (std::is_same_v<T, bool>) {
        kind = value_kind::boolean;
    } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>) {
        kind = value_kind::number;
    } else {
        kind = value_kind::integer;
    }
    return field<Section>{
        key,
        kind,
        [member](Section& s, const toml::node& node) {
            if constexpr (std::is_same_v<T, std::string>) {
                s.*member = *node.value<std::string>();
            } else if constexpr (std::is_same_v<T, bool>) {
                s.*member = *node.value<bool>();
            } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>) {
                s.*member = node.is_integer() ? static_cast<double>(*node.value<std::int64_t>())
                                              : *node.value<double>();
            } else {
                s.*member = static_cast<T>(*node.value<std::int64_t>());
            }
        },
        min,
        max,
        std::move(allowed)};
}

bool is_string_list(const toml::node& node) {
    const auto* list = node.as_array();
    if (!list) return false;
    return std::all_of(list->begin(), list->end(), [](const toml::node& item) {
        return item.is_string() && !item.value<std::string>()->empty();
    });
}

template <typename Section>
void apply_field(Section& section, const field<Section>& f, const toml::node& node, const std::string& path) {
    const bool type_ok = (f.kind == value_kind::string && node.is_string()) ||
                         (f.kind == value_kind::boolean && node.is_boolean()) ||
                         (f.kind == value_kind::integer && node.is_integer()) ||
                         (f.kind == value_kind::number && (node.is_integer() || node.is_floating_point())) ||
                         (f.kind == value_kind::string_list && is_string_list(node));
    if (!type_ok) fail(path, render(node), std::string(kind_name(f.kind)));
    if (f.min != 0 || f.max != 0) {
        // An integer's own value: toml++ gives no double for one past 2^53 (an empty optional).
        const double v =
            node.is_integer() ? static_cast<double>(*node.value<std::int64_t>()) : *node.value<double>();
        if (!(v >= f.min && v <= f.max)) {  // NaN (TOML's `nan`) is in no range
            std::ostringstream range;
            range << kind_name(f.kind) << " from " << f.min << " to " << f.max;
            fail(path, render(node), range.str());
        }
    }
    if (!f.allowed.empty()) {
        const auto text = *node.value<std::string>();
        if (std::find(f.allowed.begin(), f.allowed.end(), text) == f.allowed.end()) {
            std::string list;
            for (auto a : f.allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            fail(path, "\"" + text + "\"", "one of " + list);
        }
    }
    f.assign(section, node);
}

template <typename Section>
void apply_table(Section& section, const std::vector<field<Section>>& fields, const toml::table& table,
                 const std::string& prefix) {
    // Named references, not a structured binding: clang 14 (the fuzz build) cannot capture one.
    for (const auto& member : table) {
        const auto& key = member.first;
        const auto& node = member.second;
        const auto it =
            std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.key == key.str(); });
        if (it == fields.end()) {
            std::string known;
            for (const auto& f : fields) known += (known.empty() ? "" : ", ") + std::string(f.key);
            throw config_error("config: unknown key " + prefix + std::string(key.str()) +
                               " (known keys: " + known + ")");
        }
        apply_field(section, *it, node, prefix + std::string(key.str()));
    }
}

const std::vector<field<server_config>>& server_fields() {
    static const std::vector<field<server_config>> fields = {
        make_field("listen", &server_config::listen),
        make_field("heartbeat_interval_s", &server_config::heartbeat_interval_s, 1, 3600),
        make_field("max_body_bytes", &server_config::max_body_bytes, 64, 1024.0 * 1024 * 1024),
        make_field("request_timeout_s", &server_config::request_timeout_s, 1, 86400),
        make_field("header_timeout_s", &server_config::header_timeout_s, 1, 3600),
        make_field("idle_timeout_s", &server_config::idle_timeout_s, 1, 86400),
        make_field("write_timeout_s", &server_config::write_timeout_s, 0, 86400),
        make_field("io_threads", &server_config::io_threads, 0, 1024),
        make_field("shutdown_grace_s", &server_config::shutdown_grace_s, 0, 3600),
        make_field("max_connections", &server_config::max_connections, 0, 10000000),
        make_field("max_answer_bytes", &server_config::max_answer_bytes, 0, 1024.0 * 1024 * 1024),
        make_field("system_prompt", &server_config::system_prompt),
    };
    return fields;
}

const std::vector<field<store_config>>& store_fields() {
    static const std::vector<field<store_config>> fields = {
        make_field("url", &store_config::url),
        make_field("password_env", &store_config::password_env),
        make_field("response_retention_days", &store_config::response_retention_days, 1, 3650),
        make_field("models_dir", &store_config::models_dir),
    };
    return fields;
}

const std::vector<field<routing_config>>& routing_fields() {
    static const std::vector<field<routing_config>> fields = {
        make_field("default_model_type", &routing_config::default_model_type, 0, 0,
                   {"auto", "local_small", "cloud_large"}),
        make_field("threshold", &routing_config::threshold, 0, 1),
        make_field("cloud_share", &routing_config::cloud_share, 0, 1),
        make_field("fallback", &routing_config::fallback),
        make_field("session_wait_ms", &routing_config::session_wait_ms, 0, 3600000),
        make_field("session_lock_ttl_ms", &routing_config::session_lock_ttl_ms, 100, 3600000),
        make_field("balance", &routing_config::balance, 0, 0, {"weighted", "least_busy", "latency"}),
    };
    return fields;
}

const std::vector<field<limits_config>>& limits_fields() {
    static const std::vector<field<limits_config>> fields = {
        make_field("requests_per_minute", &limits_config::requests_per_minute, 0, 1e9),
        make_field("tokens_per_minute", &limits_config::tokens_per_minute, 0, 1e9),
        make_field("max_concurrent_streams", &limits_config::max_concurrent_streams, 0, 1e9),
    };
    return fields;
}

const std::vector<field<resume_config>>& resume_fields() {
    static const std::vector<field<resume_config>> fields = {
        make_field("max_bytes", &resume_config::max_bytes, 1024, 1024.0 * 1024 * 1024),
        make_field("keep_s", &resume_config::keep_s, 0, 86400),
        make_field("ttl_s", &resume_config::ttl_s, 1, 86400 * 7),
        make_field("retry_ms", &resume_config::retry_ms, 0, 3600000),
    };
    return fields;
}

const std::vector<field<model_config>>& model_fields() {
    static const std::vector<field<model_config>> fields = {
        make_field("name", &model_config::name),
        field<model_config>{
            "role",
            value_kind::string,
            [](model_config& m, const toml::node& n) { m.role = *parse_model_role(*n.value<std::string>()); },
            0,
            0,
            {"local_small", "cloud_large"}},
        make_field("provider", &model_config::provider, 0, 0, {"llama", "openai", "anthropic"}),
        make_field("path", &model_config::path),
        make_field("n_ctx", &model_config::n_ctx, 16, 1048576),
        make_field("n_parallel", &model_config::n_parallel, 1, 256),
        make_field("n_threads", &model_config::n_threads, 0, 1024),
        make_field("n_batch", &model_config::n_batch, 1, 65536),
        make_field("queue_size", &model_config::queue_size, 0, 100000),
        field<model_config>{"n_gpu_layers", value_kind::integer,
                            [](model_config& m, const toml::node& n) {
                                m.n_gpu_layers = static_cast<int>(*n.value<std::int64_t>());
                            },
                            0, 100000},
        make_field("base_url", &model_config::base_url),
        make_field("model", &model_config::model),
        make_field("api_key_env", &model_config::api_key_env),
        make_field("connect_timeout_ms", &model_config::connect_timeout_ms, 1, 600000),
        make_field("first_byte_timeout_ms", &model_config::first_byte_timeout_ms, 1, 3600000),
        make_field("idle_timeout_ms", &model_config::idle_timeout_ms, 1, 3600000),
        make_field("request_timeout_s", &model_config::request_timeout_s, 1, 86400),
        make_field("max_connections", &model_config::max_connections, 1, 100000),
        make_field("pool_wait_ms", &model_config::pool_wait_ms, 0, 600000),
        make_field("max_tokens_limit", &model_config::max_tokens_limit, 0, 10000000),
        make_field("weight", &model_config::weight, 0, 1000000),
        make_field("circuit_failures", &model_config::circuit_failures, 1, 100000),
        make_field("circuit_open_s", &model_config::circuit_open_s, 1, 86400),
        field<model_config>{
            "supports_tools", value_kind::boolean,
            [](model_config& m, const toml::node& n) { m.supports_tools = *n.value<bool>(); }},
        field<model_config>{"aliases", value_kind::string_list,
                            [](model_config& m, const toml::node& n) {
                                m.aliases.clear();
                                for (const auto& item : *n.as_array())
                                    m.aliases.push_back(*item.value<std::string>());
                            }},
        field<model_config>{
            "supports_images", value_kind::boolean,
            [](model_config& m, const toml::node& n) { m.supports_images = *n.value<bool>(); }},
    };
    return fields;
}

const std::vector<field<routing_rule>>& rule_when_fields() {
    const auto glob = [](std::optional<std::string> routing_rule::*member) {
        return [member](routing_rule& r, const toml::node& n) { r.*member = *n.value<std::string>(); };
    };
    const auto flag = [](std::optional<bool> routing_rule::*member) {
        return [member](routing_rule& r, const toml::node& n) { r.*member = *n.value<bool>(); };
    };
    const auto tokens = [](std::optional<int> routing_rule::*member) {
        return [member](routing_rule& r, const toml::node& n) {
            r.*member = static_cast<int>(*n.value<std::int64_t>());
        };
    };
    static const std::vector<field<routing_rule>> fields = {
        {"key_name", value_kind::string, glob(&routing_rule::key_name)},
        {"header", value_kind::string,
         [](routing_rule& r, const toml::node& n) { r.header_value = *n.value<std::string>(); }},
        {"model", value_kind::string, glob(&routing_rule::model)},
        {"min_prompt_tokens", value_kind::integer, tokens(&routing_rule::min_prompt_tokens), 0, 1e9},
        {"max_prompt_tokens", value_kind::integer, tokens(&routing_rule::max_prompt_tokens), 0, 1e9},
        {"has_tools", value_kind::boolean, flag(&routing_rule::has_tools)},
        {"has_images", value_kind::boolean, flag(&routing_rule::has_images)},
        {"message_regex", value_kind::string, glob(&routing_rule::message_regex)},
    };
    return fields;
}

// Headers whose value is (or carries) a secret: a rule matches on the key's name instead.
bool secret_header(std::string_view name) {
    return name == "authorization" || name == "proxy-authorization" || name == "x-api-key" ||
           name == "cookie";
}

bool header_token(std::string_view name) {
    if (name.empty()) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    });
}

// `header = "name: value-glob"` -> header_name (lower case) and header_value (the glob).
void split_rule_header(routing_rule& rule, const std::string& where) {
    const std::string text = rule.header_value;
    const auto colon = text.find(':');
    const auto trim = [](std::string_view v) {
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
        return v;
    };
    const auto name =
        colon == std::string::npos ? std::string_view{} : trim(std::string_view(text).substr(0, colon));
    const auto value =
        colon == std::string::npos ? std::string_view{} : trim(std::string_view(text).substr(colon + 1));
    if (!header_token(name) || value.empty())
        fail(where + ".when.header", "\"" + text + "\"", "\"NAME: VALUE-GLOB\" (e.g. \"x-team: research*\")");
    std::string lower_name;
    for (char c : name) lower_name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (secret_header(lower_name))
        fail(where + ".when.header", "\"" + text + "\"",
             "a header other than " + lower_name + ", which carries the key's secret: match on key_name");
    rule.header_name = std::move(lower_name);
    rule.header_value = std::string(value);
}

// [[routing.rules]]: each a table of name (optional), when (a table of matches) and use.
void parse_rules(routing_config& routing, const toml::node& node) {
    if (!node.is_array_of_tables()) fail("routing.rules", render(node), "[[routing.rules]] tables");
    int number = 0;
    for (const auto& entry : *node.as_array()) {
        const auto& table = *entry.as_table();
        routing_rule rule;
        rule.name = "rule" + std::to_string(++number);
        if (const auto* name = table.get("name")) {
            if (!name->is_string() || name->value<std::string>()->empty())
                fail("routing.rules." + rule.name + ".name", render(*name), "a non-empty string");
            rule.name = *name->value<std::string>();
        }
        const std::string where = "routing.rules." + rule.name;
        for (const auto& member : table) {
            const std::string key(member.first.str());
            const auto& value = member.second;
            if (key == "name") continue;
            if (key == "use") {
                if (!value.is_string()) fail(where + ".use", render(value), "a string");
                rule.use = *value.value<std::string>();
            } else if (key == "when") {
                if (!value.is_table())
                    fail(where + ".when", render(value), "a table, e.g. when = { key_name = \"batch-*\" }");
                apply_table(rule, rule_when_fields(), *value.as_table(), where + ".when.");
            } else {
                throw config_error("config: unknown key " + where + "." + key +
                                   " (known keys: name, when, use)");
            }
        }
        if (!rule.header_value.empty()) split_rule_header(rule, where);
        routing.rules.push_back(std::move(rule));
    }
}

// A rule that could never do what it says stops start-up, named.
void validate_rules(const config& cfg) {
    std::set<std::string> names;
    for (const auto& rule : cfg.routing.rules) {
        const std::string where = "routing.rules." + rule.name;
        if (!names.insert(rule.name).second)
            throw config_error("config: routing.rules name \"" + rule.name + "\" is used twice");
        for (const auto* glob : {&rule.key_name, &rule.model}) {
            if (glob->has_value() && (*glob)->empty())
                fail(where + ".when." + (glob == &rule.key_name ? "key_name" : "model"), "\"\"",
                     "a glob pattern (`*` any run, `?` one character), e.g. \"batch-*\"");
        }
        if (rule.min_prompt_tokens && rule.max_prompt_tokens &&
            *rule.min_prompt_tokens > *rule.max_prompt_tokens)
            throw config_error("config: " + where + ".when: min_prompt_tokens " +
                               std::to_string(*rule.min_prompt_tokens) + " is above max_prompt_tokens " +
                               std::to_string(*rule.max_prompt_tokens) + ": the rule could never match");
        if (rule.message_regex) {
            std::string why;
            if (!rule_regex::compile(*rule.message_regex, why))
                fail(where + ".when.message_regex", "\"" + *rule.message_regex + "\"",
                     "a regular expression the router can run (docs/ROUTING.md): " + why);
        }
        if (rule.use.empty())
            throw config_error("config: " + where +
                               ".use is missing: expected a model's name, local_small, cloud_large or auto");
        bool names_something = rule.use == "auto";
        for (const auto& m : cfg.models) {
            if (m.name == rule.use || to_string(m.role) == rule.use) names_something = true;
        }
        if (!names_something) {
            std::string known = "auto";
            for (const auto role : {model_role::local_small, model_role::cloud_large}) {
                if (std::any_of(cfg.models.begin(), cfg.models.end(),
                                [&](const model_config& m) { return m.role == role; }))
                    known += ", " + std::string(to_string(role));
            }
            for (const auto& m : cfg.models) known += ", " + m.name;
            fail(where + ".use", "\"" + rule.use + "\"",
                 "a configured model's name or role, or auto (known: " + known + ")");
        }
    }
}

std::string upper_key(std::string_view text) {
    std::string out;
    for (char c : text)
        out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_');
    return out;
}

// Turns an environment string into a TOML value of the field's type, so it goes through the same
// checks as a value from the file.
template <typename Section>
std::unique_ptr<toml::node> env_value(const field<Section>& f, const std::string& env_name,
                                      const std::string& text) {
    switch (f.kind) {
        case value_kind::string:
            return std::make_unique<toml::value<std::string>>(text);
        case value_kind::boolean:
            if (text == "true" || text == "1") return std::make_unique<toml::value<bool>>(true);
            if (text == "false" || text == "0") return std::make_unique<toml::value<bool>>(false);
            break;
        case value_kind::integer: {
            std::int64_t v = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec == std::errc() && end == text.data() + text.size())
                return std::make_unique<toml::value<std::int64_t>>(v);
            break;
        }
        case value_kind::string_list: {
            // SLUICE_MODELS_<NAME>_ALIASES="claude-*,*haiku*"
            auto list = std::make_unique<toml::array>();
            std::string_view rest = text;
            while (!rest.empty()) {
                const auto comma = rest.find(',');
                const auto item = rest.substr(0, comma);
                if (!item.empty()) list->push_back(std::string(item));
                rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            }
            return list;
        }
        case value_kind::number: {
            try {
                std::size_t used = 0;
                const double v = std::stod(text, &used);
                if (used == text.size()) return std::make_unique<toml::value<double>>(v);
            } catch (const std::exception&) {
            }
            break;
        }
    }
    throw config_error("config: environment " + env_name + " = \"" + text + "\" is not allowed: expected " +
                       std::string(kind_name(f.kind)));
}

template <typename Section>
bool apply_env_section(Section& section, const std::vector<field<Section>>& fields,
                       const std::string& env_prefix, const std::string& path_prefix,
                       const std::string& env_name, const std::string& text) {
    if (env_name.rfind(env_prefix, 0) != 0) return false;
    const auto key = env_name.substr(env_prefix.size());
    for (const auto& f : fields) {
        if (upper_key(f.key) == key) {
            apply_field(section, f, *env_value(f, env_name, text),
                        path_prefix + std::string(f.key) + " (from " + env_name + ")");
            return true;
        }
    }
    throw config_error("config: environment " + env_name + " names no key of [" +
                       path_prefix.substr(0, path_prefix.size() - 1) + "]");
}

void apply_environment(config& cfg, const std::map<std::string, std::string>& env) {
    for (const auto& [name, text] : env) {
        if (name.rfind("SLUICE_", 0) != 0) continue;
        if (apply_env_section(cfg.server, server_fields(), "SLUICE_SERVER_", "server.", name, text)) continue;
        if (apply_env_section(cfg.store, store_fields(), "SLUICE_STORE_", "store.", name, text)) continue;
        if (apply_env_section(cfg.routing, routing_fields(), "SLUICE_ROUTING_", "routing.", name, text))
            continue;
        if (apply_env_section(cfg.limits, limits_fields(), "SLUICE_LIMITS_", "limits.", name, text)) continue;
        if (apply_env_section(cfg.resume, resume_fields(), "SLUICE_RESUME_", "resume.", name, text)) continue;
        // SLUICE_MODELS_<NAME>_<KEY>, NAME upper-cased with non-alphanumerics as '_'.
        for (auto& model : cfg.models) {
            const auto prefix = "SLUICE_MODELS_" + upper_key(model.name) + "_";
            if (apply_env_section(model, model_fields(), prefix, "models." + model.name + ".", name, text))
                break;
        }
        // Any other SLUICE_* variable (e.g. a test harness's) is not configuration.
    }
}

bool valid_listen(const std::string& listen) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    int port = -1;
    const auto port_text = std::string_view(listen).substr(colon + 1);
    // At most 5 digits: "0000000000:" style ports with leading zeros are not a port (config fuzz finding).
    if (port_text.empty() || port_text.size() > 5) return false;
    // Digits only: from_chars takes "-0" as 0 (config fuzz finding, second round).
    if (port_text.find_first_not_of("0123456789") != std::string_view::npos) return false;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    return ec == std::errc() && end == port_text.data() + port_text.size() && port >= 0 && port <= 65535;
}

void validate(config& cfg) {
    if (!valid_listen(cfg.server.listen)) {
        fail("server.listen", "\"" + cfg.server.listen + "\"", "HOST:PORT with a port from 0 to 65535");
    }
    if (cfg.store.url.rfind("sqlite://", 0) != 0 && cfg.store.url.rfind("redis://", 0) != 0) {
        fail("store.url", "\"" + cfg.store.url + "\"", "sqlite://PATH or redis://HOST:PORT/DB");
    }
    if (cfg.routing.threshold && cfg.routing.cloud_share) {
        throw config_error("config: routing.threshold and routing.cloud_share are both set: choose one");
    }
    std::set<std::string> names;
    for (auto& m : cfg.models) {
        const auto where = "models." + (m.name.empty() ? std::string("?") : m.name);
        if (m.name.empty())
            throw config_error("config: a [[models]] entry has no name: every model needs one");
        if (!names.insert(m.name).second)
            throw config_error("config: models.name \"" + m.name + "\" is used twice");
        if (m.provider.empty()) {
            throw config_error("config: " + where +
                               ".provider is missing: expected one of llama, openai, anthropic");
        }
        if (m.provider != "llama" && m.base_url.empty()) {
            throw config_error("config: " + where + ".base_url is missing: provider \"" + m.provider +
                               "\" needs the API's base URL (e.g. https://api.openai.com/v1)");
        }
        if (m.provider != "llama" && m.base_url.rfind("http://", 0) != 0 &&
            m.base_url.rfind("https://", 0) != 0) {
            fail(where + ".base_url", "\"" + m.base_url + "\"", "an http:// or https:// URL");
        }
        for (const auto& alias : m.aliases) {
            if (alias == "auto" || alias == "local_small" || alias == "cloud_large")
                fail(where + ".aliases", "\"" + alias + "\"",
                     "a pattern other than the routing names auto, local_small, cloud_large");
        }
        if (m.model.empty()) m.model = m.name;
        if (m.max_tokens_limit == 0) m.max_tokens_limit = m.provider == "llama" ? m.n_ctx : 128000;
    }
    validate_rules(cfg);
}

config from_table(const toml::table& root) {
    config cfg;
    for (const auto& member : root) {
        const auto& key = member.first;
        const auto& node = member.second;  // captured below: no structured binding (clang 14)
        const std::string section(key.str());
        const auto need_table = [&]() -> const toml::table& {
            if (!node.is_table()) fail(section, render(node), "a [" + section + "] table");
            return *node.as_table();
        };
        if (section == "server") {
            apply_table(cfg.server, server_fields(), need_table(), "server.");
        } else if (section == "store") {
            apply_table(cfg.store, store_fields(), need_table(), "store.");
        } else if (section == "routing") {
            toml::table routing = need_table();  // a copy: the rules are not plain keys
            if (const auto* rules = routing.get("rules")) {
                parse_rules(cfg.routing, *rules);
                routing.erase("rules");
            }
            apply_table(cfg.routing, routing_fields(), routing, "routing.");
        } else if (section == "limits") {
            apply_table(cfg.limits, limits_fields(), need_table(), "limits.");
        } else if (section == "resume") {
            apply_table(cfg.resume, resume_fields(), need_table(), "resume.");
        } else if (section == "models") {
            if (!node.is_array_of_tables()) fail("models", render(node), "[[models]] tables");
            for (const auto& entry : *node.as_array()) {
                model_config model;
                apply_table(model, model_fields(), *entry.as_table(), "models.");
                cfg.models.push_back(std::move(model));
            }
        } else {
            throw config_error("config: unknown section [" + section +
                               "] (known sections: server, store, models, routing, limits, resume)");
        }
    }
    return cfg;
}

config parse_with_source(std::string_view text, const std::string& source,
                         const std::map<std::string, std::string>& env) {
    toml::table root;
    try {
        root = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        std::ostringstream out;
        out << "config: " << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
            << e.description();
        throw config_error(out.str());
    }
    auto cfg = from_table(root);
    // A file that names no model gets the embedded local demo model, so `serve` always has one.
    if (cfg.models.empty()) cfg.models = from_table(toml::parse(k_embedded_defaults)).models;
    cfg.source = source;
    apply_environment(cfg, env);
    validate(cfg);
    return cfg;
}

}  // namespace

config parse_config(std::string_view toml_text, const std::map<std::string, std::string>& env) {
    return parse_with_source(toml_text, "config", env);
}

config load_config(const std::optional<std::filesystem::path>& path,
                   const std::map<std::string, std::string>& env) {
    std::optional<std::filesystem::path> file = path;
    if (!file && std::filesystem::exists("sluice.toml")) file = "sluice.toml";
    if (!file) return parse_with_source(k_embedded_defaults, "embedded defaults", env);
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw config_error("config: cannot read " + file->string() + ": no such file or not readable");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_with_source(text.str(), file->string(), env);
}

std::map<std::string, std::string> process_environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
    return env;
}

int model_token_limit(const model_config& model) {
    constexpr int k_cloud_token_limit = 128000;
    if (model.max_tokens_limit > 0) return model.max_tokens_limit;
    return model.provider == "llama" ? model.n_ctx : k_cloud_token_limit;
}

}  // namespace sluice
