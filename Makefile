# mcpmw — two commands do everything on a fresh Debian 12 machine (as root):
#   make demo   install what is missing, build, run the demo end to end
#   make test   install what is missing, build, run every test (release, then ASan, then UBSan)
# Also: make bench, make fuzz, make build, make format, make tidy, make clean.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
JOBS ?= $(shell nproc)

APT_PACKAGES := build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev \
  clang-format clang-tidy liburing-dev libsimdjson-dev libabsl-dev libmimalloc-dev \
  libbenchmark-dev libgtest-dev libgmock-dev libseccomp-dev libssl-dev libre2-dev libhttp-parser-dev procps

.PHONY: all deps deps-apt deps-node deps-bench build demo test test-release test-asan test-ubsan bench \
  fuzz format tidy clean

all: build

deps: deps-apt deps-node

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make: run as root (or install:$$missing)"; exit 1; fi; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Test fixtures: the official MCP SDK and reference server, exact versions from the lock file.
deps-node: deps-apt
	@if [ ! -f tests/integration/node_modules/.package-lock.json ] || \
	   [ tests/integration/package-lock.json -nt tests/integration/node_modules/.package-lock.json ]; then \
	  echo "make: npm ci in tests/integration"; \
	  npm ci --prefix tests/integration --no-audit --no-fund --loglevel=error; \
	fi

# Benchmark fixtures: nginx (the HTTP ceiling) and curl, and the npm gateways the HTTP table
# compares mcpmw with, exact versions from bench/http/package-lock.json.
deps-bench: deps-apt
	@missing=""; command -v nginx >/dev/null 2>&1 || missing="$$missing nginx-light"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make: run as root (or install:$$missing)"; exit 1; fi; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@if [ ! -f bench/http/node_modules/.package-lock.json ] || \
	   [ bench/http/package-lock.json -nt bench/http/node_modules/.package-lock.json ]; then \
	  echo "make: npm ci in bench/http"; \
	  npm ci --prefix bench/http --no-audit --no-fund --loglevel=error; \
	fi

configure-%: deps-apt
	@cmake --preset $* >/dev/null

build: configure-release
	cmake --build --preset release -j $(JOBS)

demo: configure-release
	cmake --build --preset release -j $(JOBS) --target mcpmw
	MCPMW_BIN=$(CURDIR)/build/release/src/app/mcpmw node demo/client.mjs
	MCPMW_BIN=$(CURDIR)/build/release/src/app/mcpmw node demo/scenarios.mjs
	MCPMW_BIN=$(CURDIR)/build/release/src/app/mcpmw node demo/gateway.mjs

test-release: deps configure-release
	cmake --build --preset release -j $(JOBS)
	ctest --preset release -j $(JOBS)

test-asan: deps configure-asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

test-ubsan: deps configure-ubsan
	cmake --build --preset ubsan -j $(JOBS)
	ctest --preset ubsan -j $(JOBS)

test: test-release test-asan test-ubsan
	@echo "make test: release, asan and ubsan suites passed"

bench: build deps-bench
	bench/run_bench.sh build/release

FUZZ_SECONDS ?= 60
fuzz: configure-fuzz
	cmake --build --preset fuzz -j $(JOBS) --target $(patsubst fuzz/%.cc,%,$(wildcard fuzz/*_fuzzer.cc))
	@for t in $$(ls fuzz/*_fuzzer.cc | sed 's|fuzz/||; s|_fuzzer.cc||'); do \
	  mkdir -p build/fuzz/corpus-$$t; cp -n fuzz/corpus/$$t/* build/fuzz/corpus-$$t/ 2>/dev/null || true; \
	  echo "== $$t fuzzer, $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz/$${t}_fuzzer -max_total_time=$(FUZZ_SECONDS) -dict=fuzz/dict/$$t.dict \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-$$t; \
	done

format:
	find src pool tests bench fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

tidy: configure-debug
	find src pool -name '*.cc' | xargs clang-tidy -p build/debug --quiet

clean:
	rm -rf build
