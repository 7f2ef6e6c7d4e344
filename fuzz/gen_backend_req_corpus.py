#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seeds of fuzz_backend_req and fuzz_backend_ack (input
formats: fuzz_backend_req.c, fuzz_backend_ack.c): the two ends of the
backend channel.

fuzz_backend_req, what a backend sends the frontend:
What a backend writes on the backend channel: config changes with and
without NEED_REPLY, runs of them, unknown and IOTLB / host notifier
requests (answered "not supported"), and every reason the frontend
drops the channel: a bad version, the REPLY flag, fds attached (flags
bits 8-11, the target's), a payload over 64 bytes, a header or payload
cut short, garbage.

fuzz_backend_ack, what a frontend sends the backend: acks (0 and
failed), acks before every config change and late, with and without
REPLY_ACK or CONFIG negotiated, and what drops the channel: a request
instead of an ack, an ack without REPLY or of the wrong size, fds, a
flood of 64 acks, garbage.

Usage: fuzz/gen_backend_req_corpus.py [CORPUSDIR]
       (default fuzz/corpus: writes backend_req/ and backend_ack/)
"""
import os
import struct
import sys

VERSION, REPLY, NEED_REPLY = 0x1, 0x4, 0x8
IOTLB, CONFIG_CHANGE, HOST_NOTIFIER = 1, 2, 3
SERVE = 1 << 13  # the target serves the channel after this message


def msg(req, flags=VERSION, payload=b"", size=None):
    return struct.pack("<III", req, flags,
                       len(payload) if size is None else size) + payload


def fds(n):
    return VERSION | n << 8


def write(out, seeds):
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-%s.bin" % name), "wb") as f:
            f.write(data)


def ack_seeds():
    ACK, NO_CONFIG = 1, 2  # byte 0 of fuzz_backend_ack
    ok = msg(CONFIG_CHANGE, VERSION | REPLY, struct.pack("<Q", 0))
    ok_hook = msg(CONFIG_CHANGE, VERSION | REPLY | SERVE,
                  struct.pack("<Q", 0))
    failed = msg(CONFIG_CHANGE, VERSION | REPLY, struct.pack("<Q", 1))
    hook = msg(CONFIG_CHANGE, VERSION | SERVE, size=0)  # not an ack
    return {
        "empty": b"",
        "ack-only-mode": bytes([ACK]),
        "acks-each-hook": bytes([ACK]) + ok_hook * 8,
        "acks-late": bytes([ACK]) + ok + ok + ok_hook + failed + ok_hook,
        "ack-failed": bytes([ACK]) + failed + ok_hook,
        "no-reply-ack": bytes([0]) + ok_hook * 3,
        "no-config": bytes([ACK | NO_CONFIG]) + ok_hook * 3,
        "request-not-ack": bytes([ACK]) + ok_hook + hook + ok_hook,
        "ack-no-reply-flag": bytes([ACK]) + msg(
            CONFIG_CHANGE, VERSION | SERVE, struct.pack("<Q", 0)),
        "ack-short": bytes([ACK]) + msg(CONFIG_CHANGE,
                                        VERSION | REPLY | SERVE, bytes(4)),
        "ack-other-request": bytes([ACK]) + msg(
            IOTLB, VERSION | REPLY | SERVE, struct.pack("<Q", 0)),
        "ack-with-fd": bytes([ACK]) + msg(
            CONFIG_CHANGE, VERSION | REPLY | SERVE | 1 << 8,
            struct.pack("<Q", 0)),
        "ack-bad-version": bytes([ACK]) + msg(
            CONFIG_CHANGE, 2 | REPLY | SERVE, struct.pack("<Q", 0)),
        "ack-payload-65": bytes([ACK]) + msg(CONFIG_CHANGE, VERSION | REPLY,
                                             bytes(65)) + ok_hook,
        "ack-cut": bytes([ACK]) + ok_hook + ok[:15],
        "flood-63": bytes([ACK]) + ok * 62 + ok_hook,
        "flood-64": bytes([ACK]) + ok * 63 + ok_hook,
        "flood-100": bytes([ACK]) + ok * 100,
        "garbage": bytes([ACK]) + bytes(range(255, 0, -1)),
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    write(os.path.join(root, "backend_ack"), ack_seeds())
    change = msg(CONFIG_CHANGE)
    change_ack = msg(CONFIG_CHANGE, VERSION | NEED_REPLY)
    seeds = {
        "empty": b"",
        "change": change,
        "change-ack": change_ack,
        "change-ack-serve": msg(CONFIG_CHANGE, VERSION | NEED_REPLY | SERVE),
        "changes-40-ack": change_ack * 40,
        "changes-mixed": (change + change_ack + msg(CONFIG_CHANGE,
                                                    VERSION | SERVE)) * 6,
        "change-with-payload-ack": msg(CONFIG_CHANGE, VERSION | NEED_REPLY,
                                       struct.pack("<Q", 1)),
        "iotlb-ack": msg(IOTLB, VERSION | NEED_REPLY, bytes(40)),
        "host-notifier-ack": msg(HOST_NOTIFIER, VERSION | NEED_REPLY,
                                 bytes(24)) + change_ack,
        "unknown-ack": msg(99, VERSION | NEED_REPLY) + msg(0, VERSION |
                                                           NEED_REPLY),
        "unknown-max-payload": msg(7, VERSION | NEED_REPLY, bytes(64)) +
        change_ack,
        "payload-65": change_ack + msg(7, VERSION, bytes(65)) + change_ack,
        "payload-huge": change_ack + msg(7, VERSION, size=0xffffffff),
        "bad-version-0": change_ack + msg(CONFIG_CHANGE, 0) + change_ack,
        "bad-version-2": msg(CONFIG_CHANGE, 2 | NEED_REPLY) + change_ack,
        "reply-flag": change_ack + msg(CONFIG_CHANGE, VERSION | REPLY,
                                       struct.pack("<Q", 0)) + change_ack,
        "fd-one": change_ack + msg(CONFIG_CHANGE, fds(1) | NEED_REPLY) +
        change_ack,
        "fds-nine": msg(CONFIG_CHANGE, fds(9)) + change_ack,
        "fd-unknown": msg(5, fds(2) | NEED_REPLY, bytes(8)),
        "header-cut": change_ack + change_ack[:7],
        "payload-cut": change_ack + msg(IOTLB, VERSION | NEED_REPLY,
                                        bytes(40))[:30],
        "garbage": bytes(range(256)),
    }
    write(os.path.join(root, "backend_req"), seeds)


if __name__ == "__main__":
    main()
