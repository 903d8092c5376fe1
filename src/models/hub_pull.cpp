#include "models/hub_pull.h"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <charconv>
#include <ctime>
#include <fstream>
#include <memory>
#include <system_error>
#include <tuple>

#include "upstream/http_client.h"

namespace sluice {
namespace net = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

namespace {

constexpr int k_max_redirects = 5;
constexpr std::size_t k_error_body_limit = 2048;
constexpr auto k_drain_within = std::chrono::milliseconds(2000);

struct failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An absolute redirect target split into the origin the client pools by and the request target
// (path and query: a CDN's signed URL has one, which parse_url does not take).
struct location {
    url origin;
    std::string target;
};

std::optional<location> parse_location(std::string_view text, const url& current) {
    if (text.starts_with("/")) return location{current, std::string(text)};
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) return std::nullopt;
    const auto path_start = text.find_first_of("/?", scheme_end + 3);
    const std::string_view authority = text.substr(0, path_start);
    auto origin = parse_url(authority);
    if (!origin) return std::nullopt;
    std::string target = path_start == std::string_view::npos ? "/" : std::string(text.substr(path_start));
    if (target.starts_with("?")) target.insert(0, "/");
    return location{std::move(*origin), std::move(target)};
}

std::string header(const upstream_response& response, std::string_view name) {
    const auto it = response.headers().find(name);
    return it == response.headers().end() ? std::string() : std::string(it->value());
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// "bytes START-END/TOTAL": START.
std::optional<std::uint64_t> content_range_start(std::string_view value) {
    if (!value.starts_with("bytes ")) return std::nullopt;
    value.remove_prefix(6);
    return parse_u64(value.substr(0, value.find('-')));
}

// X-Linked-Etag is the LFS object's SHA-256 in quotes (a weak W/ prefix is allowed).
std::string sha_from_etag(std::string value) {
    if (value.starts_with("W/")) value.erase(0, 2);
    value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
    for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool hex = value.size() == 64 && std::all_of(value.begin(), value.end(), [](char c) {
                         return std::isxdigit(static_cast<unsigned char>(c));
                     });
    return hex ? value : std::string();
}

std::string file_sha256(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw failure("cannot read " + path.string());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
        throw failure("SHA-256 is not available");
    std::vector<char> buffer(1 << 20);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        const auto got = in.gcount();
        if (got > 0) EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(got));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context.get(), digest, &length);
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(k_hex[digest[i] >> 4]);
        out.push_back(k_hex[digest[i] & 15]);
    }
    return out;
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

void write_atomically(const fs::path& path, const std::string& text) {
    auto temporary = path;
    temporary += ".tmp";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) throw failure("cannot write " + temporary.string());
    }
    fs::rename(temporary, path);
}

std::uint64_t size_or_zero(const fs::path& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    return ec ? 0 : size;
}

// One pull: the hub's client, and one client per redirect origin (the CDN).
class hub_session {
  public:
    hub_session(const hf_ref& ref, const pull_options& options) : ref_(ref), options_(options) {
        std::string error;
        auto endpoint = parse_url(options.endpoint, &error);
        if (!endpoint) throw failure("HF_ENDPOINT " + options.endpoint + " is not a URL: " + error);
        hub_ = std::move(*endpoint);
    }

