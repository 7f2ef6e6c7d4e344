#!/usr/bin/env bash
# vio serve: command-line errors are clear and exit 2 (usage) or 1 (work),
# a socket in use is refused, SIGTERM and SIGINT end it cleanly with the
# socket file removed, --size creates the image.
set -uo pipefail
vio=$(realpath "${1:?usage: test_cmd_serve.sh VIO}")
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
wait_sock() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	return 1
}
cd "$tmp"
expect help 0 '' -- serve --help
expect no-type 2 'which device' -- serve --socket s
expect bad-type 2 "unknown device type 'net'" -- serve net --socket s
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
"$vio" serve blk --socket "$tmp/a.sock" --image new.img --size 4M 2>serve1.log &
pids+=($!)
checks=$((checks + 1))
if wait_sock "$tmp/a.sock" && [ "$(stat -c %s new.img)" = 4194304 ] &&
	[ "$(stat -c %a a.sock)" = 600 ]; then
	echo "ok   create: new.img 4 MiB, socket mode 600"
else
	echo "FAIL create"; fails=$((fails + 1))
fi
expect in-use 1 'in use by another process' -- serve blk --socket "$tmp/a.sock" --image new.img
for sig in TERM INT; do
	[ "$sig" = INT ] && {
		"$vio" serve blk --socket "$tmp/a.sock" --image new.img 2>serve1.log &
		pids+=($!)
		wait_sock "$tmp/a.sock"
	}
	checks=$((checks + 1))
	kill -"$sig" "${pids[-1]}"
	rc=0
	timeout 10 tail --pid="${pids[-1]}" -f /dev/null || rc=$?
	wait "${pids[-1]}"; rc=$?
	if [ "$rc" = 0 ] && [ ! -e "$tmp/a.sock" ] && grep -q 'exiting' serve1.log; then
		echo "ok   SIG$sig: exit 0, socket removed"
	else
		echo "FAIL SIG$sig: exit $rc, $(ls "$tmp"), $(cat serve1.log)"
		fails=$((fails + 1))
	fi
done
echo "cmd_serve: $checks checks, $fails failed"
[ "$fails" = 0 ]
