#include "providers/anthropic_provider.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "providers/cloud_common.h"

namespace sluice {
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

constexpr const char* k_anthropic_version = "2023-06-01";

std::string finish_reason_of(std::string_view stop_reason) {
    // end_turn, stop_sequence, pause_turn, refusal... all end the text normally for a chat client.
    if (stop_reason == "tool_use") return "tool_calls";
    return stop_reason == "max_tokens" ? "length" : "stop";
}

int int_field(const json::value* object, const char* name) {
    if (!object || !object->is_object()) return -1;
    return token_count(object->get_object().if_contains(name), -1);
}

std::string_view string_field(const json::object& object, std::string_view name) {
    auto* field = object.if_contains(name);
    return field && field->is_string() ? std::string_view(field->get_string()) : std::string_view{};
}

// A JSON Schema given as text; a schema that does not parse to an object accepts any object.
json::value schema_value(const std::string& text) {
    boost::system::error_code ec;
    auto value = json::parse(text, ec);
    if (ec || !value.is_object()) return json::object{{"type", "object"}, {"properties", json::object{}}};
    return value;
}

// A tool call's arguments as the object Anthropic's tool_use.input must be; {} when they are not
// one (a model's malformed JSON is not worth failing the whole next turn for).
json::value input_value(const std::string& arguments) {
    boost::system::error_code ec;
    auto value = json::parse(arguments, ec);
    if (ec || !value.is_object()) return json::object{};
    return value;
}

bool is_thinking_block(const json::value& block) {
    const auto* object = block.if_object();
    if (!object) return false;
    const auto type = string_field(*object, "type");
    return type == "thinking" || type == "redacted_thinking";
}

// A tool call or result as text, for a request that offers no tools: the Messages API refuses
// tool_use and tool_result blocks then (a session that used tools, continued without them).
std::string call_as_text(const content_part& call) {
    return "[called tool " + call.name + " with " + call.arguments + "]";
}
std::string result_as_text(const content_part& result) {
    return std::string(result.is_error ? "[tool error: " : "[tool result: ") + result.text + "]";
}

// The content blocks of a message with parts. Thinking (only the signed or redacted kind: the API
// rejects thinking it cannot verify) goes first, then the text, then the tool calls (assistant);
// tool results, then text and images (user). Without `tools_offered` calls and results are text.
json::array content_blocks(const chat_message& message, bool assistant, bool tools_offered) {
    json::array thinking;
    json::array results;
    json::array texts;
    json::array calls;
    for (const auto& part : message.parts) {
        switch (part.type) {
            case content_part::kind::text:
                if (!part.text.empty()) texts.push_back(json::object{{"type", "text"}, {"text", part.text}});
                break;
            case content_part::kind::image:
                if (assistant) break;
                if (part.media_type.empty()) {
                    texts.push_back(json::object{
                        {"type", "image"}, {"source", json::object{{"type", "url"}, {"url", part.text}}}});
                } else {
                    texts.push_back(json::object{{"type", "image"},
                                                 {"source", json::object{{"type", "base64"},
                                                                         {"media_type", part.media_type},
                                                                         {"data", part.text}}}});
                }
                break;
            case content_part::kind::tool_call:
                if (!assistant) break;
                if (!tools_offered) {
                    calls.push_back(json::object{{"type", "text"}, {"text", call_as_text(part)}});
                    break;
                }
                calls.push_back(json::object{{"type", "tool_use"},
                                             {"id", part.id},
                                             {"name", part.name},
                                             {"input", input_value(part.arguments)}});
                break;
            case content_part::kind::tool_result: {
                if (assistant) break;
                if (!tools_offered) {
                    results.push_back(json::object{{"type", "text"}, {"text", result_as_text(part)}});
                    break;
                }
                json::object result{
                    {"type", "tool_result"}, {"tool_use_id", part.id}, {"content", part.text}};
                if (part.is_error) result["is_error"] = true;
                results.push_back(std::move(result));
                break;
            }
            case content_part::kind::reasoning:
                if (!assistant) break;
                if (part.redacted) {
                    if (!part.text.empty())
                        thinking.push_back(json::object{{"type", "redacted_thinking"}, {"data", part.text}});
                } else if (!part.signature.empty()) {
                    thinking.push_back(json::object{
                        {"type", "thinking"}, {"thinking", part.text}, {"signature", part.signature}});
                }
                break;
        }
    }
    json::array blocks = std::move(thinking);
    for (auto* group : {&results, &texts, &calls})
        for (auto& block : *group) blocks.push_back(std::move(block));
    return blocks;
}

// A turn's content as blocks (a string becomes one text block, unless it is empty).
json::array& as_blocks(json::value& content) {
    if (content.is_string()) {
        json::array blocks;
        if (!content.get_string().empty())
            blocks.push_back(json::object{{"type", "text"}, {"text", content.get_string()}});
        content = std::move(blocks);
    }
    return content.as_array();
}

// Joins `content` into the turn before it, of the same role: two strings as today (a blank line
// between them), anything else as blocks, the new thinking after the turn's own (thinking first).
void join_turn(json::value& turn_content, json::value content) {
    if (turn_content.is_string() && content.is_string()) {
        auto& text = turn_content.as_string();
        text.append("\n\n");
        text.append(content.get_string());
        return;
    }
    auto& blocks = as_blocks(turn_content);
    auto& more = as_blocks(content);
    auto thinking_end = std::find_if_not(blocks.begin(), blocks.end(), is_thinking_block);
    std::size_t at = static_cast<std::size_t>(thinking_end - blocks.begin());
    for (auto& block : more) {
        if (is_thinking_block(block))
            blocks.insert(blocks.begin() + static_cast<std::ptrdiff_t>(at++), std::move(block));
        else
            blocks.push_back(std::move(block));
    }
}

// The Messages API takes the system prompt apart and wants user/assistant turns that alternate,
// starting with the user; neighbouring turns of one role are joined. A tool message is a user turn
// of tool_result blocks, so a run of them and the user text after it make one turn.
json::object messages_body(const chat_request& request) {
    std::string system;
    json::array turns;
    std::string last_role;
    for (const auto& message : request.messages) {
        if (message.role == "system") {
            if (!system.empty()) system += "\n\n";
            system += message.content;
            continue;
        }
        std::string role = message.role == "assistant" ? "assistant" : "user";
        // History trimmed mid-conversation: an answer, or the results of calls that were cut away.
        if (turns.empty() && (role == "assistant" || message.role == "tool")) continue;
        json::value content(message.content);
        if (message.has_parts()) {
            json::array blocks = content_blocks(message, role == "assistant", !request.tools.empty());
            if (!blocks.empty()) content = std::move(blocks);
        }
        if (role == last_role) {
            join_turn(turns.back().as_object()["content"], std::move(content));
            continue;
        }
        turns.push_back(json::object{{"role", role}, {"content", std::move(content)}});
        last_role = role;
    }
    json::object body{{"messages", std::move(turns)}};
    if (!system.empty()) body["system"] = system;
    return body;
}

// tools, tool_choice (with disable_parallel_tool_use) and what Anthropic has no parameter for.
void add_tools(const chat_request& request, json::object& body) {
    if (!request.tools.empty()) {
        json::array tools;
        for (const auto& tool : request.tools) {
            json::object entry{{"name", tool.name}};
            if (!tool.description.empty()) entry["description"] = tool.description;
            entry["input_schema"] = schema_value(tool.parameters);
            tools.push_back(std::move(entry));
        }
        body["tools"] = std::move(tools);
        const bool serial = request.parallel_tool_calls && !*request.parallel_tool_calls;
        json::object choice;
        switch (request.tools_choice.type) {
            case tool_choice::mode::auto_:
                if (serial) choice["type"] = "auto";
                break;
            case tool_choice::mode::none:
                choice["type"] = "none";  // takes no disable_parallel_tool_use: no call, nothing to serialise
                break;
            case tool_choice::mode::required:
                choice["type"] = "any";
                break;
            case tool_choice::mode::named:
                choice["type"] = "tool";
                choice["name"] = request.tools_choice.name;
                break;
        }
        if (serial && request.tools_choice.type != tool_choice::mode::none)
            choice["disable_parallel_tool_use"] = true;
        if (!choice.empty()) body["tool_choice"] = std::move(choice);
    }
    if (request.format.type != response_format::kind::text)
        spdlog::debug(
            "anthropic upstream: no response_format parameter; the JSON format is left to the prompt");
}

// Anthropic's input_tokens leaves out the prompt read from and written to the cache; prompt_tokens
// counts the whole prompt, as OpenAI's does, with cached_tokens and cache_write_tokens parts of it.
// message_delta may repeat the counts (cumulative); there a 0 says nothing new.
void take_prompt_usage(const json::value* usage, cloud_stream_state& state, bool zero_is_unknown) {
    auto count = [&](const char* name) {
        int value = int_field(usage, name);
        return zero_is_unknown && value == 0 ? -1 : value;
    };
    const int input = count("input_tokens");
    const int read = count("cache_read_input_tokens");
    const int write = count("cache_creation_input_tokens");
    if (input < 0 && read < 0 && write < 0) return;
    int uncached = state.prompt_tokens - state.cached_tokens - state.cache_write_tokens;
    if (input >= 0) uncached = input;
    if (read >= 0) state.cached_tokens = read;
    if (write >= 0) state.cache_write_tokens = write;
    state.prompt_tokens = uncached + state.cached_tokens + state.cache_write_tokens;
    state.has_usage = true;
}

std::int64_t block_index(const json::object& event) {
    auto* index = event.if_contains("index");
    return index && index->is_int64() ? index->get_int64() : -1;
}

void take_block_start(const json::object& event, cloud_stream_state& state, chunk_batch& out) {
    auto* block_value = event.if_contains("content_block");
    const json::object* block = block_value ? block_value->if_object() : nullptr;
    if (!block) return;
    const auto type = string_field(*block, "type");
    if (type == "tool_use") {
        const int number = state.begin_call(block_index(event));
        std::string id(string_field(*block, "id"));
        if (id.empty()) id = "toolu_" + std::to_string(number);
        ++state.deltas;
        out.push_back(
            stream_chunk::tool_call_start(number, std::move(id), std::string(string_field(*block, "name"))));
        // The API starts with input {} and streams the arguments; a server that sends them whole here
        // has them read as one fragment.
        auto* input = block->if_contains("input");
        if (input && input->is_object() && !input->get_object().empty()) {
            ++state.deltas;
            out.push_back(stream_chunk::tool_call_delta(number, json::serialize(*input)));
        }
    } else if (type == "text" || type == "thinking") {
        const auto text = string_field(*block, type);
        if (text.empty()) return;
        ++state.deltas;
        out.push_back(type == "text" ? stream_chunk::delta(std::string(text))
                                     : stream_chunk::reasoning(std::string(text)));
    }
    // redacted_thinking: encrypted, for the upstream only; a chunk has no way to carry it back to a
    // client as such, so it is left out (the next turn then goes without it, which the API accepts).
}

void take_block_delta(const json::object& event, cloud_stream_state& state, chunk_batch& out) {
    auto* delta_value = event.if_contains("delta");
    const json::object* delta = delta_value ? delta_value->if_object() : nullptr;
    if (!delta) return;
    const auto type = string_field(*delta, "type");
    if (type == "input_json_delta") {
        const int number = state.call_at(block_index(event));
        const auto fragment = string_field(*delta, "partial_json");
        if (number < 0 || fragment.empty()) return;  // a fragment of a call that never began
        ++state.deltas;
        out.push_back(stream_chunk::tool_call_delta(number, std::string(fragment)));
    } else if (type == "thinking_delta") {
        const auto text = string_field(*delta, "thinking");
        if (text.empty()) return;
        ++state.deltas;
        out.push_back(stream_chunk::reasoning(std::string(text)));
    } else if (type == "signature_delta") {
        const auto signature = string_field(*delta, "signature");
        if (signature.empty()) return;
        ++state.deltas;
        out.push_back(stream_chunk::reasoning({}, std::string(signature)));
    } else if (type == "text_delta" || type.empty()) {
        const auto text = string_field(*delta, "text");
        if (text.empty()) return;
        ++state.deltas;
        out.push_back(stream_chunk::delta(std::string(text)));
    }
    // citations_delta and future kinds carry nothing for us
}

// One event of Messages streaming: message_start, content_block_*, message_delta, message_stop,
// ping, error.
bool take_anthropic_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    const json::value* value = thread_event_json_parser().parse(event.data);
    const json::object* object = value ? value->if_object() : nullptr;
    if (!object) {
        out.push_back(stream_chunk::error(502, "the upstream sent an event that is not JSON"));
        return false;
    }
    std::string_view type = event.event;
    if (auto* field = object->if_contains("type"); field && field->is_string()) type = field->get_string();

