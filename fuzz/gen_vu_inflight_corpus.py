#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the in-flight seeds of fuzz_vu_msg (format: fuzz_vu_msg.c).

GET_INFLIGHT_FD and SET_INFLIGHT_FD (protocol feature INFLIGHT_SHMFD,
bit 12) after a handshake: a valid GET (the backend makes the memfd and
replies with it), SET with the fd the target attaches (an eventfd: "not a
memory file"; with flags bit 12, the target's unsealed memfd: "not
sealed"), hostile shapes (no queues, too many, queue size 0 and past the
spec, a region too small, offset past the file), a payload one byte
short, and both requests without the protocol feature.

Usage: fuzz/gen_vu_inflight_corpus.py [OUTDIR]  (default fuzz/corpus/vu_msg)
"""
import os
import struct
import sys

VERSION, NEED_REPLY, SWAP_FD = 0x1, 0x8, 1 << 12
SET_FEATURES, SET_OWNER, SET_PROTOCOL_FEATURES = 2, 3, 16
GET_INFLIGHT_FD, SET_INFLIGHT_FD = 31, 32
F_PROTOCOL, F_VERSION_1 = 30, 32
PF = (1 << 0) | (1 << 3) | (1 << 12)
PART64 = 32 + 32 * 64  # vio_inflight_queue_bytes(64, packed), 64-aligned


def msg(req, payload=b"", flags=VERSION, size=None):
    return struct.pack("<III", req, flags,
                       len(payload) if size is None else size) + payload


def inflight(size, off, nq, qs):
    return struct.pack("<QQHHI", size, off, nq, qs, 0)


def hello(pf=PF):
    return (msg(SET_FEATURES,
                struct.pack("<Q", (1 << F_VERSION_1) | (1 << F_PROTOCOL))) +
            msg(SET_PROTOCOL_FEATURES, struct.pack("<Q", pf)) +
            msg(SET_OWNER))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "vu_msg")
    os.makedirs(out, exist_ok=True)
    good = inflight(2 * PART64, 0, 2, 64)
    seeds = {
        "get": hello() + msg(GET_INFLIGHT_FD, inflight(0, 0, 2, 64)),
        "get-set-eventfd": hello() + msg(GET_INFLIGHT_FD,
                                         inflight(0, 0, 2, 64)) +
        msg(SET_INFLIGHT_FD, good, VERSION | NEED_REPLY),
        "set-memfd-unsealed": hello() +
        msg(SET_INFLIGHT_FD, good, VERSION | SWAP_FD),
        "get-no-queues": hello() + msg(GET_INFLIGHT_FD,
                                       inflight(0, 0, 0, 64)),
        "get-too-many-queues": hello() + msg(GET_INFLIGHT_FD,
                                             inflight(0, 0, 9, 64)),
        "get-queue-size-0": hello() + msg(GET_INFLIGHT_FD,
                                          inflight(0, 0, 1, 0)),
        "get-queue-size-huge": hello() + msg(GET_INFLIGHT_FD,
                                             inflight(0, 0, 1, 65535)),
        "set-too-small": hello() + msg(SET_INFLIGHT_FD,
                                       inflight(PART64, 0, 2, 64),
                                       VERSION | SWAP_FD),
        "set-offset-past": hello() + msg(SET_INFLIGHT_FD,
                                         inflight(2 * PART64, 1 << 40, 2,
                                                  64), VERSION | SWAP_FD),
        "get-short": hello() + msg(GET_INFLIGHT_FD, inflight(0, 0, 1, 64)[:20]),
        "no-feature": hello(PF & ~(1 << 12)) +
        msg(GET_INFLIGHT_FD, inflight(0, 0, 1, 64)) +
        msg(SET_INFLIGHT_FD, good),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-inflight-%s.bin" % name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
