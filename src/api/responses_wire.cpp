// The Responses API's bytes: the response object and the stream's events, exactly as OpenAI sends
// them (no I/O here). Every event is `event: <type>` + `data: {"type", "sequence_number", ...}`.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/openai_chat.h"
#include "api/responses.h"
#include "core/ids.h"
#include "core/json_text.h"

namespace sluice {

namespace json = boost::json;

namespace {

using item_kind = response_state::item_kind;

std::string_view item_prefix(item_kind kind) {
    switch (kind) {
        case item_kind::reasoning:
            return "rs_";
        case item_kind::message:
            return "msg_";
        case item_kind::function_call:
            return "fc_";
    }
    return "item_";
}

json::object output_text_part(std::string_view text) {
    return json::object{
        {"type", "output_text"}, {"annotations", json::array{}}, {"logprobs", json::array{}}, {"text", text}};
}

json::object summary_part(std::string_view text) {
    return json::object{{"type", "summary_text"}, {"text", text}};
}

std::string_view slice(const std::string& text, const response_state::item& item) {
    if (item.begin >= text.size()) return {};
    const auto end = std::min(item.end, text.size());
    return std::string_view(text).substr(item.begin, end - item.begin);
}

// An output item as it stands in `out` (null: just opened, nothing in it yet).
json::object item_json(const response_state::item& item, const stream_outcome* out, std::string_view status,
                       bool last_reasoning) {
    switch (item.kind) {
        case item_kind::reasoning: {
            json::array summary;
            std::string signature;
            if (out) {
                const auto text = slice(out->reasoning, item);
                if (!text.empty()) summary.push_back(summary_part(text));
                if (last_reasoning) signature = response_signature(out->reasoning_signature);
            }
            json::object shown{{"id", item.id}, {"type", "reasoning"}, {"summary", std::move(summary)}};
            if (!signature.empty()) shown["encrypted_content"] = signature;
            return shown;
        }
        case item_kind::message: {
            json::array content;
            if (out) content.push_back(output_text_part(slice(out->text, item)));
            return json::object{{"id", item.id},
                                {"type", "message"},
                                {"status", status},
                                {"role", "assistant"},
                                {"content", std::move(content)}};
        }
        case item_kind::function_call: {
            const content_part* call = nullptr;
            if (out && item.call < out->tool_calls.size()) call = &out->tool_calls[item.call];
            return json::object{{"id", item.id},
                                {"type", "function_call"},
                                {"status", status},
                                {"arguments", call ? std::string_view(call->arguments) : std::string_view{}},
                                {"call_id", call ? std::string_view(call->id) : std::string_view{}},
                                {"name", call ? std::string_view(call->name) : std::string_view{}}};
        }
    }
    return {};
}

std::size_t last_reasoning_index(const response_state& state) {
    std::size_t last = state.items.size();
    for (std::size_t i = 0; i < state.items.size(); ++i)
        if (state.items[i].kind == item_kind::reasoning) last = i;
    return last;
}

}  // namespace

void response_state::settle(const stream_outcome& out) {
    if (!items.empty()) return;
    if (!out.reasoning.empty() || !out.reasoning_signature.empty())
        items.push_back({.kind = item_kind::reasoning, .id = next_item_id(item_kind::reasoning)});
    if (!out.text.empty())
        items.push_back({.kind = item_kind::message, .id = next_item_id(item_kind::message)});
    for (std::size_t i = 0; i < out.tool_calls.size(); ++i)
        items.push_back(
            {.kind = item_kind::function_call, .id = next_item_id(item_kind::function_call), .call = i});
}

std::string response_state::next_item_id(item_kind kind) const {
    const std::string_view suffix = std::string_view(id).substr(std::min(id.find('_') + 1, id.size()));
    return std::string(item_prefix(kind)) + std::string(suffix) + "_" + std::to_string(items.size());
}

std::string response_id_of_item(std::string_view item_id) {
    const auto first = item_id.find('_');
    const auto last = item_id.rfind('_');
    if (first == std::string_view::npos || last <= first + 1) return {};
    return "resp_" + std::string(item_id.substr(first + 1, last - first - 1));
}

std::string_view response_status(const stream_outcome& out) {
    if (out.error) return "failed";
    if (out.client_gone || out.finish_reason == "cancelled") return "cancelled";
    if (out.finish_reason == "length") return "incomplete";
    return "completed";
}

json::object response_usage(const stream_outcome& out) {
    return json::object{{"input_tokens", out.prompt_tokens},
                        {"input_tokens_details", json::object{{"cached_tokens", out.cached_tokens}}},
                        {"output_tokens", out.completion_tokens},
                        {"output_tokens_details", json::object{{"reasoning_tokens", out.reasoning_tokens}}},
                        {"total_tokens", out.prompt_tokens + out.completion_tokens}};
}

std::string_view response_error_code(const api_error& error) {
    if (error.code == 429) return "rate_limit_exceeded";
    if (error.message.find("context") != std::string::npos &&
        (error.code == 400 || error.code == 413 || error.message.find("length") != std::string::npos))
        return "context_length_exceeded";
    if (error.code == 400) return "invalid_prompt";
    if (error.code == 504) return "timeout";
    return "server_error";
}

json::object response_object(const response_state& state, const stream_outcome* out, std::string_view model,
                             std::string_view status, const api_error* error) {
    json::object response{{"id", state.id},   {"object", "response"}, {"created_at", state.created_at},
                          {"status", status}, {"error", nullptr},     {"incomplete_details", nullptr}};
    for (const auto& member : state.echo) response[member.key()] = member.value();
    response["model"] = model;
    json::array output;
    if (out) {
        const auto item_status = status == "completed" ? "completed" : "incomplete";
        const auto last_reasoning = last_reasoning_index(state);
        for (std::size_t i = 0; i < state.items.size(); ++i)
            output.push_back(item_json(state.items[i], out, item_status, i == last_reasoning));
    }
    response["output"] = std::move(output);
    response["usage"] = out ? json::value(response_usage(*out)) : json::value(nullptr);
    if (!error && out && out->error) error = &*out->error;
    if (error && status == "failed")
        response["error"] = json::object{{"code", response_error_code(*error)}, {"message", error->message}};
    if (status == "incomplete")
        response["incomplete_details"] = json::object{{"reason", "max_output_tokens"}};
    return response;
}

namespace {

// One /v1/responses stream. response.created and response.in_progress open it with the first
// content (so that an error before it is still a real HTTP status, and another model may answer);
// each output item is opened when its first chunk comes and closed when another kind of content
// starts or the answer ends; the last event carries the whole response.
class responses_wire final : public wire_format {
  public:
    explicit responses_wire(std::shared_ptr<response_state> state) : state_(std::move(state)) {}