    net::awaitable<pull_outcome> run() {
        const std::string listing_target =
            hub_.join("/api/models/" + ref_.repo + "/tree/main") + "?recursive=true";
        // g++ 12 destroys a temporary argument of a coroutine call twice: every argument is named.
        const location listing_where{hub_, listing_target};
        auto listing = co_await get(listing_where, 0, "application/json");
        const unsigned listing_status = listing.response->status();
        if (listing_status != 200) {
            auto [body, ignored] = co_await listing.response->read_all(k_error_body_limit);
            throw failure(status_message(listing_status, body, "listing the files of " + ref_.repo));
        }
        auto [listing_text, read_error] = co_await listing.response->read_all(64 * 1024 * 1024);
        if (read_error) throw failure("reading the file listing of " + ref_.repo + ": " + read_error.detail);
        std::string parse_error;
        auto files = parse_tree_listing(listing_text, &parse_error);
        if (!files) throw failure(ref_.repo + ": " + parse_error);
        const hub_file* chosen = choose_file(*files, ref_.quant);
        if (!chosen) throw failure(no_match_message(*files));
        if (is_split_part(chosen->path))
            throw failure(chosen->path +
                          " is the first part of a split model; split models are not supported yet");
        if (!is_safe_relative_path(chosen->path))
            throw failure("the hub named an unsafe path: " + chosen->path);

        model_manifest manifest{.repo = ref_.repo,
                                .file = chosen->path,
                                .quant = quant_label(*chosen, ref_.quant),
                                .sha256 = chosen->sha256,
                                .size = chosen->size};
        manifest.local_path = local_model_path(options_.models_dir, ref_.repo, chosen->path);
        if (fs::exists(manifest.local_path) && fs::exists(manifest_path_for(manifest.local_path)) &&
            (manifest.size == 0 || size_or_zero(manifest.local_path) == manifest.size)) {
            co_return pull_outcome{.manifest = std::move(manifest), .already_present = true};
        }
        co_await download(manifest);
        co_return pull_outcome{.manifest = std::move(manifest)};
    }

  private:
    struct opened {
        std::unique_ptr<upstream_response> response;
        std::string linked_sha;  // X-Linked-Etag seen on the way (the hub's 302 carries it)
        std::uint64_t linked_size = 0;
    };

    http_client& client_for(const url& origin) {
        const std::string key = origin.origin();
        auto it = clients_.find(key);
        if (it == clients_.end()) {
            http_client_options client_options;
            client_options.connect_timeout = options_.connect_timeout;
            client_options.first_byte_timeout = options_.idle_timeout;
            client_options.idle_timeout = options_.idle_timeout;
            client_options.request_timeout = std::chrono::hours(24);  // a big file on a slow line
            client_options.max_connections = 4;
            it = clients_.emplace(key, std::make_unique<http_client>(origin, client_options)).first;
        }
        return *it->second;
    }

    // GET, following redirects; the token only to the hub's own origin.
    net::awaitable<opened> get(const location& start, std::uint64_t range_start, std::string_view accept) {
        opened result;
        location where = start;
        for (int hop = 0;; ++hop) {
            upstream_request request{.method = http::verb::get, .target = where.target};
            request.headers.set(http::field::user_agent, "sluice");
            if (!accept.empty()) request.headers.set(http::field::accept, std::string(accept));
            if (range_start > 0)
                request.headers.set(http::field::range, "bytes=" + std::to_string(range_start) + "-");
            const bool to_hub = where.origin.origin() == hub_.origin();
            if (to_hub && !options_.token.empty())
                request.headers.set(http::field::authorization, "Bearer " + options_.token);
            auto& client = client_for(where.origin);
            auto [response, error] = co_await client.open(std::move(request));
            if (error) throw failure(reach_message(where.origin, error));
            const unsigned status = response->status();
            if (auto sha = sha_from_etag(header(*response, "X-Linked-Etag")); !sha.empty())
                result.linked_sha = sha;
            if (auto size = parse_u64(header(*response, "X-Linked-Size"))) result.linked_size = *size;
            const bool redirect =
                status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
            if (!redirect) {
                result.response = std::move(response);
                co_return result;
            }
            const std::string target = header(*response, "Location");
            co_await response->finish_body(k_drain_within);
            if (hop >= k_max_redirects) throw failure("more than 5 redirects from " + hub_.origin());
            auto next = parse_location(target, where.origin);
            if (!next) throw failure("the hub redirected to an unusable location");
            where = std::move(*next);
        }
    }

