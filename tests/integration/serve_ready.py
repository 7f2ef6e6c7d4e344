#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vio serve's readiness signals, checked from the client's side.

    serve_ready.py VIO DIR pidfile N     N starts, --pidfile
    serve_ready.py VIO DIR abstract      NOTIFY_SOCKET=@name
    serve_ready.py VIO DIR path          NOTIFY_SOCKET=/path
    serve_ready.py VIO DIR socket N      the old way (socket file): shows
                                         the bind-listen race, not a test

This script starts each server itself and polls without sleeping, so that
it connects the instant the signal shows (a shell would add milliseconds
and hide the race).  pidfile: the file appears only once the socket
accepts connections, holds the server's PID, and is gone (with the socket)
after SIGTERM.  NOTIFY_SOCKET: READY=1 (with STATUS=) once the socket
accepts, STOPPING=1 at SIGTERM.  Exit 0 and one line on stdout, or a
reason; every server is ended before it returns.
"""
import os
import signal
import socket
import subprocess
import sys
import time

vio, d, what = sys.argv[1], sys.argv[2], sys.argv[3]
log = open(os.path.join(d, "ready.log"), "ab")
image = os.path.join(d, "ready.img")


def start(i, extra, env=None):
    sock = os.path.join(d, "r%d.sock" % i)
    args = [vio, "serve"]
    # both device types: their start-up differs (image, io_uring)
    if i % 2:
        args += ["rng"]
    else:
        args += ["blk", "--image", image, "--size", "1M"]
    return sock, subprocess.Popen(args + ["--socket", sock] + extra,
                                  stderr=log, env=env)


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise SystemExit("server did not exit within 10 s of SIGTERM")


def connect(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock)
    finally:
        s.close()


def wait_file(path, p, i):
    end = time.monotonic() + 10
    while not os.path.exists(path):
        if p.poll() is not None:
            raise SystemExit("start %d: exit %d before %s appeared"
                             % (i, p.returncode, path))
        if time.monotonic() > end:
            raise SystemExit("start %d: no %s after 10 s" % (i, path))


def pidfile(n):
    for i in range(n):
        pf = os.path.join(d, "r%d.pid" % i)
        sock, p = start(i, ["--pidfile", pf])
        try:
            wait_file(pf, p, i)
            try:
                connect(sock)
            except OSError as e:
                raise SystemExit("start %d: pidfile there, connect: %s"
                                 % (i, e))
            with open(pf) as f:
                got = f.read()
            if got != "%d\n" % p.pid:
                raise SystemExit("start %d: pidfile holds %r, PID %d"
                                 % (i, got, p.pid))
        finally:
            rc = stop(p)
        if rc != 0:
            raise SystemExit("start %d: exit %d after SIGTERM" % (i, rc))
        if os.path.exists(pf) or os.path.exists(sock):
            raise SystemExit("start %d: pidfile or socket left after exit"
                             % i)
    print("%d starts, each accepted a connection the instant its pidfile "
          "appeared" % n)


def socket_file(n):
    refused = 0
    for i in range(n):
        sock, p = start(i, [])
        try:
            wait_file(sock, p, i)
            try:
                connect(sock)
            except ConnectionRefusedError:
                refused += 1
        finally:
            stop(p)
    print("%d of %d starts refused a connection once the socket file "
          "existed" % (refused, n))
    if refused:
        sys.exit(1)


def notify(kind):
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "abstract":
        name = "vio-serve-test-%d" % os.getpid()
        ns.bind("\0" + name)
        env_val = "@" + name
    else:
        env_val = os.path.join(d, "notify.sock")
        ns.bind(env_val)
    ns.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=env_val)
    sock, p = start(0 if kind == "abstract" else 1, [], env)
    got = []

    def until(word):
        while True:
            try:
                msg = ns.recv(4096).decode()
            except socket.timeout:
                raise SystemExit("%s: no %s within 10 s (got %r)"
                                 % (kind, word, got))
            got.append(msg)
            if word in msg.split("\n"):
                return msg

    try:
        msg = until("READY=1")
        try:
            connect(sock)
        except OSError as e:
            raise SystemExit("%s: READY=1 but connect: %s" % (kind, e))
        if not any(ln.startswith("STATUS=") for ln in msg.split("\n")):
            raise SystemExit("%s: READY=1 without STATUS=: %r" % (kind, msg))
        p.send_signal(signal.SIGTERM)
        until("STOPPING=1")
    finally:
        rc = stop(p)
        ns.close()
    if rc != 0:
        raise SystemExit("%s: exit %d after SIGTERM" % (kind, rc))
    print("NOTIFY_SOCKET (%s): %s" % (kind, " | ".join(
        m.strip().replace("\n", " ") for m in got)))


if what == "pidfile":
    pidfile(int(sys.argv[4]))
elif what == "socket":
    socket_file(int(sys.argv[4]))
else:
    notify(what)
