#!/usr/bin/env bash
# vio serve blk on NBD exports (issue 13), through vio's driver (vio blk
# --socket):
#  - nbdkit memory (multi-conn): 2 queues, verify, write + read back; and
#    in process (vio blk --image URI: no event loop);
#  - qemu-nbd on a file (no multi-conn: capped to 1 queue): verify, and
#    the file holds what was written;
#  - a read-only export is served read-only (VIRTIO_BLK_F_RO, writes fail);
#  - nbdkit's error filter failing reads while a trigger file exists: the
#    driver sees IOERR exactly then (writes still succeed), with a log line;
#  - a server SIGSTOPped: requests fail within --io-timeout, then work
#    again once it runs; a server SIGKILLed under load: the load fails
#    (IOERR, no hang), vio keeps serving, and a new server at the same
#    socket is used by the next requests.
# Needs nbdkit (and qemu-nbd for its part); exits 77 (skip) without nbdkit
# or if vio was built without libnbd.
set -uo pipefail
vio=$(realpath "${1:?usage: test_blk_nbd.sh VIO}")
if ! command -v nbdkit >/dev/null; then
	echo "SKIP: nbdkit is not installed (Debian: nbdkit); cannot test NBD" >&2
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-nbd-test.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
fails=0 checks=0
ok() { checks=$((checks + 1)); echo "ok   $1"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $1"; }

# wait_file FILE PID: FILE is non-empty within 10 s, PID alive meanwhile
wait_file() {
	local end=$((SECONDS + 10))
	until [ -s "$1" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
# nbdkit_start NAME ARGS...: an nbdkit on $tmp/NAME.sock, its PID in
# $nbd_pid (-f: it stays our child; -P: written once it listens)
nbdkit_start() {
	local name=$1
	shift
	rm -f "$name.pid"
	nbdkit -f -U "$tmp/$name.sock" -P "$tmp/$name.pid" "$@" 2>"$name.log" &
	nbd_pid=$!
	pids+=("$nbd_pid")
	wait_file "$name.pid" "$nbd_pid"
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
# blk NAME ARGS...: vio blk against NAME's server (bounded)
blk() {
	local name=$1
	shift
	timeout 60 "$vio" blk --socket "$tmp/$name.vu" "$@"
}
# served NAME PID: requests the server answered so far (its SIGUSR1 line)
served() {
	local n end=$((SECONDS + 5))
	n=$(grep -c '"event":"stats"' "$1.serve.log")
	kill -USR1 "$2"
	until [ "$(grep -c '"event":"stats"' "$1.serve.log")" -gt "$n" ]; do
		[ $SECONDS -le $end ] || { echo 0; return; }
		sleep 0.01
	done
	grep '"event":"stats"' "$1.serve.log" | tail -n1 |
		grep -o '"requests":[0-9]*' | tail -n1 | cut -d: -f2
}
# threads PID: what each thread of PID is doing (for a hang: its wait
# channel, and a backtrace when gdb is there)
threads() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "  thread ${t##*/} $(cat "$t/comm" 2>/dev/null):" \
			"wchan $(cat "$t/wchan" 2>/dev/null)," \
			"state $(cut -d' ' -f3 "$t/stat" 2>/dev/null)"
	done
	if command -v gdb >/dev/null; then
		timeout 30 gdb -q -batch -p "$1" -ex "thread apply all bt" \
			2>/dev/null | grep -E '^(Thread|#)' | sed 's/^/  /'
	fi
}
stop() { # PID: SIGTERM, reaped; a server that does not end in 20 s fails
	local end=$((SECONDS + 20))
	kill -TERM "$1" 2>/dev/null
	while kill -0 "$1" 2>/dev/null && [ $SECONDS -le $end ]; do
		[ "$(cut -d' ' -f3 /proc/"$1"/stat 2>/dev/null)" = Z ] && break
		sleep 0.05
	done
	if [ "$(cut -d' ' -f3 /proc/"$1"/stat 2>/dev/null)" != Z ] &&
		kill -0 "$1" 2>/dev/null; then
		fail "stop: PID $1 still runs 20 s after SIGTERM:"
		threads "$1"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
}

head -c 3M /dev/urandom >data.bin

# ---- nbdkit memory: 2 queues (multi-conn), verify, write + read ----
if ! nbdkit_start mem memory 64M; then
	echo "SKIP: nbdkit does not start (see mem.log): $(cat mem.log)" >&2
	exit 77
fi
if ! serve mem "nbd+unix:///?socket=$tmp/mem.sock" --queues 2; then
	if grep -q "built without NBD" mem.serve.log; then
		echo "SKIP: vio was built without libnbd" >&2
		exit 77
	fi
	fail "mem: vio serve did not start: $(cat mem.serve.log)"
else
	info=$(blk mem info 2>&1)
	if grep -q "queues *2 in use of 2" <<<"$info" &&
		grep -q "read-only *no" <<<"$info" &&
		grep -q "capacity *67108864 bytes" <<<"$info"; then
		ok "mem: 64 MiB, 2 queues, writable"
	else
		fail "mem: info: $info"
	fi
	if blk mem verify --iodepth 8 >verify.out 2>&1; then
		ok "mem: verify 64 MiB (2 queues): $(cat verify.out)"
	else
		fail "mem: verify: $(cat verify.out)"
	fi
	if blk mem write 1048576 -i data.bin >/dev/null 2>&1 &&
		blk mem read 1048576 3M -o back.bin >/dev/null 2>&1 &&
		cmp -s data.bin back.bin; then
		ok "mem: 3 MiB written and read back"
	else
		fail "mem: write + read back differ"
	fi
	stop "$srv_pid"
	# in process (no event loop: each kick waits for its requests)
	if timeout 60 "$vio" blk --image "nbd+unix:///?socket=$tmp/mem.sock" \
		verify --length 8M --iodepth 8 >verify.out 2>&1; then
		ok "mem: vio blk --image URI (in process, no loop): verify 8 MiB"
	else
		fail "mem: in process: $(cat verify.out)"
	fi
fi
kill -TERM "$nbd_pid"; wait "$nbd_pid" 2>/dev/null

# ---- qemu-nbd on a file: no multi-conn, 1 queue; the file has the data ----
if command -v qemu-nbd >/dev/null; then
	truncate -s 16M file.img
	qemu-nbd -f raw -t -k "$tmp/qn.sock" --pid-file "$tmp/qn.pid" \
		file.img 2>qn.log &
	qn_pid=$!
	pids+=("$qn_pid")
	if ! wait_file qn.pid "$qn_pid"; then
		fail "qemu-nbd did not start: $(cat qn.log)"
	elif ! serve qn "nbd+unix:///?socket=$tmp/qn.sock" --queues 2; then
		fail "qn: vio serve did not start: $(cat qn.serve.log)"
	else
		info=$(blk qn info 2>&1)
		if grep -q "queues *1 in use of 1" <<<"$info" &&
			grep -q "coherently" qn.serve.log; then
			ok "qn: capped to 1 queue without multi-conn"
		else
			# a qemu-nbd that offers multi-conn keeps 2
			grep -q "multi-conn" qn.serve.log &&
				ok "qn: $(grep -o '[a-z-]*multi-conn' qn.serve.log)" ||
				fail "qn: info: $info"
		fi
		if blk qn verify --length 8M --iodepth 4 >verify.out 2>&1; then
			ok "qn: verify 8 MiB"
		else
			fail "qn: verify: $(cat verify.out)"
		fi
		if blk qn write 4096 -i data.bin >/dev/null 2>&1 &&
			cmp -s -n 3145728 data.bin <(tail -c +4097 file.img); then
			ok "qn: file.img holds the 3 MiB written at 4096"
		else
			fail "qn: file.img differs from what was written"
		fi
		stop "$srv_pid"
	fi
	kill -TERM "$qn_pid"; wait "$qn_pid" 2>/dev/null
else
	echo "note: qemu-nbd not installed: its part is skipped"
fi

# ---- a read-only export ----
if nbdkit_start ro -r memory 8M && serve ro "nbd+unix:///?socket=$tmp/ro.sock"; then
	info=$(blk ro info 2>&1)
	if grep -q "read-only *yes" <<<"$info" && grep -q " RO" <<<"$info"; then
		ok "ro: served read-only (VIRTIO_BLK_F_RO)"
	else
		fail "ro: info: $info"
	fi
	if blk ro read 0 64K -o /dev/null >/dev/null 2>&1 &&
		! blk ro write 0 -i data.bin >/dev/null 2>&1; then
		ok "ro: reads work, a write fails"
	else
		fail "ro: read/write results"
	fi
	stop "$srv_pid"
else
	fail "ro: did not start: $(cat ro.log ro.serve.log 2>/dev/null)"
fi
[ -n "${nbd_pid:-}" ] && { kill -TERM "$nbd_pid"; wait "$nbd_pid" 2>/dev/null; }

# ---- injected EIO: reads fail exactly while the trigger exists ----
if nbdkit_start err --filter=error memory 8M error=EIO \
	error-pread-rate=100% error-pread-file="$tmp/trigger" &&
	serve err "nbd+unix:///?socket=$tmp/err.sock"; then
	r1=0 r2=0 r3=0 w=0
	blk err write 0 -i data.bin >/dev/null 2>&1 || r1=1
	touch trigger
	blk err read 0 64K -o /dev/null >rd.out 2>&1 && r2=1
	blk err write 4M -i data.bin >/dev/null 2>&1 || w=1
	rm -f trigger
	blk err read 0 3M -o back.bin >/dev/null 2>&1 || r3=1
	if [ $r1 = 0 ] && [ $r2 = 0 ] && [ $w = 0 ] && [ $r3 = 0 ] &&
		cmp -s data.bin back.bin &&
		grep -q "I/O error at byte 0: Input/output error" err.serve.log; then
		ok "err: reads fail (IOERR, logged) while injected, writes do not; data intact after"
	else
		fail "err: write=$r1 read-ok-under-EIO=$r2 write-under-EIO=$w read-after=$r3; $(cat rd.out); $(tail -3 err.serve.log)"
	fi
	stop "$srv_pid"
else
	fail "err: did not start: $(cat err.log err.serve.log 2>/dev/null)"
fi
[ -n "${nbd_pid:-}" ] && { kill -TERM "$nbd_pid"; wait "$nbd_pid" 2>/dev/null; }

# ---- a server that stops answering, then one that dies ----
if nbdkit_start gone memory 64M &&
	serve gone "nbd+unix:///?socket=$tmp/gone.sock" --io-timeout 2; then
	blk gone write 0 -i data.bin >/dev/null 2>&1 || fail "gone: first write"
	kill -STOP "$nbd_pid"
	t0=$SECONDS rc=0
	blk gone read 0 64K -o /dev/null >stop.out 2>&1 || rc=$?
	dt=$((SECONDS - t0))
	if [ $rc = 1 ] && [ $dt -le 8 ] && grep -q "no answer within 2 s" gone.serve.log; then
		ok "gone: a stopped server: the read fails in ${dt} s (timeout 2 s)"
	else
		fail "gone: stopped server: rc=$rc after ${dt} s: $(cat stop.out); $(tail -3 gone.serve.log)"
	fi
	kill -CONT "$nbd_pid"
	# the next request connects again (the server runs again)
	if blk gone read 0 3M -o back.bin >/dev/null 2>&1 && cmp -s data.bin back.bin; then
		ok "gone: after SIGCONT: connected again, data intact"
	else
		fail "gone: after SIGCONT: $(tail -3 gone.serve.log)"
	fi
	# a driver that goes away with a request in flight on a stopped
	# server: the queue stop fails it within the timeout, vio serves on
	kill -STOP "$nbd_pid"
	n=$(grep -c "frontend attached" gone.serve.log)
	timeout 60 "$vio" blk --socket "$tmp/gone.vu" read 0 64K -o /dev/null \
		>/dev/null 2>&1 &
	drv=$!
	pids+=("$drv")
	end=$((SECONDS + 10))
	until [ "$(grep -c "frontend attached" gone.serve.log)" -gt "$n" ] ||
		[ $SECONDS -gt $end ]; do
		sleep 0.01
	done
	kill -KILL "$drv"; wait "$drv" 2>/dev/null
	t0=$SECONDS
	until [ "$(grep -c "ended" gone.serve.log)" -gt "$n" ] ||
		[ $SECONDS -gt $((t0 + 10)) ]; do
		sleep 0.01
	done
	dt=$((SECONDS - t0))
	kill -CONT "$nbd_pid"
	if [ "$(grep -c "ended" gone.serve.log)" -gt "$n" ] && [ $dt -le 6 ] &&
		blk gone read 0 3M -o back.bin >/dev/null 2>&1 &&
		cmp -s data.bin back.bin; then
		ok "gone: driver gone with a request on a stopped server: connection ended in ${dt} s, serving again"
	else
		fail "gone: driver gone on a stopped server: ${dt} s; $(tail -4 gone.serve.log)"
	fi
	# SIGKILL under load: the load fails, bounded, vio serves on
	base=$(served gone "$srv_pid")
	timeout 60 "$vio" blk --socket "$tmp/gone.vu" verify --passes 1000 \
		--iodepth 8 >load.out 2>&1 &
	load=$!
	pids+=("$load")
	end=$((SECONDS + 20))
	# the load is under way once the server answered requests of it
	until [ "$(served gone "$srv_pid")" -gt $((base + 100)) ] ||
		[ $SECONDS -gt $end ]; do
		sleep 0.01
	done
	kill -KILL "$nbd_pid"; wait "$nbd_pid" 2>/dev/null
	t0=$SECONDS rc=0
	wait "$load" || rc=$?
	dt=$((SECONDS - t0))
	if [ $rc = 1 ] && [ $dt -le 10 ] && kill -0 "$srv_pid" 2>/dev/null &&
		grep -q "connection to .* lost" gone.serve.log; then
		ok "gone: SIGKILLed server: the load failed in ${dt} s, vio serve runs"
	else
		fail "gone: SIGKILL: load rc=$rc after ${dt} s: $(tail -2 load.out); $(tail -3 gone.serve.log)"
	fi
	# a new server at the same socket: used by the next requests
	rm -f "$tmp/gone.sock"
	nbdkit_start gone memory 64M
	rc=1
	end=$((SECONDS + 10))
	while [ $SECONDS -le $end ]; do
		blk gone verify --length 4M >verify.out 2>&1 && { rc=0; break; }
	done
	if [ $rc = 0 ]; then
		ok "gone: a new server: verify passes through the same vio serve"
	else
		fail "gone: new server: $(cat verify.out); $(tail -3 gone.serve.log)"
		threads "$srv_pid"
	fi
	stop "$srv_pid"
else
	fail "gone: did not start: $(cat gone.log gone.serve.log 2>/dev/null)"
fi

echo "$checks checks, $fails failed"
[ "$fails" = 0 ]
