#!/usr/bin/env bash
# Interop, kill under load (issue 8, item 5): a Linux guest (QEMU,
# -chardev socket,...,reconnect=1) runs fio with verification on a disk
# served by `vio serve blk`; the backend is killed with SIGKILL at random
# moments while the guest's I/O runs, and started again on the same socket
# with the same image and options.  QEMU reconnects; the guest must finish
# with zero I/O errors and every block verified.
#
#   guest_blk_kill.sh VIO [--kills N] [--seed S] [--backend vio|qsd]
#                         [--queues N] [--packed] [--size-mib M]
#                         [--guest DIR] [--timeout SECS] [--keep]
#
# --kills N     SIGKILLs (default 2); bench/blk-kill runs 10
# --seed S      the seed of the kill moments and of fio's offsets (default:
#               random; printed, VIO_KILL_SEED=S repeats a run)
# --backend     vio (default) or qsd: qemu-storage-daemon, which has no
#               in-flight support (docs/reconnect.md has what it does)
# --size-mib M  the disk, and what fio writes (default 160; 1024 with KVM)
# --guest DIR   the guest with fio in it (default ${VIO_GUEST_FIO:-
#               build/guest-fio}), built here by build-guest.sh with
#               EXTRA_BINS=fio (the host's fio, its libraries, the loader)
# --timeout     the guest run's limit (default 420 s)
# --keep        keep the temp dir (logs, serial console) and say where
#
# What happens:
# 1. a zeroed image; the backend listens on the socket (vio: --pidfile
#    says it accepts connections; qsd: --pidfile, written once its export
#    listens); QEMU boots the guest with reconnect=1;
# 2. in the guest: fio randwrite, 4k, iodepth 16, libaio, O_DIRECT (one
#    job per queue, each on its own part of the disk),
#    verify=crc32c with do_verify=1 (writes everything, then reads every
#    block back and checks it), then a second fio pass, verify_only (reads
#    and checks every block again, a new job); each bounded by `timeout`;
# 3. on the host, once the guest says fio started: kill k waits a random
#    0.3..3 s (seeded), checks that fio is still running, SIGKILLs the
#    backend, starts it again at once, and waits until QEMU has reconnected
#    (vio: the new process logs "frontend attached"; qsd: the daemon holds
#    a connected socket) before the next kill's delay starts;
# 4. the guest prints fio's exit status and errors and the number of
#    kernel block-layer error lines in dmesg ("I/O error",
#    "blk_update_request", "Buffer I/O error"); a watcher in the guest
#    reports a stall (requests in flight and none completed for 30 s:
#    requests were lost), which ends the run at once as a HANG; the
#    result line is "NAME: RESULT kills=K hang=0|1 io_errors=N
#    fio_write=.. fio_verify=.. reconnect_s=.. total=.. seed=..".
# PASS only if every kill happened while fio ran, QEMU reconnected after
# each, nothing hung, both fio passes exited 0 (every block verified) and
# dmesg has no error line.
# Machines: TCG unless /proc/cpuinfo has vmx/svm and /dev/kvm is writable
# (run-guest.sh); about 1 minute under TCG on an idle 2-core machine.
#
# Exit: 0 pass, 1 fail, 2 usage/setup error, 77 skip (QEMU is not
# installed: said loudly).
# Commas inside QEMU option values are intended; cleanup runs from a trap.
# shellcheck disable=SC2317
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
gdir=$here/guest
vio=${1:?usage: guest_blk_kill.sh VIO [--kills N] [--seed S] [--backend vio|qsd] ...}
shift
kills=2 backend=vio queues=1 packed=0 size_mib='' timeout=420 keep=0
stall=30 # seconds without a completion while requests are in flight
seed=${VIO_KILL_SEED:-}
guest=${VIO_GUEST_FIO:-}
while [ $# -gt 0 ]; do
	case "$1" in
	--kills) kills=${2:?}; shift 2 ;;
	--seed) seed=${2:?}; shift 2 ;;
	--backend) backend=${2:?}; shift 2 ;;
	--queues) queues=${2:?}; shift 2 ;;
	--packed) packed=1; shift ;;
	--size-mib) size_mib=${2:?}; shift 2 ;;
	--guest) guest=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	*) echo "guest_blk_kill: unknown argument $1" >&2; exit 2 ;;
	esac
