#!/usr/bin/env bash
# make check: build with warnings as errors and run every test, then the
# same under ASan+UBSan, then the threaded tests (meson suite 'threads':
# the engine, inproc, vhost-user backend and frontend, stress) under
# ThreadSanitizer, where any report fails the test, then replay the fuzz
# corpora with libFuzzer builds.
# Ends with the skipped and failed tests by name, then one summary line:
# "N passed, N failed, N skipped".  A test that skips (exit 77, or a pass
# that printed "SKIP: io_uring ...": it ran without its io_uring part)
# counts as skipped, not passed; and as failed when this machine has
# io_uring (scripts/test-summary.py --probe-io-uring), since then the skip
# hides a build problem (no liburing-dev: scripts/deps.sh installs it).
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
pass=0 fail=0 skip=0
failed_names=() skipped_names=()
uring_flag=()
if python3 scripts/test-summary.py --probe-io-uring; then
	uring_flag=(--io-uring)
fi

test_args=() # extra `meson test` arguments of the next run_suite
run_suite() { # name builddir meson-setup-args...
	local name=$1 dir=$2
	shift 2
	echo "== $name: configure and build ($dir)"
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@" >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; fail=$((fail + 1)); failed_names+=("$name:setup"); return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		tail -50 "$dir.build.log"
		fail=$((fail + 1)); failed_names+=("$name:build"); return
	fi
	echo "== $name: test"
	local json="$dir/meson-logs/testlog.json" line p=0 f=1 s=0
	rm -f "$json"
	meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "${test_args[@]}"
	while IFS= read -r line; do
		case $line in
		"counts "*) read -r _ p f s <<<"$line" ;;
		"fail "*) failed_names+=("$name ${line#fail }") ;;
		"skip "*) skipped_names+=("$name ${line#skip }") ;;
		esac
	done < <(python3 scripts/test-summary.py "${uring_flag[@]}" "$json")
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

# the interop tests boot a Linux guest: build it once, up front (kernel and
# busybox from Debian's archive, cached in build/guest)
export VIO_GUEST_CACHE=${VIO_GUEST_CACHE:-$PWD/build/guest}
echo "== guest: build ($VIO_GUEST_CACHE)"
tests/interop/guest/build-guest.sh "$VIO_GUEST_CACHE" ||
	echo "check: the guest did not build: interop tests will fail" >&2

run_suite plain build-check -Dfio_engine=true
run_suite asan+ubsan build-asan -Dfio_engine=true -Db_sanitize=address,undefined -Db_lundef=false \
	-Dbuildtype=debug
# ThreadSanitizer: a report makes the test exit 66 (and test-summary.py
# fails a pass whose output holds one); the library's threads are the
# engine's workers and the tests' own.  -Wno-tsan: gcc warns that TSan
# does not model atomic_thread_fence (the rings' full barrier before an
# EVENT_IDX check); the ring fields themselves are accessed with atomics,
# which TSan does see.
test_args=(--suite threads)
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=0 exitcode=66 second_deadlock_stack=1} \
	run_suite tsan build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug \
	-Dc_args=-Wno-tsan
test_args=()
CC=clang run_suite fuzz-replay build-fuzz -Dfuzz=true -Db_lundef=false \
	-Dbuildtype=debugoptimized

echo
for n in "${skipped_names[@]}"; do echo "skipped: $n"; done
for n in "${failed_names[@]}"; do echo "failed: $n"; done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
