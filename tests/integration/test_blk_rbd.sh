#!/usr/bin/env bash
# vio serve blk on a Ceph RBD image (issue 13), through vio's driver
# (vio blk --socket), on a single-node cluster started here
# (tests/interop/ceph_cluster.sh: one monitor, one memstore OSD, no auth):
#  - info: the image's capacity; vio blk verify (pattern, flush, compare)
#    and a random file written; `rbd export` holds exactly what the driver
#    reads back (and the comparison notices one flipped byte);
#  - a snapshot (rbd:POOL/IMAGE@SNAP) is served read-only: the data of the
#    snapshot time, writes refused;
#  - `rbd resize` while served: the new capacity reaches the driver
#    (librbd's update watch -> the config-change path);
#  - the OSD SIGSTOPped: requests fail (IOERR) within --io-timeout, vio
#    keeps serving, and they work again once the OSD runs;
#  - SIGTERM: vio serve exits 0.
# Exits 77 (skip) without ceph-mon/ceph-osd/rbd or if vio was built
# without librbd.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vio=$(realpath "${1:?usage: test_blk_rbd.sh VIO}")
# shellcheck source=../interop/ceph_cluster.sh
. "$here/../interop/ceph_cluster.sh"
if m=$(ceph_cluster_missing); then
	echo "SKIP: $m is not installed (Debian: ceph-mon ceph-osd" \
		"ceph-common); cannot start a Ceph cluster to test RBD" >&2
	exit 77
