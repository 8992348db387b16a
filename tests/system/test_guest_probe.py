"""The page-request latency probe (x-guest-workload content=probe,
x-query-guest-probe; guest/probe.c): vCPU 0 reads one byte of a random
missing page at a time and records how long the first access took. On
fresh RAM a missing page is a first-touch fault; on a postcopy
destination it is a page request over the return path. The probe writes
nothing, so the RAM digests still match after postcopy completes.
"""
import time

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for

FINAL = ("completed", "failed", "cancelled")
KEYS = {"active", "samples", "resident-picks", "not-found", "histogram"}
STATS = {"min-ns", "max-ns", "mean-ns", "median-ns", "p90-ns", "p99-ns",
         "p999-ns"}


def set_caps(q, **caps):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v}
        for k, v in caps.items()])


def wait_status(q, statuses, timeout=60):
    last = {}

    def done():
        last.update(q.cmd("query-migrate"))
        return last["status"] in statuses
    wait_for(done, timeout=timeout, what="status in %s" % (statuses,))
    return last


def digest(q):
    return [(b["block"], b["digest"]) for b in q.cmd("x-query-ram-digest")]


class ProbeQMPTest(MigdTestCase):
    def test_idle_guest(self):
        q = self.migd(["-m", "16M"]).qmp()
        r = q.cmd("x-query-guest-probe")
        self.assertEqual(set(r), KEYS, r)
        self.assertEqual((r["active"], r["samples"], r["histogram"]),
                         (False, 0, []))

    def test_unexpected_argument(self):
        q = self.migd(["-m", "16M"]).qmp()
        self.assertQMPError(q.execute("x-query-guest-probe", {"x": 1}),
                            "GenericError", "Parameter 'x' is unexpected")

    def test_content_name(self):
        q = self.migd(["-m", "16M"]).qmp()
        r = q.cmd("x-guest-workload", {"content": "probe", "dirty-rate": 1})
        self.assertEqual(r["content"], "probe")
        self.assertTrue(q.cmd("x-query-guest-probe")["active"])

    def test_fresh_ram_first_touch(self):
        """Fresh anonymous RAM: every page is missing until touched, so
        the probe records first-touch faults; it stops finding missing
        pages once all are mapped and never writes."""
        q = self.migd(["-m", "1M", "-smp", "2"]).qmp()
        q.cmd("x-guest-workload", {"content": "probe"})
        wait_for(lambda: q.cmd("x-query-guest-probe")["not-found"] > 0,
                 what="every page touched")
        r = q.cmd("x-query-guest-probe")
        self.assertEqual(r["samples"], 256, r)  # 1 MiB of 4 KiB pages
        self.assertTrue(STATS <= set(r), r)
        self.assertLessEqual(r["min-ns"], r["median-ns"])
        self.assertLessEqual(r["median-ns"], r["p99-ns"])
        self.assertLessEqual(r["p99-ns"], r["max-ns"])
        self.assertEqual(sum(b["count"] for b in r["histogram"]), 256)
        vc = q.cmd("x-guest-workload")["vcpus"]
        self.assertEqual(vc[1]["bytes-written"], 0, vc)  # vCPU 1 idles
        q.cmd("x-guest-workload", {"dirty-rate": "idle"})
        zero = self.migd(["-m", "1M"]).qmp()
        self.assertEqual(digest(q), digest(zero))
        # a new probe workload starts from zero
        q.cmd("x-guest-workload", {"content": "probe", "dirty-rate": 0.001})
        wait_for(lambda: q.cmd("x-query-guest-probe")["samples"] == 0,
                 what="statistics reset")


class ProbePostcopyTest(MigdTestCase):
    """A probe on a postcopy destination records page requests."""

    def run_probe(self, preempt):
        src = self.migd(["-m", "64M", "-smp", "2"])
        dst = self.migd(["-m", "64M", "-smp", "2", "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        for q in (qs, qd):
            set_caps(q, postcopy_ram=True, postcopy_preempt=preempt)
        qs.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                                    "content": "random", "passes": 1})
        wait_for(lambda: qs.cmd("x-guest-workload").get("finished"),
                 timeout=60, what="RAM filled")
        qs.cmd("x-guest-workload", {"dirty-rate": "idle"})
        qs.cmd("migrate-set-parameters", {"max-bandwidth": 32 << 20,
                                          "max-postcopy-bandwidth": 4 << 20})
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        time.sleep(0.3)
        qs.cmd("migrate-start-postcopy")
        wait_status(qd, ("postcopy-active",) + FINAL, 30)
        qd.cmd("x-guest-workload", {"content": "probe"})
        wait_for(lambda: qd.cmd("x-query-guest-probe")["samples"] >= 20,
                 timeout=30, what="probe samples")
        qs.cmd("migrate-set-parameters", {"max-postcopy-bandwidth": 0})
        sinfo = wait_status(qs, FINAL, 60)
        dinfo = wait_status(qd, FINAL, 60)
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.assertGreaterEqual(sinfo["ram"]["postcopy-requests"], 20)
        r = qd.cmd("x-query-guest-probe")
        self.assertTrue(r["active"])
        self.assertGreaterEqual(r["samples"], 20, r)
        # a request crosses the return path and back: well above a
        # first-touch fault, well below the test's timeouts
        self.assertGreater(r["median-ns"], 5000, r)
        self.assertLess(r["median-ns"], 10 * 10 ** 9, r)
        qd.cmd("x-guest-workload", {"dirty-rate": "idle"})
        self.assertEqual(digest(qs), digest(qd))

    def test_probe_postcopy(self):
        self.run_probe(False)

    def test_probe_postcopy_preempt(self):
        self.run_probe(True)
