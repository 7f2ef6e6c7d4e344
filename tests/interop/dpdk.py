# SPDX-License-Identifier: MIT
"""DPDK's testpmd and `vio serve net`, started bounded and read back.

Shared by tests/interop/test_dpdk_net.py (the interop test of vio's
virtio-net device against DPDK's virtio-user frontend) and bench/net (the
packet-rate comparison with DPDK).  Python 3 standard library only.

testpmd runs interactively with its commands written to a pipe (`-i`):
`start` (or `start tx_first N`), then `show port stats 0` twice around a
measured window, whose second answer carries testpmd's own packets per
second over exactly that window ("Throughput (since last show)"), then
`stop` (the final "Forward statistics") and `quit`.  Its stdout is made
line-buffered (stdbuf) so that the log file shows each answer when it is
given: every wait is on a line appearing in the log, with a deadline, never
a sleep.  Fixed EAL options let several instances run at once without
hugepages: --no-huge --no-pci --no-shconf, a unique --file-prefix, -m MiB
of memory, one forwarding lcore pinned to the CPU asked for (the main
lcore, idle while forwarding, may run on any CPU), --disable-link-check (a
net_vhost port has no link until its frontend connects; testpmd would wait
9 s for it).

Every process is started with PR_SET_PDEATHSIG = SIGKILL (it dies with
its parent, even a SIGKILLed one) and stopped by its PID.
"""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import time

TESTPMD = 'dpdk-testpmd'

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _pdeathsig():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def testpmd_path():
    """The dpdk-testpmd binary, or None when DPDK is not installed."""
    return shutil.which(TESTPMD)


class Error(Exception):
    """A peer failed: the message says which and carries its log's tail."""


