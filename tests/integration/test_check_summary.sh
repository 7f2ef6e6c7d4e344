#!/usr/bin/env bash
# make check's counts (scripts/test-summary.py, used by scripts/check.sh)
# on made-up meson testlogs: a skip (exit 77) is skipped, not passed; a
# pass that printed "SKIP: io_uring ..." is skipped, or failed when the
# machine has io_uring (--io-uring); failures of every kind count; the
# skipped and failed tests are named with the reason; a missing testlog
# is a failure.  Also: the io_uring probe answers (0 or 1, with a line).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sum=$here/../../scripts/test-summary.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-check-summary.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0

# rec NAME RESULT STDOUT: one testlog.json line (STDOUT: JSON-escaped)
rec() {
	printf '{"name": "%s", "result": "%s", "stdout": "%s", "returncode": 0}\n' "$@"
}
{
	rec "vio:unit / ring" OK "ring: 10 checks, 0 failed"
	rec "vio:unit / blk_device" OK 'backend io_uring\nSKIP: io_uring backend unavailable here (got sync)\nblk_device: 5 checks, 0 failed'
	rec "vio:interop / qsd" SKIP "SKIP: qemu-storage-daemon is not installed"
	rec "vio:unit / mem" FAIL "mem: CHECK failed"
	rec "vio:unit / bus" TIMEOUT ""
	rec "vio:unit / model" EXPECTEDFAIL ""
	rec "vio:integration / cmd_blk" OK "test_cmd_blk: all passed"
	rec "vio:interop / mig" FAIL 'mig: seed=1\nmig: FAIL: no tick on the destination\n--- dst.serial (tail)\nMIGCHECK: VERDICT FAIL x'
} >"$tmp/log.json"

# expect WHAT WANT ARGS...: test-summary.py ARGS prints exactly WANT
expect() {
	local what=$1 want=$2 got
	shift 2
	checks=$((checks + 1))
	got=$(python3 "$sum" "$@" 2>&1)
	if [ "$got" = "$want" ]; then
		echo "ok   $what"
	else
		echo "FAIL $what: got"
		echo "$got" | sed 's/^/    | /'
		echo "  want"
		echo "$want" | sed 's/^/    | /'
		fails=$((fails + 1))
	fi
}

expect "no io_uring on the machine: the io_uring skip is a skip" \
	"counts 3 3 2
skip unit/blk_device (SKIP: io_uring backend unavailable here (got sync))
skip interop/qsd (SKIP: qemu-storage-daemon is not installed)
fail unit/mem (FAIL: mem: CHECK failed)
fail unit/bus (TIMEOUT)
fail interop/mig (FAIL: mig: FAIL: no tick on the destination)" "$tmp/log.json"

expect "io_uring on the machine: the io_uring skip fails" \
	"counts 3 4 1
fail unit/blk_device (io_uring works on this machine, but the test skipped it: SKIP: io_uring backend unavailable here (got sync))
skip interop/qsd (SKIP: qemu-storage-daemon is not installed)
fail unit/mem (FAIL: mem: CHECK failed)
fail unit/bus (TIMEOUT)
fail interop/mig (FAIL: mig: FAIL: no tick on the destination)" --io-uring "$tmp/log.json"

rec "vio:unit / ring" OK "fine" >"$tmp/ok.json"
expect "all pass" "counts 1 0 0" --io-uring "$tmp/ok.json"

checks=$((checks + 1))
out=$(python3 "$sum" "$tmp/none.json")
if grep -qx 'counts 0 1 0' <<<"$out" && grep -q '^fail testlog' <<<"$out"; then
	echo "ok   missing testlog: one failure"
else
	echo "FAIL missing testlog: $out"; fails=$((fails + 1))
fi

checks=$((checks + 1))
rc=0
out=$(python3 "$sum" --probe-io-uring) || rc=$?
if { [ "$rc" = 0 ] || [ "$rc" = 1 ]; } && grep -q '^io_uring: ' <<<"$out"; then
	echo "ok   probe: $out"
else
	echo "FAIL probe: exit $rc, $out"; fails=$((fails + 1))
fi

echo "check_summary: $checks checks, $fails failed"
[ "$fails" = 0 ]
