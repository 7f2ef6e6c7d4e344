#!/usr/bin/env bash
# make demo: vio's main job end to end.  A virtio-rng device and the vio
# driver in one process (in-process transport, device on its own thread),
# 64 MiB of entropy read through the ring, with both ring formats.
# Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: scripts/demo.sh BUILD_DIR}
vio=$build/tools/vio
[ -x "$build/vio" ] && vio=$build/vio
[ -x "$vio" ] || { echo "demo: $vio not built (run make)" >&2; exit 1; }

echo "== vio rng: virtio-rng over the in-process transport"
"$vio" rng --bytes 64M
"$vio" rng --bytes 64M --packed

echo "== a sample of the bytes (16 of them, hex)"
"$vio" rng --bytes 16 --out - 2>/dev/null | od -An -tx1
