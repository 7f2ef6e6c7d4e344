#!/usr/bin/env bash
# Interop: a real Linux guest (Debian cloud kernel, its own virtio_blk
# driver, under QEMU) uses a disk served by `vio serve blk` over
# vhost-user.
#
#   guest_blk.sh VIO [--queues N] [--packed] [--client] [--nbd] [--rbd]
#                [--guest DIR]
#
# --client: QEMU listens (-chardev socket,server=on) and vio serve connects.
# --nbd: the image file is exported by nbdkit (file plugin, multi-conn) on
# a Unix socket and vio serve serves it as nbd+unix:// (issue 13).
# --rbd: a one-node Ceph cluster of the test's own (ceph_cluster.sh), the
# image file imported as an RBD image (rbd import), served as rbd:POOL/IMAGE;
# after poweroff `rbd export` writes it back to the file the host checks.
#
# 1. the host fills a 64 MiB image with a known pattern (generation 100);
# 2. vio serve blk serves it; QEMU boots with -device vhost-user-blk-pci;
# 3. in the guest: size and queue count as configured, the packed-ring
#    feature bit when asked for, the host's pattern read back, then two
#    passes of write (varied sizes, shuffled offsets) + flush + read back
#    and compare, with two jobs (both queues busy), then discard and
#    write-zeroes read back as zeroes;
# 4. after poweroff: vio serve exits cleanly on SIGTERM, and the host
#    checks every byte of the image file, then flips one byte and checks
#    that the checker notices (a checker that cannot fail proves nothing).
#
# Exit: 0 pass, 1 fail, 77 skip (no QEMU: said loudly).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdir=$here/guest
vio=${1:?usage: guest_blk.sh VIO [--queues N] [--packed] [--guest DIR]}
shift
queues=1 packed=0 client=0 nbd=0 rbd=0
guest=${VIO_GUEST_CACHE:-$(cd "$here/../.." && pwd)/build/guest}
while [ $# -gt 0 ]; do
	case "$1" in
	--queues) queues=$2; shift 2 ;;
	--packed) packed=1; shift ;;
	--client) client=1; shift ;;
	--nbd) nbd=1; shift ;;
	--rbd) rbd=1; shift ;;
	--guest) guest=$2; shift 2 ;;
	*) echo "guest_blk: unknown argument $1" >&2; exit 2 ;;
	esac
done
name="guest_blk(queues=$queues packed=$packed client=$client nbd=$nbd rbd=$rbd)"
seed=$((RANDOM + 1))
size_mib=64

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "$name: SKIP: qemu-system-x86_64 is not installed" \
		"(scripts/deps-guest.sh installs it)" >&2
	exit 77
fi

# one build of the guest at a time (tests run in parallel)
mkdir -p "$(dirname "$guest")"
(
	flock -w 300 9 || { echo "$name: guest build lock timeout" >&2; exit 2; }
	"$gdir/build-guest.sh" "$guest" >/dev/null
) 9>"$(dirname "$guest")/.guest.lock"
bc=$guest/blkcheck

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-blk.XXXXXX")
serve_pid= nbd_pid=
cleanup() {
	local rc=$?
	if [ -n "$nbd_pid" ]; then
		kill -KILL "$nbd_pid" 2>/dev/null || true
		wait "$nbd_pid" 2>/dev/null || true
	fi
	if [ -n "$serve_pid" ]; then
		kill -KILL "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	if [ "$rbd" = 1 ] && declare -F ceph_cluster_stop >/dev/null; then
		ceph_cluster_stop "$tmp/ceph"
	fi
	if [ "$rc" != 0 ] && [ -f "$tmp/serve.log" ]; then
		echo "--- vio serve log" >&2
		tail -n 30 "$tmp/serve.log" >&2
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
	echo "$name: FAIL: $*" >&2
	exit 1
}