done
# fio must outlast the kills (about 3 s apart): under KVM it runs several
# times faster than under TCG (run-guest.sh's choice, made the same way)
if [ -z "$size_mib" ]; then
	size_mib=160
	if [ "${ACCEL:-}" = kvm ] || { [ -z "${ACCEL:-}" ] &&
		grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; }; then
		size_mib=1024
	fi
fi
for v in "$kills" "$queues" "$size_mib" "$timeout" ${seed:+"$seed"}; do
	case "$v" in '' | *[!0-9]*)
		echo "guest_blk_kill: --kills/--queues/--size-mib/--timeout/--seed take numbers" >&2
		exit 2 ;;
	esac
done
case "$backend" in vio | qsd) ;; *) echo "guest_blk_kill: --backend vio|qsd" >&2; exit 2 ;; esac
[ -n "$seed" ] || seed=$(((RANDOM << 15 | RANDOM) + 1))
RANDOM=$seed # the kill moments follow from the seed
name="guest_blk_kill(backend=$backend kills=$kills queues=$queues packed=$packed)"
echo "$name: seed=$seed (VIO_KILL_SEED=$seed repeats the kill moments)"

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "$name: SKIP: qemu-system-x86_64 is not installed: the kill-under-load" \
		"test did NOT run (scripts/deps-guest.sh installs it)" >&2
	exit 77
fi
fail_setup() {
	echo "$name: FAIL (setup): $*" >&2
	exit 2
}
command -v fio >/dev/null ||
	fail_setup "fio is not installed on the host (scripts/deps.sh installs it; the guest gets its binary)"
if [ "$backend" = qsd ]; then
	command -v qemu-storage-daemon >/dev/null ||
		fail_setup "qemu-storage-daemon is not installed (scripts/deps.sh)"
fi

# The guest with fio: beside the plain guest, built once under the same
# lock as the other guest tests (they run in parallel), reusing its .deb
# downloads.
plain=${VIO_GUEST_CACHE:-$top/build/guest}
[ -n "$guest" ] || guest=$(dirname "$plain")/guest-fio
mkdir -p "$(dirname "$guest")"
(
	flock -w 300 9 || { echo "$name: guest build lock timeout" >&2; exit 2; }
	if [ -d "$plain/cache" ] && [ ! -e "$guest/stamp" ]; then
		mkdir -p "$guest/cache"
		cp -n "$plain/cache/"*.deb "$guest/cache/" 2>/dev/null || true
	fi
	EXTRA_BINS=fio "$gdir/build-guest.sh" "$guest" >/dev/null
) 9>"$(dirname "$guest")/.guest.lock" || fail_setup "build-guest.sh (EXTRA_BINS=fio) failed"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-kill.XXXXXX")
sock=$tmp/blk.sock
img=$tmp/disk.img
bpid=     # the backend now running
gpid=     # run-guest.sh (it ends its QEMU from its own trap)
inst=0    # backend instances started
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$gpid" ]; then
		kill -TERM "$gpid" 2>/dev/null || true
		wait "$gpid" 2>/dev/null || true
	fi
	if [ -n "$bpid" ]; then
		kill -KILL "$bpid" 2>/dev/null || true
		wait "$bpid" 2>/dev/null || true
	fi
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for ((i = 1; i <= inst; i++)); do
			[ -s "$tmp/backend.$i.log" ] || continue
			echo "--- backend instance $i log (tail)" >&2
			tail -n 30 "$tmp/backend.$i.log" >&2
		done
	fi
	if [ "$keep" = 1 ]; then
		echo "$name: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
	echo "$name: FAIL: $*" >&2
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

