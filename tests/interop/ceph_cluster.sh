#!/usr/bin/env bash
# A throwaway single-node Ceph cluster for tests and benchmarks: one
# monitor on 127.0.0.1 (a free port), one OSD keeping its objects in
# memory (memstore), no authentication, pools of size 1, one RBD image.
# Everything lives in DIR; the daemons are stopped by PID.
#
#   ceph_cluster.sh start DIR [--size SIZE] [--pool P] [--image I]
#       prints, one per line: conf=DIR/ceph.conf pool=P image=I
#       mon_pid=N osd_pid=N  (also written to DIR/cluster.env)
#   ceph_cluster.sh stop DIR
#
# Sourced (`. ceph_cluster.sh`), it defines ceph_cluster_start DIR [...]
# and ceph_cluster_stop DIR, which set CEPH_CONF, CEPH_POOL, CEPH_IMAGE,
# CEPH_MON_PID, CEPH_OSD_PID in the caller.
#
# Readiness is a condition with a deadline (CEPH_CLUSTER_DEADLINE seconds,
# default 60): the monitor answering, the OSD up and in, the image
# created (rbd create waits on the pool's placement groups).  Needs ceph-mon, ceph-osd, monmaptool, ceph and
# rbd (Debian: ceph-mon, ceph-osd, ceph-common); ceph_cluster_missing
# names the first one missing (callers skip on it).
# Exit status of start: 0, or 1 with the daemons' log tails on stderr.

ceph_cluster_missing() {
	local t
	for t in ceph-mon ceph-osd monmaptool ceph rbd python3; do
		command -v "$t" >/dev/null 2>&1 || { echo "$t"; return 0; }
	done
	return 1
}

# a TCP port nobody listens on now (the kernel's choice)
_ceph_free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

