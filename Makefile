# The front door. Meson + ninja do the work underneath; every target first makes
# sure the Debian packages are there (scripts/deps installs only what is missing).
BUILD ?= build
MESON_OPTS ?=

.PHONY: all deps build test demo clean

all: build

deps:
	@scripts/deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

test: build
	scripts/test

demo: build
	tools/demo

clean:
	rm -rf $(BUILD) build-*
