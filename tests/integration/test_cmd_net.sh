#!/usr/bin/env bash
# vio serve net / vio serve switch / vio net, end to end (issue 9 item 4):
# serve net --port echo + vio net ping (every frame back intact, MAC
# swapped) and bench --mode loop --json (parses, frames counted both
# ways, none lost); --port gen + vio net recv (counted, none malformed);
# --port sink and sink:check + vio net send --count 1000 (the server's
# JSON counters at SIGTERM: 1000 frames from the driver, 0 bad); split
# and packed, 1 and
# 2 queue pairs.  serve switch with two sockets: vio net recv on one,
# vio net send to its MAC on the other: every frame crosses intact.
# Bad options: a clear error naming the option, exit 2.
# Readiness: --pidfile (serve), a "receiving" line (vio net recv).
set -uo pipefail
vio=$(realpath "${1:?usage: test_cmd_net.sh VIO}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-net-test.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $*"; }
# expect NAME RC PATTERN -- ARGS...: exit code and a stderr line
expect() {
	local name=$1 rc=$2 pat=$3
	shift 4
	local out got=0
	out=$(timeout 10 "$vio" "$@" 2>&1 >/dev/null) || got=$?
	if [ "$got" != "$rc" ] || ! grep -qE -- "$pat" <<<"$out"; then
		bad "$name: exit $got (want $rc), stderr: $out"
	else
		ok "$name: $(head -n1 <<<"$out")"
	fi
}
# wait_file FILE PID: FILE has content (or PATTERN, 3rd arg, is in it)
# within 20 s, and PID did not die first
wait_file() {
	local end=$((SECONDS + 20))
	until [ -s "$1" ] && { [ -z "${3:-}" ] || grep -q -- "$3" "$1"; }; do
		kill -0 "$2" 2>/dev/null || return 1
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.01
	done
}
# serve NAME ARGS...: vio serve ARGS --pidfile NAME.pid --json in the
# background (stdout NAME.out, stderr NAME.err); spid = its PID
serve() {
	local name=$1
	shift
	rm -f "$name.pid"
	"$vio" serve "$@" --pidfile "$tmp/$name.pid" --json >"$name.out" 2>"$name.err" &
	spid=$!
	pids+=("$spid")
	wait_file "$name.pid" "$spid" || { bad "$name: server not ready: $(cat "$name.err")"; return 1; }
}
# stop PID: SIGTERM, exit 0 within 10 s
stop() {
	kill -TERM "$1"
	timeout 10 tail --pid="$1" -f /dev/null
	wait "$1"
}
# json FILE EXPR: evaluate EXPR (python, on the last JSON line of FILE as
# j) and print it
json() {
	python3 -c 'import json,sys
lines=[l for l in open(sys.argv[1]) if l.startswith("{")]
j=json.loads(lines[-1])
print(eval(sys.argv[2]))' "$1" "$2"
}
cd "$tmp"

# ---- option errors ----
expect serve-help 0 '' -- serve net --help
expect switch-help 0 '' -- serve switch --help
expect net-help 0 '' -- net --help
for v in info send recv ping bench; do expect "net-$v-help" 0 '' -- net "$v" --help; done
expect no-socket 2 'socket PATH is required' -- serve net --port echo
expect bad-port 2 "--port 'bogus': unknown port kind" -- serve net --socket s --port bogus
expect bad-gen 2 "--port 'gen:10'" -- serve net --socket s --port gen:10
expect bad-mac 2 "--mac '52:54:00:12:34': expected six hex bytes" -- serve net --socket s --mac 52:54:00:12:34
expect mcast-mac 2 "--mac '01:00:5e:00:00:01': a multicast" -- serve net --socket s --mac 01:00:5e:00:00:01
expect bad-mtu 2 "--mtu" -- serve net --socket s --mtu 67
expect bad-queues 2 "--queues" -- serve net --socket s --queues 9
expect two-sockets 2 'one --socket' -- serve net --socket a --socket b
expect switch-port 2 '--port is for' -- serve switch --socket a --port echo
expect switch-threads 2 'one thread' -- serve switch --socket a --threads 2
expect bad-interval 2 '--stats-interval' -- serve net --socket s --stats-interval 0
expect net-no-socket 2 'socket PATH is required' -- net info
expect net-no-verb 2 'missing verb' -- net --socket s
expect net-bad-verb 2 "unknown verb 'fly'" -- net --socket s fly
expect net-bad-mode 2 "--mode 'up'" -- net --socket s bench --mode up
expect net-bad-size 2 '--size' -- net --socket s send --size 59
expect net-bad-dst 2 "--dst 'zz'" -- net --socket s send --dst zz
expect net-bad-queues 2 '--queues' -- net --socket s --queues 0 info
expect net-packed-both 2 'exclude each other' -- net --socket s --packed --no-packed info
expect net-wrong-opt 2 'send takes no option --mode' -- net --socket s send --mode tx
expect net-nothing 1 "$tmp/none.sock" -- net --socket "$tmp/none.sock" info

