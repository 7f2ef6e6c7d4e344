#!/usr/bin/env bash
# Interop: two real Linux guests (QEMU, their own virtio_net drivers) talk
# through `vio serve switch`, vio's learning L2 switch, over vhost-user.
#
#   guest_net_switch.sh VIO [--bytes N] [--guest DIR] [--backend vio|qemu-stream]
#
# 1. vio serve switch --socket A --socket B; two QEMUs boot at once (one
#    vCPU each), guest A (10.77.1.1) on A, guest B (10.77.1.2) on B;
# 2. A pings B (retrying while B boots), sends N bytes (default 4 MiB,
#    /dev/urandom) to B over TCP and receives N bytes from B; B pings A;
#    each guest prints the sha256 of what it sent and of what it received
#    ("netpair: RESULT PASS ..."), and the host compares them across the
#    two guests;
# 3. after both guests are off: vio serve switch exits 0 on SIGTERM; its
#    JSON counters show both ports moving the data, each port's switch
#    and device counts agree, and each port delivered what the other sent
#    (less at most 64 frames sent while it was not running).
# --backend qemu-stream checks the guest halves alone: the two QEMUs joined
# by QEMU's own -netdev stream over a unix socket; VIO is not used.
#
# Exit: 0 pass, 1 fail, 77 skip (no QEMU or guest build: said loudly).
# QEMU option values have commas; $common is guest code, not expanded here.
# shellcheck disable=SC2054,SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdir=$here/guest
vio=${1:?usage: guest_net_switch.sh VIO [--bytes N] [--guest DIR] [--backend vio|qemu-stream]}
shift
bytes=$((4 << 20)) backend=vio dev_opts=
guest=${VIO_GUEST_CACHE:-$(cd "$here/../.." && pwd)/build/guest}
while [ $# -gt 0 ]; do
	case "$1" in
	--bytes) bytes=$2; shift 2 ;;
	--guest) guest=$2; shift 2 ;;
	--backend) backend=$2; shift 2 ;;
	--dev-opts) dev_opts=$2; shift 2 ;;
	*) echo "guest_net_switch: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$bytes" in '' | *[!0-9]*) echo "guest_net_switch: --bytes N" >&2; exit 2 ;; esac
case "$backend" in vio | qemu-stream) ;; *) echo "guest_net_switch: --backend vio|qemu-stream" >&2; exit 2 ;; esac
name="guest_net_switch(backend=$backend)"
skip() {
	echo "$name: SKIP: $*" >&2
	exit 77
}
mac_a=52:54:00:76:69:0a mac_b=52:54:00:76:69:0b
ip_a=10.77.1.1 ip_b=10.77.1.2

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 is not installed (scripts/deps-guest.sh installs it)"
t0=$SECONDS
mkdir -p "$(dirname "$guest")"
if ! (
	flock -w 300 9 || { echo "$name: guest build lock timeout" >&2; exit 2; }
	"$gdir/build-guest.sh" "$guest" >/dev/null
) 9>"$(dirname "$guest")/.guest.lock"; then
	skip "the guest could not be built (tests/interop/guest/build-guest.sh $guest failed, above)"
fi
grep -q '^virtio_net ' "$guest/modules.txt" ||
	skip "the guest in $guest has no virtio_net module (VIO_GUEST_MODULES?)"
