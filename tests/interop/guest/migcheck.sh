#!/bin/sh
# migcheck DEV --seed S [--mode idle|load|busy] [--jobs J] [--max-passes N]
#   [--wait SECS]: the guest side of tests/interop/guest_blk_migrate.sh, a
# write-and-verify loop on DEV that keeps running while the guest migrates
# to another QEMU.  Copied into the guest as /bin/migcheck (busybox sh).
#
# A pass is one `blkcheck DEV --seed S+p --passes 1`: the whole disk written
# in shuffled extents of varied sizes with a pattern of its own (seed S+p),
# flushed, read back in another shuffled order and compared.
#
# The host talks to the guest through the console, two lines:
#   VIO-MIGRATING (on the SOURCE's console, once the migration runs with
#     dirty logging on and every page has been sent once): the guest stops
#     its writers (SIGSTOP to blkcheck, then no request in flight), drops
#     its caches and reads the whole disk, buffered, into the page cache:
#     the device writes those pages into guest RAM while the migration
#     runs, so only the backend's dirty log makes QEMU send them again.
#     It prints "MIGCHECK: migration under way: page cache filled md5=M"
#     and keeps the writers stopped;
#   VIO-MIGRATED (on the DESTINATION's console, the migration is over):
#     the guest reads the disk again from the page cache alone (no cache
#     dropped) and compares the md5: a backend that does not log its
#     writes leaves stale pages here (every O_DIRECT check is compared on
#     the source as each read completes, and cannot see it); then the
#     writers resume.
# A background reader of the console does both, so the read happens at
# once whatever the main loop does.  Until the page-cache read is over a
# "dirtier" rewrites 32 MiB of tmpfs in a loop: the migration cannot
# converge (and complete) before the guest had the chance to read.
#   load: passes run back to back from the start; the host migrates while
#         they run.  After the migration, the pass under way ends and one
#         more pass runs whole on the destination.
#   idle: pass 0, then no I/O until VIO-MIGRATING; on VIO-MIGRATED pass
#         0's pattern is read back on the destination and pass 1 runs.
#   busy: passes run back to back and are never held: no VIO-MIGRATING
#         (it fails: no page-cache check, no dirtier), so requests are in
#         flight when the source stops; on VIO-MIGRATED the pass under way
#         ends and one more runs whole, as in load.  A "ticker" prints
#           MIGCHECK: T n=N p=P io=R/W inflight=IR/IW
#         every 50 ms (guest time) from pass 0 on: tick number, the pass
#         under way, the device's completed reads/writes and the requests
#         in flight (/sys/block/DEV/stat and inflight).  The host compares
#         the last tick on the source's console with the first ones on the
#         destination's (guest_blk_migrate.sh's header says how).
# Any blkcheck failure (I/O error or mismatch), a page cache that changed,
# no VIO-MIGRATING before VIO-MIGRATED, an I/O error in the kernel log,
# or no message in time (--max-passes passes, or --wait seconds in idle
# mode) fails.  Lines: "MIGCHECK: pass P begins seed=S",
# "MIGCHECK: pass P done", at the end
#   MIGCHECK: VERDICT PASS passes=N last_seed=S   (exit 0)
#   MIGCHECK: VERDICT FAIL <reason>               (exit 1)
# The host checks the image against last_seed (generation 1) after
# poweroff.
dev=
seed=
mode=load
jobs=2
max=60
wait=300
while [ $# -gt 0 ]; do
	case "$1" in
	--seed) seed=$2; shift 2 ;;
	--mode) mode=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	--max-passes) max=$2; shift 2 ;;
	--wait) wait=$2; shift 2 ;;
	-*) echo "migcheck: unknown option $1" >&2; exit 2 ;;
	*) dev=$1; shift ;;
	esac
done
case "$seed$jobs$max$wait" in '' | *[!0-9]*)
	echo "migcheck: --seed/--jobs/--max-passes/--wait take numbers" >&2
	exit 2 ;;
