#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the ring seeds of fuzz_inflight (input format: fuzz_inflight.c).

Every seed-*.bin of corpus/split and corpus/packed (fuzz_vq.h's format,
from gen_corpus.py) is re-headed for fuzz_inflight, with an in-flight
region of zeros (never initialised: attached fresh) and variants that
hold chains (the backend dies owing them), hand chains back, and attach
fresh over a ring at rest; plus empty, header-only and garbage inputs.
Valid regions in every state come from the target itself: run it with
FZ_GEN=DIR on these seeds and it writes, per input, what a restarted
backend would find (see fuzz/README.md).

Usage: fuzz/gen_inflight_corpus.py [OUTDIR]  (default fuzz/corpus/inflight)
"""
import glob
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HDR = 16
PACKED, FRESH, UNPOP, REVERSE, BATCH = 0x01, 0x02, 0x04, 0x08, 0x10


def a64(v):
    return (v + 63) & ~63


def ring_bytes(size, packed):
    s = [16 * size, 4, 4] if packed else [16 * size, 6 + 2 * size,
                                          6 + 8 * size]
    return sum(a64(x) for x in s)


def region_bytes(size, packed):
    return a64(32 + 32 * size if packed else 16 + 16 * size)


def convert(old, packed, mode, hold, unpop):
    h = old[:HDR].ljust(HDR, b"\0")
    size = (h[0] % 128 + 1) if packed else 1 << (h[0] % 8)
    data_len = (h[6] | h[7] << 8) % 4097
    body = old[HDR:]
    mem_len = ring_bytes(size, packed) + data_len
    mem, patches = body[:mem_len].ljust(mem_len, b"\0"), body[mem_len:]
    new = bytes([(PACKED if packed else 0) | mode, h[0], h[1] & 0x1f,
                 h[2], h[3], h[4], h[5], h[6], h[7], hold, unpop]).ljust(
                     HDR, b"\0")
    return new + mem + bytes(region_bytes(size, packed)) + patches


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "corpus", "inflight")
    os.makedirs(out, exist_ok=True)
    seeds = {"empty": b"", "hdr-only-split": bytes(HDR),
             "hdr-only-packed": bytes([PACKED]) + bytes(HDR - 1)}
    rnd = random.Random(8)
    for packed in (False, True):
        g = bytes([PACKED if packed else 0, 3]) + bytes(
            rnd.randrange(256) for _ in range(2000))
        seeds["garbage-%s" % ("packed" if packed else "split")] = g
    for fmt, packed in (("split", False), ("packed", True)):
        for p in sorted(glob.glob(os.path.join(HERE, "corpus", fmt,
                                               "seed-*.bin"))):
            name = os.path.basename(p)[5:-4]
            old = open(p, "rb").read()
            tag = "%s-%s" % (fmt, name)
            seeds[tag] = convert(old, packed, 0, 0, 0)
            seeds[tag + "-hold3"] = convert(old, packed, REVERSE, 3, 0)
            seeds[tag + "-unpop"] = convert(old, packed, UNPOP | BATCH, 1,
                                            2)
            seeds[tag + "-fresh"] = convert(old, packed, FRESH, 2, 0)
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-%s.bin" % name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