# ---- echo: ping, bench loop; split and packed; 1 and 2 pairs ----
for ring in split packed; do
	for q in 1 2; do
		name="echo-$ring-$q"
		sflag=() dflag=(--no-packed)
		[ "$ring" = packed ] && sflag=(--packed) dflag=(--packed)
		serve "$name" net --socket "$tmp/e.sock" --port echo --queues "$q" "${sflag[@]}" || continue
		out=$(timeout 30 "$vio" net --socket "$tmp/e.sock" "${dflag[@]}" info --json)
		if [ "$(json <(echo "$out") 'j["pairs"], j["packed"]')" = "($q, $([ "$ring" = packed ] && echo True || echo False))" ]; then
			ok "$name info: $out"
		else
			bad "$name info: $out"
		fi
		if out=$(timeout 30 "$vio" net --socket "$tmp/e.sock" "${dflag[@]}" ping --count 200 --size 100 2>&1) &&
			grep -q '200 sent, 200 came back intact, 0 lost, 0 altered' <<<"$out"; then
			ok "$name ping: $(tail -n1 <<<"$out")"
		else
			bad "$name ping: $out"
		fi
		# 1 pair: busy-polling (--poll; frames in place either way)
		poll=(); [ "$q" = 1 ] && poll=(--poll)
		timeout 60 "$vio" net --socket "$tmp/e.sock" "${dflag[@]}" bench --mode loop --time 1 "${poll[@]}" --json >bench.json 2>bench.err
		rc=$?
		r=$(json bench.json 'j["tx"]["packets"] > 0 and j["rx"]["packets"] == j["tx"]["packets"] and j["lost"] == 0 and j["rx"]["bad"] == 0 and j["pairs"] == '"$q"' and j["poll"] == ('"$q"' == 1) and all(p["rx_packets"] > 0 for p in j["per_pair"])' 2>&1)
		if [ "$rc" = 0 ] && [ "$r" = True ]; then
			ok "$name bench loop: $(json bench.json '"%.3f Mpps each way" % j["rx"]["mpps"]')"
		else
			bad "$name bench loop: exit $rc, $r, $(cat bench.json bench.err)"
		fi
		stop "$spid" || bad "$name: server exit $?"
		r=$(json "$name.out" 'j["event"] == "exit" and j["total"]["tx_packets"] == j["port"]["packets"] and j["port"]["bad"] == 0 and j["total"]["tx_errors"] == 0' 2>&1)
		[ "$r" = True ] && ok "$name counters" || bad "$name counters: $r: $(cat "$name.out")"
	done
done

# ---- sink, sink:check: 1000 frames sent, the server counts 1000 (128000
# bytes) and none bad ----
for ring in split packed; do
	for kind in sink sink:check; do
		name="${kind/:/-}-$ring"
		sflag=() dflag=(--no-packed)
		[ "$ring" = packed ] && sflag=(--packed) dflag=(--packed)
		serve "$name" net --socket "$tmp/s.sock" --port "$kind" "${sflag[@]}" || continue
		if ! out=$(timeout 30 "$vio" net --socket "$tmp/s.sock" "${dflag[@]}" send --count 1000 --size 128 2>&1); then
			bad "$name send: $out"
		fi
		stop "$spid" || bad "$name: server exit $?"
		r=$(json "$name.out" 'j["port"]["kind"], j["total"]["tx_packets"], j["port"]["packets"], j["port"]["bytes"], j["port"]["bad"], j["total"]["tx_errors"]' 2>&1)
		[ "$r" = "('$kind', 1000, 1000, 128000, 0, 0)" ] && ok "$name: server counted 1000 frames, 0 bad" ||
			bad "$name: counters $r: $(cat "$name.out" "$name.err")"
	done
