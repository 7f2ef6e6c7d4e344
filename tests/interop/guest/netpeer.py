#!/usr/bin/env python3
"""The host half of the net interop test (guest_net.sh; the guest half is
netcheck.sh).  Runs inside the test's network namespace and serves one
TCP connection at a time on 0.0.0.0:PORT.  The first line of a
connection is a command:

  ping IP      ping IP (ICMP echo, raw socket, 3 replies wanted) and
               answer "host-ping ok 3/3 rtt_ms=..." or "host-ping fail ..."
  sink         read to EOF; answer "sink BYTES SHA256"
  source N     send N bytes of the seeded stream, then close

Usage: netpeer.py --port P --seed S [--ready FILE]
       netpeer.py --source-sha N --seed S   (print the stream's sha256)
Every line it logs starts with "netpeer:".  It runs until killed.
"""
import argparse
import hashlib
import os
import random
import select
import socket
import struct
import sys
import time


def stream(nbytes, seed):
    return random.Random(seed).randbytes(nbytes)


def log(msg):
    print("netpeer: " + msg, flush=True)


def icmp_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(ip, want=3, attempts=6, wait=2.0):
    """ICMP echo to ip: want replies out of at most attempts requests."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    got, rtts = 0, []
    try:
        for seq in range(1, attempts + 1):
            payload = b"vio-netpeer" + bytes(21)
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            pkt = struct.pack("!BBHHH", 8, 0, icmp_sum(hdr + payload),
                              ident, seq) + payload
            t0 = time.monotonic()
            s.sendto(pkt, (ip, 0))
            end = t0 + wait
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select([s], [], [], left)
                if not r:
                    break
                data, addr = s.recvfrom(2048)
                ihl = (data[0] & 0xF) * 4
                typ, _, _, rid, rseq = struct.unpack("!BBHHH",
                                                     data[ihl:ihl + 8])
                if (addr[0] == ip and typ == 0 and rid == ident
                        and rseq == seq):
                    got += 1
                    rtts.append((time.monotonic() - t0) * 1000)
                    break
            if got == want:
                break
    finally:
        s.close()
    if got == want:
        return "host-ping ok %d/%d rtt_ms=%s" % (
            got, want, ",".join("%.1f" % r for r in rtts))
    return "host-ping fail %d/%d after %d requests" % (got, want, attempts)


def serve(conn, seed):
    conn.settimeout(120)
    f = conn.makefile("rb")
    line = f.readline(256).decode(errors="replace").strip()
    words = line.split()
    if not words:
        log("empty command")
        return
    if words[0] == "ping" and len(words) == 2:
        ans = ping(words[1])
    elif words[0] == "sink":
        h, n, t0 = hashlib.sha256(), 0, time.monotonic()
        while True:
            b = f.read1(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        ans = "sink %d %s" % (n, h.hexdigest())
        log("%s in %.2fs" % (ans, time.monotonic() - t0))
    elif words[0] == "source" and len(words) == 2:
        data = stream(int(words[1]), seed)
        t0 = time.monotonic()
        conn.sendall(data)
        log("source %d %s in %.2fs" % (len(data),
                                       hashlib.sha256(data).hexdigest(),
                                       time.monotonic() - t0))
        return
    else:
        ans = "error unknown command " + line
    if words[0] != "sink":
        log(ans)
    conn.sendall((ans + "\n").encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--ready")
    ap.add_argument("--source-sha", type=int)
    a = ap.parse_args()
    if a.source_sha is not None:
        print(hashlib.sha256(stream(a.source_sha, a.seed)).hexdigest())
        return 0
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", a.port))
    ls.listen(4)
    log("listening on port %d" % a.port)
    if a.ready:
        with open(a.ready + ".tmp", "w") as r:
            r.write("%d\n" % os.getpid())
        os.rename(a.ready + ".tmp", a.ready)
    while True:
        conn, peer = ls.accept()
        log("connection from %s:%d" % peer)
        try:
            serve(conn, a.seed)
        except (OSError, ValueError) as e:
            log("connection failed: %s" % e)
        finally:
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
