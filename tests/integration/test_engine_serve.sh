#!/usr/bin/env bash
# vio serve --threads and --cpus: bad values are refused with a clear
# message and exit 2; a server with two queues on one pinned thread, and
# one busy-polling, serve vio's driver (verify, bench on both queues).
set -uo pipefail
vio=$(realpath "${1:?usage: test_engine_serve.sh VIO}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-engine-serve.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect NAME RC PATTERN -- ARGS...: exit code and a stderr line
expect() {
	local name=$1 rc=$2 pat=$3
	shift 4
	checks=$((checks + 1))
	local out got=0
	out=$(timeout 10 "$vio" "$@" 2>&1 >/dev/null) || got=$?
	if [ "$got" != "$rc" ] || ! grep -qE -- "$pat" <<<"$out"; then
		fail "$name: exit $got (want $rc), stderr: $out"
	else
		echo "ok   $name: $(head -n1 <<<"$out")"
	fi
}
wait_ready() {
	local end=$((SECONDS + 10))
	until [ -s "$1" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
cd "$tmp"
s=(serve blk --socket s --image i --size 1M)
expect threads-0 2 "threads '0': expected 1..64" -- "${s[@]}" --threads 0
expect threads-65 2 "threads '65': expected 1..64" -- "${s[@]}" --threads 65
expect threads-word 2 "threads 'two'" -- "${s[@]}" --threads two
expect threads-none 2 "threads" -- "${s[@]}" --threads
expect cpus-empty 2 "cpus '': expected CPU numbers" -- "${s[@]}" --cpus ''
expect cpus-reversed 2 "cpus '3-1'" -- "${s[@]}" --cpus 3-1
expect cpus-junk 2 "cpus '0,x'" -- "${s[@]}" --cpus 0,x
expect cpus-big 2 "cpus '5000'" -- "${s[@]}" --cpus 5000
expect cpus-offline 1 "CPU 1000" -- "${s[@]}" --cpus 1000
checks=$((checks + 1))
if "$vio" serve --help | grep -q -- '--threads N' &&
	"$vio" serve --help | grep -q -- '--cpus LIST'; then
	echo "ok   help: --threads and --cpus"
else
	fail "help: --threads or --cpus missing"
fi

# serve, then drive: every queue works whatever the grouping
n=0
for opts in "--threads 1 --cpus 0" "--threads 2 --poll" "--cpus 0-0"; do
	n=$((n + 1))
	rm -f p.pid
	# shellcheck disable=SC2086
	"$vio" serve blk --socket "$tmp/s$n.sock" --image "img$n" --size 4M \
		--queues 2 $opts --pidfile p.pid 2>"serve$n.log" &
	pid=$!
	pids+=($pid)
	checks=$((checks + 1))
	if ! wait_ready p.pid $pid; then
		fail "serve $opts: not ready: $(cat "serve$n.log")"
		continue
	fi
	if ! timeout 60 "$vio" blk --socket "$tmp/s$n.sock" verify >"v$n.out" 2>&1; then
		fail "serve $opts: verify: $(cat "v$n.out")"
	elif ! timeout 60 "$vio" blk --socket "$tmp/s$n.sock" bench --queues 2 \
		--iodepth 4 --time 0.3 >"b$n.out" 2>&1; then
		fail "serve $opts: bench: $(cat "b$n.out")"
	else
		echo "ok   serve $opts: verify and a 2-queue bench"
	fi
	kill -TERM $pid
	wait $pid 2>/dev/null
done
echo "engine_serve: $checks checks, $fails failed"
[ "$fails" = 0 ]
