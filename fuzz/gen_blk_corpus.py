#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed inputs of fuzz_blk_req.

The input format is described in fuzz_blk_req.c: a 16-byte header (flags,
region size, seg_max, size_max, max_discard_seg, chain count, writeback
byte), one record per chain (descriptor count and indirect bit, then
offset, length and flags of each descriptor), then the bytes of the data
memory the descriptors point into.

Seeds: each request type done right (OUT, IN, FLUSH, GET_ID, DISCARD,
WRITE_ZEROES with and without unmap), each wrong (short header, no status
byte, data in the wrong direction, lengths not a multiple of 512, ranges
past the end of the 64 KiB image, bad DISCARD/WRITE_ZEROES flags, counts
and payload lengths, unknown types), every layout (header and data in one
descriptor, data and status in one, indirect tables), descriptors across
region boundaries at the seg_max and size_max edges, batches of chains,
read-only and writethrough devices, writeback byte writes; split and
packed rings.

Usage: fuzz/gen_blk_corpus.py [OUTDIR]   (default: fuzz/corpus/blk_req)
Writes OUTDIR/seed-*.bin.
"""
import os
import struct
import sys

PACKED, INDIRECT, READONLY, NO_FLUSH, NO_DISCARD, NO_WZ, WCE, EVENT_IDX = (
    1, 2, 4, 8, 16, 32, 64, 128)
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13
UNMAP = 1
DATA = 16 << 10


def hdr(t, sector):
    return struct.pack('<IIQ', t, 0, sector)


def rng(sector, num, flags=0):
    return struct.pack('<QII', sector, num, flags)


class Seed:
    def __init__(self, flags=0, stripe=6, seg_max=0, size_max=0, dwz=0,
                 wce=0):
        self.flags, self.stripe = flags, stripe
        self.seg_max, self.size_max, self.dwz, self.wce = (
            seg_max, size_max, dwz, wce)
        self.chains = []
        self.data = bytearray(DATA)

    def put(self, off, b):
        self.data[off:off + len(b)] = b
        return off

    # a descriptor: (offset, length, writable, extra flag bits)
    def chain(self, descs, indirect=False):
        self.chains.append((descs, indirect))
        return self

    def bytes(self):
        out = bytearray(16)
        out[0] = self.flags
        out[1] = self.stripe
        out[2] = self.seg_max
        out[3] = self.size_max
        out[4] = self.dwz
        out[5] = (len(self.chains) - 1) % 8
        out[6] = self.wce
        for descs, indirect in self.chains:
            out.append((len(descs) - 1) | (16 if indirect else 0))
            for d in descs:
                off, ln, w = d[0], d[1], d[2]
                extra = d[3] if len(d) > 3 else 0
                out += struct.pack('<HHB', off, ln, (1 if w else 0) | extra)
        # trailing zeroes of the data memory are implied
        data = bytes(self.data).rstrip(b'\0')
        return bytes(out) + data


def rw(t, sector, dlen, nseg=1, seg_at=1024, status_at=8000, **kw):
    s = Seed(**kw)
    s.put(0, hdr(t, sector))
    descs = [(0, 16, False)]
    step = dlen // nseg
    for i in range(nseg):
        ln = step if i + 1 < nseg else dlen - step * (nseg - 1)
        off = seg_at + i * (step + 100)
        if t == T_OUT:
            s.put(off, bytes((off + k) & 0xff for k in range(ln)))
        descs.append((off, ln, t != T_OUT))
    descs.append((status_at, 1, True))
    return s.chain(descs)


def dwz(t, ranges, trim=0, **kw):
    s = Seed(**kw)
    s.put(0, hdr(t, 0))
    payload = b''.join(rng(*r) for r in ranges)
    s.put(64, payload)
    ln = len(payload) - trim
    descs = [(0, 16, False)] + ([(64, ln, False)] if ln > 0 else [])
    return s.chain(descs + [(4000, 1, True)])


def simple(t, descs, sector=0, **kw):
    s = Seed(**kw)
    s.put(0, hdr(t, sector))
    return s.chain(descs)


def seeds():
    out = {}
    for ring, rf in (('split', 0), ('packed', PACKED)):
        f = rf | INDIRECT | EVENT_IDX
        out[ring + '-out'] = rw(T_OUT, 0, 512, flags=f)
        out[ring + '-out-3seg'] = rw(T_OUT, 8, 4096, 3, flags=f)
        out[ring + '-in'] = rw(T_IN, 10, 1024, flags=f)
        out[ring + '-in-last-sector'] = rw(T_IN, 127, 512, flags=f)
        out[ring + '-in-past-end'] = rw(T_IN, 127, 1024, flags=f)
        out[ring + '-in-odd-len'] = rw(T_IN, 0, 100, flags=f)
        out[ring + '-flush'] = simple(T_FLUSH, [(0, 16, False),
                                                (100, 1, True)], flags=f)
        out[ring + '-flush-data'] = simple(
            T_FLUSH, [(0, 16, False), (200, 512, False), (100, 1, True)],
            flags=f)
        out[ring + '-get-id'] = simple(
            T_GET_ID, [(0, 16, False), (200, 20, True), (300, 1, True)],
            flags=f)
        out[ring + '-get-id-short'] = simple(
            T_GET_ID, [(0, 16, False), (200, 8, True), (300, 1, True)],
            flags=f)
        out[ring + '-discard'] = dwz(T_DISCARD, [(0, 8), (16, 16)], flags=f)
        out[ring + '-wz-unmap'] = dwz(T_WZ, [(8, 8, UNMAP), (40, 4)],
                                      flags=f)
        out[ring + '-wz-bad-flags'] = dwz(T_WZ, [(0, 8, 6)], flags=f)
        out[ring + '-discard-unmap'] = dwz(T_DISCARD, [(0, 8, UNMAP)],
                                           flags=f)
        out[ring + '-discard-past-end'] = dwz(T_DISCARD, [(120, 16)],
                                              flags=f)
        out[ring + '-wz-too-long'] = dwz(T_WZ, [(0, 4194304)], flags=f)
        out[ring + '-discard-trim'] = dwz(T_DISCARD, [(0, 8)], trim=1,
                                          flags=f)
        out[ring + '-discard-empty'] = dwz(T_DISCARD, [(0, 8)], trim=16,
                                           flags=f)
        out[ring + '-discard-too-many'] = dwz(
            T_DISCARD, [(i, 1) for i in range(9)], flags=f, dwz=7)
        out[ring + '-discard-off'] = dwz(T_DISCARD, [(0, 8)],
                                         flags=f | NO_DISCARD)
        out[ring + '-unknown'] = simple(0x55, [(0, 16, False),
                                               (100, 1, True)], flags=f)
        out[ring + '-short-hdr'] = simple(T_IN, [(0, 8, False),
                                                 (100, 1, True)], flags=f)
        out[ring + '-no-status'] = simple(T_OUT, [(0, 16, False),
                                                  (512, 512, False)],
                                          flags=f)
        out[ring + '-out-writable'] = simple(
            T_OUT, [(0, 16, False), (512, 512, True), (100, 1, True)],
            flags=f)
        out[ring + '-in-readable'] = simple(
            T_IN, [(0, 16, False), (512, 512, False), (100, 1, True)],
            flags=f)
        # one descriptor for header and data; one for data and status
        s = Seed(flags=f)
        s.put(0, hdr(T_OUT, 4))
        out[ring + '-hdr-data-one'] = s.chain([(0, 16 + 512, False),
                                               (2000, 1, True)])
        out[ring + '-data-status-one'] = simple(
            T_IN, [(0, 10, False), (10, 6, False), (1024, 513, True)],
            flags=f)
        # indirect
        s = rw(T_OUT, 2, 2048, 4, flags=f)
        s.chains[0] = (s.chains[0][0], True)
        out[ring + '-indirect'] = s
        # region crossings: 64-byte regions, seg_max 4, size_max 4096
        lim = dict(flags=f, stripe=0, seg_max=4, size_max=4)
        out[ring + '-cross-ok'] = rw(T_OUT, 0, 4096, 1, seg_at=1000, **lim)
        out[ring + '-cross-seg-max'] = rw(T_IN, 0, 2048, 4, seg_at=1000,
                                          **lim)
        out[ring + '-cross-seg-max-1'] = rw(T_IN, 0, 2560, 5, seg_at=1000,
                                            **lim)
        out[ring + '-cross-size-max-512'] = rw(T_OUT, 0, 4608, 1,
                                               seg_at=1000, **lim)
        # a batch: every type once
        s = Seed(flags=f)
        s.put(0, hdr(T_OUT, 0))
        s.put(16, hdr(T_IN, 0))
        s.put(32, hdr(T_FLUSH, 0))
        s.put(48, hdr(T_GET_ID, 0))
        s.put(64, hdr(T_DISCARD, 0))
        s.put(80, rng(4, 4))
        s.put(96, hdr(T_WZ, 0))
        s.put(112, rng(8, 4, UNMAP))
        s.put(128, hdr(99, 0))
        s.chain([(0, 16, False), (1024, 512, False), (9000, 1, True)])
        s.chain([(16, 16, False), (2048, 512, True), (9001, 1, True)])
        s.chain([(32, 16, False), (9002, 1, True)])
        s.chain([(48, 16, False), (3000, 20, True), (9003, 1, True)])
        s.chain([(64, 32, False), (9004, 1, True)])
        s.chain([(96, 32, False), (9005, 1, True)])
        s.chain([(128, 16, False), (9006, 1, True)])
        s.chain([(0, 16, False), (1024, 512, False), (9007, 1, True)],
                indirect=True)
        out[ring + '-batch'] = s
        # devices and features
        out[ring + '-readonly-out'] = rw(T_OUT, 0, 512, flags=f | READONLY)
        out[ring + '-readonly-wz'] = dwz(T_WZ, [(0, 8)], flags=f | READONLY)
        out[ring + '-writethrough'] = rw(T_OUT, 0, 1024, 2,
                                         flags=f | NO_FLUSH)
        out[ring + '-wce-0'] = rw(T_OUT, 0, 1024, 2, flags=f | WCE, wce=0)
        out[ring + '-wce-bad'] = rw(T_OUT, 0, 512, flags=f | WCE, wce=2)
        out[ring + '-wz-off'] = dwz(T_WZ, [(0, 8)], flags=f | NO_WZ)
        # a descriptor past the data memory (the queue breaks)
        out[ring + '-unmapped'] = simple(
            T_IN, [(0, 16, False), (16000, 4096, True, 2), (100, 1, True)],
            flags=f)
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus', 'blk_req')
    os.makedirs(outdir, exist_ok=True)
    for name, s in seeds().items():
        with open(os.path.join(outdir, 'seed-' + name + '.bin'), 'wb') as f:
            f.write(s.bytes())


if __name__ == '__main__':
    main()
