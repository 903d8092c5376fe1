// `sluice chat`: a terminal client of the seed endpoint. One request per run, streamed to stdout as
// it arrives; Ctrl-C closes the connection, which is how a client asks sluice to cancel.
#include "app/cmd_chat.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "upstream/sse_parser.h"
#include "upstream/url.h"

namespace sluice {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr auto k_connect_timeout = std::chrono::seconds(10);
// sluice sends ": ping" while a stream is quiet, so a long silence means the connection is dead.
constexpr auto k_idle_timeout = std::chrono::minutes(5);
constexpr std::size_t k_max_error_body = 64 * 1024;
constexpr int k_exit_failure = 1;
constexpr int k_exit_usage = 2;
constexpr int k_exit_interrupted = 130;  // the shell's convention for "killed by SIGINT"

struct chat_options {
    std::string url;
    std::string key;
    std::string session;
    std::string model_type = "auto";
    std::string model;
    int max_tokens = 0;
    std::optional<double> temperature;
    std::vector<std::string> words;
};

std::string env_or(const char* name, std::string fallback) {
    const char* value = std::getenv(name);
    return value && *value ? std::string(value) : std::move(fallback);
}

const json::string* string_field(const json::object& object, std::string_view name) {
    const auto* value = object.if_contains(name);
    return value && value->is_string() ? &value->get_string() : nullptr;
}

// One request and what came back; lives for the whole run so the SIGINT handler can reach the socket.
class chat_client {
  public:
    chat_client(net::io_context& io, chat_options options, url target)
        : io_(io), options_(std::move(options)), target_(std::move(target)), resolver_(io) {}

    net::awaitable<void> run() {
        auto [resolve_error, endpoints] = co_await resolver_.async_resolve(
            target_.host, std::to_string(target_.port), net::as_tuple(net::use_awaitable));
        if (resolve_error) co_return fail("cannot resolve " + target_.host + ": " + resolve_error.message());

        if (!target_.tls()) {
            beast::tcp_stream stream(io_);
            lowest_ = &stream;
            if (co_await connect(stream, endpoints)) co_await exchange(stream);
            lowest_ = nullptr;
            co_return;
        }
        net::ssl::context tls(net::ssl::context::tls_client);
        tls.set_default_verify_paths();
        tls.set_verify_mode(net::ssl::verify_peer);
        beast::ssl_stream<beast::tcp_stream> stream(io_, tls);
        lowest_ = &beast::get_lowest_layer(stream);
        if (!SSL_set_tlsext_host_name(stream.native_handle(), target_.host.c_str())) {
            co_return fail("cannot set the TLS server name");
        }
        stream.set_verify_callback(net::ssl::host_name_verification(target_.host));
        if (co_await connect(*lowest_, endpoints)) {
            auto [handshake_error] = co_await stream.async_handshake(net::ssl::stream_base::client,
                                                                     net::as_tuple(net::use_awaitable));
            if (handshake_error) {
                fail("TLS handshake with " + target_.host + " failed: " + handshake_error.message());
            } else {
                co_await exchange(stream);
            }
        }
        lowest_ = nullptr;
    }

    // Ctrl-C: closing the socket ends the pending read at once and tells sluice to cancel the work.
    void interrupt() {
        interrupted_ = true;
        resolver_.cancel();
        if (lowest_) lowest_->socket().close();
    }

    int finish_and_report() {
        if (printed_text_ && !ends_with_newline_) std::cout << "\n";
        std::cout.flush();
        if (!session_id_.empty()) std::cerr << "session: " << session_id_ << "\n";
        if (interrupted_) {
            std::cerr << "sluice chat: interrupted; the request was cancelled\n";
            return k_exit_interrupted;
        }
        if (!error_.empty()) {
            std::cerr << "sluice chat: " << error_;
            if (error_code_ != 0) std::cerr << " (" << error_code_ << ")";
            std::cerr << "\n";
            return k_exit_failure;
        }
        if (!done_) {
            std::cerr << "sluice chat: the stream ended before the answer was complete\n";
            return k_exit_failure;
        }
        std::cerr << "model: " << model_used_;
        if (!model_.empty()) std::cerr << " (" << model_ << ")";
        if (!route_reason_.empty()) std::cerr << ", route: " << route_reason_;
        if (!finish_reason_.empty()) std::cerr << ", finish: " << finish_reason_;
        std::cerr << "\n";
        return 0;
    }

