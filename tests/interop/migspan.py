#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Busy-mode verdict of guest_blk_migrate.sh, from the two consoles.

    migspan.py SRC_SERIAL DST_SERIAL [--after N]

The guest's console is one byte stream: the source QEMU's serial log holds
its beginning, up to the moment the source stopped, and the destination's
the rest (a line cut by the stop has its start in one and its end in the
other).  So the two logs are joined (carriage returns dropped) and every
line of tests/interop/guest/migcheck.sh is placed by its offset: on the
source when it ends before the cut.  The verdict rests on the order of
the lines in that stream, never on what a tick's "p=" says (the ticker
reads the pass number from a file the pass loop writes apart from its
"begins" and "done" lines: a tick can show pass P after "pass P done"
was printed, or P+1 before "pass P+1 begins" was).

Required:
- a pass began on the source; P is the last one whose "begins" line is
  whole there;
- if "pass P done" is not on the source, P spanned the switch-over: it
  ends after the cut; else the stop fell between passes: pass P+1 ends
  after the cut;
- the ticks: the last whole one on the source (n=NS) and the first whole
  one after the cut exist, numbered on; the device completed more
  requests by the first tick numbered NS+N or later (N = --after, 3 by
  default: 150 ms of guest time) than at NS: the guest's I/O went on
  across the switch-over (writers held or idle fail).

Prints what it found, one "migspan: " line each; exit 0 if every
requirement holds, 1 (with "migspan: FAIL: why") if not, 2 on bad usage.
"""
import re
import sys

PASS = re.compile(rb"MIGCHECK: pass ([0-9]+) (begins|done)")
TICK = re.compile(rb"MIGCHECK: T n=([0-9]+) p=([0-9]*) io=([0-9]+)/([0-9]+)"
                  rb" inflight=([0-9]+)/([0-9]+)\n")


class Fail(Exception):
    pass


def read(path):
    with open(path, "rb") as f:
        return f.read().replace(b"\r", b"")


def verdict(src, dst, after, out):
    """Appends its findings to out; raises Fail with the reason of a
    failure."""
    cut = len(src)
    stream = src + dst
    ticks = [(m.start(), m.end(), [int(g or b"-1") for g in m.groups()])
             for m in TICK.finditer(stream)]
    src_t = [t for s, e, t in ticks if e <= cut]
    dst_t = [t for s, e, t in ticks if s >= cut]
    if not src_t:
        raise Fail("no tick on the source's console")
    ts = src_t[-1]
    if not dst_t:
        raise Fail("no tick on the destination's console")
    td = dst_t[0]
    if td[0] <= ts[0]:
        raise Fail("ticks out of order: %d on the source, %d on the "
                   "destination" % (ts[0], td[0]))
    t3 = next((t for t in dst_t if t[0] >= ts[0] + after), None)
    if t3 is None:
        raise Fail("no tick on the destination's console %d ticks after %d"
                   % (after, ts[0]))
    fmt = "n=%d p=%d io=%d/%d inflight=%d/%d"
    out.append("last tick on the source:      " + fmt % tuple(ts))
    out.append("first tick on the destination: " + fmt % tuple(td))
    begins, done = {}, {}  # pass -> (start, end) of its first line
    for m in PASS.finditer(stream):
        d = begins if m.group(2) == b"begins" else done
        d.setdefault(int(m.group(1)), (m.start(), m.end()))
    on_src = [p for p, (_, e) in begins.items() if e <= cut]
    if not on_src:
        raise Fail("no pass began on the source")
    p = max(on_src)
    # a "done" line begun before the cut: blkcheck had ended there
    if p in done and done[p][0] < cut:
        n = p + 1
        if n not in done:
            raise Fail("pass %d ended on the source and pass %d did not "
                       "end on the destination" % (p, n))
        span = "the switch-over fell between passes %d and %d" % (p, n)
    else:
        if p not in done:
            raise Fail("pass %d (under way at the switch-over) did not end "
                       "on the destination" % p)
        span = "pass %d spanned the switch-over" % p
    if t3[2] + t3[3] <= ts[2] + ts[3]:
        raise Fail("no request completed from tick %d (source) to tick %d "
                   "(destination): the guest's I/O was idle at the "
                   "switch-over" % (ts[0], t3[0]))
    out.append("%s: ticks %d..%d: %d reads and %d writes completed in "
               "between (to tick %d: %d), in flight (reads/writes) %d/%d "
               "before, %d/%d after"
               % (span, ts[0], td[0], td[2] - ts[2], td[3] - ts[3], t3[0],
                  t3[2] + t3[3] - ts[2] - ts[3], ts[4], ts[5], td[4], td[5]))


def main(argv):
    args = argv[1:]
    after = 3
    if len(args) == 4 and args[2] == "--after" and args[3].isdigit():
        after = int(args[3])
        args = args[:2]
    if len(args) != 2:
        sys.stderr.write("usage: migspan.py SRC_SERIAL DST_SERIAL "
                         "[--after N]\n")
        return 2
    try:
        src, dst = read(args[0]), read(args[1])
    except OSError as e:
        sys.stderr.write("migspan: %s\n" % e)
        return 2
    out = []
    rc = 0
    try:
        verdict(src, dst, after, out)
    except Fail as e:
        out.append("FAIL: %s" % e)
        rc = 1
    for line in out:
        print("migspan: " + line)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
