#!/usr/bin/env bash
# A vio restart while the storage keeps the data (issue 13: in-flight
# tracking and reconnect for the network backends).
#
#   test_blk_net_reconnect.sh VIO
#
# `vio serve blk` on an NBD export (nbdkit memory, which outlives it) and
# on a Ceph RBD image (a one-node cluster started here,
# tests/interop/ceph_cluster.sh) is SIGKILLed twice under load from vio's
# driver (`vio blk --reconnect verify --passes N --iodepth 16`: write a
# pattern, flush, read back, compare, pass after pass) and started again
# at the same socket.  The driver must finish with exit 0: every byte of
# every pass verified, and every request completed exactly once (its
# rings refuse a completion for a buffer not in flight, and a lost one
# would hang it: bounded here).  Then the storage itself, read without
# vio serve (in process through libnbd; `rbd export`), must hold exactly
# the last pass's pattern (made again on a local file with the same seed).
#
# RBD: librbd's writeback cache holds writes that vio already acknowledged;
# a killed vio lost them and the next pass read stale data (a mismatch in
# the driver's verify).  vio turns librbd's cache off unless the image
# string asks for it.  A killed vio's exclusive lock stays with its watch
# until the OSD times the watch out (osd_client_watch_timeout, 30 s by
# default): the new vio's first writes wait that long, so --io-timeout
# is 90 here (the wait is measured and printed).
#
# Cases: NBD, packed ring (handed over through the in-flight region); NBD,
# split ring (server --no-packed: the driver rewrites the ring), 2 queues;
# RBD, packed.  Each part skips (alone) without nbdkit / ceph; the test
# exits 77 when both are missing or vio lacks both backends.
#
# Every process is started here and ended by its PID; sockets, images and
# the cluster live in one temp dir.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vio=$(realpath "${1:?usage: test_blk_net_reconnect.sh VIO}")
# shellcheck source=../interop/ceph_cluster.sh
. "$here/../interop/ceph_cluster.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-net-reconnect.XXXXXX")
spid="" cpid="" nbd_pid=""
cleanup() {
	local p
	for p in $cpid $spid $nbd_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	ceph_cluster_stop "$tmp/ceph"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$tmp" || exit 1
fails=0 checks=0 ran=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $*"; }

sock=$tmp/vu
nserve=0
# start_server IMAGE EXTRA...: vio serve blk on $sock (the old socket file
# of a killed one is replaced); waits for its pidfile (60 s: a first
# connection to the cluster may be slow on a loaded machine)
start_server() {
	local image=$1
	shift
	nserve=$((nserve + 1))
	local pf=$tmp/pid.$nserve
	"$vio" serve blk --socket "$sock" --image "$image" --pidfile "$pf" \
		"$@" 2>>serve.log &
	spid=$!
	local end=$((SECONDS + 60))
	until [ -s "$pf" ]; do
		if ! kill -0 "$spid" 2>/dev/null || [ $SECONDS -gt $end ]; then
			echo "vio serve did not start: $(tail -n 5 serve.log)" >&2
			return 1
		fi
		sleep 0.02
	done
}
kill_server() {
	kill -KILL "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=
}
stop_server() {
	[ -n "$spid" ] || return 0
	kill -TERM "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=
}
# a random pause of 0.15..0.55 s: where in the I/O the kill lands
pause() { sleep "0.$((15 + RANDOM % 40))"; }
passes_ok() { grep -c ': ok' out 2>/dev/null || true; }
# wait_passes N SECS: the driver has N verified passes (or ended)
wait_passes() {
	local end=$((SECONDS + $2))
	while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -le $end ]; do
		[ "$(passes_ok)" -lt "$1" ] || return 0
		sleep 0.02
	done
}
# wait_back N SECS: the driver said N times that the backend came back
wait_back() {
	local end=$((SECONDS + $2))
	while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -le $end ]; do
		[ "$(grep -c 'backend back' err || true)" -lt "$1" ] || return 0
		sleep 0.02
	done
}
# wait_client SECS: $cpid's exit status in $crc (124: killed at the bound)
wait_client() {
	local end=$((SECONDS + $1))
	while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -le $end ]; do
		sleep 0.05
	done
	crc=0
	if kill -0 "$cpid" 2>/dev/null; then
		kill -KILL "$cpid" 2>/dev/null
		wait "$cpid" 2>/dev/null
		crc=124
	else
		wait "$cpid" 2>/dev/null || crc=$?
	fi
	cpid=
}
# the longest time between two verified passes (a pass waiting for a new
# server and what it waits for), from the time stamps tsout adds
longest_gap() {
	awk '/: ok/ { if (n++ && $1 - p > m) m = $1 - p; p = $1 }
		END { printf "%.1f", m }' out.ts
}

