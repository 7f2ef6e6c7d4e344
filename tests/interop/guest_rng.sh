#!/usr/bin/env bash
# Interop: a real Linux guest (Debian cloud kernel, its own virtio_rng
# driver, under QEMU) takes its hardware randomness from `vio serve rng`
# over vhost-user (QEMU's vhost-user-rng-pci).
#
#   guest_rng.sh VIO [--bytes N] [--guest DIR]
#
# 1. vio serve rng listens; QEMU boots with -device vhost-user-rng-pci;
# 2. in the guest (rngcheck, tests/interop/guest/rngcheck.sh): virtio_rng
#    becomes the current hwrng (rng_current names virtio_rng.N), N bytes
#    (default 64 KiB) read from /dev/hwrng arrive in full, with at least
#    200 of 256 byte values and no repeated 4 KiB chunk; the same checks
#    must fail on /dev/zero and on a repeated 1 KiB pattern (a checker
#    that cannot fail proves nothing);
# 3. after poweroff: vio serve logged the connection, and exits cleanly
#    on SIGTERM, leaving neither socket nor pidfile.
# The guest has no other hwrng (rng_available is checked), so the bytes
# can only have come through vio's device.
#
# Exit: 0 pass, 1 fail, 77 skip (no QEMU: said loudly).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdir=$here/guest
vio=${1:?usage: guest_rng.sh VIO [--bytes N] [--guest DIR]}
shift
bytes=65536
guest=${VIO_GUEST_CACHE:-$(cd "$here/../.." && pwd)/build/guest}
while [ $# -gt 0 ]; do
	case "$1" in
	--bytes) bytes=$2; shift 2 ;;
	--guest) guest=$2; shift 2 ;;
	*) echo "guest_rng: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$bytes" in '' | *[!0-9]*) echo "guest_rng: --bytes N" >&2; exit 2 ;; esac
name="guest_rng(bytes=$bytes)"

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "$name: SKIP: qemu-system-x86_64 is not installed" \
		"(scripts/deps-guest.sh installs it)" >&2
	exit 77
fi
if ! qemu-system-x86_64 -device help 2>/dev/null | grep -q '"vhost-user-rng-pci"'; then
	echo "$name: SKIP: this QEMU has no vhost-user-rng-pci" >&2
	exit 77
fi

# one build of the guest at a time (tests run in parallel)
mkdir -p "$(dirname "$guest")"
(
	flock -w 300 9 || { echo "$name: guest build lock timeout" >&2; exit 2; }
	"$gdir/build-guest.sh" "$guest" >/dev/null
) 9>"$(dirname "$guest")/.guest.lock"
grep -q '^virtio-rng \|^virtio_rng ' "$guest/modules.txt" ||
	echo "$name: note: virtio_rng is not among the guest's modules" \
		"(VIO_GUEST_MODULES?); hoping it is built in" >&2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-rng.XXXXXX")
serve_pid=
cleanup() {
	local rc=$?
	if [ -n "$serve_pid" ]; then
		kill -KILL "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
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

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --)
fi
"${reaper[@]}" "$vio" serve rng --socket "$tmp/rng.sock" \
	--pidfile "$tmp/serve.pid" >"$tmp/serve.log" 2>&1 &
serve_pid=$!
# ready: vio serve wrote its pidfile (it accepts connections) within 15 s,
# and did not die first
end=$((SECONDS + 15))
until [ -s "$tmp/serve.pid" ]; do
	kill -0 "$serve_pid" 2>/dev/null || fail "vio serve rng died at start"
	[ "$SECONDS" -le "$end" ] || fail "vio serve rng did not start in 15 s"
	sleep 0.01
done

cat >"$tmp/test.sh" <<EOF
set -e
rngcheck --wait 20 --bytes $bytes
# virtio_rng must be the only hwrng: the bytes came through vio
avail=\$(cat /sys/class/misc/hw_random/rng_available)
echo "VIO-SAW: rng_available=\$avail"
set -- \$avail
[ \$# = 1 ] || { echo "other hwrngs: \$avail"; exit 1; }
# negative controls: the checker rejects zeroes and a repeated pattern
if rngcheck --bytes $bytes /dev/zero; then exit 1; fi
dd if=/dev/hwrng of=/tmp/k1 bs=1024 count=1 2>/dev/null
i=0
while [ \$i -lt $((bytes / 1024)) ]; do cat /tmp/k1; i=\$((i + 1)); done >/tmp/pat
if rngcheck --bytes $bytes /tmp/pat; then exit 1; fi
echo "VIO-SAW: negative controls failed as they must"
EOF

rc=0
"$gdir/run-guest.sh" --guest "$guest" --test "$tmp/test.sh" --timeout 150 \
	-- -chardev "socket,id=c0,path=$tmp/rng.sock" \
	-device vhost-user-rng-pci,chardev=c0 \
	>"$tmp/run.out" 2>&1 || rc=$?
grep -E 'VIO-SAW|rngcheck:|run-guest:' "$tmp/run.out" || true
if [ "$rc" != 0 ]; then
	cat "$tmp/run.out" >&2
	[ "$rc" = 77 ] && { echo "$name: SKIP: QEMU cannot run" >&2; exit 77; }
	fail "guest run exit $rc"
fi
grep -q "rngcheck: RESULT PASS source=/dev/hwrng current=virtio_rng\.[0-9]* bytes=$bytes " \
	"$tmp/run.out" || fail "no rngcheck PASS line for /dev/hwrng"

# the guest is off: SIGTERM must end vio serve cleanly
kill -0 "$serve_pid" 2>/dev/null || fail "vio serve rng died during the run"
kill -TERM "$serve_pid"
src=0
timeout 10 tail --pid="$serve_pid" -f /dev/null ||
	fail "vio serve rng still runs 10 s after SIGTERM"
wait "$serve_pid" || src=$?
serve_pid=
[ "$src" = 0 ] || fail "vio serve exit status $src"
grep -q 'connection 1: frontend attached' "$tmp/serve.log" ||
	fail "no connection log line"
[ ! -e "$tmp/rng.sock" ] || fail "socket file left behind"
[ ! -e "$tmp/serve.pid" ] || fail "pidfile left behind"
echo "$name: PASS"
