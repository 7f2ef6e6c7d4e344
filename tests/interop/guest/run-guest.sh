#!/usr/bin/env bash
# Boot the vio test guest under QEMU, run one test script in it, and exit 0
# only if the guest printed "VIO-GUEST-RESULT: PASS". See docs/guest-harness.md.
#
# Usage: run-guest.sh --test FILE [options] [-- QEMU_ARGS...]
#   --test FILE      shell script run in the guest as /test.sh (busybox sh);
#                    its exit status is the result
#   --guest DIR      build-guest.sh output (default
#                    ${VIO_GUEST_CACHE:-$(pwd)/build/guest})
#   --add SRC:DST    copy host file SRC to DST in the guest (repeatable)
#   --append ARGS    extra kernel command line; vio.KEY=VAL becomes $VIO_KEY
#                    in the test's environment
#   --timeout SECS   hard limit for the whole run (default ${TIMEOUT:-240})
#   --mem MB         guest memory (default 512), --smp N (default 2)
#   --log FILE       keep a copy of the serial console log
#   -- QEMU_ARGS     passed to QEMU as they are (the devices under test)
# Environment: KEEP=1 keeps the temp dir; ACCEL=kvm|tcg overrides detection;
#   QEMU names the binary (default qemu-system-x86_64); MACHINE (default q35);
#   BOOT_DEADLINE (default 90): a guest that has not reached /init after
#   that many seconds is killed and booted once more, within --timeout
#   (TCG boots reach /init in 4-9 s here; one CI run saw a boot hang with
#   no kernel output at all, before any virtio driver loaded: they are
#   modules /init inserts).  Likewise a QEMU that dies of a signal
#   before /init (a crash in firmware or kernel boot, before the test ran:
#   one CI run saw QEMU 7.2 SIGSEGV there, with vio serving the disk SeaBIOS
#   had started) is booted once more; its log is kept in the report.
#   Never after /init: a crash while the test runs is a failure.  Not with
#   -incoming (a migration target does not boot) or BOOT_DEADLINE=0.
# Exit status: 0 pass, 1 fail (or no marker), 2 timeout or harness error,
#   77 QEMU missing (skip).
# Commas inside QEMU option values are intended; cleanup runs from a trap.
# shellcheck disable=SC2054,SC2317,SC2015
set -euo pipefail

guest=${VIO_GUEST_CACHE:-$(pwd)/build/guest}
test_file=
adds=()
append=
timeout=${TIMEOUT:-240}
mem=512
smp=2
logcopy=
qemu=${QEMU:-qemu-system-x86_64}
machine=${MACHINE:-q35}

die() {
	echo "run-guest: error: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--test) test_file=$2; shift 2 ;;
	--guest) guest=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--append) append="$append $2"; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--log) logcopy=$2; shift 2 ;;
	--) shift; break ;;
	*) die "unknown option $1 (see the header of $0)" ;;
	esac
done
extra=("$@")

[ -n "$test_file" ] || die "--test FILE is required"
[ -r "$test_file" ] || die "cannot read $test_file"
case "$timeout$mem$smp" in *[!0-9]*) die "--timeout/--mem/--smp: numbers" ;; esac
if ! command -v "$qemu" >/dev/null; then
	echo "run-guest: SKIP: $qemu not found (run scripts/deps-guest.sh)" >&2
	exit 77
fi
for f in vmlinuz initramfs.cpio.gz; do
	[ -s "$guest/$f" ] ||
		die "$guest/$f missing: run tests/interop/guest/build-guest.sh $guest"
done

if [ -z "${ACCEL:-}" ]; then
	if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
		ACCEL=kvm
	else
		ACCEL=tcg
	fi
fi
case "$ACCEL" in
kvm) accel=(-accel kvm -cpu host) ;;
tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
*) die "ACCEL must be kvm or tcg" ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-run.XXXXXX")
qpid=
cleanup() {
	local rc=$?
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		for _ in $(seq 30); do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$qpid" 2>/dev/null || true
	fi
	[ -z "$qpid" ] || wait "$qpid" 2>/dev/null || true
	if [ -n "$logcopy" ] && [ -f "$tmp/serial.log" ]; then
		cp "$tmp/serial.log" "$logcopy" || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "run-guest: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The per-run archive: /test.sh and --add files. The kernel unpacks
# concatenated (compressed) cpio archives in order, later entries on top.
mkdir -p "$tmp/extra"
install -m 0755 "$test_file" "$tmp/extra/test.sh"
for a in "${adds[@]}"; do
	src=${a%%:*}
	dst=${a#*:}
	[ "$src" != "$a" ] && [ "${dst#/}" != "$dst" ] ||
		die "--add wants SRC:/ABS/DST, got $a"
	mkdir -p "$tmp/extra$(dirname "$dst")"
	cp -L "$src" "$tmp/extra$dst"
done
(cd "$tmp/extra" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$tmp/extra.cpio.gz"
cat "$guest/initramfs.cpio.gz" "$tmp/extra.cpio.gz" >"$tmp/initrd"

cmdline="console=ttyS0 panic=-1 oops=panic loglevel=4 8250.nr_uarts=1 edd=off"
cmdline="$cmdline$append"
: >"$tmp/serial.log"
args=(-machine "$machine" "${accel[@]}" -m "$mem" -smp "$smp"
	-object "memory-backend-memfd,id=mem,size=${mem}M,share=on"
	-numa node,memdev=mem
	-kernel "$guest/vmlinuz" -initrd "$tmp/initrd" -append "$cmdline"
	-nodefaults -no-user-config -nographic -no-reboot
	-serial "file:$tmp/serial.log" -monitor none
	"${extra[@]}")
echo "run-guest: $qemu ${args[*]}" >"$tmp/cmd"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# If this script is killed outright (SIGKILL: no trap runs), the kernel
# still ends QEMU: setpriv sets the parent-death signal, kept across exec.
reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --)
fi

launch() {
	tb=$(now)
	"${reaper[@]}" "$qemu" "${args[@]}" </dev/null >"$tmp/qemu.out" 2>&1 &
	qpid=$!
	echo "$qpid" >"$tmp/qemu.pid"
}

boot_deadline=${BOOT_DEADLINE:-90}
case "$boot_deadline" in *[!0-9]*) die "BOOT_DEADLINE: a number" ;; esac
case " ${extra[*]} " in *" -incoming "*) boot_deadline=0 ;; esac
retried=0
t0=$(now)
launch

