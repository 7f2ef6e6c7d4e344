#!/usr/bin/env bash
# `vio blk`: every verb, end to end, through the command.
#
#   test_cmd_blk.sh VIO
#
# 1. --image (vio's blk device in this process): info, write from a file
#    and from stdin (lengths that are not whole sectors: the rest of the
#    last sector must stay), read to a file and to stdout, compared with
#    cmp against the input and against the image file itself; verify on
#    the whole disk and on a range; bench --json (iops > 0) and a text
#    bench on 2 queues; errors: past-capacity and unaligned offsets,
#    read-only device, missing image, bad option values (exit 2).
# 2. --socket (the vhost-user frontend): the same against `vio serve blk`
#    on the same image, a read-only server, nothing listening at the
#    socket, and a peer that is not a blk device (vio serve rng).
#
# Exit: 0 pass, 1 fail.
set -euo pipefail

vio=${1:?usage: test_cmd_blk.sh VIO}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-cmd-blk.XXXXXX")
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
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

# expect_err WHAT CODE PATTERN -- ARGS...: vio blk ARGS exits CODE and
# says PATTERN on stderr
expect_err() {
	local what=$1 code=$2 pat=$3
	shift 4
	local rc=0
	"$vio" blk "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$code" ]; then
		fail "$what: exit $rc, expected $code ($(head -c 300 "$tmp/err"))"
	elif ! grep -q -- "$pat" "$tmp/err"; then
		fail "$what: stderr lacks '$pat': $(head -c 300 "$tmp/err")"
	else
		ok "$what: $(head -n 1 "$tmp/err")"
	fi
}

# bytes LEN of FILE from OFFSET to stdout
slice() {
	dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=64K \
		status=none
}

# the verbs against one device: DEV is "--image FILE" or "--socket PATH";
# IMG is the image file behind it (checked directly)
run_verbs() {
	local label=$1 img=$2
	shift 2
	local dev=("$@")

	"$vio" blk "${dev[@]}" info >"$tmp/info" || fail "$label info: exit $?"
	grep -q '^capacity  *16777216 bytes' "$tmp/info" ||
		fail "$label info: capacity: $(cat "$tmp/info")"
	grep -q '^read-only  *no' "$tmp/info" || fail "$label info: read-only"
	grep -q '^serial  *[^ ]' "$tmp/info" || fail "$label info: serial"
	grep -q '^features .*VERSION_1' "$tmp/info" ||
		fail "$label info: features"
	ok "$label info"

	# write from a file: 300001 bytes at 8 KiB, the rest of the last
	# sector (0x5a from the fill below) stays
	head -c 300001 /dev/urandom >"$tmp/in1"
	"$vio" blk "${dev[@]}" write 8K -i "$tmp/in1" >"$tmp/out" ||
		fail "$label write -i: exit $?"
	grep -q '^wrote 300001 bytes at offset 8192' "$tmp/out" ||
		fail "$label write: $(cat "$tmp/out")"
	"$vio" blk "${dev[@]}" read 8192 300001 -o "$tmp/back1" >/dev/null ||
		fail "$label read -o: exit $?"
	cmp "$tmp/in1" "$tmp/back1" || fail "$label read -o differs"
	slice "$img" 8192 300001 | cmp - "$tmp/in1" ||
		fail "$label image differs from what was written"
	local end=$((8192 + 300001)) rest=$((512 - (8192 + 300001) % 512))
	slice "$img" "$end" "$rest" | cmp - <(head -c "$rest" "$tmp/fill") ||
		fail "$label write clobbered the rest of its last sector"
	ok "$label write -i / read -o, $rest bytes of the last sector kept"

	# write from stdin, read to stdout
	head -c 1048576 /dev/urandom >"$tmp/in2"
	"$vio" blk "${dev[@]}" write 2M <"$tmp/in2" >/dev/null ||
		fail "$label write from stdin: exit $?"
	"$vio" blk "${dev[@]}" read 2M 1M | cmp - "$tmp/in2" ||
		fail "$label stdin/stdout round trip differs"
	slice "$img" $((2 << 20)) 1048576 | cmp - "$tmp/in2" ||
		fail "$label image differs after write from stdin"
	ok "$label write (stdin) / read (stdout)"

	# verify: the whole disk, then a range with another seed
	"$vio" blk "${dev[@]}" verify >"$tmp/out" ||
		fail "$label verify: exit $?"
	grep -q '^verified 16777216 bytes at offset 0 (seed 1): ok' \
		"$tmp/out" || fail "$label verify: $(cat "$tmp/out")"
	"$vio" blk "${dev[@]}" verify --offset 1M --length 3M --seed 7 \
		>"$tmp/out" || fail "$label verify range: exit $?"
	grep -q '^verified 3145728 bytes at offset 1048576 (seed 7): ok' \
		"$tmp/out" || fail "$label verify range: $(cat "$tmp/out")"
	ok "$label verify"

	# bench: JSON with iops > 0, then text on 2 queues with writes
	"$vio" blk "${dev[@]}" bench --time 1 --json >"$tmp/bench.json" ||
		fail "$label bench --json: exit $?"
	local iops
	iops=$(sed -n 's/.*"iops":\([0-9.]*\).*/\1/p' "$tmp/bench.json")
	if [ -z "$iops" ] || ! awk -v v="$iops" 'BEGIN { exit !(v > 0) }'; then
		fail "$label bench --json: $(cat "$tmp/bench.json")"
	fi
	grep -q '"errors":0' "$tmp/bench.json" ||
		fail "$label bench errors: $(cat "$tmp/bench.json")"
	grep -q '"lat_us":{"mean":[0-9.]*,"p50":[0-9.]*,"p99":[0-9.]*,"p99_9":' \
		"$tmp/bench.json" || fail "$label bench latency fields"
	ok "$label bench --json: iops $iops"
	"$vio" blk "${dev[@]}" bench --rw randwrite --bs 8k --iodepth 16 \
		--queues 2 --time 1 >"$tmp/out" ||
		fail "$label bench randwrite: exit $?"
	if ! grep -q 'randwrite 8k, iodepth 16 x 2 queues' "$tmp/out" ||
		! grep -q '^  [0-9][0-9]* IOPS' "$tmp/out" ||
		! grep -q 'latency (us): mean .*p50 .*p99 .*p99.9 ' "$tmp/out"; then
		fail "$label bench text: $(cat "$tmp/out")"
	fi
	ok "$label bench randwrite, 2 queues: $(sed -n 2p "$tmp/out")"

	# errors
	expect_err "$label read past capacity" 1 "past the capacity" -- \
		"${dev[@]}" read 16M 512
	expect_err "$label read running past capacity" 1 \
		"goes past the capacity" -- "${dev[@]}" read 15M 2M
	expect_err "$label unaligned offset" 1 "not a multiple of 512" -- \
		"${dev[@]}" read 1000 512
	head -c 4096 /dev/zero >"$tmp/4k"
	expect_err "$label write past capacity" 1 "past the capacity" -- \
		"${dev[@]}" write $(((16 << 20) - 2048)) -i "$tmp/4k"
}

