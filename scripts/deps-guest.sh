#!/usr/bin/env bash
# Install what the guest-boot interop tests need on Debian 12 (idempotent).
# Usage: scripts/deps-guest.sh
# The guest kernel itself is not installed: tests/interop/guest/build-guest.sh
# fetches it with `apt-get download` into its cache directory.
set -euo pipefail
want=(qemu-system-x86 qemu-utils busybox-static cpio gzip xz-utils zstd kmod
	gcc libc6-dev linux-libc-dev)
missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps-guest: missing packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	echo "deps-guest: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
