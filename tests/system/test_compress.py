"""multifd compression (zlib, zstd) between two real migd processes.

Each completed migration compares x-query-ram-digest of both sides. The
content is "mixed" (1/4 zero, 1/2 random, 1/4 text-like pages), so the
stream carries compressible and incompressible pages and zero pages.
Failures: a method mismatch fails the destination with QEMU's message, and
compression cannot be combined with zero-copy-send.
"""
import re

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for
from tests.system.test_migration import digest, set_caps, set_params, wait_status

MiB = 1 << 20
ZC = "Zero copy only available for non-compressed non-TLS multifd migration"


def fill_mixed(q):
    q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                               "content": "mixed", "zero-fraction": 0.25,
                               "text-fraction": 0.25, "passes": 1})
    wait_for(lambda: q.cmd("x-guest-workload").get("finished"), timeout=60,
             what="RAM filled")
    q.cmd("x-guest-workload", {"dirty-rate": "idle"})


class CompressionTest(MigdTestCase):
    mem = "256M"

    def pair(self, channels, src_method, dst_method=None, level=None):
        src = self.migd(["-m", self.mem, "-smp", "2"])
        dst = self.migd(["-m", self.mem, "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        for q, method in ((qs, src_method), (qd, dst_method or src_method)):
            set_caps(q, events=True, multifd=True)
            set_params(q, multifd_channels=channels,
                       multifd_compression=method)
        if level is not None:
            set_params(qs, **{"multifd_%s_level" % src_method: level})
        return qs, qd, "tcp:127.0.0.1:%d" % free_tcp_port()

    def migrate(self, qs, qd, uri, timeout=180):
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        info = wait_status(qs, ("completed", "failed", "cancelled"), timeout)
        self.assertEqual(info["status"], "completed", info)
        dinfo = wait_status(qd, ("completed", "failed"), 30)
        self.assertEqual(dinfo["status"], "completed", dinfo)
        self.assertEqual(digest(qs), digest(qd))
        return info

    def run_mixed(self, method, channels, level=None):
        qs, qd, uri = self.pair(channels, method, level=level)
        fill_mixed(qs)
        info = self.migrate(qs, qd, uri)
        ram = info["ram"]
        # About half the pages are random: the wire carries a bit more
        # than that half, far less than all non-zero pages raw.
        self.assertLess(ram["multifd-bytes"], 0.65 * 256 * MiB)
        self.assertGreater(ram["multifd-bytes"], 0.45 * 256 * MiB)
        self.assertLessEqual(ram["transferred"],
                             ram["multifd-bytes"] + 4 * MiB)
        # pages, not wire bytes
        self.assertGreater(ram["normal"], 256 * MiB // 4096 // 2)
        return info

    def test_zlib_1_channel(self):
        self.run_mixed("zlib", 1)

    def test_zlib_4_channels(self):
        self.run_mixed("zlib", 4)

    def test_zstd_1_channel(self):
        self.run_mixed("zstd", 1)

    def test_zstd_4_channels(self):
        self.run_mixed("zstd", 4)

    def test_levels(self):
        # level 0: stored blocks, nothing shrinks but zero pages
        qs, qd, uri = self.pair(2, "zlib", level=0)
        fill_mixed(qs)
        info = self.migrate(qs, qd, uri)
        self.assertGreater(info["ram"]["multifd-bytes"], 0.74 * 256 * MiB)
        self.run_mixed("zlib", 2, level=9)
        self.run_mixed("zstd", 2, level=19)

    def test_live_workload(self):
        qs, qd, uri = self.pair(2, "zstd")
        fill_mixed(qs)
        qs.cmd("x-guest-workload", {"dirty-rate": 20, "pattern": "random",
                                    "content": "mixed"})
        set_params(qs, max_bandwidth=0, downtime_limit=300)
        info = self.migrate(qs, qd, uri)
        self.assertGreaterEqual(info["ram"]["dirty-sync-count"], 2)

    def mismatch(self, src_method, dst_method, want):
        qs, qd, uri = self.pair(2, src_method, dst_method)
        fill_mixed(qs)
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        dinfo = wait_status(qd, ("completed", "failed"), 60)
        self.assertEqual(dinfo["status"], "failed", dinfo)
        self.assertRegex(dinfo["error-desc"], want)
        info = wait_status(qs, ("completed", "failed", "cancelled"), 60)
        self.assertEqual(info["status"], "failed", info)

    def test_mismatch_zlib_to_none(self):
        self.mismatch("zlib", "none",
                      r"^multifd [01]: flags received 2 flags expected 0$")

    def test_mismatch_none_to_zstd(self):
        self.mismatch("none", "zstd",
                      r"^multifd [01]: flags received 0 flags expected 4$")

    def test_mismatch_zstd_to_zlib(self):
        self.mismatch("zstd", "zlib",
                      r"^multifd [01]: flags received 4 flags expected 2$")

    def test_zero_copy_refused(self):
        src = self.migd(["-m", "16M"])
        q = src.qmp()
        set_caps(q, multifd=True)
        set_params(q, multifd_compression="zstd")
        r = q.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "zero-copy-send", "state": True}]})
        self.assertQMPError(r, "GenericError", ZC)
        set_params(q, multifd_compression="none")
        set_caps(q, zero_copy_send=True)
        r = q.execute("migrate-set-parameters",
                      {"multifd-compression": "zlib"})
        self.assertQMPError(r, "GenericError", ZC)
        self.assertTrue(re.match("none", q.cmd("query-migrate-parameters")
                                 ["multifd-compression"]))