img=$tmp/disk.img
truncate -s "${size_mib}M" "$img"
"$bc" "$img" --no-direct --seed "$seed" --fill --gen 100 | tail -n1

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --)
fi
image=$img
if [ "$nbd" = 1 ]; then
	command -v nbdkit >/dev/null ||
		{ echo "$name: SKIP: nbdkit is not installed" >&2; exit 77; }
	nbdkit -f -U "$tmp/nbd.sock" -P "$tmp/nbd.pid" file "$img" \
		2>"$tmp/nbd.log" &
	nbd_pid=$!
	end=$((SECONDS + 15))
	until [ -s "$tmp/nbd.pid" ]; do
		kill -0 "$nbd_pid" 2>/dev/null && [ "$SECONDS" -le "$end" ] ||
			fail "nbdkit did not start: $(cat "$tmp/nbd.log")"
		sleep 0.01
	done
	image="nbd+unix:///?socket=$tmp/nbd.sock"
fi
if [ "$rbd" = 1 ]; then
	# shellcheck source=ceph_cluster.sh
	. "$here/ceph_cluster.sh"
	if m=$(ceph_cluster_missing); then
		echo "$name: SKIP: $m is not installed (Debian: ceph-mon" \
			"ceph-osd ceph-common)" >&2
		exit 77
	fi
	ceph_cluster_start "$tmp/ceph" --size 1M --pool vio --image scratch \
		>"$tmp/cluster.log" 2>&1 ||
		fail "the Ceph cluster did not start: $(tail -n 20 "$tmp/cluster.log")"
	rbd -c "$CEPH_CONF" import "$img" vio/disk >/dev/null 2>&1 ||
		fail "rbd import of the image failed"
	image="rbd:vio/disk:conf=$CEPH_CONF"
