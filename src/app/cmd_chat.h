#pragma once
#include <CLI/CLI.hpp>

namespace sluice {

// `sluice chat [--url URL] [--key KEY] [--session ID] [--model-type T] [--model NAME] MESSAGE...`
// Posts to POST /api/v1/chat/stream of a running sluice and prints the answer as it streams in;
// the session id goes to stderr at the end, so `--session` can continue the conversation.
// Exit codes: 0 answered, 1 the server or the connection failed (the reason on stderr),
// 2 bad usage (no key), 130 interrupted by Ctrl-C (the request is closed, which cancels it).
void add_chat_command(CLI::App& app);

}  // namespace sluice
