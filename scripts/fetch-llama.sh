#!/usr/bin/env bash
# Fetches llama.cpp's source from the npm registry (node-llama-cpp ships it as a git bundle) and
# builds only the llama and ggml libraries, once, into a cache outside the repo.
# Prints nothing and exits fast when the cache is already complete.
set -euo pipefail

# SLUICE_GPU=cuda builds llama.cpp with its CUDA backend (needs nvcc; its own cache folder, so the
# CPU build stays as it is). Unset or "cpu": the CPU build, the default and what CI uses.
NODE_LLAMA_CPP_VERSION="3.22.1"   # the one place the llama.cpp version is pinned
gpu="${SLUICE_GPU:-cpu}"
case "$gpu" in
  cpu) suffix=""; backend_flags=() ;;
  cuda) suffix="-cuda"; backend_flags=(-DGGML_CUDA=ON) ;;
  *) echo "sluice: SLUICE_GPU must be cpu or cuda, not '$gpu'" >&2; exit 2 ;;
esac
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/sluice"
dir="$cache_root/llama.cpp-nlc${NODE_LLAMA_CPP_VERSION}${suffix}"
stamp="$dir/.complete"

if [ "${1:-}" = "--print-dir" ]; then echo "$dir"; exit 0; fi
if [ -f "$stamp" ]; then exit 0; fi
if [ "$gpu" = cuda ] && ! command -v nvcc > /dev/null; then
  echo "sluice: SLUICE_GPU=cuda needs nvcc (the CUDA toolkit) on PATH" >&2; exit 2
fi

echo "sluice: fetching llama.cpp (node-llama-cpp@${NODE_LLAMA_CPP_VERSION}) into $dir" >&2
rm -rf "$dir" && mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-llama-cpp@${NODE_LLAMA_CPP_VERSION}" >/dev/null)
tar -xzf "$work"/node-llama-cpp-*.tgz -C "$work" package/llama/gitRelease.bundle
git clone -q "$work/package/llama/gitRelease.bundle" "$dir/src" 2>/dev/null

jobs=$(nproc)
cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_APP=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_INSTALL_PREFIX="$dir/install" ${backend_flags[@]+"${backend_flags[@]}"} \
  >"$dir/configure.log" 2>&1
cmake --build "$dir/build" --target llama ggml -j "$jobs" >"$dir/build.log" 2>&1
cmake --install "$dir/build" >"$dir/install.log" 2>&1
touch "$stamp"
echo "sluice: llama.cpp ready in $dir" >&2
