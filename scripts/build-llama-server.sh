#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` from the cached source, for the benchmark only
# (bench/llama_vs_server.py compares sluice against it). Same GGML flags as scripts/fetch-llama.sh,
# in a separate build directory; no web UI (nothing is downloaded). Prints the binary's path.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dir="$("$here/fetch-llama.sh" --print-dir)"
"$here/fetch-llama.sh"  # makes sure the source is there
server="$dir/build-server/bin/llama-server"

if [ ! -x "$server" ]; then
  echo "sluice: building llama-server in $dir/build-server (a few minutes)" >&2
  cmake -S "$dir/src" -B "$dir/build-server" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON >"$dir/build-server.configure.log" 2>&1
  cmake --build "$dir/build-server" --target llama-server -j "${JOBS:-2}" >"$dir/build-server.log" 2>&1
fi
echo "$server"
