#!/usr/bin/env bash
# Interop, live migration (issue 10): a Linux guest under QEMU whose disk is
# served over vhost-user migrates to a second QEMU, served by a second
# backend process on the same image file, with nothing lost.
#
#   guest_blk_migrate.sh VIO [--backend vio|qsd] [--mode load|idle|busy]
#       [--packed] [--queues N] [--mem MB] [--size-mib M] [--seed S]
#       [--timeout SECS] [--guest DIR] [--keep]
#
# --backend  vio: `VIO serve blk` (default); qsd: qemu-storage-daemon's
#            vhost-user-blk export (the reference: it logs dirty pages);
#            qemu: QEMU's own virtio-blk-pci on the image, no vhost-user
#            (the harness and QEMU alone: a control)
# --mode     load (default): the guest's write-and-verify loop runs while
#            it migrates; idle: the guest does no I/O during the migration;
#            busy: the loop runs and is never held (no page-cache check),
#            so requests are in flight when the source stops (see below)
# --packed   vhost-user-blk-pci packed=on; with vio the guest must see
#            VIRTIO_F_RING_PACKED (qemu-storage-daemon does not offer it)
#
# 1. two backends on one image file (sockets src.sock, dst.sock); the
#    source QEMU boots the guest (guest RAM in a shared memfd, 1 GiB by
#    default); the destination QEMU starts with -incoming unix:mig.sock,
#    each QEMU with its own QMP socket and its own serial log;
# 2. the guest runs tests/interop/guest/migcheck.sh (its header says what
#    a pass is): in load mode the host migrates as soon as the first pass
#    begins, in idle mode once pass 0 is done and the guest waits;
# 3. QMP migrate on the source (max-bandwidth 64 MiB/s), query-migrate
#    polled until it is "active" with every page sent once (dirty logging
#    on); then max-bandwidth 8 MiB/s (the hold: with QEMU's 300 ms
#    downtime limit it cannot converge while the guest dirties more than
#    2.4 MiB between two syncs) and a VIO-MIGRATING line on the SOURCE's serial
#    input: the guest reads its whole disk into its page cache (the device
#    writes those pages while the migration runs: only the backend's dirty
#    log sends them again) and says so on the source's console; a guest
#    "dirtier" keeps the migration from converging before that.  If the
#    migration completes first, the test fails (it says so): it never
#    passes without the read.  Then max-bandwidth back as it was,
#    query-migrate polled to "completed"
#    (total time and downtime printed on the MIGRATION: line); the source
#    must be in "postmigrate" and the destination "running"; then the host
#    tells the guest (a VIO-MIGRATED line on the destination's serial
#    input), quits the source QEMU and stops the source backend (SIGTERM,
#    clean exit): from here on only the destination serves the disk;
# 4. the guest's verdict is read on the DESTINATION's console: every pass
#    verified, no I/O error; in load mode the pass under way when the
#    source stopped must end on the destination (or, if it ended on the
#    source while the guest's writers were held, the next one must run
#    there);
# 5. after poweroff the destination backend exits cleanly on SIGTERM and
#    the host checks every byte of the image against the guest's last
#    pass, then flips one byte and checks that the checker notices.
# busy mode skips 3's hold and page-cache read: QMP migrate with
# max-bandwidth 128 MiB/s and downtime-limit 300 ms while the guest's
# passes run, polled to "completed", then 3's state checks and hand-over.
# The guest's ticker (migcheck's header) prints its pass and the device's
# counters every 50 ms; after poweroff tests/interop/migspan.py joins the
# two consoles (the source's log ends where the source stopped, the
# destination's holds the rest) and requires, from the order of the lines
# in that stream: the last pass whose "begins" is on the source (P) ended
# on the destination, or, if "pass P done" is on the source (the stop fell
# between two passes), P+1 ended there; more requests completed at the
# destination's tick 3 ticks after the source's last one than at that one
# (I/O went on across the switch-over: writers held or idle there fail).
# The requests in flight at the two ticks are printed, not required (a
# sample every 50 ms; see docs/migration.md).  Then 4 and 5.
# The guest compares its page cache on the destination (migcheck's header):
# with the dirty log made a no-op in vio this fails.  The kernel runs with
# init_on_alloc=0: pages zeroed by the CPU when the page cache takes them
# would be marked dirty by QEMU itself and hide a backend that logs
# nothing.
#
# Exit: 0 pass, 1 fail, 2 harness error, 77 skip (QEMU missing: said loudly).
# shellcheck disable=SC2317,SC2054,SC2059
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gdir=$here/guest
vio=${1:?usage: guest_blk_migrate.sh VIO [--backend vio|qsd] [--mode load|idle|busy] [--packed] ...}
shift
backend=vio mode=load packed=0 queues=1 mem=1024 size_mib=64 seed='' keep=0
timeout=240
guest=${VIO_GUEST_CACHE:-$(cd "$here/../.." && pwd)/build/guest}
while [ $# -gt 0 ]; do
	case "$1" in
	--backend) backend=$2; shift 2 ;;
	--mode) mode=$2; shift 2 ;;
	--packed) packed=1; shift ;;
	--queues) queues=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--size-mib) size_mib=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--guest) guest=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	*) echo "guest_blk_migrate: unknown argument $1" >&2; exit 2 ;;
	esac
