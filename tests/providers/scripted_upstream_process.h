#pragma once
// Starts tests/tools/scripted_upstream.py (the stand-in for remote clouds) and talks to its control
// endpoints: /_script, /_log, /_reset.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace sluice::testing {

class scripted_upstream_process {
  public:
    scripted_upstream_process() {
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);  // a crashed test must not leave the upstream running
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            std::string script = std::string(SLUICE_TEST_TOOLS_DIR) + "/scripted_upstream.py";
            execl("/usr/bin/python3", "python3", script.c_str(), "--port", "0", static_cast<char*>(nullptr));
            _exit(127);
        }
        close(out[1]);
        stdout_ = fdopen(out[0], "r");
        char line[64] = {};
        if (!stdout_ || !fgets(line, sizeof line, stdout_) || std::sscanf(line, "PORT %d", &port_) != 1)
            throw std::runtime_error("the scripted upstream did not start");
    }

    ~scripted_upstream_process() {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
        if (stdout_) fclose(stdout_);
    }

    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

    void script(const boost::json::object& fields) {
        call(boost::beast::http::verb::post, "/_script", fields);
    }
    void reset() { call(boost::beast::http::verb::post, "/_reset", boost::json::object{}); }
    boost::json::array requests() {
        return boost::json::parse(call(boost::beast::http::verb::get, "/_log", nullptr))
            .at("requests")
            .as_array();
    }

  private:
    std::string call(boost::beast::http::verb method, const std::string& target,
                     const boost::json::value& body) {
        namespace http = boost::beast::http;
        boost::asio::io_context io;
        boost::asio::ip::tcp::socket socket(io);
        socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)});
        http::request<http::string_body> request{method, target, 11};
        request.set(http::field::host, "127.0.0.1");
        if (!body.is_null()) {
            request.set(http::field::content_type, "application/json");
            request.body() = boost::json::serialize(body);
        }
        request.prepare_payload();
        http::write(socket, request);
        boost::beast::flat_buffer buffer;
        http::response<http::string_body> response;
        http::read(socket, buffer, response);
        if (response.result_int() != 200) throw std::runtime_error("scripted upstream: " + response.body());
        return response.body();
    }

    pid_t pid_ = -1;
    FILE* stdout_ = nullptr;
    int port_ = 0;
};

}  // namespace sluice::testing