  private:
    void fail(std::string message, int code = 0) {
        if (!interrupted_ && error_.empty()) {
            error_ = std::move(message);
            error_code_ = code;
        }
    }

    net::awaitable<bool> connect(beast::tcp_stream& stream, const tcp::resolver::results_type& endpoints) {
        stream.expires_after(k_connect_timeout);
        auto [error, endpoint] = co_await stream.async_connect(endpoints, net::as_tuple(net::use_awaitable));
        if (error) fail("cannot connect to " + target_.origin() + ": " + error.message());
        co_return !error && !interrupted_;
    }

    std::string request_body() const {
        std::string message;
        for (const auto& word : options_.words) message += (message.empty() ? "" : " ") + word;
        json::object body{{"message", message}, {"stream", true}, {"model_type", options_.model_type}};
        if (!options_.session.empty()) body["session_id"] = options_.session;
        if (!options_.model.empty()) body["preferred_model"] = options_.model;
        if (options_.max_tokens > 0) body["max_tokens"] = options_.max_tokens;
        if (options_.temperature) body["temperature"] = *options_.temperature;
        return json::serialize(body);
    }

    template <class Stream>
    net::awaitable<void> exchange(Stream& stream) {
        http::request<http::string_body> request{http::verb::post, target_.join("/api/v1/chat/stream"), 11};
        request.set(http::field::host, target_.host_header());
        request.set(http::field::user_agent, "sluice-chat");
        request.set(http::field::authorization, "Bearer " + options_.key);
        request.set(http::field::content_type, "application/json");
        request.set(http::field::accept, "text/event-stream");
        request.body() = request_body();
        request.prepare_payload();

        lowest_->expires_after(k_idle_timeout);
        auto [write_error, written] =
            co_await http::async_write(stream, request, net::as_tuple(net::use_awaitable));
        if (write_error) co_return fail("sending the request failed: " + write_error.message());

        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);  // a stream is as long as the answer
        beast::flat_buffer buffer;
        auto [header_error, header_bytes] =
            co_await http::async_read_header(stream, buffer, parser, net::as_tuple(net::use_awaitable));
        if (header_error) co_return fail("no response: " + header_error.message());

        const auto status = parser.get().result_int();
        const bool is_stream = parser.get()[http::field::content_type].starts_with("text/event-stream");
        std::string plain_body;  // a non-SSE answer (a proxy's error page, a 404): kept for the message
        sse_parser events;
        char piece[8192];
        // Read to the end of the response even after [DONE] (its last chunk follows at once), so the
        // server sees a clean exchange rather than a client that left mid-response.
        while (!parser.is_done()) {
            parser.get().body().data = piece;
            parser.get().body().size = sizeof piece;
            lowest_->expires_after(k_idle_timeout);
            auto [error, bytes] =
                co_await http::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
            if (error == http::error::need_buffer) error = {};
            const std::string_view got(piece, sizeof piece - parser.get().body().size);
            if (is_stream) {
                for (const auto& event : events.feed(got)) on_event(event, status);
            } else if (plain_body.size() < k_max_error_body) {
                plain_body.append(got.substr(0, k_max_error_body - plain_body.size()));
            }
            if (error) {
                if (error != http::error::end_of_stream && !done_)
                    fail("connection lost: " + error.message());
                break;
            }
        }
        if (!is_stream) fail(describe_plain_error(status, plain_body), static_cast<int>(status));
    }

    static std::string describe_plain_error(unsigned status, const std::string& body) {
        boost::system::error_code ec;
        const auto value = json::parse(body, ec);
        if (!ec && value.is_object()) {
            const auto& object = value.get_object();
            if (const auto* text = string_field(object, "error")) return std::string(*text);
            if (const auto* inner = object.if_contains("error"); inner && inner->is_object()) {
                if (const auto* text = string_field(inner->get_object(), "message"))
                    return std::string(*text);
            }
        }
        std::string text = "HTTP " + std::to_string(status);
        if (!body.empty()) text += ": " + body.substr(0, 500);
        return text;
    }

