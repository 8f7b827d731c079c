# The front door. Meson + ninja do the work underneath; every target first makes
# sure the Debian packages are there (scripts/deps installs only what is missing).
BUILD ?= build
MESON_OPTS ?=
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps build test test-asan test-nginx test-routes demo bench soak fuzz mutate install clean

all: build

deps:
	@scripts/deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

test: build
	scripts/test

# The unit and end-to-end suites against an ASan+UBSan build (build-asan/).
test-asan: deps
	[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined
	meson compile -C build-asan
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 BUILD=build-asan SKIP_ASAN_PASS=1 scripts/test

# The e2e tests that reach the upstream with tests/e2e/upstream.py behind nginx, over HTTP/2
# then HTTP/1.1 (not part of `make test`: about 6 minutes). See scripts/test-nginx.
test-nginx: build
	BUILD=$(BUILD) scripts/test-nginx

# The e2e suite with a second route added to every exec (issue 21: everything it checks must
# hold with routes configured; not part of `make test`: about 4 minutes).
test-routes: build
	CREDBROKER_E2E_ROUTES=1 CREDBROKER_BUILD=$(CURDIR)/$(BUILD) /usr/bin/python3 -m pytest -q \
		-p no:cacheprovider tests/e2e

demo: build
	tools/demo

# Each libFuzzer harness for FUZZ_SECONDS (default 60) with clang; `make test` only
# replays the committed corpora.
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/fuzz $(FUZZ_SECONDS)

# A maintainer's check, not part of `make test`: each one-line mutation of a security-critical
# line listed in scripts/mutations.txt is built out of tree (build-mutate/) and must fail the
# tests named with it. Fails if one is missed or no longer applies. See scripts/mutate.
mutate: deps
	scripts/mutate

# Benchmarks (not tests: nothing in `make test` depends on timings). See bench/README.md.
bench: build
	BUILD=$(BUILD) bench/run

# The soak (not part of `make test`): a runner under 10 minutes of churn, checked for
# lost requests, memory and fd leaks. See scripts/soak (--quick: 1 minute).
soak: build
	BUILD=$(BUILD) scripts/soak

# credbroker, libcredfd (shared, static, header, pkg-config) and the preload shim.
install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX)
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

clean:
	rm -rf $(BUILD) build-*
