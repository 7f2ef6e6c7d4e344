#!/usr/bin/env bash
# Interop: a real Linux guest (Debian cloud kernel, its own virtio_net
# driver, under QEMU) on `vio serve net --port tap:vt0` over vhost-user,
# talking to the host's end of the TAP interface in a network namespace
# the test owns.
#
#   guest_net.sh VIO [--queues N] [--packed] [--bytes N] [--guest DIR]
#                    [--backend vio|qemu-tap] [--dev-opts ,K=V...]
#
# 1. a namespace vio-tnet-PID (deleted at the end, whatever happens), IPv6
#    off in it (no stray router solicitations: the counters stay exact);
# 2. in it: vio serve net creates the TAP vt0; the test gives vt0
#    10.77.0.1/24; netpeer.py (guest/netpeer.py) listens on port 5000;
# 3. QEMU boots with -netdev vhost-user + virtio-net-pci (vectors=0, see
#    below; mq=on for N > 1 pairs, packed=on with --packed, then
#    --dev-opts, e.g. ,guest_announce=off); in the guest netcheck
#    (guest/netcheck.sh) finds the NIC by MAC, checks its queue count, takes
#    10.77.0.2, pings the host, has the host ping it, sends N bytes (default
#    4 MiB) to the host and receives N bytes: sha256 compared at both ends
#    (the guest compares the host's answer, the host the guest's result
#    line and its own log);
# 4. after poweroff: vio serve exits 0 on SIGTERM and prints its JSON
#    counters; they must be non-zero and agree with the TAP's own counters
#    (every frame the guest sent went out on the TAP, every frame the TAP
#    took from the host reached the guest or was counted as dropped).
# --backend qemu-tap checks the guest half alone: QEMU's own -netdev tap
# (run inside the namespace) instead of vio; VIO is not used.
#
# Exit: 0 pass, 1 fail, 77 skip (no QEMU, python3, network namespaces or
# guest build: said loudly).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdir=$here/guest
vio=${1:?usage: guest_net.sh VIO [--queues N] [--packed] [--bytes N] [--guest DIR] [--backend vio|qemu-tap]}
shift
queues=1 packed=0 bytes=$((4 << 20)) backend=vio dev_opts=
guest=${VIO_GUEST_CACHE:-$(cd "$here/../.." && pwd)/build/guest}
while [ $# -gt 0 ]; do
	case "$1" in
	--queues) queues=$2; shift 2 ;;
	--packed) packed=1; shift ;;
	--bytes) bytes=$2; shift 2 ;;
	--guest) guest=$2; shift 2 ;;
	--backend) backend=$2; shift 2 ;;
	--dev-opts) dev_opts=$2; shift 2 ;;
	*) echo "guest_net: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$queues$bytes" in *[!0-9]*) echo "guest_net: numbers" >&2; exit 2 ;; esac
case "$backend" in vio | qemu-tap) ;; *) echo "guest_net: --backend vio|qemu-tap" >&2; exit 2 ;; esac
name="guest_net(backend=$backend queues=$queues packed=$packed)"
skip() {
	echo "$name: SKIP: $*" >&2
	exit 77
}
seed=$((RANDOM + 1))
mac=52:54:00:76:69:6f
host_ip=10.77.0.1 guest_ip=10.77.0.2 port=5000

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 is not installed (scripts/deps-guest.sh installs it)"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"

# one build of the guest at a time (tests run in parallel)
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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-net.XXXXXX")
ns=vio-tnet-$$
ns_made=0 serve_pid='' peer_pid=''
stop_pid() { # PID: TERM, 3 s, KILL
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 30); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	if [ -n "$serve_pid" ]; then
		kill -KILL "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	[ -z "$peer_pid" ] || stop_pid "$peer_pid"
	[ "$ns_made" = 0 ] || ip netns del "$ns" 2>/dev/null ||
		echo "$name: could not delete namespace $ns" >&2
	if [ "$rc" != 0 ]; then
		for f in serve.log peer.log; do
			[ -f "$tmp/$f" ] || continue
			echo "--- $f" >&2
			tail -n 30 "$tmp/$f" >&2
		done
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

ip netns add "$ns" 2>"$tmp/netns.err" ||
	skip "cannot create a network namespace (root needed): $(cat "$tmp/netns.err")"
