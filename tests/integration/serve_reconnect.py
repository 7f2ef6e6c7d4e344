#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vio serve when its peer or its predecessor goes away (issue 8, item 5).

    serve_reconnect.py VIO listen    listening: a frontend leaves, the next
                                     one is served; the server is SIGKILLed
                                     (its socket file stays, stale) and a
                                     new process on the same path replaces
                                     the file and serves (vio blk info)
    serve_reconnect.py VIO client    --client: the frontend (this script,
                                     listening as QEMU server=on does) goes
                                     away, its socket file too, and comes
                                     back: vio serve connects again (twice:
                                     once after the path reappears, once
                                     with the listener kept); SIGTERM while
                                     it waits ends it at once, exit 0
    serve_reconnect.py VIO once      --client --once: exits 0 when the
                                     frontend leaves

A frontend here speaks just enough vhost-user to prove it is served:
GET_FEATURES and GET_PROTOCOL_FEATURES, each answered.  Every wait has a
deadline (no sleep for readiness); every server started is ended by PID.
Exit 0 and one line on stdout, or a reason on stderr and exit 1.
"""
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

vio, mode = sys.argv[1], sys.argv[2]
DEADLINE = 10.0
VERSION = 0x1
GET_FEATURES, GET_PROTOCOL_FEATURES = 1, 15
procs = []


def fail(why):
    raise SystemExit("serve_reconnect %s: FAIL: %s" % (mode, why))


def until(pred, what, deadline=DEADLINE, proc=None):
    end = time.monotonic() + deadline
    while not pred():
        if proc is not None and proc.poll() is not None:
            fail("vio serve exited (%d) before %s" % (proc.returncode, what))
        if time.monotonic() > end:
            fail("no %s within %.0f s" % (what, deadline))
        time.sleep(0.01)


def start(d, n, extra):
    log = open(os.path.join(d, "serve.%d.log" % n), "wb")
    pidfile = os.path.join(d, "serve.%d.pid" % n)
    p = subprocess.Popen([vio, "serve", "blk", "--image",
                          os.path.join(d, "disk.img"), "--size", "1M",
                          "--socket", os.path.join(d, "s.sock"),
                          "--pidfile", pidfile] + extra, stderr=log)
    procs.append(p)
    p.log = log.name
    p.pidfile = pidfile
    return p


def logtext(p):
    with open(p.log, errors="replace") as f:
        return f.read()


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail("vio serve did not exit within %.0f s of signal %d\n%s"
             % (DEADLINE, sig, logtext(p)))


def ask(s, req):
    s.sendall(struct.pack("<III", req, VERSION, 0))
    hdr = b""
    while len(hdr) < 12:
        b = s.recv(12 - len(hdr))
        if not b:
            fail("vio serve closed the connection instead of answering")
        hdr += b
    r, flags, size = struct.unpack("<III", hdr)
    body = s.recv(size, socket.MSG_WAITALL)
    if r != req or size != 8 or len(body) != 8 or not flags & 0x4:
        fail("bad reply to request %d: %r %r" % (req, hdr, body))
    return struct.unpack("<Q", body)[0]


def served(s):
    """s is served by vio serve: both feature queries are answered."""
    s.settimeout(DEADLINE)
    f = ask(s, GET_FEATURES)
    if not f & (1 << 30):  # VHOST_USER_F_PROTOCOL_FEATURES
        fail("features 0x%x lack PROTOCOL_FEATURES" % f)
    ask(s, GET_PROTOCOL_FEATURES)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    s.settimeout(DEADLINE)
    return s


def accept(ls, what, proc):
    """The server connects to ls within the deadline (and stays up)."""
    end = time.monotonic() + DEADLINE
    ls.settimeout(0.05)
    while True:
        try:
            c, _ = ls.accept()
            return c
        except socket.timeout:
            pass
        if proc.poll() is not None:
            fail("vio serve exited (%d) instead of %s\n%s"
                 % (proc.returncode, what, logtext(proc)))
        if time.monotonic() > end:
            fail("no %s within %.0f s\n%s" % (what, DEADLINE, logtext(proc)))


def blk_info(sock):
    r = subprocess.run([vio, "blk", "--socket", sock, "--timeout", "5000",
                        "info"], capture_output=True, text=True,
                       timeout=DEADLINE * 2)
    if r.returncode != 0 or "capacity" not in r.stdout:
        fail("vio blk info over %s: exit %d: %s" % (sock, r.returncode,
                                                    r.stderr.strip()))


def listening(d):
    sock = os.path.join(d, "s.sock")
    p = start(d, 1, [])
    until(lambda: os.path.exists(p.pidfile), "pidfile", proc=p)
    # a frontend comes and goes; the next is served by the same process
    for _ in range(2):
        s = connect(sock)
        served(s)
        s.close()
    blk_info(sock)
    until(lambda: "connection 3: frontend attached" in logtext(p),
          "'connection 3' line", proc=p)
    # SIGKILL: no cleanup runs, the socket file stays and nobody listens
    p.kill()
    p.wait()
    st = os.lstat(sock)
    if not stat.S_ISSOCK(st.st_mode):
        fail("the killed server's socket file is not a socket")
    try:
        connect(sock).close()
        fail("something still listens on the killed server's socket")
    except ConnectionRefusedError:
        pass
    # a new process on the same path: the stale file is replaced
    q = start(d, 2, [])
    until(lambda: os.path.exists(q.pidfile), "pidfile of the new server",
          proc=q)
    st2 = os.lstat(sock)
    if st2.st_ino == st.st_ino:
        fail("the stale socket file was not replaced")
    if stat.S_IMODE(st2.st_mode) != 0o600:
        fail("new socket mode %o, want 600" % stat.S_IMODE(st2.st_mode))
    s = connect(sock)
    served(s)
    s.close()
    blk_info(sock)  # vio's own frontend and blk driver, end to end
    if stop(q) != 0:
        fail("new server: exit %d after SIGTERM" % q.returncode)
    if os.path.exists(sock):
        fail("socket file left after SIGTERM")
    return "a frontend left, the next served; SIGKILLed server's stale " \
        "socket replaced by a new process, served (vio blk info)"


def client(d, once):
    sock = os.path.join(d, "s.sock")
    ls = listener(sock)
    p = start(d, 1, ["--client"] + (["--once"] if once else []))
    c = accept(ls, "connection", p)
    served(c)
    until(lambda: os.path.exists(p.pidfile), "pidfile", proc=p)
    # the frontend goes away altogether (QEMU exits): connection,
    # listener and socket file
    c.close()
    ls.close()
    os.unlink(sock)
    if once:
        until(lambda: p.poll() is not None, "exit after the frontend left")
        if p.returncode != 0:
            fail("--once: exit %d" % p.returncode)
        return "--client --once: exit 0 when the frontend left"
    until(lambda: "still trying" in logtext(p),
          "failed reconnect try in the log", proc=p)
    if p.poll() is not None:
        fail("vio serve --client exited (%d) when its frontend left"
             % p.returncode)
    # it comes back at the same path
    t0 = time.monotonic()
    ls = listener(sock)
    c = accept(ls, "reconnection after the socket came back", p)
    took = time.monotonic() - t0
    served(c)
    until(lambda: "connected again" in logtext(p), "'connected again' line",
          proc=p)
    # the connection ends, the listener stays (QEMU server=on after a
    # device reset or a backend-side error): connected again at once
    c.close()
    c = accept(ls, "reconnection to the same listener", p)
    served(c)
    until(lambda: "connection 3: frontend attached" in logtext(p),
          "'connection 3' line", proc=p)
    # gone again; SIGTERM while it waits ends it promptly
    c.close()
    ls.close()
    os.unlink(sock)
    until(lambda: logtext(p).count("frontend gone") == 3,
          "third 'frontend gone' line", proc=p)
    if stop(p) != 0:
        fail("exit %d after SIGTERM while reconnecting" % p.returncode)
    if os.path.exists(p.pidfile):
        fail("pidfile left behind")
    return "--client: connected again after the socket came back " \
        "(%.2f s) and to a kept listener; SIGTERM while waiting: exit 0" % took


def main():
    with tempfile.TemporaryDirectory(prefix="vio-serve-reconnect.") as d:
        try:
            if mode == "listen":
                what = listening(d)
            elif mode in ("client", "once"):
                what = client(d, mode == "once")
            else:
                fail("unknown mode")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    print("serve_reconnect %s: ok: %s" % (mode, what))


main()
