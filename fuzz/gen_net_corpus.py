#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seeds of fuzz_net_hdr and fuzz_net_ctrl (input formats:
fuzz_net_hdr.c, fuzz_net_ctrl.c).

fuzz_net_hdr, transmit chains: plain frames in one and several
segments (the header split across them), checksum requests inside and
past the frame, each GSO type with and without its feature, ECN,
UDP_L4, gso_size 0, GSO without NEEDS_CSUM, frames over the MTU, runts,
chains shorter than the header, a writable descriptor.

fuzz_net_ctrl, command streams: every RX mode on and off (and 2),
MAC tables right, with counts that lie, with trailing bytes, over the
table size, ADDR_SET of 5, 6 and 7 bytes, ANNOUNCE_ACK with and without
data, VQ_PAIRS_SET 0, 1, max, max + 1, 0x8000, short, unknown classes
and commands, with and without the features negotiated.

Usage: fuzz/gen_net_corpus.py [CORPUSDIR]
       (default fuzz/corpus: writes net_hdr/ and net_ctrl/)
"""
import os
import struct
import sys

# NET_NEG_* (src/net/net_internal.h)
CSUM, HTSO4, HTSO6, HUFO = 1 << 0, 1 << 1, 1 << 2, 1 << 3
GCSUM, GTSO4, GTSO6, GUFO = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MTU, MRG, CTRL_VQ, CTRL_RX = 1 << 8, 1 << 9, 1 << 10, 1 << 11
RX_EXTRA, MAC_ADDR, ANNOUNCE, MQ = 1 << 12, 1 << 13, 1 << 14, 1 << 15
ALL = 0xffff
NEEDS_CSUM, DATA_VALID = 1, 2
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4, ECN = 0, 1, 3, 4, 5, 0x80


def vhdr(flags=0, gso=0, hdr_len=0, gso_size=0, cs=0, co=0, nb=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, cs, co,
                       nb)


def frame(n, ethertype=0x0800):
    b = bytes([0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa])
    b += struct.pack(">H", ethertype)
    return (b + bytes(i & 0xff for i in range(max(0, n - 14))))[:n]


def hdr_seed(neg, chain, mtu=1500, writable=False, cuts=None):
    """chain: the bytes; cuts: segment lengths (default one segment)."""
    if cuts is None:
        cuts = [len(chain)]
    out = struct.pack("<HHBB", neg, mtu, 1 if writable else 0,
                      len(cuts) - 1)
    for c in cuts:
        out += struct.pack("<H", c)
    return out + chain


def hdr_seeds():
    s = {}
    f60, f1514 = frame(60), frame(1514)
    s["plain"] = hdr_seed(0, vhdr() + f60)
    s["plain-mtu"] = hdr_seed(MTU, vhdr() + f1514)
    s["over-mtu"] = hdr_seed(MTU, vhdr() + frame(1600))
    s["split-hdr"] = hdr_seed(0, vhdr() + f60, cuts=[5, 7, 0, 60])
    s["many-segs"] = hdr_seed(0, vhdr() + frame(200),
                              cuts=[12, 1, 1, 14, 50, 0, 100, 34])
    s["runt"] = hdr_seed(0, vhdr() + frame(10))
    s["short-chain"] = hdr_seed(0, vhdr()[:8])
    s["empty"] = hdr_seed(0, b"")
    s["writable"] = hdr_seed(0, vhdr() + f60, writable=True)
    s["csum-ok"] = hdr_seed(CSUM, vhdr(NEEDS_CSUM, cs=34, co=16) + f60)
    s["csum-edge"] = hdr_seed(CSUM, vhdr(NEEDS_CSUM, cs=56, co=2) + f60)
    s["csum-past"] = hdr_seed(CSUM, vhdr(NEEDS_CSUM, cs=57, co=2) + f60)
    s["csum-huge"] = hdr_seed(CSUM, vhdr(NEEDS_CSUM, cs=0xffff,
                                         co=0xffff) + f60)
    s["csum-no-feature"] = hdr_seed(0, vhdr(NEEDS_CSUM, cs=34, co=16) +
                                    f60)
    s["data-valid"] = hdr_seed(0, vhdr(DATA_VALID) + f60)
    for name, gso, feat in (("tso4", GSO_TCPV4, HTSO4),
                            ("tso6", GSO_TCPV6, HTSO6),
                            ("ufo", GSO_UDP, HUFO)):
        good = vhdr(NEEDS_CSUM, gso, 54, 1448, 34, 16) + frame(9000)
        s["gso-" + name] = hdr_seed(CSUM | feat | MTU, good)
        s["gso-" + name + "-no-feature"] = hdr_seed(CSUM | MTU, good)
        s["gso-" + name + "-mss0"] = hdr_seed(
            CSUM | feat, vhdr(NEEDS_CSUM, gso, 54, 0, 34, 16) + f1514)
        s["gso-" + name + "-no-csum"] = hdr_seed(
            CSUM | feat, vhdr(0, gso, 54, 1448) + f1514)
    s["gso-ecn"] = hdr_seed(ALL, vhdr(NEEDS_CSUM, GSO_TCPV4 | ECN, 54,
                                      1448, 34, 16) + f1514)
    s["gso-udp-l4"] = hdr_seed(ALL, vhdr(NEEDS_CSUM, GSO_UDP_L4, 42,
                                         1448, 34, 6) + f1514)
    s["gso-unknown"] = hdr_seed(ALL, vhdr(NEEDS_CSUM, 2, 54, 1448, 34,
                                          16) + f1514)
    s["max-frame"] = hdr_seed(ALL, vhdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448,
                                        34, 16) + frame(65589),
                              cuts=[65535, 66])
    s["rx-hdr-gso"] = hdr_seed(GCSUM | GTSO4,
                               vhdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34,
                                    16) + f60)
    return s


def cmd(data, segs=1, cuts=()):
    cuts = list(cuts) + [0] * (segs - 1 - len(cuts))
    return struct.pack("<BH", segs - 1, len(data)) + bytes(cuts) + data


def ctrl_seed(neg, max_pairs, *cmds):
    return struct.pack("<HB", neg, max_pairs - 1) + b"".join(cmds)


def mac(i, mc=False):
    return bytes([0x01 if mc else 0x02, 0, 0x5e if mc else 0, 0, 0, i])


def table(uni, multi, lie_uni=None, lie_multi=None):
    b = struct.pack("<I", len(uni) if lie_uni is None else lie_uni)
    b += b"".join(uni)
    b += struct.pack("<I", len(multi) if lie_multi is None else lie_multi)
    return b + b"".join(multi)


def ctrl_seeds():
    s = {}
    full = ALL
    rx = [cmd(bytes([0, c, v])) for c in range(6) for v in (0, 1)]
    s["rx-modes"] = ctrl_seed(full, 1, *rx)
    s["rx-modes-no-feature"] = ctrl_seed(CTRL_VQ, 1, *rx)
    s["rx-modes-no-extra"] = ctrl_seed(CTRL_VQ | CTRL_RX, 1, *rx)
    s["rx-bad"] = ctrl_seed(full, 1, cmd(bytes([0, 0, 2])),
                            cmd(bytes([0, 0])), cmd(bytes([0, 0, 1, 1])),
                            cmd(bytes([0, 6, 1])), cmd(bytes([0])),
                            cmd(b""))
    t = table([mac(1), mac(2)], [mac(3, True)])
    s["mac-table"] = ctrl_seed(full, 1, cmd(bytes([0, 0, 0])),
                               cmd(bytes([1, 0]) + t, 3, (2, 8)))
    s["mac-table-lie"] = ctrl_seed(full, 1,
                                   cmd(bytes([1, 0]) + table(
                                       [mac(1)], [], lie_uni=9)),
                                   cmd(bytes([1, 0]) + table(
                                       [mac(1)], [mac(2, True)],
                                       lie_multi=0x40000000)),
                                   cmd(bytes([1, 0]) + t + b"x"),
                                   cmd(bytes([1, 0]) + t[:3]))
    big = table([mac(i) for i in range(70)], [mac(i, True) for i in
                                              range(65)])
    s["mac-table-big"] = ctrl_seed(full, 1, cmd(bytes([0, 0, 0])),
                                   cmd(bytes([1, 0]) + big, 4, (2, 200, 250)))
    s["mac-table-no-feature"] = ctrl_seed(CTRL_VQ, 1, cmd(bytes([1, 0]) + t))
    s["addr-set"] = ctrl_seed(full, 1, cmd(bytes([1, 1]) + mac(9)[:5]),
                              cmd(bytes([1, 1]) + mac(9)),
                              cmd(bytes([1, 1]) + mac(9) + b"\0"),
                              cmd(bytes([1, 2]) + mac(9)))
    s["announce"] = ctrl_seed(full, 1, cmd(bytes([3, 0])),
                              cmd(bytes([3, 0, 0])), cmd(bytes([3, 1])))
    s["announce-no-feature"] = ctrl_seed(CTRL_VQ, 1, cmd(bytes([3, 0])))
    pairs = [cmd(bytes([4, 0]) + struct.pack("<H", n))
             for n in (0, 1, 4, 5, 0x8000, 0xffff)]
    s["mq"] = ctrl_seed(full, 4, *pairs, cmd(bytes([4, 0, 1])),
                        cmd(bytes([4, 1]) + struct.pack("<H", 1)),
                        cmd(bytes([4, 2]) + struct.pack("<H", 1)))
    s["mq-no-feature"] = ctrl_seed(CTRL_VQ, 8, *pairs)
    s["classes"] = ctrl_seed(full, 2, *[cmd(bytes([c, 0, 0]))
                                        for c in range(256) if c % 17 == 2])
    s["vlan"] = ctrl_seed(full, 1, cmd(bytes([2, 0, 1, 0])))
    return s


def write(out, seeds):
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-%s.bin" % name), "wb") as f:
            f.write(data)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    write(os.path.join(root, "net_hdr"), hdr_seeds())
    write(os.path.join(root, "net_ctrl"), ctrl_seeds())


if __name__ == "__main__":
    main()