# run_case LABEL IMAGE "SERVER OPTS" PASSES BACK_SECS: the driver's verify
# (8 MiB, PASSES passes, iodepth 16) while the server is killed twice;
# BACK_SECS bounds how long a new server may take to serve again
run_case() {
	local label=$1 image=$2 sopts=$3 passes=$4 back=$5
	: >out
	: >err
	: >out.ts
	: >serve.log
	# shellcheck disable=SC2086
	start_server "$image" $sopts || { fail "$label: no server"; return; }
	"$vio" blk --socket "$sock" --reconnect=120 verify --length 8M \
		--passes "$passes" --iodepth 16 >out 2>err &
	cpid=$!
	# time stamps for the passes (a reader of the growing file)
	(tail -n +1 -f out --pid "$cpid" 2>/dev/null |
		while read -r l; do echo "$(date +%s.%N) $l"; done >out.ts) &
	local tspid=$!
	# the kills are for I/O under way, not for the connect or the probe
	wait_passes 1 120
	local k
	for k in 1 2; do
		pause
		if ! kill -0 "$cpid" 2>/dev/null; then
			fail "$label: the driver ended before kill $k: $(tail -n 3 err)"
			break
		fi
		kill_server
		# shellcheck disable=SC2086
		start_server "$image" $sopts || break
		wait_back "$k" 60
		# the next kill for I/O of this server, not its handshake
		wait_passes $(($(passes_ok) + 1)) "$back"
	done
	wait_client 300
	wait "$tspid" 2>/dev/null
	local nback redone
	nback=$(grep -c 'backend back' err || true)
	# in flight at the kills: packed, the new server resubmits them from
	# the in-flight region; split, the driver puts them back in the ring
	redone=$(grep -ho '[0-9]* requests in flight \(resubmitted\|are redone\)' \
		serve.log err | awk '{s += $1} END {print s + 0}')
	if [ "$crc" -ne 0 ]; then
		fail "$label: driver exit $crc after $(passes_ok) passes: $(tail -n 4 err)"
	elif [ "$nback" -lt 2 ]; then
		fail "$label: $nback reconnects, expected 2: $(tail -n 4 err)"
	elif [ "$(passes_ok)" != "$passes" ]; then
		fail "$label: $(passes_ok) passes verified of $passes"
	else
		ok "$label: $passes passes verified, $nback restarts, $redone requests in flight redone, longest wait $(longest_gap) s"
	fi
	stop_server
	# the last pass's seed: its pattern is what the storage must hold
	last_seed=$(grep ': ok' out | tail -n 1 | sed -n 's/.*(seed \([0-9]*\)).*/\1/p')
}

# flip FILE: one byte of FILE's first 8 MiB changed (XOR 0xff)
flip() {
	local off=$((RANDOM * 64)) old
	old=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((old ^ 255)))" |
		dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
# expect SEED: expect.img, 8 MiB of verify's pattern for SEED (made by
# the same verify on a local file, in process)
expect() {
	rm -f expect.img
	"$vio" blk --image expect.img --size 8M verify --seed "$1" \
		>/dev/null 2>expect.err
}

# ---- NBD: nbdkit memory outlives the vio serves ----
if ! command -v nbdkit >/dev/null; then
	echo "note: nbdkit is not installed (Debian: nbdkit): NBD part skipped"
elif "$vio" serve blk --socket "$tmp/x" --image "nbd+unix:///?socket=$tmp/none" \
	2>&1 | grep -q "built without"; then
	echo "note: vio was built without libnbd: NBD part skipped"
