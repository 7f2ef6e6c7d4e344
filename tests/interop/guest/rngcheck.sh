#!/bin/sh
# rngcheck [--wait SECS] [--bytes N] [SOURCE]: read N bytes (default 65536,
# a multiple of 4096) from SOURCE (default /dev/hwrng) and check them
# crudely: the count is exact, at least 200 of the 256 byte values occur,
# and the 4 KiB chunks all differ (no all-zeroes, no short repeating
# pattern). Not a statistical test: it proves that a device delivered
# fresh bytes, not that they are good entropy.
# With --wait (SOURCE /dev/hwrng only), first wait up to SECS for the
# kernel to make virtio_rng the current hwrng (rng_current names
# virtio_rng.N). Installed in the guest as /bin/rngcheck (busybox sh).
# Last line: "rngcheck: RESULT PASS|FAIL ..."; exit 0 pass, 1 fail, 2 usage.
wait=0
bytes=65536
src=/dev/hwrng
while [ $# -gt 0 ]; do
	case "$1" in
	--wait) wait=$2; shift 2 ;;
	--bytes) bytes=$2; shift 2 ;;
	-*) echo "rngcheck: unknown option $1" >&2; exit 2 ;;
	*) src=$1; shift ;;
	esac
done
case "$wait$bytes" in *[!0-9]*) echo "rngcheck: numbers" >&2; exit 2 ;; esac
if [ "$bytes" -lt 8192 ] || [ $((bytes % 4096)) != 0 ]; then
	echo "rngcheck: --bytes wants a multiple of 4096, at least 8192" >&2
	exit 2
fi

fail() {
	echo "rngcheck: RESULT FAIL source=$src $*"
	exit 1
}

current=-
if [ "$wait" -gt 0 ]; then
	sys=/sys/class/misc/hw_random
	[ -d $sys ] || sys=/sys/devices/virtual/misc/hw_random
	i=0
	while :; do
		current=$(cat $sys/rng_current 2>/dev/null || echo none)
		case "$current" in virtio_rng.*) break ;; esac
		[ "$i" -lt $((wait * 10)) ] ||
			fail "rng_current=$current after ${wait}s" \
				"(available: $(cat $sys/rng_available 2>/dev/null))"
		sleep 0.1
		i=$((i + 1))
	done
	echo "rngcheck: rng_current=$current" \
		"rng_available=$(cat $sys/rng_available 2>/dev/null)"
fi

out=/tmp/rngcheck.$$
trap 'rm -f $out' EXIT
chunks=$((bytes / 4096))
read -r t0 _ </proc/uptime
# the hwrng core fills each read completely (it loops until done); a
# device that never answers must not hang the guest: 60 s at most
timeout 60 dd if="$src" of=$out bs=4096 count=$chunks 2>/dev/null ||
	echo "rngcheck: dd from $src failed or timed out (60 s)"
read -r t1 _ </proc/uptime
got=$(wc -c <$out)
[ "$got" = "$bytes" ] || fail "read $got bytes, want $bytes"

distinct=$(od -An -v -tu1 $out | tr -s ' ' '\n' | grep -v '^$' |
	sort -u | wc -l)
unique=$(i=0; while [ $i -lt $chunks ]; do
	dd if=$out bs=4096 skip=$i count=1 2>/dev/null | md5sum
	i=$((i + 1))
done | sort -u | wc -l)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
stats="bytes=$got distinct=$distinct/256 chunks=$unique/$chunks read_s=$secs"
[ "$distinct" -ge 200 ] || fail "$stats: too few distinct byte values"
[ "$unique" = "$chunks" ] || fail "$stats: repeated 4 KiB chunks"
echo "rngcheck: RESULT PASS source=$src current=$current $stats"
