#include "models/hub_files.h"

#include <gtest/gtest.h>

#include "models/progress.h"

using namespace sluice;

namespace {

std::vector<hub_file> files_named(std::initializer_list<const char*> paths) {
    std::vector<hub_file> out;
    for (const char* path : paths) out.push_back(hub_file{.path = path});
    return out;
}

std::string chosen(const std::vector<hub_file>& files, std::string_view quant) {
    const auto* file = choose_file(files, quant);
    return file ? file->path : "<none>";
}

}  // namespace

TEST(hf_ref, parses_repo_and_optional_quant) {
    auto plain = parse_hf_ref("ggml-org/gemma-3-1b-it-GGUF");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->repo, "ggml-org/gemma-3-1b-it-GGUF");
    EXPECT_EQ(plain->quant, "");
    auto quant = parse_hf_ref("hf:unsloth/Qwen3.5-0.8B-GGUF:q8_0");
    ASSERT_TRUE(quant);
    EXPECT_EQ(quant->repo, "unsloth/Qwen3.5-0.8B-GGUF");
    EXPECT_EQ(quant->quant, "q8_0");
    EXPECT_EQ(to_string(*quant), "unsloth/Qwen3.5-0.8B-GGUF:q8_0");
    EXPECT_EQ(to_string(*plain), "ggml-org/gemma-3-1b-it-GGUF");
}