    void content(sse_batch& events, const stream_identity& who, const stream_chunk& chunk,
                 const stream_outcome& so_far) override {
        open(events, who);
        switch (chunk.type) {
            case stream_chunk::kind::delta:
                if (chunk.text.empty()) break;
                if (!current_is(item_kind::message)) {
                    close_current(events, so_far);
                    open_item(events, item_kind::message, so_far.text.size() - chunk.text.size(), so_far);
                }
                text_delta(events, "response.output_text.delta", R"(,"content_index":0,"delta":)", chunk.text,
                           R"(,"logprobs":[]})");
                break;
            case stream_chunk::kind::reasoning:
                if (!current_is(item_kind::reasoning)) {
                    close_current(events, so_far);
                    open_item(events, item_kind::reasoning, so_far.reasoning.size() - chunk.text.size(),
                              so_far);
                }
                if (!chunk.text.empty())
                    text_delta(events, "response.reasoning_summary_text.delta",
                               R"(,"summary_index":0,"delta":)", chunk.text, "}");
                break;
            case stream_chunk::kind::tool_call_start:
                close_current(events, so_far);
                calls_.push_back({chunk.index, state_->items.size()});
                open_item(events, item_kind::function_call, so_far.tool_calls.size() - 1, so_far);
                break;
            case stream_chunk::kind::tool_call_delta: {
                if (chunk.text.empty()) break;
                if (!open_ || current().kind != item_kind::function_call || calls_.empty() ||
                    calls_.back().first != chunk.index) {
                    // Interleaved calls: its item was closed; the completed response has it whole.
                    spdlog::debug("responses: a fragment of call {} after its item closed", chunk.index);
                    break;
                }
                text_delta(events, "response.function_call_arguments.delta", R"(,"delta":)", chunk.text, "}");
                break;
            }
            case stream_chunk::kind::usage:
            case stream_chunk::kind::finish:
            case stream_chunk::kind::error:
                break;
        }
    }

