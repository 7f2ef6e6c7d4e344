#!/usr/bin/env bash
# `vio blk --socket` (the command, over vio's vhost-user frontend) against
# qemu-storage-daemon's vhost-user-blk export.
#
#   test_qsd_cli.sh VIO
#
# A 2-queue writable export: info (2 queues), verify on both queues, a
# random file written, read back over a new connection and compared with
# cmp, and with the image file itself (flushed); then a read-only export
# (writable=off): info says read-only, a write fails with a clear error.
# Between them, a randwrite bench with --dirty-log (issue 10): qsd's
# libvhost-user takes the log (SET_LOG_BASE: its reply's u64 is not a
# status, QEMU ignores it) and marks pages.
# Every daemon is killed by PID.  Exit 0 pass, 1 fail, 77 SKIP only if
# qemu-storage-daemon is not installed.
set -euo pipefail

vio=${1:?usage: test_qsd_cli.sh VIO}
qsd=$(command -v qemu-storage-daemon || true)
if [ -z "$qsd" ]; then
	echo "SKIP: qemu-storage-daemon is not installed: the interop test" \
		"against a real vhost-user-blk backend did NOT run (Debian:" \
		"apt-get install qemu-system-common)" >&2
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-qsd-cli.XXXXXX")
pid=
cleanup() {
	local rc=$?
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
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

img=$tmp/disk.img
sock=$tmp/qsd.sock
truncate -s 16M "$img"

start_qsd() { # writable
	"$qsd" --blockdev "driver=file,node-name=f,filename=$img" \
		--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$sock,writable=$1,num-queues=2" \
		>>"$tmp/qsd.log" 2>&1 &
	pid=$!
}
stop_qsd() {
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}
blk() { timeout 60 "$vio" blk --socket "$sock" --timeout 10000 "$@"; }

start_qsd on
if blk info >"$tmp/info" && grep -q "2 in use of 2" "$tmp/info"; then
	ok "info: 2 queues"
else
	fail "info"; cat "$tmp/info" >&2 || true
fi
if blk verify --length 8M >"$tmp/verify" 2>&1 && grep -q ": ok" "$tmp/verify"; then
	ok "verify (8 MiB)"
else
	fail "verify"; cat "$tmp/verify" >&2
fi
head -c $((1024 * 1024 + 4096)) /dev/urandom >"$tmp/rand.bin"
if blk write 3M -i "$tmp/rand.bin" 2>"$tmp/err"; then
	ok "write"
else
	fail "write: $(cat "$tmp/err")"
fi
if blk read 3M $((1024 * 1024 + 4096)) -o "$tmp/back.bin" 2>"$tmp/err" &&
	cmp -s "$tmp/rand.bin" "$tmp/back.bin"; then
	ok "read back over a new connection"
else
	fail "read back: $(cat "$tmp/err")"
fi
if dd if="$img" bs=4096 skip=768 count=257 status=none | cmp -s - "$tmp/rand.bin"; then
	ok "the image file has the data"
else
	fail "image file content"
fi
if blk bench --rw randwrite --iodepth 8 --time 1s --dirty-log \
	>"$tmp/bench" 2>"$tmp/err" &&
	n=$(sed -n 's/^  dirty log: \([0-9]*\) pages marked$/\1/p' "$tmp/bench") &&
	[ -n "$n" ] && [ "$n" -gt 0 ]; then
	ok "bench --dirty-log: $n pages marked by qsd"
else
	fail "bench --dirty-log: $(cat "$tmp/err" "$tmp/bench")"
fi
stop_qsd

start_qsd off
if blk info >"$tmp/info" && grep -Eq "read-only +yes" "$tmp/info"; then
	ok "writable=off: info says read-only"
else
	fail "read-only info"; cat "$tmp/info" >&2 || true
fi
if blk write 0 -i "$tmp/rand.bin" 2>"$tmp/err"; then
	fail "a write to a read-only export succeeded"
elif grep -qi "read-only" "$tmp/err"; then
	ok "write refused: $(head -1 "$tmp/err")"
else
	fail "write refused without a clear error: $(cat "$tmp/err")"
fi
stop_qsd

if [ "$fails" -ne 0 ]; then
	echo "--- qemu-storage-daemon log" >&2
	cat "$tmp/qsd.log" >&2 || true
	exit 1
fi
