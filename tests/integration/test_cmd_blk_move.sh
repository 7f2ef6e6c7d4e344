#!/usr/bin/env bash
# `vio blk bench --move-to`: vio's driver moves its device from one
# `vio serve blk` process to another while the bench runs (issue 10
# item 4; vhost-user device state transfer, docs/device-state.md).
#
#   test_cmd_blk_move.sh VIO
#
# Two servers on one image (in tmpfs).  Cases:
#   - a known 1 MiB pattern is written through server A; bench randread
#     with --move-to B mid-run: exit 0, no error, the move done, requests
#     completed before and after it; then the pattern reads back
#     through B;
#   - then B -> A under randwrite, and both servers pass `verify`;
#   - the first move with split rings (--no-packed) and with 2 queues;
#   - a destination on an image of another size: the state is refused
#     (capacity), the bench goes on with A to the end and exits 1 with
#     the reason; A still serves;
#   - nothing at the destination: exit 1, clear error, A keeps serving;
#   - usage: --move-to with --image, --move-after without --move-to or
#     past --time are usage errors (exit 2).
#
# Every process is started here and ended by its PID; sockets and images
# live in one temp dir.  Exit: 0 pass, 1 fail.
set -euo pipefail

vio=${1:?usage: test_cmd_blk_move.sh VIO}
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/vio-blk-move.XXXXXX")
img=$tmp/disk.img
pids=
cleanup() {
	local rc=$?
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fails=0
ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

truncate -s 32M "$img"
truncate -s 16M "$tmp/small.img"
head -c 1M /dev/urandom >"$tmp/pattern"

# serve NAME IMAGE EXTRA...: a server on $tmp/NAME.sock; waits for its
# pidfile (written once the socket accepts connections)
serve() {
	local name=$1 image=$2
	shift 2
	local pf=$tmp/$name.pid
	rm -f "$pf"
	"$vio" serve blk --socket "$tmp/$name.sock" --image "$image" \
		--pidfile "$pf" "$@" 2>>"$tmp/$name.log" &
	local pid=$!
	pids="$pids $pid"
	eval "pid_$name=$pid"
	local deadline=$((SECONDS + 10))
	while [ ! -s "$pf" ]; do
		if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			echo "server $name did not start: $(tail -n 5 "$tmp/$name.log")" >&2
			exit 1
		fi
		sleep 0.02
	done
}

unserve() {
	local pid
	eval "pid=\$pid_$1"
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# json_get FILE KEY: a number or true/false from bench's JSON
json_get() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
v=d
for k in sys.argv[2].split("."):
    v=v[k]
print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2"
}

# move_case LABEL SERVE_ARGS BENCH_ARGS [full]: full adds a move back
# under randwrite and verify through both servers
move_case() {
	local label=$1 sargs=$2 bargs=$3 full=${4:-}
	serve a "$img" $sargs
	serve b "$img" $sargs
	"$vio" blk --socket "$tmp/a.sock" write --input "$tmp/pattern" 0 \
		>/dev/null 2>"$tmp/err" || fail "$label: write the pattern: $(cat "$tmp/err")"
	local out=$tmp/bench.json
	# randwrite only past the pattern: --rw randwrite covers the whole
	# device, so the pattern's area is checked with randread
	if "$vio" blk --socket "$tmp/a.sock" $bargs bench --rw randread \
		--iodepth 32 --time 1500ms --move-to "$tmp/b.sock" \
		--move-after 500ms --json >"$out" 2>"$tmp/err"; then
		local done ops before errs
		done=$(json_get "$out" move.done)
		ops=$(json_get "$out" ops)
		before=$(json_get "$out" move.ops_before)
		errs=$(json_get "$out" errors)
		if [ "$done" = true ] && [ "$errs" = 0 ] && [ "$ops" -gt "$before" ] &&
			[ "$before" -gt 0 ]; then
			ok "$label: bench randread moved A -> B mid-run ($before requests before, $ops in all, $(grep -o 'rings stopped for [0-9]* us' "$tmp/err"))"
		else
			fail "$label: bench: done=$done errors=$errs ops=$ops before=$before"
		fi
	else
		fail "$label: bench exited $?: $(cat "$tmp/err")"
	fi
	"$vio" blk --socket "$tmp/b.sock" read 0 1M --output "$tmp/back" \
		2>"$tmp/err" || fail "$label: read through B: $(cat "$tmp/err")"
	if cmp -s "$tmp/pattern" "$tmp/back"; then
		ok "$label: the pattern reads back through B"
	else
		fail "$label: the pattern differs through B"
	fi
	if [ -z "$full" ]; then
		unserve a
		unserve b
		return
	fi
	# B -> A under randwrite, then B and A both verify
	if "$vio" blk --socket "$tmp/b.sock" $bargs bench --rw randwrite \
		--iodepth 32 --time 1s --move-to "$tmp/a.sock" \
		--json >"$out" 2>"$tmp/err" &&
		[ "$(json_get "$out" move.done)" = true ] &&
		[ "$(json_get "$out" errors)" = 0 ]; then
		ok "$label: bench randwrite moved B -> A"
	else
		fail "$label: bench randwrite B -> A: $(cat "$tmp/err")"
	fi
	for s in a b; do
		if "$vio" blk --socket "$tmp/$s.sock" verify --length 4M \
			--iodepth 8 >/dev/null 2>"$tmp/err"; then
			ok "$label: verify through $s after the moves"
		else
			fail "$label: verify through $s: $(cat "$tmp/err")"
		fi
	done
	unserve a
	unserve b
}

move_case "packed" "" "" full
move_case "split" "--no-packed" ""
move_case "2 queues" "--queues 2" "--queues 2"

# a destination that must refuse the state: another capacity
serve a "$img"
serve c "$tmp/small.img"
out=$tmp/bench.json
rc=0
"$vio" blk --socket "$tmp/a.sock" bench --iodepth 16 --time 1500ms \
	--move-to "$tmp/c.sock" --move-after 500ms --json >"$out" \
	2>"$tmp/err" || rc=$?
if [ $rc = 1 ] && grep -q "refused\|failed" "$tmp/err" &&
	grep -q "stays at" "$tmp/err" &&
	grep -q "the source disk has" "$tmp/c.log" &&
	[ "$(json_get "$out" move.done)" = false ] &&
	[ "$(json_get "$out" ops)" -gt "$(json_get "$out" move.ops_before)" ]; then
	ok "refused state (capacity): exit 1, the bench went on with A ($(grep -o 'CHECK_DEVICE_STATE.*' "$tmp/c.log" | head -n 1))"
else
	fail "refused state: rc=$rc, $(cat "$tmp/err"), $(tail -n 3 "$tmp/c.log")"
fi
"$vio" blk --socket "$tmp/a.sock" info >/dev/null 2>"$tmp/err" &&
	ok "A still serves after the refused move" ||
	fail "A after the refused move: $(cat "$tmp/err")"

# nothing at the destination
rc=0
"$vio" blk --socket "$tmp/a.sock" bench --time 600ms \
	--move-to "$tmp/nobody.sock" --move-after 200ms >/dev/null \
	2>"$tmp/err" || rc=$?
if [ $rc = 1 ] && grep -q "nothing listens" "$tmp/err"; then
	ok "nothing at the destination: exit 1, $(grep -o 'nothing listens[^(]*' "$tmp/err")"
else
	fail "nothing at the destination: rc=$rc $(cat "$tmp/err")"
fi
unserve a
unserve c

# usage errors
usage() {
	local rc=0
	"$vio" blk "$@" >/dev/null 2>"$tmp/err" || rc=$?
	if [ $rc = 2 ]; then
		ok "usage error: $(head -n 1 "$tmp/err")"
	else
		fail "expected a usage error (exit 2), got $rc for: $*"
	fi
}
usage --image "$img" bench --move-to "$tmp/x.sock"
usage --socket "$tmp/a.sock" bench --move-after 1s
usage --socket "$tmp/a.sock" bench --time 1s --move-to "$tmp/x" --move-after 2s

[ $fails = 0 ] || {
	echo "$fails failure(s)" >&2
	exit 1
}
echo "all passed"