else
	ran=1
	nbd="nbd+unix:///?socket=$tmp/nbd.sock"
	# -t 1: one thread per connection (nbdkit 1.32 with several aborts,
	# "raw_send_socket: Assertion `sock >= 0' failed", when a client
	# dies while its replies are being sent; multi-conn stays)
	nbdkit -f -t 1 -U "$tmp/nbd.sock" -P "$tmp/nbd.pid" memory 64M 2>nbd.log &
	nbd_pid=$!
	end=$((SECONDS + 15))
	until [ -s nbd.pid ]; do
		if ! kill -0 "$nbd_pid" 2>/dev/null || [ $SECONDS -gt $end ]; then
			fail "nbdkit did not start: $(cat nbd.log)"
			break
		fi
		sleep 0.01
	done
	if [ -s nbd.pid ]; then
		run_case "nbd, packed" "$nbd" "" 300 60
		run_case "nbd, split, 2 queues" "$nbd" "--no-packed --queues 2" 300 60
		# the export itself, read without vio serve
		if [ -n "$last_seed" ] && expect "$last_seed" &&
			timeout 60 "$vio" blk --image "$nbd" read 0 8M -o got.bin \
				>/dev/null 2>read.err &&
			cmp -s expect.img got.bin; then
			ok "nbd: the export holds the last pass's pattern (seed $last_seed)"
		else
			fail "nbd: the export differs from the last pass (seed '$last_seed'): $(cat expect.err read.err 2>/dev/null)"
		fi
		# a comparison that cannot fail proves nothing
		flip got.bin
		cmp -s expect.img got.bin && fail "nbd: cmp missed a flipped byte" ||
			ok "nbd: cmp notices a flipped byte"
	fi
	kill -TERM "$nbd_pid" 2>/dev/null
	wait "$nbd_pid" 2>/dev/null
	nbd_pid=
fi

# ---- RBD: the cluster outlives the vio serves ----
if m=$(ceph_cluster_missing); then
	echo "note: $m is not installed (Debian: ceph-mon ceph-osd ceph-common): RBD part skipped"
elif "$vio" serve blk --socket "$tmp/x" --image rbd:p/i 2>&1 |
	grep -q "built without"; then
	echo "note: vio was built without librbd: RBD part skipped"
elif ! ceph_cluster_start "$tmp/ceph" --size 64M --pool vio --image disk \
	>cluster.log 2>&1; then
	ran=1
	cat cluster.log >&2
	fail "the Ceph cluster did not start"
else
	ran=1
	ok "cluster up: $CEPH_POOL/$CEPH_IMAGE ($(rbd -c "$CEPH_CONF" info \
		"$CEPH_POOL/$CEPH_IMAGE" 2>/dev/null | sed -n 's/.*features: //p'))"
	spec="rbd:$CEPH_POOL/$CEPH_IMAGE:conf=$CEPH_CONF"
	run_case "rbd, packed" "$spec" "--io-timeout 90" 150 120
	if [ -n "$last_seed" ] && expect "$last_seed" &&
		rbd -c "$CEPH_CONF" export "$CEPH_POOL/$CEPH_IMAGE" export.img \
			>/dev/null 2>export.err &&
		cmp -s -n 8388608 expect.img export.img; then
		ok "rbd: rbd export holds the last pass's pattern (seed $last_seed)"
	else
		fail "rbd: rbd export differs from the last pass (seed '$last_seed'): $(cat expect.err export.err 2>/dev/null)"
	fi
	flip export.img
	cmp -s -n 8388608 expect.img export.img &&
		fail "rbd: cmp missed a flipped byte" || ok "rbd: cmp notices a flipped byte"
fi

if [ "$ran" = 0 ]; then
	echo "SKIP: neither NBD (nbdkit, libnbd) nor RBD (ceph, librbd) can run here" >&2
	exit 77
fi
echo "$checks checks, $fails failed"
if [ "$fails" -ne 0 ]; then
	echo "--- the servers' log (last lines)" >&2
	tail -n 30 serve.log >&2
fi
[ "$fails" -eq 0 ]