    void on_event(const sse_event& event, unsigned status) {
        if (event.is_done()) {
            done_seen_ = true;
            return;
        }
        boost::system::error_code ec;
        const auto value = json::parse(event.data, ec);
        if (ec || !value.is_object()) return;  // not ours to interpret; the reference client skips it too
        const auto& object = value.get_object();
        if (const auto* id = string_field(object, "session_id"); id && !id->empty()) session_id_ = *id;
        if (const auto* error = object.if_contains("error"); error && !error->is_null()) {
            const auto* code = object.if_contains("code");
            const int number =
                code && code->is_int64() ? static_cast<int>(code->get_int64()) : static_cast<int>(status);
            fail(error->is_string() ? std::string(error->get_string()) : json::serialize(*error), number);
            return;
        }
        if (const auto* content = string_field(object, "content"); content && !content->empty()) {
            std::cout.write(content->data(), static_cast<std::streamsize>(content->size()));
            std::cout.flush();
            printed_text_ = true;
            ends_with_newline_ = content->back() == '\n';
        }
        if (const auto* done = object.if_contains("done"); done && done->is_bool() && done->get_bool()) {
            done_ = true;
            if (const auto* text = string_field(object, "model_used")) model_used_ = *text;
            if (const auto* text = string_field(object, "model")) model_ = *text;
            if (const auto* text = string_field(object, "finish_reason")) finish_reason_ = *text;
            if (const auto* route = object.if_contains("route"); route && route->is_object()) {
                if (const auto* text = string_field(route->get_object(), "reason")) route_reason_ = *text;
            }
        }
    }

    net::io_context& io_;
    chat_options options_;
    url target_;
    tcp::resolver resolver_;
    beast::tcp_stream* lowest_ = nullptr;  // the connection in use, for interrupt()

    bool interrupted_ = false;
    bool done_ = false;       // the final event (done: true) arrived
    bool done_seen_ = false;  // data: [DONE] arrived
    bool printed_text_ = false;
    bool ends_with_newline_ = true;
    std::string error_;
    int error_code_ = 0;
    std::string session_id_, model_used_, model_, route_reason_, finish_reason_;
};

int run_chat(chat_options options) {
    if (options.key.empty()) {
        std::cerr << "sluice chat: no API key: pass --key or set SLUICE_API_KEY\n";
        return k_exit_usage;
    }
    std::string url_error;
    auto target = parse_url(options.url, &url_error);
    if (!target) {
        std::cerr << "sluice chat: bad --url " << options.url << ": " << url_error << "\n";
        return k_exit_usage;
    }
    if (options.words.size() == 1 && options.words[0] == "-") {
        options.words.assign(1, std::string(std::istreambuf_iterator<char>(std::cin), {}));
    }

    net::io_context io;
    chat_client client(io, std::move(options), std::move(*target));
    net::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&client](const boost::system::error_code& error, int) {
        if (!error) client.interrupt();
    });
    net::co_spawn(io, client.run(), [&signals](const std::exception_ptr& failure) {
        signals.cancel();
        if (failure) std::rethrow_exception(failure);
    });
    io.run();
    return client.finish_and_report();
}

}  // namespace

void add_chat_command(CLI::App& app) {
    auto options = std::make_shared<chat_options>();
    options->url = env_or("SLUICE_URL", "http://127.0.0.1:8080");
    options->key = env_or("SLUICE_API_KEY", "");

    auto* chat = app.add_subcommand("chat", "Chat with a running sluice; the answer streams to the terminal");
    chat->add_option("--url", options->url, "sluice's address (env SLUICE_URL)")->capture_default_str();
    chat->add_option("--key", options->key, "API key (env SLUICE_API_KEY)");
    chat->add_option("--session", options->session, "Continue this session (its id is printed at the end)");
    chat->add_option("--model-type", options->model_type, "auto, local_small (local) or cloud_large (cloud)")
        ->transform(
            CLI::CheckedTransformer(std::map<std::string, std::string>{{"auto", "auto"},
                                                                       {"local", "local_small"},
                                                                       {"local_small", "local_small"},
                                                                       {"cloud", "cloud_large"},
                                                                       {"cloud_large", "cloud_large"}}))
        ->option_text("auto|local_small|cloud_large (default auto)");
    chat->add_option("--model", options->model, "A configured model's name (preferred_model)");
    chat->add_option("--max-tokens", options->max_tokens, "Longest answer, in tokens")
        ->check(CLI::PositiveNumber);
    chat->add_option("--temperature", options->temperature, "0 to 2")->check(CLI::Range(0.0, 2.0));
    chat->add_option("MESSAGE", options->words, "What to say (`-` reads it from stdin)")->required();
    chat->callback([options] {
        const int code = run_chat(*options);
        if (code != 0) throw CLI::RuntimeError(code);
    });
}

}  // namespace sluice