done
case "$backend" in vio | qsd | qemu) ;; *) echo "guest_blk_migrate: --backend vio|qsd|qemu" >&2; exit 2 ;; esac
case "$mode" in load | idle | busy) ;; *) echo "guest_blk_migrate: --mode load|idle|busy" >&2; exit 2 ;; esac
for v in "$queues" "$mem" "$size_mib" "$timeout" ${seed:+"$seed"}; do
	case "$v" in '' | *[!0-9]*) echo "guest_blk_migrate: numbers expected" >&2; exit 2 ;; esac
done
[ -n "$seed" ] || seed=$(((RANDOM << 15 | RANDOM) + 1))
name="guest_blk_migrate(backend=$backend mode=$mode packed=$packed queues=$queues)"
echo "$name: seed=$seed"

qemu=${QEMU:-qemu-system-x86_64}
if ! command -v "$qemu" >/dev/null; then
	echo "$name: SKIP: $qemu is not installed: the migration test did NOT" \
		"run (scripts/deps-guest.sh installs it)" >&2
	exit 77
fi
if [ "$backend" = qsd ] && ! command -v qemu-storage-daemon >/dev/null; then
	echo "$name: SKIP: qemu-storage-daemon is not installed: the migration" \
		"test did NOT run (scripts/deps.sh installs it)" >&2
	exit 77
fi
command -v python3 >/dev/null || { echo "$name: FAIL (setup): python3 missing" >&2; exit 2; }

mkdir -p "$(dirname "$guest")"
(
	flock -w 300 9 || { echo "$name: guest build lock timeout" >&2; exit 2; }
	"$gdir/build-guest.sh" "$guest" >/dev/null
) 9>"$(dirname "$guest")/.guest.lock"
bc=$guest/blkcheck

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vio-guest-migrate.XXXXXX")
declare -A pid=() # role -> PID: bsrc bdst (backends), qsrc qdst, relays rsrc rdst
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for r in qsrc qdst bsrc bdst rsrc rdst; do
		[ -n "${pid[$r]:-}" ] || continue
		kill -KILL "${pid[$r]}" 2>/dev/null || true
		wait "${pid[$r]}" 2>/dev/null || true
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for f in bsrc.log bdst.log qsrc.out qdst.out src.serial dst.serial; do
			[ -s "$tmp/$f" ] || continue
			echo "--- $f (tail)" >&2
			# the busy mode's ticks, but the last 5
			tr -d '\r' <"$tmp/$f" | awk '/MIGCHECK: T /{ t[++n % 5] = $0; next }
				{ for (i = n - 4; i <= n; i++) if (i > 0) print t[i % 5]; n = 0; print }
				END { for (i = n - 4; i <= n; i++) if (i > 0) print t[i % 5] }' |
				tail -n 60 >&2
		done
	fi
	if [ "$keep" = 1 ]; then
		echo "$name: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