# ---- 1. --image ----
img=$tmp/disk.img
# a fill that is not zero, so that a clobbered tail shows
head -c 512 /dev/zero | tr '\0' 'Z' >"$tmp/fill"
head -c $((16 << 20)) /dev/zero | tr '\0' Z >"$img"
run_verbs image "$img" --image "$img"

expect_err "read-only write" 1 "device is read-only" -- \
	--image "$img" --readonly write 0 -i "$tmp/4k"
expect_err "read-only verify" 1 "device is read-only" -- \
	--image "$img" --readonly verify
expect_err "read-only bench randwrite" 1 "device is read-only" -- \
	--image "$img" --readonly bench --rw randwrite --time 1
expect_err "missing image" 1 "No such file or directory" -- \
	--image "$tmp/nope.img" info
expect_err "bad --bs" 2 "not a multiple of 512" -- \
	--image "$img" bench --bs 1000
expect_err "bad --time" 2 "not a duration" -- --image "$img" bench --time x
expect_err "bad --queues" 2 "not a number" -- --image "$img" --queues 0 info
expect_err "unknown verb" 2 "unknown verb" -- --image "$img" frob
expect_err "no device" 2 "give --socket PATH or --image FILE" -- info
expect_err "bench queues over the driver's" 1 "has only 1 queue" -- \
	--image "$img" --queues 1 bench --queues 2 --time 1
"$vio" blk --help | grep -q '^usage: vio blk' || fail "--help"
"$vio" blk --image "$img" bench --help | grep -q 'usage: .* bench' ||
	fail "bench --help"
ok "help"

# ---- 2. --socket ----
{
	# wait_ready PIDFILE PID: the server wrote its pidfile (so it
	# accepts connections) within 10 s, or it died
	wait_ready() {
		local end=$((SECONDS + 10))
		until [ -s "$1" ]; do
			kill -0 "$2" 2>/dev/null || return 1
			[ "$SECONDS" -le "$end" ] || return 1
			sleep 0.01
		done
	}
	head -c $((16 << 20)) /dev/zero | tr '\0' Z >"$img"
	sock=$tmp/blk.sock
	"$vio" serve blk --socket "$sock" --image "$img" --queues 2 \
		--pidfile "$tmp/blk.pid" 2>"$tmp/serve.err" &
	pids+=($!)
	if wait_ready "$tmp/blk.pid" $!; then
		run_verbs socket "$img" --socket "$sock"
	else
		fail "vio serve blk did not start: $(cat "$tmp/serve.err")"
	fi

	rsock=$tmp/ro.sock
	"$vio" serve blk --socket "$rsock" --image "$img" --readonly \
		--pidfile "$tmp/ro.pid" 2>"$tmp/serve-ro.err" &
	pids+=($!)
	if wait_ready "$tmp/ro.pid" $!; then
		expect_err "socket read-only write" 1 "device is read-only" -- \
			--socket "$rsock" write 0 -i "$tmp/4k"
	else
		fail "vio serve blk --readonly did not start"
	fi

	expect_err "nothing listens" 1 "$tmp/none.sock" -- \
		--socket "$tmp/none.sock" info
	qsock=$tmp/rng.sock
	"$vio" serve rng --socket "$qsock" --pidfile "$tmp/rng.pid" \
		2>"$tmp/serve-rng.err" &
	pids+=($!)
	if wait_ready "$tmp/rng.pid" $!; then
		expect_err "not a blk device" 1 "virtio-blk" -- \
			--socket "$qsock" info
	else
		fail "vio serve rng did not start"
	fi
}

if [ "$fails" -ne 0 ]; then
	echo "test_cmd_blk: $fails failure(s)" >&2
	exit 1
fi
echo "test_cmd_blk: all passed"
