"""migperf's postcopy measurement pieces: the emulated link (--link, a relay
with one token bucket shared by every connection: perf/migperf/link.py),
the destination's page-request latency probe (--postcopy-dst-probe), and
perf/bench_postcopy.py's tables (one tiny configuration).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from tests.system.migdtest import BUILD, ROOT

sys.path.insert(0, os.path.join(ROOT, "perf"))
from migperf.link import LinkRelay  # noqa: E402

MiB = 1 << 20


class LinkRelayTest(unittest.TestCase):
    def sink(self):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(4)
        got = []

        def serve():
            while True:
                try:
                    c, _ = ls.accept()
                except OSError:
                    return
                n = 0
                while True:
                    d = c.recv(1 << 16)
                    if not d:
                        break
                    n += len(d)
                got.append(n)
                c.close()
        threading.Thread(target=serve, daemon=True).start()
        self.addCleanup(ls.close)
        return ls.getsockname()[1], got

    def test_rate_shared_by_connections(self):
        port, got = self.sink()
        link = LinkRelay("127.0.0.1", port, 8 * MiB)
        self.addCleanup(link.close)
        host, lport = link.uri[4:].rsplit(":", 1)
        t0 = time.monotonic()

        def send():
            s = socket.create_connection((host, int(lport)))
            s.sendall(b"x" * MiB)
            s.close()
        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        dt = time.monotonic() - t0
        self.assertEqual(got, [MiB, MiB])
        # 2 MiB at 8 MiB/s together: 0.25 s at least
        self.assertGreater(dt, 0.22, dt)
        self.assertEqual(link.bytes, 2 * MiB)


class MigperfProbeTest(unittest.TestCase):
    def migperf(self, *extra):
        out = os.path.join(tempfile.mkdtemp(prefix="test-mp-probe-"),
                           "r.json")
        r = subprocess.run(
            [sys.executable, os.path.join(ROOT, "perf", "migperf"), "run",
             "--mem", "32M", "--cpus", "2", "--dirty-rate", "64",
             "--pattern", "random", "--warmup", "0.2",
             "--postcopy-after", "0.3", "-q", "-o", out] + list(extra),
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, MIGPERF_BUILD=BUILD),
            stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        with open(out) as f:
            return json.load(f)["result"]

    def test_probe_over_link(self):
        res = self.migperf("--link", "16M", "--postcopy-preempt", "on",
                           "--postcopy-dst-probe", "on")
        self.assertTrue(res["digest"]["match"], res)  # the probe reads only
        self.assertGreater(res["probe_samples"], 0, res)
        self.assertLessEqual(res["probe_median_us"], res["probe_p99_us"])
        self.assertGreater(res["postcopy_requests"], 0)

    def test_probe_needs_postcopy(self):
        r = subprocess.run(
            [sys.executable, os.path.join(ROOT, "perf", "migperf"), "run",
             "--postcopy-dst-probe", "on"], capture_output=True, text=True,
            timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--postcopy-dst-probe needs --postcopy on", r.stderr)

    def test_link_needs_tcp(self):
        r = subprocess.run(
            [sys.executable, os.path.join(ROOT, "perf", "migperf"), "run",
             "--link", "1M", "--transport", "unix"], capture_output=True,
            text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--link needs --transport tcp", r.stderr)


class BenchPostcopyTest(unittest.TestCase):
    def test_tables(self):
        d = tempfile.mkdtemp(prefix="test-bench-pc-")
        r = subprocess.run(
            [sys.executable, os.path.join(ROOT, "perf", "bench_postcopy.py"),
             "--quick", "--only", "postcopy,probe-preempt", "--mem", "32M",
             "--build", BUILD, "--output-dir", d],
            capture_output=True, text=True, timeout=180,
            stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("| postcopy | 1/1 |", r.stdout)
        self.assertIn("| page requests, preempt | 1/1 |", r.stdout)
        with open(os.path.join(d, "table.md")) as f:
            self.assertEqual(f.read().strip(), r.stdout.strip())
        self.assertTrue(os.path.exists(os.path.join(d, "runs",
                                                    "probe-preempt-0.json")))
