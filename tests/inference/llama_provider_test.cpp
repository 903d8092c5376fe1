#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <fstream>

#include "core/api_error.h"
#include "inference/llama_provider.h"
#include "inference/local_provider.h"
#include "inference/text_assembler.h"
#include "inference_fixture.h"

namespace sluice {
namespace {

using kind = stream_chunk::kind;

// The contract of provider.h: delta* usage? (finish | error), nothing after the last one.
void expect_well_formed(const collected& out) {
    ASSERT_FALSE(out.chunks.empty());
    const auto last = out.chunks.back().type;
    EXPECT_TRUE(last == kind::finish || last == kind::error);
    for (std::size_t i = 0; i + 1 < out.chunks.size(); ++i) {
        const auto type = out.chunks[i].type;
        EXPECT_TRUE(type == kind::delta || (type == kind::usage && i + 2 == out.chunks.size()))
            << "chunk " << i;
    }
}

TEST(llama_provider, greedy_output_is_the_same_on_every_run_and_max_tokens_gives_length) {
    auto provider = make_llama_local_provider(tiny_model_config(), {.ignore_eos = true});
    const auto first = run_stream(*provider, user_request("Tell me a story about rivers.", 12));
    const auto second = run_stream(*provider, user_request("Tell me a story about rivers.", 12));
    expect_well_formed(first);
    ASSERT_NE(first.find(kind::finish), nullptr);
    EXPECT_EQ(first.find(kind::finish)->finish_reason, "length");
    ASSERT_NE(first.find(kind::usage), nullptr);
    EXPECT_EQ(first.find(kind::usage)->completion_tokens, 12);
    EXPECT_EQ(first.find(kind::usage)->prompt_tokens,
              provider->count_tokens(
                  "<|im_start|>user\nTell me a story about rivers.<|im_end|>\n<|im_start|>assistant\n"));
    EXPECT_FALSE(first.text().empty());
    EXPECT_EQ(first.text(), second.text());

    // A fresh engine on the same file, and a seeded sampler, are just as repeatable.
    auto other = make_llama_local_provider(tiny_model_config(), {.ignore_eos = true});
    EXPECT_EQ(run_stream(*other, user_request("Tell me a story about rivers.", 12)).text(), first.text());
    const auto sampled = run_stream(*provider, user_request("Tell me a story.", 20, 0.9, 1234));
    EXPECT_EQ(run_stream(*other, user_request("Tell me a story.", 20, 0.9, 1234)).text(), sampled.text());
}

TEST(llama_provider, stops_at_end_of_generation_without_ignore_eos) {
    auto provider = make_llama_provider(tiny_model_config());
    const auto out = run_stream(*provider, user_request("Hello", 6));
    expect_well_formed(out);
    ASSERT_NE(out.find(kind::finish), nullptr);
    const auto* usage = out.find(kind::usage);
    ASSERT_NE(usage, nullptr);
    EXPECT_LE(usage->completion_tokens, 6);
    if (out.find(kind::finish)->finish_reason == "length") {
        EXPECT_EQ(usage->completion_tokens, 6);
    }
}

TEST(llama_provider, stop_string_ends_the_answer_before_it) {
    auto provider = make_llama_local_provider(tiny_model_config(), {.ignore_eos = true});
    const auto full = run_stream(*provider, user_request("Count to ten.", 40)).text();
    // An ASCII character from the second half of the answer as the stop string.
    std::string stop;
    for (std::size_t i = full.size() / 2; i < full.size() && stop.empty(); ++i) {
        if (std::isalpha(static_cast<unsigned char>(full[i]))) stop = full.substr(i, 1);
    }
    if (stop.empty()) GTEST_SKIP() << "the random model wrote no ASCII letter in the second half";
    auto request = user_request("Count to ten.", 40);
    request.params.stop = {stop};
    const auto out = run_stream(*provider, request);
    expect_well_formed(out);
    EXPECT_EQ(out.text(), full.substr(0, full.find(stop)));
    ASSERT_NE(out.find(kind::finish), nullptr);
    EXPECT_EQ(out.find(kind::finish)->finish_reason, "stop");
}

TEST(llama_provider, concurrent_requests_share_decode_steps) {
    auto provider =
        make_llama_local_provider(tiny_model_config(4), {.ignore_eos = true, .channel_capacity = 2});
    boost::asio::io_context io;
    std::vector<collected> outs(4);
    for (std::size_t i = 0; i < outs.size(); ++i) {
        spawn_stream(io, *provider, user_request("Request number " + std::to_string(i), 24), outs[i]);
    }
    run_all(io);
    for (const auto& out : outs) {
        EXPECT_TRUE(out.done);
        EXPECT_FALSE(out.error);
        expect_well_formed(out);
        ASSERT_NE(out.find(kind::usage), nullptr);
        EXPECT_EQ(out.find(kind::usage)->completion_tokens, 24);
    }
    const auto stats = provider->engine().stats();
    EXPECT_GT(stats.max_sequences_per_step, 1);
    EXPECT_EQ(stats.requests_admitted, 4u);
    EXPECT_EQ(provider->status().active, 0);
}

TEST(llama_provider, cancelling_a_stream_gives_its_slot_to_the_queued_request) {
    // One slot, tiny channels: an abandoned stream would keep its slot forever (paused on a full
    // channel), so the queued request can only finish if cancellation really frees the slot.
    auto provider =
        make_llama_local_provider(tiny_model_config(1), {.ignore_eos = true, .channel_capacity = 2});
    boost::asio::io_context io;
    boost::asio::cancellation_signal cancel_first;
    collected first;
    collected second;
    int queued_at_cancel = -1;
    int deltas_seen = 0;

    chunk_sink first_sink = [&](chunk_batch& batch) -> boost::asio::awaitable<void> {
        for (const auto& chunk : batch) {
            first.chunks.push_back(chunk);
            if (chunk.type == kind::delta && ++deltas_seen == 3) {
                spawn_stream(io, *provider, user_request("second", 5), second);
                // Runs after the second stream has queued its request (handlers run in order).
                boost::asio::post(io, [&] {
                    queued_at_cancel = provider->status().queue_depth;
                    cancel_first.emit(boost::asio::cancellation_type::terminal);
                });
            }
        }
        co_return;
    };
    boost::asio::co_spawn(io, stream_owned(*provider, user_request("first", 400), first_sink),
                          boost::asio::bind_cancellation_slot(cancel_first.slot(), [&](std::exception_ptr e) {
                              first.error = e;
                              first.done = true;
                          }));
    run_all(io);

    EXPECT_EQ(queued_at_cancel, 1);
    ASSERT_TRUE(first.done);
    ASSERT_TRUE(first.error);
    try {
        std::rethrow_exception(first.error);
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), boost::asio::error::operation_aborted);
    }
    EXPECT_EQ(first.find(kind::finish), nullptr);  // nothing after the cancel
    ASSERT_TRUE(second.done);
    expect_well_formed(second);
    ASSERT_NE(second.find(kind::usage), nullptr);
    EXPECT_EQ(second.find(kind::usage)->completion_tokens, 5);
    const auto stats = provider->engine().stats();
    EXPECT_LE(stats.max_steps_after_cancel, 1);
    EXPECT_EQ(stats.requests_admitted, 2u);
}

