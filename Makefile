# sluice — `make run` and `make test` set everything up on a fresh Debian 12 machine.
SHELL := /bin/bash
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# ccache hits across clones of the repo (CI builds a fresh clone): paths are hashed relative to here.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

APT_PACKAGES := cmake ninja-build ccache g++ pkg-config git npm nodejs \
  libboost1.81-dev libboost-json1.81-dev libssl-dev libsqlite3-dev libhiredis-dev redis-server \
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libmimalloc-dev \
  python3 python3-aiohttp python3-pytest python3-numpy clang-format curl ca-certificates chromium nginx

.PHONY: deps build build-asan build-tsan run test test-asan test-tsan test-fast format format-check tidy bench fuzz soak clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || \
	  { [ $$p = npm ] && command -v npm >/dev/null; } || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "sluice: installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@scripts/fetch-llama.sh
	@if [ -f tests/package.json ] && { [ ! -d tests/node_modules ] || \
	    [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; }; then \
	  echo "sluice: installing test clients from npm"; (cd tests && npm ci --silent --no-audit --no-fund); fi

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON -DSLUICE_BUILD_BENCH=OFF $(CMAKE_FLAGS)

build-asan: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/sluice serve

format-check:
	@files=$$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'bench/*.h'); \
	[ -z "$$files" ] || clang-format --dry-run --Werror $$files

# clang-tidy over the project's sources (.clang-tidy says which checks and why the others are off);
# any finding fails. Not in `make test`: it takes about 10 CPU-minutes.
tidy: build
	run-clang-tidy -p $(BUILD_DIR) -j $(JOBS) -quiet '$(CURDIR)/src/.*\.cpp' > $(BUILD_DIR)/tidy.log 2>&1 || \
	  { grep -E 'warning:|error:' $(BUILD_DIR)/tidy.log | sort -u; exit 1; }

format:
	@git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'bench/*.h' | xargs -r clang-format -i

# Every test through CTest, then the same tests again under AddressSanitizer + UBSan.
test: build format-check
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 900
	$(MAKE) test-asan

test-asan: build-asan
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j 2 --timeout 900

# ThreadSanitizer (not in `make test`: the build alone takes most of an hour on 2 cores): every unit
# test, and the end-to-end suites whose requests cross threads (io threads, the store pool and its
# checkpointer, the inference thread, resumable producers, shutdown). A race report stops the process.
$(TSAN_DIR)/build.ninja:
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TSAN=ON -DSLUICE_BUILD_BENCH=OFF $(CMAKE_FLAGS)

build-tsan: deps $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) -j $(JOBS)

TSAN_E2E := seed_stream resume resume_shared shutdown store_faults multi_instance sessions big_prompts async_log
TSAN_ENV := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp"
empty :=
space := $(empty) $(empty)
test-tsan: build-tsan
	cd $(TSAN_DIR) && $(TSAN_ENV) ctest --output-on-failure -j 2 --timeout 900 -E '^(e2e_|fuzz_)'
	cd $(TSAN_DIR) && $(TSAN_ENV) ctest --output-on-failure -j 2 --timeout 900 \
	  -R '^e2e_test_($(subst $(space),|,$(TSAN_E2E)))$$'

test-fast: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2

bench: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSLUICE_BUILD_BENCH=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)
	bench/run.sh

# libFuzzer (clang) on the parser targets for FUZZ_SECONDS each, starting from the committed corpus.
# In `make test` the same targets replay the corpus plus deterministic mutations under g++.
FUZZ_SECONDS ?= 60
FUZZ_DIR ?= build-fuzz
FUZZ_TARGETS := sse_parser seed_request openai_chat_request anthropic_messages_request responses_request \
  openai_upstream_events \
  anthropic_upstream_events http_head config

# Every libFuzzer target of tests/CMakeLists.txt (SLUICE_FUZZ_TARGETS), built with clang, libFuzzer,
# ASan and UBSan, then run FUZZ_SECONDS each on a copy of its committed corpus (tests/fuzz/README.md).
fuzz: deps
	@dpkg-query -W -f='$${Status}\n' clang libclang-rt-14-dev 2>/dev/null | grep -c 'ok installed' | grep -q 2 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null)
	@[ -f $(FUZZ_DIR)/build.ninja ] || CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_BUILD_BENCH=OFF -DSLUICE_MIMALLOC=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@mkdir -p $(FUZZ_DIR)/artifacts
	for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ_DIR)/corpus-$$t && cp -r tests/fuzz/corpus/$$t $(FUZZ_DIR)/corpus-$$t && \
	  $(FUZZ_DIR)/tests/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_DIR)/corpus-$$t || exit 1; done

# An hour of mixed streams, cancellations, resumes and bad requests against one instance, its RSS and
# open files sampled every 10 s; flat is the pass (bench/soak.py; figures in docs/BENCHMARKS.md).
SOAK_MINUTES ?= 60
soak: build
	/usr/bin/python3 bench/soak.py --binary $(BUILD_DIR)/sluice --minutes $(SOAK_MINUTES) --out $(BUILD_DIR)/soak.json

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
