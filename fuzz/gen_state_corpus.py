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

virtio-net (input byte 0 bit 1; bit 0: the destination without CTRL_VQ,
MQ and MTU): valid sections (the state after negotiation; receive
modes, both MAC tables, a new mac, two pairs, an announcement pending;
overflowed and full tables), then each field out of range, lengths that
are not exact, unknown bits, state the features cannot have.

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


# virtio-net: the sink port's device with 2 pairs, every feature offered
NET_FEAT = sum(1 << b for b in (3, 5, 15, 16, 17, 18, 20, 21, 22, 23, 28,
                                29, 32))
NET_BARE = NET_FEAT & ~((1 << 17) | (1 << 22) | (1 << 3))


def net_blob(bare, sver=1, pairs=None, maxp=2, mtu=1500, mode=1,
             mac=b"\x02\0\0\0\0\x01", uni=(), multi=(), nu=None, nm=None,
             status=0, rsv=0, extra=b"", cut=0):
    if pairs is None:
        pairs = 1
    sec = struct.pack("<IHHHH", sver, pairs, maxp, mtu, mode) + mac
    sec += struct.pack("<BBHH", len(uni) if nu is None else nu,
                       len(multi) if nm is None else nm, status, rsv)
    sec += b"".join(uni) + b"".join(multi) + extra
    if cut:
        sec = sec[:-cut]
    h = b"VIOSTATE" + struct.pack("<HHIII", 1, 40, 1, len(sec), 0)
    h += struct.pack("<QQ", NET_BARE if bare else NET_FEAT, 0)
    return h + sec


def net_seeds(seeds):
    u = [bytes([2, 0, 0, 0, 1, i]) for i in range(64)]
    m = [bytes([1, 0, 0x5e, 0, 0, i]) for i in range(64)]
    x = b"\x02\x11\x22\x33\x44\x55"
    for d in (0, 1):
        seeds["net-valid-dev%d" % d] = (2 | d, net_blob(d))
        seeds["net-mac-dev%d" % d] = (2 | d, net_blob(d, mac=x))
    full = dict(pairs=2, mode=0x22, mac=x, uni=u[:2], multi=m[:3], status=1)
    seeds["net-valid-full"] = (2, net_blob(0, **full))
    seeds["net-valid-overflow"] = (2, net_blob(0, mode=0x5c, multi=m))
    seeds["net-valid-tables64"] = (2, net_blob(0, mode=0, uni=u, multi=m))
    seeds["net-valid-bare-max5"] = (3, net_blob(1, maxp=5, mtu=9000))
    bad = {
        "sver2": dict(sver=2), "pairs0": dict(pairs=0),
        "pairs3": dict(pairs=3), "max3": dict(maxp=3), "max0": dict(maxp=0),
        "max9": dict(maxp=9), "mtu9000": dict(mtu=9000),
        "mode-bit8": dict(mode=0x101), "status2": dict(status=2),
        "rsv": dict(rsv=1), "uni-overflow": dict(mode=0x40),
        "nu65": dict(nu=65), "nm1-short": dict(nm=4),
        "trailing": dict(extra=b"\0"), "cut1": dict(cut=1),
        "cut7": dict(cut=7),
    }
    for k, v in bad.items():
        a = dict(full)
        a.update(v)
        seeds["net-%s" % k] = (2, net_blob(0, **a))
    for k, v in {"two-pairs": dict(pairs=2), "not-promisc": dict(mode=0),
                 "table": dict(uni=u[:1]), "announce": dict(status=1),
                 "extra": dict(mode=0x21)}.items():
        seeds["net-bare-%s" % k] = (3, net_blob(1, **v))
    good = net_blob(0, **full)
    for k in (40, 43, 44, 63, 64, 70):
        seeds["net-prefix%d" % k] = (2, good[:k])


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
    net_seeds(seeds)
    for name, (d, b) in sorted(seeds.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as fh:
            fh.write(bytes([d]) + b)
    print("%d seeds in %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
