#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the migration seeds of fuzz_vu_msg (format: fuzz_vu_msg.c).

Dirty logging (protocol feature LOG_SHMFD, bit 1; feature bit
VHOST_F_LOG_ALL, 26): SET_LOG_FD, SET_LOG_BASE with the target's memfd
(flags bit 12 swaps the eventfd for it; the log is its second MiB, which
no ring or buffer uses), split and packed rings whose addresses carry
VHOST_VRING_F_LOG and log_guest_addr, virtio-blk requests served with
logging on, SET_FEATURES turning LOG_ALL off and on while the rings run,
a second SET_LOG_BASE (the hand-over), and logs that cannot be mapped.

Device state (protocol feature DEVICE_STATE, bit 19):
SET_DEVICE_STATE_FD (42) and CHECK_DEVICE_STATE (43): SAVE into the
memfd after the ring stopped, LOAD from it (the 2 MiB file is larger than
any blob: refused), before SET_FEATURES too (QEMU 8.2+'s order), and the
refusals (no DEVICE_STATE, a ring running, a direction or phase that does
not exist, CHECK without a transfer).  A LOAD never gets the eventfd in
these seeds: an eventfd has no end of file, so CHECK_DEVICE_STATE would
wait its full second.

Usage: fuzz/gen_vu_migration_corpus.py [OUTDIR]  (default fuzz/corpus/vu_msg)
Writes OUTDIR/seed-log-*.bin and OUTDIR/seed-state-*.bin.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_vu_corpus as g  # noqa: E402  the shared message builders

SWAP_FD = 1 << 12
SET_LOG_BASE, SET_LOG_FD = 6, 7
SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE = 42, 43
PF_LOG_SHMFD, PF_DEVICE_STATE = 1, 19
F_LOG_ALL = 26
VRING_F_LOG = 1
SAVE, LOAD = 0, 1
PROTOCOL = g.PROTOCOL_ALL | (1 << PF_LOG_SHMFD) | (1 << PF_DEVICE_STATE)
LOG_OFF = 1 << 20          # the log: the memfd's second MiB
LOG_SIZE = 0x1000          # covers 128 MiB of guest memory


def log_base(size=LOG_SIZE, off=LOG_OFF, flags=g.VERSION | SWAP_FD):
    return g.msg(SET_LOG_BASE, struct.pack("<QQ", size, off), flags)


def log_fd():
    return g.msg(SET_LOG_FD)  # the target attaches its eventfd


def xfer(direction, phase=0, memfd=True):
    return g.msg(SET_DEVICE_STATE_FD, struct.pack("<II", direction, phase),
                 g.VERSION | (SWAP_FD if memfd else 0))


def check():
    return g.msg(CHECK_DEVICE_STATE)


def logged_ring(q, packed=False):
    """ring_setup's messages, the address with VHOST_VRING_F_LOG and
    log_guest_addr at the used/device area's guest address."""
    d, a, u = g.areas(q)
    out = []
    for m in g.ring_setup(q, packed=packed):
        req = struct.unpack_from("<I", m)[0]
        if req == g.SET_VRING_ADDR:
            m = g.msg(g.SET_VRING_ADDR,
                      struct.pack("<IIQQQQ", q, VRING_F_LOG, g.UADDR + d,
                                  g.UADDR + u, g.UADDR + a, u))
        out.append(m)
    return out


def seeds():
    base_f = g.bit(g.F_VERSION_1, g.F_PROTOCOL, g.F_EVENT_IDX,
                   g.F_BLK_FLUSH, g.F_BLK_MQ)
    log_f = base_f | g.bit(F_LOG_ALL)
    out = {}
    # one valid message of each (no protocol feature: refused)
    out["log-msg-set-log-base"] = [log_base()]
    out["log-msg-set-log-fd"] = [log_fd()]
    out["state-msg-set-device-state-fd"] = [xfer(SAVE)]
    out["state-msg-check-device-state"] = [check()]
    # dirty logging on split rings: the log before LOG_ALL (as QEMU),
    # requests logged, LOG_ALL off and on again, a new log (hand-over)
    hs = g.handshake(log_f, protocol=PROTOCOL)
    out["log-session-split"] = (
        hs[:-3] + [log_fd(), log_base()] + hs[-3:] + logged_ring(0) +
        logged_ring(1) +
        g.split_io(0, [(1, 0, 512), (0, 0, 512), (4, 0, 0), (8, 0, 20)]) +
        [g.u64(g.SET_FEATURES, base_f)] +
        g.split_io(1, [(1, 8, 1024)]) +
        [g.u64(g.SET_FEATURES, log_f), log_base(2 * LOG_SIZE)] +
        g.split_io(1, [(1, 8, 1024), (0, 8, 1024)]) +
        [g.state(g.GET_VRING_BASE, 0, 0), g.state(g.GET_VRING_BASE, 1, 0)])
    packed_f = log_f | g.bit(g.F_PACKED)
    out["log-session-packed"] = (
        g.handshake(packed_f, protocol=PROTOCOL) + [log_base()] +
        logged_ring(0, packed=True) +
        g.packed_io(0, [(1, 4, 512), (0, 4, 512), (4, 0, 0)]) +
        [g.state(g.GET_VRING_BASE, 0, 0)])
    # LOG_ALL without a log, then logs that cannot be mapped
    out["log-session-no-base"] = (
        g.handshake(log_f, protocol=PROTOCOL) + g.ring_setup(0) +
        g.split_io(0, [(1, 0, 512)]))
    out["log-bad-size-0"] = (g.handshake(log_f, protocol=PROTOCOL) +
                             [log_base(size=0)])
    out["log-bad-past-end"] = (g.handshake(log_f, protocol=PROTOCOL) +
                               [log_base(off=g.MEM - 0x800)])
    out["log-bad-eventfd"] = (g.handshake(log_f, protocol=PROTOCOL) +
                              [log_base(flags=g.VERSION)])
    # device state: SAVE after the ring stopped, LOAD (refused: the file
    # is larger than any blob), the ring again
    out["state-session-save-load"] = (
        g.handshake(base_f, protocol=PROTOCOL) + g.ring_setup(0) +
        g.split_io(0, [(1, 0, 512)]) +
        [g.state(g.SET_VRING_ENABLE, 0, 0), g.state(g.GET_VRING_BASE, 0, 0),
         xfer(SAVE), check(), xfer(LOAD), check()] + g.ring_setup(0))
    # the refusals, the connection going on
    out["state-session-refused"] = (
        g.handshake(base_f, protocol=PROTOCOL) + g.ring_setup(0) +
        [xfer(SAVE), check(), check(),
         g.state(g.GET_VRING_BASE, 0, 0),
         xfer(2), check(), xfer(SAVE, phase=1), check(),
         xfer(SAVE, memfd=False), check()])
    out["state-no-feature"] = (
        g.handshake(base_f) + [xfer(SAVE), check(), xfer(LOAD), check()])
    # QEMU 8.2+'s order: the state before SET_FEATURES, then a reset
    out["state-load-before-features"] = (
        [g.msg(g.GET_FEATURES), g.u64(g.SET_PROTOCOL_FEATURES, PROTOCOL),
         g.msg(g.SET_OWNER), xfer(LOAD), check(),
         g.u64(g.SET_FEATURES, base_f), g.msg(g.GET_STATUS),
         g.msg(g.RESET_DEVICE), xfer(LOAD), g.u64(g.SET_STATUS, 0), check()])
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "vu_msg")
    os.makedirs(out, exist_ok=True)
    s = seeds()
    for name, parts in sorted(s.items()):
        with open(os.path.join(out, "seed-%s.bin" % name), "wb") as f:
            f.write(b"".join(parts))
    print("wrote %d seeds to %s" % (len(s), out))


if __name__ == "__main__":
    main()