fail() {
	echo "$name: FAIL: $*" >&2
	exit 1
}
t0=$SECONDS
left() { echo $((timeout - (SECONDS - t0))); }
qmp() { python3 "$here/qmp.py" "$@"; }

# wait_for FILE PATTERN SECS ROLE...: FILE holds a line matching PATTERN
# (grep -E) within SECS, while every ROLE's process lives
wait_for() {
	local f=$1 pat=$2 end=$((SECONDS + $3)) r
	shift 3
	until tr -d '\r' 2>/dev/null <"$f" | grep -qE -- "$pat"; do
		for r in "$@"; do
			kill -0 "${pid[$r]}" 2>/dev/null || return 1
		done
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.05
	done
}
# wait_exit ROLE SECS: the process ended within SECS; its status in $xrc
# (60 s for the exits below: a nice'd QEMU on a loaded 2-CPU host took
# more than 10 s to stop its devices and end after the guest's poweroff)
wait_exit() {
	local end=$((SECONDS + $2))
	while kill -0 "${pid[$1]}" 2>/dev/null; do
		[ "$SECONDS" -le "$end" ] || return 1
		sleep 0.05
	done
	xrc=0
	wait "${pid[$1]}" || xrc=$?
	pid[$1]=
}

img=$tmp/disk.img
truncate -s "${size_mib}M" "$img"

reaper=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
	reaper=(setpriv --pdeathsig KILL --) # dies with this script
fi

# start_backend ROLE: a backend on $tmp/ROLE.sock over the one image file
start_backend() {
	local role=$1 sock=$tmp/${1#b}.sock pidf=$tmp/$1.pid
	case "$backend" in
	vio)
		"${reaper[@]}" "$vio" serve blk --socket "$sock" --image "$img" \
			--queues "$queues" --pidfile "$pidf" >"$tmp/$role.log" 2>&1 &
		;;
	qsd)
		# locking=off: two daemons hold the image at once, by design
		"${reaper[@]}" qemu-storage-daemon --pidfile "$pidf" \
			--blockdev "driver=file,node-name=f,filename=$img,locking=off" \
			--export "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path=$sock,writable=on,num-queues=$queues" \
			>"$tmp/$role.log" 2>&1 &
		;;
	esac
	pid[$role]=$!
	local end=$((SECONDS + 15))
	until [ -s "$pidf" ]; do
		kill -0 "${pid[$role]}" 2>/dev/null ||
			fail "backend $role died at start: $(tail -n3 "$tmp/$role.log")"
		[ "$SECONDS" -le "$end" ] || fail "backend $role not ready in 15 s"
		sleep 0.01
	done
}
if [ "$backend" != qemu ]; then
	start_backend bsrc
	start_backend bdst
fi

# ---- the guest: base initramfs + /test.sh + /bin/migcheck
want_packed=$packed
[ "$backend" != qsd ] || want_packed=0 # qsd does not offer packed rings
cat >"$tmp/test.sh" <<EOF
set -e
waitdev /dev/vda 15
sectors=\$(cat /sys/block/vda/size)
feat=\$(cat /sys/block/vda/device/features)
echo "VIO-SAW: size=\$((sectors * 512)) queues=\$(ls /sys/block/vda/mq | wc -l) features=\$feat"
[ "\$sectors" = $((size_mib * 2048)) ] || { echo "size \$sectors"; exit 1; }
# bit 34: VIRTIO_F_RING_PACKED
[ "\$(echo "\$feat" | cut -c35)" = $want_packed ] ||
	{ echo "packed bit is not $want_packed"; exit 1; }
