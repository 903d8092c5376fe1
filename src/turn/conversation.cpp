#include "turn/conversation.h"

#include <algorithm>

namespace sluice {

namespace {

constexpr int k_default_cloud_context = 128000;

}  // namespace

int model_context_tokens(const model_config& model) {
    if (model.provider == "llama") return model.n_ctx;
    return model.max_tokens_limit > 0 ? model.max_tokens_limit : k_default_cloud_context;
}

std::vector<chat_message> trim_conversation(std::string_view system_prompt,
                                            const std::vector<chat_message>& conversation, int budget,
                                            const std::function<int(const std::string&)>& count_tokens) {
    auto cost = [&count_tokens](const chat_message& message) {
        return count_tokens(message.content) + k_tokens_per_message;
    };
    std::vector<chat_message> fixed;  // system messages: never trimmed
    if (!system_prompt.empty()) fixed.push_back({"system", std::string(system_prompt)});
    std::vector<const chat_message*> turns;
    for (const auto& message : conversation) {
        if (message.role == "system") {
            fixed.push_back(message);
        } else {
            turns.push_back(&message);
        }
    }
    int left = budget;
    for (const auto& message : fixed) left -= cost(message);
    std::vector<chat_message> out = std::move(fixed);
    if (turns.empty()) return out;
    left -= cost(*turns.back());  // the new turn always goes

    // Walk back from the newest earlier turn while whole messages fit.
    std::size_t first_kept = turns.size() - 1;
    while (first_kept > 0) {
        const int c = cost(*turns[first_kept - 1]);
        if (c > left) break;
        left -= c;
        --first_kept;
    }
    // An answer without its question confuses models (and some APIs refuse it).
    while (first_kept < turns.size() - 1 &&
           (turns[first_kept]->role == "assistant" || turns[first_kept]->role == "tool"))
        ++first_kept;
    for (std::size_t i = first_kept; i < turns.size(); ++i) out.push_back(*turns[i]);
    return out;
}

route_request route_request_for(const std::vector<chat_message>& conversation,
                                const std::optional<std::string>& preferred_model,
                                const std::optional<std::string>& model_type) {
    route_request request;
    if (!conversation.empty()) request.message = conversation.back().content;
    for (std::size_t i = 0; i + 1 < conversation.size(); ++i) {
        if (conversation[i].role == "user") ++request.turns_so_far;
        if (conversation[i].role != "system") request.conversation_chars += conversation[i].content.size();
    }
    request.preferred_model = preferred_model;
    request.model_type = model_type;
    return request;
}

bool needs_tools(const std::vector<chat_message>& conversation) {
    for (const auto& message : conversation)
        if (message.has(content_part::kind::tool_call) || message.has(content_part::kind::tool_result))
            return true;
    return false;
}

bool needs_images(const std::vector<chat_message>& conversation) {
    for (const auto& message : conversation)
        if (message.has(content_part::kind::image)) return true;
    return false;
}

std::vector<relay_candidate> make_candidates(const route_plan& plan, std::string_view system_prompt,
                                             const std::vector<chat_message>& conversation,
                                             const chat_request& shape, const stream_identity& base) {
    const generation_params& params = shape.params;
    std::vector<relay_candidate> candidates;
    candidates.reserve(plan.candidates.size());
    for (const auto& model : plan.candidates) {
        const auto& cfg = model->config();
        relay_candidate candidate{.model = model, .request = {}, .identity = base};
        candidate.request.params = params;
        candidate.request.tools = shape.tools;
        candidate.request.tools_choice = shape.tools_choice;
        candidate.request.parallel_tool_calls = shape.parallel_tool_calls;
        candidate.request.format = shape.format;
        candidate.request.openai_extra = shape.openai_extra;
        if (cfg.provider == "anthropic") {
            candidate.request.anthropic_body = shape.anthropic_body;
            candidate.request.anthropic_message_count = shape.anthropic_message_count;
            candidate.request.anthropic_system_count = shape.anthropic_system_count;
            candidate.request.anthropic_beta = shape.anthropic_beta;
        }
        candidate.request.params.max_tokens = std::min(params.max_tokens, model_token_limit(cfg));
        // The answer's room is at most half the context: clients that ask for a model's whole output
        // limit (Claude Code sends max_tokens 32000..128000) would otherwise leave none for the
        // conversation they sent. An upstream refuses what truly does not fit.
        const int context = model_context_tokens(cfg);
        const int budget = context - std::min(candidate.request.params.max_tokens, context / 2);
        candidate.request.messages =
            trim_conversation(system_prompt, conversation, budget,
                              [&model](const std::string& text) { return model->count_tokens(text); });
        candidate.identity.model_used = std::string(to_string(cfg.role));
        candidate.identity.model = cfg.name;
        candidate.identity.route_reason = plan.reason;
        candidate.identity.route_score = plan.score;
        candidates.push_back(std::move(candidate));
    }
    return candidates;
}

}  // namespace sluice
