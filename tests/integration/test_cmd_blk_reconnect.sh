#!/usr/bin/env bash
# `vio blk --reconnect`: vio's driver survives its backend dying
# (issue 8 item 6).
#
#   test_cmd_blk_reconnect.sh VIO
#
# `vio serve blk` on an image in tmpfs; `vio blk --socket S --reconnect=10
# verify --passes N --iodepth 16` writes a pattern, flushes, reads back
# and checks every byte, pass after pass, 16 requests in flight, while
# the test kills the server with SIGKILL twice at random moments (once
# I/O runs) and starts it again on the same socket.  The client must
# finish with exit 0 (no I/O error, every byte verified) and say twice
# that the backend came back.  Cases: a server offering packed rings
# (with its in-flight region, INFLIGHT_SHMFD, the frontend keeps packed:
# checked with `vio blk info`, and the new server must take the ring over
# from the region: see docs/vhost-user-frontend.md), a server without
# packed (--no-packed: split, the frontend rewrites the ring), two queues, bench (randwrite, iodepth 32;
# and 2 queues on 2 threads), and the roles of the sockets swapped (`vio
# blk --listen`, `vio serve blk --client`).  Without --reconnect the old
# behaviour stays: a kill fails the client with a clear error; with it,
# a backend that does not return within the wait is a clear error too.
#
# Every process is started here and ended by its PID; sockets and images
# live in one temp dir (in /dev/shm when there is one).
#
# Exit: 0 pass, 1 fail.
set -euo pipefail

