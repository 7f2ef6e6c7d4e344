#!/usr/bin/env python3
"""A small QMP client (QEMU Machine Protocol), python3 standard library only.

Usage:
  qmp.py SOCKET [--timeout S] COMMAND [ARGS_JSON]
      run one command; print its "return" value as JSON (exit 0), or the
      error's class and description (exit 1)
  qmp.py SOCKET [--timeout S] wait-status STATUS[,STATUS...]
      poll query-status until the run state is one of STATUS; print it
  qmp.py SOCKET [--timeout S] migrate URI
      start a migration (QMP migrate) and poll query-migrate every 20 ms
      until it completes, fails or is cancelled; print one line
        MIGRATION: status=completed total_ms=.. downtime_ms=.. setup_ms=..
          ram_transferred_mb=.. dirty_sync=.. mbps=..
      (exit 0 only when completed; a refused command prints its error)
  qmp.py SOCKET [--timeout S] migrate-start URI [BANDWIDTH [HOLD]]
      start a migration, set max-bandwidth to BANDWIDTH (bytes/s) first if
      given, and poll until it is "active" with every page sent once (RAM
      dirty-sync-count 2 or more: the bulk stage is over, dirty logging is
      on); then set max-bandwidth to HOLD if given; print one line
        MIGRATION-ACTIVE: dirty_sync=.. ram_transferred_mb=.. elapsed_ms=..
          max_bandwidth_was=..
      (exit 1 if it completes, fails or is cancelled first)
  qmp.py SOCKET [--timeout S] migrate-wait [BANDWIDTH]
      set max-bandwidth to BANDWIDTH if given, then poll the migration under
      way to its end and print the MIGRATION: line as migrate does

SOCKET is QEMU's -qmp unix:SOCKET,server=on,wait=off.  The connection is
tried until --timeout (default 30 s) runs out, so a QEMU that is still
starting is waited for (on a condition: the socket accepts), not slept on.
Events that arrive between replies are skipped.  Exit status 2: no
connection, protocol error or timeout.
"""
import json
import socket
import sys
import time


class QMPError(Exception):
    """A command answered with "error"."""

    def __init__(self, cls, desc):
        super().__init__(f"{cls}: {desc}")
        self.cls = cls
        self.desc = desc


class QMP:
    """One QMP session: greeting read, capabilities negotiated."""

    def __init__(self, path, timeout):
        self.deadline = time.monotonic() + timeout
        self.sock = None
        self.buf = b""
        self.next_id = 0
        err = None
        while time.monotonic() < self.deadline:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                self.sock = s
                break
            except OSError as e:  # not there yet, or not listening yet
                s.close()
                err = e
                time.sleep(0.02)
        if self.sock is None:
            raise TimeoutError(f"cannot connect to {path}: {err}")
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError(f"not a QMP greeting: {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self):
        """The next JSON object from the socket (events included)."""
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from QEMU in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QEMU closed the QMP connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        """Run @name; return its "return" value or raise QMPError."""
        self.next_id += 1
        msg = {"execute": name, "id": self.next_id}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r or r.get("id") != self.next_id:
                continue
            if "error" in r:
                raise QMPError(r["error"].get("class", "?"),
                               r["error"].get("desc", "?"))
            return r.get("return")

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def migrate_start(q, uri, bandwidth, hold):
    """Start a migration to @uri; returns once its bulk stage is over."""
    was = q.cmd("query-migrate-parameters").get("max-bandwidth", 0)
    if bandwidth is not None:
        q.cmd("migrate-set-parameters", {"max-bandwidth": bandwidth})
    t0 = time.monotonic()
    q.cmd("migrate", {"uri": uri})
    while True:
        st = q.cmd("query-migrate")
        status = st.get("status", "none")
        ram = st.get("ram", {})
        if status == "active" and ram.get("dirty-sync-count", 0) >= 2:
            break
        if status in ("completed", "failed", "cancelled"):
            return 1, (f"MIGRATION: status={status} before its bulk stage "
                       "was seen over")
        time.sleep(0.02)  # poll a state, bounded by q.deadline
    if hold is not None:
        q.cmd("migrate-set-parameters", {"max-bandwidth": hold})
    ms = int((time.monotonic() - t0) * 1000)
    return 0, (f"MIGRATION-ACTIVE: dirty_sync={ram['dirty-sync-count']} "
               f"ram_transferred_mb={ram.get('transferred', 0) / 1048576:.1f} "
               f"elapsed_ms={ms} max_bandwidth_was={was}")


def migrate(q, uri, bandwidth=None):
    """Migrate to @uri (None: the one under way, max-bandwidth set to
    @bandwidth if given) and poll to the end; returns (exit code, line)."""
    if uri is not None:
        q.cmd("migrate", {"uri": uri})
    elif bandwidth is not None:
        q.cmd("migrate-set-parameters", {"max-bandwidth": bandwidth})
    while True:
        st = q.cmd("query-migrate")
        status = st.get("status", "none")
        if status in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.02)  # poll a state, bounded by q.deadline
    ram = st.get("ram", {})
    fields = [f"status={status}"]
    for key, name in (("total-time", "total_ms"), ("downtime", "downtime_ms"),
                      ("setup-time", "setup_ms")):
        if key in st:
            fields.append(f"{name}={st[key]}")
    if "transferred" in ram:
        fields.append(f"ram_transferred_mb={ram['transferred'] / 1048576:.1f}")
    for key, name in (("dirty-sync-count", "dirty_sync"), ("mbps", "mbps")):
        if key in ram:
            val = ram[key]
            fields.append(f"{name}={val:.0f}" if isinstance(val, float)
                          else f"{name}={val}")
    if "error-desc" in st:
        fields.append("error=" + json.dumps(st["error-desc"]))
    return (0 if status == "completed" else 1), "MIGRATION: " + " ".join(fields)


def main(argv):
    args = list(argv[1:])
    timeout = 30.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, command, rest = args[0], args[1], args[2:]
    try:
        q = QMP(path, timeout)
        try:
            if command == "migrate":
                rc, line = migrate(q, rest[0])
                print(line, flush=True)
                return rc
            if command in ("migrate-start", "migrate-wait"):
                uri = rest[0] if command == "migrate-start" else None
                extra = rest[1:] if command == "migrate-start" else rest
                bw = int(extra[0]) if extra else None
                hold = int(extra[1]) if len(extra) > 1 else None
                if command == "migrate-start":
                    rc, line = migrate_start(q, uri, bw, hold)
                else:
                    rc, line = migrate(q, None, bw)
                print(line, flush=True)
                return rc
            if command == "wait-status":
                want = rest[0].split(",")
                while True:
                    st = q.cmd("query-status")
                    if st["status"] in want:
                        print(st["status"])
                        return 0
                    time.sleep(0.02)  # bounded by q.deadline
            print(json.dumps(q.cmd(command,
                                   json.loads(rest[0]) if rest else None)))
            return 0
        finally:
            q.close()
    except QMPError as e:
        print(f"qmp: {command}: {e.cls}: {e.desc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, ConnectionError, RuntimeError,
            ValueError) as e:
        print(f"qmp: {command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
