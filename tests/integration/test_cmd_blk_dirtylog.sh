#!/usr/bin/env bash
# vio blk bench --dirty-log (issue 10: measuring the cost of dirty-page
# logging): the frontend hands `vio serve blk` a dirty log (SET_LOG_BASE)
# and turns VHOST_F_LOG_ALL on; the bench then reports how many pages the
# backend marked.
#
#   test_cmd_blk_dirtylog.sh VIO
#
# 1. randread with --dirty-log: "dirty log: N pages marked" with N > 0
#    (the backend writes the read data and the used ring into the
#    frontend's memory), text and --json (dirty_pages > 0).
# 2. randwrite with --dirty-log: N > 0 (used ring, status bytes).
# 3. without --dirty-log: no dirty log line, no dirty_pages key.
# 4. --dirty-log with --image: usage error (exit 2).
# 5. --reconnect (below).
#
# Every process is started here and ended by its PID; the socket and the
# image live in one temp dir.  Exit: 0 pass, 1 fail.
set -euo pipefail

vio=${1:?usage: test_cmd_blk_dirtylog.sh VIO}
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/vio-blk-dlog.XXXXXX")
img=$tmp/disk.img
pid= rpid= bpid=
cleanup() {
	local rc=$? p
	for p in $pid $rpid $bpid; do
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
"$vio" serve blk --socket "$tmp/s.sock" --image "$img" \
	--pidfile "$tmp/s.pid" 2>>"$tmp/s.log" &
pid=$!
# the pidfile is written once the socket accepts connections
deadline=$((SECONDS + 10))
while [ ! -s "$tmp/s.pid" ]; do
	if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
		echo "server did not start: $(tail -n 5 "$tmp/s.log")" >&2
		exit 1
	fi
	sleep 0.02
done

# marked RW: the pages the text report says the log marked, or "none"
marked() {
	local out=$tmp/out.txt
	if ! "$vio" blk --socket "$tmp/s.sock" bench --rw "$1" --iodepth 32 \
		--time 1s "${@:2}" >"$out" 2>"$tmp/err"; then
		echo "bench failed: $(head -c 300 "$tmp/err")" >&2
		echo error
		return
	fi
	sed -n 's/^  dirty log: \([0-9]*\) pages marked$/\1/p' "$out" |
		grep . || echo none
}

for rw in randread randwrite; do
	n=$(marked $rw --dirty-log)
	if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ]; then
		ok "$rw --dirty-log: $n pages marked"
	else
		fail "$rw --dirty-log: marked '$n', expected > 0"
	fi
	n=$(marked $rw)
	if [ "$n" = none ]; then
		ok "$rw without --dirty-log: no dirty log"
	else
		fail "$rw without --dirty-log: marked '$n', expected none"
	fi
done

if "$vio" blk --socket "$tmp/s.sock" bench --time 500ms --dirty-log --json \
	>"$tmp/out.json" 2>"$tmp/err"; then
	n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("dirty_pages", "none"))' "$tmp/out.json")
	if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ]; then
		ok "--json: dirty_pages $n"
	else
		fail "--json: dirty_pages '$n', expected > 0"
	fi
else
	fail "--json bench failed: $(head -c 300 "$tmp/err")"
fi
if "$vio" blk --socket "$tmp/s.sock" bench --time 500ms --json \
	>"$tmp/out.json" 2>"$tmp/err" &&
	python3 -c 'import json,sys; sys.exit("dirty_pages" in json.load(open(sys.argv[1])))' "$tmp/out.json"; then
	ok "--json without --dirty-log: no dirty_pages"
else
	fail "--json without --dirty-log: $(head -c 300 "$tmp/err" "$tmp/out.json")"
fi

# 5. --reconnect: the log and LOG_ALL are replayed to a new backend.  The
#    first server is killed once it took the log; the second must take it.
serve2() {
	VIO_LOG=info "$vio" serve blk --socket "$tmp/r.sock" --image "$img" \
		--pidfile "$tmp/r$1.pid" 2>"$tmp/r$1.log" &
	rpid=$!
	local deadline=$((SECONDS + 10))
	while [ ! -s "$tmp/r$1.pid" ]; do
		if ! kill -0 "$rpid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			echo "server r$1 did not start" >&2
			exit 1
		fi
		sleep 0.02
	done
}
serve2 1
rpid1=$rpid
"$vio" blk --socket "$tmp/r.sock" --reconnect=10 bench --rw randwrite \
	--time 3s --dirty-log >"$tmp/rout" 2>"$tmp/rerr" &
bpid=$!
deadline=$((SECONDS + 10))
while ! grep -q "dirty log:" "$tmp/r1.log" && [ $SECONDS -lt $deadline ]; do
	sleep 0.02
done
kill -KILL "$rpid1"
wait "$rpid1" 2>/dev/null || true
serve2 2
rc=0
wait "$bpid" || rc=$?
if [ "$rc" -eq 0 ] && grep -q "dirty log: [1-9][0-9]* pages marked" "$tmp/rout" &&
	grep -q "dirty log:" "$tmp/r2.log"; then
	ok "--reconnect: the new backend took the log: $(grep 'dirty log' "$tmp/r2.log")"
else
	fail "--reconnect: exit $rc, $(cat "$tmp/rout" "$tmp/rerr" "$tmp/r2.log" | head -c 600)"
fi
kill -TERM "$rpid" 2>/dev/null || true
wait "$rpid" 2>/dev/null || true

rc=0
"$vio" blk --image "$img" bench --time 500ms --dirty-log >/dev/null \
	2>"$tmp/err" || rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "--dirty-log needs --socket" "$tmp/err"; then
	ok "--dirty-log with --image: usage error"
else
	fail "--dirty-log with --image: exit $rc ($(head -c 200 "$tmp/err"))"
fi

if ! kill -0 "$pid" 2>/dev/null; then
	fail "the server died: $(tail -n 5 "$tmp/s.log")"
fi
[ "$fails" -eq 0 ] || exit 1
echo "all passed"
