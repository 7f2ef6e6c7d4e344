#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""DPDK's virtio-user frontend against vio's virtio-net device.

    test_dpdk_net.py VIO [--packed] [--queues N] [--frames N] [--poll]
                         [--tx-wait NS]

`vio serve net --socket S --port sink:check|gen|echo --json` is the
vhost-user backend; `dpdk-testpmd --vdev net_virtio_user0,path=S,queues=N,
packed_vq=0|1` (tests/interop/dpdk.py: no hugepages, commands from a
pipe) is the frontend, its driver DPDK's own virtio PMD:

  txonly -> sink:check
                   testpmd sends 64-byte UDP/IPv4 frames; the sink checks
                   every one (its `bad` counter: IPv4 header checksum,
                   total length) and counts them;
  rxonly <- gen    vio makes UDP/IPv4 frames into every receive buffer
                   testpmd offers; testpmd counts them;
  io    <-> echo   testpmd sends 4 bursts per queue first (tx_first) and
                   then forwards what comes back; the echo port checks
                   each frame and sends it back MAC-swapped.

Each case runs until testpmd counted --frames frames (default 200000) or
20 s passed, then testpmd stops (its final forward statistics) and vio
gets SIGTERM (its final counters, one JSON line).  Checked: both sides
counted packets, on every queue pair; the counts agree (what testpmd sent
is what the device took, give or take what was still in the rings when
testpmd stopped, at most one ring per pair; what the device delivered is
what testpmd received, give or take two rings per pair: DPDK's virtio PMD
also misses up to a ring around the start, with DPDK's own vhost as the
peer too); the port saw no bad frame; vio counted
no transmit error and exited 0.  --packed: packed_vq=1 and vio serve net
--packed (the device offers the packed ring, the frontend takes it).
--tx-wait NS: vio serve net --tx-wait NS (the device waits for a batch;
the driver's hiccups under --poll leave partial ones, which must go too).

Every process runs with PR_SET_PDEATHSIG and is stopped by its PID; all
files in one temp dir, removed at the end.  Exit 0 pass, 1 fail, 77 SKIP
only when dpdk-testpmd is not installed.
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dpdk  # noqa: E402

QUEUE_SIZE = 256  # virtio_user's rings (the frontend picks the size)
TX_FIRST = 4      # bursts of 32 each queue sends first in io mode
DEADLINE = 20.0   # seconds a case may take to count --frames frames

fails = []


def check(cond, what):
    if cond:
        print('ok: ' + what)
    else:
        print('FAIL: ' + what, file=sys.stderr)
        fails.append(what)
    return cond


# --poll: vio's worker busy-polls, then sleeps after 50 us without work.
# The driver is stopped and continued at random instants (SIGSTOP/SIGCONT,
# a few ms each) so that the worker goes to sleep in every state the rings
# can be in: a worker that sleeps while the driver's buffers wait and no
# kick will come stalls the traffic for good (rx: a generator port that ran
# dry just before the driver refilled; fixed in src/run/group.c bq_arm).
HICCUPS = 60
POLL_DEADLINE = 60.0  # --poll: the frames must come within this
MAX_STALL = 1.0  # --poll: seconds without a frame (before the fix: 1-10)


def hiccup(pid):
    for _ in range(10):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(random.uniform(0.0005, 0.003))
        os.kill(pid, signal.SIGCONT)
        time.sleep(random.uniform(0, 0.002))


def run_case(args, tmp, mode):
    port, fwd = {'tx': ('sink:check', 'txonly'),
                 'rx': ('gen:64', 'rxonly'),
                 'loop': ('echo', 'io')}[mode]
    q = args.queues
    tag = '%s %s q%d' % (mode, 'packed' if args.packed else 'split', q)
    sock = os.path.join(tmp, mode + '.sock')
    vio = dpdk.VioServe(tmp, 'vio-' + mode, args.vio, sock, port, queues=q,
                        packed=args.packed,
                        extra=(['--poll'] if args.poll else []) +
                        (['--tx-wait', str(args.tx_wait)]
                         if args.tx_wait else []))
    pmd = None
    try:
        vio.wait_ready()
        pmd = dpdk.Testpmd(tmp, 'testpmd-' + mode,
                           dpdk.vdev_virtio_user(sock, queues=q,
                                                 packed=args.packed,
                                                 queue_size=QUEUE_SIZE),
                           fwd, 0, queues=q, txpkts=64, mem_mb=256,
                           mbufs=16384)
        pmd.start_fwd(tx_first=TX_FIRST if mode == 'loop' else 0)
        key = 'tx_packets' if mode == 'tx' else 'rx_packets'
        deadline = time.monotonic() + DEADLINE
        if args.poll:
            deadline = time.monotonic() + POLL_DEADLINE
        hiccups = HICCUPS if args.poll else 0
        last, last_t, stall = 0, time.monotonic(), 0.0
        while True:
            st = pmd.show()
            now = time.monotonic()
            if st[key] != last:
                last, last_t = st[key], now
            stall = max(stall, now - last_t)
            if st[key] >= args.frames or now > deadline:
                break
            if hiccups and st[key] > 0:
                hiccup(pmd.pid)
                hiccups -= 1
                last_t = time.monotonic()  # the driver was stopped
            time.sleep(0.05)  # pacing the polls, not a readiness wait
        if args.poll:
            check(stall < MAX_STALL and st[key] >= args.frames,
                  '%s: traffic went on through %d driver hiccups (longest '
                  'stall %.2f s, at most %g; %d of %d frames)' %
                  (tag, HICCUPS - hiccups, stall, MAX_STALL, st[key],
                   args.frames))
        pmd_final = pmd.quit()
        rc, c = vio.stop_counters()
    except dpdk.Error as e:
        check(False, '%s: %s' % (tag, e))
        vio.kill()
        print('vio serve log:\n' + vio.tail(), file=sys.stderr)
        if pmd:
            pmd.kill()
            print('testpmd log:\n' + pmd.tail(), file=sys.stderr)
        return
    finally:
        if pmd:
            pmd.kill()
        vio.kill()
    print('%s: testpmd %s; vio %s' % (tag, pmd_final,
                                        c and c.get('total')))
    print('%s: vio port %s' % (tag, c and c.get('port')))
    if not check(c is not None, '%s: vio printed its counters' % tag):
        print(vio.tail(), file=sys.stderr)
        return
    check(rc == 0, '%s: vio serve net exited 0 on SIGTERM (got %s)' %
          (tag, rc))
    text = vio.text()
    if not check('runtime error:' not in text and 'Sanitizer' not in text,
                 '%s: no sanitizer report in vio\'s log' % tag):
        print(vio.tail(60), file=sys.stderr)
    tot, prt, pairs = c['total'], c['port'], c['pairs']
    check(c.get('connections') == 1, '%s: one connection' % tag)
    check(prt['bad'] == 0, '%s: the %s port saw no bad frame (bad=%d)' %
          (tag, prt['kind'], prt['bad']))
    check(tot['tx_errors'] == 0 and tot['tx_dropped'] == 0,
          '%s: no transmit error or drop in vio (%d, %d)' %
          (tag, tot['tx_errors'], tot['tx_dropped']))
    # testpmd stopped with at most a ring per pair still in the rings
    slack = QUEUE_SIZE * q
    # what the device delivered and testpmd's counters: besides that, the
    # virtio PMD's counters miss up to another ring per pair around the
    # start of forwarding (seen as often between testpmd's own net_vhost
    # txonly and virtio_user rxonly, DPDK on both ends)
    rx_slack = 2 * QUEUE_SIZE * q
    if mode in ('tx', 'loop'):
        sent = pmd_final['nic']['tx_packets']
        check(sent >= args.frames or mode == 'loop' and sent > 0,
              '%s: testpmd sent %d frames' % (tag, sent))
        check(sent - slack <= tot['tx_packets'] <= sent,
              '%s: vio took %d of the %d frames testpmd sent' %
              (tag, tot['tx_packets'], sent))
        check(prt['packets'] == tot['tx_packets'],
              '%s: the port got every frame vio took (%d)' %
              (tag, prt['packets']))
        check(all(p['tx_packets'] > 0 for p in pairs[:q]),
              '%s: frames on every pair: %s' %
              (tag, [p['tx_packets'] for p in pairs]))
    if mode in ('rx', 'loop'):
        got = pmd_final['nic']['rx_packets']
        check(got >= args.frames or mode == 'loop' and got > 0,
              '%s: testpmd received %d frames' % (tag, got))
        check(got <= tot['rx_packets'] <= got + rx_slack,
              '%s: vio delivered %d frames, testpmd received %d' %
              (tag, tot['rx_packets'], got))
        check(all(p['rx_packets'] > 0 for p in pairs[:q]),
              '%s: frames on every pair: %s' %
              (tag, [p['rx_packets'] for p in pairs]))
    if mode == 'rx':
        check(prt['made'] >= tot['rx_packets'],
              '%s: the gen port made %d frames' % (tag, prt['made']))
    if mode == 'loop':
        # what went around: testpmd's frames came back but for those in
        # flight (its first bursts, plus a ring per pair in the device)
        inflight = TX_FIRST * 32 * q + rx_slack
        nic = pmd_final['nic']
        check(abs(nic['tx_packets'] - nic['rx_packets']) <= inflight,
              '%s: testpmd received ~ what it sent (%d / %d)' %
              (tag, nic['rx_packets'], nic['tx_packets']))
        check(prt['packets'] >= args.frames,
              '%s: the echo port reflected %d frames' %
              (tag, prt['packets']))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('vio')
    ap.add_argument('--packed', action='store_true')
    ap.add_argument('--queues', type=int, default=1)
    ap.add_argument('--frames', type=int, default=200000)
    ap.add_argument('--modes', default='tx,rx,loop')
    ap.add_argument('--poll', action='store_true',
                    help='vio serve net --poll, the driver stopped and '
                    'continued at random instants meanwhile')
    ap.add_argument('--tx-wait', type=int, default=0, metavar='NS',
                    help='vio serve net --tx-wait NS')
    args = ap.parse_args()
    if not dpdk.testpmd_path():
        msg = ('SKIP: dpdk-testpmd is not installed: the interop test of '
               "vio's virtio-net device against DPDK's virtio-user "
               'frontend did NOT run (Debian: apt-get install dpdk)')
        print(msg)
        print(msg, file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix='vio-dpdk-net.',
                           dir=os.environ.get('TMPDIR', '/tmp'))
    try:
        for mode in args.modes.split(','):
            run_case(args, tmp, mode)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fails:
        print('%d check(s) failed' % len(fails), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
