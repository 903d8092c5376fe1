#include "api/seed_wire.h"

#include <array>
#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>

#include "core/json_text.h"

namespace sluice {

namespace json = boost::json;

namespace {

json::object base_event(const stream_identity& id, std::string_view content) {
    return json::object{{"content", content},
                        {"session_id", id.session_id},
                        {"model_used", id.model_used},
                        {"model", id.model}};
}

json::object usage_json(const stream_outcome& out) {
    return json::object{{"prompt_tokens", out.prompt_tokens}, {"completion_tokens", out.completion_tokens}};
}

// Boost.JSON writes doubles as 5E-1; the score reads better (and compares byte for byte) in the
// shortest round-trip form, so the route object is written by hand.
std::string route_json(const stream_identity& id) {
    std::array<char, 32> score{};
    auto [end, ec] = std::to_chars(score.data(), score.data() + score.size(), id.route_score);
    if (ec != std::errc{}) end = score.data();
    return R"("route":{"reason":)" + json::serialize(json::value(id.route_reason)) + R"(,"score":)" +
           std::string(score.data(), end) + "}";
}

// `object` serialized with `"route":{...}` appended as its last member.
std::string with_route(const json::object& object, const stream_identity& id) {
    std::string text = json::serialize(object);
    text.pop_back();  // the closing brace
    text += ',';
    text += route_json(id);
    text += '}';
    return text;
}

http_status status_of(int code) {
    return static_cast<http_status>(code >= 400 && code <= 599 ? code : 500);
}

// Tools never reach a seed request, and its events carry text only: reasoning is not shown.
class seed_wire final : public wire_format {
  public:
    explicit seed_wire(bool streaming) : streaming_(streaming) {}

    void content(sse_batch& events, const stream_identity& who, const stream_chunk& chunk,
                 const stream_outcome&) override {
        if (chunk.type != stream_chunk::kind::delta) return;
        append_delta_event_json(events.begin_event(), who, chunk.text);
        events.end_event();
    }

    void final(sse_batch& events, const stream_identity& who, const stream_outcome& out) override {
        events.add_event(final_event_json(who, out));
    }

    void error_events(sse_batch& events, const api_error& error, const stream_identity& who) override {
        events.add_event(error_event_json(error, who.session_id, &who));
    }

    http_response error_response(const http_request& request, const api_error& error,
                                 std::string_view session_id, const stream_identity* who) override {
        const auto event = error_event_json(error, session_id, who);
        if (streaming_) {
            return sse_error_response(status_of(error.code), event, error.retry_after_s, request.version(),
                                      request.keep_alive());
        }
        http_response res{status_of(error.code), request.version()};
        res.set(boost::beast::http::field::content_type, "application/json");
        if (error.retry_after_s > 0)
            res.set(boost::beast::http::field::retry_after, std::to_string(error.retry_after_s));
        res.body() = event;
        return res;
    }

    // /api/v1/chat: the text that arrived before the failure (and was stored) goes with the error.
    http_response partial_error_response(const http_request& request, const api_error& error,
                                         const stream_identity& who, const stream_outcome& so_far) override {
        auto res = error_response(request, error, who.session_id, &who);
        if (!streaming_) res.body() = error_event_json(error, who.session_id, &who, so_far.text);
        return res;
    }

    std::string whole(const stream_identity& who, const stream_outcome& out) override {
        return chat_response_json(who, out);
    }

  private:
    bool streaming_;
};

}  // namespace

std::unique_ptr<wire_format> make_seed_wire_format(bool streaming) {
    return std::make_unique<seed_wire>(streaming);
}

void append_delta_event_json(std::string& out, const stream_identity& identity, std::string_view content) {
    out += R"({"content":)";
    append_json_string(out, content);
    out += R"(,"session_id":)";
    append_json_string(out, identity.session_id);
    out += R"(,"model_used":)";
    append_json_string(out, identity.model_used);
    out += R"(,"model":)";
    append_json_string(out, identity.model);
    out += '}';
}

std::string delta_event_json(const stream_identity& identity, std::string_view content) {
    std::string out;
    append_delta_event_json(out, identity, content);
    return out;
}

std::string final_event_json(const stream_identity& identity, const stream_outcome& outcome) {
    auto event = base_event(identity, "");
    event["done"] = true;
    event["finish_reason"] = outcome.finish_reason;
    event["usage"] = usage_json(outcome);
    return with_route(event, identity);
}

std::string error_event_json(const api_error& error, std::string_view session_id,
                             const stream_identity* identity, std::string_view content) {
    json::object event{
        {"error", error.message}, {"code", error.code}, {"content", content}, {"session_id", session_id}};
    if (identity) {
        event["model_used"] = identity->model_used;
        event["model"] = identity->model;
    }
    return json::serialize(event);
}

std::string chat_response_json(const stream_identity& identity, const stream_outcome& outcome) {
    auto body = base_event(identity, outcome.text);
    body["finish_reason"] = outcome.finish_reason;
    body["usage"] = usage_json(outcome);
    return with_route(body, identity);
}

}  // namespace sluice
