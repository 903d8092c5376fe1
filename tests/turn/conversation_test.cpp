// Session history trimming (budget = context - max_tokens; the oldest turns leave first; system
// messages always stay) and the route request / candidates built from a conversation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "turn/conversation.h"

namespace sluice {
namespace {

// One token per character keeps the budget arithmetic readable.
int chars(const std::string& text) {
    return static_cast<int>(text.size());
}

// Cost of a message in these tests: its length + the per-message overhead.
int cost(const std::string& text) {
    return chars(text) + k_tokens_per_message;
}

std::vector<chat_message> conversation() {
    return {{"user", "u1-aaaa"}, {"assistant", "a1-bbbb"}, {"user", "u2-cccc"},     {"assistant", "a2-dddd"},
            {"user", "u3-eeee"}, {"assistant", "a3-ffff"}, {"user", "new question"}};
}

std::vector<std::string> contents(const std::vector<chat_message>& messages) {
    std::vector<std::string> out;
    for (const auto& m : messages) out.push_back(m.content);
    return out;
}

TEST(trim_conversation, everything_fits_in_a_large_budget) {
    auto out = trim_conversation("", conversation(), 100000, chars);
    EXPECT_EQ(contents(out), contents(conversation()));
}

TEST(trim_conversation, keeps_the_newest_turns_and_drops_the_oldest) {
    // Room for the new question and exactly the last two earlier messages (u3, a3).
    const int budget = cost("new question") + cost("u3-eeee") + cost("a3-ffff");
    auto out = trim_conversation("", conversation(), budget, chars);
    EXPECT_EQ(contents(out), (std::vector<std::string>{"u3-eeee", "a3-ffff", "new question"}));
    // One token less and a3 alone would fit: an answer without its question is dropped too.
    out = trim_conversation("", conversation(), budget - 1, chars);
    EXPECT_EQ(contents(out), (std::vector<std::string>{"new question"}));
}

TEST(trim_conversation, the_system_prompt_always_stays_and_counts_against_the_budget) {
    const std::string system = "be brief";
    const int budget = cost(system) + cost("new question") + cost("u3-eeee") + cost("a3-ffff");
    auto out = trim_conversation(system, conversation(), budget, chars);
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out[0].role, "system");
    EXPECT_EQ(out[0].content, system);
    EXPECT_EQ(contents(out), (std::vector<std::string>{system, "u3-eeee", "a3-ffff", "new question"}));
}

TEST(trim_conversation, system_prompt_and_new_turn_stay_even_over_budget) {
    auto out = trim_conversation("be brief", conversation(), 0, chars);
    EXPECT_EQ(contents(out), (std::vector<std::string>{"be brief", "new question"}));
    EXPECT_EQ(out.front().role, "system");
    EXPECT_EQ(out.back().role, "user");
}

TEST(trim_conversation, client_system_messages_are_kept_first) {
    std::vector<chat_message> messages{
        {"system", "rules"}, {"user", "old"}, {"assistant", "older answer"}, {"user", "now"}};
    auto out = trim_conversation("prompt", messages, cost("prompt") + cost("rules") + cost("now"), chars);
    EXPECT_EQ(contents(out), (std::vector<std::string>{"prompt", "rules", "now"}));
}

TEST(trim_conversation, kept_history_starts_with_a_user_turn) {
    for (int budget = 0; budget < 200; ++budget) {
        auto out = trim_conversation("", conversation(), budget, chars);
        ASSERT_FALSE(out.empty());
        EXPECT_EQ(out.front().role, "user") << budget;
        EXPECT_EQ(out.back().content, "new question");
    }
}

TEST(model_context_tokens, local_uses_n_ctx_and_cloud_its_limit) {
    model_config local{.name = "local", .role = model_role::local_small, .provider = "llama"};
    local.n_ctx = 2048;
    EXPECT_EQ(model_context_tokens(local), 2048);
    model_config cloud{.name = "cloud", .role = model_role::cloud_large, .provider = "openai"};
    EXPECT_EQ(model_context_tokens(cloud), 128000);
    cloud.max_tokens_limit = 300;
    EXPECT_EQ(model_context_tokens(cloud), 300);
}

TEST(route_request_for, counts_earlier_user_turns_and_their_size) {
    auto messages = conversation();
    auto request = route_request_for(messages, std::nullopt, std::string("auto"));
    EXPECT_EQ(request.message, "new question");
    EXPECT_EQ(request.turns_so_far, 3);
    EXPECT_EQ(request.conversation_chars, 6u * 7u);
    EXPECT_EQ(request.model_type, "auto");
    EXPECT_FALSE(request.preferred_model);
}

}  // namespace
}  // namespace sluice