fi
if "$vio" serve blk --socket /nonexistent/x --image rbd:p/i 2>&1 |
	grep -q "built without"; then
	echo "SKIP: this vio was built without librbd (Debian: librbd-dev)" >&2
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-rbd-test.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
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
fails=0 checks=0
ok() { checks=$((checks + 1)); echo "ok   $1"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $1"; }

# wait_file FILE PID: FILE is non-empty within 60 s, PID alive meanwhile
# (the first connection to the cluster may be slow on a loaded machine)
wait_file() {
	local end=$((SECONDS + 60))
	until [ -s "$1" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.02
	done
}
# serve NAME IMAGE ARGS...: vio serve blk on $tmp/NAME.vu, PID in $srv_pid
serve() {
	local name=$1 image=$2
	shift 2
	rm -f "$name.vpid"
	"$vio" serve blk --socket "$tmp/$name.vu" --image "$image" \
		--pidfile "$tmp/$name.vpid" "$@" 2>"$name.serve.log" &
	srv_pid=$!
	pids+=("$srv_pid")
	wait_file "$name.vpid" "$srv_pid"
}
blk() {
	local name=$1
	shift
	timeout 60 "$vio" blk --socket "$tmp/$name.vu" "$@"
}
capacity() {
	blk "$1" info 2>/dev/null | awk '$1 == "capacity" { print $2 }'
}

size=$((64 << 20))
if ! ceph_cluster_start "$tmp/ceph" --size 64M --pool vio --image disk \
	>cluster.log 2>&1; then
	cat cluster.log >&2
	echo "FAIL: the Ceph cluster did not start" >&2
	exit 1
fi
ok "cluster up: $CEPH_CONF, image $CEPH_POOL/$CEPH_IMAGE"
spec="rbd:$CEPH_POOL/$CEPH_IMAGE:conf=$CEPH_CONF"
rbd() { command rbd -c "$CEPH_CONF" "$@"; }

# ---- served, written, verified, exported ----
if serve main "$spec" --io-timeout 6; then
	ok "vio serve blk --image $spec"
else
	fail "vio serve blk on RBD did not start"
	cat main.serve.log
	exit 1
fi
main_pid=$srv_pid
[ "$(capacity main)" = "$size" ] && ok "capacity $size bytes" ||
	fail "capacity: $(capacity main), expected $size"
head -c 1M /dev/urandom >a.bin
blk main write 1M -i a.bin >/dev/null && ok "1 MiB written at 1 MiB" ||
	fail "write at 1 MiB"
blk main verify --offset 8M --length 8M --seed 5 --iodepth 4 &&
	ok "verify 8 MiB at 8 MiB" || fail "verify 8 MiB at 8 MiB"
blk main read 0 64M -o read.img >/dev/null && ok "64 MiB read back" ||
	fail "read back"
rbd export "$CEPH_POOL/$CEPH_IMAGE" export.img >/dev/null 2>&1 &&
	ok "rbd export" || fail "rbd export"
cmp -s read.img export.img && ok "rbd export = what the driver reads" ||
	fail "rbd export differs from what the driver reads"
cmp -s <(tail -c +$((1048576 + 1)) export.img | head -c 1M) a.bin &&
	ok "the written file is in the export" ||
	fail "the written file is not in the export"
# a comparison that cannot fail proves nothing
printf '\x5a' | dd of=read.img bs=1 seek=$((9 << 20)) conv=notrunc 2>/dev/null
cmp -s read.img export.img && fail "cmp missed a flipped byte" ||
	ok "cmp notices a flipped byte"

# ---- a snapshot: read-only, its data ----
rbd snap create "$CEPH_POOL/$CEPH_IMAGE@s1" >/dev/null 2>&1 &&
	ok "rbd snap create @s1" || fail "rbd snap create"
head -c 1M /dev/urandom >b.bin
blk main write 1M -i b.bin >/dev/null && ok "overwritten after the snapshot" ||
	fail "overwrite after the snapshot"
if serve snap "rbd:$CEPH_POOL/$CEPH_IMAGE@s1:conf=$CEPH_CONF"; then
	blk snap info | grep -q '^read-only *yes' && ok "snapshot served read-only" ||
		fail "snapshot not read-only"
	blk snap read 1M 1M -o snap.bin >/dev/null && cmp -s snap.bin a.bin &&
		ok "snapshot: the data of its time" || fail "snapshot data"
	blk snap write 0 -i b.bin >/dev/null 2>&1 &&
		fail "a write to the snapshot succeeded" ||
		ok "a write to the snapshot fails"
	kill -TERM "$srv_pid"
	wait "$srv_pid"
	rc=$?
	[ "$rc" = 0 ] && ok "snapshot server exits 0 on SIGTERM" ||
		fail "snapshot server exit status $rc"
else
	fail "vio serve on the snapshot did not start"
	cat snap.serve.log
fi
blk main read 1M 1M -o now.bin >/dev/null && cmp -s now.bin b.bin &&
	ok "the image has the new data" || fail "the image lost the new data"

# ---- resize from the cluster ----
rbd resize --size 96M "$CEPH_POOL/$CEPH_IMAGE" >/dev/null 2>&1 &&
	ok "rbd resize to 96 MiB" || fail "rbd resize"
end=$((SECONDS + 30))
until [ "$(capacity main)" = $((96 << 20)) ] || [ "$SECONDS" -gt "$end" ]; do
	sleep 0.1
done
[ "$(capacity main)" = $((96 << 20)) ] &&
	ok "the driver sees 96 MiB (resize event)" ||
	fail "capacity after rbd resize: $(capacity main)"
grep -q "resized" main.serve.log && ok "the resize is logged" ||
	fail "no resize log line"

# ---- the OSD stops: bounded failure, then recovery ----
kill -STOP "$CEPH_OSD_PID"
t0=$SECONDS
blk main read 2M 4096 -o /dev/null >/dev/null 2>err.txt &&
	fail "a read succeeded with the OSD stopped" ||
	ok "a read fails with the OSD stopped"
[ $((SECONDS - t0)) -le 12 ] && ok "... within $((SECONDS - t0)) s (--io-timeout 6)" ||
	fail "the read took $((SECONDS - t0)) s (--io-timeout 6)"
grep -q "Input/output error" err.txt && ok "... as an I/O error" ||
	fail "... not an I/O error: $(cat err.txt)"
grep -q "RBD .* failed" main.serve.log && ok "... logged" ||
	fail "... no log line"
kill -CONT "$CEPH_OSD_PID"
kill -0 "$main_pid" && ok "vio serve still running" || fail "vio serve died"
blk main read 1M 1M -o again.bin >/dev/null && cmp -s again.bin b.bin &&
	ok "reads work again once the OSD runs" || fail "no recovery"

# ---- librbd itself never gives up (rados_osd_op_timeout=0): vio does ----
# (a request stuck at exit leaves librbd's handles to it on purpose: under
# LeakSanitizer, librbd's and librados's memory is not vio's leak)
printf 'leak:librbd.so\nleak:librados.so\nleak:libceph-common.so\n' >lsan.supp
if LSAN_OPTIONS="suppressions=$tmp/lsan.supp:${LSAN_OPTIONS:-}" \
	serve stuck "$spec:rados_osd_op_timeout=0" --io-timeout 3; then
	stuck_pid=$srv_pid
	kill -STOP "$CEPH_OSD_PID"
	t0=$SECONDS
	blk stuck read 2M 4096 -o /dev/null >/dev/null 2>&1 &&
		fail "stuck: a read succeeded with the OSD stopped" ||
		ok "stuck: a read fails with the OSD stopped"
	[ $((SECONDS - t0)) -le 8 ] &&
		ok "... within $((SECONDS - t0)) s (--io-timeout 3)" ||
		fail "stuck: the read took $((SECONDS - t0)) s (--io-timeout 3)"
	grep -q "no answer from librbd" stuck.serve.log &&
		ok "... logged as no answer from librbd" || fail "... no log line"
	kill -CONT "$CEPH_OSD_PID"
	# librbd's late answer is dropped; the slot serves again
	end=$((SECONDS + 30))
	until blk stuck read 1M 1M -o stuck.bin >/dev/null 2>&1 ||
		[ "$SECONDS" -gt "$end" ]; do
		sleep 0.2
	done
	cmp -s stuck.bin b.bin && ok "stuck: reads work again" ||
		fail "stuck: no recovery"
	# requests still in librbd at exit: left to it, no hang
	kill -STOP "$CEPH_OSD_PID"
	blk stuck read 3M 4096 -o /dev/null >/dev/null 2>&1
	kill -TERM "$stuck_pid"
	t0=$SECONDS
	wait "$stuck_pid"
	rc=$?
	kill -CONT "$CEPH_OSD_PID"
	[ "$rc" = 0 ] && [ $((SECONDS - t0)) -le 15 ] &&
		ok "stuck: SIGTERM with a request in librbd: exit 0 in $((SECONDS - t0)) s" ||
		fail "stuck: SIGTERM: status $rc after $((SECONDS - t0)) s"
else
	fail "vio serve (stuck) did not start"
	cat stuck.serve.log
fi

kill -TERM "$main_pid"
wait "$main_pid"; rc=$?
[ "$rc" = 0 ] && ok "vio serve exits 0 on SIGTERM" || fail "vio serve exit status $rc"

echo "$checks checks, $fails failed"
if [ "$fails" -ne 0 ]; then
	echo "--- serve log" >&2
	tail -n 30 main.serve.log >&2
fi
[ "$fails" -eq 0 ]
