#!/usr/bin/env bash
# vio serve: command-line errors are clear and exit 2 (usage) or 1 (work),
# a socket in use is refused, SIGTERM and SIGINT end it cleanly with the
# socket file removed, --size creates the image.  Readiness: --pidfile
# appears (holding the server's PID) only once the socket accepts
# connections (30 starts, each connected to the instant the file shows),
# and is gone after SIGTERM; with NOTIFY_SOCKET set (abstract and path),
# READY=1 comes once the socket accepts, STATUS= says what it does and
# STOPPING=1 comes at SIGTERM.
set -uo pipefail
vio=$(realpath "${1:?usage: test_cmd_serve.sh VIO}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-serve-test.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
# expect NAME RC PATTERN -- ARGS...: exit code and a stderr line
expect() {
	local name=$1 rc=$2 pat=$3
	shift 4
	checks=$((checks + 1))
	local out got=0
	out=$(timeout 10 "$vio" "$@" 2>&1 >/dev/null) || got=$?
	if [ "$got" != "$rc" ] || ! grep -qE -- "$pat" <<<"$out"; then
		echo "FAIL $name: exit $got (want $rc), stderr: $out"
		fails=$((fails + 1))
	else
		echo "ok   $name: $(head -n1 <<<"$out")"
	fi
}
# wait_ready PIDFILE PID: the server wrote PIDFILE (it listens), within
# 10 s, and did not die first
wait_ready() {
	local end=$((SECONDS + 10))
	until [ -s "$1" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
cd "$tmp"
expect help 0 '' -- serve --help
expect no-type 2 'which device' -- serve --socket s
expect bad-type 2 "unknown device type 'bogus'" -- serve bogus --socket s
expect no-socket 2 'socket PATH is required' -- serve blk --image i
expect no-image 2 'image FILE is required' -- serve blk --socket s
expect missing-image 1 'image nofile does not exist' -- serve blk --socket s --image nofile
expect bad-size 2 "size '1000'" -- serve blk --socket s --image i --size 1000
expect bad-size-unit 2 "size '12Q'" -- serve blk --socket s --image i --size 12Q
expect bad-queues 2 "queues '0'" -- serve blk --socket s --image i --size 1M --queues 0
expect long-path 1 'too long' -- serve blk --socket "$tmp/$(printf 'x%.0s' $(seq 120))" --image i --size 1M
touch notsock
expect not-a-socket 1 'exists and is not a socket' -- serve blk --socket notsock --image i --size 1M
expect readonly-missing 1 'i.d' -- serve blk --socket s --image i.d --size 1M --readonly
truncate -s 1M small.img
expect size-mismatch 1 'not the 2097152' -- serve blk --socket s --image small.img --size 2M

# --size creates; a second server on the same socket is refused
"$vio" serve blk --socket "$tmp/a.sock" --image new.img --size 4M \
	--pidfile a.pid 2>serve1.log &
pids+=($!)
checks=$((checks + 1))
if wait_ready a.pid $! && [ "$(stat -c %s new.img)" = 4194304 ] &&
	[ "$(stat -c %a a.sock)" = 600 ]; then
	echo "ok   create: new.img 4 MiB, socket mode 600"
else
	echo "FAIL create"; fails=$((fails + 1))
fi
expect in-use 1 'in use by another process' -- serve blk --socket "$tmp/a.sock" --image new.img --pidfile b.pid
checks=$((checks + 1))
if [ -e b.pid ]; then
	echo "FAIL in-use: a server that did not start wrote its pidfile"; fails=$((fails + 1))
else
	echo "ok   in-use: no pidfile"
fi
expect pidfile-dir 1 'nodir/c.pid' -- serve rng --socket "$tmp/c.sock" --pidfile "$tmp/nodir/c.pid"
for sig in TERM INT; do
	[ "$sig" = INT ] && {
		"$vio" serve blk --socket "$tmp/a.sock" --image new.img \
			--pidfile a.pid 2>serve1.log &
		pids+=($!)
		wait_ready a.pid $!
	}
	checks=$((checks + 1))
	kill -"$sig" "${pids[-1]}"
	rc=0
	timeout 10 tail --pid="${pids[-1]}" -f /dev/null || rc=$?
	wait "${pids[-1]}"; rc=$?
	if [ "$rc" = 0 ] && [ ! -e "$tmp/a.sock" ] && [ ! -e a.pid ] &&
		grep -q 'exiting' serve1.log; then
		echo "ok   SIG$sig: exit 0, socket and pidfile removed"
	else
		echo "FAIL SIG$sig: exit $rc, $(ls "$tmp"), $(cat serve1.log)"
		fails=$((fails + 1))
	fi
done
# readiness, checked by a client that connects the instant it shows
for t in "pidfile 30" abstract path; do
	checks=$((checks + 1))
	# shellcheck disable=SC2086
	if out=$(timeout 100 python3 "$here/serve_ready.py" "$vio" "$tmp" $t 2>&1); then
		echo "ok   ready $t: $out"
	else
		echo "FAIL ready $t: $out"; fails=$((fails + 1))
		tail -n 5 ready.log
	fi
done
echo "cmd_serve: $checks checks, $fails failed"
[ "$fails" = 0 ]