    if (type == "error") {
        std::string message = upstream_error_message(event.data);
        out.push_back(stream_chunk::error(502, "upstream error: " + message));
        return false;
    }
    if (type == "message_start") {
        auto* message = object->if_contains("message");
        auto* usage = message && message->is_object() ? message->get_object().if_contains("usage") : nullptr;
        take_prompt_usage(usage, state, false);
    } else if (type == "content_block_start") {
        take_block_start(*object, state, out);
    } else if (type == "content_block_delta") {
        take_block_delta(*object, state, out);
    } else if (type == "message_delta") {
        if (auto* delta = object->if_contains("delta"); delta && delta->is_object()) {
            auto* reason = delta->get_object().if_contains("stop_reason");
            if (reason && reason->is_string()) state.finish_reason = finish_reason_of(reason->get_string());
        }
        auto* usage = object->if_contains("usage");
        if (int output = int_field(usage, "output_tokens"); output >= 0) {
            state.has_usage = true;
            state.completion_tokens = output;
        }
        take_prompt_usage(usage, state, true);
    } else if (type == "message_stop") {
        state.ended = true;
    }
    return true;  // ping, content_block_stop and future event types carry nothing for us
}

// The client's own Messages body (a request that arrived on POST /v1/messages), as long as the
// conversation is still the one parsed from it: then blocks, cache_control, thinking signatures,
// server tools, thinking, top_k and metadata go upstream exactly as the client sent them. System
// messages sluice adds (server.system_prompt) go first, as a text block before the client's own.
std::optional<json::object> native_body(const chat_request& request) {
    if (request.anthropic_body.empty()) return std::nullopt;
    std::size_t conversation = 0;
    std::size_t system_count = 0;
    for (const auto& message : request.messages) {
        if (message.role == "system")
            ++system_count;
        else
            ++conversation;
    }
    if (conversation != request.anthropic_message_count) return std::nullopt;
    boost::system::error_code ec;
    auto parsed = json::parse(request.anthropic_body, ec);
    if (ec || !parsed.is_object()) return std::nullopt;
    json::object body = std::move(parsed.get_object());
    const auto* client_system = body.if_contains("system");
    const bool client_has_system = client_system && !client_system->is_null() &&
                                   !(client_system->is_string() && client_system->get_string().empty());
    const std::size_t added =
        system_count > request.anthropic_system_count ? system_count - request.anthropic_system_count : 0;
    std::string extra;
    std::size_t taken = 0;
    for (const auto& message : request.messages) {
        if (taken == added) break;
        if (message.role != "system") continue;
        if (!extra.empty()) extra += "\n\n";
        extra += message.content;
        ++taken;
    }
    if (!extra.empty()) {
        if (!client_has_system) {
            body["system"] = extra;
        } else if (client_system->is_string()) {
            body["system"] = extra + "\n\n" + std::string(client_system->get_string());
        } else if (auto* blocks = body["system"].if_array()) {
            blocks->insert(blocks->begin(), json::object{{"type", "text"}, {"text", extra}});
        }
    }
    return body;
}

}  // namespace