ns_made=1
nsx() { ip netns exec "$ns" "$@"; }
nsx ip link set lo up
# no IPv6 on the TAP: only the test's own traffic crosses the link
nsx sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --)
fi
# wait_for SECS CMD...: CMD succeeds within SECS (polled every 10 ms)
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
alive() { kill -0 "$1" 2>/dev/null; }
tap_ready() { nsx ip link show vt0 && { [ -z "$serve_pid" ] || alive "$serve_pid"; }; }

qemu_net=()
if [ "$backend" = vio ]; then
	popt=()
	[ "$packed" = 0 ] || popt=(--packed)
	# not through nsx: a function run in the background is a subshell,
	# and serve_pid must be vio's own PID (ip netns exec execs)
	ip netns exec "$ns" "${reaper[@]}" "$vio" serve net --socket "$tmp/net.sock" \
		--port tap:vt0 --queues "$queues" --mac "$mac" "${popt[@]}" \
		--json --pidfile "$tmp/serve.pid" >"$tmp/serve.log" 2>&1 &
	serve_pid=$!
	wait_for 15 test -s "$tmp/serve.pid" || fail "vio serve net did not start in 15 s"
	alive "$serve_pid" || fail "vio serve net died at start"
	wait_for 5 tap_ready || fail "vio serve net made no TAP vt0 in $ns"
	qemu_net=(-chardev "socket,id=c0,path=$tmp/net.sock"
		-netdev "vhost-user,id=n0,chardev=c0,queues=$queues")
	qemu=${QEMU:-qemu-system-x86_64}
else
	mq=()
	[ "$queues" = 1 ] || mq=(multi_queue)
	nsx ip tuntap add dev vt0 mode tap "${mq[@]}"
	qemu_net=(-netdev "tap,id=n0,ifname=vt0,script=no,downscript=no,vhost=off,queues=$queues")
	# QEMU opens the TAP, so it runs in the namespace (ip netns exec
	# execs: the PID run-guest.sh records is QEMU's)
	printf '#!/bin/sh\nexec ip netns exec %s qemu-system-x86_64 "$@"\n' "$ns" \
		>"$tmp/qemu-in-ns"
	chmod +x "$tmp/qemu-in-ns"
	qemu=$tmp/qemu-in-ns
fi
nsx ip addr add "$host_ip/24" dev vt0
nsx ip link set vt0 up

ip netns exec "$ns" "${reaper[@]}" python3 "$gdir/netpeer.py" --port "$port" --seed "$seed" \
	--ready "$tmp/peer.ready" >"$tmp/peer.log" 2>&1 &
peer_pid=$!
wait_for 15 test -s "$tmp/peer.ready" || fail "netpeer did not start in 15 s"
rxsha=$(python3 "$gdir/netpeer.py" --source-sha "$bytes" --seed "$seed")

dev="virtio-net-pci,netdev=n0,mac=$mac"
if [ "$backend" = vio ]; then
	# QEMU 7.2 (Debian 12) under TCG segfaults when it starts
	# vhost-user-net with MSI-X on (vhost_net_start ->
	# msix_set_vector_notifiers -> virtio_pci_vector_unmask, as the guest
	# sets DRIVER_OK; also seen with DPDK's net_vhost): INTx (not tried
	# under KVM, where the irqfd path differs)
	dev="$dev,vectors=0"
	[ "$queues" = 1 ] || dev="$dev,mq=on"
elif [ "$queues" -gt 1 ]; then
	dev="$dev,mq=on,vectors=$((2 * queues + 2))"
fi
dev="$dev,packed=$([ "$packed" = 1 ] && echo on || echo off)$dev_opts"

cat >"$tmp/test.sh" <<EOF
set -e
netcheck --mac $mac --addr $guest_ip/24 --peer $host_ip --port $port \
	--bytes $bytes --rx-sha $rxsha --queues $queues --wait 20
# bit 34: VIRTIO_F_RING_PACKED; bit 32: VERSION_1
feat=\$(cat /sys/class/net/eth0/device/features)
[ "\$(echo "\$feat" | cut -c33)" = 1 ] || { echo "no VERSION_1"; exit 1; }
[ "\$(echo "\$feat" | cut -c35)" = $packed ] ||
	{ echo "packed bit is not $packed"; exit 1; }
EOF

rc=0
t1=$SECONDS
QEMU=$qemu "$gdir/run-guest.sh" --guest "$guest" --test "$tmp/test.sh" \
	--timeout 200 -- "${qemu_net[@]}" -device "$dev" \
	>"$tmp/run.out" 2>&1 || rc=$?