_ceph_logs() {
	local dir=$1 f
	for f in "$dir"/log/*.log "$dir"/*.out; do
		[ -s "$f" ] || continue
		echo "--- $f" >&2
		tail -n 15 "$f" >&2
	done
}

# _ceph_wait DIR WHAT DEADLINE CMD...: run CMD until it succeeds, until the
# monotonic deadline (seconds since the epoch of SECONDS)
_ceph_wait() {
	local what=$2 deadline=$3
	shift 3
	while ! "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "ceph_cluster: $what: not ready in time" >&2
			return 1
		fi
		sleep 0.1
	done
}

_ceph_osd_up_in() {
	ceph -c "$1" --connect-timeout 5 osd stat -f json 2>/dev/null |
		python3 -c 'import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d.get("num_up_osds") == 1 and d.get("num_in_osds") == 1 else 1)'
}

ceph_cluster_stop() {
	local dir=${1:?ceph_cluster_stop DIR} f pid
	for f in "$dir"/osd.pid "$dir"/mon.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		rm -f "$f"
		[ -n "$pid" ] || continue
		# SIGKILL: the data is thrown away anyway, and a memstore OSD
		# stopped cleanly first writes every object to its directory
		kill -KILL "$pid" 2>/dev/null || continue
		# reaped here if it is our child; else gone within a moment
		wait "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
	done
	return 0
}

ceph_cluster_start() {
	local dir=${1:?ceph_cluster_start DIR [--size S] [--pool P] [--image I]}
	shift
	local size=1G pool=rbd image=img
	while [ $# -gt 0 ]; do
		case "$1" in
		--size) size=$2; shift 2 ;;
		--pool) pool=$2; shift 2 ;;
		--image) image=$2; shift 2 ;;
		*) echo "ceph_cluster: unknown argument $1" >&2; return 2 ;;
		esac
	done
	local m
	if m=$(ceph_cluster_missing); then
		echo "ceph_cluster: $m is not installed" >&2
		return 1
	fi
	local deadline=$((SECONDS + ${CEPH_CLUSTER_DEADLINE:-60}))
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	mkdir -p "$dir/mon/a" "$dir/osd/0" "$dir/run" "$dir/log" || return 1
	local conf=$dir/ceph.conf fsid port
	fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
	port=$(_ceph_free_port) || return 1
	# memstore keeps the objects in the OSD's memory (memstore device
	# bytes is its capacity; in pages, else a small write to an object
	# copies all of its 4 MiB); no messenger v1, no keys; the pool of size
	# 1 is what a single OSD can hold, its warnings silenced; nothing
	# autoscaled (no manager runs here)
	cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$port
mon initial members = a
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
run dir = $dir/run
pid file =
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
keyring = $dir/keyring
osd objectstore = memstore
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-4294967296}
memstore page set = true
osd data = $dir/osd/\$id
mon data = $dir/mon/\$id
osd max object name len = 256
osd max object namespace len = 64
osd op num shards = 1
osd op num threads per shard = 2
[client]
log file =
log to stderr = false
admin socket =
EOF
	# with auth none no key is checked, but the tools read the file
	: >"$dir/keyring"
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
		"$dir/monmap" >/dev/null || return 1
	ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" \
		>"$dir/mon-mkfs.out" 2>&1 || { _ceph_logs "$dir"; return 1; }
	ceph-mon -c "$conf" -i a -f >"$dir/mon.out" 2>&1 &
	echo $! >"$dir/mon.pid"
	_ceph_wait "$dir" "monitor" "$deadline" \
		ceph -c "$conf" --connect-timeout 5 mon stat ||
		{ _ceph_logs "$dir"; ceph_cluster_stop "$dir"; return 1; }
	local uuid id
	uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
	id=$(ceph -c "$conf" osd new "$uuid" 2>"$dir/osd-new.out") ||
		{ _ceph_logs "$dir"; ceph_cluster_stop "$dir"; return 1; }
	if [ "$id" != 0 ]; then
		echo "ceph_cluster: osd new gave id '$id', expected 0" >&2
		ceph_cluster_stop "$dir"
		return 1
	fi
	ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" \
		>"$dir/osd-mkfs.out" 2>&1 ||
		{ _ceph_logs "$dir"; ceph_cluster_stop "$dir"; return 1; }
	ceph-osd -c "$conf" -i 0 -f >"$dir/osd.out" 2>&1 &
	echo $! >"$dir/osd.pid"
	_ceph_wait "$dir" "osd.0 up and in" "$deadline" _ceph_osd_up_in "$conf" ||
		{ _ceph_logs "$dir"; ceph_cluster_stop "$dir"; return 1; }
	{
		# size 1 from osd pool default size
		ceph -c "$conf" osd pool create "$pool" 8 8 &&
			ceph -c "$conf" osd pool application enable "$pool" rbd
	} >"$dir/pool.out" 2>&1 ||
		{ cat "$dir/pool.out" >&2; _ceph_logs "$dir"; ceph_cluster_stop "$dir"; return 1; }
	# no manager runs (Debian ships it apart), so `pg stat` cannot answer:
	# rbd create itself waits for the pool's placement groups to be
	# active, bounded by what is left of the deadline
	local left=$((deadline - SECONDS))
	[ "$left" -gt 0 ] || left=1
	timeout -k 2 "$left" rbd -c "$conf" create --size "$size" "$pool/$image" \
		>"$dir/rbd.out" 2>&1 ||
		{ echo "ceph_cluster: rbd create $pool/$image failed or timed out" >&2
		  cat "$dir/rbd.out" >&2; _ceph_logs "$dir"; ceph_cluster_stop "$dir"; return 1; }
	# for the caller (sourced)
	# shellcheck disable=SC2034
	CEPH_CONF=$conf CEPH_POOL=$pool CEPH_IMAGE=$image
	CEPH_MON_PID=$(cat "$dir/mon.pid") CEPH_OSD_PID=$(cat "$dir/osd.pid")
	cat >"$dir/cluster.env" <<EOF
conf=$conf
pool=$pool
image=$image
mon_pid=$CEPH_MON_PID
osd_pid=$CEPH_OSD_PID
EOF
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:-}
	dir=${2:-}
	if [ -z "$cmd" ] || [ -z "$dir" ]; then
		echo "usage: ceph_cluster.sh start|stop DIR [--size S] [--pool P] [--image I]" >&2
		exit 2
	fi
	shift 2
	case "$cmd" in
	start)
		# the daemons outlive this script: they are stopped by
		# `ceph_cluster.sh stop DIR`, by the PIDs in DIR
		ceph_cluster_start "$dir" "$@" || exit 1
		cat "$dir/cluster.env"
		;;
	stop) ceph_cluster_stop "$dir" ;;
	*) echo "ceph_cluster: unknown command $cmd" >&2; exit 2 ;;
	esac
fi
