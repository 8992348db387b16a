"""calc-dirty-rate / query-dirty-rate against real migd processes.

Accuracy: the guest writes whole 4 KiB pages of random data, sequentially,
at a configured rate over all of RAM. The window (rate x calc-time) is kept
well below the RAM size, so no page is written twice within a window: every
mode's count of distinct dirty pages per second is then the configured
rate (MiB/s), and page-sampling sees every written page change (random
content). page-sampling's estimate is binomial: with 16384 samples per GiB
and ~30-40 % of RAM written per window the relative standard deviation is
under 3 %, so 10 % is > 3 sigma. If the shared machine cannot give the
vCPUs their configured rate (measured from the vCPUs' own byte counters
over the window), the check is made against what they really wrote.
"""
import time

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for

MODES = ("dirty-bitmap", "dirty-ring", "page-sampling")


def fill(q):
    q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                               "passes": 1})
    wait_for(lambda: q.cmd("x-guest-workload").get("finished"), timeout=60,
             what="RAM filled")


def written(q):
    return sum(c["bytes-written"] for c in q.cmd("x-guest-workload")["vcpus"])


def measure(q, args):
    q.cmd("calc-dirty-rate", args)
    wait_for(lambda: q.cmd("query-dirty-rate")["status"] == "measured",
             timeout=70, what="measured")
    return q.cmd("query-dirty-rate", {"calc-time-unit": "millisecond"})