esac
case "$mode" in idle | load | busy) ;; *) echo "migcheck: --mode idle|load|busy" >&2; exit 2 ;; esac
[ -b "$dev" ] || { echo "migcheck: $dev is not a block device" >&2; exit 2; }

verdict_fail() {
	: >/tmp/tick.stop
	echo "MIGCHECK: VERDICT FAIL $*"
	exit 1
}

name=${dev##*/}
rm -f /tmp/migrated /tmp/cache.md5 /tmp/cache.fail /tmp/bc.pid /tmp/dirt.stop \
	/tmp/tick.stop /tmp/pass.cur
rmdir /tmp/io.lock 2>/dev/null

# The dirtier: 32 MiB of random data rewritten in place (the same pages:
# it frees none, so the page cache does not get pages the CPU dirtied
# and QEMU sends anyway) until the page cache is filled (or migcheck
# ends).  Not in busy mode: there is no page-cache read to wait for.
if [ "$mode" != busy ]; then
	dd if=/dev/urandom of=/tmp/dirt.src bs=1M count=32 2>/dev/null
	cp /tmp/dirt.src /tmp/dirt
	(
		until [ -f /tmp/dirt.stop ]; do
			dd if=/tmp/dirt.src of=/tmp/dirt bs=1M conv=notrunc 2>/dev/null
		done
		rm -f /tmp/dirt /tmp/dirt.src
	) &
fi

# writers: the PIDs of the shell child about to exec blkcheck and of every
# blkcheck process
writers() {
	cat /tmp/bc.pid 2>/dev/null
	for f in /proc/[0-9]*/comm; do
		[ "$(cat "$f" 2>/dev/null)" = blkcheck ] || continue
		f=${f#/proc/}
		echo "${f%/comm}"
	done
}
# stop_writers: every writer stopped, then no request in flight on the
# device (3000 rounds of 10 ms at most)
stop_writers() {
	n=0
	while :; do
		busy=
		for p in $(writers); do
			st=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
			case "$st" in
			'' | T | t | Z | X) ;;
			*)
				kill -STOP "$p" 2>/dev/null
				busy=1
				;;
			esac
		done
		if [ -z "$busy" ]; then
			read -r r w <"/sys/block/$name/inflight"
			[ "$r$w" = 00 ] && return 0
		fi
		n=$((n + 1))
		[ "$n" -lt 3000 ] || return 1
		sleep 0.01
	done
}

# The console reader.  A background job of a non-interactive shell reads
# /dev/null unless told otherwise: read the console explicitly.  It holds
# /tmp/io.lock (no blkcheck starts) from VIO-MIGRATING to VIO-MIGRATED.
(
	held=
	while read -r line; do
		case "$line" in
		*VIO-MIGRATING*)
			if [ "$mode" = busy ]; then
				echo "VIO-MIGRATING in busy mode (nothing is held)" >>/tmp/cache.fail
				continue
			fi
			[ -z "$held" ] || continue
			until mkdir /tmp/io.lock 2>/dev/null; do sleep 0.01; done
			held=1
			stop_writers ||
				echo "the writers did not stop" >/tmp/cache.fail
			# Linux drops a block device's page cache when its last
			# opener closes it: fd 3 keeps it open until the compare
			exec 3<"$dev"
			echo 3 >/proc/sys/vm/drop_caches
			md5sum <"$dev" | cut -d' ' -f1 >/tmp/cache.md5
			: >/tmp/dirt.stop
			echo "MIGCHECK: migration under way: page cache filled md5=$(cat /tmp/cache.md5)"
			;;
		*VIO-MIGRATED*)
			if [ "$mode" = busy ]; then
				echo "MIGCHECK: told of the migration (busy)"
			elif [ -z "$held" ]; then
				echo "VIO-MIGRATED came before VIO-MIGRATING" >/tmp/cache.fail
			else
				ref=$(cat /tmp/cache.md5)
				now=$(md5sum <"$dev" | cut -d' ' -f1)
				if [ "$now" = "$ref" ]; then
					echo "MIGCHECK: page cache as the source's device left it (md5 $now)"
				else
					echo "page cache on the destination differs from what the source's device read into it during the migration (md5 $now, was $ref): device writes missing from the dirty log?" >>/tmp/cache.fail
				fi
				for p in $(writers); do
					kill -CONT "$p" 2>/dev/null
				done
				exec 3<&-
				rmdir /tmp/io.lock
			fi
			: >/tmp/migrated
			break
			;;
		esac
	done
) </dev/console &

