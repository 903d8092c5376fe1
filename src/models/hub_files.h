#pragma once
// The pure half of `sluice models pull`: what a model reference names, which of a Hugging Face
// repository's files it picks, and where the pulled file goes. No I/O here but the hub's JSON text.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// "ORG/REPO" or "ORG/REPO:QUANT", as llama-server's -hf takes it (config: "hf:ORG/REPO:QUANT").
struct hf_ref {
    std::string repo;   // ORG/REPO
    std::string quant;  // as written (matched case-insensitively); empty = the default choice
};

// Accepts ORG/REPO[:QUANT] with an optional "hf:" prefix. ORG and REPO are letters, digits, '-',
// '_' and '.' (not starting with '.' or '-', no ".."); QUANT is letters, digits and '_'. Returns
// nullopt and fills *error otherwise.
std::optional<hf_ref> parse_hf_ref(std::string_view text, std::string* error = nullptr);
std::string to_string(const hf_ref& ref);  // "ORG/REPO" or "ORG/REPO:QUANT"

// One file of the repository listing (`GET /api/models/ORG/REPO/tree/main?recursive=true`).
struct hub_file {
    std::string path;  // inside the repository, '/'-separated
    std::uint64_t size = 0;
    std::string sha256;  // lfs.oid: lower-case hex; empty when the hub publishes none
};

// Parses the tree listing (a JSON array of {type, path, size, lfs: {oid, size}}); keeps files only.
// Returns nullopt and fills *error when the text is not such an array.
std::optional<std::vector<hub_file>> parse_tree_listing(std::string_view json_text,
                                                        std::string* error = nullptr);

// llama.cpp's rule: a model file is a .gguf whose name has none of mmproj, imatrix, mtp-, eagle3-,
// dflash-, dspark-. With a quant, the first model file whose path contains QUANT followed by '.' or
// '-' (case-insensitive); without one, Q4_K_M, else Q8_0, else the first model file. Only the first
// part of a split model (-00001-of-0000N) is a candidate. nullptr when nothing matches.
const hub_file* choose_file(const std::vector<hub_file>& files, std::string_view quant);

// The quant label recorded for a chosen file: the requested one (upper-cased), else the default tag
// the path matched (Q4_K_M or Q8_0), else empty.
std::string quant_label(const hub_file& file, std::string_view requested);

// True when the chosen file is part of a split model with more than one part.
bool is_split_part(std::string_view path);

// A repository path that is safe to put under a folder: relative, no "..", no empty or "." part.
bool is_safe_relative_path(std::string_view path);

// store.models_dir when set, else $XDG_CACHE_HOME/sluice/models, else $HOME/.cache/sluice/models.
std::filesystem::path default_models_dir(const std::string& configured,
                                         const std::map<std::string, std::string>& env);

// What `models list` shows and `hf:` lookups read: written next to the GGUF as FILE.manifest.json.
struct model_manifest {
    std::string repo;
    std::string file;  // the repository path
    std::string quant;
    std::string sha256;
    std::uint64_t size = 0;
    std::string pulled_at;             // UTC, ISO 8601
    std::filesystem::path local_path;  // not stored: where the GGUF lies (set by the reader)
};

std::string manifest_json(const model_manifest& manifest);
std::optional<model_manifest> parse_manifest(std::string_view json_text);

// Where a repository's file goes: models_dir/ORG/REPO/PATH; its manifest: that + ".manifest.json".
std::filesystem::path local_model_path(const std::filesystem::path& models_dir, const std::string& repo,
                                       const std::string& file);
std::filesystem::path manifest_path_for(const std::filesystem::path& model_path);

// Among pulled models, those a reference names: the repo (case-insensitive, as the hub treats it)
// and, when it has one, the quant (case-insensitive). Without a quant, pick_pulled prefers Q4_K_M,
// then Q8_0, then the first, as choose_file does on the hub.
std::vector<const model_manifest*> matching_manifests(const std::vector<model_manifest>& pulled,
                                                      const hf_ref& ref);
const model_manifest* pick_pulled(const std::vector<model_manifest>& pulled, const hf_ref& ref);

}  // namespace sluice
