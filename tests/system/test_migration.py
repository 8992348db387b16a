"""Live migration between two real migd processes over real sockets.

Every test that completes a migration compares x-query-ram-digest of both
sides: the destination's RAM must equal the source's, byte for byte.
"""
import os
import threading
import time

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for

MiB = 1 << 20


def fill(q, content="random"):
    """Writes every page exactly once with the given content (one pass of
    the whole RAM), then goes idle."""
    q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                               "content": content, "passes": 1})
    wait_for(lambda: q.cmd("x-guest-workload").get("finished"), timeout=60,
             what="RAM filled")
    q.cmd("x-guest-workload", {"dirty-rate": "idle"})


def total_ram(q):
    return sum(b["size"] for b in q.cmd("x-query-ram-digest"))


def digest(q):
    return [(b["block"], b["digest"]) for b in q.cmd("x-query-ram-digest")]


def wait_status(q, statuses, timeout=120):
    last = {}

    def done():
        nonlocal last
        last = q.cmd("query-migrate")
        return last.get("status") in statuses
    try:
        wait_for(done, timeout=timeout,
                 what="migration status in %s" % (statuses,))
    except TimeoutError:
        raise TimeoutError("still %s" % last)
    return last


def set_caps(q, **caps):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v} for k, v in caps.items()])


def set_params(q, **params):
    q.cmd("migrate-set-parameters", {k.replace("_", "-"): v for k, v in params.items()})


def thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return "never"


def anon_huge_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    return 0