    net::awaitable<void> download(model_manifest& manifest) {
        const fs::path final_path = manifest.local_path;
        auto part_path = final_path;
        part_path += ".part";
        fs::create_directories(final_path.parent_path());
        const std::string resolve_target = hub_.join("/" + ref_.repo + "/resolve/main/" + manifest.file);
        std::string linked_sha;
        std::string last_error;
        bool complete = false;
        for (int attempt = 1; attempt <= std::max(1, options_.attempts) && !complete; ++attempt) {
            std::uint64_t offset = size_or_zero(part_path);
            if (manifest.size > 0 && offset >= manifest.size) {
                complete = true;  // a previous run got every byte, then stopped before the check
                break;
            }
            const location resolve_where{hub_, resolve_target};
            auto got = co_await get(resolve_where, offset, "");
            if (!got.linked_sha.empty()) linked_sha = got.linked_sha;
            if (manifest.size == 0) manifest.size = got.linked_size;
            auto& response = *got.response;
            const unsigned status = response.status();
            if (status == 416 && offset > 0) {  // the .part is not a prefix of this file: start again
                co_await response.finish_body(k_drain_within);
                fs::remove(part_path);
                --attempt;
                continue;
            }
            if (status != 200 && status != 206) {
                auto [body, ignored] = co_await response.read_all(k_error_body_limit);
                throw failure(status_message(status, body, "downloading " + manifest.file));
            }
            std::ios::openmode mode = std::ios::binary | std::ios::app;
            if (status == 200 || content_range_start(header(response, "Content-Range")) != offset) {
                mode = std::ios::binary | std::ios::trunc;  // the server sent the whole file
                offset = 0;
            }
            if (manifest.size == 0) {
                if (auto length = parse_u64(header(response, "Content-Length")))
                    manifest.size = offset + *length;
            }
            std::ofstream out(part_path, mode);
            if (!out) throw failure("cannot write " + part_path.string());
            if (options_.progress)
                options_.progress->start(ref_.repo + "/" + manifest.file, manifest.size, offset);
            std::uint64_t done = offset;
            std::string piece;
            upstream_error read_error;
            while (!response.done()) {
                read_error = co_await response.read_some(piece);
                if (read_error) break;
                out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                if (!out) throw failure("writing " + part_path.string() + " failed (disk full?)");
                done += piece.size();
                if (options_.progress) options_.progress->update(done);
            }
            out.close();
            if (options_.progress) options_.progress->finish(done);
            if (!read_error) {
                complete = true;
                break;
            }
            last_error = "the download stopped at " + format_bytes(static_cast<double>(done)) + ": " +
                         std::string(to_string(read_error.kind));
            if (options_.progress && attempt < options_.attempts)
                std::fprintf(stdout, "%s; resuming\n", last_error.c_str());
        }
        if (!complete)
            throw failure(last_error + "; " + part_path.filename().string() +
                          " is kept: run the pull again to resume it");
        verify_and_keep(manifest, part_path, linked_sha);
    }

    void verify_and_keep(model_manifest& manifest, const fs::path& part_path, const std::string& linked_sha) {
        if (manifest.sha256.empty()) manifest.sha256 = linked_sha;
        const std::uint64_t size = size_or_zero(part_path);
        if (manifest.size > 0 && size != manifest.size) {
            fs::remove(part_path);
            throw failure(manifest.file + ": got " + std::to_string(size) + " bytes where the hub lists " +
                          std::to_string(manifest.size) + "; the download was deleted");
        }
        manifest.size = size;
        const std::string actual = file_sha256(part_path);
        if (manifest.sha256.empty()) {
            if (options_.progress)
                std::fprintf(stdout, "warning: the hub publishes no SHA-256 for %s: not verified\n",
                             manifest.file.c_str());
            manifest.sha256 = actual;
        } else if (actual != manifest.sha256) {
            fs::remove(part_path);
            throw failure("SHA-256 mismatch for " + manifest.file + ": the hub publishes " + manifest.sha256 +
                          ", the download has " + actual + "; the download was deleted");
        }
        fs::rename(part_path, manifest.local_path);
        manifest.pulled_at = utc_now();
        write_atomically(manifest_path_for(manifest.local_path), manifest_json(manifest));
    }

    std::string status_message(unsigned status, const std::string& body, const std::string& doing) const {
        if (status == 401 || status == 403) {
            return ref_.repo + " is gated or private (HTTP " + std::to_string(status) + " while " + doing +
                   "): " +
                   (options_.token.empty()
                        ? "set HF_TOKEN to a Hugging Face token that has access"
                        : "the HF_TOKEN given has no access to it (accept its terms on the hub?)");
        }
        if (status == 404)
            return ref_.repo + " or its file was not found on " + hub_.origin() + " (HTTP 404)";
        std::string detail = body.substr(0, 200);
        detail.erase(
            std::remove_if(detail.begin(), detail.end(), [](char c) { return c == '\n' || c == '\r'; }),
            detail.end());
        return doing + ": the hub answered HTTP " + std::to_string(status) +
               (detail.empty() ? "" : ": " + detail);
    }