TEST(llama_provider, a_stalled_client_pauses_only_its_own_sequence) {
    // The slow client stops reading after its first chunk until the fast one is done: its sequence
    // must pause on its full chunk queue while the other keeps decoding.
    auto provider =
        make_llama_local_provider(tiny_model_config(2), {.ignore_eos = true, .channel_capacity = 2});
    boost::asio::io_context io;
    boost::asio::steady_timer release(io, boost::asio::steady_timer::time_point::max());
    collected slow;
    collected fast;
    bool fast_done_before_slow_resumed = false;
    chunk_sink slow_sink = [&](chunk_batch& batch) -> boost::asio::awaitable<void> {
        const bool first_call = slow.chunks.empty();
        for (const auto& chunk : batch) slow.chunks.push_back(chunk);
        if (first_call) {
            co_await release.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            fast_done_before_slow_resumed = fast.done;
        }
    };
    boost::asio::co_spawn(io, stream_owned(*provider, user_request("slow", 40), slow_sink),
                          [&](std::exception_ptr e) {
                              slow.error = e;
                              slow.done = true;
                          });
    boost::asio::co_spawn(io, stream_owned(*provider, user_request("fast", 40), collect_into(fast)),
                          [&](std::exception_ptr e) {
                              fast.error = e;
                              fast.done = true;
                              release.cancel();
                          });
    run_all(io);
    EXPECT_TRUE(fast_done_before_slow_resumed);
    ASSERT_NE(fast.find(kind::usage), nullptr);
    EXPECT_EQ(fast.find(kind::usage)->completion_tokens, 40);
    ASSERT_NE(slow.find(kind::usage), nullptr);
    EXPECT_EQ(slow.find(kind::usage)->completion_tokens, 40);
    expect_well_formed(slow);
}