bool take_anthropic_stream_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) {
    return take_anthropic_event(event, state, out);
}

namespace {

class anthropic_provider final : public cloud_provider {
  public:
    explicit anthropic_provider(model_config cfg)
        : cloud_provider(std::move(cfg), "https://api.anthropic.com/v1") {}

  private:
    bool take_event(const sse_event& event, cloud_stream_state& state, chunk_batch& out) const override {
        return take_anthropic_event(event, state, out);
    }

    // The Messages body for `request`, as streamed or as counted (the same body without the members
    // that only shape the answer).
    json::object request_body(const chat_request& request) const {
        auto native = native_body(request);
        json::object body = native ? std::move(*native) : messages_body(request);
        if (!native) {
            add_tools(request, body);
            // OpenAI members sluice does not read (logprobs, metadata, ...) have no place in this wire.
            if (!request.openai_extra.empty())
                spdlog::debug("model {}: left out for the Anthropic wire: {}", cfg_.name,
                              request.openai_extra);
            // Anthropic's range is 0..1
            body["temperature"] = std::clamp(request.params.temperature, 0.0, 1.0);
            if (request.params.top_p != 1.0) body["top_p"] = request.params.top_p;
            if (!request.params.stop.empty()) {
                json::array stop;
                for (const auto& text : request.params.stop) stop.push_back(json::string(text));
                body["stop_sequences"] = std::move(stop);
            }
        }
        body["model"] = upstream_model_name(cfg_);
        return body;
    }

