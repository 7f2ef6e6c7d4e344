#!/bin/sh
# /init of the vio test guest (busybox sh, PID 1). See docs/guest-harness.md.
#
# Mounts /proc, /sys and /dev (devtmpfs), loads the modules listed in
# /lib/modules/load.order (dependency order, computed on the host from
# modules.dep), runs /test.sh (appended by run-guest.sh as a second cpio
# archive) and prints exactly one result marker line:
#   VIO-GUEST-RESULT: PASS
#   VIO-GUEST-RESULT: FAIL <reason>
# then powers off. If anything goes wrong before the marker, the host sees
# no marker (or a FAIL) and the guest still powers off: a panic reboots
# (panic=-1) and QEMU runs with -no-reboot.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The kernel may have had no /dev/console to give us: take it now.
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /tmp /run
mount -t tmpfs tmpfs /tmp

result() {
	echo "VIO-GUEST-RESULT: $*"
	sync
	poweroff -f
	sleep 5
	echo "VIO-GUEST: poweroff failed" >&2
	exit 1 # PID 1 exiting panics, panic=-1 reboots, -no-reboot ends QEMU
}

read -r up _ </proc/uptime
echo # end the firmware's unterminated line
echo "VIO-GUEST-INIT: uptime=${up}s kernel=$(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo)"

if [ -f /lib/modules/load.order ]; then
	while read -r m; do
		[ -n "$m" ] || continue
		insmod "/lib/modules/$m.ko" || result "FAIL insmod $m"
	done </lib/modules/load.order
fi

# Variables from the kernel command line (vio.KEY=VALUE) for the test.
read -r cmdline </proc/cmdline
for a in $cmdline; do
	case "$a" in
	vio.*=*)
		k=${a%%=*}
		k=VIO_$(echo "${k#vio.}" | tr 'a-z.-' 'A-Z__')
		export "$k=${a#*=}"
		;;
	esac
done

if [ ! -f /test.sh ]; then
	result "FAIL no /test.sh in the initramfs"
fi
echo "VIO-GUEST: running /test.sh"
sh /test.sh
rc=$?
if [ "$rc" = 0 ]; then
	result "PASS"
fi
echo "VIO-GUEST: dmesg tail:"
dmesg | tail -n 30
result "FAIL test.sh exit $rc"
