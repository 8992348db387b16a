"""QEMU 10.0 -> migd with postcopy: migd is the destination. A live
precopy (QEMU's max-bandwidth kept low) is switched with
migrate-start-postcopy; migd's vCPUs read pages meanwhile (content=read),
so their faults become page requests. Checks RAM (migd's digest against a
hash of QEMU's memory-backend file), statuses, events, blocktime, the
preempt channel, a break during postcopy (postcopy-paused, guest blocked)
and a recovery with migrate-recover + migrate resume:true.
Run: MIGD_BUILD=build-x python3 -m unittest tests.interop.test_interop_postcopy_in
"""
import os
import time

from tests.interop.qemutest import (
    MiB, InteropTestCase, fill_ram_file, file_sha256, migd_digest,
    migd_machine_args, migration_events, require_qemu, set_caps, set_params,
    wait_status, event_trace)
from tests.interop.relay import Relay
from tests.system.migdtest import free_tcp_port, wait_for

SIZE = 256 * MiB
PRECOPY_BANDWIDTH = 24 * MiB  # ~10 s of precopy for SIZE
FINAL = ("completed", "failed", "cancelled")


@require_qemu("10.0")
class PostcopyIn(InteropTestCase):

    def start_pair(self, ram="anon", preempt=False, blocktime=False,
                   smp=2, reader=True, start=True):
        ram_path = self.ram_file("migd-dst", SIZE) if ram == "file" else None
        args = migd_machine_args(SIZE, ram_path, paused=False, incoming=True)
        args += ["-smp", str(smp)]
        tmpdir = os.path.join(self.tmpdir, "migd-dst")
        os.mkdir(tmpdir)
        self.dst = self.migd(args, tmpdir=tmpdir)
        qd = self.dst.qmp()
        self.src = self.qemu("10.0", SIZE, paused=True)
        fill_ram_file(self.src.ram_path, SIZE, "mixed")
        self.src.start()
        qs = self.src.q
        caps = {"events": True, "postcopy_ram": True}
        if preempt:
            caps["postcopy_preempt"] = True
        set_caps(qs, **caps)
        if blocktime:
            caps["postcopy_blocktime"] = True
        set_caps(qd, **caps)
        set_params(qs, max_bandwidth=PRECOPY_BANDWIDTH)
        if reader:  # random reads over all RAM: faults during postcopy
            qd.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "random",
                                        "content": "read"})
        if start:
            qs.cmd("cont")
        return qs, qd

    def migrate(self, qs, qd, relay=False):
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        if relay:
            self.relay = Relay(uri, os.path.join(self.tmpdir, "capture"))
            uri = self.relay.uri
        qs.cmd("migrate", uri=uri)
        wait_for(lambda: qs.cmd("query-migrate").get("ram", {})
                 .get("transferred", 0) > 32 * MiB, timeout=60,
                 what="precopy under way")
        qs.cmd("migrate-start-postcopy")

    def check_ram(self, qd):
        want = file_sha256(self.src.ram_path)
        self.assertEqual(migd_digest(qd), {"ram0": want})

    def run_postcopy(self, **kw):
        qs, qd = self.start_pair(**kw)
        self.migrate(qs, qd)
        sinfo = wait_status(qs, FINAL, 120, "source")
        dinfo = wait_status(qd, FINAL, 60, "destination")
        self.assertEqual(sinfo["status"], "completed", sinfo)
        self.assertEqual(dinfo["status"], "completed", dinfo)
        self.assertEqual(qd.cmd("query-status")["status"], "running")
        self.check_ram(qd)
        events = migration_events(qd)
        self.assertEqual(events, ["setup", "active", "postcopy-active",
                                  "completed"])
        return sinfo, dinfo, qs, qd

    def test_postcopy(self):
        sinfo, dinfo, qs, qd = self.run_postcopy()
        self.assertEqual(dinfo, {"status": "completed"})
        # the vCPUs' faults were requested and served
        self.assertGreater(sinfo["ram"]["postcopy-requests"], 0, sinfo)

    def test_postcopy_file_ram(self):
        sinfo, dinfo, qs, qd = self.run_postcopy(ram="file")
        self.assertGreater(sinfo["ram"]["postcopy-requests"], 0, sinfo)

    def test_postcopy_blocktime(self):
        sinfo, dinfo, qs, qd = self.run_postcopy(blocktime=True)
        self.assertIn("postcopy-blocktime", dinfo)
        self.assertEqual(len(dinfo["postcopy-vcpu-blocktime"]), 2, dinfo)
        self.assertGreaterEqual(dinfo["postcopy-blocktime"], 0)

    def test_postcopy_preempt(self):
        sinfo, dinfo, qs, qd = self.run_postcopy(preempt=True)
        self.assertGreater(sinfo["ram"]["postcopy-requests"], 0, sinfo)

    def test_postcopy_no_vcpus_reading(self):
        self.run_postcopy(reader=False)

    def test_advised_but_precopy_completes(self):
        """postcopy-ram on, no migrate-start-postcopy: ADVISE zaps RAM,
        then an ordinary precopy completes (with its vmdesc)."""
        qs, qd = self.start_pair(reader=False)
        set_params(qs, max_bandwidth=16 << 30)
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        self.assertEqual(wait_status(qs, FINAL, 120, "source")["status"],
                         "completed")
        self.assertEqual(wait_status(qd, FINAL, 60, "destination"),
                         {"status": "completed"})
        self.check_ram(qd)
        self.assertEqual(migration_events(qd), ["setup", "active",
                                                "completed"])

    def test_postcopy_preempt_tls(self):
        """x509 TLS on the main and the preempt channel."""
        import shutil
        import subprocess
        import tempfile
        certs = tempfile.mkdtemp(prefix="migd-tls-")
        self.addCleanup(shutil.rmtree, certs, True)
        gen = os.path.join(os.path.dirname(__file__), "..", "tls",
                           "gen-certs.sh")
        subprocess.run(["bash", gen, certs], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        qs, qd = self.start_pair(preempt=True, start=False)
        qs.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "tls0",
                              "dir": os.path.join(certs, "client"),
                              "endpoint": "client"})
        qd.cmd("object-add", {"qom-type": "tls-creds-x509", "id": "tls0",
                              "dir": os.path.join(certs, "server"),
                              "endpoint": "server"})
        set_params(qs, tls_creds="tls0", tls_hostname="localhost")
        set_params(qd, tls_creds="tls0")
        qs.cmd("cont")
        self.migrate(qs, qd)
        sinfo = wait_status(qs, FINAL, 120, "source")
        dinfo = wait_status(qd, FINAL, 60, "destination")
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.check_ram(qd)
        self.assertGreater(sinfo["ram"]["postcopy-requests"], 0, sinfo)

    # ---- a break during postcopy ------------------------------------------

    def start_broken(self, preempt=False):
        qs, qd = self.start_pair(preempt=preempt)
        set_params(qs, max_postcopy_bandwidth=8 * MiB)  # a long postcopy
        self.migrate(qs, qd, relay=True)
        wait_status(qd, ("postcopy-active",), 60, "destination")
        time.sleep(1.0)
        return qs, qd

    def test_break_pauses(self):
        qs, qd = self.start_broken()
        self.relay.cut()  # break every connection
        wait_status(qd, ("postcopy-paused",), 30, "destination")
        # runstate running, vCPUs blocked on missing pages (not zeros)
        self.assertEqual(qd.cmd("query-status")["status"], "running")
        time.sleep(0.5)
        first = self.touched(qd)
        time.sleep(1.0)
        self.assertEqual(self.touched(qd), first)
        self.assertEqual(qd.cmd("query-migrate")["status"], "postcopy-paused")
        r = qd.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:1"})
        self.assertQMPError(r, "GenericError", "The incoming migration has "
                            "already been started")
        # migrate-pause/stop/quit still work with blocked vCPUs
        qd.cmd("stop")
        self.assertEqual(qd.cmd("query-status")["status"], "paused")

    def test_source_killed_pauses(self):
        """The source dies during postcopy: the destination pauses with its
        guest blocked and waits for a recovery, it does not fail."""
        qs, qd = self.start_pair()
        set_params(qs, max_postcopy_bandwidth=8 * MiB)
        self.migrate(qs, qd)
        wait_status(qd, ("postcopy-active",), 60, "destination")
        time.sleep(0.5)
        self.src.proc.kill()
        self.src.proc.wait()
        self.src.expected_rc = -9
        wait_status(qd, ("postcopy-paused",), 30, "destination")
        time.sleep(0.5)
        first = self.touched(qd)
        time.sleep(1.0)
        self.assertEqual(self.touched(qd), first)
        self.assertEqual(qd.cmd("query-migrate")["status"], "postcopy-paused")
        self.assertEqual(qd.cmd("query-status")["status"], "running")

    @staticmethod
    def touched(qd):
        return [c["bytes-written"] for c in qd.cmd("x-guest-workload")["vcpus"]]

    def test_recover(self):
        qs, qd = self.start_broken()
        self.relay.cut()
        self.recover(qs, qd)

    def test_recover_twice(self):
        """Break, recover through a new relay, break that one too, recover
        again, finish."""
        qs, qd = self.start_broken()
        self.relay.cut()
        wait_status(qd, ("postcopy-paused",), 30, "destination")
        wait_status(qs, ("postcopy-paused",), 30, "source")
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-recover", uri=uri)
        second = Relay(uri, os.path.join(self.tmpdir, "capture2"))
        self.addCleanup(second.close)
        qs.cmd("migrate", uri=second.uri, resume=True)
        wait_status(qd, ("postcopy-active",), 30, "destination")
        time.sleep(0.5)
        second.cut()
        self.recover(qs, qd, ["postcopy-paused", "postcopy-recover",
                              "postcopy-active"])

    def test_migrate_pause_recover_preempt(self):
        qs, qd = self.start_broken(preempt=True)
        qd.cmd("migrate-pause")  # on the destination
        self.recover(qs, qd)

    def recover(self, qs, qd, before=()):
        wait_status(qd, ("postcopy-paused",), 30, "destination")
        wait_status(qs, ("postcopy-paused",), 30, "source")
        r = qd.execute("migrate-pause")
        self.assertQMPError(r, "GenericError", "migrate-pause is currently "
                            "only supported during postcopy-active or "
                            "postcopy-recover state")
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-recover", uri=uri)
        qs.cmd("migrate", uri=uri, resume=True)
        sinfo = wait_status(qs, FINAL, 120, "source")
        dinfo = wait_status(qd, FINAL, 60, "destination")
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.check_ram(qd)
        events = migration_events(qd)
        self.assertEqual(events, ["setup", "active", "postcopy-active"] +
                         list(before) + ["postcopy-paused",
                                         "postcopy-recover",
                                         "postcopy-active", "completed"])

    def test_migrate_pause_states(self):
        qd = self.migd(migd_machine_args(SIZE, incoming=True)).qmp()
        r = qd.execute("migrate-recover", {"uri": "tcp:127.0.0.1:1"})
        self.assertQMPError(r, "GenericError", "Migrate recover can only be "
                            "run when postcopy is paused.")
        r = qd.execute("migrate-recover")
        self.assertEqual(r["error"]["class"], "GenericError", r)


if __name__ == "__main__":
    import unittest
    unittest.main()