def wait_until(cond, timeout, what, proc=None):
    """Poll cond() every 10 ms until it is true; Error after timeout
    seconds or as soon as proc (a Proc) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if proc is not None and not proc.alive():
            raise Error('%s exited (status %s) while waiting for %s\n%s' %
                        (proc.name, proc.popen.returncode, what, proc.tail()))
        if time.monotonic() > deadline:
            tail = '\n' + proc.tail() if proc is not None else ''
            raise Error('timed out after %gs waiting for %s%s' %
                        (timeout, what, tail))
        time.sleep(0.01)


class Proc:
    """A child process whose stdout and stderr go to a log file."""

    def __init__(self, name, argv, log, stdin=False, env=None):
        self.name = name
        self.argv = argv
        self.log = log
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=open(log, 'w'), stderr=subprocess.STDOUT, text=True,
            env=env, preexec_fn=_pdeathsig)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def text(self):
        with open(self.log, errors='replace') as f:
            return f.read()

    def tail(self, n=25):
        lines = self.text().splitlines()
        return '\n'.join('  | ' + l for l in lines[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal the process by PID, wait up to timeout s, then SIGKILL.
        Returns its exit status (negative: killed by that signal)."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.wait()

    def kill(self):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait()
        if self.popen.stdin:
            try:
                self.popen.stdin.close()
            except OSError:
                pass


# "Throughput (since last show)" block of `show port stats`
_RE_PPS = re.compile(r'Rx-pps:\s+(\d+)\s+Rx-bps:\s+(\d+)\s*\n'
                     r'\s*Tx-pps:\s+(\d+)\s+Tx-bps:\s+(\d+)')
_RE_NIC = re.compile(r'RX-packets:\s+(\d+)\s+RX-missed:\s+(\d+)\s+'
                     r'RX-bytes:\s+(\d+)\s*\n\s*RX-errors:\s+(\d+)\s*\n'
                     r'\s*RX-nombuf:\s+(\d+)\s*\n\s*TX-packets:\s+(\d+)\s+'
                     r'TX-errors:\s+(\d+)\s+TX-bytes:\s+(\d+)')
_RE_FWD = re.compile(r'RX-packets:\s+(\d+)\s+RX-dropped:\s+(\d+)\s+'
                     r'RX-total:\s+(\d+)\s*\n\s*TX-packets:\s+(\d+)\s+'
                     r'TX-dropped:\s+(\d+)\s+TX-total:\s+(\d+)')


class Testpmd(Proc):
    """dpdk-testpmd with one virtual port (vdev) forwarding in mode fwd
    (io, macswap, rxonly, txonly) on queues queue pairs, its forwarding
    lcore on CPU cpu, commands from a pipe."""

    def __init__(self, tmp, name, vdev, fwd, cpu, queues=1, txpkts=None,
                 mem_mb=512, mbufs=32768, extra=()):
        cpus = sorted(os.sched_getaffinity(0))
        main = ','.join(str(c) for c in cpus)
        argv = ['stdbuf', '-oL', testpmd_path() or TESTPMD,
                '--no-huge', '--no-pci', '--no-shconf', '-m', str(mem_mb),
                '--lcores', '0@(%s),1@%d' % (main, cpu), '--main-lcore', '0',
                '--file-prefix=vio-%s-%d-%d' % (name, os.getpid(),
                                                int(time.monotonic_ns())),
                '--vdev', vdev, '--',
                '-i', '--forward-mode=' + fwd, '--nb-cores=1',
                '--rxq=%d' % queues, '--txq=%d' % queues,
                '--no-lsc-interrupt', '--disable-link-check',
                '--total-num-mbufs=%d' % mbufs]
        if txpkts:
            argv.append('--txpkts=%d' % txpkts)
        argv += list(extra)
        super().__init__(name, argv, os.path.join(tmp, name + '.log'),
                         stdin=True)
        self.fwd = fwd
        self._shows = 0

    def cmd(self, line):
        try:
            self.popen.stdin.write(line + '\n')
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            raise Error('%s: exited before command %r (status %s)\n%s' %
                        (self.name, line, self.popen.poll(), self.tail()))

    def wait_text(self, text, count=1, timeout=30):
        """Wait until text occurs count times in the log."""
        wait_until(lambda: self.text().count(text) >= count, timeout,
                   '%s: %r' % (self.name, text), self)

    def start_fwd(self, tx_first=0, timeout=30):
        """Start forwarding (tx_first: bursts sent first, for io loops);
        returns once testpmd said it started (the port is up: for
        net_virtio_user, connected to its backend)."""
        self.cmd('start tx_first %d' % tx_first if tx_first else 'start')
        self.wait_text('packet forwarding - ports=', timeout=timeout)

    def show(self, timeout=10):
        """`show port stats 0`: {'rx_pps', 'tx_pps', 'rx_bps', 'tx_bps',
        'rx_packets', 'rx_missed', 'rx_bytes', 'rx_errors', 'rx_nombuf',
        'tx_packets', 'tx_errors', 'tx_bytes'};
        the rates are over the time since the previous show (0 at the
        first)."""
        self._shows += 1
        self.cmd('show port stats 0')
        self.wait_text('Throughput (since last show)', self._shows,
                       timeout)
        # the rates follow the heading on the next two lines
        wait_until(lambda: len(_RE_PPS.findall(self.text())) >= self._shows,
                   timeout, self.name + ': throughput lines', self)
        text = self.text()
        rx_pps, rx_bps, tx_pps, tx_bps = map(int, _RE_PPS.findall(text)[-1])
        nic = [int(x) for x in _RE_NIC.findall(text)[-1]]
        return {'rx_pps': rx_pps, 'tx_pps': tx_pps, 'rx_bps': rx_bps,
                'tx_bps': tx_bps, 'rx_packets': nic[0], 'rx_missed': nic[1],
                'rx_bytes': nic[2], 'rx_errors': nic[3], 'rx_nombuf': nic[4],
                'tx_packets': nic[5], 'tx_errors': nic[6], 'tx_bytes': nic[7]}

    def quit(self, timeout=15):
        """stop (final forward statistics) and quit; returns
        {'rx_packets', 'rx_dropped', 'tx_packets', 'tx_dropped'} of the
        forwarding run (what the forwarding engine counted), and 'nic':
        the port's own counters after the stop (show()), which also count
        what testpmd flushed from the receive queues before it started
        forwarding; raises Error when it did not say."""
        nic = None
        if self.alive():
            try:
                n = self.text().count('Packet forwarding not started')
                self.cmd('stop')
                wait_until(lambda: 'Accumulated forward statistics' in
                           self.text() or self.text().count(
                               'Packet forwarding not started') > n,
                           timeout, self.name + ': stop', self)
                nic = self.show(timeout)
                self.cmd('quit')
                self.popen.stdin.close()
            except Error:
                pass
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Error('%s: did not quit within %gs\n%s' %
                        (self.name, timeout, self.tail()))
        res = self.final()
        if nic is None:
            raise Error('%s: no port statistics after the stop\n%s' %
                        (self.name, self.tail()))
        res['nic'] = nic
        return res

    def final(self):
        found = _RE_FWD.findall(self.text())
        if not found and 'Packet forwarding not started' in self.text():
            return {'rx_packets': 0, 'rx_dropped': 0, 'tx_packets': 0,
                    'tx_dropped': 0}
        if not found:
            raise Error('%s: no forward statistics (status %s)\n%s' %
                        (self.name, self.popen.returncode, self.tail()))
        v = [int(x) for x in found[-1]]
        return {'rx_packets': v[0], 'rx_dropped': v[1], 'tx_packets': v[3],
                'tx_dropped': v[4]}


def vdev_virtio_user(sock, queues=1, packed=False, server=False,
                     mrg_rxbuf=True, in_order=False, queue_size=256):
    """DPDK's virtio-user frontend (the "guest" driver) on sock."""
    return ('net_virtio_user0,path=%s,queues=%d,queue_size=%d,packed_vq=%d,'
            'server=%d,mrg_rxbuf=%d,in_order=%d' %
            (sock, queues, queue_size, int(packed), int(server),
             int(mrg_rxbuf), int(in_order)))


def vdev_vhost(sock, queues=1, client=False):
    """DPDK's vhost-user device (backend) on sock."""
    return 'net_vhost0,iface=%s,queues=%d,client=%d' % (sock, queues,
                                                        int(client))


class VioServe(Proc):
    """`vio serve net --socket SOCK --port PORT ...`; ready once its
    pidfile exists (it writes it when it accepts connections); stopped by
    SIGTERM, after which its counters are the last JSON object of its
    stdout."""

    def __init__(self, tmp, name, vio, sock, port, queues=1, packed=False,
                 cpus=None, extra=()):
        self.pidfile = os.path.join(tmp, name + '.pid')
        argv = [vio, 'serve', 'net', '--socket', sock, '--port', port,
                '--queues', str(queues), '--pidfile', self.pidfile, '--json']
        if packed:
            argv.append('--packed')
        if cpus is not None:
            argv += ['--cpus', cpus]
        argv += list(extra)
        super().__init__(name, argv, os.path.join(tmp, name + '.log'))
        self.sock = sock

    def wait_ready(self, timeout=15):
        wait_until(lambda: os.path.exists(self.pidfile) and
                   os.path.exists(self.sock), timeout,
                   self.name + ': pidfile and socket', self)

    def counters(self, text=None):
        """The last JSON object vio printed (one line), or None."""
        for line in reversed((text or self.text()).splitlines()):
            line = line.strip()
            if line.startswith('{'):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        return None

    def stop_counters(self, timeout=10):
        """SIGTERM; (exit status, counters)."""
        rc = self.stop(signal.SIGTERM, timeout)
        return rc, self.counters()


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