truncate -s "${size_mib}M" "$img"

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --) # dies with this script
fi
# start_backend: instance N+1 on the same socket, image and options
start_backend() {
	inst=$((inst + 1))
	local out=$tmp/backend.$inst.log pidf=$tmp/backend.$inst.pid
	case "$backend" in
	vio)
		# VIO_LOG=debug: every vhost-user request is logged, so a
		# frontend stuck waiting for an answer shows which one
		VIO_LOG=debug "${reaper[@]}" "$vio" serve blk --socket "$sock" \
			--image "$img" --queues "$queues" --pidfile "$pidf" \
			>"$out" 2>&1 &
		;;
	qsd)
		"${reaper[@]}" qemu-storage-daemon --pidfile "$pidf" \
			--blockdev "driver=file,node-name=f,filename=$img" \
			--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$sock,writable=on,num-queues=$queues" \
			>"$out" 2>&1 &
		;;
	esac
	bpid=$!
	# ready: the pidfile (vio: written once the socket accepts; qsd: once
	# its exports are set up), within 15 s, and the backend did not die
	local end=$((SECONDS + 15))
	until [ -s "$pidf" ]; do
		kill -0 "$bpid" 2>/dev/null || fail "backend instance $inst died at start: $(tail -n3 "$out")"
		[ "$SECONDS" -le "$end" ] || fail "backend instance $inst not ready in 15 s"
		sleep 0.01
	done
}
# attached: the current backend instance serves a frontend
attached() {
	case "$backend" in
	vio) grep -q 'frontend attached' "$tmp/backend.$inst.log" ;;
	qsd)
		# a connected socket of the daemon's on our socket path (the
		# listener is not "ESTAB")
		ss -xpH state established 2>/dev/null | grep -F "$sock" |
			grep -q "pid=$bpid,"
		;;
	esac
}

start_backend
chardev="socket,id=c0,path=$sock,reconnect=1"

# ---- the guest's script (busybox sh)
cat >"$tmp/test.sh" <<EOF
waitdev /dev/vda 30 || exit 1
[ "\$(cat /sys/block/vda/size)" = $((size_mib * 2048)) ] ||
	{ echo "size \$(cat /sys/block/vda/size)"; exit 1; }
# one job per queue, each on its own part of the disk (blk-mq maps the
# guest's CPUs to the queues)
job="--name=kill --filename=/dev/vda --rw=randwrite --bs=4k --iodepth=16
	--ioengine=libaio --direct=1 --numjobs=$queues --group_reporting
	--size=$((size_mib / queues))M --offset_increment=$((size_mib / queues))M
	--randseed=$seed --verify=crc32c --verify_fatal=1 --do_verify=1
	--eta=never"
# stall watch: requests in flight and none completed for $stall s (the
# backend is down about a second per kill) means requests were lost: say
# so, for the host to end the run now rather than at its timeout
(
	prev= same=0
	while sleep 1; do
		set -- \$(cat /sys/block/vda/stat)
		n=\$((\$1 + \$5))
		inf=\$(cat /sys/block/vda/inflight)
		set -- \$inf
		if [ "\$n" = "\$prev" ] && [ \$((\$1 + \$2)) -gt 0 ]; then
			same=\$((same + 1))
		else
			same=0
		fi
		prev=\$n
		if [ "\$same" = $stall ]; then
			echo "VIO-KILL: STALL: no request completed for ${stall}s;" \
				"in flight (read write): \$inf; completed: \$n;" \
				"io_errors=\$(dmesg | grep -cE 'I/O error|blk_update_request|Buffer I/O error')"
		fi
	done
) &
echo "VIO-KILL: fio write start"
rc=0
timeout $((timeout - 60)) fio \$job --output=/tmp/w.out || rc=\$?
echo "VIO-KILL: fio write done rc=\$rc"
grep -E 'err=|verify|error|fail' /tmp/w.out | grep -v 'multiple writers' |
	sed 's/^/  fio-write| /'
