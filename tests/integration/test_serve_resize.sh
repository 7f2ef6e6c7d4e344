#!/usr/bin/env bash
# vio serve blk: SIGHUP re-reads the image size.  A grown image is served
# at its new size (logged "resized from X to Y bytes"; `vio blk info` sees
# it), the same size again is "unchanged", a shrunk image is refused
# (logged) and the size stays; the server keeps running through all of it
# and ends cleanly on SIGTERM.  (A connected frontend being told is
# test_vu_config_change and, with a Linux guest, guest_blk_resize.)
set -uo pipefail
vio=$(realpath "${1:?usage: test_serve_resize.sh VIO}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-serve-resize.XXXXXX")
pid=
cleanup() {
	[ -z "$pid" ] || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
check() { # NAME CONDITION...
	local name=$1
	shift
	checks=$((checks + 1))
	if "$@"; then
		echo "ok   $name"
	else
		echo "FAIL $name"
		fails=$((fails + 1))
	fi
}
# wait_log PATTERN: the server logged it within 10 s
wait_log() {
	local end=$((SECONDS + 10))
	until grep -qE -- "$1" "$tmp/serve.log"; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.02
	done
}
capacity() { # the capacity in bytes vio's driver sees now
	timeout 10 "$vio" blk --socket "$tmp/s" info 2>/dev/null |
		sed -n 's/.*, \([0-9]*\) sectors of 512$/\1/p' |
		awk '{ print $1 * 512 }'
}

truncate -s 4M "$tmp/d.img"
"$vio" serve blk --socket "$tmp/s" --image "$tmp/d.img" \
	--pidfile "$tmp/pid" >"$tmp/serve.log" 2>&1 &
pid=$!
end=$((SECONDS + 10))
until [ -s "$tmp/pid" ]; do
	kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -le "$end" ] ||
		{ echo "FAIL: vio serve did not start"; cat "$tmp/serve.log"; exit 1; }
	sleep 0.01
done
check "capacity 4M" [ "$(capacity)" = 4194304 ]

truncate -s 12M "$tmp/d.img"
kill -HUP "$pid"
check "grow logged" wait_log "blk $tmp/d.img: resized from 4194304 to 12582912 bytes"
check "capacity 12M" [ "$(capacity)" = 12582912 ]

kill -HUP "$pid"
check "same size logged" wait_log "SIGHUP: size unchanged \(12582912 bytes\)"

truncate -s 2M "$tmp/d.img"
kill -HUP "$pid"
check "shrink refused" wait_log "SIGHUP: .*shrinking from 12582912 to 2097152 bytes refused"
check "capacity still 12M" [ "$(capacity)" = 12582912 ]

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
check "exit 0 after SIGTERM" [ "$rc" = 0 ]
check "socket removed" [ ! -e "$tmp/s" ]
if [ "$fails" != 0 ]; then
	echo "--- vio serve log"
	cat "$tmp/serve.log"
fi
echo "serve_resize: $checks checks, $fails failed"
[ "$fails" = 0 ]