build_s=$((SECONDS - t0))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-sw.XXXXXX")
serve_pid='' pid_a='' pid_b=''
cleanup() {
	local rc=$?
	# run-guest.sh stops its QEMU from its own trap
	for p in $pid_a $pid_b; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$serve_pid" ]; then
		kill -KILL "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	if [ "$rc" != 0 ] && [ -f "$tmp/serve.log" ]; then
		echo "--- vio serve switch log" >&2
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
wait_for() { # SECS CMD...
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --)
fi
if [ "$backend" = vio ]; then
	"${reaper[@]}" "$vio" serve switch --socket "$tmp/a.sock" \
		--socket "$tmp/b.sock" --json --pidfile "$tmp/serve.pid" \
		>"$tmp/serve.log" 2>&1 &
	serve_pid=$!
	wait_for 15 test -s "$tmp/serve.pid" || fail "vio serve switch did not start in 15 s"
	kill -0 "$serve_pid" 2>/dev/null || fail "vio serve switch died at start"
	net_a=(-chardev "socket,id=c0,path=$tmp/a.sock" -netdev vhost-user,id=n0,chardev=c0)
	net_b=(-chardev "socket,id=c0,path=$tmp/b.sock" -netdev vhost-user,id=n0,chardev=c0)
else
	net_a=(-netdev "stream,id=n0,server=on,addr.type=unix,addr.path=$tmp/l2.sock")
	net_b=(-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$tmp/l2.sock")
fi

# QEMU 7.2 under TCG segfaults starting vhost-user-net with MSI-X on (see
# guest_net.sh): INTx
[ "$backend" != vio ] || dev_opts=",vectors=0$dev_opts"

# ping_until IP SECS: one answer within SECS (the other guest may still boot)
common='
ping_until() {
	i=0
	until ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt "$2" ] || { echo "netpair: no ping answer from $1"; exit 1; }
	done
	out=$(ping -c 3 -w 15 "$1" 2>&1) || true
	echo "$out" | tail -n 2 | sed "s/^/netpair: ping $1: /"
	echo "$out" | grep -q " 0% packet loss" || exit 1
}
# retry CMD...: until CMD succeeds, 120 tries 0.5 s apart (a connection
# refused while the other side is not listening yet)
retry() {
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 120 ] || { echo "netpair: $* failed 120 times"; exit 1; }
		sleep 0.5
	done
}
sha() { sha256sum <"$1" | cut -d" " -f1; }
# held CMD...: run CMD with a stdin that stays open until CMD exits.  The
# receiving nc must not half-close first: busybox nc closes its stdin side
# at stdin EOF, and exits when the peer does, so a sender whose peer
# closed early stops sending
held() {
	f=/tmp/hold.$$.$RANDOM
	mkfifo $f
	"$@" <$f &
	p=$!
	exec 3>$f
	rm -f $f
	r=0
	wait $p || r=$?
	exec 3>&-
	return $r
}
'
cat >"$tmp/a.sh" <<EOF
set -e
$common
dd if=/dev/urandom of=/tmp/tx bs=65536 count=$((bytes / 65536)) 2>/dev/null
netcheck --mac $mac_a --addr $ip_a/24 --setup-only --wait 30
ping_until $ip_b 180
retry timeout 120 nc $ip_b 5000 </tmp/tx
retry held timeout 120 nc $ip_b 5001 >/tmp/rx
echo "netpair: RESULT PASS role=A tx_sha=\$(sha /tmp/tx) rx_sha=\$(sha /tmp/rx) rx_bytes=\$(wc -c </tmp/rx)"
# stay up until B has pinged us
timeout 120 nc -l -p 5002 </dev/null
EOF
cat >"$tmp/b.sh" <<EOF
set -e
$common
dd if=/dev/urandom of=/tmp/tx bs=65536 count=$((bytes / 65536)) 2>/dev/null
netcheck --mac $mac_b --addr $ip_b/24 --setup-only --wait 30
held timeout 150 nc -l -p 5000 >/tmp/rx &
p1=\$!
timeout 150 nc -l -p 5001 </tmp/tx &
p2=\$!
wait \$p1
wait \$p2
ping_until $ip_a 30
retry timeout 30 nc $ip_a 5002 </dev/null
echo "netpair: RESULT PASS role=B tx_sha=\$(sha /tmp/tx) rx_sha=\$(sha /tmp/rx) rx_bytes=\$(wc -c </tmp/rx)"
EOF

t1=$SECONDS
"$gdir/run-guest.sh" --guest "$guest" --test "$tmp/a.sh" --smp 1 \
	--timeout 220 -- "${net_a[@]}" -device "virtio-net-pci,netdev=n0,mac=$mac_a$dev_opts" \
	>"$tmp/a.out" 2>&1 &
pid_a=$!
# QEMU's stream client does not retry: the server's socket first
[ "$backend" = vio ] || wait_for 30 test -S "$tmp/l2.sock" ||
	fail "QEMU A made no $tmp/l2.sock"
"$gdir/run-guest.sh" --guest "$guest" --test "$tmp/b.sh" --smp 1 \
	--timeout 220 -- "${net_b[@]}" -device "virtio-net-pci,netdev=n0,mac=$mac_b$dev_opts" \
	>"$tmp/b.out" 2>&1 &
