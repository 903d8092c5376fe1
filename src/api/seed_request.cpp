#include "api/seed_request.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <limits>

namespace sluice {

namespace json = boost::json;

namespace {

constexpr std::size_t k_max_session_id = 128;

api_error bad_request(std::string message) {
    return {.code = 400, .message = std::move(message)};
}

// Shown in error messages: bounded, so a huge field does not come back in full.
std::string excerpt(std::string_view text) {
    constexpr std::size_t k_max = 64;
    if (text.size() <= k_max) return std::string(text);
    std::size_t cut = k_max;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // whole characters
    return std::string(text.substr(0, cut)) + "...";
}

const json::value* field(const json::object& object, std::string_view name) {
    auto it = object.find(name);
    if (it == object.end() || it->value().is_null()) return nullptr;
    return &it->value();
}

}  // namespace

bool is_well_formed_utf8(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int extra = 0;
        unsigned min_second = 0x80, max_second = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) min_second = 0xA0;  // no overlong forms
            if (c == 0xED) max_second = 0x9F;  // no UTF-16 surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) min_second = 0x90;
            if (c == 0xF4) max_second = 0x8F;  // nothing above U+10FFFF
        } else {
            return false;
        }
        if (end - p <= extra) return false;
        if (p[1] < min_second || p[1] > max_second) return false;
        for (int i = 2; i <= extra; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
        }
        p += extra + 1;
    }
    return true;
}

bool is_valid_session_id(std::string_view id) {
    if (id.empty() || id.size() > k_max_session_id) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '.' || c == ':' || c == '-';
    });
}

std::variant<seed_request, api_error> parse_seed_request(std::string_view body,
                                                         const std::vector<model_config>& models) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return bad_request("request body is empty");
    json::parse_options options;
    options.allow_invalid_utf8 = true;  // so the message check below can name the field
    boost::system::error_code ec;
    json::value root = json::parse(body, ec, {}, options);
    if (ec) return bad_request("request body is not valid JSON: " + ec.message());
    if (!root.is_object()) return bad_request("request body must be a JSON object");
    const auto& object = root.get_object();
    seed_request out;

    const auto* message = field(object, "message");
    if (!message) return bad_request("message is required");
    if (!message->is_string()) return bad_request("message must be a string");
    std::string_view message_text = message->get_string();
    if (message_text.empty()) return bad_request("message must not be empty");
    if (!is_well_formed_utf8(message_text)) return bad_request("message must be valid UTF-8");
    out.message = std::string(message_text);

    if (const auto* session = field(object, "session_id")) {
        if (!session->is_string()) return bad_request("session_id must be a string");
        std::string_view id = session->get_string();
        if (!is_valid_session_id(id)) return bad_request("session_id must match [A-Za-z0-9_.:-]{1,128}");
        out.session_id = std::string(id);
    }

    // Read before max_tokens is checked: they decide which models bound it.
    const auto* model_type = field(object, "model_type");
    const auto* preferred = field(object, "preferred_model");

    if (const auto* max_tokens = field(object, "max_tokens")) {
        if (!max_tokens->is_int64() && !max_tokens->is_uint64())
            return bad_request("max_tokens must be an integer");
        int limit = 0;
        for (const auto& model : models) {
            bool reachable = true;
            if (preferred && preferred->is_string()) {
                reachable = model.name == std::string_view{preferred->get_string()};
            } else if (model_type && model_type->is_string() && model_type->get_string() != "auto") {
                reachable = to_string(model.role) == std::string_view{model_type->get_string()};
            }
            if (reachable) limit = std::max(limit, model_token_limit(model));
        }
        if (limit == 0) limit = std::numeric_limits<int>::max();  // no model: 503 comes later
        const bool in_range = max_tokens->is_int64()
                                  ? max_tokens->get_int64() >= 1 && max_tokens->get_int64() <= limit
                                  : max_tokens->get_uint64() <= static_cast<std::uint64_t>(limit);
        if (!in_range) return bad_request("max_tokens must be between 1 and " + std::to_string(limit));
        out.max_tokens = static_cast<int>(max_tokens->to_number<std::int64_t>());
    }

    if (const auto* temperature = field(object, "temperature")) {
        if (!temperature->is_number()) return bad_request("temperature must be a number");
        double value = temperature->to_number<double>();
        if (!(value >= 0.0 && value <= 2.0)) return bad_request("temperature must be between 0 and 2");
        out.temperature = value;
    }

    if (model_type) {
        if (!model_type->is_string()) return bad_request("model_type must be a string");
        std::string_view type = model_type->get_string();
        if (type != "auto" && type != "local_small" && type != "cloud_large") {
            return bad_request("model_type must be one of auto, local_small, cloud_large");
        }
        out.model_type = std::string(type);
    }

    if (preferred) {
        if (!preferred->is_string()) return bad_request("preferred_model must be a string");
        std::string_view name = preferred->get_string();
        if (!is_well_formed_utf8(name)) return bad_request("preferred_model must be valid UTF-8");
        bool known = std::any_of(models.begin(), models.end(), [&](const auto& m) { return m.name == name; });
        if (!known) {
            return api_error{.code = 404,
                             .message = "preferred_model '" + excerpt(name) + "' is not a configured model"};
        }
        out.preferred_model = std::string(name);
    }

    if (const auto* stream = field(object, "stream")) {
        if (!stream->is_bool()) return bad_request("stream must be a boolean");
        out.stream = stream->get_bool();
    }
    if (const auto* resumable = field(object, "resumable")) {
        if (!resumable->is_bool()) return bad_request("resumable must be a boolean");
        out.resumable = resumable->get_bool();
    }
    return out;
}

bool body_requests_stream(std::string_view body) {
    json::parse_options options;
    options.allow_invalid_utf8 = true;
    boost::system::error_code ec;
    json::value root = json::parse(body, ec, {}, options);
    if (ec || !root.is_object()) return false;
    const auto* stream = root.get_object().if_contains("stream");
    return stream && stream->is_bool() && stream->get_bool();
}

}  // namespace sluice
