#!/usr/bin/env bash
# The busy-mode verdict of the migration test (tests/interop/migspan.py) on
# made-up pairs of serial logs: the cases a real run produces, where the
# source's log stops at any byte, and the failures it must report.  Three
# of the passing cases are races that the verdict of 28fb5e2, which read
# the pass from the ticks' p=, failed: a tick showing pass P after "pass P
# done" (twice), or P+1 before "pass P+1 begins".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
span=$here/../interop/migspan.py
# Debian's python3 when there: a version manager's shim on PATH costs
# ~0.5 s a call here, and this test makes 16
py=/usr/bin/python3
[ -x "$py" ] || py=python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-migspan.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0

# t N P R W [IR IW]: one tick line, as the guest's console carries it
t() { printf 'MIGCHECK: T n=%s p=%s io=%s/%s inflight=%s/%s\r\n' "$1" "$2" "$3" "$4" "${5:-0}" "${6:-0}"; }
b() { printf 'MIGCHECK: pass %s begins seed=%s\r\n' "$1" "$((100 + $1))"; }
d() { printf 'MIGCHECK: pass %s done\r\n' "$1"; }

# case NAME WANT_RC WANT_LINE: src and dst from $tmp/src, $tmp/dst
case_() {
	local what=$1 want_rc=$2 want=$3 rc=0 out
	checks=$((checks + 1))
	out=$("$py" "$span" "$tmp/src" "$tmp/dst" 2>&1) || rc=$?
	if [ "$rc" = "$want_rc" ] && grep -qF -- "$want" <<<"$out"; then
		echo "ok   $what"
	else
		echo "FAIL $what: exit $rc (want $want_rc), want a line with '$want':"
		sed 's/^/    | /' <<<"$out"
		fails=$((fails + 1))
	fi
}

# the pass under way spans the switch-over
{ b 7; t 9 7 90 40; d 7; b 8; t 10 8 100 50 1 0; } >"$tmp/src"
{ t 11 8 101 50 1 0; t 12 8 110 50; t 13 8 120 50; d 8; b 9; t 14 9 120 60; d 9; } >"$tmp/dst"
case_ "spanned" 0 "pass 8 spanned the switch-over: ticks 10..11: 1 reads and 0 writes completed in between (to tick 13: 20), in flight (reads/writes) 1/0 before, 1/0 after"

# race: the ticker read p=8 before "pass 8 done", printed after it
{ b 8; t 10 8 100 50; d 8; t 11 8 110 50; } >"$tmp/src"
{ t 12 8 110 50; b 9; t 13 9 110 55; t 14 9 110 60; d 9; } >"$tmp/dst"
case_ "a tick says p=8 after 'pass 8 done' (stop between passes)" 0 \
	"the switch-over fell between passes 8 and 9"

# race: "pass 8 done" is the source's last line; the destination's first
# tick was read before pass.cur said 9
{ b 8; t 10 8 100 50; d 8; } >"$tmp/src"
{ t 11 8 110 50; b 9; t 13 9 110 55; t 14 9 110 60; d 9; } >"$tmp/dst"
case_ "'pass 8 done' last on the source, p=8 on the destination" 0 \
	"the switch-over fell between passes 8 and 9"

# race: pass.cur says 9 before "pass 9 begins" reached the console
{ b 8; t 10 8 100 50; d 8; t 11 9 110 50; } >"$tmp/src"
{ b 9; t 12 9 110 52; t 14 9 110 60; d 9; } >"$tmp/dst"
case_ "a tick says p=9 before 'pass 9 begins'" 0 \
	"the switch-over fell between passes 8 and 9"

# the stop cut "pass 8 done" in two: pass 8 had ended on the source
{ b 8; t 10 8 100 50; printf 'MIGCHECK: pass 8 do'; } >"$tmp/src"
{ printf 'ne\r\n'; b 9; t 11 9 100 51; t 13 9 100 60; d 9; } >"$tmp/dst"
case_ "'pass 8 done' cut by the stop" 0 "the switch-over fell between passes 8 and 9"

# the stop cut "pass 9 begins": 9 did not begin on the source
{ b 8; d 8; t 10 8 100 50; printf 'MIGCHECK: pass 9 beg'; } >"$tmp/src"
{ printf 'ins seed=109\r\n'; t 11 9 100 51; t 13 9 100 60; d 9; } >"$tmp/dst"
case_ "'pass 9 begins' cut by the stop" 0 "the switch-over fell between passes 8 and 9"

# a tick cut by the stop counts on neither side
{ b 8; t 10 8 100 50; printf 'MIGCHECK: T n=11 p=8 io=105/5'; } >"$tmp/src"
{ printf '0 inflight=0/0\r\n'; t 12 8 106 50; t 13 8 107 50; d 8; b 9; d 9; } >"$tmp/dst"
case_ "a tick cut by the stop" 0 "ticks 10..12: 6 reads and 0 writes"

# failures
{ b 8; t 10 8 100 50; } >"$tmp/src"
{ t 11 8 100 51; t 13 8 100 52; } >"$tmp/dst"
case_ "the pass under way never ends" 1 \
	"FAIL: pass 8 (under way at the switch-over) did not end on the destination"
{ b 8; t 10 8 100 50; d 8; } >"$tmp/src"
{ t 11 8 100 50; t 13 8 100 50; b 9; t 14 9 100 51; d 9; } >"$tmp/dst"
case_ "no request completes for 3 ticks" 1 \
	"FAIL: no request completed from tick 10 (source) to tick 13 (destination)"
{ b 8; t 10 8 100 50; d 8; } >"$tmp/src"
{ t 11 8 100 51; t 13 8 100 52; b 9; t 14 9 100 53; } >"$tmp/dst"
case_ "the next pass never ends" 1 \
	"FAIL: pass 8 ended on the source and pass 9 did not end on the destination"
{ t 1 '' 0 0; t 2 '' 0 1; } >"$tmp/src"
{ t 3 '' 0 2; t 5 '' 0 3; } >"$tmp/dst"
case_ "no pass on the source" 1 "FAIL: no pass began on the source"
{ b 8; t 10 8 100 50; } >"$tmp/src"
{ d 8; } >"$tmp/dst"
case_ "no tick on the destination" 1 "FAIL: no tick on the destination's console"
{ b 8; t 10 8 100 50; } >"$tmp/src"
{ t 11 8 100 51; t 12 8 100 52; d 8; } >"$tmp/dst"
case_ "the destination stops ticking" 1 "FAIL: no tick on the destination's console 3 ticks after 10"
: >"$tmp/src"
case_ "an empty source log" 1 "FAIL: no tick on the source's console"

checks=$((checks + 1))
rc=0
"$py" "$span" "$tmp/none" "$tmp/dst" >/dev/null 2>&1 || rc=$?
if [ "$rc" = 2 ]; then echo "ok   a missing log: exit 2"; else
	echo "FAIL a missing log: exit $rc"; fails=$((fails + 1))
fi

echo "migspan: $checks checks, $fails failed"
[ "$fails" = 0 ]