migcheck /dev/vda --seed $seed --mode $mode --jobs 2 --wait $timeout
EOF
mkdir -p "$tmp/extra/bin"
install -m 0755 "$tmp/test.sh" "$tmp/extra/test.sh"
install -m 0755 "$gdir/migcheck.sh" "$tmp/extra/bin/migcheck"
(cd "$tmp/extra" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$tmp/extra.cpio.gz"
cat "$guest/initramfs.cpio.gz" "$tmp/extra.cpio.gz" >"$tmp/initrd"

# Guest RAM, in KiB.  Under TCG, QEMU before 9.0 loses guest writes
# during a migration (fixed upstream by 03bfc2188f "physmem: Fix
# migration dirty bitmap coherency with TCG memory access"): its bitmap
# sync takes a fast path, 64 pages per word, that clears the dirty bits
# without making the vCPUs' TLBs track the next write to those pages, so a
# page written again before the end is sent stale and the guest kernel
# crashes on the destination (seen here with vio, qemu-storage-daemon
# and QEMU's own virtio-blk alike, 1 run in 5 under load).  The fast path
# needs a RAM block of a multiple of 64 pages: 8 KiB less than that takes
# the slow path, which does reset the TLBs.
memk=$((mem * 1024))
accel=(-accel "tcg,thread=${TCG_THREAD:-multi}" -cpu max)
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
	accel=(-accel kvm -cpu host)
else
	memk=$((memk - 8))
fi
onoff=off
[ "$packed" = 0 ] || onoff=on
# start_qemu ROLE ARGS...: QEMU with the guest, the disk on ROLE.sock
start_qemu() {
	local role=$1 disk
	shift
	disk=(-chardev "socket,id=c0,path=$tmp/$role.sock"
		-device "vhost-user-blk-pci,chardev=c0,num-queues=$queues,packed=$onoff")
	if [ "$backend" = qemu ]; then
		disk=(-drive "file=$img,format=raw,if=none,id=d0,file.locking=off"
			-device "virtio-blk-pci,drive=d0,num-queues=$queues,packed=$onoff")
	fi
	"${reaper[@]}" "$qemu" -machine q35 "${accel[@]}" -m "${memk}K" -smp 2 \
		-object "memory-backend-memfd,id=mem,size=${memk}K,share=on" \
		-numa node,memdev=mem \
		-kernel "$guest/vmlinuz" -initrd "$tmp/initrd" \
		-append "console=ttyS0 panic=-1 oops=panic loglevel=4 8250.nr_uarts=1 edd=off init_on_alloc=0" \
		-nodefaults -no-user-config -display none -no-reboot -monitor none \
		-qmp "unix:$tmp/$role.qmp,server=on,wait=off" \
		"${disk[@]}" "$@" </dev/null >"$tmp/q$role.out" 2>&1 &
	pid[q$role]=$!
}
# Each console is a pipe pair: a relay copies the output to ROLE.serial;
# the host writes the guest's input into ROLE.ser.in.
for r in src dst; do
	mkfifo "$tmp/$r.ser.in" "$tmp/$r.ser.out"
	cat "$tmp/$r.ser.out" >"$tmp/$r.serial" &
	pid[r$r]=$!
done
start_qemu src -chardev "pipe,id=ser0,path=$tmp/src.ser" -serial chardev:ser0
start_qemu dst -chardev "pipe,id=ser0,path=$tmp/dst.ser" -serial chardev:ser0 \
	-incoming "unix:$tmp/mig.sock"
# tell ROLE LINE: LINE on ROLE's serial input (QEMU holds the FIFO open
# read-write: the open does not block while it lives; bounded anyway)
tell() {
	# shellcheck disable=SC2016 # expanded by the inner sh
	timeout 10 sh -c 'printf "%s\n" "$1" >"$2"' sh "$2" "$tmp/$1.ser.in" ||
		fail "cannot write '$2' to the $1 console"
}

# the destination listens for the migration once its QMP answers
st=$(qmp --timeout 30 "$tmp/dst.qmp" wait-status inmigrate) ||
	fail "destination QEMU not waiting for the migration: $(tail -n3 "$tmp/qdst.out")"

case "$mode" in
load | busy) ready='MIGCHECK: pass 0 begins' ;;
idle) ready='MIGCHECK: idle, waiting' ;;
esac
wait_for "$tmp/src.serial" "$ready|VIO-GUEST-RESULT" "$(left)" qsrc qdst ||
	fail "the guest did not reach '$ready' on the source"
! grep -q 'VIO-GUEST-RESULT' "$tmp/src.serial" || fail "the guest ended on the source"
grep -a 'VIO-SAW' "$tmp/src.serial" | tr -d '\r' || true

