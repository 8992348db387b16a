"""Postcopy with migd as the source and QEMU 10.0 as the destination
(QEMU's destination RAM is a shmem file in /dev/shm, which userfaultfd
handles): postcopy-ram with and without postcopy-preempt, started during a
live precopy of a guest that dirties memory faster than the link, RAM equal
after completion, QEMU's status and event sequences, argument errors, and a
connection break during postcopy (postcopy-paused on migd) with recovery
through migrate-recover on QEMU and migrate resume:true on migd.

Run: python3 -m unittest tests.interop.test_interop_postcopy_out
"""
import os
import time
import unittest

from tests.interop.qemutest import (MiB, InteropTestCase, file_sha256,
                                    migd_digest, migd_machine_args,
                                    migration_events, require_qemu, set_caps,
                                    set_params, wait_status)
from tests.interop.relay import Relay
from tests.system.migdtest import free_tcp_port, wait_for

SIZE = 256 * MiB
LINK = 32 << 20          # max-bandwidth: bytes/s
DIRTY = 96               # MB/s the guest writes: precopy never converges
WORKING_SET = 96 << 20


@require_qemu("10.0")
class PostcopyToQemuTest(InteropTestCase):
    def start_pair(self, preempt=False, extra_src=(), dst_caps=None):
        self.transport_ = "tcp"
        dst = self.qemu("10.0", SIZE, incoming=True, paused=False).start()
        qd = dst.q
        args = migd_machine_args(SIZE) + ["-smp", "2"] + list(extra_src)
        tmp = os.path.join(self.tmpdir, "src")
        os.makedirs(tmp, exist_ok=True)
        src = self.migd(args, tmpdir=tmp)
        qs = src.qmp()
        caps = dict(events=True, postcopy_ram=True)
        if preempt:
            caps["postcopy_preempt"] = True
        set_caps(qs, **caps)
        set_caps(qd, **(dst_caps or caps))
        qs.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                                    "content": "random", "passes": 1})
        wait_for(lambda: qs.cmd("x-guest-workload").get("finished"),
                 timeout=60, what="RAM filled")
        qs.cmd("x-guest-workload", {"dirty-rate": DIRTY, "pattern": "random",
                                    "working-set": WORKING_SET,
                                    "content": "mixed"})
        set_params(qs, max_bandwidth=LINK)
        return dst, qd, src, qs

    def migrate(self, qs, qd, relay=False):
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        src_uri = uri
        if relay:
            self.relay = Relay(uri, os.path.join(self.tmpdir, "capture"))
            src_uri = self.relay.uri
        qs.cmd("migrate", uri=src_uri)
        wait_status(qs, ("active",), 30)
        if relay:  # accepted in the kernel first: wait for the relay
            wait_for(lambda: len(self.relay.conns) >= 1,
                     what="relayed main channel")
        return uri

    def check_ram(self, dst, qs):
        self.assertEqual(migd_digest(qs), {"ram0": file_sha256(dst.ram_path)})

    def run_postcopy(self, preempt):
        dst, qd, src, qs = self.start_pair(preempt)
        self.migrate(qs, qd)
        time.sleep(1.5)  # a few precopy rounds that cannot converge
        self.assertEqual(qs.cmd("query-migrate")["status"], "active")
        qs.cmd("migrate-start-postcopy")
        sinfo = wait_status(qs, ("completed", "failed"), 120, "source")
        dinfo = wait_status(qd, ("completed", "failed"), 60, "destination")
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.check_ram(dst, qs)
        ram = sinfo["ram"]
        self.assertGreater(ram["postcopy-bytes"], 0, sinfo)
        self.assertGreater(ram["precopy-bytes"], 0, sinfo)
        self.assertIn("downtime", sinfo)
        self.assertEqual(qs.cmd("query-status")["status"], "postmigrate")
        self.assertEqual(migration_events(qs),
                         ["setup", "active", "postcopy-active", "completed"])
        return sinfo

    def test_postcopy(self):
        self.run_postcopy(preempt=False)

    def test_postcopy_preempt(self):
        self.run_postcopy(preempt=True)

    def test_stop_event_and_statuses(self):
        dst, qd, src, qs = self.start_pair()
        self.migrate(qs, qd)
        qs.cmd("migrate-start-postcopy")
        qs.wait_event("STOP", timeout=30)
        wait_status(qs, ("completed",), 120)
        wait_status(qd, ("completed",), 60)
        self.check_ram(dst, qs)

    def test_errors(self):
        dst, qd, src, qs = self.start_pair()
        set_caps(qs, postcopy_ram=False)
        r = qs.execute("migrate-start-postcopy")
        self.assertQMPError(r, "GenericError",
                            "Enable postcopy with migrate_set_capability "
                            "before the start of migration")
        set_caps(qs, postcopy_ram=True)
        r = qs.execute("migrate-start-postcopy")
        self.assertQMPError(r, "GenericError",
                            "Postcopy must be started after migration has "
                            "been started")
        r = qs.execute("migrate-pause")
        self.assertQMPError(r, "GenericError",
                            "migrate-pause is currently only supported "
                            "during postcopy-active or postcopy-recover "
                            "state")
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "resume": True})
        self.assertQMPError(r, "GenericError",
                            "Cannot resume if there is no paused migration")

    def test_release_ram(self):
        dst, qd, src, qs = self.start_pair(
            dst_caps=dict(events=True, postcopy_ram=True))
        set_caps(qs, release_ram=True)
        qs.cmd("x-guest-workload", {"dirty-rate": "idle"})
        before = migd_digest(qs)
        self.migrate(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("completed",), 120, "source")
        wait_status(qd, ("completed",), 60, "destination")
        self.assertEqual(before, {"ram0": file_sha256(dst.ram_path)})
        self.assertNotEqual(migd_digest(qs), before)  # freed on the source

    def test_break_preempt_recover(self):
        self.break_and_recover(preempt=True)

    def test_break_pause_and_recover(self):
        self.break_and_recover(preempt=False)

    def break_and_recover(self, preempt):
        dst, qd, src, qs = self.start_pair(preempt)
        set_params(qs, max_postcopy_bandwidth=8 << 20)  # time to cut
        self.migrate(qs, qd, relay=True)
        time.sleep(0.5)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        time.sleep(0.5)
        self.relay.cut()
        info = wait_status(qs, ("postcopy-paused",), 30, "source paused")
        self.assertIn("error-desc", info)
        wait_status(qd, ("postcopy-paused",), 30, "destination paused")
        self.assertEqual(qs.cmd("query-status")["status"], "finish-migrate")
        for attempt in range(2):  # repeatedly: pause again, recover again
            uri = "tcp:127.0.0.1:%d" % free_tcp_port()
            qd.cmd("migrate-recover", uri=uri)
            qs.cmd("migrate", uri=uri, resume=True)
            wait_status(qs, ("postcopy-active", "completed"), 60, "resumed")
            if attempt == 0:
                r = qs.execute("migrate-pause", oob=False)
                if "error" not in r:  # still running: paused again
                    wait_status(qs, ("postcopy-paused",), 30)
                    wait_status(qd, ("postcopy-paused",), 30)
                    continue
            break
        set_params(qs, max_postcopy_bandwidth=0)
        wait_status(qs, ("completed",), 120, "source")
        wait_status(qd, ("completed",), 60, "destination")
        self.check_ram(dst, qs)
        ev = migration_events(qs)
        self.assertIn("postcopy-paused", ev)
        self.assertIn("postcopy-recover", ev)
        self.assertEqual(ev[-1], "completed")


if __name__ == "__main__":
    unittest.main()
