"""Side by side: the same migration run QEMU -> QEMU (the reference) and
with migd on one end, for both QEMU versions and the four runstate
combinations (source prelaunch or running, destination with or without -S).
The migd end must show what the QEMU end showed: event sequence, runstates
before and after, query-migrate on the destination, RAM.

Normalised before comparing source traces: MIGRATION_PASS events (how many
dirty syncs happen depends on timing; they must count 1..n with n =
dirty-sync-count) and QEMU 10.0's MIGRATION "device" status (10.0 passes
through it on every switchover; 9.0, whose QAPI migd implements, only with
pause-before-switchover).
"""
import os
import time
import unittest

from tests.interop.qemutest import (COMPAT_72_GLOBALS, FINAL, MiB,
                                    InteropTestCase, event_trace,
                                    file_sha256, full_run, migd_digest,
                                    migd_machine_args, qemu_binary, set_caps,
                                    wait_status)

SIZE = 32 * MiB
COMBOS = [(False, False), (False, True), (True, False), (True, True)]


class ParityTest(InteropTestCase):

    def side(self, kind, version, incoming, paused):
        """(process, QMP, ram sha256 getter) of one end."""
        if kind == "qemu":
            qm = self.qemu(version, SIZE, incoming=incoming, paused=paused)
            qm.start()
            return qm, qm.q, lambda: file_sha256(qm.ram_path)
        args = migd_machine_args(SIZE, None, paused, incoming)
        if version == "7.2":
            args += COMPAT_72_GLOBALS
        tmpdir = os.path.join(self.tmpdir, "migd%d" % len(self._procs))
        os.mkdir(tmpdir)
        m = self.migd(args, tmpdir=tmpdir)
        q = m.qmp()
        return m, q, lambda: migd_digest(q)["ram0"]

    def observe(self, version, src_kind, dst_kind, src_running, dst_paused):
        _, qs, src_ram = self.side(src_kind, version, False, not src_running)
        _, qd, dst_ram = self.side(dst_kind, version, True, dst_paused)
        for q in (qs, qd):
            set_caps(q, events=True)
        if src_kind == "migd" and version == "7.2":
            qs.cmd("migrate-set-parameters", {"zero-page-detection": "legacy"})
        obs = {"src before": qs.cmd("query-status")["status"],
               "dst before": qd.cmd("query-status")["status"]}
        uri = "unix:%s/mig%d.sock" % (self.tmpdir, len(self._procs) +
                                      len(self._qemus))
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        sinfo = wait_status(qs, FINAL, 60, "source")
        obs["dst query-migrate"] = wait_status(qd, FINAL, 60, "destination")
        time.sleep(0.2)  # the last events
        obs["src status"] = sinfo["status"]
        obs["src after"] = qs.cmd("query-status")["status"]
        obs["dst after"] = qd.cmd("query-status")["status"]
        obs["dst events"] = event_trace(qd)
        trace = event_trace(qs)
        passes = [int(e.split()[1]) for e in trace if e.startswith("MIGRATION_PASS")]
        self.assertEqual(passes, list(range(1, len(passes) + 1)), trace)
        self.assertEqual(len(passes), sinfo["ram"]["dirty-sync-count"], trace)
        obs["src events"] = [e for e in trace if not e.startswith("MIGRATION_PASS")
                             and e != "MIGRATION device"]
        obs["same RAM"] = src_ram() == dst_ram()
        return obs

    def check_version(self, version):
        if not qemu_binary(version):
            self.skipTest("QEMU %s not found" % version)
        for src_running, dst_paused in COMBOS:
            with self.subTest(src_running=src_running, dst_paused=dst_paused):
                ref = self.observe(version, "qemu", "qemu", src_running, dst_paused)
                self.assertTrue(ref["same RAM"], ref)
                to_migd = self.observe(version, "qemu", "migd", src_running,
                                       dst_paused)
                for key in ("dst before", "dst after", "dst events",
                            "dst query-migrate", "same RAM"):
                    self.assertEqual(to_migd[key], ref[key],
                                     "%s (QEMU %s -> migd)" % (key, version))
                from_migd = self.observe(version, "migd", "qemu", src_running,
                                         dst_paused)
                for key in ("src before", "src after", "src events",
                            "src status", "dst after", "same RAM"):
                    self.assertEqual(from_migd[key], ref[key],
                                     "%s (migd -> QEMU %s)" % (key, version))

    def test_parity_qemu100(self):
        self.check_version("10.0")

    def test_parity_qemu72(self):
        self.check_version("7.2")


class ErrorParityTest(InteropTestCase):
    """A migration the destination must refuse: QEMU as the destination
    prints why and exits; migd as the destination must fail with the same
    words in query-migrate's error-desc, and the QEMU source must see the
    same as with a QEMU destination."""

    def refused(self, version, dst_kind, dst_size, dst_block="ram0"):
        src = self.qemu(version, SIZE, paused=False).start()
        if dst_kind == "qemu":
            dst = self.qemu(version, dst_size, incoming=True, paused=False)
            dst.args = [a.replace("ram0", dst_block) for a in dst.args]
            qd = dst.start().q
        else:
            args = migd_machine_args(dst_size, None, False, True)
            args = [a.replace("ram0", dst_block) for a in args]
            tmpdir = os.path.join(self.tmpdir, "migd%d" % len(self._procs))
            os.mkdir(tmpdir)
            qd = self.migd(args, tmpdir=tmpdir).qmp()
        uri = "unix:%s/mig%d.sock" % (self.tmpdir, len(self._qemus))
        qd.cmd("migrate-incoming", uri=uri)
        src.q.cmd("migrate", uri=uri)
        sinfo = wait_status(src.q, FINAL, 60, "source")
        obs = {"src": (sinfo["status"], src.q.cmd("query-status")["status"])}
        if dst_kind == "qemu":
            dst.proc.wait(30)
            lines = dst.read_log().splitlines()
            obs["dst exit"] = dst.proc.returncode
            obs["why"] = lines[0].split(": ", 1)[1] if lines else ""
            dst.expected_rc = 1  # a refused migration ends QEMU so
        else:
            dinfo = wait_status(qd, FINAL, 30, "destination")
            obs["dst"] = dinfo["status"]
            obs["why"] = dinfo.get("error-desc")
        return obs

    def check(self, version, dst_size, dst_block="ram0"):
        if not qemu_binary(version):
            self.skipTest("QEMU %s not found" % version)
        ref = self.refused(version, "qemu", dst_size, dst_block)
        self.assertEqual(ref["dst exit"], 1, ref)
        got = self.refused(version, "migd", dst_size, dst_block)
        self.assertEqual(got["dst"], "failed", got)
        self.assertEqual(got["src"], ref["src"])
        self.assertEqual(got["why"], ref["why"])

    def test_unknown_block_qemu100(self):
        self.check("10.0", SIZE, "mem1")

    def test_unknown_block_qemu72(self):
        self.check("7.2", SIZE, "mem1")

    @unittest.skipUnless(full_run(), "make check-interop-long")
    def test_size_mismatch_qemu100(self):
        self.check("10.0", SIZE // 2)

    @unittest.skipUnless(full_run(), "make check-interop-long")
    def test_size_mismatch_qemu72(self):
        self.check("7.2", SIZE // 2)