echo "$name: migrating ($(left) s left)"
rc=0
if [ "$mode" = busy ]; then
	# no hold: the guest's passes run through the whole migration
	qmp "$tmp/src.qmp" migrate-set-parameters \
		'{"max-bandwidth": 134217728, "downtime-limit": 300}' >/dev/null ||
		fail "cannot set the migration parameters"
	mig=$(qmp --timeout "$(left)" "$tmp/src.qmp" migrate "unix:$tmp/mig.sock" 2>&1) || rc=$?
	echo "$name: $mig"
	[ "$rc" = 0 ] || fail "migration did not complete: $mig"
else
	mig=$(qmp --timeout "$(left)" "$tmp/src.qmp" migrate-start "unix:$tmp/mig.sock" \
		$((64 << 20)) $((8 << 20)) 2>&1) || rc=$?
	echo "$name: $mig"
	[ "$rc" = 0 ] || fail "migration did not reach its iterative stage: $mig"
	bw=$(sed -n 's/^.*max_bandwidth_was=\([0-9]*\).*$/\1/p' <<<"$mig")
	[ -n "$bw" ] || fail "no max_bandwidth_was in: $mig"
	# The guest fills its page cache while the migration runs, logging on.
	t1=$SECONDS
	tell src VIO-MIGRATING
	filled='MIGCHECK: migration under way: page cache filled'
	n=0
	until tr -d '\r' <"$tmp/src.serial" | grep -qaE "$filled|VERDICT"; do
		kill -0 "${pid[qsrc]}" 2>/dev/null || fail "the source QEMU died"
		[ "$(left)" -gt 0 ] || fail "the guest did not fill its page cache in time"
		n=$((n + 1))
		if [ $((n % 20)) = 0 ]; then
			st=$(qmp "$tmp/src.qmp" query-migrate) || fail "source QMP: $st"
			case "$st" in *'"status": "active"'*) ;; *)
				# a line that lands in src.serial was written before
				# the source stopped; the relay may still carry it
				wait_for "$tmp/src.serial" "$filled" 2 rsrc ||
					fail "the migration left 'active' before the guest's" \
						"page-cache read was over: the check did NOT run ($st)"
				;;
			esac
		fi
		sleep 0.05
	done
	! grep -aq VERDICT "$tmp/src.serial" || fail "a verdict on the source's console"
	echo "$name: $(tr -d '\r' <"$tmp/src.serial" | grep -a "$filled" | tail -n1)" \
		"($((SECONDS - t1)) s after VIO-MIGRATING)"
	mig=$(qmp --timeout "$(left)" "$tmp/src.qmp" migrate-wait "$bw" 2>&1) || rc=$?
	echo "$name: $mig"
	[ "$rc" = 0 ] || fail "migration did not complete: $mig"
fi
# the pass under way when the source stopped (load mode)
under_way=$(tr -d '\r' <"$tmp/src.serial" |
	sed -n 's/^.*MIGCHECK: pass \([0-9]*\) begins.*$/\1/p' | tail -n1)

st=$(qmp "$tmp/src.qmp" query-status) || fail "source QMP: $st"
case "$st" in *'"status": "postmigrate"'*) ;; *) fail "source after migration: $st" ;; esac
if ! st=$(qmp --timeout 10 "$tmp/dst.qmp" wait-status running); then
	# a guest that failed at once on the destination has powered off
	wait_for "$tmp/dst.serial" VERDICT 2 rdst || true
	fail "destination not running after the migration" \
		"$(tr -d '\r' <"$tmp/dst.serial" | grep -a 'VERDICT' | tail -n1)"
fi

tell dst VIO-MIGRATED
# the source QEMU and its backend go away: only the destination serves
qmp "$tmp/src.qmp" quit >/dev/null || true
wait_exit qsrc 60 || fail "source QEMU did not quit"
if [ "$backend" != qemu ]; then
	kill -TERM "${pid[bsrc]}"
	wait_exit bsrc 60 || fail "source backend did not exit on SIGTERM"
	[ "$xrc" = 0 ] || fail "source backend exit status $xrc"
fi

