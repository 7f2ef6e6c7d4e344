#!/usr/bin/env bash
# Install what vio needs to build and test on Debian 12 (idempotent).
# Usage: scripts/deps.sh [build|check]
set -euo pipefail
want=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev linux-libc-dev make liburing-dev
	qemu-system-common scdoc systemd fio dpkg-dev dpdk-dev iproute2
	libnbd-dev nbdkit librbd-dev ceph-mon ceph-osd ceph-common qemu-block-extra)
# qemu-system-common: qemu-storage-daemon (interop test); scdoc: man pages
# (rendered and checked by make check); systemd: systemd-socket-activate;
# fio + dpkg-dev: the fio engine (built against `apt-get source fio`)
# dpdk-dev: dpdk-testpmd (virtio-net interop); iproute2: ip netns (tap tests)
# libnbd-dev, librbd-dev: the NBD and Ceph RBD backends of vio serve blk;
# nbdkit, ceph-mon/-osd/-common: the servers their tests start;
# qemu-block-extra: qemu-storage-daemon's rbd driver (bench)
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
