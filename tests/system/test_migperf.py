"""test_migperf — migperf (perf/migperf) end to end: a small comparison
(64 MiB guest, multifd 1 and 2 channels, one repeat) and its report's
structure and figures against the query-migrate replies it recorded;
rdma scenarios migperf cannot run are refused up front (exit 2); --peer
qemu."""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from tests.system.migdtest import BUILD, ROOT

MIGPERF = os.path.join(ROOT, "perf", "migperf")
sys.path.insert(0, os.path.join(ROOT, "perf"))
from migperf import compare, report  # noqa: E402


def migperf(*args, timeout=120):
    env = dict(os.environ, MIGPERF_BUILD=BUILD)
    return subprocess.run([sys.executable, MIGPERF] + list(args),
                          capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


class TestMigperf(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="test-migperf-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_run(self, rep):
        for key in report.REPORT_KEYS:
            if key not in ("migperf", "command"):
                self.assertIn(key, rep)
        res, tl = rep["result"], rep["timeline"]
        self.assertTrue(res["success"], res)
        self.assertEqual(res["status"], "completed")
        self.assertTrue(res["digest"]["match"], res["digest"])
        src_qm = res["query_migrate"]["src"]
        last = tl[-1]
        self.assertEqual(last["status"], "completed")
        # The report's figures are query-migrate's.
        self.assertEqual(res["transferred"], src_qm["ram"]["transferred"])
        self.assertEqual(last["transferred"], src_qm["ram"]["transferred"])
        self.assertEqual(res["total_time_ms"], src_qm["total-time"])
        self.assertEqual(last["total_time_ms"], src_qm["total-time"])
        self.assertEqual(res["downtime_ms"], src_qm["downtime"])
        self.assertEqual(res["iterations"], src_qm["ram"]["dirty-sync-count"])
        self.assertAlmostEqual(res["throughput_gbs"], src_qm["ram"]["total"]
                               / 1e9 / (src_qm["total-time"] / 1000))
        self.assertEqual(res["ram_total"], 64 << 20)
        # Samples are ordered, cumulative and carry CPU and guest data.
        ts = [s["t"] for s in tl]
        self.assertEqual(ts, sorted(ts))
        sent = [s["transferred"] for s in tl]
        self.assertEqual(sent, sorted(sent))
        for s in tl:
            for k in ("remaining", "dirty_rate_bps", "mbps", "iterations",
                      "expected_downtime_ms", "throttle_pct", "cpu",
                      "guest"):
                self.assertIn(k, s)
        self.assertTrue(res["cpu_threads"]["src"])
        self.assertTrue(all("name" in t and "cpu_s" in t for t in
                            res["cpu_threads"]["dst"].values()))
        self.assertIsNotNone(rep["peers"]["src"]["pid"])

    def test_compare_channels(self):
        out = os.path.join(self.dir, "cmp")
        r = migperf("compare", "--mem", "64M", "--cpus", "2",
                    "--dirty-rate", "20", "--working-set", "16M",
                    "--warmup", "0.3", "--vary", "channels=1,2",
                    "--repeat", "1", "--output-dir", out)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        with open(os.path.join(out, "compare.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["fields"], ["multifd"])
        self.assertEqual([p["settings"] for p in summary["points"]],
                         [{"multifd": "1"}, {"multifd": "2"}])
        with open(os.path.join(out, "table.csv")) as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], compare.csv_columns(["multifd"]))
        self.assertEqual([r[:3] for r in rows[1:]],
                         [["1", "1", "1"], ["2", "1", "1"]])
        self.assertEqual(len(rows), 3)
        self.assertTrue(os.path.getsize(os.path.join(out, "table.txt")))
        if shutil.which("gnuplot"):
            for name in ("throughput", "total_time", "downtime",
                         "timeline"):
                for ext in ("svg", "png"):
                    path = os.path.join(out, "%s.%s" % (name, ext))
                    self.assertGreater(os.path.getsize(path), 1000, path)
        for i, run in enumerate(summary["runs"]):
            with open(os.path.join(out, run)) as f:
                rep = json.load(f)
            self.check_run(rep)
            self.assertEqual(rep["scenario"]["multifd"], i + 1)
            # The CSV's medians (one run) are the run's own figures.
            med = dict(zip(rows[0], rows[i + 1]))
            self.assertAlmostEqual(float(med["total_time_s_median"]),
                                   rep["result"]["total_time_ms"] / 1000)
            self.assertGreater(rep["result"]["guest_rate_bps"], 0)

    def test_run_json_and_refused_transport(self):
        path = os.path.join(self.dir, "r.json")
        r = migperf("run", "--mem", "64M", "--transport", "unix",
                    "--output", path)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("RAM digests: match", r.stdout)
        with open(path) as f:
            self.check_run(json.load(f))
        # rdma: refused before any peer starts (perf/migperf/rdma.py)
        r = migperf("run", "--mem", "64M", "--transport", "rdma")
        self.assertEqual(r.returncode, 2, r.stderr + r.stdout)
        self.assertIn("--transport rdma needs --rdma-host ADDR", r.stderr)
        if not glob.glob("/sys/class/infiniband/*"):
            r = migperf("run", "--transport", "rdma", "--rdma-host",
                        "192.0.2.1", "--rdma-pin-all", "on")
            self.assertEqual(r.returncode, 2, r.stderr + r.stdout)
            self.assertIn("--transport rdma: no RDMA device on this host",
                          r.stderr)
        r = migperf("run", "--rdma-pin-all", "on")
        self.assertEqual(r.returncode, 2, r.stderr + r.stdout)
        self.assertIn("--rdma-pin-all needs --transport rdma", r.stderr)

    def test_qemu_refuses_dirty_rate(self):
        r = migperf("run", "--peer", "qemu", "--dirty-rate", "10")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no guest workload", r.stderr)


if __name__ == "__main__":
    unittest.main()