wait_for "$tmp/dst.serial" 'VIO-GUEST-RESULT' "$(left)" qdst ||
	fail "no verdict on the destination's console"
wait_exit qdst 60 || fail "the destination QEMU did not end after poweroff"
for r in rsrc rdst; do
	kill -TERM "${pid[$r]}" 2>/dev/null || true
	wait "${pid[$r]}" 2>/dev/null || true
	pid[$r]=
done
tr -d '\r' <"$tmp/dst.serial" | grep -aE 'MIGCHECK|blkcheck: RESULT|VIO-GUEST-RESULT' |
	grep -av 'MIGCHECK: T ' | sed 's/^/dst| /'
grep -aq 'VIO-GUEST-RESULT: PASS' "$tmp/dst.serial" ||
	fail "the guest's verdict on the destination: $(grep -a 'VIO-GUEST-RESULT' "$tmp/dst.serial" | tr -d '\r')"
! grep -aq 'VERDICT' "$tmp/src.serial" || fail "a verdict on the source's console"
if [ "$mode" = load ]; then
	[ -n "$under_way" ] || fail "no pass began on the source"
	# The guest stops its writers for the page-cache read: a pass that
	# ended on the source in the meantime is followed by one that begins
	# on the destination
	if tr -d '\r' <"$tmp/src.serial" | grep -aq "MIGCHECK: pass $under_way done"; then
		nx=$((under_way + 1))
		grep -aq "MIGCHECK: pass $nx begins" "$tmp/dst.serial" ||
			fail "pass $nx did not begin on the destination"
		grep -aq "MIGCHECK: pass $nx done" "$tmp/dst.serial" ||
			fail "pass $under_way ended on the source and pass $nx did not run on the destination"
		echo "$name: pass $under_way ended on the source before the switch-over, pass $nx ran on the destination"
	else
		grep -aq "MIGCHECK: pass $under_way done" "$tmp/dst.serial" ||
			fail "pass $under_way (under way at the migration) did not end on the destination"
		echo "$name: pass $under_way spanned the migration"
	fi
fi
if [ "$mode" = busy ]; then
	# the pass under way at the switch-over and the ticks around it, from
	# the two consoles joined (migspan.py's header); the relays have
	# ended, each log is complete
	if ! python3 "$here/migspan.py" "$tmp/src.serial" "$tmp/dst.serial" \
		>"$tmp/span" 2>&1; then
		sed "s/^/$name: /" "$tmp/span"
		why=$(sed -n 's/^migspan: FAIL: //p' "$tmp/span")
		fail "${why:-migspan.py: $(tail -n 1 "$tmp/span")}"
	fi
	sed "s/^migspan: /$name: /" "$tmp/span"
fi
last_seed=$(tr -d '\r' <"$tmp/dst.serial" |
	sed -n 's/^.*MIGCHECK: VERDICT PASS .*last_seed=\([0-9]*\).*$/\1/p')
[ -n "$last_seed" ] || fail "no last_seed in the verdict"

if [ "$backend" != qemu ]; then
	kill -TERM "${pid[bdst]}"
	wait_exit bdst 60 || fail "destination backend did not exit on SIGTERM"
	[ "$xrc" = 0 ] || fail "destination backend exit status $xrc"
fi
if [ "$backend" = vio ]; then
	for r in bsrc bdst; do
		grep -q 'frontend attached' "$tmp/$r.log" || fail "$r: no frontend attached"
	done
fi

"$bc" --verify-image "$img" --seed "$last_seed" --gen 1 | tail -n1 ||
	fail "the image on the host differs from the guest's last pass"
off=$(((last_seed * 7919) % (size_mib * 1048576)))
old=$(od -An -tu1 -j "$off" -N1 "$img" | tr -d ' ')
printf "\\$(printf %03o $((old ^ 255)))" |
	dd of="$img" bs=1 seek="$off" conv=notrunc status=none
if "$bc" --verify-image "$img" --seed "$last_seed" --gen 1 >/dev/null 2>&1; then
	fail "checker missed a flipped byte at $off"
fi
echo "$name: PASS ($((SECONDS - t0)) s)"
