#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""vio serve under a service manager: socket activation and counters.

    serve_systemd.py VIO emulate     sd_listen_fds protocol, emulated here
                                     (bind, listen, fork, fd 3, LISTEN_PID,
                                     exec), and the refusals
    serve_systemd.py VIO activate    the same under systemd-socket-activate
                                     (Debian's systemd package); exit 77
                                     (skip) if it is not installed
    serve_systemd.py VIO stats       SIGUSR1's JSON counters, exact for
                                     the I/O sent

Every server gets a NOTIFY_SOCKET bound here: READY=1 (with STATUS=
counting connections), STOPPING=1 on SIGTERM.  Waits are on conditions
with deadlines, never sleeps; every process started is ended.  Exit 0
with one line on stdout, 77 to skip, else a reason.
"""
import json
import os
import shutil
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

vio, what = os.path.realpath(sys.argv[1]), sys.argv[2]
DEADLINE = 20
# sanitizer settings reach the server even through systemd-socket-activate,
# which passes only the variables it is told to (-E)
SAN_VARS = [v for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
            if v in os.environ]


def fail(msg):
    raise SystemExit("FAIL: " + msg)


class Notify:
    """A NOTIFY_SOCKET the server reports to."""

    def __init__(self, d):
        self.path = os.path.join(d, "notify.sock")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        self.got = []

    def until(self, pred, what, proc=None):
        """Wait for a message that pred accepts; return it."""
        end = time.monotonic() + DEADLINE
        while True:
            left = end - time.monotonic()
            if left <= 0:
                fail("no %s within %d s (got %r)" % (what, DEADLINE,
                                                     self.got))
            self.s.settimeout(min(left, 0.5))
            try:
                msg = self.s.recv(4096).decode()
            except socket.timeout:
                if proc is not None and proc.poll() is not None:
                    fail("server exited (%d) before %s (got %r)"
                         % (proc.returncode, what, self.got))
                continue
            self.got.append(msg)
            if pred(msg.split("\n")):
                return msg

    def close(self):
        self.s.close()


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail("server did not exit within %d s of SIGTERM" % DEADLINE)


def status_of(lines):
    return next((ln[7:] for ln in lines if ln.startswith("STATUS=")), "")


def launch(args, fds=(), env=None, listen_pid=True, log=None):
    """fork, put fds at 3, 4, ..., set LISTEN_* for the child, exec args:
    what systemd does for a service whose .socket unit listens."""
    env = dict(env or os.environ)
    r, w = os.pipe()  # closed by exec: the child is running args
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if log is not None:
                os.dup2(log.fileno(), 2)
            # first out of the way of 3, 4, ...: then dup2 (which
            # leaves the copies inheritable)
            tmp = [os.dup(fd) for fd in fds]
            for i, fd in enumerate(tmp):
                os.dup2(fd, 3 + i)
            env["LISTEN_FDS"] = str(len(fds))
            env["LISTEN_PID"] = str(os.getpid() if listen_pid else 1)
            env["LISTEN_FDNAMES"] = "vio"
            os.execve(args[0], args, env)
        finally:
            os._exit(127)
    os.close(w)
    os.read(r, 1)  # EOF at exec
    os.close(r)
    return Popen(pid)


class Popen:
    """Enough of subprocess.Popen for a child we forked ourselves."""

    def __init__(self, pid):
        self.pid, self.returncode = pid, None
        self.pidfd = os.pidfd_open(pid)  # readable once it exits

    def poll(self):
        if self.returncode is None:
            p, st = os.waitpid(self.pid, os.WNOHANG)
            if p:
                self.returncode = os.waitstatus_to_exitcode(st)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        if self.poll() is None:
            r, _, _ = select.select([self.pidfd], [], [], timeout)
            if not r:
                raise subprocess.TimeoutExpired("vio serve", timeout)
            os.close(self.pidfd)
            _, st = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(st)
        return self.returncode


def blk_info(sock):
    r = subprocess.run([vio, "blk", "--socket", sock, "--timeout", "5000",
                        "info"], capture_output=True, text=True,
                       timeout=DEADLINE)
    if r.returncode != 0 or "capacity" not in r.stdout:
        fail("vio blk info over %s: exit %d: %s" % (sock, r.returncode,
                                                    r.stderr.strip()))


def listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


def served_under(d, start, kind):
    """Common part: start (a function of the notify socket) brings a
    server up on d/act.sock; check READY=1, one connection, STOPPING=1,
    exit 0 and that the socket file (not ours) is left alone."""
    sock = os.path.join(d, "act.sock")
    ns = Notify(d)
    p = start(ns, sock)
    try:
        if kind == "activate":
            # systemd-socket-activate execs vio serve at the first
            # connection: the client's connect queues it
            blk_info(sock)
            msg = ns.until(lambda ls: "READY=1" in ls, "READY=1", p)
        else:
            msg = ns.until(lambda ls: "READY=1" in ls, "READY=1", p)
            if "0 connections" not in status_of(msg.split("\n")):
                fail("READY=1 without a connection count: %r" % msg)
            blk_info(sock)
        ns.until(lambda ls: "1 connection so far" in status_of(ls),
                 "STATUS= counting connection 1", p)
        blk_info(sock)
        ns.until(lambda ls: "2 connections so far" in status_of(ls),
                 "STATUS= counting connection 2", p)
        p.send_signal(signal.SIGTERM)
        ns.until(lambda ls: "STOPPING=1" in ls, "STOPPING=1", p)
    finally:
        rc = stop(p)
        ns.close()
    if rc != 0:
        fail("%s: exit %d after SIGTERM" % (kind, rc))
    if not os.path.exists(sock):
        fail("%s: the inherited socket's file was removed" % kind)
    return " | ".join(m.strip().replace("\n", " ") for m in ns.got)


def expect_refusal(d, log, name, rc_want, text, args, **kw):
    log.seek(0)
    log.truncate()
    p = launch([vio, "serve"] + args, log=log, **kw)
    try:
        rc = p.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        stop(p)
        fail("%s: still running, expected exit %d" % (name, rc_want))
    log.flush()
    with open(log.name) as f:
        err = f.read()
    if rc != rc_want or text not in err:
        fail("%s: exit %d, stderr %r; expected exit %d and %r"
             % (name, rc, err, rc_want, text))


def emulate(d):
    img = os.path.join(d, "img")
    lsock = listener(os.path.join(d, "act.sock"))

    def start(ns, sock):
        env = dict(os.environ, NOTIFY_SOCKET=ns.path)
        return launch([vio, "serve", "blk", "--image", img, "--size",
                       "1M"], fds=[lsock.fileno()], env=env)

    out = served_under(d, start, "emulate")
    # the refusals, each with a clear reason
    with open(os.path.join(d, "refusal.log"), "w+") as log:
        expect_refusal(d, log, "socket-and-fds", 2, "exclude each other",
                       ["blk", "--image", img, "--socket",
                        os.path.join(d, "x.sock")], fds=[lsock.fileno()])
        expect_refusal(d, log, "client-and-fds", 2, "exclude each other",
                       ["rng", "--client"], fds=[lsock.fileno()])
        expect_refusal(d, log, "two-fds", 1, "passed 2 sockets",
                       ["rng"], fds=[lsock.fileno()] * 2)
        # LISTEN_PID of another process: not for us, so no socket at all
        expect_refusal(d, log, "other-pid", 2, "--socket PATH is required",
                       ["rng"], fds=[lsock.fileno()], listen_pid=False)
        with open(img, "rb") as f:
            expect_refusal(d, log, "not-a-socket", 1, "not a socket",
                           ["rng"], fds=[f.fileno()])
        bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound.bind(os.path.join(d, "bound.sock"))
        expect_refusal(d, log, "not-listening", 1, "not listening",
                       ["rng"], fds=[bound.fileno()])
        bound.close()
        dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dgram.bind(os.path.join(d, "dgram.sock"))
        expect_refusal(d, log, "datagram", 1, "not a stream socket",
                       ["rng"], fds=[dgram.fileno()])
        dgram.close()
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)
        expect_refusal(d, log, "tcp", 1, "not a Unix socket", ["rng"],
                       fds=[tcp.fileno()])
        tcp.close()
    lsock.close()
    print("emulated activation: %s; 8 refusals ok" % out)


def activate(d):
    sa = shutil.which("systemd-socket-activate")
    if not sa:
        print("SKIP: systemd-socket-activate not installed (Debian package "
              "systemd); the emulated test still runs")
        sys.exit(77)
    img = os.path.join(d, "img")

    def start(ns, sock):
        args = [sa, "-l", sock, "--fdname=vio",
                "-E", "NOTIFY_SOCKET=" + ns.path]
        for v in SAN_VARS:
            args += ["-E", v]
        args += [vio, "serve", "blk", "--image", img, "--size", "1M"]
        log = open(os.path.join(d, "sa.log"), "ab")
        p = subprocess.Popen(args, stderr=log)
        log.close()
        # it binds, then waits for the first connection before exec
        end = time.monotonic() + DEADLINE
        while not os.path.exists(sock):
            if p.poll() is not None:
                fail("systemd-socket-activate exited %d" % p.returncode)
            if time.monotonic() > end:
                fail("systemd-socket-activate: no %s" % sock)
            time.sleep(0.001)
        return p

    out = served_under(d, start, "activate")
    print("systemd-socket-activate: %s" % out)


def stats(d):
    sock = os.path.join(d, "s.sock")
    pidfile = os.path.join(d, "s.pid")
    logpath = os.path.join(d, "serve.log")
    log = open(logpath, "wb")
    p = subprocess.Popen([vio, "serve", "blk", "--socket", sock, "--image",
                          os.path.join(d, "img"), "--size", "4M",
                          "--queues", "2", "--pidfile", pidfile],
                         stderr=log)
    log.close()
    try:
        end = time.monotonic() + DEADLINE
        while not os.path.exists(pidfile):
            if p.poll() is not None or time.monotonic() > end:
                fail("vio serve did not become ready")
            time.sleep(0.001)
        data = os.path.join(d, "data")
        M, NW, NR = 8192, 3, 2
        with open(data, "wb") as f:
            f.write(os.urandom(M))

        def blk(*a):
            r = subprocess.run([vio, "blk", "--socket", sock] + list(a),
                               capture_output=True, timeout=DEADLINE)
            if r.returncode:
                fail("vio blk %s: %s" % (" ".join(a), r.stderr))

        # each write: one OUT of M bytes and one FLUSH; each read one IN
        for i in range(NW):
            blk("write", str(i * M), "-i", data)
        for i in range(NR):
            blk("read", str(i * M), str(M), "-o", os.devnull)
        blk("info")  # one GET_ID
        conns = NW + NR + 1
        p.send_signal(signal.SIGUSR1)
        line = None
        end = time.monotonic() + DEADLINE
        while line is None:
            with open(logpath) as f:
                line = next((ln for ln in f
                             if ln.startswith('{"event":"stats"')), None)
            if line is None and (p.poll() is not None or
                                 time.monotonic() > end):
                fail("no stats line after SIGUSR1")
            time.sleep(0.001)
        s = json.loads(line)
        want0 = {"queue": 0, "requests": NW * 2 + NR + 1, "reads": NR,
                 "writes": NW, "flushes": NW, "bytes_read": NR * M,
                 "bytes_written": NW * M, "errors": 0, "broken": 0}
        want1 = dict((k, 0) for k in want0)
        want1["queue"] = 1
        top = {"device": "blk", "pid": p.pid, "connections": conns,
               "reconnects": conns - 1, "requests": want0["requests"],
               "bytes_read": NR * M, "bytes_written": NW * M,
               "errors": 0, "broken": 0}
        for k, v in top.items():
            if s.get(k) != v:
                fail("stats %s = %r, want %r: %s" % (k, s.get(k), v, line))
        if s.get("queues") != [want0, want1]:
            fail("per-queue stats %r, want %r" % (s.get("queues"),
                                                  [want0, want1]))
        # the backend's log lines carry the connection they concern,
        # numbered as vio serve's own
        with open(logpath) as f:
            text = f.read()
        for i in range(1, conns + 1):
            for w in ("vhost-user: %s: connection %d: frontend connected"
                      % (sock, i),
                      "vhost-user: connection %d: frontend disconnected" % i,
                      "vio serve: connection %d: frontend attached" % i):
                if w not in text:
                    fail("log: no %r: %s" % (w, text))
        # still serving after SIGUSR1
        blk("info")
    finally:
        rc = stop(p)
    if rc != 0:
        fail("exit %d after SIGTERM" % rc)
    print("SIGUSR1 stats exact: %s" % line.strip())


with tempfile.TemporaryDirectory(prefix="vio-systemd-") as tmp:
    {"emulate": emulate, "activate": activate, "stats": stats}[what](tmp)