TEST(llama_provider, every_delta_is_valid_utf8) {
    auto provider = make_llama_local_provider(tiny_model_config(), {.ignore_eos = true});
    bool saw_multibyte = false;
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        const auto out = run_stream(*provider, user_request("你好，请写一首诗。", 120, 1.5, seed));
        expect_well_formed(out);
        for (const auto& delta : out.deltas()) {
            EXPECT_FALSE(delta.empty());
            EXPECT_TRUE(is_valid_utf8(delta)) << "invalid delta of " << delta.size() << " bytes";
            for (unsigned char c : delta) saw_multibyte = saw_multibyte || c >= 0x80;
        }
    }
    EXPECT_TRUE(saw_multibyte) << "the model never produced a multi-byte character; the test proves nothing";
}

TEST(llama_provider, full_queue_answers_503) {
    auto provider =
        make_llama_local_provider(tiny_model_config(1, 512, 1), {.ignore_eos = true, .channel_capacity = 2});
    boost::asio::io_context io;
    std::vector<collected> outs(3);
    for (auto& out : outs) spawn_stream(io, *provider, user_request("busy", 8), out);
    run_all(io);
    EXPECT_EQ(outs[0].find(kind::finish)->finish_reason, "length");
    EXPECT_EQ(outs[1].find(kind::finish)->finish_reason, "length");
    ASSERT_EQ(outs[2].chunks.size(), 1u);
    EXPECT_EQ(outs[2].chunks[0].type, kind::error);
    EXPECT_EQ(outs[2].chunks[0].code, 503);
    EXPECT_GT(outs[2].chunks[0].retry_after_s, 0);
}

TEST(llama_provider, prompt_longer_than_the_context_answers_400_with_the_excess) {
    auto provider = make_llama_provider(tiny_model_config(1, 256));
    std::string long_text;
    for (int i = 0; i < 200; ++i) long_text += "word" + std::to_string(i) + " ";
    const auto out = run_stream(*provider, user_request(long_text, 8));
    ASSERT_EQ(out.chunks.size(), 1u);
    EXPECT_EQ(out.chunks[0].type, kind::error);
    EXPECT_EQ(out.chunks[0].code, 400);
    const int prompt_tokens =
        provider->count_tokens("<|im_start|>user\n" + long_text + "<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_NE(out.chunks[0].message.find("prompt is " + std::to_string(prompt_tokens) + " tokens, " +
                                         std::to_string(prompt_tokens - 255) + " over the context of 256"),
              std::string::npos)
        << out.chunks[0].message;
    // The engine is still healthy afterwards.
    EXPECT_EQ(run_stream(*provider, user_request("short", 3)).chunks.back().type, kind::finish);
}

TEST(llama_provider, bad_model_path_is_a_config_error_naming_it) {
    temp_dir dir;
    auto cfg = tiny_model_config();
    cfg.path = (dir.path() / "missing.gguf").string();
    try {
        make_llama_provider(cfg);
        FAIL() << "expected config_error";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find(cfg.path), std::string::npos) << e.what();
    }
    cfg.path = (dir.path() / "not-a-model.gguf").string();
    std::ofstream(cfg.path) << "this is not a model";
    try {
        make_llama_provider(cfg);
        FAIL() << "expected config_error";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find(cfg.path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("not a GGUF"), std::string::npos) << e.what();
    }
}

TEST(llama_provider, counts_tokens_with_the_model_tokenizer) {
    auto provider = make_llama_provider(tiny_model_config());
    EXPECT_EQ(provider->count_tokens(""), 0);
    const int short_count = provider->count_tokens("hello world");
    EXPECT_GT(short_count, 0);
    EXPECT_GT(provider->count_tokens("hello world, and a much longer sentence after it"), short_count);
}

}  // namespace
}  // namespace sluice
