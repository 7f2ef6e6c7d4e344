#!/usr/bin/env bash
# make check: build with warnings as errors and run every test, then the
# same under ASan+UBSan, then replay the fuzz corpora with libFuzzer builds.
# Ends with one summary line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
pass=0 fail=0
failed_names=()

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
	meson test -C "$dir" --num-processes "$jobs" --print-errorlogs
	local json="$dir/meson-logs/testlog.json" p f
	p=$(grep -c '"result": "OK"' "$json" 2>/dev/null); p=${p:-0}
	f=$(grep -Ec '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$json" 2>/dev/null); f=${f:-0}
	pass=$((pass + p)); fail=$((fail + f))
	[ "$f" = 0 ] || failed_names+=("$name")
}

# the interop tests boot a Linux guest: build it once, up front (kernel and
# busybox from Debian's archive, cached in build/guest)
export VIO_GUEST_CACHE=${VIO_GUEST_CACHE:-$PWD/build/guest}
echo "== guest: build ($VIO_GUEST_CACHE)"
tests/interop/guest/build-guest.sh "$VIO_GUEST_CACHE" ||
	echo "check: the guest did not build: interop tests will fail" >&2

run_suite plain build-check
run_suite asan+ubsan build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dbuildtype=debug
CC=clang run_suite fuzz-replay build-fuzz -Dfuzz=true -Db_lundef=false \
	-Dbuildtype=debugoptimized

echo
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