    upstream_request post(std::string_view path, const chat_request& request, const json::object& body,
                          std::string_view accept) const {
        upstream_request out;
        out.target = endpoint_.base->join(path);
        out.headers.set(http::field::content_type, "application/json");
        out.headers.set(http::field::accept, accept);
        out.headers.set("anthropic-version", k_anthropic_version);
        if (!endpoint_.api_key.empty()) out.headers.set("x-api-key", endpoint_.api_key);
        if (!request.anthropic_beta.empty()) out.headers.set("anthropic-beta", request.anthropic_beta);
        out.body = json::serialize(body);
        return out;
    }

    upstream_request build_request(const chat_request& request) const override {
        json::object body = request_body(request);
        body["max_tokens"] = request.params.max_tokens;
        body["stream"] = true;
        return post("/messages", request, body, "text/event-stream");
    }

    // Forwarded to the upstream's count_tokens with the members that endpoint takes; any failure
    // (transport, a non-200 answer, no input_tokens) leaves the count to the caller's estimate.
    boost::asio::awaitable<std::optional<int>> count_input_tokens(const chat_request& request) override {
        constexpr std::size_t k_body_limit = 64 * 1024;
        if (!endpoint_.client) co_return std::nullopt;
        json::object full = request_body(request);
        json::object body;
        for (const char* name :
             {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}) {
            if (auto* value = full.if_contains(name)) body[name] = std::move(*value);
        }
        upstream_request upstream = post("/messages/count_tokens", request, body, "application/json");
        auto opened = co_await endpoint_.client->open(std::move(upstream));
        if (opened.error) {
            spdlog::warn("model {}: count_tokens upstream: {}", cfg_.name, to_string(opened.error.kind));
            co_return std::nullopt;
        }
        auto [text, error] = co_await opened.response->read_all(k_body_limit);
        const unsigned status = opened.response->status();
        if (error || status != 200) {
            spdlog::warn("model {}: count_tokens upstream answered {}: {}", cfg_.name, status,
                         upstream_error_message(text));
            co_return std::nullopt;
        }
        boost::system::error_code ec;
        auto parsed = json::parse(text, ec);
        const auto* object = ec ? nullptr : parsed.if_object();
        const auto* tokens = object ? object->if_contains("input_tokens") : nullptr;
        if (!tokens || !tokens->is_int64() || tokens->get_int64() < 0) co_return std::nullopt;
        co_return static_cast<int>(tokens->get_int64());
    }
};

}  // namespace

std::shared_ptr<provider> make_anthropic_provider(const model_config& cfg) {
    return std::make_shared<anthropic_provider>(cfg);
}

}  // namespace sluice