    void final(sse_batch& events, const stream_identity& who, const stream_outcome& out) override {
        open(events, who);
        close_current(events, out);
        const auto status = response_status(out);
        const std::string_view type = status == "incomplete" ? "response.incomplete" : "response.completed";
        auto event = begin(type);
        event["response"] = response_object(*state_, &out, who.model, status, nullptr);
        send(events, type, event);
    }

    void error_events(sse_batch& events, const api_error& error, const stream_identity& who) override {
        open(events, who);
        auto event = begin("response.failed");
        event["response"] = response_object(*state_, state_->outcome, who.model, "failed", &error);
        send(events, "response.failed", event);
    }

    // response.failed with the next sequence number and the output so far, which moves nothing.
    void lost_events(sse_batch& events, const api_error& error, const stream_identity& who) override {
        json::object event{{"type", "response.failed"}, {"sequence_number", sequence_}};
        event["response"] = response_object(*state_, state_->outcome, who.model, "failed", &error);
        send(events, "response.failed", event);
    }

    http_response error_response(const http_request& request, const api_error& error, std::string_view,
                                 const stream_identity*) override {
        return openai_error_response(request, error);
    }

    std::string whole(const stream_identity& who, const stream_outcome& out) override {
        state_->settle(out);
        return json::serialize(response_object(*state_, &out, who.model, response_status(out), nullptr));
    }

    bool done_marker() const override { return false; }

  private:
    response_state::item& current() { return state_->items.back(); }
    bool current_is(item_kind kind) const {
        return open_ && !state_->items.empty() && state_->items.back().kind == kind;
    }

    json::object begin(std::string_view type) {
        return json::object{{"type", type}, {"sequence_number", sequence_++}};
    }

    void send(sse_batch& events, std::string_view type, const json::object& event) {
        events.add_named_event(type, json::serialize(event));
    }

    void open(sse_batch& events, const stream_identity& who) {
        if (opened_) return;
        opened_ = true;
        for (const std::string_view type : {"response.created", "response.in_progress"}) {
            auto event = begin(type);
            event["response"] = response_object(*state_, nullptr, who.model, "in_progress", nullptr);
            send(events, type, event);
        }
    }

    // output_item.added, and for a message or reasoning its (empty) first part.
    void open_item(sse_batch& events, item_kind kind, std::size_t begin_at, const stream_outcome& so_far) {
        response_state::item item{.kind = kind, .id = state_->next_item_id(kind)};
        if (kind == item_kind::function_call) {
            item.call = begin_at;
        } else {
            item.begin = begin_at;
        }
        state_->items.push_back(std::move(item));
        open_ = true;
        const auto& added = state_->items.back();
        const auto index = static_cast<std::int64_t>(state_->items.size() - 1);
        auto event = begin("response.output_item.added");
        event["output_index"] = index;
        json::object shown = item_json(added, nullptr, "in_progress", false);
        if (kind == item_kind::function_call) shown = item_json(added, &so_far, "in_progress", false);
        event["item"] = std::move(shown);
        send(events, "response.output_item.added", event);
        if (kind == item_kind::message) {
            auto part = item_event("response.content_part.added");
            part["content_index"] = 0;
            part["part"] = output_text_part("");
            send(events, "response.content_part.added", part);
        } else if (kind == item_kind::reasoning) {
            auto part = item_event("response.reasoning_summary_part.added");
            part["summary_index"] = 0;
            part["part"] = summary_part("");
            send(events, "response.reasoning_summary_part.added", part);
        }
    }