class DirtyRateTest(MigdTestCase):
    def guest(self, mem, rate):
        m = self.migd(["-m", mem, "-smp", "2"])
        q = m.qmp()
        fill(q)
        q.cmd("x-guest-workload", {"dirty-rate": rate, "pattern": "sequential",
                                   "content": "random", "write-size": 4096})
        time.sleep(0.3)  # the token buckets settle
        return q

    def check_rate(self, q, rate, ms):
        for mode in MODES:
            args = {"calc-time": ms, "calc-time-unit": "millisecond",
                    "mode": mode}
            if mode == "page-sampling":
                args["sample-pages"] = 16384
            t0, b0 = time.monotonic(), written(q)
            info = measure(q, args)
            actual = (written(q) - b0) / (time.monotonic() - t0) / (1 << 20)
            want = rate if abs(actual - rate) <= 0.05 * rate else actual
            self.assertLessEqual(abs(info["dirty-rate"] - want), 0.10 * want,
                                 "%s: measured %s, configured %s, vCPUs wrote "
                                 "%.1f MiB/s" % (mode, info["dirty-rate"],
                                                 rate, actual))
            self.assertGreaterEqual(info["calc-time"], ms)
            self.assertEqual(info["mode"], mode)
            if mode == "dirty-ring":
                vr = info["vcpu-dirty-rate"]
                self.assertEqual([v["id"] for v in vr], [0, 1])
                self.assertEqual(sum(v["dirty-rate"] for v in vr),
                                 info["dirty-rate"])
                for v in vr:  # each vCPU writes half of the rate
                    self.assertLessEqual(abs(v["dirty-rate"] - want / 2),
                                         0.10 * want / 2, vr)
                self.assertEqual(info["sample-pages"], 0)
            elif mode == "dirty-bitmap":
                self.assertEqual(info["sample-pages"], 0)
                self.assertNotIn("vcpu-dirty-rate", info)
            else:
                self.assertEqual(info["sample-pages"], 16384)

    def test_rate_20(self):
        self.check_rate(self.guest("128M", 20), 20, 2000)  # 40 of 128 MiB

    def test_rate_80(self):
        self.check_rate(self.guest("256M", 80), 80, 1000)  # 80 of 256 MiB

    def test_rate_200(self):
        self.check_rate(self.guest("512M", 200), 200, 1000)  # 200 of 512

    def test_idle_and_fields(self):
        q = self.migd(["-m", "64M"]).qmp()
        self.assertEqual(q.cmd("query-dirty-rate"), {
            "status": "unstarted", "start-time": 0, "calc-time": 0,
            "calc-time-unit": "second", "sample-pages": 0,
            "mode": "page-sampling"})
        q.cmd("calc-dirty-rate", {"calc-time": 1})
        info = q.cmd("query-dirty-rate")
        self.assertEqual(info["status"], "measuring")
        self.assertEqual((info["calc-time"], info["sample-pages"],
                          info["mode"]), (1, 512, "page-sampling"))
        self.assertNotIn("dirty-rate", info)
        self.assertLessEqual(abs(info["start-time"] - time.time()), 5)
        r = q.execute("calc-dirty-rate", {"calc-time": 1})
        self.assertQMPError(r, "GenericError",
                            "the dirty rate is already being measured.")
        wait_for(lambda: q.cmd("query-dirty-rate")["status"] == "measured",
                 timeout=5)
        info = q.cmd("query-dirty-rate")
        self.assertEqual(info["dirty-rate"], 0)  # idle guest
        self.assertEqual(info["calc-time"], 1)
        info = measure(q, {"calc-time": 60, "calc-time-unit": "millisecond",
                           "mode": "dirty-ring"})
        self.assertGreaterEqual(info["calc-time"], 60)
        self.assertEqual(q.cmd("query-dirty-rate")["calc-time"], 0)
        self.assertEqual(info["vcpu-dirty-rate"], [{"id": 0, "dirty-rate": 0}])

    def test_errors(self):
        q = self.migd(["-m", "64M"]).qmp()
        cases = [
            ({}, "Parameter 'calc-time' is missing"),
            ({"calc-time": "1"}, "Invalid parameter type for 'calc-time', expected: integer"),
            ({"calc-time": 0}, "Calculation time is out of range [50ms, 60000ms]."),
            ({"calc-time": 61}, "Calculation time is out of range [50ms, 60000ms]."),
            ({"calc-time": 49, "calc-time-unit": "millisecond"},
             "Calculation time is out of range [50ms, 60000ms]."),
            ({"calc-time": 1 << 62},
             "Calculation time is out of range [50ms, 60000ms]."),
            ({"calc-time": 1, "calc-time-unit": "minute"},
             "Parameter 'calc-time-unit' does not accept value 'minute'"),
            ({"calc-time": 1, "mode": "dirty-bitmap", "sample-pages": 512},
             "sample-pages is used only in page-sampling mode"),
            ({"calc-time": 1, "sample-pages": 127},
             "sample-pages is out of range[128, 16384]."),
            ({"calc-time": 1, "sample-pages": 16385},
             "sample-pages is out of range[128, 16384]."),
            ({"calc-time": 1, "mode": "ring"},
             "Parameter 'mode' does not accept value 'ring'"),
            ({"calc-time": 1, "bogus": 1}, "Parameter 'bogus' is unexpected"),
        ]
        for args, desc in cases:
            self.assertQMPError(q.execute("calc-dirty-rate", args),
                                "GenericError", desc)
        self.assertQMPError(q.execute("query-dirty-rate", {"calc-time-unit": 1}),
                            "GenericError",
                            "Invalid parameter type for 'calc-time-unit', expected: string")
        self.assertEqual(q.cmd("query-dirty-rate")["status"], "unstarted")

    def test_during_migration(self):
        """A measurement in every mode while a migration runs: the
        migration's own dirty log is untouched, so it still completes with
        the destination's RAM equal to the source's."""
        src = self.migd(["-m", "256M", "-smp", "2"])
        dst = self.migd(["-m", "256M", "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        fill(qs)
        qs.cmd("x-guest-workload", {"dirty-rate": 40, "pattern": "random",
                                    "content": "random"})
        qs.cmd("migrate-set-parameters", {"max-bandwidth": 64 << 20})
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        for mode in ("dirty-bitmap", "dirty-ring", "page-sampling"):
            info = measure(qs, {"calc-time": 300, "calc-time-unit": "millisecond",
                                "mode": mode})
            self.assertGreater(info["dirty-rate"], 0, info)
        self.assertEqual(qs.cmd("query-migrate")["status"], "active")
        qs.cmd("migrate-set-parameters", {"max-bandwidth": 0})
        wait_for(lambda: qs.cmd("query-migrate")["status"] in
                 ("completed", "failed"), timeout=60)
        self.assertEqual(qs.cmd("query-migrate")["status"], "completed")
        wait_for(lambda: qd.cmd("query-migrate").get("status") == "completed",
                 timeout=30)
        self.assertEqual(qs.cmd("x-query-ram-digest"),
                         qd.cmd("x-query-ram-digest"))
