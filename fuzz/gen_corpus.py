#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed inputs of fuzz_split and fuzz_packed.

The input format is described in fuzz_vq.h; this script mirrors it: a
16-byte header, the ring areas (vio_vq_ring_bytes, vio_vq_layout_at), the
data region, then 4-byte patch records.  Seeds are rings a driver could
have written (single and long chains, indirect tables, index and
wrap-counter wrap, buffers and tables straddling the two regions, batches,
out-of-order completion, later driver moves through patches) plus one seed
per rule of the chain walker, broken on purpose.

Usage: fuzz/gen_corpus.py [OUTDIR]   (default: fuzz/corpus next to it)
Writes OUTDIR/split/seed-*.bin and OUTDIR/packed/seed-*.bin.
"""
import os
import struct
import sys

EVENT_IDX, INDIRECT, GAPPED, SET_BASE, NO_NOTIFY, BATCH, REVERSE, BURST = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
HDR = 16
RING_ADDR = 0x10000
GAP = 64
F_NEXT, F_WRITE, F_IND = 1, 2, 4
PK_AVAIL, PK_USED = 1 << 7, 1 << 15


def a64(v):
    return (v + 63) & ~63


def areas(size, packed):
    if packed:
        return [16 * size, 4, 4]
    return [16 * size, 4 + 2 * size + 2, 4 + 8 * size + 2]


class Seed:
    def __init__(self, packed, size, flags=0, max_iov=16, budget=0,
                 base=0, data_len=1024):
        self.packed, self.size, self.flags = packed, size, flags
        self.max_iov, self.budget, self.base = max_iov, budget, base
        s = areas(size, packed)
        self.off = [0, a64(s[0]), a64(s[0]) + a64(s[1])]
        self.ring = bytearray(sum(a64(x) for x in s))
        self.data = bytearray(data_len)
        self.data_used = 0
        self.patches = []
        # split: our avail idx; packed: next slot, wrap counter, buffer id
        self.sidx = base if flags & SET_BASE else 0
        self.next_desc = 0
        if flags & SET_BASE:
            self.ppos, self.pwrap = base & 0x7fff, bool(base >> 15)
        else:
            self.ppos, self.pwrap = 0, True
        self.next_id = 0
        self.in_flight = 0  # descriptors made available, for a sanity check

    # ---- addresses ----
    def data_addr(self):
        gap = GAP if self.flags & GAPPED else 0
        return RING_ADDR + len(self.ring) + gap

    def buf(self, n, fill=None):
        """A buffer of n bytes in the data region; its device address."""
        off = (self.data_used + 15) & ~15
        assert off + n <= len(self.data), "data region too small"
        self.data_used = off + n
        for i in range(n):
            self.data[off + i] = (fill if fill is not None else off + i) & 0xff
        return self.data_addr() + off

    def put(self, daddr, raw):
        """Write raw bytes at a device address (ring or data region)."""
        for i, b in enumerate(raw):
            a = daddr + i
            if RING_ADDR <= a < RING_ADDR + len(self.ring):
                self.ring[a - RING_ADDR] = b
            else:
                o = a - self.data_addr()
                assert 0 <= o < len(self.data)
                self.data[o] = b

    def itable(self, entries, at=None):
        """An indirect table; entries: (addr, len, flags[, next])."""
        raw = b""
        for k, e in enumerate(entries):
            addr, ln, fl = e[0], e[1], e[2]
            nx = e[3] if len(e) > 3 else k + 1
            if self.packed:
                raw += struct.pack("<QIHH", addr, ln, 0, fl)
            else:
                raw += struct.pack("<QIHH", addr, ln, fl, nx & 0xffff)
        if at is None:
            at = self.buf(len(raw))
        self.put(at, raw)
        return at, len(raw)

    # ---- split ----
    def sdesc(self, i, addr, ln, fl, nx):
        struct.pack_into("<QIHH", self.ring, self.off[0] + 16 * i, addr, ln,
                         fl, nx & 0xffff)

    def spublish(self, head):
        struct.pack_into("<H", self.ring,
                         self.off[1] + 4 + 2 * (self.sidx % self.size), head)
        self.sidx = (self.sidx + 1) & 0xffff
        struct.pack_into("<H", self.ring, self.off[1] + 2, self.sidx)

    # ---- packed ----
    def pdesc(self, slot, addr, ln, pid, fl):
        struct.pack_into("<QIHH", self.ring, self.off[0] + 16 * slot, addr,
                         ln, pid, fl)

    def chain(self, descs):
        """descs: (addr, len, flags[, split next | packed AVAIL/USED bits])"""
        self.in_flight += len(descs)
        assert self.in_flight <= self.size, "more descriptors than the ring"
        if not self.packed:
            head = self.next_desc
            for k, d in enumerate(descs):
                i = (head + k) % self.size
                nx = d[3] if len(d) > 3 else (i + 1) % self.size
                self.sdesc(i, d[0], d[1], d[2], nx)
            self.next_desc = (head + len(descs)) % self.size
            self.spublish(head)
            return
        pid = self.next_id
        self.next_id += 1
        pos, wrap = self.ppos, self.pwrap
        for d in descs:
            bits = d[3] if len(d) > 3 else (PK_AVAIL if wrap else PK_USED)
            self.pdesc(pos, d[0], d[1], pid, d[2] | bits)
            pos += 1
            if pos == self.size:
                pos, wrap = 0, not wrap
        self.ppos, self.pwrap = pos, wrap

    def patch_ring(self, off, val):
        self.patches.append(struct.pack("<HH", off & 0x7fff, val & 0xffff))

    def bytes(self):
        if self.packed:
            sel = self.size - 1
        else:
            sel = self.size.bit_length() - 1
            assert 1 << sel == self.size
        hdr = struct.pack("<BBBBHH8x", sel, self.flags, self.max_iov,
                          self.budget, self.base, len(self.data))
        return hdr + bytes(self.ring) + bytes(self.data) + b"".join(
            self.patches)


def rw_chain(s, nr, nw, ln=32):
    return ([(s.buf(ln), ln, F_NEXT) for _ in range(nr)] +
            [(s.buf(ln), ln, F_WRITE | F_NEXT) for _ in range(nw)])


def end(descs):
    """Clear NEXT on the last descriptor."""
    d = list(descs[-1])
    d[2] &= ~F_NEXT
    return descs[:-1] + [tuple(d)]


def common(packed):
    """Seeds that make sense for both formats."""
    out = {}

    s = Seed(packed, 8)
    s.chain([(s.buf(64), 64, 0)])
    out["single"] = s

    s = Seed(packed, 16)
    s.chain(end(rw_chain(s, 2, 2)))
    out["read-write"] = s

    s = Seed(packed, 32, data_len=2048)
    for k in range(10):
        s.chain(end(rw_chain(s, k % 3 + 1, k % 2, 16 + k)))
    out["ten-chains"] = s

    for name, fl in (("event-idx", EVENT_IDX), ("no-notify", NO_NOTIFY),
                     ("batch", BATCH), ("batch-reverse", BATCH | REVERSE),
                     ("reverse", REVERSE), ("gapped", GAPPED),
                     ("all-flags", EVENT_IDX | INDIRECT | BATCH | REVERSE)):
        s = Seed(packed, 16, flags=fl)
        for k in range(5):
            s.chain(end(rw_chain(s, 1, k % 2 + 1, 24)))
        out[name] = s

    s = Seed(packed, 8, flags=INDIRECT)
    t = s.itable([(s.buf(32), 32, F_NEXT), (s.buf(16), 16, F_NEXT),
                  (s.buf(64), 64, F_WRITE | F_NEXT), (s.buf(8), 8, F_WRITE)])
    s.chain([(t[0], t[1], F_IND)])
    s.chain([(s.buf(16), 16, F_WRITE)])
    out["indirect"] = s

    s = Seed(packed, 8, flags=INDIRECT)
    t = s.itable([(s.buf(32), 32, F_WRITE | F_NEXT), (s.buf(8), 8, F_WRITE)])
    s.chain([(s.buf(16), 16, F_NEXT), (t[0], t[1], F_IND)])
    out["direct-then-indirect"] = s

    # a buffer across the ring/data boundary (adjacent regions)
    s = Seed(packed, 8)
    s.chain([(s.data_addr() - 8, 24, F_WRITE)])
    s.chain([(s.buf(8), 8, F_NEXT), (s.data_addr() - 4, 12, F_NEXT),
             (s.buf(8), 8, F_WRITE)])
    out["straddle"] = s

    # an indirect table across the boundary: its first entry is in the
    # ring region's tail padding
    s = Seed(packed, 8, flags=INDIRECT)
    s.buf(16)  # the table's tail lands here
    b1, b2 = s.buf(16), s.buf(16)
    t = s.itable([(b1, 16, F_NEXT), (b2, 16, F_WRITE)],
                 at=s.data_addr() - 16)
    s.chain([(t[0], t[1], F_IND)])
    out["indirect-straddle"] = s

    s = Seed(packed, 8, max_iov=2)
    s.chain([(s.buf(8), 8, F_NEXT), (s.buf(8), 8, F_WRITE)])
    s.chain([(s.data_addr() - 8, 16, 0)])
    out["max-iov-2"] = s

    s = Seed(packed, 8, max_iov=0)
    s.chain([(s.buf(8), 0, F_NEXT), (0, 0, F_WRITE)])
    out["zero-length"] = s

    s = Seed(packed, 1)
    s.chain([(s.buf(8), 8, F_WRITE)])
    out["size-1"] = s

    s = Seed(packed, 128, data_len=4096)
    for k in range(40):
        s.chain(end(rw_chain(s, k % 2 + 1, 1, 8)))
    out["size-128"] = s

    # ---- one seed per walker rule, broken ----
    s = Seed(packed, 8, flags=INDIRECT)
    inner = s.itable([(s.buf(8), 8, 0)])
    t = s.itable([(s.buf(8), 8, F_NEXT), (inner[0], inner[1], F_IND)])
    s.chain([(t[0], t[1], F_IND)])
    out["bad-nested-indirect"] = s

    s = Seed(packed, 8, flags=INDIRECT)
    t = s.itable([(s.buf(8), 8, F_NEXT), (s.buf(8), 8, 0)])
    s.chain([(t[0], 24, F_IND)])
    out["bad-indirect-len"] = s

    s = Seed(packed, 8, flags=INDIRECT)
    t = s.itable([(s.buf(8), 8, 0)])
    s.chain([(t[0], t[1], F_IND | F_NEXT), (s.buf(8), 8, 0)])
    out["bad-indirect-next"] = s

    s = Seed(packed, 8)
    t = s.itable([(s.buf(8), 8, 0)])
    s.chain([(t[0], t[1], F_IND)])
    out["bad-indirect-not-negotiated"] = s

    s = Seed(packed, 4, flags=INDIRECT)
    t = s.itable([(s.buf(8), 8, F_NEXT)] * 4 + [(s.buf(8), 8, 0)])
    s.chain([(t[0], t[1], F_IND)])
    out["bad-indirect-too-long"] = s

    s = Seed(packed, 8)
    s.chain([(s.buf(8), 8, F_WRITE | F_NEXT), (s.buf(8), 8, 0)])
    out["bad-read-after-write"] = s

    s = Seed(packed, 8, flags=INDIRECT)
    t = s.itable([(s.buf(8), 8, F_WRITE | F_NEXT), (s.buf(8), 8, 0)])
    s.chain([(t[0], t[1], F_IND)])
    out["bad-read-after-write-indirect"] = s

    s = Seed(packed, 8)
    s.chain([(0xfffffffffffffff8, 16, 0)])
    out["bad-wrap"] = s

    s = Seed(packed, 8)
    s.chain([(0x1000, 16, 0)])
    out["bad-unmapped"] = s

    s = Seed(packed, 8, flags=GAPPED)
    s.chain([(s.data_addr() - GAP - 8, 16, 0)])
    out["bad-into-gap"] = s

    s = Seed(packed, 8, max_iov=1)
    s.chain([(s.buf(8), 8, F_NEXT), (s.buf(8), 8, 0)])
    out["bad-max-iov"] = s
    return out


def split_seeds():
    out = {"split-" + k: v for k, v in common(False).items()}

    s = Seed(False, 8, flags=SET_BASE, base=0xfffe)
    for k in range(4):
        s.chain([(s.buf(16), 16, F_WRITE)])
    out["split-idx-wrap"] = s

    # the driver publishes more chains later (patch records)
    s = Seed(False, 4, flags=EVENT_IDX)
    s.chain([(s.buf(16), 16, F_WRITE)])
    for n in range(1, 6):
        s.patch_ring(s.off[1] + 4 + 2 * (n % 4), 0)   # avail ring: head 0
        s.patch_ring(s.off[1] + 2, n + 1)             # avail idx
    out["split-patched"] = s

    s = Seed(False, 8, flags=INDIRECT)
    b = [s.buf(8) for _ in range(3)]
    t = s.itable([(b[0], 8, F_NEXT, 2), (b[1], 8, F_WRITE), (b[2], 8,
                                                              F_NEXT, 1)])
    s.chain([(t[0], t[1], F_IND)])
    out["split-indirect-out-of-order"] = s

    s = Seed(False, 8)
    s.chain([(s.buf(8), 8, F_NEXT, 1), (s.buf(8), 8, F_NEXT, 0)])
    out["split-bad-loop"] = s

    s = Seed(False, 8)
    s.sdesc(0, s.buf(8), 8, 0, 0)
    s.spublish(8)
    out["split-bad-head"] = s

    s = Seed(False, 8)
    s.chain([(s.buf(8), 8, F_NEXT, 9)])
    out["split-bad-next"] = s

    s = Seed(False, 8)
    s.chain([(s.buf(8), 8, 0)])
    struct.pack_into("<H", s.ring, s.off[1] + 2, 9)
    out["split-bad-avail-jump"] = s

    s = Seed(False, 8, flags=INDIRECT)
    t = s.itable([(s.buf(8), 8, F_NEXT, 1), (s.buf(8), 8, F_NEXT, 0)])
    s.chain([(t[0], t[1], F_IND)])
    out["split-bad-indirect-loop"] = s

    s = Seed(False, 8, flags=INDIRECT)
    t = s.itable([(s.buf(8), 8, F_NEXT, 5), (s.buf(8), 8, 0)])
    s.chain([(t[0], t[1], F_IND)])
    out["split-bad-indirect-next-range"] = s
    # vio_vq_pop_burst: one-descriptor chains, a two-descriptor chain
    # and an empty one where a burst stops, a buffer straddling the two
    # regions, a head out of range last
    s = Seed(False, 16, flags=BURST | EVENT_IDX)
    for k in range(5):
        s.chain([(s.buf(20 + k), 20 + k, F_WRITE if k % 2 else 0)])
    s.chain(end(rw_chain(s, 1, 1, 12)))
    s.chain([(s.buf(8), 0, F_WRITE)])
    for k in range(3):
        s.chain([(s.buf(64), 64, F_WRITE)])
    s.chain([(s.data_addr() - 8, 16, F_WRITE)])
    s.spublish(16)
    out["split-burst"] = s

    return out


def packed_seeds():
    out = {"packed-" + k: v for k, v in common(True).items()}

    # a chain across the end of the ring: the wrap counter flips inside
    s = Seed(True, 5, flags=SET_BASE, base=3 | 0x8000)
    s.chain(end(rw_chain(s, 2, 2, 16)))
    out["packed-wrap"] = s

    s = Seed(True, 7, flags=SET_BASE | EVENT_IDX, base=5 | 0x8000)
    for k in range(3):
        s.chain(end(rw_chain(s, 1, 1, 16)))
    out["packed-wrap-odd-size"] = s

    # fill one lap, then the driver makes slots available for lap 0
    s = Seed(True, 4)
    for k in range(4):
        s.chain([(s.buf(16), 16, F_WRITE)])
    for slot in range(4):
        s.patch_ring(16 * slot + 14, F_WRITE | PK_USED)
    out["packed-second-lap"] = s

    s = Seed(True, 4, flags=BATCH | REVERSE)
    s.chain(end(rw_chain(s, 1, 2, 8)))
    s.chain([(s.buf(8), 8, 0)])
    out["packed-batch-skip"] = s

    s = Seed(True, 8)
    s.chain([(s.buf(8), 8, F_NEXT)] * 8)
    out["packed-bad-ring-of-next"] = s

    # vio_vq_pop_burst: one-descriptor chains from an unaligned start,
    # whole lines of four, a two-descriptor chain and an empty one where
    # a burst stops, a buffer straddling the two regions
    s = Seed(True, 16, flags=SET_BASE | BURST | EVENT_IDX, base=2 | 0x8000)
    for k in range(6):
        s.chain([(s.buf(20 + k), 20 + k, F_WRITE if k % 2 else 0)])
    s.chain(end(rw_chain(s, 1, 1, 12)))
    s.chain([(s.buf(8), 0, F_WRITE)])
    for k in range(4):
        s.chain([(s.buf(64), 64, F_WRITE)])
    s.chain([(s.data_addr() - 8, 16, F_WRITE)])
    out["packed-burst"] = s

    # bursts across the end of the ring, then a second lap by patches
    s = Seed(True, 8, flags=SET_BASE | BURST | BATCH, base=4 | 0x8000)
    for k in range(8):
        s.chain([(s.buf(16), 16, F_WRITE)])
    for slot in range(4, 8):
        s.patch_ring(16 * slot + 14, F_WRITE | PK_USED)
    out["packed-burst-wrap"] = s

    s = Seed(True, 8)
    s.chain([(s.buf(8), 8, F_NEXT), (s.buf(8), 8, 0, PK_AVAIL | PK_USED)])
    out["packed-bad-tail-used"] = s

    s = Seed(True, 5, flags=SET_BASE, base=4 | 0x8000)
    s.chain([(s.buf(8), 8, F_NEXT), (s.buf(8), 8, 0, PK_AVAIL)])
    out["packed-bad-stale-wrap"] = s

    s = Seed(True, 8)
    s.chain([(s.buf(8), 8, 0, PK_AVAIL | PK_USED)])
    out["packed-head-used"] = s
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here,
                                                                "corpus")
    for sub, seeds in (("split", split_seeds()), ("packed", packed_seeds())):
        d = os.path.join(outdir, sub)
        os.makedirs(d, exist_ok=True)
        for name, s in sorted(seeds.items()):
            with open(os.path.join(d, "seed-" + name[len(sub) + 1:] + ".bin"),
                      "wb") as f:
                f.write(s.bytes())
        print("%s: %d seeds in %s" % (sub, len(seeds), d))


if __name__ == "__main__":
    main()