    json::object item_event(std::string_view type) {
        auto event = begin(type);
        event["item_id"] = current().id;
        event["output_index"] = static_cast<std::int64_t>(state_->items.size() - 1);
        return event;
    }

    // The done events of the open item, which holds what `out` has of it.
    void close_current(sse_batch& events, const stream_outcome& out) {
        if (!open_ || state_->items.empty()) return;
        open_ = false;
        auto& item = current();
        switch (item.kind) {
            case item_kind::message: {
                item.end = out.text.size();
                const auto text = slice(out.text, item);
                auto done = item_event("response.output_text.done");
                done["content_index"] = 0;
                done["text"] = text;
                done["logprobs"] = json::array{};
                send(events, "response.output_text.done", done);
                auto part = item_event("response.content_part.done");
                part["content_index"] = 0;
                part["part"] = output_text_part(text);
                send(events, "response.content_part.done", part);
                break;
            }
            case item_kind::reasoning: {
                item.end = out.reasoning.size();
                const auto text = slice(out.reasoning, item);
                auto done = item_event("response.reasoning_summary_text.done");
                done["summary_index"] = 0;
                done["text"] = text;
                send(events, "response.reasoning_summary_text.done", done);
                auto part = item_event("response.reasoning_summary_part.done");
                part["summary_index"] = 0;
                part["part"] = summary_part(text);
                send(events, "response.reasoning_summary_part.done", part);
                break;
            }
            case item_kind::function_call: {
                const content_part* call =
                    item.call < out.tool_calls.size() ? &out.tool_calls[item.call] : nullptr;
                auto done = item_event("response.function_call_arguments.done");
                done["arguments"] = call ? std::string_view(call->arguments) : std::string_view{};
                done["name"] = call ? std::string_view(call->name) : std::string_view{};
                send(events, "response.function_call_arguments.done", done);
                break;
            }
        }
        auto done = begin("response.output_item.done");
        done["output_index"] = static_cast<std::int64_t>(state_->items.size() - 1);
        done["item"] = item_json(item, &out, "completed", true);
        send(events, "response.output_item.done", done);
    }

    // A delta event, built straight into the buffer (one goes out per token): {"type", the sequence
    // number, item_id, output_index, then `middle` + the text as a JSON string + `tail`}.
    void text_delta(sse_batch& events, std::string_view type, std::string_view middle, std::string_view text,
                    std::string_view tail) {
        scratch_.clear();
        scratch_ += R"({"type":)";
        append_json_string(scratch_, type);
        scratch_ += R"(,"sequence_number":)";
        append_json_int(scratch_, sequence_++);
        scratch_ += R"(,"item_id":)";
        append_json_string(scratch_, current().id);
        scratch_ += R"(,"output_index":)";
        append_json_int(scratch_, static_cast<std::int64_t>(state_->items.size() - 1));
        scratch_ += middle;
        append_json_string(scratch_, text);
        scratch_ += tail;
        events.add_named_event(type, scratch_);
    }

    std::shared_ptr<response_state> state_;
    std::vector<std::pair<int, std::size_t>> calls_;  // a call's index upstream -> its output item
    std::string scratch_;
    std::int64_t sequence_ = 0;
    bool opened_ = false;
    bool open_ = false;  // the last item is still open
};

}  // namespace

std::unique_ptr<wire_format> make_responses_wire_format(std::shared_ptr<response_state> state) {
    return std::make_unique<responses_wire>(std::move(state));
}

}  // namespace sluice