TEST(hf_ref, rejects_what_is_not_org_slash_repo) {
    for (const char* bad : {"", "repo-only", "a/b/c", "/repo", "org/", "../x", "org/..", "org/.hidden",
                            "org/re po", "org/repo:", "org/repo:Q4/K", "org/repo:a:b", "hf:", "org/-x"}) {
        std::string error;
        EXPECT_FALSE(parse_hf_ref(bad, &error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

TEST(tree_listing, keeps_files_with_their_lfs_sha_and_size) {
    const auto listing = parse_tree_listing(R"([
        {"type":"directory","oid":"aa","path":"sub"},
        {"type":"file","oid":"0123456789012345678901234567890123456789","size":3,"path":"README.md"},
        {"type":"file","oid":"x","size":134,"path":"m-Q4_K_M.gguf",
         "lfs":{"oid":"ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789","size":1000,"pointerSize":134}},
        {"type":"file","path":"bad-lfs.gguf","lfs":{"oid":"not-hex","size":5}}
    ])");
    ASSERT_TRUE(listing);
    ASSERT_EQ(listing->size(), 3u);
    EXPECT_EQ((*listing)[0].path, "README.md");
    EXPECT_EQ((*listing)[0].sha256, "");  // a git sha1 is not the content's SHA-256
    EXPECT_EQ((*listing)[1].size, 1000u);
    EXPECT_EQ((*listing)[1].sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    EXPECT_EQ((*listing)[2].sha256, "");
    EXPECT_EQ((*listing)[2].size, 5u);
}

TEST(tree_listing, rejects_what_is_not_an_array) {
    std::string error;
    EXPECT_FALSE(parse_tree_listing(R"({"error":"Repository not found"})", &error));
    EXPECT_FALSE(error.empty());
    EXPECT_FALSE(parse_tree_listing("not json"));
}

TEST(choose_file, default_is_q4_k_m_then_q8_0_then_the_first_model_file) {
    const auto all = files_named({"README.md", "mmproj-model-f16.gguf", "model-Q2_K.gguf", "model-Q8_0.gguf",
                                  "model-q4_k_m.gguf", "model-Q4_K_M-imatrix.gguf"});
    EXPECT_EQ(chosen(all, ""), "model-q4_k_m.gguf");
    EXPECT_EQ(chosen(files_named({"model-Q2_K.gguf", "model-Q8_0.gguf"}), ""), "model-Q8_0.gguf");
    EXPECT_EQ(chosen(files_named({"mmproj-x.gguf", "a-imatrix.gguf", "model-Q2_K.gguf", "b-F16.gguf"}), ""),
              "model-Q2_K.gguf");
    EXPECT_EQ(chosen(files_named({"README.md", "mmproj-Q4_K_M.gguf"}), ""), "<none>");
}

TEST(choose_file, a_quant_matches_case_insensitively_followed_by_dot_or_dash) {
    const auto all =
        files_named({"model-Q4_K_M.gguf", "model-Q4_K_S.gguf", "model-Q4_K.gguf",
                     "Q5_K_M/model-Q5_K_M-00001-of-00002.gguf", "Q5_K_M/model-Q5_K_M-00002-of-00002.gguf"});
    EXPECT_EQ(chosen(all, "q4_k_s"), "model-Q4_K_S.gguf");
    EXPECT_EQ(chosen(all, "Q4_K"), "model-Q4_K.gguf");  // not Q4_K_M: '_' does not end a quant
    EXPECT_EQ(chosen(all, "Q5_K_M"), "Q5_K_M/model-Q5_K_M-00001-of-00002.gguf");
    EXPECT_EQ(chosen(all, "Q3_K_L"), "<none>");  // an explicit quant never falls back
    EXPECT_TRUE(is_split_part("Q5_K_M/model-Q5_K_M-00001-of-00002.gguf"));
    EXPECT_FALSE(is_split_part("model-Q4_K_M.gguf"));
    EXPECT_FALSE(is_split_part("model-00001-of-00001.gguf"));
}

TEST(choose_file, quant_label_is_the_request_or_the_default_tag_matched) {
    EXPECT_EQ(quant_label(hub_file{.path = "m-Q4_K_M.gguf"}, "q4_k_m"), "Q4_K_M");
    EXPECT_EQ(quant_label(hub_file{.path = "m-q8_0.gguf"}, ""), "Q8_0");
    EXPECT_EQ(quant_label(hub_file{.path = "m-F16.gguf"}, ""), "");
}

TEST(paths, only_relative_paths_without_dot_parts_are_safe) {
    EXPECT_TRUE(is_safe_relative_path("model.gguf"));
    EXPECT_TRUE(is_safe_relative_path("Q4_K_M/model.gguf"));
    for (const char* bad : {"", "/etc/passwd", "../x.gguf", "a/../../x", "a//b", "./a", "a\\b", "a/"})
        EXPECT_FALSE(is_safe_relative_path(bad)) << bad;
    EXPECT_EQ(local_model_path("/m", "org/repo", "sub/x.gguf"),
              std::filesystem::path("/m/org/repo/sub/x.gguf"));
    EXPECT_EQ(manifest_path_for("/m/org/repo/x.gguf"),
              std::filesystem::path("/m/org/repo/x.gguf.manifest.json"));
}

TEST(paths, models_dir_is_configured_else_xdg_cache_else_home_cache) {
    EXPECT_EQ(default_models_dir("/srv/models", {{"HOME", "/h"}}), std::filesystem::path("/srv/models"));
    EXPECT_EQ(default_models_dir("", {{"HOME", "/h"}, {"XDG_CACHE_HOME", "/c"}}),
              std::filesystem::path("/c/sluice/models"));
    EXPECT_EQ(default_models_dir("", {{"HOME", "/h"}}), std::filesystem::path("/h/.cache/sluice/models"));
}

TEST(manifest, round_trips_and_rejects_unsafe_files) {
    model_manifest written{.repo = "org/repo",
                           .file = "m-Q4_K_M.gguf",
                           .quant = "Q4_K_M",
                           .sha256 = std::string(64, 'a'),
                           .size = 123456789012ull,
                           .pulled_at = "2026-12-02T13:00:00Z"};
    const auto read = parse_manifest(manifest_json(written));
    ASSERT_TRUE(read);
    EXPECT_EQ(read->repo, written.repo);
    EXPECT_EQ(read->file, written.file);
    EXPECT_EQ(read->quant, written.quant);
    EXPECT_EQ(read->sha256, written.sha256);
    EXPECT_EQ(read->size, written.size);
    EXPECT_EQ(read->pulled_at, written.pulled_at);
    EXPECT_FALSE(parse_manifest(R"({"repo":"org/repo","file":"../../etc/passwd"})"));
    EXPECT_FALSE(parse_manifest(R"({"repo":"not a repo","file":"x.gguf"})"));
    EXPECT_FALSE(parse_manifest("[]"));
}

TEST(manifest, a_reference_picks_its_quant_or_the_default_order) {
    std::vector<model_manifest> pulled{{.repo = "org/repo", .file = "a-Q2_K.gguf", .quant = "Q2_K"},
                                       {.repo = "org/repo", .file = "a-Q8_0.gguf", .quant = "Q8_0"},
                                       {.repo = "other/repo", .file = "b.gguf", .quant = ""}};
    EXPECT_EQ(pick_pulled(pulled, {"ORG/Repo", "q2_k"})->file, "a-Q2_K.gguf");
    EXPECT_EQ(pick_pulled(pulled, {"org/repo", ""})->file, "a-Q8_0.gguf");
    EXPECT_EQ(pick_pulled(pulled, {"other/repo", ""})->file, "b.gguf");
    EXPECT_EQ(pick_pulled(pulled, {"org/repo", "Q4_K_M"}), nullptr);
    EXPECT_EQ(matching_manifests(pulled, {"org/repo", ""}).size(), 2u);
}

TEST(progress, a_bar_with_percent_rate_and_time_left) {
    const std::string line = format_progress(512 * 1024, 1024 * 1024, 128 * 1024, 10);
    EXPECT_EQ(line, "[=====>    ]  50%  512.0 KiB / 1.0 MiB  128.0 KiB/s  0:04 left");
    EXPECT_EQ(format_progress(2048, 0, 1024, 10), "2.0 KiB  1.0 KiB/s");
    EXPECT_EQ(format_progress(10, 10, 0, 4), "[====] 100%  10 B / 10 B  0 B/s  ? left");
    EXPECT_EQ(format_duration(3723), "1:02:03");
    EXPECT_EQ(format_bytes(3.5 * 1024 * 1024 * 1024), "3.5 GiB");
}
