"""Convergence controls end to end: a guest that dirties faster than the
link does not converge on its own, converges with auto-converge (the cpu
throttle rising in QEMU's steps) and with dirty-limit, and the guest's own
progress shows what it paid. Also the set/cancel/query-vcpu-dirty-limit
commands with QEMU's errors. Every completed migration is digest-checked.
"""
import time

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for
from tests.system.test_migration import digest, set_caps, set_params, wait_status

MiB = 1 << 20
GENERIC = "GenericError"


def vcpu_rates(q):
    """Bytes per second each vCPU wrote over the last second."""
    return [v["rate"] for v in q.cmd("x-guest-workload")["vcpus"]]


def guest_rate(q):
    return sum(vcpu_rates(q))


class ConvergeTest(MigdTestCase):
    mem = "128M"

    def pair(self):
        src = self.migd(["-m", self.mem, "-smp", "2"])
        dst = self.migd(["-m", self.mem, "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        set_caps(qs, events=True)
        # A pass over 128 MiB takes about a second at this rate, while
        # the unthrottled guest dirties it all many times over.
        set_params(qs, max_bandwidth=128 * MiB)
        qs.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential"})
        wait_for(lambda: guest_rate(qs) > 0, what="guest writing")
        time.sleep(1.0)  # a full rate window
        return qs, qd, "tcp:127.0.0.1:%d" % free_tcp_port()

    def start(self, qs, qd, uri):
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)

    def finish_ok(self, qs, qd):
        info = wait_status(qs, ("completed", "failed", "cancelled"), 60)
        self.assertEqual(info["status"], "completed", info)
        wait_status(qd, ("completed",), 30)
        self.assertNotIn("cpu-throttle-percentage", info)
        self.assertEqual(digest(qs), digest(qd))
        return info

    def test_no_controls_keeps_iterating(self):
        qs, qd, uri = self.pair()
        free = guest_rate(qs)
        self.start(qs, qd, uri)
        info = wait_status(qs, ("active",))
        wait_for(lambda: qs.cmd("query-migrate")["ram"]["dirty-sync-count"] >= 5,
                 timeout=30, what="5 passes")
        info = qs.cmd("query-migrate")
        self.assertEqual(info["status"], "active", info)
        self.assertNotIn("cpu-throttle-percentage", info)
        self.assertNotIn("dirty-limit-throttle-time-per-round", info)
        # Every pass is announced, in order.
        passes = [qs.wait_event("MIGRATION_PASS")["data"]["pass"]
                  for _ in range(5)]
        self.assertEqual(passes, list(range(1, 6)))
        self.assertGreater(guest_rate(qs), free * 0.5)  # not throttled
        qs.cmd("migrate_cancel")
        wait_status(qs, ("cancelled",))

    def test_auto_converge(self):
        qs, qd, uri = self.pair()
        free = guest_rate(qs)
        set_caps(qs, auto_converge=True)
        set_params(qs, cpu_throttle_initial=60, cpu_throttle_increment=20)
        self.start(qs, qd, uri)
        seen, slowed = [], None
        deadline = time.time() + 40
        while time.time() < deadline:
            info = qs.cmd("query-migrate")
            pct = info.get("cpu-throttle-percentage")
            if pct and (not seen or seen[-1] != pct):
                seen.append(pct)
            if pct == 80 and slowed is None:
                time.sleep(1.1)  # a whole rate window at 80 %
                if qs.cmd("query-migrate").get("cpu-throttle-percentage") == 80:
                    slowed = guest_rate(qs)
            if info["status"] not in ("setup", "active"):
                break
            time.sleep(0.1)
        self.finish_ok(qs, qd)
        # QEMU's steps: initial, + increment, capped at max-cpu-throttle.
        self.assertEqual(seen, [60, 80, 99][:len(seen)], seen)
        self.assertGreaterEqual(len(seen), 2, seen)
        if slowed is not None:  # 20 % of the time left to run
            self.assertLess(slowed, free * 0.4, (slowed, free))

    def test_auto_converge_cancel_lifts_throttle(self):
        qs, qd, uri = self.pair()
        free = guest_rate(qs)
        set_caps(qs, auto_converge=True)
        set_params(qs, cpu_throttle_initial=90)
        self.start(qs, qd, uri)
        wait_for(lambda: qs.cmd("query-migrate").get("cpu-throttle-percentage"),
                 timeout=30, what="throttling")
        self.assertEqual(qs.cmd("query-migrate")["cpu-throttle-percentage"], 90)
        time.sleep(1.1)
        throttled = guest_rate(qs)
        self.assertLess(throttled, free * 0.25, (throttled, free))
        self.assertTrue(all(v["throttle-ns"] == 90000001 for v in
                            qs.cmd("x-guest-workload")["vcpus"]))
        qs.cmd("migrate_cancel")
        info = wait_status(qs, ("cancelled",))
        self.assertNotIn("cpu-throttle-percentage", info)
        self.assertTrue(all(v["throttle-ns"] == 0 for v in
                            qs.cmd("x-guest-workload")["vcpus"]))
        time.sleep(1.1)
        self.assertGreater(guest_rate(qs), free * 0.6)  # recovered

    def test_dirty_limit(self):
        qs, qd, uri = self.pair()
        set_caps(qs, dirty_limit=True)
        set_params(qs, vcpu_dirty_limit=30, x_vcpu_dirty_limit_period=250)
        self.start(qs, qd, uri)
        wait_for(lambda: qs.cmd("query-vcpu-dirty-limit"), timeout=30,
                 what="dirty limit applied")
        limits = qs.cmd("query-vcpu-dirty-limit")
        self.assertEqual([(x["cpu-index"], x["limit-rate"]) for x in limits],
                         [(0, 30), (1, 30)])
        info = qs.cmd("query-migrate")
        if info["status"] == "active":
            self.assertIn("dirty-limit-throttle-time-per-round", info)
            self.assertIn("dirty-limit-ring-full-time", info)
            # The migration owns the limits while it runs.
            self.assertQMPError(
                qs.execute("set-vcpu-dirty-limit", {"dirty-rate": 100}),
                GENERIC, "can't set dirty page rate limit while migration "
                "is running")
            self.assertQMPError(
                qs.execute("cancel-vcpu-dirty-limit"), GENERIC,
                "can't cancel dirty page rate limit while migration is "
                "running")
        self.finish_ok(qs, qd)
        # Lifted with the migration.
        wait_for(lambda: qs.cmd("query-vcpu-dirty-limit") == [],
                 what="limits lifted")
        self.assertNotIn("dirty-limit-ring-full-time", qs.cmd("query-migrate"))

    def test_caps_conflict(self):
        src = self.migd(["-m", "16M"])
        q = src.qmp()
        self.assertQMPError(
            q.execute("migrate-set-capabilities", {"capabilities": [
                {"capability": "auto-converge", "state": True},
                {"capability": "dirty-limit", "state": True}]}),
            GENERIC, "dirty-limit conflicts with auto-converge either of "
            "then available currently")


class DirtyLimitCommandsTest(MigdTestCase):
    def test_errors(self):
        q = self.migd(["-m", "16M", "-smp", "2"]).qmp()
        self.assertEqual(q.cmd("query-vcpu-dirty-limit"), [])
        for idx in (2, -1, 1 << 40):
            self.assertQMPError(
                q.execute("set-vcpu-dirty-limit",
                          {"cpu-index": idx, "dirty-rate": 10}),
                GENERIC, "incorrect cpu index specified")
            self.assertQMPError(
                q.execute("cancel-vcpu-dirty-limit", {"cpu-index": idx}),
                GENERIC, "incorrect cpu index specified")
        self.assertQMPError(q.execute("set-vcpu-dirty-limit", {}),
                            GENERIC, "Parameter 'dirty-rate' is missing")
        self.assertQMPError(
            q.execute("set-vcpu-dirty-limit", {"cpu-index": 5}),
            GENERIC, "Parameter 'dirty-rate' is missing")
        self.assertQMPError(
            q.execute("set-vcpu-dirty-limit", {"dirty-rate": "x"}),
            GENERIC, "Parameter 'dirty-rate' expects uint64")
        self.assertQMPError(
            q.execute("set-vcpu-dirty-limit",
                      {"cpu-index": "0", "dirty-rate": 1}),
            GENERIC, "Invalid parameter type for 'cpu-index', expected: "
            "integer")
        self.assertQMPError(
            q.execute("cancel-vcpu-dirty-limit", {"cpu": 0}),
            GENERIC, "Parameter 'cpu' is unexpected")
        self.assertQMPError(
            q.execute("query-vcpu-dirty-limit", {"cpu-index": 0}),
            GENERIC, "Parameter 'cpu-index' is unexpected")
        q.cmd("cancel-vcpu-dirty-limit")  # nothing to cancel: fine
        self.assertEqual(q.cmd("query-vcpu-dirty-limit"), [])

    def test_set_query_cancel(self):
        q = self.migd(["-m", "128M", "-smp", "2"]).qmp()
        q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential"})
        time.sleep(1.1)
        free = vcpu_rates(q)
        q.cmd("set-vcpu-dirty-limit", {"cpu-index": 1, "dirty-rate": 50})
        limits = q.cmd("query-vcpu-dirty-limit")
        self.assertEqual([(x["cpu-index"], x["limit-rate"]) for x in limits],
                         [(1, 50)])
        time.sleep(3.0)  # measured once a second, then settled
        limited = vcpu_rates(q)
        # Only the limited vCPU is slowed, to about its quota (QEMU stops
        # adjusting within 25 MB/s).
        self.assertLess(limited[1], 100 * MiB, limited)
        self.assertGreater(limited[0], free[0] * 0.6, (limited, free))
        # The controller settles within QEMU's 25 MB/s tolerance; on a busy
        # machine that can take a few more periods.
        wait_for(lambda: q.cmd("query-vcpu-dirty-limit")[0]["current-rate"]
                 < 100, timeout=15, what="current-rate below 100 MB/s")
        q.cmd("set-vcpu-dirty-limit", {"dirty-rate": 40})
        self.assertEqual([(x["cpu-index"], x["limit-rate"])
                          for x in q.cmd("query-vcpu-dirty-limit")],
                         [(0, 40), (1, 40)])
        q.cmd("cancel-vcpu-dirty-limit", {"cpu-index": 0})
        self.assertEqual([x["cpu-index"]
                          for x in q.cmd("query-vcpu-dirty-limit")], [1])
        q.cmd("set-vcpu-dirty-limit", {"cpu-index": 1, "dirty-rate": 0})
        self.assertEqual(q.cmd("query-vcpu-dirty-limit"), [])
        time.sleep(1.5)
        self.assertGreater(vcpu_rates(q)[1], free[1] * 0.6)  # recovered

    def test_idle_vcpus_not_penalised(self):
        q = self.migd(["-m", "16M", "-smp", "2"]).qmp()
        q.cmd("set-vcpu-dirty-limit", {"dirty-rate": 1})
        time.sleep(1.2)
        self.assertEqual([x["current-rate"]
                          for x in q.cmd("query-vcpu-dirty-limit")], [0, 0])
        self.assertEqual(q.cmd("x-guest-workload")["vcpus"][0]["throttle-ns"], 0)
        q.cmd("cancel-vcpu-dirty-limit")
        self.assertEqual(q.cmd("query-vcpu-dirty-limit"), [])


if __name__ == "__main__":
    import unittest
    unittest.main()