    std::string reach_message(const url& origin, const upstream_error& error) const {
        return "cannot reach " + origin.origin() + ": " + std::string(to_string(error.kind));
    }

    std::string no_match_message(const std::vector<hub_file>& files) const {
        std::string names;
        for (const auto& file : files) {
            if (!file.path.ends_with(".gguf")) continue;
            names += names.empty() ? "" : ", ";
            names += file.path;
        }
        const std::string wanted =
            ref_.quant.empty() ? "no GGUF model file" : "no GGUF file for " + ref_.quant;
        return ref_.repo + " has " + wanted + (names.empty() ? "" : " (its .gguf files: " + names + ")");
    }

    hf_ref ref_;
    pull_options options_;
    url hub_;
    std::map<std::string, std::unique_ptr<http_client>> clients_;
};

}  // namespace

pull_options pull_options_from_env(fs::path models_dir, const std::map<std::string, std::string>& env) {
    pull_options options;
    options.models_dir = std::move(models_dir);
    if (auto it = env.find("HF_ENDPOINT"); it != env.end() && !it->second.empty())
        options.endpoint = it->second;
    if (auto it = env.find("HF_TOKEN"); it != env.end()) options.token = it->second;
    return options;
}

pull_outcome pull_model(const hf_ref& ref, const pull_options& options) {
    net::io_context context;
    try {
        auto session = std::make_shared<hub_session>(ref, options);
        auto future = net::co_spawn(
            context, [session]() -> net::awaitable<pull_outcome> { co_return co_await session->run(); },
            net::use_future);
        context.run();
        return future.get();
    } catch (const failure& e) {
        return pull_outcome{.error = e.what()};
    } catch (const fs::filesystem_error& e) {
        return pull_outcome{.error = std::string("models folder: ") + e.what()};
    } catch (const std::exception& e) {  // e.g. a listing whose numbers are not sizes
        return pull_outcome{.error = std::string("unexpected answer from the hub: ") + e.what()};
    }
}

pull_outcome ensure_model(const hf_ref& ref, const pull_options& options) {
    const auto pulled = list_pulled(options.models_dir);
    if (const auto* found = pick_pulled(pulled, ref))
        return pull_outcome{.manifest = *found, .already_present = true};
    return pull_model(ref, options);
}

std::vector<model_manifest> list_pulled(const fs::path& models_dir) {
    std::vector<model_manifest> out;
    std::error_code ec;
    if (!fs::is_directory(models_dir, ec)) return out;
    constexpr std::string_view k_suffix = ".manifest.json";
    for (auto it = fs::recursive_directory_iterator(models_dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!it->is_regular_file() || !name.ends_with(k_suffix)) continue;
        std::ifstream in(it->path(), std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto manifest = parse_manifest(text);
        if (!manifest) continue;
        manifest->local_path = local_model_path(models_dir, manifest->repo, manifest->file);
        if (manifest_path_for(manifest->local_path) != it->path() || !fs::exists(manifest->local_path))
            continue;
        out.push_back(std::move(*manifest));
    }
    std::sort(out.begin(), out.end(), [](const model_manifest& a, const model_manifest& b) {
        return std::tie(a.repo, a.file) < std::tie(b.repo, b.file);
    });
    return out;
}

std::vector<model_manifest> remove_pulled(const fs::path& models_dir, const hf_ref& ref) {
    const auto pulled = list_pulled(models_dir);
    std::vector<model_manifest> removed;
    for (const auto* manifest : matching_manifests(pulled, ref)) {
        auto part = manifest->local_path;
        part += ".part";
        fs::remove(manifest->local_path);
        fs::remove(manifest_path_for(manifest->local_path));
        fs::remove(part);
        // Empty folders up to (not including) models_dir go too.
        std::error_code ec;
        for (auto dir = manifest->local_path.parent_path(); dir != models_dir && dir.has_relative_path();
             dir = dir.parent_path()) {
            if (!fs::is_empty(dir, ec) || ec || !fs::remove(dir, ec)) break;
        }
        removed.push_back(*manifest);
    }
    return removed;
}

}  // namespace sluice
