#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/plot.py: turn a benchmark's JSON lines into an SVG chart (gnuplot).

    bench/plot.py blk-driver RESULTS.jsonl OUT.svg
    bench/plot.py ring RESULTS.jsonl OUT.svg

blk-driver: RESULTS is what `bench/blk-driver --json FILE` keeps (one
object per measurement, with `lat_hist_us` for the vio-driven backends).
The chart has kIOPS per configuration, one bar per backend (median of
the runs, min..max as error bars), and below it the latency CDF of each
backend at iodepth 1 and at the deepest iodepth (first workload, one
queue; the histograms of all runs summed).

ring: RESULTS is `build/bench/ring --jsonl FILE` (or its --json stdout).
The chart has Mbuf/s per batch size, one bar per format and EVENT_IDX
setting (median, min..max as error bars), spsc included.

Needs gnuplot (Debian: gnuplot-nox).  Exit status: 0 written, 1 no data
or gnuplot failed, 2 bad command line.
"""
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def die(msg, code=1):
    print("plot: " + msg, file=sys.stderr)
    sys.exit(code)


def load(path):
    f = sys.stdin if path == "-" else open(path)
    rows = [json.loads(l) for l in f if l.strip()]
    if not rows:
        die(f"{path}: no measurements")
    return rows


def q(s):
    """A gnuplot string literal."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def gnuplot(script, out):
    if not shutil.which("gnuplot"):
        die("gnuplot not found (Debian: apt-get install gnuplot-nox)")
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode != 0 or not os.path.getsize(out):
        die("gnuplot failed: " + r.stderr.strip()[-800:])


HEAD = """set terminal svg size {w},{h} dynamic enhanced font "sans,11" background "white"
set output {out}
set grid ytics lc rgb "#dddddd"
set key top left
set datafile missing "?"
"""

# gnuplot's histogram bars with min..max whiskers: columns y, ymin, ymax
BARS = """set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set xtics rotate by -30 scale 0
"""


def bars_table(path, groups, series, cell):
    """A data file: one line per group, per series median min max."""
    with open(path, "w") as f:
        for g in groups:
            cols = [q(g[1])]
            for s in series:
                v = cell(g[0], s)
                cols += ["%g %g %g" % v if v else "? ? ?"]
            f.write(" ".join(cols) + "\n")


def bs_of(rows):
    """The request size, from the rows that carry it (vio's): ", 4k
    requests", or nothing when unknown or mixed."""
    bs = {r["bs"] for r in rows if r.get("bs")}
    if len(bs) != 1:
        return ""
    b = bs.pop()
    return f", {b // 1024}k requests" if b % 1024 == 0 else f", {b}-byte requests"


# legend names of blk-driver's backends
BACKENDS = {"qsd": "qemu-storage-daemon", "vio": "vio serve",
            "fio": "fio on the image file (reference)",
            "fio-qsd": "fio, vio engine: qemu-storage-daemon",
            "fio-vio": "fio, vio engine: vio serve"}


