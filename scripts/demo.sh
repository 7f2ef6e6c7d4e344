#!/usr/bin/env bash
# make demo: vio's main job end to end.  `vio serve blk` serves a disk
# image over vhost-user; QEMU boots a Linux guest (Debian's cloud kernel, a
# busybox initramfs) whose own virtio_blk driver uses that disk: the guest
# prints the disk it saw, writes patterns over all of it, flushes, reads
# back and compares, and reports throughput; then the host checks the
# image file byte by byte.  Finally the in-process transport: virtio-rng.
# Usage: scripts/demo.sh BUILD_DIR [IMAGE_SIZE] (default 256M)
set -euo pipefail
build=${1:?usage: scripts/demo.sh BUILD_DIR [IMAGE_SIZE]}
size=${2:-256M}
root=$(cd "$(dirname "$0")/.." && pwd)
vio=$build/vio
[ -x "$vio" ] || { echo "demo: $vio not built (run make)" >&2; exit 1; }
gdir=$root/tests/interop/guest
guest=${VIO_GUEST_CACHE:-$root/build/guest}

echo "== building the guest (Debian cloud kernel + busybox; cached in $guest)"
"$gdir/build-guest.sh" "$guest" | tail -n 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-demo.XXXXXX")
serve_pid=
cleanup() {
	local rc=$?
	if [ -n "$serve_pid" ]; then
		kill -KILL "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

img=$tmp/disk.img
echo "== vio serve blk --socket $tmp/blk.sock --image $img --size $size --queues 2"
setpriv --pdeathsig KILL -- "$vio" serve blk --socket "$tmp/blk.sock" \
	--image "$img" --size "$size" --queues 2 --pidfile "$tmp/serve.pid" \
	> >(sed -u 's/^/serve| /') 2>&1 &
serve_pid=$!
# ready once the pidfile exists (the socket accepts connections then);
# give up after 10 s or when vio serve died
end=$((SECONDS + 10))
until [ -s "$tmp/serve.pid" ]; do
	if ! kill -0 "$serve_pid" 2>/dev/null || [ "$SECONDS" -gt "$end" ]; then
		echo "demo: vio serve did not start" >&2
		exit 1
	fi
	sleep 0.01
done

seed=$((RANDOM + 1))
cat >"$tmp/test.sh" <<EOF
set -e
waitdev /dev/vda 15
s=\$(cat /sys/block/vda/size)
f=\$(cat /sys/block/vda/device/features)
bit() { [ "\$(echo "\$f" | cut -c\$((\$1 + 1)))" = 1 ] && echo "\$2" || true; }
echo "guest saw: /dev/vda \$((s / 2048)) MiB (\$s sectors of" \
	"\$(cat /sys/block/vda/queue/logical_block_size) bytes)," \
	"\$(ls /sys/block/vda/mq | wc -l) queues, features:" \
	\$(bit 2 seg_max) \$(bit 9 flush) \$(bit 10 topology) \$(bit 12 mq) \
	\$(bit 13 discard) \$(bit 14 write_zeroes) \$(bit 28 indirect) \
	\$(bit 29 event_idx) \$(bit 32 version_1) \$(bit 34 packed)
blkcheck /dev/vda --seed $seed --passes 1 --jobs 2
t0=\$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vda of=/dev/null bs=1M iflag=direct 2>/dev/null
t1=\$(cut -d' ' -f1 /proc/uptime)
echo "guest saw: sequential read of the whole disk, 1 MiB requests:" \
	"\$(awk -v s=\$s -v a=\$t0 -v b=\$t1 'BEGIN { printf "%.0f", s / 2048 / (b - a) }') MiB/s"
EOF

echo "== booting the guest (QEMU, vhost-user-blk-pci, 2 queues)"
rc=0
"$gdir/run-guest.sh" --guest "$guest" --test "$tmp/test.sh" --timeout 240 \
	-- -chardev "socket,id=c0,path=$tmp/blk.sock" \
	-device vhost-user-blk-pci,chardev=c0,num-queues=2 \
	>"$tmp/run.out" 2>&1 || rc=$?
grep -E 'guest saw|blkcheck:|VIO-GUEST-RESULT|run-guest:' "$tmp/run.out" |
	sed 's/^guest| //'
if [ "$rc" != 0 ]; then
	cat "$tmp/run.out" >&2
	echo "demo: the guest run failed (exit $rc)" >&2
	exit 1
fi

kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=
echo "== the host checks the image the guest wrote"
"$guest/blkcheck" --verify-image "$img" --seed "$seed" --gen 1 | tail -n 1
echo "   (under TCG the guest's CPU emulation bounds these figures;" \
	"bench/blk-guest compares backends)"

echo "== in-process transport: virtio-rng driver <-> device, split and packed"
"$vio" rng --bytes 64M
"$vio" rng --bytes 64M --packed
