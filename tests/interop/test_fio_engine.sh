#!/usr/bin/env bash
# fio's own verification through vio-fio.so (vio's fio ioengine) against
# two vhost-user-blk backends: `vio serve blk` and qemu-storage-daemon.
#
#   test_fio_engine.sh VIO ENGINE_SO [vio|qsd]...   (default: both)
#
# For each backend, on a 32 MiB image:
#   1. randwrite 8 MiB, bs 4k, iodepth 16, verify=crc32c: fio writes, then
#      reads everything back and checks it, in one job;
#   2. the same with 2 jobs (thread), each on a queue of its own, packed
#      rings off, 4k-64k blocks;
#   3. a write-only job, then --verify_only in a new fio process: the reads
#      go to fresh buffers, so data that never reached the backend fails
#      (an engine that completed requests without doing them cannot pass);
#   4. negative control: bytes of the image overwritten behind fio's back,
#      --verify_only must fail (the verification really reads the disk).
# Every daemon is killed by PID; everything lives in a temp dir.  Exit 0
# pass, 1 fail, 77 SKIP only if fio or qemu-storage-daemon is missing.
set -euo pipefail

vio=${1:?usage: test_fio_engine.sh VIO ENGINE_SO [vio|qsd]...}
engine=${2:?usage: test_fio_engine.sh VIO ENGINE_SO [vio|qsd]...}
shift 2
vio=$(realpath "$vio")
engine=$(realpath "$engine")
backends=${*:-vio qsd}
fio=$(command -v fio || true)
qsd=$(command -v qemu-storage-daemon || true)
if [ -z "$fio" ]; then
	echo "SKIP: fio is not installed (apt-get install fio)" >&2
	exit 77
fi
case " $backends " in *" qsd "*)
	if [ -z "$qsd" ]; then
		echo "SKIP: qemu-storage-daemon is not installed: the fio engine" \
			"test did NOT run (apt-get install qemu-system-common)" >&2
		exit 77
	fi ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-fio.XXXXXX")
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
# fio leaves verify state files (local-*-verify.state) in its working dir
cd "$tmp"

fails=0
ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

# An engine built with -Db_sanitize=address,undefined needs the sanitizer
# runtimes loaded first into fio (which is not instrumented).
preload=$(ldd "$engine" | awk '/lib(asan|ubsan)\.so/ { printf "%s%s", sep, $3; sep = ":" }')
fio_env=()
if [ -n "$preload" ]; then
	fio_env=(env "LD_PRELOAD=$preload"
		"ASAN_OPTIONS=detect_leaks=0:${ASAN_OPTIONS:-}")
fi

img=$tmp/disk.img
sock=$tmp/blk.sock

# wait_for TEST PATH NAME: [ TEST PATH ] within 10 s while $pid lives
wait_for() {
	local end=$((SECONDS + 10))
	until [ "$1" "$2" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$3 exited: $(tail -n 5 "$tmp/$3.log")" >&2
			return 1
		fi
		if [ "$SECONDS" -gt "$end" ]; then
			echo "$3 not ready after 10 s" >&2
			return 1
		fi
		sleep 0.02
	done
}

start() {
	rm -f "$img" "$sock" "$tmp/pid"
	truncate -s 32M "$img"
	case "$1" in
	vio)
		"$vio" serve blk --socket "$sock" --image "$img" --queues 2 \
			--pidfile "$tmp/pid" >>"$tmp/vio.log" 2>&1 &
		pid=$!
		wait_for -f "$tmp/pid" vio
		;;
	qsd)
		# the socket appears once the export listens
		"$qsd" --blockdev "driver=file,node-name=f,filename=$img" \
			--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$sock,writable=on,num-queues=2" \
			>>"$tmp/qsd.log" 2>&1 &
		pid=$!
		wait_for -S "$sock" qsd
		;;
	esac
}
stop() {
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

# run_fio LOG ARGS...: fio through the engine, bounded
run_fio() {
	local log=$1
	shift
	timeout 120 "${fio_env[@]}" "$fio" --ioengine="external:$engine" --socket="$sock" \
		--name=vio --size=8M --rw=randwrite --bs=4k --iodepth=16 \
		--verify=crc32c "$@" >"$log" 2>&1
}
# A verify failure is fio saying so ("verify: bad ..." / "crc32c: verify
# failed"), not some other error.
said_verify_failed() { grep -Eqi "verify.*(bad|fail)|bad magic" "$1"; }

for be in $backends; do
	start "$be"
	log=$tmp/$be.fio.log
	# 2048 reads: every block written was read back and checked
	if run_fio "$log" && grep -q "issued rwts: total=2048,2048" "$log"; then
		ok "$be: randwrite + verify=crc32c, 8 MiB, iodepth 16"
	else
		fail "$be: write + verify"; tail -n 20 "$log" >&2
	fi
	if run_fio "$log" --thread --numjobs=2 --queues=2 --packed=0 \
		--bsrange=4k-64k --offset_increment=12M --iodepth=8; then
		ok "$be: 2 jobs on 2 queues, split rings, 4k-64k"
	else
		fail "$be: 2 jobs"; tail -n 20 "$log" >&2
	fi
	if run_fio "$log" --do_verify=0 --offset=16M &&
		run_fio "$log.2" --verify_only --offset=16M &&
		grep -q "issued rwts: total=2048," "$log.2"; then
		ok "$be: written, then verified by another fio process"
	else
		fail "$be: verify_only"; tail -n 20 "$log" "$log.2" >&2
	fi
	# 64 KiB of noise at 20 MiB (inside the range step 3 wrote; with
	# verify_only fio counts the writes it skips as issued too)
	head -c 65536 /dev/urandom |
		dd of="$img" bs=65536 seek=320 conv=notrunc,fsync status=none
	if run_fio "$log" --verify_only --offset=16M; then
		fail "$be: --verify_only passed over corrupted data"
	elif said_verify_failed "$log"; then
		ok "$be: corruption detected: $(grep -Eim1 "verify.*(bad|fail)|bad magic" "$log")"
	else
		fail "$be: fio failed, but not in verification"; tail -n 20 "$log" >&2
	fi
	stop
done

if [ "$fails" -ne 0 ]; then
	for f in "$tmp"/*.log; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
fi
