#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Honest counts for scripts/check.sh, from meson's testlog.json.

    test-summary.py [--io-uring] TESTLOG.json   counts and names
    test-summary.py --probe-io-uring            exit 0 if this kernel
                                                lets a process set up
                                                an io_uring

The first form prints, one per line:

    counts PASSED FAILED SKIPPED
    fail NAME (why)       why: the result and the test's first line
                          with FAIL (else its last line)
    skip NAME (why)

OK and EXPECTEDFAIL pass; FAIL, TIMEOUT, ERROR and UNEXPECTEDPASS fail;
SKIP (exit 77) is skipped.  A test that passed but printed a
ThreadSanitizer report ("WARNING: ThreadSanitizer: ...", e.g. from a child
process whose exit status the test ignores) fails: the TSan run (suite
'threads') must be clean.  A test that passed but printed a line
starting "SKIP: io_uring" (it ran without its io_uring part: the io_uring
backend was unavailable) is skipped too, not passed; with --io-uring (the
machine has io_uring, see --probe-io-uring) such a test fails instead:
io_uring works here, so skipping it hides a build or setup problem (no
liburing-dev: scripts/deps.sh installs it).
"""
import ctypes
import json
import os
import re
import sys

FAILED = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}
PASSED = {"OK", "EXPECTEDFAIL"}
URING_SKIP = re.compile(r"^SKIP: io_uring.*$", re.M)
ANY_SKIP = re.compile(r"^.*\bSKIP\b.*$", re.M)
TSAN = re.compile(r"^WARNING: ThreadSanitizer: .*$", re.M)
FAIL_LINE = re.compile(r"^.*\bFAIL\b.*$", re.M)


def probe_io_uring():
    """io_uring_setup(2) with 4 entries: does the kernel allow it?"""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    libc.syscall.restype = ctypes.c_long
    # 425 on every architecture that has it (the unified syscall table)
    fd = libc.syscall(ctypes.c_long(425), ctypes.c_uint(4), params)
    if fd < 0:
        err = ctypes.get_errno()
        print("io_uring: not available here (io_uring_setup: %s)"
              % os.strerror(err))
        return 1
    os.close(fd)
    print("io_uring: available here")
    return 0


def short(name):
    # "vio:unit / blk_device" -> "unit/blk_device"
    name = name.split(":", 1)[-1]
    return name.replace(" / ", "/")


def why(text, pattern):
    m = pattern.search(text or "")
    if not m:
        return ""
    line = m.group(0).strip()
    return " (%s)" % (line[:117] + "..." if len(line) > 120 else line)


def failure(text):
    """What a failed test said: its first line with the word FAIL, else
    its last line (CI shows only the end of make check's output)."""
    m = FAIL_LINE.search(text or "")
    if m:
        line = m.group(0).strip()
    else:
        rest = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        line = rest[-1] if rest else ""
    if not line:
        return ""
    return ": " + (line[:197] + "..." if len(line) > 200 else line)


def summarize(path, have_uring, out):
    npass = nfail = nskip = 0
    lines = []
    try:
        with open(path) as f:
            records = [json.loads(ln) for ln in f if ln.strip()]
    except (OSError, ValueError) as e:
        out.write("counts 0 1 0\nfail testlog (%s)\n" % e)
        return
    for t in records:
        name, res = short(t.get("name", "?")), t.get("result", "?")
        text = (t.get("stdout") or "") + "\n" + (t.get("stderr") or "")
        uring = URING_SKIP.search(text)
        tsan = TSAN.search(text)
        if res in FAILED:
            nfail += 1
            lines.append("fail %s (%s%s)" % (
                name, res, ": " + tsan.group(0).strip() if tsan
                else failure(text)))
        elif tsan:
            nfail += 1
            lines.append("fail %s (passed, but %s)" % (
                name, tsan.group(0).strip()))
        elif uring and have_uring:
            nfail += 1
            lines.append("fail %s (io_uring works on this machine, but the "
                         "test skipped it: %s)" % (name,
                                                   uring.group(0).strip()))
        elif res == "SKIP" or (res in PASSED and uring):
            nskip += 1
            lines.append("skip %s%s" % (name, why(text, URING_SKIP if uring
                                                 else ANY_SKIP)))
        elif res in PASSED:
            npass += 1
        else:
            nfail += 1
            lines.append("fail %s (result %s)" % (name, res))
    out.write("counts %d %d %d\n" % (npass, nfail, nskip))
    for ln in lines:
        out.write(ln + "\n")


def main(argv):
    if argv[1:] == ["--probe-io-uring"]:
        return probe_io_uring()
    args = argv[1:]
    have_uring = False
    if args and args[0] == "--io-uring":
        have_uring = True
        args = args[1:]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    summarize(args[0], have_uring, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
