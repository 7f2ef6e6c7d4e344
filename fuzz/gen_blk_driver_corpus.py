#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed inputs of fuzz_blk_driver (format: fuzz_blk_driver.c).

An input is an 8-byte header (features, queue size, seg_max, size_max,
driver depth and bounce size, capacity) and a list of operations: the
driver submits and polls, the device pops chains and answers them through
the used ring, honestly or not (short or zero used lengths, lengths past
the buffer, foreign ids, a used index that jumps, a wrong packed wrap
bit, DEVICE_NEEDS_RESET), and answers inside the driver's wait.

Usage: fuzz/gen_blk_driver_corpus.py [OUTDIR]
(default: fuzz/corpus/blk_driver next to it).  Writes OUTDIR/seed-*.bin.
"""
import os
import struct
import sys

PACKED, EVENT_IDX, INDIRECT, FLUSH, SEG_MAX, SIZE_MAX, DISCARD, WZ = (
    1, 2, 4, 8, 16, 32, 64, 128)
(SUBMIT, POLL, POLL_WAIT, POP, USED, RAW, USED_IDX, NEEDS_RESET,
 CALL) = range(9)
READ, WRITE, FLUSH_OP, DISCARD_OP, WZ_OP, GET_ID = range(6)
# used length modes (fuzz_blk_driver.c dev_used)
HONEST, MINUS1, ZERO, ONE, FULL, PAST, RAW32 = range(7)
# status selector: 0/1 OK, 2 IOERR, 3 UNSUPP, >= 0xf0: low nibble raw
OK, IOERR, UNSUPP = 0, 2, 3
ZC, NOCB = 2, 4


def hdr(feat, qsize=16, seg=4, size_shift=3, depth=4, bounce=0,
        no_ind=False, cap=64):
    return bytes([feat, (qsize - 4) % 61, (seg - 1) % 8, size_shift,
                  (depth - 1) % 8, bounce | (0x80 if no_ind else 0),
                  cap, 0])


def submit(r, op, sec=0, nsec=8, fl=0):
    return bytes([SUBMIT, r, op, sec, nsec, fl])


def poll(mx=8):
    return bytes([POLL, mx])


def poll_wait(mx=8):
    return bytes([POLL_WAIT, mx])


def used(k=0, st=OK, lenmode=HONEST, idmode=0, len32=None, id32=None):
    b = bytes([USED, k, st, lenmode, idmode])
    if lenmode % 8 == RAW32:
        b += struct.pack('<I', len32 or 0)
    if idmode % 16 == 15:
        b += struct.pack('<I', id32 or 0)
    return b


def short_by(n):
    """lenmode 7 + 8 * n: the honest length less n"""
    return 7 + 8 * n


def raw(off, v):
    return bytes([RAW]) + struct.pack('<HI', off, v)


def used_idx(v):
    return bytes([USED_IDX]) + struct.pack('<H', v)


BASE = FLUSH | SEG_MAX | SIZE_MAX | INDIRECT


def seeds():
    for pk, tag in ((0, 'split'), (PACKED, 'packed')):
        f = BASE | pk
        yield tag + '-read-ok', hdr(f) + submit(0, READ) + used() + poll()
        yield tag + '-write-flush-ok', (
            hdr(f) + submit(0, WRITE) + submit(1, FLUSH_OP, nsec=0) +
            used(0) + used(0) + poll())
        yield tag + '-read-status-only', (
            hdr(f) + submit(0, READ) + used(0) + poll() +
            submit(0, READ) + used(0, OK, ONE) + poll())
        yield tag + '-read-one-short', (
            hdr(f) + submit(0, READ) + used(0, OK, MINUS1) + poll())
        yield tag + '-read-sector-short', (
            hdr(f) + submit(0, READ, nsec=8) +
            used(0, OK, short_by(30)) + poll())
        yield tag + '-read-len-zero', (
            hdr(f) + submit(0, READ) + used(0, OK, ZERO) + poll())
        yield tag + '-write-len-zero', (
            hdr(f) + submit(0, WRITE) + used(0, OK, ZERO) + poll())
        yield tag + '-ioerr-unsupp-bad', (
            hdr(f) + submit(0, READ) + submit(1, WRITE) +
            submit(2, FLUSH_OP, nsec=0) + used(0, IOERR, ONE) +
            used(0, UNSUPP, ONE) + used(0, 0xf7, FULL) + poll())
        yield tag + '-get-id', (
            hdr(f) + submit(0, GET_ID, nsec=19) + used() + poll() +
            submit(0, GET_ID, nsec=19) + used(0, OK, RAW32, len32=6) +
            poll() + submit(0, GET_ID, nsec=19) + used(0, OK, ZERO) +
            poll())
        yield tag + '-pieces-out-of-order', (
            hdr(f, bounce=0) + submit(0, READ, nsec=16) + POP.to_bytes(1, 'little') +
            used(1) + used(0) + poll())
        yield tag + '-pieces-last-short', (
            hdr(f) + submit(0, READ, nsec=16) + used(0) +
            used(0, OK, MINUS1) + poll())
        yield tag + '-zc-read', (
            hdr(f) + submit(0, READ, nsec=16, fl=ZC) + used() + used() +
            poll() + submit(1, READ, nsec=16, fl=ZC) +
            used(0, OK, ONE) + used(0) + poll())
        yield tag + '-zc-many-segs', (
            hdr(f, seg=8, size_shift=0) +
            submit(0, READ, nsec=16, fl=ZC) + used() + used() + poll())
        yield tag + '-zc-many-segs-noind', (
            hdr(f, qsize=32, seg=8, size_shift=0, no_ind=True) +
            submit(0, WRITE, nsec=16, fl=ZC) + used() + used() + poll())
        yield tag + '-no-callback', (
            hdr(f) + submit(0, READ, fl=NOCB) + submit(1, WRITE, fl=NOCB) +
            used() + poll(1) + used() + poll(8))
        yield tag + '-wait-answers', (
            hdr(f) + submit(0, READ) + submit(1, WRITE) + poll_wait() +
            used() + CALL.to_bytes(1, 'little') + used() + poll_wait())
        yield tag + '-wait-needs-reset', (
            hdr(f) + submit(0, READ) + poll_wait() +
            NEEDS_RESET.to_bytes(1, 'little') + CALL.to_bytes(1, 'little'))
        yield tag + '-wait-input-ends', hdr(f) + submit(0, READ) + poll_wait()
        yield tag + '-bad-id', (
            hdr(f) + submit(0, READ) + submit(1, READ, sec=8) +
            used(0, OK, HONEST, 15, id32=0x1234) + poll() +
            submit(2, READ) + poll())
        yield tag + '-id-not-in-flight', (
            hdr(f) + submit(0, READ) + used(0, OK, HONEST, 14) + poll())
        yield tag + '-len-past-buffer', (
            hdr(f) + submit(0, READ) + used(0, OK, PAST) + poll())
        yield tag + '-len-huge', (
            hdr(f) + submit(0, WRITE) +
            used(0, OK, RAW32, len32=0xffffffff) + poll())
        yield tag + '-discard-wz', (
            hdr(f | DISCARD | WZ) + submit(0, DISCARD_OP, nsec=16) +
            submit(1, WZ_OP, nsec=16, fl=1) + used() + used() + used() +
            used() + poll())
        yield tag + '-depth-1-queue', (
            hdr(f, depth=1) + submit(0, READ) + submit(1, READ, sec=8) +
            submit(2, WRITE) + used() + poll() + used() + poll() +
            used() + poll())
        yield tag + '-event-idx', (
            hdr(f | EVENT_IDX) + submit(0, READ) + submit(1, WRITE) +
            used() + used() + poll() + submit(2, READ) + used() + poll())
        yield tag + '-raw-scribble', (
            hdr(f) + submit(0, READ) + POP.to_bytes(1, 'little') +
            raw(0, 0x00010001) + raw(4, 0) + raw(8, 64) + poll())
        yield tag + '-wrap', hdr(f, qsize=4, depth=4) + b''.join(
            submit(i % 4, READ, sec=i) + used() + poll() for i in range(12))
    yield 'split-used-idx-jump', (
        hdr(BASE) + submit(0, READ) + used_idx(5) + poll())
    yield 'packed-wrong-wrap', (
        hdr(BASE | PACKED) + submit(0, READ) + used(0, OK, HONEST, 0x10) +
        poll() + submit(1, READ) + used() + poll())
    yield 'packed-used-pos-jump', (
        hdr(BASE | PACKED) + submit(0, READ) + used_idx(3) + used() +
        poll())
    yield 'capacity-range', (
        hdr(BASE, cap=0) + submit(0, READ, sec=15, nsec=2) +
        submit(1, WRITE, sec=255, nsec=1) + poll())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus', 'blk_driver')
    os.makedirs(out, exist_ok=True)
    n = 0
    for name, data in seeds():
        with open(os.path.join(out, 'seed-' + name + '.bin'), 'wb') as f:
            f.write(data)
        n += 1
    print('%d seeds in %s' % (n, out))


if __name__ == '__main__':
    main()
