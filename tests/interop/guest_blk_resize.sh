#!/usr/bin/env bash
# Interop: live resize reaches a real Linux guest.  `vio serve blk` serves
# a 64 MiB image to QEMU's vhost-user-blk-pci; while the guest runs, the
# host grows the image (truncate) and sends SIGHUP; vio serve re-reads the
# size and tells QEMU over the vhost-user backend channel
# (BACKEND_CONFIG_CHANGE_MSG); QEMU re-reads the config (GET_CONFIG) and
# interrupts the guest, whose /sys/block/vda/size must show the new size
# (bounded wait, polling; no reboot, no reconnect).
#
#   guest_blk_resize.sh VIO [--guest DIR]
#
# 1. the guest reports its size (64 MiB) and waits for the new one;
# 2. the host grows the image to 96 MiB, SIGHUP: vio serve logs the resize;
# 3. the guest sees 96 MiB, writes a known pattern into the new last MiB,
#    flushes, drops its caches, reads it back and compares;
# 4. after poweroff the host finds that pattern at the end of the image;
#    then shrinks the image and sends SIGHUP: refused (logged), the size
#    stays; SIGTERM ends vio serve cleanly.
#
# Exit: 0 pass, 1 fail, 77 skip (no QEMU: said loudly).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdir=$here/guest
vio=${1:?usage: guest_blk_resize.sh VIO [--guest DIR]}
shift
guest=${VIO_GUEST_CACHE:-$(cd "$here/../.." && pwd)/build/guest}
while [ $# -gt 0 ]; do
	case "$1" in
	--guest) guest=$2; shift 2 ;;
	*) echo "guest_blk_resize: unknown argument $1" >&2; exit 2 ;;
	esac
done
name="guest_blk_resize"
size_mib=64
new_mib=96
timeout=240

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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-resize.XXXXXX")
serve_pid= gpid=
cleanup() {
	local rc=$?
	for p in $gpid $serve_pid; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
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

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --)
fi
"${reaper[@]}" "$vio" serve blk --socket "$tmp/blk.sock" --image "$img" \
	--pidfile "$tmp/serve.pid" >"$tmp/serve.log" 2>&1 &
serve_pid=$!
end=$((SECONDS + 15))
until [ -s "$tmp/serve.pid" ]; do
	kill -0 "$serve_pid" 2>/dev/null || fail "vio serve did not start"
	[ "$SECONDS" -le "$end" ] || fail "vio serve not ready in 15 s"
	sleep 0.01
done

# the pattern of the new last MiB (the host checks it too)
pattern() { yes VIO-RESIZE | head -c 1048576; }
cat >"$tmp/test.sh" <<EOF
set -e
waitdev /dev/vda 15
s=\$(cat /sys/block/vda/size)
echo "VIO-RESIZE: before=\$s"
[ "\$s" = $((size_mib * 2048)) ] || { echo "size \$s"; exit 1; }
# the host grows the disk now: wait for it (60 s at most)
i=0
until [ "\$(cat /sys/block/vda/size)" = $((new_mib * 2048)) ]; do
	i=\$((i + 1))
	[ \$i -le 600 ] || { echo "size still \$(cat /sys/block/vda/size)"; exit 1; }
	sleep 0.1
done
echo "VIO-RESIZE: after=\$(cat /sys/block/vda/size) after \$i polls"
dmesg | grep -i 'vda.*capacity' | tail -n 2 || true
yes VIO-RESIZE | head -c 1048576 >/tmp/p
dd if=/tmp/p of=/dev/vda bs=1048576 seek=$((new_mib - 1)) conv=fsync 2>/dev/null
echo 3 >/proc/sys/vm/drop_caches
dd if=/dev/vda of=/tmp/q bs=1048576 skip=$((new_mib - 1)) count=1 2>/dev/null
cmp /tmp/p /tmp/q || { echo "the new last MiB reads back wrong"; exit 1; }
echo "VIO-RESIZE: new space written and read back"
EOF

# run-guest.sh keeps the serial console in its mktemp dir under TMPDIR:
# ours, so that the host can follow the guest
TMPDIR=$tmp "${reaper[@]}" "$gdir/run-guest.sh" --guest "$guest" \
	--test "$tmp/test.sh" --timeout "$timeout" \
	-- -chardev "socket,id=c0,path=$tmp/blk.sock" \
	-device "vhost-user-blk-pci,chardev=c0,num-queues=1" \
	>"$tmp/run.out" 2>&1 &
gpid=$!
serial() { cat "$tmp"/vio-guest-run.*/serial.log 2>/dev/null || true; }

# the guest saw the old size (boot under TCG: tens of seconds)
end=$((SECONDS + timeout))
until serial | grep -q 'VIO-RESIZE: before='; do
	kill -0 "$gpid" 2>/dev/null || break
	[ "$SECONDS" -le "$end" ] || break
	sleep 0.1
done
serial | grep -q 'VIO-RESIZE: before=' || {
	wait "$gpid" || true
	gpid=
	cat "$tmp/run.out" >&2
	fail "the guest did not report its disk size"
}

truncate -s "${new_mib}M" "$img"
kill -HUP "$serve_pid"
want="vio serve: blk $img: resized from $((size_mib << 20)) to $((new_mib << 20)) bytes"
end=$((SECONDS + 10))
until grep -qF "$want" "$tmp/serve.log"; do
	kill -0 "$serve_pid" 2>/dev/null || fail "vio serve died on SIGHUP"
	[ "$SECONDS" -le "$end" ] || fail "no resize log line after SIGHUP"
	sleep 0.05
done
echo "$name: $want"

rc=0
wait "$gpid" || rc=$?
gpid=
grep -E 'VIO-RESIZE|capacity|RESULT|run-guest:' "$tmp/run.out" || true
if [ "$rc" != 0 ]; then
	cat "$tmp/run.out" >&2
	[ "$rc" = 77 ] && { echo "$name: SKIP: QEMU cannot run" >&2; exit 77; }
	fail "guest run exit $rc"
fi

# the guest's write landed in the new space of the image
tail -c 1048576 "$img" | cmp - <(pattern) ||
	fail "the image's last MiB is not what the guest wrote"
[ "$(stat -c %s "$img")" = $((new_mib << 20)) ] || fail "image size changed"

# a shrink is refused and the size stays
truncate -s "${size_mib}M" "$img"
kill -HUP "$serve_pid"
end=$((SECONDS + 10))
until grep -q 'SIGHUP: .*shrinking from .* refused' "$tmp/serve.log"; do
	kill -0 "$serve_pid" 2>/dev/null || fail "vio serve died on SIGHUP"
	[ "$SECONDS" -le "$end" ] || fail "no refusal logged for a shrink"
	sleep 0.05
done
grep 'SIGHUP: ' "$tmp/serve.log" | tail -n1

kill -TERM "$serve_pid"
src=0
wait "$serve_pid" || src=$?
serve_pid=
[ "$src" = 0 ] || fail "vio serve exit status $src"
grep -q 'connection 1: frontend attached' "$tmp/serve.log" ||
	fail "no connection log line"
echo "$name: PASS"