pid_b=$!
declare -A rc=([a]=0 [b]=0)
wait "$pid_a" || rc[a]=$?
pid_a=''
wait "$pid_b" || rc[b]=$?
pid_b=''
guest_s=$((SECONDS - t1))
for g in a b; do
	grep -E 'netcheck:|netpair:|RESULT|run-guest:' "$tmp/$g.out" | sed "s/^/$g: /" || true
done
for g in a b; do
	[ "${rc[$g]}" != 0 ] || continue
	cat "$tmp/$g.out" >&2
	[ "${rc[$g]}" != 77 ] || skip "QEMU cannot run"
	fail "guest ${g^^} run exit ${rc[$g]}"
done
res() { # GUEST FIELD
	grep -o "netpair: RESULT PASS role=.*" "$tmp/$1.out" | head -n1 |
		tr ' ' '\n' | sed -n "s/^$2=//p"
}
if [ -z "$(res a tx_sha)" ] || [ -z "$(res b tx_sha)" ]; then
	fail "no netpair result lines"
fi
if [ "$(res a rx_bytes)" != "$bytes" ] || [ "$(res b rx_bytes)" != "$bytes" ]; then
	fail "received $(res a rx_bytes) (A) and $(res b rx_bytes) (B) bytes, want $bytes"
fi
[ "$(res a tx_sha)" = "$(res b rx_sha)" ] || fail "A sent other bytes than B received"
[ "$(res b tx_sha)" = "$(res a rx_sha)" ] || fail "B sent other bytes than A received"

if [ "$backend" = vio ]; then
	kill -0 "$serve_pid" 2>/dev/null || fail "vio serve switch died during the run"
	kill -TERM "$serve_pid"
	timeout 10 tail --pid="$serve_pid" -f /dev/null ||
		fail "vio serve switch still runs 10 s after SIGTERM"
	src=0
	wait "$serve_pid" || src=$?
	serve_pid=
	[ "$src" = 0 ] || fail "vio serve switch exit status $src"
	python3 - "$tmp/serve.log" "$bytes" <<'EOF' || fail "vio's counters (above)"
import json, sys
log, nbytes = sys.argv[1], int(sys.argv[2])
obj = None
for line in open(log, errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            pass
if obj is None:
    sys.exit("no JSON counters in the vio serve switch log")
print("vio counters:", json.dumps(obj, sort_keys=True))
ports = obj.get("ports", [])
if len(ports) != 2:
    sys.exit("%d ports in the counters, want 2" % len(ports))
errs = []
for p in ports:
    d, w = p.get("device", {}), p.get("switch", {})
    g = lambda o, k: int(o.get(k, 0))
    who = "port %s" % p.get("port")
    if g(d, "tx_bytes") < nbytes or g(d, "rx_bytes") < nbytes:
        errs.append("%s: device moved less than %d bytes each way"
                    % (who, nbytes))
    # the switch's view of its port and the device's must agree
    if g(w, "rx_packets") + g(d, "tx_dropped") != g(d, "tx_packets"):
        errs.append("%s: the driver sent %d (%d dropped), the switch took %d"
                    % (who, g(d, "tx_packets"), g(d, "tx_dropped"),
                       g(w, "rx_packets")))
    if g(w, "tx_packets") != g(d, "rx_packets"):
        errs.append("%s: the switch delivered %d, the device %d"
                    % (who, g(w, "tx_packets"), g(d, "rx_packets")))
    if g(d, "tx_errors"):
        errs.append("%s: %d transmit errors" % (who, g(d, "tx_errors")))
# two ports: a frame one driver sends goes to the other port (learned or
# flooded), delivered, filtered or counted as dropped there, unless that
# port is not running: the guests boot and stop at different times, so a
# few frames (IPv6 solicitations, the last TCP segments) reach no one
for a, b in ((0, 1), (1, 0)):
    wa, wb = ports[a].get("switch", {}), ports[b].get("switch", {})
    db = ports[b].get("device", {})
    sent = int(wa.get("rx_packets", 0))
    got = (int(wb.get("tx_packets", 0)) + int(wb.get("dropped", 0))
           + int(db.get("rx_filtered", 0)))
    if got > sent or sent - got > 64:
        errs.append("port %d sent %d frames; port %d got %d (with drops)"
                    % (a, sent, b, got))
if errs:
    sys.exit("counters: " + "; ".join(errs))
EOF
fi
echo "$name: timings: build=${build_s}s guests=${guest_s}s total=${SECONDS}s"
echo "$name: PASS"