vrc=0
if [ "\$rc" = 0 ]; then
	echo "VIO-KILL: fio verify start"
	timeout 120 fio \$job --verify_only --output=/tmp/v.out || vrc=\$?
	echo "VIO-KILL: fio verify done rc=\$vrc"
	grep -E 'err=|verify|error|fail' /tmp/v.out | grep -v 'multiple writers' |
		sed 's/^/  fio-verify| /'
else
	vrc=skipped
	echo "VIO-KILL: fio verify done rc=skipped"
	echo "  requests in flight (read write): \$(cat /sys/block/vda/inflight)"
fi
errs=\$(dmesg | grep -cE 'I/O error|blk_update_request|Buffer I/O error')
dmesg | grep -E 'I/O error|blk_update_request|Buffer I/O error|virtio|blk' |
	tail -n 20 | sed 's/^/  dmesg| /'
echo "VIO-KILL-RESULT: fio_write=\$rc fio_verify=\$vrc io_errors=\$errs"
[ "\$rc" = 0 ] && [ "\$vrc" = 0 ] && [ "\$errs" = 0 ]
EOF

# run-guest.sh keeps the serial console in its mktemp dir under TMPDIR:
# ours, so that the kills can follow the guest's progress
t0=$(now)
TMPDIR=$tmp "${reaper[@]}" "$gdir/run-guest.sh" --guest "$guest" \
	--test "$tmp/test.sh" --timeout "$timeout" --mem 1024 \
	-- -chardev "$chardev" \
	-device "vhost-user-blk-pci,chardev=c0,num-queues=$queues,packed=$([ "$packed" = 1 ] && echo on || echo off)" \
	>"$tmp/run.out" 2>&1 &
gpid=$!
serial() { cat "$tmp"/vio-guest-run.*/serial.log 2>/dev/null || true; }
guest_running() { kill -0 "$gpid" 2>/dev/null; }
fio_running() {
	local s
	s=$(serial)
	grep -q 'VIO-KILL: fio write start' <<<"$s" &&
		! grep -q 'VIO-KILL: fio verify done' <<<"$s"
}

# wait for fio to start (boot under TCG: tens of seconds)
end=$((SECONDS + timeout))
until serial | grep -q 'VIO-KILL: fio write start'; do
	guest_running || break
	[ "$SECONDS" -le "$end" ] || break
	sleep 0.1
done
serial | grep -q 'VIO-KILL: fio write start' || {
	wait "$gpid" || true
	gpid=
	cat "$tmp/run.out" >&2
	fail "the guest did not start fio"
}
echo "$name: guest booted, fio started after $(since "$t0")s"

attached || {
	# QEMU connects before it boots the guest
	fail "QEMU is not connected to the backend when fio starts"
}
done_kills=0
reconnect_times=()
for ((k = 1; k <= kills; k++)); do
	# a random moment 0.3..3 s later (seeded)
	delay=$(awk -v r=$((RANDOM % 1000)) 'BEGIN { printf "%.3f", 0.3 + 2.7 * r / 1000 }')
	sleep "$delay"
	fio_running ||
		fail "fio is no longer running at kill $k: the workload is too short for this machine (raise --size-mib)"
	kill -KILL "$bpid"
	wait "$bpid" 2>/dev/null || true
	tk=$(now)
	bpid=
	echo "$name: kill $k: SIGKILL of backend instance $inst after ${delay}s, fio running"
	start_backend
	end=$((SECONDS + 30))
	until attached; do
		guest_running || fail "the guest ended while the backend was down (kill $k)"
		[ "$SECONDS" -le "$end" ] ||
			fail "QEMU did not reconnect within 30 s of kill $k"
		sleep 0.05
	done
	rt=$(since "$tk")
	reconnect_times+=("$rt")
	done_kills=$k
	echo "$name: kill $k: backend instance $inst started, QEMU reconnected in ${rt}s"