def blk_driver(rows, out, tmp):
    pts, backends = [], []
    for r in rows:
        k = (r["rw"], r["iodepth"], r["queues"])
        if k not in pts:
            pts.append(k)
        if r["backend"] not in backends:
            backends.append(r["backend"])

    def cell(k, b):
        v = [r["iops"] / 1e3 for r in rows
             if r["backend"] == b and (r["rw"], r["iodepth"], r["queues"]) == k]
        return (statistics.median(v), min(v), max(v)) if v else None

    groups = [(k, f"{k[0]} qd{k[1]} q{k[2]}") for k in pts]
    bars_table(f"{tmp}/iops.dat", groups, backends, cell)
    runs = max(r.get("run", 1) for r in rows)
    plots = ", ".join(
        f"{q(tmp + '/iops.dat')} using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}"
        f"{':xtic(1)' if i == 0 else ''} title {q(BACKENDS.get(b, b))}"
        for i, b in enumerate(backends))

    # CDFs: the first workload, one queue, shallowest and deepest iodepth
    depths = sorted({k[1] for k in pts})
    cdf_pts = [k for k in pts if k[0] == pts[0][0] and k[2] == min(p[2] for p in pts)
               and k[1] in (depths[0], depths[-1])]
    cdf_plots = []
    for k in cdf_pts:
        lines = []
        for lt, b in enumerate(backends, 1):  # the bars' colours
            hist = {}
            for r in rows:
                if r["backend"] == b and (r["rw"], r["iodepth"], r["queues"]) == k:
                    for us, n in r.get("lat_hist_us") or []:
                        hist[us] = hist.get(us, 0) + n
            total = sum(hist.values())
            if not total:
                continue
            name = f"{tmp}/cdf-{k[1]}-{b}.dat"
            acc = 0
            with open(name, "w") as f:
                for us in sorted(hist):
                    acc += hist[us]
                    f.write("%g %g\n" % (us, acc / total))
            lines.append(f"{q(name)} using 1:2 with steps lt {lt} lw 2 "
                         f"title {q(BACKENDS.get(b, b))}")
        if lines:
            cdf_plots.append((k, lines))

    n = len(cdf_plots)
    s = HEAD.format(w=1000, h=900 if n else 500, out=q(out))
    s += "set multiplot\n"
    s += BARS
    s += "set origin 0,%g\nset size 1,%g\n" % ((0.45, 0.55) if n else (0, 1))
    s += "set ylabel \"kIOPS\"\nset key top left\n"
    s += f"set xrange [-0.6:{len(groups) - 0.4}]\n"
    s += ("set title " + q(f"vio blk driver over vhost-user{bs_of(rows)}: IOPS per "
                           f"configuration and backend (median of {runs} runs, min..max)") + "\n")
    s += f"plot {plots}\n"
    s += "set style data lines\nset xtics norotate\nset autoscale x\nset logscale x\n"
    s += "set xlabel \"latency (us)\"\nset ylabel \"fraction of requests\"\n"
    s += "set yrange [0:1]\nset ytics 0.1\nset key bottom right\nset grid xtics\n"
    for i, (k, lines) in enumerate(cdf_plots):
        s += "set origin %g,0\nset size %g,0.45\n" % (i / n, 1 / n)
        s += f"set title {q(f'latency CDF, {k[0]} qd{k[1]} q{k[2]}')}\n"
        s += "plot " + ", ".join(lines) + "\n"
    s += "unset multiplot\n"
    gnuplot(s, out)


def ring(rows, out, tmp):
    batches = sorted({r["batch"] for r in rows})
    series = []
    for r in rows:
        s = (r["format"], r.get("event_idx"))
        if s not in series:
            series.append(s)

    def label(s):
        if s[1] is None:
            return s[0]
        return f"{s[0]}, EVENT\\_IDX {'on' if s[1] else 'off'}"

    def cell(b, s):
        for r in rows:
            if r["batch"] == b and (r["format"], r.get("event_idx")) == s:
                return (r["buffers_per_s"] / 1e6, r["min"] / 1e6, r["max"] / 1e6)
        return None

    bars_table(f"{tmp}/ring.dat", [(b, f"batch {b}") for b in batches], series, cell)
    r0 = rows[0]
    plots = ", ".join(
        f"{q(tmp + '/ring.dat')} using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}"
        f"{':xtic(1)' if i == 0 else ''} title {q(label(s))}"
        for i, s in enumerate(series))
    s = HEAD.format(w=900, h=500, out=q(out)) + BARS
    s += f"set xrange [-0.6:{len(batches) - 0.4}]\n"
    # log scale: spsc is 10x the rings, whose configurations differ less
    s += "set xtics norotate\nset ylabel \"million buffers / s (log scale)\"\n"
    lo = min(r["min"] for r in rows if r["min"] > 0) / 1e6 if any(
        r["min"] > 0 for r in rows) else 0.01
    s += "set logscale y\nset yrange [%g:*]\nset grid mytics\n" % (
        10 ** math.floor(math.log10(lo)))
    s += (f"set title {q('virtqueue throughput, queue size %s, median of %s runs of %s s (min..max)' % (r0.get('queue_size', '?'), r0.get('runs', '?'), r0.get('seconds', '?')))}\n")
    s += f"plot {plots}\n"
    gnuplot(s, out)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("blk-driver", "ring"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    rows = load(sys.argv[2])
    out = os.path.abspath(sys.argv[3])
    with tempfile.TemporaryDirectory(prefix="vio-plot.") as tmp:
        (blk_driver if sys.argv[1] == "blk-driver" else ring)(rows, out, tmp)


if __name__ == "__main__":
    main()
