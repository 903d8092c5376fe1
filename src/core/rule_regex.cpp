#include "core/rule_regex.h"

#include <algorithm>
#include <bitset>
#include <map>
#include <utility>

namespace sluice {

namespace {

using byte_set = std::bitset<256>;

constexpr int k_unbounded = -1;
constexpr std::size_t k_max_nfa_nodes = 8000;

enum class assertion : std::uint8_t { line_start, line_end, word_boundary, not_word_boundary };

bool is_word_byte(unsigned c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

byte_set fold_case(byte_set set) {
    for (unsigned c = 'a'; c <= 'z'; ++c) {
        const unsigned upper = c - 'a' + 'A';
        if (set[c] || set[upper]) set.set(c).set(upper);
    }
    return set;
}

byte_set named_set(char name) {
    byte_set set;
    for (unsigned c = 0; c < 256; ++c) {
        const bool digit = c >= '0' && c <= '9';
        const bool space = c == ' ' || (c >= '\t' && c <= '\r');
        switch (name) {
            case 'd':
                set[c] = digit;
                break;
            case 'D':
                set[c] = !digit;
                break;
            case 'w':
                set[c] = is_word_byte(c);
                break;
            case 'W':
                set[c] = !is_word_byte(c);
                break;
            case 's':
                set[c] = space;
                break;
            case 'S':
                set[c] = !space;
                break;
            default:
                break;
        }
    }
    return set;
}

// The pattern as a tree; repeats are expanded into copies only when the automaton is built.
struct ast_node {
    enum class kind : std::uint8_t { bytes, empty, concat, alternation, repeat, check } type = kind::empty;
    byte_set bytes;
    std::vector<int> children;
    int min = 0;
    int max = 0;  // k_unbounded: no upper bound
    assertion what = assertion::line_start;
};

class parser {
  public:
    parser(std::string_view pattern, std::vector<ast_node>& nodes) : text_(pattern), nodes_(nodes) {}

    int parse(std::string& error) {
        const int root = alternation();
        if (error_.empty() && pos_ < text_.size()) fail("unmatched ')'");
        error = error_;
        return error_.empty() ? root : -1;
    }

  private:
    void fail(const std::string& what) {
        if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    }
    bool more() const { return pos_ < text_.size() && error_.empty(); }
    int add(ast_node node) {
        nodes_.push_back(std::move(node));
        return static_cast<int>(nodes_.size() - 1);
    }

    int alternation() {
        ast_node alt{.type = ast_node::kind::alternation};
        alt.children.push_back(sequence());
        while (more() && text_[pos_] == '|') {
            ++pos_;
            alt.children.push_back(sequence());
        }
        return alt.children.size() == 1 ? alt.children.front() : add(std::move(alt));
    }

    int sequence() {
        ast_node seq{.type = ast_node::kind::concat};
        while (more() && text_[pos_] != '|' && text_[pos_] != ')') seq.children.push_back(repeated());
        if (seq.children.empty()) return add({.type = ast_node::kind::empty});
        return seq.children.size() == 1 ? seq.children.front() : add(std::move(seq));
    }

    bool number(int& out) {
        const std::size_t start = pos_;
        long value = 0;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            value = std::min<long>(value * 10 + (text_[pos_] - '0'), 1000000);
            ++pos_;
        }
        out = static_cast<int>(value);
        return pos_ > start;
    }

    int repeated() {
        int atom_index = atom();
        while (more()) {
            const char c = text_[pos_];
            int min = 0, max = 0;
            if (c == '*') {
                min = 0, max = k_unbounded;
                ++pos_;
            } else if (c == '+') {
                min = 1, max = k_unbounded;
                ++pos_;
            } else if (c == '?') {
                min = 0, max = 1;
                ++pos_;
            } else if (c == '{') {
                ++pos_;
                if (!number(min)) {
                    fail("expected a count after '{'");
                    return atom_index;
                }
                max = min;
                if (pos_ < text_.size() && text_[pos_] == ',') {
                    ++pos_;
                    if (!number(max)) max = k_unbounded;
                }
                if (pos_ >= text_.size() || text_[pos_] != '}') {
                    fail("expected '}'");
                    return atom_index;
                }
                ++pos_;
                const int largest = std::max(min, max);
                if (largest > static_cast<int>(k_rule_regex_max_repeat)) {
                    fail("a repeat count above " + std::to_string(k_rule_regex_max_repeat));
                    return atom_index;
                }
                if (max != k_unbounded && max < min) {
                    fail("a repeat {m,n} with n below m");
                    return atom_index;
                }
            } else {
                break;
            }
            if (pos_ < text_.size() && text_[pos_] == '?') ++pos_;  // lazy: the same matches
            atom_index =
                add({.type = ast_node::kind::repeat, .children = {atom_index}, .min = min, .max = max});
        }
        return atom_index;
    }

    // One byte of a class or an escape; false with the error set when it is not one.
    bool escaped_byte(char c, unsigned& out) {
        switch (c) {
            case 'n':
                out = '\n';
                return true;
            case 't':
                out = '\t';
                return true;
            case 'r':
                out = '\r';
                return true;
            case 'f':
                out = '\f';
                return true;
            case 'v':
                out = '\v';
                return true;
            case '0':
                out = 0;
                return true;
            case 'x': {
                unsigned value = 0;
                for (int i = 0; i < 2; ++i) {
                    const char h = pos_ < text_.size() ? text_[pos_] : '\0';
                    const int digit = h >= '0' && h <= '9'   ? h - '0'
                                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                             : -1;
                    if (digit < 0) {
                        fail("expected two hex digits after \\x");
                        return false;
                    }
                    value = value * 16 + static_cast<unsigned>(digit);
                    ++pos_;
                }
                out = value;
                return true;
            }
            default:
                break;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9')) {
            fail(c >= '1' && c <= '9' ? "a back-reference (not supported)"
                                      : std::string("an unknown escape \\") + c);
            return false;
        }
        out = static_cast<unsigned char>(c);  // \. \\ \( ... : the character itself
        return true;
    }

    int char_class() {
        ++pos_;  // '['
        bool negated = false;
        if (pos_ < text_.size() && text_[pos_] == '^') {
            negated = true;
            ++pos_;
        }
        byte_set set;
        bool first = true;
        while (error_.empty()) {
            if (pos_ >= text_.size()) {
                fail("missing ']'");
                break;
            }
            char c = text_[pos_++];
            if (c == ']' && !first) break;
            first = false;
            unsigned low = static_cast<unsigned char>(c);
            if (c == '\\') {
                if (pos_ >= text_.size()) {
                    fail("a '\\' at the end");
                    break;
                }
                const char e = text_[pos_++];
                if (std::string_view("dDwWsS").find(e) != std::string_view::npos) {
                    set |= named_set(e);
                    continue;
                }
                if (!escaped_byte(e, low)) break;
            }
            if (pos_ + 1 < text_.size() && text_[pos_] == '-' && text_[pos_ + 1] != ']') {
                ++pos_;
                c = text_[pos_++];
                unsigned high = static_cast<unsigned char>(c);
                if (c == '\\') {
                    if (pos_ >= text_.size() || !escaped_byte(text_[pos_++], high)) {
                        fail("a bad range end");
                        break;
                    }
                }
                if (high < low) {
                    fail("a range out of order");
                    break;
                }
                for (unsigned b = low; b <= high; ++b) set.set(b);
            } else {
                set.set(low);
            }
        }
        set = fold_case(set);
        if (negated) set.flip();
        return add({.type = ast_node::kind::bytes, .bytes = set});
    }

    int atom() {
        const char c = text_[pos_];
        switch (c) {
            case '(': {
                ++pos_;
                if (pos_ < text_.size() && text_[pos_] == '?') {
                    if (pos_ + 1 < text_.size() && text_[pos_ + 1] == ':') {
                        pos_ += 2;
                    } else {
                        fail("a look-around or group flag (not supported)");
                        return add({});
                    }
                }
                const int inner = alternation();
                if (pos_ >= text_.size() || text_[pos_] != ')') {
                    fail("missing ')'");
                    return inner;
                }
                ++pos_;
                return inner;
            }
            case '[':
                return char_class();
            case '.': {
                ++pos_;
                byte_set any;
                any.set();
                any.reset('\n');
                return add({.type = ast_node::kind::bytes, .bytes = any});
            }
            case '^':
                ++pos_;
                return add({.type = ast_node::kind::check, .what = assertion::line_start});
            case '$':
                ++pos_;
                return add({.type = ast_node::kind::check, .what = assertion::line_end});
            case '*':
            case '+':
            case '?':
            case '{':
                fail("nothing to repeat");
                return add({});
            case '\\': {
                ++pos_;
                if (pos_ >= text_.size()) {
                    fail("a '\\' at the end");
                    return add({});
                }
                const char e = text_[pos_++];
                if (e == 'b' || e == 'B')
                    return add({.type = ast_node::kind::check,
                                .what = e == 'b' ? assertion::word_boundary : assertion::not_word_boundary});
                if (std::string_view("dDwWsS").find(e) != std::string_view::npos)
                    return add({.type = ast_node::kind::bytes, .bytes = named_set(e)});
                unsigned byte = 0;
                if (!escaped_byte(e, byte)) return add({});
                byte_set one;
                one.set(byte);
                return add({.type = ast_node::kind::bytes, .bytes = fold_case(one)});
            }
            default: {
                ++pos_;
                byte_set one;
                one.set(static_cast<unsigned char>(c));
                return add({.type = ast_node::kind::bytes, .bytes = fold_case(one)});
            }
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::vector<ast_node>& nodes_;
    std::string error_;
};

// Thompson's construction: every fragment ends in an epsilon node whose `out` is patched later.
struct nfa_node {
    enum class kind : std::uint8_t { bytes, epsilon, split, check, match } type = kind::epsilon;
    int out = -1;
    int out2 = -1;  // split
    int set = -1;   // bytes: index into sets
    assertion what = assertion::line_start;
};

class nfa_builder {
  public:
    explicit nfa_builder(const std::vector<ast_node>& ast) : ast_(ast) {}

    std::vector<nfa_node> nodes;
    std::vector<byte_set> sets;
    bool too_large = false;

    struct fragment {
        int start;
        int end;
    };

    int add(nfa_node node) {
        if (nodes.size() >= k_max_nfa_nodes) too_large = true;
        nodes.push_back(node);
        return static_cast<int>(nodes.size() - 1);
    }

    fragment build(int index) {
        if (too_large) {
            const int e = add({});
            return {e, e};
        }
        const ast_node& node = ast_[static_cast<std::size_t>(index)];
        switch (node.type) {
            case ast_node::kind::bytes: {
                const auto found = std::find(sets.begin(), sets.end(), node.bytes);
                const int set = static_cast<int>(found - sets.begin());
                if (found == sets.end()) sets.push_back(node.bytes);
                const int end = add({});
                const int start = add({.type = nfa_node::kind::bytes, .out = end, .set = set});
                return {start, end};
            }
            case ast_node::kind::empty: {
                const int e = add({});
                return {e, e};
            }
            case ast_node::kind::check: {
                const int end = add({});
                const int start = add({.type = nfa_node::kind::check, .out = end, .what = node.what});
                return {start, end};
            }
            case ast_node::kind::concat: {
                fragment whole = build(node.children.front());
                for (std::size_t i = 1; i < node.children.size(); ++i) {
                    const fragment next = build(node.children[i]);
                    nodes[static_cast<std::size_t>(whole.end)].out = next.start;
                    whole.end = next.end;
                }
                return whole;
            }
            case ast_node::kind::alternation: {
                const int end = add({});
                int start = -1;
                for (std::size_t i = node.children.size(); i-- > 0;) {
                    const fragment branch = build(node.children[i]);
                    nodes[static_cast<std::size_t>(branch.end)].out = end;
                    start = start < 0
                                ? branch.start
                                : add({.type = nfa_node::kind::split, .out = branch.start, .out2 = start});
                }
                return {start, end};
            }
            case ast_node::kind::repeat: {
                const int child = node.children.front();
                const int end = add({});
                int start = end;  // built back to front: the optional tail, then the required copies
                if (node.max == k_unbounded) {
                    const fragment body = build(child);
                    const int loop = add({.type = nfa_node::kind::split, .out = body.start, .out2 = end});
                    nodes[static_cast<std::size_t>(body.end)].out = loop;
                    start = loop;
                } else {
                    for (int i = node.min; i < node.max && !too_large; ++i) {
                        const fragment body = build(child);
                        nodes[static_cast<std::size_t>(body.end)].out = start;
                        start = add({.type = nfa_node::kind::split, .out = body.start, .out2 = end});
                    }
                }
                for (int i = 0; i < node.min && !too_large; ++i) {
                    const fragment body = build(child);
                    nodes[static_cast<std::size_t>(body.end)].out = start;
                    start = body.start;
                }
                return {start, end};
            }
        }
        const int e = add({});
        return {e, e};
    }

  private:
    const std::vector<ast_node>& ast_;
};

// Around a position: before it the start (0), a word byte (1) or another byte (2); after it the
// end (0), a word byte (1) or another byte (2).
bool holds(assertion what, int before, int after) {
    switch (what) {
        case assertion::line_start:
            return before == 0;
        case assertion::line_end:
            return after == 0;
        case assertion::word_boundary:
            return (before == 1) != (after == 1);
        case assertion::not_word_boundary:
            return (before == 1) == (after == 1);
    }
    return false;
}

// The byte-consuming nodes reachable from `core` without consuming, and whether a match is.
bool closure(const std::vector<nfa_node>& nodes, const std::vector<int>& core, int before, int after,
             std::vector<int>& consuming, std::vector<char>& seen) {
    consuming.clear();
    std::fill(seen.begin(), seen.end(), 0);
    std::vector<int> stack(core.begin(), core.end());
    bool matched = false;
    while (!stack.empty()) {
        const int n = stack.back();
        stack.pop_back();
        if (n < 0 || seen[static_cast<std::size_t>(n)]) continue;
        seen[static_cast<std::size_t>(n)] = 1;
        const nfa_node& node = nodes[static_cast<std::size_t>(n)];
        switch (node.type) {
            case nfa_node::kind::match:
                matched = true;
                break;
            case nfa_node::kind::bytes:
                consuming.push_back(n);
                break;
            case nfa_node::kind::epsilon:
                stack.push_back(node.out);
                break;
            case nfa_node::kind::split:
                stack.push_back(node.out2);
                stack.push_back(node.out);
                break;
            case nfa_node::kind::check:
                if (holds(node.what, before, after)) stack.push_back(node.out);
                break;
        }
    }
    return matched;
}

}  // namespace

std::optional<rule_regex> rule_regex::compile(std::string_view pattern, std::string& error) {
    if (pattern.empty() || pattern.size() > k_rule_regex_max_pattern) {
        error = "a pattern of 1 to " + std::to_string(k_rule_regex_max_pattern) + " bytes";
        return std::nullopt;
    }
    std::vector<ast_node> ast;
    ast.reserve(pattern.size() * 2);
    const int root = parser(pattern, ast).parse(error);
    if (root < 0) return std::nullopt;

    nfa_builder builder(ast);
    const auto whole = builder.build(root);
    const int accept = builder.add({.type = nfa_node::kind::match});
    builder.nodes[static_cast<std::size_t>(whole.end)].out = accept;
    if (builder.too_large) {
        error = "a pattern too large once its repeats are expanded (more than " +
                std::to_string(k_max_nfa_nodes) + " steps)";
        return std::nullopt;
    }
    const auto& nodes = builder.nodes;
    const int start = whole.start;

    rule_regex out;
    // Bytes that every set (and the word test) treats alike share a class.
    std::map<std::vector<bool>, std::uint8_t> signatures;
    std::vector<unsigned> representative;
    for (unsigned b = 0; b < 256; ++b) {
        std::vector<bool> signature;
        signature.reserve(builder.sets.size() + 1);
        signature.push_back(is_word_byte(b));
        for (const auto& set : builder.sets) signature.push_back(set[b]);
        const auto [it, added] = signatures.emplace(signature, static_cast<std::uint8_t>(signatures.size()));
        if (added) representative.push_back(b);
        out.byte_class_[b] = it->second;
    }
    out.classes_ = representative.size();

    // The automaton's state: the nodes waiting for a byte, and what kind of byte came before.
    using state_key = std::pair<std::vector<int>, int>;
    std::map<state_key, std::int32_t> ids;
    std::vector<state_key> pending;
    const auto id_of = [&](state_key key) -> std::int32_t {
        std::sort(key.first.begin(), key.first.end());
        key.first.erase(std::unique(key.first.begin(), key.first.end()), key.first.end());
        const auto found = ids.find(key);
        if (found != ids.end()) return found->second;
        const auto id = static_cast<std::int32_t>(pending.size());
        ids.emplace(key, id);
        pending.push_back(std::move(key));
        return id;
    };
    id_of({{start}, 0});
    std::vector<int> consuming;
    std::vector<char> seen(nodes.size(), 0);
    for (std::size_t state = 0; state < pending.size(); ++state) {
        if (pending.size() > k_rule_regex_max_states) {
            error = "a pattern whose automaton has more than " + std::to_string(k_rule_regex_max_states) +
                    " states";
            return std::nullopt;
        }
        const auto core = pending[state].first;
        const int before = pending[state].second;
        out.accept_at_end_.push_back(closure(nodes, core, before, 0, consuming, seen));
        for (std::size_t cls = 0; cls < out.classes_; ++cls) {
            const unsigned byte = representative[cls];
            const int kind = is_word_byte(byte) ? 1 : 2;
            if (closure(nodes, core, before, kind, consuming, seen)) {
                out.next_.push_back(k_matched);
                continue;
            }
            std::vector<int> next{start};  // a match may begin at any position
            for (const int n : consuming) {
                const auto& node = nodes[static_cast<std::size_t>(n)];
                if (builder.sets[static_cast<std::size_t>(node.set)][byte]) next.push_back(node.out);
            }
            const auto id = id_of({std::move(next), kind});
            out.next_.push_back(id);
        }
    }
    return out;
}

bool rule_regex::search(std::string_view text) const {
    std::int32_t state = 0;
    for (const char c : text) {
        state =
            next_[static_cast<std::size_t>(state) * classes_ + byte_class_[static_cast<unsigned char>(c)]];
        if (state == k_matched) return true;
    }
    return accept_at_end_[static_cast<std::size_t>(state)];
}

}  // namespace sluice