fi
start_serve() { # [--client]
	"${reaper[@]}" "$vio" serve blk --socket "$tmp/blk.sock" --image "$image" \
		--queues "$queues" --pidfile "$tmp/serve.pid" "$@" \
		>"$tmp/serve.log" 2>&1 &
	serve_pid=$!
}
# wait_ready: vio serve wrote its pidfile (it accepts connections) within
# 60 s (a first connection to a Ceph cluster may be slow when loaded), and
# did not die first
wait_ready() {
	local end=$((SECONDS + 60))
	until [ -s "$tmp/serve.pid" ]; do
		kill -0 "$serve_pid" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
# wait_sock: QEMU (server=on, wait=on) created its socket
wait_sock() {
	for _ in $(seq 300); do
		[ -S "$tmp/blk.sock" ] && return 0
		[ -z "$serve_pid" ] || kill -0 "$serve_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
if [ "$client" = 0 ]; then
	start_serve
	wait_ready || fail "vio serve did not start"
	chardev="socket,id=c0,path=$tmp/blk.sock"
else
	chardev="socket,id=c0,path=$tmp/blk.sock,server=on,wait=on"
fi

want_packed=$packed
cat >"$tmp/test.sh" <<EOF
set -e
waitdev /dev/vda 15
sectors=\$(cat /sys/block/vda/size)
nq=\$(ls /sys/block/vda/mq | wc -l)
feat=\$(cat /sys/block/vda/device/features)
echo "VIO-SAW: size=\$((sectors * 512)) queues=\$nq features=\$feat"
[ "\$sectors" = $((size_mib * 2048)) ] || { echo "size \$sectors"; exit 1; }
[ "\$nq" = $queues ] || { echo "queues \$nq, want $queues"; exit 1; }
# bit 34: VIRTIO_F_RING_PACKED; bit 32: VERSION_1
[ "\$(echo "\$feat" | cut -c33)" = 1 ] || { echo "no VERSION_1"; exit 1; }
[ "\$(echo "\$feat" | cut -c35)" = $want_packed ] ||
	{ echo "packed bit is not $want_packed"; exit 1; }
blkcheck /dev/vda --seed $seed --verify --gen 100 --jobs 2
blkcheck /dev/vda --seed $seed --passes 2 --jobs 2
# DISCARD punches a hole in the image: the last MiB reads back as zeroes
[ "\$(cat /sys/block/vda/queue/discard_max_bytes)" != 0 ] ||
	{ echo "no discard support"; exit 1; }
last=\$((sectors * 512 - 1048576))
blkdiscard -o \$last -l 1048576 /dev/vda
echo 3 >/proc/sys/vm/drop_caches
dd if=/dev/vda bs=65536 skip=\$((last / 65536)) count=16 2>/dev/null |
	cmp - /dev/zero 2>&1 | grep -q EOF || { echo "discard: not zeroes"; exit 1; }
echo "VIO-SAW: discard ok"
# a last full write from the guest, for the host to check byte by byte
blkcheck /dev/vda --seed $seed --fill --gen 3
EOF

rc=0
"$gdir/run-guest.sh" --guest "$guest" --test "$tmp/test.sh" --timeout 150 \
	-- -chardev "$chardev" \
	-device "vhost-user-blk-pci,chardev=c0,num-queues=$queues,packed=$([ "$packed" = 1 ] && echo on || echo off)" \
	>"$tmp/run.out" 2>&1 &
guest_pid=$!
if [ "$client" = 1 ]; then
	# QEMU listens and waits for us before it boots the guest
	wait_sock || fail "QEMU did not create its socket"
	start_serve --client
fi
wait "$guest_pid" || rc=$?
grep -E 'VIO-SAW|RESULT|run-guest:' "$tmp/run.out" || true
if [ "$rc" != 0 ]; then
	cat "$tmp/run.out" >&2
	[ "$rc" = 77 ] && { echo "$name: SKIP: QEMU cannot run" >&2; exit 77; }
	fail "guest run exit $rc"
fi

# the guest is off.  Client mode: QEMU closed the connection, so vio serve
# waits for it to come back (it connects again, issue 8.5), still running;
# either way SIGTERM must end it cleanly
if [ "$client" = 1 ]; then
	end=$((SECONDS + 10))
	until grep -q 'frontend gone; connecting again' "$tmp/serve.log"; do
		kill -0 "$serve_pid" 2>/dev/null ||
			fail "vio serve --client exited when its frontend left"
		[ "$SECONDS" -le "$end" ] || fail "vio serve --client: no reconnect after its frontend left"
		sleep 0.05
	done
fi
kill -TERM "$serve_pid"
src=0
wait "$serve_pid" || src=$?
serve_pid=
[ "$src" = 0 ] || fail "vio serve exit status $src"
grep -q 'connection 1: frontend attached' "$tmp/serve.log" ||
	fail "no connection log line"
[ "$client" = 1 ] || [ ! -e "$tmp/blk.sock" ] || fail "socket file left behind"
[ ! -e "$tmp/serve.pid" ] || fail "pidfile left behind"
if [ "$rbd" = 1 ]; then
	# what the guest wrote, as the cluster holds it
	rm -f "$img"
	rbd -c "$CEPH_CONF" export vio/disk "$img" >/dev/null 2>&1 ||
		fail "rbd export failed"
fi

"$bc" --verify-image "$img" --seed "$seed" --gen 3 | tail -n1 ||
	fail "the image on the host differs from what the guest wrote"
# negative control: one flipped byte must be caught
off=$(((seed * 7919) % (size_mib * 1048576)))
old=$(od -An -tu1 -j "$off" -N1 "$img" | tr -d ' ')
printf "\\$(printf %03o $((old ^ 255)))" |
	dd of="$img" bs=1 seek="$off" conv=notrunc status=none
[ "$(od -An -tu1 -j "$off" -N1 "$img" | tr -d ' ')" != "$old" ] ||
	fail "could not flip the byte at $off"
if "$bc" --verify-image "$img" --seed "$seed" --gen 3 >/dev/null 2>&1; then
	fail "checker missed a flipped byte at $off"
fi
echo "$name: PASS"
