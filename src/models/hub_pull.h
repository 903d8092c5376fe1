#pragma once
// `sluice models pull`: downloads a GGUF from a Hugging Face hub (or a mirror) the way llama-server's
// -hf does. Lists the repository (GET /api/models/ORG/REPO/tree/main?recursive=true), picks the file
// for the quant (hub_files.h), downloads GET /ORG/REPO/resolve/main/FILE following redirects (the
// CDN is another host), into FILE.part, resuming it with Range after an interruption, checks the
// SHA-256 the hub publishes (lfs.oid, else X-Linked-Etag), then renames it and writes its manifest.
//
// HF_TOKEN goes as `Authorization: Bearer` to the hub's own origin only, never to a redirect target
// on another host, and never into a log line, an error or a file.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/hub_files.h"
#include "models/progress.h"

namespace sluice {

struct pull_options {
    std::filesystem::path models_dir;
    std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
    std::string token;                                // HF_TOKEN; empty = anonymous
    progress_printer* progress = nullptr;             // null: silent
    int attempts = 3;  // tries per download; each retry resumes the .part with Range
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds idle_timeout{60000};  // no byte for this long: the try fails
};

// models_dir as given; endpoint from HF_ENDPOINT, token from HF_TOKEN when set.
pull_options pull_options_from_env(std::filesystem::path models_dir,
                                   const std::map<std::string, std::string>& env);

struct pull_outcome {
    std::optional<model_manifest> manifest;  // set on success
    bool already_present = false;            // nothing was downloaded
    std::string error;                       // why it failed, for the user; never holds the token
};

// Blocking: runs its own io_context until the pull ends.
pull_outcome pull_model(const hf_ref& ref, const pull_options& options);

// The pulled model a reference names (pick_pulled), else pulls it. For `path = "hf:..."` at start-up.
pull_outcome ensure_model(const hf_ref& ref, const pull_options& options);

// Every manifest under models_dir whose GGUF is there, sorted by repo then file.
std::vector<model_manifest> list_pulled(const std::filesystem::path& models_dir);

// Deletes the pulled files a reference names (all of the repo's without a quant), with their
// manifests and any .part; returns what was removed.
std::vector<model_manifest> remove_pulled(const std::filesystem::path& models_dir, const hf_ref& ref);

}  // namespace sluice
