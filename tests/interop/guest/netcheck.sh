#!/bin/sh
# netcheck --mac MAC --addr IP/LEN --peer IP --port P [--bytes N]
#          [--rx-sha HEX] [--queues Q] [--wait SECS]
# netcheck --mac MAC --addr IP/LEN [--queues Q] [--wait SECS] --setup-only
# The guest half of the net interop test (guest_net.sh), installed in the
# guest as /bin/netcheck (busybox sh). The peer is tests/interop's
# netpeer.py, listening on PEER:P on the host's end of the link.
#
# 1. waits up to SECS (default 20) for the interface with MAC, checks its
#    driver is virtio_net and (with --queues) that it has Q rx and Q tx
#    queues; gives it IP/LEN, brings it up and waits for the carrier;
# 2. pings PEER (3 echoes, 15 s at most);
# 3. asks the peer to ping this guest ("ping IP"): the peer answers
#    "host-ping ok" or the test fails;
# 4. sends N bytes (default 4 MiB, from /dev/urandom) to the peer ("sink"):
#    the peer answers with the byte count and sha256 it received, which
#    must equal what the guest sent;
# 5. receives N bytes from the peer ("source N"): their sha256 must equal
#    --rx-sha (the host knows its data in advance) when given.
# --setup-only: step 1 alone (the two-guest test runs its own traffic).
# Every nc is bounded by timeout(1). Last line:
#   netcheck: RESULT PASS if=eth0 tx_bytes=N tx_sha=HEX rx_bytes=N rx_sha=HEX ...
#   netcheck: RESULT FAIL <reason>
# exit 0 pass, 1 fail, 2 usage.
mac='' addr='' peer='' port='' bytes=4194304 rxsha='' queues='' wait=20
setup_only=0
while [ $# -gt 0 ]; do
	case "$1" in
	--mac) mac=$2; shift 2 ;;
	--addr) addr=$2; shift 2 ;;
	--peer) peer=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--bytes) bytes=$2; shift 2 ;;
	--rx-sha) rxsha=$2; shift 2 ;;
	--queues) queues=$2; shift 2 ;;
	--wait) wait=$2; shift 2 ;;
	--setup-only) setup_only=1; shift ;;
	*) echo "netcheck: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$mac" ] || [ -z "$addr" ] ||
	{ [ "$setup_only" = 0 ] && { [ -z "$peer" ] || [ -z "$port" ]; }; }; then
	echo "netcheck: --mac, --addr, --peer and --port are required" >&2
	exit 2
fi
case "$bytes$wait$queues" in *[!0-9]*) echo "netcheck: numbers" >&2; exit 2 ;; esac
if [ "$bytes" -lt 65536 ] || [ $((bytes % 65536)) != 0 ]; then
	echo "netcheck: --bytes wants a multiple of 65536" >&2
	exit 2
fi

fail() {
	echo "netcheck: RESULT FAIL $*"
	exit 1
}
now() { read -r t _ </proc/uptime; echo "$t"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# ask PEER: "$1" as the first line, then the rest of stdin
ask() { # SECS CMD
	{ echo "$2"; cat; } | timeout "$1" nc "$peer" "$port"
}

# 1. the interface
want=$(echo "$mac" | tr 'A-F' 'a-f')
dev=
i=0
while :; do
	for d in /sys/class/net/*; do
		[ "$(cat "$d/address" 2>/dev/null)" = "$want" ] || continue
		dev=${d##*/}
	done
	[ -z "$dev" ] || break
	[ "$i" -lt $((wait * 10)) ] || fail "no interface with MAC $want after ${wait}s"
	sleep 0.1
	i=$((i + 1))
done
drv=$(basename "$(readlink "/sys/class/net/$dev/device/driver")")
feat=$(cat "/sys/class/net/$dev/device/features" 2>/dev/null)
nrx=0 ntx=0
for q in "/sys/class/net/$dev/queues/"*; do
	case "${q##*/}" in
	rx-*) nrx=$((nrx + 1)) ;;
	tx-*) ntx=$((ntx + 1)) ;;
	esac
done
echo "netcheck: if=$dev driver=$drv rx_queues=$nrx tx_queues=$ntx features=$feat"
# the virtio device is the parent of the netdev (virtioN, driver virtio_net)
[ "$drv" = virtio_net ] || fail "$dev: driver $drv, not virtio_net"
if [ -n "$queues" ]; then
	if [ "$nrx" != "$queues" ] || [ "$ntx" != "$queues" ]; then
		fail "$dev: $nrx rx / $ntx tx queues, want $queues"
	fi
fi
ip link set lo up
ip addr add "$addr" dev "$dev" || fail "ip addr add $addr"
ip link set "$dev" up || fail "ip link set $dev up"
i=0
until [ "$(cat "/sys/class/net/$dev/carrier" 2>/dev/null)" = 1 ]; do
	[ "$i" -lt 100 ] || fail "$dev: no carrier after 10 s"
	sleep 0.1
	i=$((i + 1))
done
if [ "$setup_only" = 1 ]; then
	echo "netcheck: RESULT PASS if=$dev addr=$addr setup-only"
	exit 0
fi

# 2. guest -> host ping (the first echo also resolves the peer's MAC)
t=$(now)
out=$(ping -c 3 -w 15 "$peer" 2>&1)
echo "$out" | tail -n 2 | sed 's/^/netcheck: ping: /'
echo "$out" | grep -q ' 0% packet loss' || fail "ping $peer"
ping_s=$(since "$t")

# 3. host -> guest ping
reply=$(ask 30 "ping ${addr%/*}" </dev/null)
echo "netcheck: peer: $reply"
case "$reply" in
"host-ping ok "*) ;;
*) fail "the peer could not ping ${addr%/*}: ${reply:-no answer}" ;;
esac

# 4. guest -> host: N bytes; the peer answers "sink BYTES SHA"
dd if=/dev/urandom of=/tmp/tx bs=65536 count=$((bytes / 65536)) 2>/dev/null
txsha=$(sha256sum </tmp/tx | cut -d' ' -f1)
t=$(now)
reply=$(ask 120 sink </tmp/tx)
tx_s=$(since "$t")
echo "netcheck: peer: $reply"
[ "$reply" = "sink $bytes $txsha" ] ||
	fail "sent $bytes bytes sha256 $txsha; the peer got: ${reply:-no answer}"

# 5. host -> guest: N bytes of the peer's data
t=$(now)
ask 120 "source $bytes" </dev/null >/tmp/rx
rx_s=$(since "$t")
rxbytes=$(wc -c </tmp/rx)
rxsha_got=$(sha256sum </tmp/rx | cut -d' ' -f1)
rm -f /tmp/rx /tmp/tx
stats=$(for s in rx_packets tx_packets rx_dropped tx_dropped rx_errors tx_errors; do
	printf ' %s=%s' "$s" "$(cat "/sys/class/net/$dev/statistics/$s")"
done)
res="if=$dev tx_bytes=$bytes tx_sha=$txsha rx_bytes=$rxbytes rx_sha=$rxsha_got"
res="$res ping_s=$ping_s tx_s=$tx_s rx_s=$rx_s$stats"
[ "$rxbytes" = "$bytes" ] || fail "$res: received $rxbytes bytes, want $bytes"
[ -z "$rxsha" ] || [ "$rxsha" = "$rxsha_got" ] ||
	fail "$res: received data sha256 differs from the peer's $rxsha"
echo "netcheck: RESULT PASS $res"