last_seed=
# pass P: one write + flush + read-back-and-compare with seed S+P, started
# only while the console reader does not hold /tmp/io.lock
pass() {
	s=$((seed + $1))
	n=0
	until mkdir /tmp/io.lock 2>/dev/null; do
		[ "$n" -lt $((wait * 20)) ] ||
			verdict_fail "pass $1 held back more than ${wait}s"
		n=$((n + 1))
		sleep 0.05
	done
	echo "$1" >/tmp/pass.cur
	echo "MIGCHECK: pass $1 begins seed=$s"
	blkcheck "$dev" --seed "$s" --passes 1 --jobs "$jobs" >/tmp/bc.out 2>&1 &
	b=$!
	echo "$b" >/tmp/bc.pid
	rmdir /tmp/io.lock
	wait "$b"
	rc=$?
	rm -f /tmp/bc.pid
	grep 'RESULT' /tmp/bc.out
	if [ "$rc" != 0 ]; then
		cat /tmp/bc.out
		verdict_fail "pass $1 (seed $s): blkcheck exit $rc"
	fi
	last_seed=$s
	echo "MIGCHECK: pass $1 done"
}

# the page-cache verdict of the console reader
cached() {
	[ ! -f /tmp/cache.fail ] || verdict_fail "$(cat /tmp/cache.fail)"
}

# The ticker (busy mode): the pass under way and the device's counters,
# every 50 ms, until the verdict
ticker() {
	t=0
	until [ -f /tmp/tick.stop ]; do
		read -r rio _ _ _ wio _ </sys/block/"$name"/stat
		read -r ir iw </sys/block/"$name"/inflight
		echo "MIGCHECK: T n=$t p=$(cat /tmp/pass.cur 2>/dev/null) io=$rio/$wio inflight=$ir/$iw"
		t=$((t + 1))
		sleep 0.05
	done
}

if [ "$mode" != idle ]; then
	if [ "$mode" = busy ]; then
		ticker &
	fi
	p=0
	after=
	while :; do
		if [ -z "$after" ] && [ -f /tmp/migrated ]; then
			after=$p
			echo "MIGCHECK: told of the migration before pass $p"
			cached
		fi
		# one whole pass ran after the message: done
		[ -n "$after" ] && [ "$p" -gt "$after" ] && break
		[ "$p" -lt "$max" ] ||
			verdict_fail "no migration message after $max passes"
		pass "$p"
		p=$((p + 1))
	done
else
	pass 0
	echo "MIGCHECK: idle, waiting for the migration"
	i=0
	until [ -f /tmp/migrated ]; do
		[ "$i" -lt $((wait * 10)) ] ||
			verdict_fail "no migration message in ${wait}s"
		sleep 0.1
		i=$((i + 1))
	done
	echo "MIGCHECK: told of the migration; reading pass 0 back"
	cached
	blkcheck "$dev" --seed "$seed" --verify --gen 1 --jobs "$jobs" \
		>/tmp/bc.out 2>&1 || {
		cat /tmp/bc.out
		verdict_fail "pass 0's data read back on the destination differs"
	}
	grep 'RESULT' /tmp/bc.out
	pass 1
	p=2
fi

: >/tmp/dirt.stop
: >/tmp/tick.stop
cached
if dmesg | grep -E 'I/O error|blk_update_request|Buffer I/O error' |
	grep -q .; then
	dmesg | grep -E 'I/O error|blk_update_request|Buffer I/O error' | tail -n 5
	verdict_fail "I/O errors in the kernel log"
fi
echo "MIGCHECK: VERDICT PASS passes=$p last_seed=$last_seed"