vio=${1:?usage: test_cmd_blk_reconnect.sh VIO}
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/vio-blk-reconnect.XXXXXX")
sock=$tmp/s
img=$tmp/disk.img
spid=
cpid=
cleanup() {
	local rc=$?
	for p in $spid $cpid; do
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
nserve=0

# start_server EXTRA...: a server on $sock; waits for its pidfile
start_server() {
	nserve=$((nserve + 1))
	local pf=$tmp/pid.$nserve
	"$vio" serve blk --socket "$sock" --image "$img" --pidfile "$pf" \
		"$@" 2>>"$tmp/serve.log" &
	spid=$!
	local deadline=$((SECONDS + 10))
	while [ ! -s "$pf" ]; do
		if ! kill -0 "$spid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			echo "server did not start: $(tail -n 5 "$tmp/serve.log")" >&2
			exit 1
		fi
		sleep 0.02
	done
}

stop_server() {
	[ -n "$spid" ] || return 0
	kill -TERM "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

# kill_server: SIGKILL, reaped
kill_server() {
	kill -KILL "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
}

# a random pause of 0.15..0.55 s: where in the I/O the kill lands
pause() { sleep "0.$((15 + RANDOM % 40))"; }

attached() { grep -c 'frontend attached' "$tmp/serve.log" || true; }

# wait_started N: until the client has done I/O (a verify pass is done,
# or, bench, more than N attaches in the servers' log), bounded: the
# kills are meant for I/O in flight, not for the connect or the probe
wait_started() {
	local deadline=$((SECONDS + 60))
	while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		if grep -q ': ok' "$tmp/out" ||
			{ [ "$2" = bench ] && [ "$(attached)" -gt "$1" ]; }; then
			return 0
		fi
		sleep 0.02
	done
}

# wait_back N: until the client has said N times that the backend came
# back (bounded; the counts are checked at the end)
wait_back() {
	local deadline=$((SECONDS + 30))
	while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		[ "$(grep -c 'backend back' "$tmp/err" || true)" -lt "$1" ] ||
			return 0
		sleep 0.02
	done
}

# wait_client SECS: wait for $cpid (bounded); its exit status in $crc
wait_client() {
	local deadline=$((SECONDS + $1))
	while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		sleep 0.05
	done
	if kill -0 "$cpid" 2>/dev/null; then
		kill -KILL "$cpid" 2>/dev/null || true
		crc=124
	else
		crc=0
	fi
	wait "$cpid" 2>/dev/null || crc=$?
	cpid=
}

# start_client COPTS VERB ARGS...: vio blk --reconnect=10 in the background
start_client() {
	local copts=$1
	shift
	: >"$tmp/out" # empty before wait_started looks at it
	# shellcheck disable=SC2086
	"$vio" blk --socket "$sock" --reconnect=10 $copts "$@" \
		>"$tmp/out" 2>"$tmp/err" &
	cpid=$!
}

# run_case LABEL "SERVER OPTS" "CLIENT GLOBAL OPTS" VERB ARGS...  With
# --client in the server's options the client listens (--listen): it
# starts first and the server connects to it.
run_case() {
	local label=$1 sopts=$2 copts=$3
	shift 3
	local n0
	n0=$(attached)
	if [[ $sopts == *--client* ]]; then
		rm -f "$sock"
		start_client "$copts" "$@"
		local deadline=$((SECONDS + 10))
		while [ ! -S "$sock" ]; do
			if ! kill -0 "$cpid" 2>/dev/null ||
				[ $SECONDS -ge $deadline ]; then
				fail "$label: the client does not listen: $(cat "$tmp/err")"
				wait_client 1
				return
			fi
			sleep 0.02
		done
		# shellcheck disable=SC2086
		start_server $sopts
	else
		# shellcheck disable=SC2086
		start_server $sopts
		start_client "$copts" "$@"
	fi
	wait_started "$n0" "$1"
	for k in 1 2; do
		pause
		if ! kill -0 "$cpid" 2>/dev/null; then
			fail "$label: the client ended before kill $k"
			break
		fi
		kill_server
		# shellcheck disable=SC2086
		start_server $sopts
		# the next kill is for the next connection, not this one's
		# handshake (a loaded machine can make it slow)
		wait_back "$k"
	done
	wait_client 90
	local back
	back=$(grep -c 'backend back' "$tmp/err" || true)
	if [ "$crc" -ne 0 ]; then
		fail "$label: client exit $crc: $(tail -n 5 "$tmp/err")"
	elif [ "$back" -lt 2 ]; then
		fail "$label: $back reconnects, expected 2: $(cat "$tmp/err")"
	else
		ok "$label: $(grep -c ': ok' "$tmp/out" || true) passes ok, $back reconnects, $(grep -ho '[0-9]* requests in flight are redone' "$tmp/err" | awk '{s += $1} END {print s + 0}') requests redone"
	fi
	stop_server
}

# passes enough to outlast the two kills by far (each is 8M each way)
verify=(verify --length 8M --passes 400 --iodepth 16)

# packed: negotiated with --reconnect (the server has INFLIGHT_SHMFD), and
# handed over through the in-flight region at each reconnect
start_server
rc=0
"$vio" blk --socket "$sock" --reconnect=10 info >"$tmp/out" 2>"$tmp/err" || rc=$?
stop_server
if [ "$rc" -ne 0 ] || ! grep -q '^ring .*packed ring' "$tmp/out"; then
	fail "packed: not negotiated with --reconnect (exit $rc): $(grep '^ring' "$tmp/out") $(tail -n 3 "$tmp/err")"
else
	ok "packed: $(grep '^ring' "$tmp/out")"
fi
run_case "verify, packed (in-flight region)" "" "" "${verify[@]}"
handed=$(grep -c 'packed ring handed over' "$tmp/err" || true)
if [ "$handed" -lt 2 ]; then
	fail "packed: the ring was handed over $handed times, expected 2: $(tail -n 5 "$tmp/err")"
else
	ok "packed: handed over $handed times, $(grep -o 'in flight resubmitted' "$tmp/serve.log" | wc -l) resumes with requests in flight"
fi
run_case "bench randwrite iodepth 32, packed" "" "" \
	bench --rw randwrite --bs 4K --iodepth 32 --time 3
run_case "verify, split (server --no-packed)" "--no-packed" "" \
	"${verify[@]}"
run_case "verify, 2 queues" "--queues 2" "" "${verify[@]}"
run_case "bench randwrite iodepth 32, split" "--no-packed" "" \
	bench --rw randwrite --bs 4K --iodepth 32 --time 3
# two I/O threads: each hands its own ring over after a reconnect
run_case "bench randwrite, 2 queues, 2 threads" "--queues 2" "" \
	bench --rw randwrite --bs 4K --iodepth 16 --queues 2 --time 3
# the backend connects to the driver (vio serve --client, vio blk --listen)
run_case "verify, vio serve --client" "--client" "--listen" "${verify[@]}"

# without --reconnect: a kill is a clear error, as before
start_server
: >"$tmp/out"
"$vio" blk --socket "$sock" "${verify[@]}" >"$tmp/out" 2>"$tmp/err" &
cpid=$!
wait_started 0 verify
pause
kill_server
wait_client 30
if [ "$crc" -ne 1 ]; then
	fail "no --reconnect: exit $crc, expected 1: $(tail -n 3 "$tmp/err")"
elif ! grep -Eq 'vhost-user frontend: .*(closed the connection|cannot send|Broken pipe|reset by peer)' "$tmp/err"; then
	fail "no --reconnect: unclear error: $(tail -n 3 "$tmp/err")"
else
	ok "no --reconnect: $(grep -m1 'failed' "$tmp/err" || tail -n 1 "$tmp/err")"
fi

# --reconnect and nothing comes back: the wait ends with a clear error
start_server
: >"$tmp/out"
"$vio" blk --socket "$sock" --reconnect=1 "${verify[@]}" \
	>"$tmp/out" 2>"$tmp/err" &
cpid=$!
wait_started 0 verify
pause
kill_server
wait_client 30
if [ "$crc" -ne 1 ]; then
	fail "nothing returns: exit $crc, expected 1: $(tail -n 3 "$tmp/err")"
elif ! grep -q 'within 1000 ms' "$tmp/err"; then
	fail "nothing returns: unclear error: $(tail -n 3 "$tmp/err")"
else
	ok "nothing returns: $(grep -m1 'within' "$tmp/err")"
fi

# bad option values
rc=0
"$vio" blk --socket "$sock" --reconnect=0 info >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--reconnect=0: exit $rc, expected 2"
rc=0
"$vio" blk --image "$img" --reconnect info >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--image --reconnect: exit $rc, expected 2"

if [ "$fails" -ne 0 ]; then
	echo "--- the servers' log (last lines):" >&2
	tail -n 40 "$tmp/serve.log" >&2
	exit 1
fi
echo "all ok"