done

# the rest of the run; a stall the guest reports ends it early (its fio
# cannot finish: requests were lost)
stalled=0
while guest_running; do
	s=$(serial)
	[ -z "$s" ] || printf '%s\n' "$s" >"$tmp/serial.copy"
	if grep -q 'VIO-KILL: STALL' <<<"$s"; then
		stalled=1
		echo "$name: the guest reports a stall: ending it" >&2
		kill -TERM "$gpid" 2>/dev/null || true
		break
	fi
	sleep 0.2
done
rc=0
wait "$gpid" || rc=$?
gpid=
if [ "$stalled" = 1 ]; then
	tr -d '\r' <"$tmp/serial.copy" | sed -n '/VIO-GUEST-INIT/,$p' | tail -n 30 >&2
	stall_line=$(grep -o 'no request completed.*' "$tmp/serial.copy" | head -n1)
	echo "$name: RESULT kills=$done_kills hang=1" \
		"io_errors=$(sed -n 's/.*io_errors=\([0-9]*\).*/\1/p' <<<"$stall_line")" \
		"fio_write=hung fio_verify=hung reconnect_s=${reconnect_times[*]:-}" \
		"total=$(since "$t0")s seed=$seed"
	fail "HANG: $stall_line (kills=$done_kills; seed=$seed)"
fi
# what each restarted backend says about the requests it took over
for ((i = 2; i <= inst; i++)); do
	grep -iE 'in.flight|inflight|resubmit' "$tmp/backend.$i.log" |
		grep -v '_INFLIGHT_FD' | sed "s/^/  backend $i| /" || true
done
grep -E 'VIO-KILL|fio-write\||fio-verify\||dmesg\||requests in flight|run-guest:' "$tmp/run.out" | sed 's/^guest| //' || true
result=$(grep -o 'VIO-KILL-RESULT: .*' "$tmp/run.out" | head -n1 || true)
io_errors=$(sed -n 's/.*io_errors=\([0-9]*\).*/\1/p' <<<"$result")
fio_w=$(sed -n 's/.*fio_write=\([^ ]*\).*/\1/p' <<<"$result")
fio_v=$(sed -n 's/.*fio_verify=\([^ ]*\).*/\1/p' <<<"$result")
echo "$name: RESULT kills=$done_kills hang=0 io_errors=${io_errors:-?} fio_write=${fio_w:-?}" \
	"fio_verify=${fio_v:-?} reconnect_s=${reconnect_times[*]:-} total=$(since "$t0")s seed=$seed"
if [ "$rc" != 0 ]; then
	[ "$rc" = 77 ] && { echo "$name: SKIP: QEMU cannot run: $(tail -n3 "$tmp/run.out")" >&2; exit 77; }
	sed -n '/run-guest: ----/,$p' "$tmp/run.out" | tail -n 40 >&2
	[ -n "$result" ] || fail "no result from the guest (run-guest exit $rc: hung or crashed)"
	fail "the guest saw errors (io_errors=${io_errors:-?} fio_write=${fio_w:-?} fio_verify=${fio_v:-?})"
fi
[ "$done_kills" = "$kills" ] || fail "only $done_kills of $kills kills"
# the last backend ends cleanly on SIGTERM (under ASan: no report either)
kill -TERM "$bpid"
brc=0
timeout 15 tail --pid="$bpid" -f /dev/null || fail "backend instance $inst ignores SIGTERM"
wait "$bpid" || brc=$?
bpid=
[ "$brc" = 0 ] || fail "backend instance $inst: exit status $brc after SIGTERM"
if [ "${io_errors:-x}" != 0 ] || [ "$fio_w" != 0 ] || [ "$fio_v" != 0 ]; then
	fail "guest result: $result"
fi
echo "$name: PASS"
