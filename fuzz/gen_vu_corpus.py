#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed inputs of fuzz_vu_msg.

The input format is described in fuzz_vu_msg.c: vhost-user messages back
to back (12-byte header: request, flags, size; then the payload), fds
attached by the target (as many as the request wants, unless bits 8-11
of the flags say otherwise), and the target's FZ_POKE pseudo-request,
which writes bytes into the shared memfd.

Seeds: one valid message of each request the codec knows, then whole
sessions a frontend could send: the handshake, memory (SET_MEM_TABLE,
ADD/REM_MEM_REG), both queues of the 2-queue blk device set up and
enabled, with and without PROTOCOL_FEATURES, with REPLY_ACK, split and
packed rings holding real virtio-blk requests (write, read, flush, get-id)
that the kicks make the device serve, status changes and resets.

Usage: fuzz/gen_vu_corpus.py [OUTDIR]   (default: fuzz/corpus/vu_msg)
Writes OUTDIR/seed-*.bin.
"""
import os
import struct
import sys

VERSION, REPLY, NEED_REPLY = 0x1, 0x4, 0x8
NOFD = 1 << 8

(GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE) = (
    1, 2, 3, 4, 5)
(SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE,
 SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR, GET_PROTOCOL_FEATURES,
 SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE) = range(8, 19)
GET_CONFIG, SET_CONFIG = 24, 25
RESET_DEVICE = 34
GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG, SET_STATUS, GET_STATUS = (
    36, 37, 38, 39, 40)
FZ_POKE = 0x7fff0001

F_BLK_FLUSH, F_BLK_MQ = 9, 12
F_INDIRECT, F_EVENT_IDX, F_PROTOCOL = 28, 29, 30
F_VERSION_1, F_PACKED = 32, 34
PROTOCOL_ALL = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 13) | (1 << 15) | (
    1 << 16)

MEM = 2 << 20       # the target's memfd
UADDR = 0x7f1000000000  # where the "frontend" has it mapped
BLK_CONFIG_LEN = 72     # struct virtio_blk_config in the uapi headers


def bit(*bits):
    v = 0
    for b in bits:
        v |= 1 << b
    return v


def msg(req, payload=b"", flags=VERSION, size=None):
    return struct.pack("<III", req, flags,
                       len(payload) if size is None else size) + payload


def u64(req, v, flags=VERSION):
    return msg(req, struct.pack("<Q", v), flags)


def state(req, idx, num, flags=VERSION):
    return msg(req, struct.pack("<II", idx, num), flags)


def addr(idx, desc, used, avail, flags=VERSION):
    return msg(SET_VRING_ADDR,
               struct.pack("<IIQQQQ", idx, 0, desc, used, avail, 0), flags)


def region(gpa, size, uaddr, off):
    return struct.pack("<QQQQ", gpa, size, uaddr, off)


def mem_table(regions, flags=VERSION):
    return msg(SET_MEM_TABLE,
               struct.pack("<II", len(regions), 0) + b"".join(regions), flags)


def mem_reg(req, gpa, size, uaddr, off, flags=VERSION):
    return msg(req, struct.pack("<Q", 0) + region(gpa, size, uaddr, off),
               flags)


def config(req, off, size, data=b"", flags=VERSION):
    data = data.ljust(size, b"\0")[:size]
    return msg(req, struct.pack("<III", off, size, 0) + data, flags)


def poke(off, data):
    return msg(FZ_POKE, struct.pack("<I", off) + data)


# ---- rings in the memfd (gpa 0 = memfd offset 0) ----

QSIZE = 64
RING = [0x0000, 0x4000]  # per queue: desc, +0x1000 driver, +0x2000 device
BUF = 0x10000            # request buffers


def areas(q):
    b = RING[q]
    return b, b + 0x1000, b + 0x2000


def blk_request(kind, sector, data_len, at):
    """Header, data, status buffers at `at`; returns (pokes, segments).
    segments: (gpa, len, writable)."""
    hdr = struct.pack("<IIQ", kind, 0, sector)
    pokes = [poke(at, hdr)]
    segs = [(at, 16, False)]
    if kind == 1:  # OUT
        pokes.append(poke(at + 0x100, bytes((i * 7) & 0xff
                                             for i in range(data_len))))
        segs.append((at + 0x100, data_len, False))
    elif kind in (0, 8):  # IN, GET_ID
        segs.append((at + 0x100, data_len, True))
    segs.append((at + 0x100 + max(data_len, 0) + 0x10, 1, True))
    return pokes, segs


def split_chain(q, head, segs, avail_idx):
    desc, avail, _ = areas(q)
    out = []
    for k, (gpa, ln, wr) in enumerate(segs):
        last = k == len(segs) - 1
        fl = (0 if last else 1) | (2 if wr else 0)
        out.append(poke(desc + 16 * (head + k),
                        struct.pack("<QIHH", gpa, ln, fl,
                                    0 if last else head + k + 1)))
    out.append(poke(avail + 4 + 2 * (avail_idx % QSIZE),
                    struct.pack("<H", head)))
    out.append(poke(avail + 2, struct.pack("<H", avail_idx + 1)))
    return out


def packed_chain(q, slot, segs, buf_id):
    desc, _, _ = areas(q)
    out = []
    # the head's flags last, as a driver publishes
    for k in reversed(range(len(segs))):
        gpa, ln, wr = segs[k]
        last = k == len(segs) - 1
        fl = (0 if last else 1) | (2 if wr else 0) | (1 << 7)  # AVAIL, wrap 1
        out.append(poke(desc + 16 * (slot + k),
                        struct.pack("<QIHH", gpa, ln, buf_id, fl)))
    return out


# ---- sessions ----

def handshake(features, protocol=PROTOCOL_ALL, ack=False):
    fl = VERSION | (NEED_REPLY if ack else 0)
    s = [msg(GET_FEATURES), msg(GET_PROTOCOL_FEATURES)]
    if features & bit(F_PROTOCOL):
        s.append(u64(SET_PROTOCOL_FEATURES, protocol))
    s += [msg(SET_OWNER), msg(GET_QUEUE_NUM), msg(GET_MAX_MEM_SLOTS),
          u64(SET_FEATURES, features, fl),
          config(GET_CONFIG, 0, BLK_CONFIG_LEN),
          mem_table([region(0, MEM, UADDR, 0)], fl)]
    return s


def ring_setup(q, packed=False, enable=True, ack=False):
    fl = VERSION | (NEED_REPLY if ack else 0)
    d, a, u = areas(q)
    base = 0x80008000 if packed else 0
    s = [state(SET_VRING_NUM, q, QSIZE, fl),
         state(SET_VRING_BASE, q, base, fl),
         addr(q, UADDR + d, UADDR + u, UADDR + a, fl),
         u64(SET_VRING_CALL, q, fl),
         u64(SET_VRING_ERR, q | NOFD, fl),
         u64(SET_VRING_KICK, q, fl)]
    if enable:
        s.append(state(SET_VRING_ENABLE, q, 1, fl))
    return s


def split_io(q, reqs):
    """reqs: list of (kind, sector, len); laid out and published one by
    one, each after the ring is live (the target kicks after every
    message)."""
    s, head, idx = [], 0, 0
    for n, (kind, sector, ln) in enumerate(reqs):
        pokes, segs = blk_request(kind, sector, ln, BUF + q * 0x8000 +
                                  n * 0x1000)
        s += pokes + split_chain(q, head, segs, idx)
        head += len(segs)
        idx += 1
    return s


def packed_io(q, reqs):
    s, slot = [], 0
    for n, (kind, sector, ln) in enumerate(reqs):
        pokes, segs = blk_request(kind, sector, ln, BUF + q * 0x8000 +
                                  n * 0x1000)
        s += pokes + packed_chain(q, slot, segs, n)
        slot += len(segs)
    return s


def seeds():
    out = {}
    base_f = bit(F_VERSION_1, F_PROTOCOL, F_EVENT_IDX, F_BLK_FLUSH, F_BLK_MQ)

    # one valid message of each request
    single = {
        "get-features": msg(GET_FEATURES),
        "set-features": u64(SET_FEATURES, base_f),
        "set-owner": msg(SET_OWNER),
        "reset-owner": msg(RESET_OWNER),
        "set-mem-table": mem_table([region(0, MEM, UADDR, 0)]),
        "set-mem-table-2": mem_table([region(0, MEM // 2, UADDR, 0),
                                      region(MEM, MEM // 2, UADDR + MEM,
                                             MEM // 2)]),
        "set-vring-num": state(SET_VRING_NUM, 0, QSIZE),
        "set-vring-addr": addr(0, UADDR, UADDR + 0x2000, UADDR + 0x1000),
        "set-vring-base": state(SET_VRING_BASE, 0, 0),
        "get-vring-base": state(GET_VRING_BASE, 0, 0),
        "set-vring-kick": u64(SET_VRING_KICK, 0),
        "set-vring-call": u64(SET_VRING_CALL, 1),
        "set-vring-err": u64(SET_VRING_ERR, 0 | NOFD),
        "get-protocol-features": msg(GET_PROTOCOL_FEATURES),
        "set-protocol-features": u64(SET_PROTOCOL_FEATURES, PROTOCOL_ALL),
        "get-queue-num": msg(GET_QUEUE_NUM),
        "set-vring-enable": state(SET_VRING_ENABLE, 0, 1),
        "get-config": config(GET_CONFIG, 0, BLK_CONFIG_LEN),
        "set-config": config(SET_CONFIG, 0x20, 1, b"\1"),
        "reset-device": msg(RESET_DEVICE),
        "get-max-mem-slots": msg(GET_MAX_MEM_SLOTS),
        "add-mem-reg": mem_reg(ADD_MEM_REG, 0, MEM, UADDR, 0),
        "rem-mem-reg": mem_reg(REM_MEM_REG, 0, MEM, UADDR, 0),
        "set-status": u64(SET_STATUS, 0),
        "get-status": msg(GET_STATUS),
    }
    for k, v in single.items():
        out["msg-" + k] = [v]

    # sessions
    out["session-handshake"] = handshake(base_f) + [msg(GET_STATUS)]
    out["session-handshake-ack"] = handshake(base_f, ack=True) + [
        u64(SET_STATUS, 0xf, VERSION | NEED_REPLY), msg(GET_STATUS)]
    out["session-split-write-read"] = (
        handshake(base_f) + ring_setup(0) +
        split_io(0, [(1, 0, 512), (0, 0, 512), (4, 0, 0), (8, 0, 20)]) +
        [state(GET_VRING_BASE, 0, 0), msg(GET_STATUS)])
    out["session-split-2q"] = (
        handshake(base_f) + ring_setup(0) + ring_setup(1) +
        split_io(1, [(1, 8, 1024), (0, 8, 1024)]) +
        split_io(0, [(0, 120, 4096)]) +
        [state(GET_VRING_BASE, 1, 0), state(GET_VRING_BASE, 0, 0)])
    packed_f = base_f | bit(F_PACKED)
    out["session-packed-write-read"] = (
        handshake(packed_f) + ring_setup(0, packed=True) +
        packed_io(0, [(1, 4, 512), (0, 4, 512), (4, 0, 0)]) +
        [state(GET_VRING_BASE, 0, 0)])
    out["session-indirect-features"] = (
        handshake(base_f | bit(F_INDIRECT)) + ring_setup(0) +
        split_io(0, [(1, 0, 512)]))
    # no PROTOCOL_FEATURES: no SET_PROTOCOL_FEATURES, rings enabled by kick
    nopf = bit(F_VERSION_1, F_EVENT_IDX)
    out["session-no-protocol"] = (
        handshake(nopf) + ring_setup(0, enable=False) +
        split_io(0, [(1, 0, 512), (0, 0, 512)]))
    out["session-reply-ack"] = (
        handshake(base_f, ack=True) + ring_setup(0, ack=True) +
        split_io(0, [(1, 16, 512)]) +
        [mem_table([region(0, MEM, UADDR, 0)], VERSION | NEED_REPLY),
         u64(SET_STATUS, 0, VERSION | NEED_REPLY)])
    out["session-mem-slots"] = (
        handshake(base_f)[:-1] +
        [mem_reg(ADD_MEM_REG, 0, MEM // 2, UADDR, 0),
         mem_reg(ADD_MEM_REG, MEM // 2, MEM // 2, UADDR + MEM // 2,
                 MEM // 2)] +
        ring_setup(0) + split_io(0, [(1, 0, 512)]) +
        [mem_reg(REM_MEM_REG, MEM // 2, MEM // 2, UADDR + MEM // 2,
                 MEM // 2),
         mem_reg(REM_MEM_REG, 0, MEM // 2, UADDR, 0)])
    out["session-status"] = (
        handshake(base_f) +
        [u64(SET_STATUS, 0xf), msg(GET_STATUS)] + ring_setup(0) +
        [u64(SET_STATUS, 0x8f), msg(GET_STATUS), u64(SET_STATUS, 0),
         msg(GET_STATUS)] + handshake(base_f))
    out["session-reset"] = (
        handshake(base_f) + ring_setup(0) + split_io(0, [(1, 0, 512)]) +
        [msg(RESET_DEVICE), msg(RESET_OWNER)] + handshake(base_f) +
        ring_setup(0))
    out["session-config"] = (
        handshake(base_f) +
        [config(GET_CONFIG, 0, 8), config(GET_CONFIG, 20, 4),
         config(SET_CONFIG, 0x20, 1, b"\1"),
         config(GET_CONFIG, 0, BLK_CONFIG_LEN)])
    out["session-disable-reenable"] = (
        handshake(base_f) + ring_setup(0) + split_io(0, [(1, 0, 512)]) +
        [state(SET_VRING_ENABLE, 0, 0), state(SET_VRING_ENABLE, 0, 1),
         addr(0, UADDR, UADDR + 0x2000, UADDR + 0x1000),
         u64(SET_VRING_CALL, 0 | NOFD), state(GET_VRING_BASE, 0, 0)])
    # a few that the backend must refuse, for the mutator to start from
    out["bad-truncated"] = [msg(SET_FEATURES, size=8)]
    out["bad-too-many-fds"] = [msg(GET_FEATURES, flags=VERSION | (10 << 8))]
    out["bad-mem-9-regions"] = [msg(SET_MEM_TABLE,
                                    struct.pack("<II", 9, 0) +
                                    region(0, 4096, 0, 0) * 8)]
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "corpus", "vu_msg")
    os.makedirs(outdir, exist_ok=True)
    for name, parts in sorted(seeds().items()):
        with open(os.path.join(outdir, "seed-%s.bin" % name), "wb") as f:
            f.write(b"".join(parts))
    print("wrote %d seeds to %s" % (len(seeds()), outdir))


if __name__ == "__main__":
    main()
