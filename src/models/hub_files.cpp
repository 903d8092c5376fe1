#include "models/hub_files.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cctype>

namespace sluice {
namespace json = boost::json;

namespace {

std::optional<hf_ref> fail(std::string* error, std::string message) {
    if (error) *error = std::move(message);
    return std::nullopt;
}

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string upper(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool valid_name_part(std::string_view part) {
    if (part.empty() || part.size() > 96 || part.front() == '.' || part.front() == '-') return false;
    if (part.find("..") != std::string_view::npos) return false;
    return std::all_of(part.begin(), part.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

std::string_view file_name(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_model_file(std::string_view path) {
    if (!path.ends_with(".gguf")) return false;
    const std::string_view name = file_name(path);
    constexpr std::array<std::string_view, 6> k_not_models{"mmproj",  "imatrix", "mtp-",
                                                           "eagle3-", "dflash-", "dspark-"};
    return std::none_of(k_not_models.begin(), k_not_models.end(),
                        [&](std::string_view marker) { return name.find(marker) != std::string_view::npos; });
}

// "-00002-of-00003.gguf": the part number and the count; {1, 1} for a file that is not split.
std::pair<int, int> split_info(std::string_view path) {
    const std::string_view name = file_name(path);
    // "-NNNNN-of-NNNNN.gguf" is 20 characters.
    if (name.size() < 20) return {1, 1};
    const std::string_view tail = name.substr(name.size() - 20);
    const auto digits = [](std::string_view text) {
        return std::all_of(text.begin(), text.end(),
                           [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    };
    if (tail[0] != '-' || tail.substr(6, 4) != "-of-" || !digits(tail.substr(1, 5)) ||
        !digits(tail.substr(10, 5)))
        return {1, 1};
    return {std::stoi(std::string(tail.substr(1, 5))), std::stoi(std::string(tail.substr(10, 5)))};
}

// QUANT followed by '.' or '-', case-insensitive: llama.cpp's `QUANT[.-]` pattern.
bool path_has_quant(std::string_view path, std::string_view quant) {
    if (quant.empty() || path.size() <= quant.size()) return false;
    for (std::size_t at = 0; at + quant.size() < path.size(); ++at) {
        const char next = path[at + quant.size()];
        if ((next == '.' || next == '-') && iequal(path.substr(at, quant.size()), quant)) return true;
    }
    return false;
}

const hub_file* first_matching(const std::vector<hub_file>& files, std::string_view quant) {
    for (const auto& file : files) {
        if (!is_model_file(file.path) || split_info(file.path).first != 1) continue;
        if (quant.empty() || path_has_quant(file.path, quant)) return &file;
    }
    return nullptr;
}

constexpr std::array<std::string_view, 2> k_default_quants{"Q4_K_M", "Q8_0"};

bool is_hex_sha256(std::string_view text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return std::isxdigit(static_cast<unsigned char>(c));
           });
}

}  // namespace

std::optional<hf_ref> parse_hf_ref(std::string_view text, std::string* error) {
    if (text.starts_with("hf:")) text.remove_prefix(3);
    hf_ref ref;
    const auto colon = text.find(':');
    std::string_view repo = text.substr(0, colon);
    if (colon != std::string_view::npos) {
        const std::string_view quant = text.substr(colon + 1);
        if (quant.empty() || quant.size() > 32 || !std::all_of(quant.begin(), quant.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
            }))
            return fail(error, "the quantisation after ':' must be letters, digits and '_' (e.g. Q4_K_M)");
        ref.quant = std::string(quant);
    }
    const auto slash = repo.find('/');
    if (slash == std::string_view::npos || repo.find('/', slash + 1) != std::string_view::npos ||
        !valid_name_part(repo.substr(0, slash)) || !valid_name_part(repo.substr(slash + 1)))
        return fail(error,
                    "expected ORG/REPO[:QUANT] (letters, digits, '-', '_', '.'), e.g. "
                    "ggml-org/gemma-3-1b-it-GGUF:Q4_K_M");
    ref.repo = std::string(repo);
    return ref;
}

std::string to_string(const hf_ref& ref) {
    return ref.quant.empty() ? ref.repo : ref.repo + ":" + ref.quant;
}

std::optional<std::vector<hub_file>> parse_tree_listing(std::string_view json_text, std::string* error) {
    boost::system::error_code ec;
    const json::value root = json::parse(json_text, ec);
    if (ec || !root.is_array()) {
        if (error) *error = "the hub's file listing is not a JSON array";
        return std::nullopt;
    }
    std::vector<hub_file> files;
    for (const auto& item : root.as_array()) {
        const auto* entry = item.if_object();
        if (!entry) continue;
        const auto* type = entry->if_contains("type");
        const auto* path = entry->if_contains("path");
        if (!type || !type->is_string() || type->as_string() != "file" || !path || !path->is_string())
            continue;
        hub_file file;
        file.path = std::string(path->as_string());
        if (const auto* size = entry->if_contains("size"); size && size->is_number())
            file.size = size->to_number<std::uint64_t>();
        if (const auto* lfs = entry->if_contains("lfs"); lfs && lfs->is_object()) {
            const auto& lfs_object = lfs->as_object();
            if (const auto* oid = lfs_object.if_contains("oid"); oid && oid->is_string()) {
                std::string sha(oid->as_string());
                for (auto& c : sha) c = lower(c);
                if (is_hex_sha256(sha)) file.sha256 = std::move(sha);
            }
            if (const auto* size = lfs_object.if_contains("size"); size && size->is_number())
                file.size = size->to_number<std::uint64_t>();
        }
        files.push_back(std::move(file));
    }
    return files;
}

const hub_file* choose_file(const std::vector<hub_file>& files, std::string_view quant) {
    if (!quant.empty()) return first_matching(files, quant);
    for (const auto tag : k_default_quants)
        if (const auto* found = first_matching(files, tag)) return found;
    return first_matching(files, "");
}

std::string quant_label(const hub_file& file, std::string_view requested) {
    if (!requested.empty()) return upper(requested);
    for (const auto tag : k_default_quants)
        if (path_has_quant(file.path, tag)) return std::string(tag);
    return "";
}

bool is_split_part(std::string_view path) {
    return split_info(path).second > 1;
}

bool is_safe_relative_path(std::string_view path) {
    if (path.empty() || path.front() == '/' || path.find('\\') != std::string_view::npos ||
        path.find('\0') != std::string_view::npos)
        return false;
    std::size_t start = 0;
    while (start <= path.size()) {
        auto end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        const auto part = path.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") return false;
        start = end + 1;
    }
    return true;
}

std::filesystem::path default_models_dir(const std::string& configured,
                                         const std::map<std::string, std::string>& env) {
    if (!configured.empty()) return configured;
    const auto value = [&](const char* name) {
        auto it = env.find(name);
        return it == env.end() ? std::string() : it->second;
    };
    if (auto cache = value("XDG_CACHE_HOME"); !cache.empty())
        return std::filesystem::path(cache) / "sluice" / "models";
    if (auto home = value("HOME"); !home.empty())
        return std::filesystem::path(home) / ".cache" / "sluice" / "models";
    return std::filesystem::path("sluice-data") / "models";
}

std::string manifest_json(const model_manifest& manifest) {
    json::object out;
    out["repo"] = manifest.repo;
    out["file"] = manifest.file;
    out["quant"] = manifest.quant;
    out["sha256"] = manifest.sha256;
    out["size"] = manifest.size;
    out["pulled_at"] = manifest.pulled_at;
    return json::serialize(out) + "\n";
}

std::optional<model_manifest> parse_manifest(std::string_view json_text) {
    boost::system::error_code ec;
    const json::value root = json::parse(json_text, ec);
    if (ec || !root.is_object()) return std::nullopt;
    const auto& object = root.as_object();
    const auto text = [&](std::string_view key) -> std::optional<std::string> {
        const auto* value = object.if_contains(key);
        if (!value || !value->is_string()) return std::nullopt;
        return std::string(value->as_string());
    };
    model_manifest manifest;
    auto repo = text("repo");
    auto file = text("file");
    if (!repo || !file || !parse_hf_ref(*repo) || !is_safe_relative_path(*file)) return std::nullopt;
    manifest.repo = std::move(*repo);
    manifest.file = std::move(*file);
    manifest.quant = text("quant").value_or("");
    manifest.sha256 = text("sha256").value_or("");
    manifest.pulled_at = text("pulled_at").value_or("");
    if (const auto* size = object.if_contains("size"); size && size->is_number())
        manifest.size = size->to_number<std::uint64_t>();
    return manifest;
}

std::filesystem::path local_model_path(const std::filesystem::path& models_dir, const std::string& repo,
                                       const std::string& file) {
    return models_dir / std::filesystem::path(repo) / std::filesystem::path(file);
}

std::filesystem::path manifest_path_for(const std::filesystem::path& model_path) {
    auto out = model_path;
    out += ".manifest.json";
    return out;
}

std::vector<const model_manifest*> matching_manifests(const std::vector<model_manifest>& pulled,
                                                      const hf_ref& ref) {
    std::vector<const model_manifest*> out;
    for (const auto& manifest : pulled) {
        if (!iequal(manifest.repo, ref.repo)) continue;
        if (!ref.quant.empty() && !iequal(manifest.quant, ref.quant)) continue;
        out.push_back(&manifest);
    }
    return out;
}

const model_manifest* pick_pulled(const std::vector<model_manifest>& pulled, const hf_ref& ref) {
    const auto found = matching_manifests(pulled, ref);
    if (found.empty()) return nullptr;
    if (!ref.quant.empty()) return found.front();
    for (const auto tag : k_default_quants)
        for (const auto* manifest : found)
            if (iequal(manifest->quant, tag)) return manifest;
    return found.front();
}

}  // namespace sluice
