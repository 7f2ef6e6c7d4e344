#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages (docs/man/*.scd) against the tool they describe.

    test_man.py VIO_BINARY MAN_DIR

(a) Every page renders with scdoc (a missing scdoc fails the test: it is a
    build dependency of `make check`, Debian package `scdoc`).
(b) Every long option (--xxx) that a command's --help prints is defined in
    that command's page, as a term of a definition list (a line starting
    with `*--xxx*`, or `*-x*, *--xxx*`), and every environment variable the
    help names (VIO_*, NOTIFY_SOCKET, LISTEN_*) appears in the page.  An
    option the page defines that no --help prints any more is a warning
    (the page may describe something --help leaves out, but usually it is
    stale).

Exit status 0: all good (warnings allowed); 1: a failure, each one said.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# page -> the help texts it documents: `vio ARGS --help` for each ARGS
PAGES = {
    "vio.1": [[]],
    "vio-serve.1": [["serve"], ["serve", "blk"], ["serve", "rng"],
                    ["serve", "net"], ["serve", "switch"]],
    "vio-net.1": [["net"]] + [["net", v] for v in
                              ("info", "send", "recv", "ping", "bench")],
    "vio-blk.1": [["blk"]] + [["blk", v] for v in
                              ("info", "read", "write", "verify", "bench")],
    "vio-rng.1": [["rng"]],
}

LONG_OPT = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
ENV_VAR = re.compile(r"\b(VIO_[A-Z0-9_]+|NOTIFY_SOCKET|LISTEN_[A-Z]+)\b")
# a definition-list term: optional short option, then the long one
DEFINED = re.compile(r"^\s*(?:\*-\w\*,\s*)?\*--([a-z][a-z0-9-]*)\*", re.M)

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    vio, man_dir = sys.argv[1], sys.argv[2]

    # (a) render
    scdoc = shutil.which("scdoc")
    if not scdoc:
        print("FAIL scdoc not found: the man pages cannot be rendered; "
              "install it (Debian: apt-get install scdoc) -- it belongs "
              "in scripts/deps.sh")
        return 1
    with tempfile.TemporaryDirectory(prefix="vio-man.") as tmp:
        for page in sorted(PAGES):
            src = os.path.join(man_dir, page + ".scd")
            if not os.path.exists(src):
                fail(f"{page}: {src} is missing")
                continue
            with open(src, "rb") as f:
                r = subprocess.run([scdoc], stdin=f, capture_output=True)
            if r.returncode != 0 or not r.stdout:
                fail(f"{page}: scdoc failed: {r.stderr.decode().strip()}")
                continue
            with open(os.path.join(tmp, page), "wb") as f:
                f.write(r.stdout)
            if not r.stdout.startswith(b".\\\"") and b".TH" not in r.stdout:
                fail(f"{page}: scdoc output is not a man page")
            print(f"ok {page} renders ({len(r.stdout)} bytes)")
        extra = sorted(set(p[:-4] for p in os.listdir(man_dir)
                           if p.endswith(".scd")) - set(PAGES))
        for p in extra:
            print(f"warning: {p}.scd is not checked against a --help "
                  "(add it to PAGES in tests/docs/test_man.py)")

    # (b) options
    for page, cmds in sorted(PAGES.items()):
        src = os.path.join(man_dir, page + ".scd")
        if not os.path.exists(src):
            continue
        text = open(src, encoding="utf-8").read()
        defined = set(DEFINED.findall(text))
        printed, env = set(), set()
        for args in cmds:
            cmd = [vio] + args + ["--help"]
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=10)
            if r.returncode != 0:
                fail(f"{' '.join(cmd)}: exit {r.returncode}: "
                     f"{r.stderr.strip()[:300]}")
                continue
            printed |= set(LONG_OPT.findall(r.stdout))
            env |= set(ENV_VAR.findall(r.stdout))
        label = "vio " + " ".join(cmds[0]) if cmds[0] else "vio"
        for o in sorted(printed - defined):
            fail(f"{page}: --{o} (printed by '{label} --help') is not "
                 f"documented: add a '*--{o}*' entry to {src}")
        for e in sorted(env):
            if e not in text:
                fail(f"{page}: {e} (named by '{label} --help') is not "
                     f"documented in {src}")
        for o in sorted(defined - printed):
            print(f"warning: {page} documents --{o}, which no "
                  f"'{label} ... --help' prints any more")
        print(f"ok {page}: {len(printed & defined)} options checked"
              + (f", environment {', '.join(sorted(env))}" if env else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