done

# ---- gen: vio net recv counts what the port makes ----
for q in 1 2; do
	name="gen-$q"
	serve "$name" net --socket "$tmp/g.sock" --port gen:128 --queues "$q" || continue
	if out=$(timeout 30 "$vio" net --socket "$tmp/g.sock" recv --count 5000 --timeout 20 --json 2>recv.err) &&
		[ "$(json <(echo "$out") 'j["packets"] >= 5000 and j["bad"] == 0 and j["bytes"] == 128 * j["packets"]')" = True ]; then
		ok "$name recv: $out"
	else
		bad "$name recv: $out $(cat recv.err)"
	fi
	stop "$spid" || bad "$name: server exit $?"
	r=$(json "$name.out" 'j["port"]["made"] >= 5000 and j["total"]["rx_packets"] >= 5000' 2>&1)
	[ "$r" = True ] && ok "$name counters" || bad "$name counters: $r: $(cat "$name.out")"
done

# ---- switch: two ports; frames from one reach the other ----
for ring in split packed; do
	name="switch-$ring"
	sflag=() dflag=(--no-packed)
	[ "$ring" = packed ] && sflag=(--packed) dflag=(--packed)
	serve "$name" switch --socket "$tmp/a.sock" --socket "$tmp/b.sock" "${sflag[@]}" || continue
	mac=$(timeout 30 "$vio" net --socket "$tmp/b.sock" "${dflag[@]}" info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["mac"])')
	rm -f recv.out recv.err
	timeout 60 "$vio" net --socket "$tmp/b.sock" "${dflag[@]}" recv --count 300 --timeout 30 --json >recv.out 2>recv.err &
	rpid=$!
	pids+=("$rpid")
	if ! wait_file recv.err "$rpid" "receiving on"; then
		bad "$name: recv not ready: $(cat recv.err)"
	elif ! out=$(timeout 30 "$vio" net --socket "$tmp/a.sock" "${dflag[@]}" send --count 300 --size 200 --dst "$mac" 2>&1); then
		bad "$name send: $out"
	fi
	wait "$rpid"
	rc=$?
	r=$(json recv.out 'j["packets"] == 300 and j["ours"] == 300 and j["bad"] == 0' 2>&1)
	[ "$rc" = 0 ] && [ "$r" = True ] && ok "$name: 300 frames crossed intact ($(cat recv.out))" ||
		bad "$name: recv exit $rc, $r, $(cat recv.out recv.err)"
	# and the other way, broadcast.  Files of their own, removed first:
	# the shell truncates a redirect in the child, after the fork, so a
	# reused recv.err could still show the first leg's "receiving on"
	# to wait_file and the sender would start before this receiver
	rm -f bcast.out bcast.err
	timeout 60 "$vio" net --socket "$tmp/a.sock" "${dflag[@]}" recv --count 100 --timeout 30 --json >bcast.out 2>bcast.err &
	rpid=$!
	pids+=("$rpid")
	if wait_file bcast.err "$rpid" "receiving on"; then
		timeout 30 "$vio" net --socket "$tmp/b.sock" "${dflag[@]}" send --count 100 >/dev/null 2>&1
	fi
	wait "$rpid"
	rc=$?
	r=$(json bcast.out 'j["packets"] == 100 and j["ours"] == 100' 2>&1)
	[ "$rc" = 0 ] && [ "$r" = True ] && ok "$name: 100 broadcast frames crossed back" ||
		bad "$name broadcast: recv exit $rc, $r, $(cat bcast.out bcast.err)"
	stop "$spid" || bad "$name: server exit $?"
	r=$(json "$name.out" '[p["switch"]["rx_packets"] for p in j["ports"]], [p["switch"]["tx_packets"] for p in j["ports"]]' 2>&1)
	[ "$r" = "([300, 100], [100, 300])" ] && ok "$name counters: $r" || bad "$name counters: $r: $(cat "$name.out")"
done

echo "cmd_net: $checks checks, $fails failed"
[ "$fails" = 0 ]