guest_s=$((SECONDS - t1))
grep -E 'netcheck:|RESULT|run-guest:' "$tmp/run.out" || true
if [ "$rc" != 0 ]; then
	cat "$tmp/run.out" >&2
	[ "$rc" = 77 ] && skip "QEMU cannot run"
	fail "guest run exit $rc"
fi
res=$(grep -o 'netcheck: RESULT PASS .*' "$tmp/run.out" | head -n1)
[ -n "$res" ] || fail "no netcheck PASS line"
field() { echo "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# both ends: what the host logged against what the guest says
grep -q "^netpeer: sink $bytes $(field tx_sha) " "$tmp/peer.log" ||
	fail "the guest sent sha256 $(field tx_sha); the host's log differs"
grep -q "^netpeer: source $bytes $rxsha " "$tmp/peer.log" ||
	fail "the host did not log sending $bytes bytes sha256 $rxsha"
[ "$(field rx_sha)" = "$rxsha" ] || fail "the guest received other bytes"
grep -q '^netpeer: host-ping ok' "$tmp/peer.log" || fail "no host-ping in the host's log"

# the TAP's counters (the kernel's view of the host end), read while the
# guest is off and nothing else uses the link
tapstats() { # rx_packets tx_packets of vt0
	nsx cat /sys/class/net/vt0/statistics/rx_packets \
		/sys/class/net/vt0/statistics/tx_packets | tr '\n' ' '
}
read -r tap_rx tap_tx <<<"$(tapstats)"
echo "$name: tap vt0 rx_packets=$tap_rx tx_packets=$tap_tx"

if [ "$backend" = vio ]; then
	alive "$serve_pid" || fail "vio serve net died during the run"
	kill -TERM "$serve_pid"
	timeout 10 tail --pid="$serve_pid" -f /dev/null ||
		fail "vio serve net still runs 10 s after SIGTERM"
	src=0
	wait "$serve_pid" || src=$?
	serve_pid=
	[ "$src" = 0 ] || fail "vio serve net exit status $src"
	grep -q 'connection 1: frontend attached' "$tmp/serve.log" ||
		fail "no connection log line"
	[ ! -e "$tmp/net.sock" ] || fail "socket file left behind"
	[ ! -e "$tmp/serve.pid" ] || fail "pidfile left behind"
	# the counters: the last JSON object vio serve net printed
	python3 - "$tmp/serve.log" "$tap_rx" "$tap_tx" "$bytes" "$queues" <<'EOF' ||
import json, sys
log, tap_rx, tap_tx, nbytes, nq = sys.argv[1], *map(int, sys.argv[2:])
obj = None
for line in open(log, errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            pass
if obj is None:
    sys.exit("no JSON counters in the vio serve net log")
print("vio counters:", json.dumps(obj, sort_keys=True))
c, pairs = obj.get("total"), obj.get("pairs", [])
if not isinstance(c, dict) or "rx_packets" not in c:
    sys.exit("no total rx_packets in the counters")
g = lambda k: int(c.get(k, 0))
errs = []
for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
    if sum(int(p.get(k, 0)) for p in pairs) != g(k):
        errs.append("the pairs' %s do not add up to the total" % k)
if len(pairs) != nq:
    errs.append("%d pairs in the counters, want %d" % (len(pairs), nq))
# tx: frames the guest sent, which vio writes to the TAP (rx on vt0)
if g("tx_packets") == 0 or g("rx_packets") == 0:
    errs.append("zero packet counters")
if g("tx_bytes") < nbytes or g("rx_bytes") < nbytes:
    errs.append("fewer bytes than the %d the transfers moved" % nbytes)
if g("tx_packets") - g("tx_dropped") != tap_rx:
    errs.append("vio sent %d - %d dropped to the TAP, which received %d"
                % (g("tx_packets"), g("tx_dropped"), tap_rx))
# rx: frames the host sent on vt0, which vio delivers to the guest
lost = g("rx_no_buffer") + g("rx_dropped") + g("rx_filtered")
if g("rx_packets") + lost != tap_tx:
    errs.append("the TAP sent %d; vio delivered %d and dropped %d"
                % (tap_tx, g("rx_packets"), lost))
if g("tx_errors"):
    errs.append("%d transmit errors" % g("tx_errors"))
if errs:
    sys.exit("counters: " + "; ".join(errs))
EOF
		fail "vio's counters (above)"
fi
echo "$name: timings: build=${build_s}s guest=${guest_s}s total=${SECONDS}s"
echo "$name: PASS"
