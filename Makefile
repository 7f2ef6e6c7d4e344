# Thin wrapper over Meson.  `make` builds build/vio; `make demo` runs vio's
# main job; `make check` runs every test (plain, ASan+UBSan, fuzz replay).
BUILD ?= build
MESON_OPTS ?= -Db_lto=true

.PHONY: all deps demo check bench bench-guest bench-driver bench-net clean format

all: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

demo: all
	@scripts/deps-guest.sh
	scripts/demo.sh $(BUILD)

check: deps
	@scripts/deps-guest.sh
	scripts/check.sh

bench: all
	$(BUILD)/bench/ring

bench-driver: all
	bench/blk-driver

bench-net: all
	bench/net --vio $(BUILD)/vio

bench-guest: all
	@scripts/deps-guest.sh
	bench/blk-guest

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-check build-asan build-fuzz
