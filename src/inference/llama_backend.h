#pragma once
// llama.cpp's process-wide set-up: the backend is initialised once, and its log goes through spdlog
// (debug for chatter, warn/error as such) instead of straight to stderr.
namespace sluice {

void ensure_llama_backend();

}  // namespace sluice