class MigrationTest(MigdTestCase):
    mem = "256M"

    def pair(self, transport="tcp", src_args=(), dst_args=(), channels=0,
             dst_defer=True):
        src = self.migd(["-m", self.mem, "-smp", "2"] + list(src_args))
        if transport == "tcp":
            uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        else:
            uri = "unix:%s/mig.sock" % src.tmpdir
        dst = self.migd(["-m", self.mem, "-incoming", "defer"] + list(dst_args))
        qs, qd = src.qmp(), dst.qmp()
        for q in (qs, qd):
            set_caps(q, events=True)
            if channels:
                set_caps(q, multifd=True)
                set_params(q, multifd_channels=channels)
        return src, dst, qs, qd, uri

    def migrate(self, qs, qd, uri, timeout=120):
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        info = wait_status(qs, ("completed", "failed", "cancelled"), timeout)
        self.assertEqual(info["status"], "completed", info)
        wait_status(qd, ("completed", "failed"), 30)
        return info

    def check_same_ram(self, qs, qd):
        self.assertEqual(digest(qs), digest(qd))

    def run_case(self, transport="tcp", channels=0, content="random", **kw):
        src, dst, qs, qd, uri = self.pair(transport, channels=channels, **kw)
        fill(qs, content)
        info = self.migrate(qs, qd, uri)
        self.check_same_ram(qs, qd)
        self.assertEqual(qs.cmd("query-status")["status"], "postmigrate")
        self.assertEqual(qd.cmd("query-status")["status"], "running")
        return info, qs, qd

    # --- the matrix of the issue: transports x channels x content ---

    def test_single_stream_tcp_random(self):
        info, _, _ = self.run_case("tcp", 0, "random")
        ram = info["ram"]
        self.assertEqual(ram["total"], 256 * MiB)
        self.assertGreaterEqual(ram["normal"], 256 * MiB // 4096)
        self.assertEqual(ram["multifd-bytes"], 0)
        self.assertGreater(ram["transferred"], 256 * MiB)

    def test_single_stream_unix_zero(self):
        info, _, _ = self.run_case("unix", 0, "zero")
        self.assertGreaterEqual(info["ram"]["duplicate"], 256 * MiB // 4096)
        self.assertLess(info["ram"]["transferred"], 4 * MiB)

    def test_multifd_1_tcp_mixed(self):
        self.run_case("tcp", 1, "mixed")

    def test_multifd_2_unix_random(self):
        info, _, _ = self.run_case("unix", 2, "random")
        self.assertGreater(info["ram"]["multifd-bytes"], 256 * MiB)

    def test_multifd_4_tcp_zero(self):
        info, _, _ = self.run_case("tcp", 4, "zero")
        self.assertGreaterEqual(info["ram"]["duplicate"], 256 * MiB // 4096)

    def test_multifd_8_tcp_random(self):
        self.run_case("tcp", 8, "random")

    # --- x-thp: the destination's page size never changes what lands ---

    def thp_case(self, mode, channels, content):
        ram = ["-object", "memory-backend-ram,id=ram,size=%s,x-thp=%s" % (self.mem, mode),
               "-machine", "memory-backend=ram"]
        self.run_case("tcp", channels, content, dst_args=ram)
        return self._procs[-1].proc.pid  # the destination

    def test_thp_auto_single_stream_and_multifd(self):
        for channels, content in ((0, "random"), (2, "mixed"), (4, "random")):
            with self.subTest(channels=channels, content=content):
                pid = self.thp_case("auto", channels, content)
                if thp_mode() in ("madvise", "always"):
                    # the policy's first region is always a huge-page probe
                    self.assertGreater(anon_huge_kib(pid), 0)

    def test_thp_on_and_off(self):
        self.thp_case("on", 2, "random")
        pid = self.thp_case("off", 2, "random")
        if thp_mode() == "madvise":
            self.assertEqual(anon_huge_kib(pid), 0)

    def test_multifd_legacy_zero_detection(self):
        src, dst, qs, qd, uri = self.pair("tcp", channels=2)
        set_params(qs, zero_page_detection="legacy")
        fill(qs, "mixed")
        self.migrate(qs, qd, uri)
        self.check_same_ram(qs, qd)

    def test_multifd_zero_detection_none(self):
        src, dst, qs, qd, uri = self.pair("unix", channels=2)
        set_params(qs, zero_page_detection="none")
        fill(qs, "mixed")
        info = self.migrate(qs, qd, uri)
        self.check_same_ram(qs, qd)
        # every page travels with its data, zero or not
        self.assertEqual(info["ram"]["duplicate"], 0)
        self.assertGreaterEqual(info["ram"]["normal"], 256 * MiB // 4096)

    def test_one_gib_multifd_4(self):
        self.mem = "1G"
        info, _, _ = self.run_case("tcp", 4, "random")
        self.assertEqual(info["ram"]["total"], 1 << 30)

    def test_multifd_flush_after_each_section(self):
        knob = ["-global", "migration.multifd-flush-after-each-section=on"]
        src, dst, qs, qd, uri = self.pair("tcp", src_args=knob, dst_args=knob,
                                          channels=3)
        fill(qs, "random")
        self.migrate(qs, qd, uri)
        self.check_same_ram(qs, qd)

    def test_channels_form_ipv6(self):
        src, dst, qs, qd, _ = self.pair("tcp", channels=2)
        port = free_tcp_port()
        fill(qs, "text")
        addr = {"transport": "socket", "type": "inet", "host": "::1",
                "port": str(port)}
        qd.cmd("migrate-incoming", channels=[{"channel-type": "main", "addr": addr}])
        qs.cmd("migrate", channels=[{"channel-type": "main", "addr": addr}])
        info = wait_status(qs, ("completed", "failed"))
        self.assertEqual(info["status"], "completed", info)
        wait_status(qd, ("completed",))
        self.check_same_ram(qs, qd)

    # --- live: the guest writes during the migration ---

    def test_live_dirtying_converges(self):
        src, dst, qs, qd, uri = self.pair("tcp", channels=2)
        fill(qs, "random")
        qs.cmd("x-guest-workload", {"dirty-rate": 20, "pattern": "random",
                                    "content": "random"})
        set_params(qs, max_bandwidth=0, downtime_limit=300)
        info = self.migrate(qs, qd, uri)
        self.assertGreaterEqual(info["ram"]["dirty-sync-count"], 2)
        # The source is stopped (postmigrate): its RAM is what was sent.
        self.check_same_ram(qs, qd)

    def test_live_writes_to_unpopulated_ram(self):
        # The bulk round skips pages that were never populated (they are
        # zero); pages the guest populates during the migration must still
        # arrive with their data.
        for channels in (0, 2):
            with self.subTest(channels=channels):
                src, dst, qs, qd, uri = self.pair("tcp", channels=channels)
                set_params(qs, max_bandwidth=0)
                qs.cmd("x-guest-workload", {"dirty-rate": 50, "pattern": "random",
                                            "content": "random"})
                time.sleep(0.2)
                self.migrate(qs, qd, uri)
                self.check_same_ram(qs, qd)
                for m in (src, dst):
                    self.assertEqual(m.stop(), 0)

    def test_sparse_file_backed_source(self):
        # Holes of a shared file-backed block are skipped as zero in the
        # bulk round; written pages (by the file's writer before, and by
        # the guest during the migration) must arrive with their data.
        import random
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            "migd-sparse-%d.ram" % os.getpid())
        size = 64 * MiB
        rng = random.Random(7)
        with open(path, "wb") as f:
            f.truncate(size)
            for _ in range(300):
                f.seek(rng.randrange(size // 4096) * 4096)
                f.write(rng.randbytes(4096))
        try:
            mem = ["-object", "memory-backend-file,id=ram0,size=64M,mem-path=%s,"
                   "share=on" % path, "-machine", "memory-backend=ram0", "-smp", "2"]
            src = self.migd(mem)
            dst = self.migd(["-object", "memory-backend-ram,id=ram0,size=64M",
                             "-machine", "memory-backend=ram0", "-incoming", "defer"])
            qs, qd = src.qmp(), dst.qmp()
            for q in (qs, qd):
                set_caps(q, multifd=True)
                set_params(q, multifd_channels=2)
            set_params(qs, max_bandwidth=0)
            qs.cmd("x-guest-workload", {"dirty-rate": 20, "pattern": "random",
                                        "content": "random"})
            uri = "tcp:127.0.0.1:%d" % free_tcp_port()
            self.migrate(qs, qd, uri)
            self.check_same_ram(qs, qd)
        finally:
            os.unlink(path)

    def test_events_and_statuses(self):
        src, dst, qs, qd, uri = self.pair("tcp")
        self.migrate(qs, qd, uri)
        seen = [e["data"]["status"] for e in qs.events if e["event"] == "MIGRATION"]
        # the completed event may still be in flight
        if seen[-1:] != ["completed"]:
            qs.wait_event("MIGRATION", pred=lambda e: e["data"]["status"] == "completed")
            seen.append("completed")
        self.assertEqual(seen, ["setup", "active", "completed"])
        passes = [e["data"]["pass"] for e in qs.events if e["event"] == "MIGRATION_PASS"]
        self.assertEqual(passes[:1], [1])
        self.assertEqual(passes, sorted(passes))
        stops = [e for e in qs.events if e["event"] == "STOP"]
        self.assertEqual(len(stops), 1)
        dseen = [e["data"]["status"] for e in qd.events if e["event"] == "MIGRATION"]
        self.assertEqual(dseen[:2], ["setup", "active"])

    def test_query_migrate_fields(self):
        src, dst, qs, qd, uri = self.pair("tcp", channels=2)
        fill(qs, "random")
        set_params(qs, max_bandwidth=64 * MiB)
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        wait_for(lambda: qs.cmd("query-migrate").get("status") == "active")
        time.sleep(0.5)
        info = qs.cmd("query-migrate")
        for key in ("total-time", "setup-time", "expected-downtime", "ram"):
            self.assertIn(key, info)
        ram = info["ram"]
        for key in ("transferred", "remaining", "total", "duplicate", "normal",
                    "normal-bytes", "dirty-pages-rate", "mbps", "dirty-sync-count",
                    "page-size", "multifd-bytes", "pages-per-second",
                    "precopy-bytes", "downtime-bytes"):
            self.assertIn(key, ram)
        self.assertGreater(ram["remaining"], 0)
        # max-bandwidth is honoured: 64 MiB/s is about 537 Mbit/s
        self.assertLess(ram["mbps"], 64 * 8 * 1.25 * 1.048576)
        threads = qs.cmd("query-migrationthreads")
        names = [t["name"] for t in threads]
        self.assertIn("live_migration", names)
        self.assertIn("mig/src/send_0", names)
        set_params(qs, max_bandwidth=0)
        info = wait_status(qs, ("completed", "failed"))
        self.assertEqual(info["status"], "completed")
        self.assertIn("downtime", info)
        # mandatory members: 0 once completed, as QEMU shows them
        self.assertEqual(info["ram"]["remaining"], 0)
        self.assertEqual(info["ram"]["dirty-pages-rate"], 0)
        wait_status(qd, ("completed",))
        self.check_same_ram(qs, qd)

    def test_pause_before_switchover(self):
        src, dst, qs, qd, uri = self.pair("tcp")
        set_caps(qs, pause_before_switchover=True)
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        wait_status(qs, ("pre-switchover",))
        r = qs.execute("migrate-continue", {"state": "active"})
        self.assertQMPError(r, "GenericError",
                            "Migration not in expected state: pre-switchover")
        qs.cmd("migrate-continue", state="pre-switchover")
        info = wait_status(qs, ("completed", "failed"))
        self.assertEqual(info["status"], "completed")
        seen = [e["data"]["status"] for e in qs.events if e["event"] == "MIGRATION"]
        self.assertIn("device", seen)
        wait_status(qd, ("completed",))
        self.check_same_ram(qs, qd)


class MigrationFailureTest(MigdTestCase):
    def slow_pair(self, channels=2):
        src = self.migd(["-m", "256M", "-smp", "2"])
        port = free_tcp_port()
        uri = "tcp:127.0.0.1:%d" % port
        dst = self.migd(["-m", "256M", "-incoming", "defer"])
        qs = src.qmp()
        qd = dst.qmp()
        if channels:
            for q in (qs, qd):
                set_caps(q, multifd=True)
                set_params(q, multifd_channels=channels)
        qd.cmd("migrate-incoming", uri=uri)
        fill(qs, "random")
        set_params(qs, max_bandwidth=32 * MiB)
        return src, dst, qs, qd, uri

    def test_cancel_active_then_migrate_again(self):
        src, dst, qs, qd, uri = self.slow_pair()
        before = digest(qs)
        qs.cmd("migrate", uri=uri)
        wait_for(lambda: qs.cmd("query-migrate").get("status") == "active")
        time.sleep(0.3)
        qs.cmd("migrate_cancel")
        info = wait_status(qs, ("cancelled", "failed", "completed"))
        self.assertEqual(info["status"], "cancelled")
        self.assertEqual(qs.cmd("query-status")["status"], "running")
        self.assertEqual(digest(qs), before)   # RAM intact, guest idle
        # a fresh destination takes the guest
        uri2 = "tcp:127.0.0.1:%d" % free_tcp_port()
        dst2 = self.migd(["-m", "256M", "-incoming", "defer"])
        qd2 = dst2.qmp()
        for q in (qd2,):
            set_caps(q, multifd=True)
            set_params(q, multifd_channels=2)
        qd2.cmd("migrate-incoming", uri=uri2)
        set_params(qs, max_bandwidth=0)
        qs.cmd("migrate", uri=uri2)
        info = wait_status(qs, ("completed", "failed", "cancelled"))
        self.assertEqual(info["status"], "completed", info)
        wait_status(qd2, ("completed",))
        self.assertEqual(digest(qd2), before)

    def test_cancel_in_setup_and_pre_switchover(self):
        src, dst, qs, qd, uri = self.slow_pair(channels=0)
        set_caps(qs, pause_before_switchover=True)
        set_params(qs, max_bandwidth=0)
        qs.cmd("migrate", uri=uri)
        wait_status(qs, ("pre-switchover",))
        qs.cmd("migrate_cancel")
        info = wait_status(qs, ("cancelled", "failed"))
        self.assertEqual(info["status"], "cancelled")
        self.assertEqual(qs.cmd("query-status")["status"], "running")
        # cancel while connecting (nobody listens): never hangs
        qs.cmd("migrate", uri="tcp:127.0.0.1:%d" % free_tcp_port())
        qs.cmd("migrate_cancel")
        info = wait_status(qs, ("cancelled", "failed"))
        self.assertIn(info["status"], ("cancelled", "failed"))
        self.assertEqual(qs.cmd("query-status")["status"], "running")

    def test_destination_killed(self):
        src, dst, qs, qd, uri = self.slow_pair()
        before = digest(qs)
        qs.cmd("migrate", uri=uri)
        wait_for(lambda: qs.cmd("query-migrate").get("status") == "active")
        time.sleep(0.3)
        dst.proc.kill()
        dst.proc.wait()
        info = wait_status(qs, ("failed", "completed", "cancelled"), 60)
        self.assertEqual(info["status"], "failed")
        self.assertTrue(info.get("error-desc"), info)
        self.assertEqual(qs.cmd("query-status")["status"], "running")
        self.assertEqual(digest(qs), before)
        dst.proc = None   # already reaped

    def test_connection_refused(self):
        src = self.migd(["-m", "64M"])
        qs = src.qmp()
        port = free_tcp_port()
        qs.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        info = wait_status(qs, ("failed", "completed"))
        self.assertEqual(info["status"], "failed")
        self.assertIn("Connection refused", info["error-desc"])
        self.assertEqual(qs.cmd("query-status")["status"], "running")

    def test_migrate_argument_errors(self):
        src = self.migd(["-m", "64M"])
        qs = src.qmp()
        r = qs.execute("migrate", {})
        self.assertQMPError(r, "GenericError", "need either 'uri' or 'channels' argument")
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "channels": []})
        self.assertQMPError(r, "GenericError",
                            "'uri' and 'channels' arguments are mutually exclusive; "
                            "exactly one of the two should be present in 'migrate' "
                            "qmp command ")
        r = qs.execute("migrate", {"uri": "bogus:x"})
        self.assertQMPError(r, "GenericError", "unknown migration protocol: bogus:x")
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "blk": True})
        self.assertEqual(r["error"]["class"], "GenericError")
        r = qs.execute("migrate-continue", {"state": "pre-switchover"})
        self.assertQMPError(r, "GenericError", "Migration not in expected state: none")


if __name__ == "__main__":
    import unittest
    unittest.main()
