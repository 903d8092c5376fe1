#pragma once
// From a routing plan to what the relay streams, shared by every API:
//
//     auto outcome = app.routing->plan(route_request_for(conversation, preferred, model_type));
//     auto candidates = make_candidates(outcome.plan, app.cfg.server.system_prompt, conversation,
//                                       shape, identity_template);
//     co_await relay_stream(ex, std::move(candidates), options, out, hook, app.routing);
//
// Each candidate gets the conversation trimmed to its own context, so a fallback from a large cloud
// context to a small local one still fits.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chat.h"
#include "core/config.h"
#include "routing/orchestrator.h"
#include "streaming/relay.h"

namespace sluice {

// Tokens a message costs beyond its text (role and chat-template markers), as OpenAI's cookbook
// estimates it; the same for every model, so the trimming stays predictable.
inline constexpr int k_tokens_per_message = 4;

// The context window trimming fits into: n_ctx for a local model, max_tokens_limit (else 128000)
// for a cloud one.
int model_context_tokens(const model_config& model);

// The messages sent to a model: `system_prompt` (when set) and the conversation's system messages
// always stay, and so does the last message (the new user turn); of the earlier turns, the newest
// that fit in `budget` tokens (each costing count_tokens(content) + k_tokens_per_message) stay,
// the oldest leave first. A kept history never starts with an assistant turn or a tool result (a
// result without its call, or an answer without its question, confuses models and APIs refuse it).
std::vector<chat_message> trim_conversation(std::string_view system_prompt,
                                            const std::vector<chat_message>& conversation, int budget,
                                            const std::function<int(const std::string&)>& count_tokens);

// The auto policy's view of a conversation (its last message is the new user turn).
route_request route_request_for(const std::vector<chat_message>& conversation,
                                const std::optional<std::string>& preferred_model,
                                const std::optional<std::string>& model_type);

// Whether a conversation holds what only some models can read.
bool needs_tools(const std::vector<chat_message>& conversation);
bool needs_images(const std::vector<chat_message>& conversation);

// One relay candidate per planned model: `shape` (tools, tool choice, format, sampling; its messages
// are ignored) with the conversation trimmed to budget = context - min(max_tokens, context / 2)
// (max_tokens capped to the model's limit), and an identity naming it. `base` carries the session id; its
// model fields are filled here, the route from the plan.
std::vector<relay_candidate> make_candidates(const route_plan& plan, std::string_view system_prompt,
                                             const std::vector<chat_message>& conversation,
                                             const chat_request& shape, const stream_identity& base);

}  // namespace sluice
