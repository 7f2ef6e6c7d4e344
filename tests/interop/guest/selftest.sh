#!/usr/bin/env bash
# Prove the guest harness against QEMU's built-in virtio-blk (a raw file).
# See docs/guest-harness.md.
#
# 1. build-guest.sh (skipped when up to date)
# 2. a 64 MiB raw image; the host fills it with generation 100
# 3. the guest verifies generation 100 (host-written data, read path), then
#    runs 2 write/flush/read-back passes with 2 jobs (2 queues)
# 4. after poweroff the host verifies generation 2 in the image
#
# Usage: selftest.sh [--backend qemu|qsd] [GUESTDIR]
#   GUESTDIR defaults to ${VIO_GUEST_CACHE:-$(pwd)/build/guest}.
#   --backend qemu (default): QEMU's built-in virtio-blk-pci on the file.
#   --backend qsd: qemu-storage-daemon serves the file as vhost-user-blk and
#     QEMU uses vhost-user-blk-pci: the reference for vio's own backend,
#     which later takes qsd's place with the same QEMU arguments.
# Environment: SEED (default 1), TIMEOUT (default 240), KEEP=1, ACCEL.
# Exit status: 0 pass, 1 fail, 2 harness error, 77 skip (no QEMU).
# Commas inside QEMU option values are intended; cleanup runs from a trap.
# shellcheck disable=SC2054,SC2317,SC2015
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
backend=qemu
if [ "${1:-}" = --backend ]; then
	backend=${2:?--backend qemu|qsd}
	shift 2
fi
case "$backend" in qemu | qsd) ;; *)
	echo "selftest: --backend qemu|qsd" >&2
	exit 2
	;;
esac
guest=${1:-${VIO_GUEST_CACHE:-$(pwd)/build/guest}}
seed=${SEED:-1}
size_mib=64
fill_gen=100
passes=2

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "selftest: SKIP: qemu-system-x86_64 not found (scripts/deps-guest.sh)" >&2
	exit 77
fi

t_all=$(now)
"$here/build-guest.sh" "$guest"
t_build=$(since "$t_all")
bc=$guest/blkcheck

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-selftest.XXXXXX")
qsd_pid=
stop_qsd() {
	[ -n "$qsd_pid" ] || return 0
	kill -TERM "$qsd_pid" 2>/dev/null || true
	wait "$qsd_pid" 2>/dev/null || true
	qsd_pid=
}
cleanup() {
	local rc=$?
	stop_qsd
	if [ "${KEEP:-0}" = 1 ]; then
		echo "selftest: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

img=$tmp/disk.img
qemu-img create -q -f raw "$img" "${size_mib}M"
# cache=none needs O_DIRECT, which tmpfs refuses.
cache=none
if ! dd if=/dev/zero of="$img" bs=4096 count=1 oflag=direct conv=notrunc \
	status=none 2>/dev/null; then
	echo "selftest: $tmp has no O_DIRECT: using cache=writeback" >&2
	cache=writeback
fi
"$bc" "$img" --seed "$seed" --fill --gen "$fill_gen" | tail -n1

cat >"$tmp/test.sh" <<EOF
set -e
waitdev /dev/vda 10
echo "vda: \$(cat /sys/block/vda/size) sectors," \
	"\$(ls /sys/block/vda/mq | wc -l) queues"
[ "\$(cat /sys/block/vda/size)" = $((size_mib * 2048)) ]
blkcheck /dev/vda --seed "\$VIO_SEED" --verify --gen $fill_gen --jobs 2
blkcheck /dev/vda --seed "\$VIO_SEED" --passes $passes --jobs 2
EOF

t_run=$(now)
if [ "$backend" = qemu ]; then
	disk=(-drive "file=$img,if=none,id=d0,format=raw,cache=$cache"
		-device virtio-blk-pci,drive=d0,num-queues=2)
else
	command -v qemu-storage-daemon >/dev/null || {
		echo "selftest: SKIP: qemu-storage-daemon not found" >&2
		exit 77
	}
	direct=on
	[ "$cache" = none ] || direct=off
	reaper=()
	if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
		reaper=(setpriv --pdeathsig KILL --) # dies with this script
	fi
	"${reaper[@]}" qemu-storage-daemon \
		--blockdev "driver=file,node-name=f0,filename=$img,cache.direct=$direct" \
		--blockdev driver=raw,node-name=d0,file=f0 \
		--export "type=vhost-user-blk,id=e0,node-name=d0,writable=on,num-queues=2,addr.type=unix,addr.path=$tmp/blk.sock" \
		>"$tmp/qsd.log" 2>&1 &
	qsd_pid=$!
	for _ in $(seq 100); do
		if [ -S "$tmp/blk.sock" ] || ! kill -0 "$qsd_pid" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	if [ ! -S "$tmp/blk.sock" ]; then
		cat "$tmp/qsd.log" >&2
		echo "selftest: FAIL: qemu-storage-daemon did not start" >&2
		exit 2
	fi
	# The only difference from the built-in device: this pair of options.
	disk=(-chardev "socket,id=c0,path=$tmp/blk.sock"
		-device vhost-user-blk-pci,chardev=c0,num-queues=2)
fi
rc=0
"$here/run-guest.sh" --guest "$guest" --test "$tmp/test.sh" \
	--append "vio.seed=$seed" -- "${disk[@]}" |
	tee "$tmp/run.out" || rc=${PIPESTATUS[0]}
t_guest=$(since "$t_run")
stop_qsd
if [ "$rc" != 0 ]; then
	echo "selftest: FAIL: guest run exit $rc" >&2
	exit "$rc"
fi

echo "selftest: host check of the image (generation $passes)"
if ! "$bc" --verify-image "$img" --seed "$seed" --gen "$passes" | tail -n1; then
	echo "selftest: FAIL: image does not hold generation $passes" >&2
	exit 1
fi

boot=$(sed -n 's/.*boot_to_init=\([^ ]*\)s.*/\1/p' "$tmp/run.out")
echo "selftest: backend=$backend timings: build=${t_build}s boot_to_init=${boot}s" \
	"guest_run=${t_guest}s total=$(since "$t_all")s"
echo "selftest: PASS"