boot=
timed_out=0
qrc=
while :; do
while kill -0 "$qpid" 2>/dev/null; do
	if [ -z "$boot" ] && grep -q 'VIO-GUEST-INIT:' "$tmp/serial.log"; then
		boot=$(elapsed "$t0")
	fi
	if [ -z "$boot" ] && [ "$boot_deadline" -gt 0 ] && [ "$retried" = 0 ] &&
		awk -v a="$tb" -v b="$(now)" -v t="$boot_deadline" \
			'BEGIN { exit !(b - a > t) }'; then
		# a boot hang: say so loudly, keep its log, boot once more
		echo "run-guest: RETRY: no /init after ${boot_deadline}s" \
			"(serial: $(wc -c <"$tmp/serial.log") bytes): the guest" \
			"is booted once more" >&2
		kill -KILL "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
		cp "$tmp/serial.log" "$tmp/serial.hung.log"
		: >"$tmp/serial.log"
		retried=1
		launch
		continue
	fi
	if grep -q 'VIO-GUEST-RESULT:' "$tmp/serial.log"; then
		# give poweroff a moment, then stop QEMU ourselves
		for _ in $(seq 50); do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.1
		done
		break
	fi
	if awk -v a="$t0" -v b="$(now)" -v t="$timeout" \
		'BEGIN { exit !(b - a > t) }'; then
		timed_out=1
		break
	fi
	sleep 0.1
done
[ "$timed_out" = 0 ] && [ -z "$boot" ] && [ "$retried" = 0 ] &&
	[ "$boot_deadline" -gt 0 ] || break
grep -q 'VIO-GUEST-INIT:' "$tmp/serial.log" && break
qrc=0
wait "$qpid" 2>/dev/null || qrc=$?
# QEMU exited on its own before /init: a signal (>128) is a crash of the
# peer before the test began; anything else is reported as it is
[ "$qrc" -gt 128 ] || break
echo "run-guest: RETRY: QEMU died of signal $((qrc - 128)) before /init" \
	"after $(elapsed "$tb")s (serial: $(wc -c <"$tmp/serial.log") bytes):" \
	"the guest is booted once more" >&2
sed 's/^/crashed qemu| /' "$tmp/qemu.out" >&2
tr -d '\r' <"$tmp/serial.log" | tail -n 20 | sed 's/^/crashed serial| /' >&2
cp "$tmp/serial.log" "$tmp/serial.crashed.log"
: >"$tmp/serial.log"
qrc=
retried=1
launch
done
if kill -0 "$qpid" 2>/dev/null; then
	kill -TERM "$qpid" 2>/dev/null || true
fi
if [ -z "$qrc" ]; then
	qrc=0
	wait "$qpid" 2>/dev/null || qrc=$?
fi
qpid=
total=$(elapsed "$t0")
[ -n "$boot" ] || ! grep -q 'VIO-GUEST-INIT:' "$tmp/serial.log" ||
	boot="<=$total"

# no CRs, no firmware terminal escapes
tr -d '\r' <"$tmp/serial.log" |
	sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' >"$tmp/serial.txt"
uptime=$(sed -n 's/^.*VIO-GUEST-INIT: uptime=\([0-9.]*\)s.*$/\1/p' \
	"$tmp/serial.txt" | head -n1)
marker=$(grep -o 'VIO-GUEST-RESULT: .*' "$tmp/serial.txt" | head -n1 || true)

# The test's own output: everything from /init's first line on.
sed -n '/VIO-GUEST-INIT:/,$p' "$tmp/serial.txt" | sed 's/^/guest| /'
echo "run-guest: accel=$ACCEL boot_to_init=${boot:-never}s" \
	"(guest uptime ${uptime:-?}s) total=${total}s qemu_exit=$qrc" \
	"boots=$((retried + 1))"

if [ "$marker" = "VIO-GUEST-RESULT: PASS" ]; then
	echo "run-guest: PASS"
	exit 0
fi
echo "run-guest: ---- qemu: $(cat "$tmp/cmd")" >&2
sed 's/^/qemu| /' "$tmp/qemu.out" >&2
echo "run-guest: ---- serial log tail" >&2
tail -n 60 "$tmp/serial.txt" | sed 's/^/serial| /' >&2
if [ "$timed_out" = 1 ]; then
	echo "run-guest: FAIL: timeout after ${timeout}s" >&2
	exit 2
fi
why="no result marker (guest crashed or QEMU failed)"
[ "$qrc" -le 128 ] || why="no result marker: QEMU died of signal $((qrc - 128))"
echo "run-guest: FAIL: ${marker:-$why}" >&2
exit 1
