#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seeds of fuzz_state (input format: fuzz_state.c).

A valid virtio-blk state blob (docs/device-state.md) for each of the
target's two destinations (with and without CONFIG_WCE: 1 MiB disk,
512-byte blocks, 2 queues), with writeback 0 and 1, one queue and two;
then hostile variants: every prefix length of note, trailing bytes,
bad magic, format and section versions, another device type, features
that differ, a section length that lies, capacity, block size, read-only
flag, reserved bits, queue counts, an oversized blob.

Usage: fuzz/gen_state_corpus.py [OUTDIR]  (default fuzz/corpus/state)
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION_1, FLUSH, CONFIG_WCE = 32, 9, 11
MAX = 16384


def blob(wce_dev, wce=1, nq=2, cap=2048, bs=512, flags=0, rsv=0, ver=1,
         sver=1, dev_id=2, magic=b"VIOSTATE", hdr=40, hflags=0,
         feat=None, seclen=None, extra=b""):
    f = (1 << VERSION_1) | (1 << FLUSH)
    if wce_dev:
        f |= 1 << CONFIG_WCE
    if feat is not None:
        f = feat
    sec = struct.pack("<IHBBQII", sver, nq, wce, flags, cap, bs, rsv)
    n = len(sec) if seclen is None else seclen
    h = magic + struct.pack("<HHIII", ver, hdr, dev_id, n, hflags)
    h += struct.pack("<QQ", f, 0)
    return h + sec + extra


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "corpus", "state")
    os.makedirs(out, exist_ok=True)
    seeds = {}
    for d in (0, 1):
        for w in (0, 1):
            for nq in (1, 2):
                seeds["valid-wce%d-w%d-q%d" % (d, w, nq)] = (d, blob(d, w, nq))
        good = blob(d)
        for k in (0, 1, 8, 12, 39, 40, 41, 63):
            seeds["prefix%d-dev%d" % (k, d)] = (d, good[:k])
        seeds["trailing-dev%d" % d] = (d, good + b"\0")
        seeds["magic-dev%d" % d] = (d, blob(d, magic=b"VIOSTATf"))
        seeds["version2-dev%d" % d] = (d, blob(d, ver=2))
        seeds["hdr48-dev%d" % d] = (d, blob(d, hdr=48))
        seeds["hflags-dev%d" % d] = (d, blob(d, hflags=1))
        seeds["type-rng-dev%d" % d] = (d, blob(d, dev_id=4))
        seeds["features-dev%d" % d] = (d, blob(d, feat=1 << VERSION_1))
        seeds["seclen-long-dev%d" % d] = (d, blob(d, seclen=25))
        seeds["seclen-huge-dev%d" % d] = (d, blob(d, seclen=0xffffffff))
        seeds["sver2-dev%d" % d] = (d, blob(d, sver=2))
        seeds["cap-dev%d" % d] = (d, blob(d, cap=4096))
        seeds["bs-dev%d" % d] = (d, blob(d, bs=4096))
        seeds["ro-dev%d" % d] = (d, blob(d, flags=1))
        seeds["flags-dev%d" % d] = (d, blob(d, flags=2))
        seeds["rsv-dev%d" % d] = (d, blob(d, rsv=1))
        seeds["wce2-dev%d" % d] = (d, blob(d, wce=2))
        seeds["nq0-dev%d" % d] = (d, blob(d, nq=0))
        seeds["nq3-dev%d" % d] = (d, blob(d, nq=3))
        big = blob(d, seclen=MAX + 100 - 40, extra=b"\0" * (MAX + 100 - 64))
        seeds["oversized-dev%d" % d] = (d, big)
    for name, (d, b) in sorted(seeds.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as fh:
            fh.write(bytes([d]) + b)
    print("%d seeds in %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
