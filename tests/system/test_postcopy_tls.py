"""Postcopy over TLS between two real migd processes: the source's
return-path thread reads the main channel's TLS session while the migration
thread writes it (socket/tls.c serialises the SSL calls), the preempt
channel has its own session, and the destination's TLS classifier routes
the preempt channel (no magic) after main and every multifd channel
(control/incoming_tls.c). x509 and PSK, with and without preempt, multifd,
switchover-ack, and a break + recovery over TLS (QEMU tests the same:
/migration/postcopy/recovery/tls/psk). RAM digests are equal at the end.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.system import test_postcopy as pc
from tests.system.test_postcopy import (PostcopyBase, events, set_params,
                                        wait_status)

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "tls", "gen-certs.sh")
CERTS = None


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="migd-pctls-")
    subprocess.run(["bash", GEN, CERTS], check=True,
                   stdout=subprocess.DEVNULL)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def creds(kind, endpoint):
    sub = "psk" if kind == "psk" else endpoint
    return {"qom-type": "tls-creds-" + kind, "id": "tls0",
            "dir": os.path.join(CERTS, sub), "endpoint": endpoint}


class PostcopyTLSBase(PostcopyBase):
    kind = "x509"

    def pair(self, caps=None, src_args=(), dst_args=(), params=None,
             live=True):
        src, dst, qs, qd = super().pair(caps, src_args, dst_args, params,
                                        live)
        qs.cmd("object-add", creds(self.kind, "client"))
        qd.cmd("object-add", creds(self.kind, "server"))
        set_params(qs, tls_creds="tls0")
        set_params(qd, tls_creds="tls0")
        return src, dst, qs, qd


class PostcopyTLSTest(PostcopyTLSBase):

    def test_x509(self):
        self.run_postcopy()

    def test_x509_preempt(self):
        self.run_postcopy(caps=dict(postcopy_preempt=True))

    def test_x509_multifd_preempt(self):
        self.run_postcopy(caps=dict(multifd=True, postcopy_preempt=True),
                          params=dict(multifd_channels=2))

    def test_x509_multifd(self):
        self.run_postcopy(caps=dict(multifd=True),
                          params=dict(multifd_channels=2))

    def test_x509_preempt_switchover_ack(self):
        # the destination sends SWITCHOVER_ACK then PONG back to back: the
        # source reads both records at once and waits for PONG 1 before
        # it connects the preempt channel
        self.run_postcopy(caps=dict(postcopy_preempt=True,
                                    return_path=True, switchover_ack=True))


class PostcopyPSKTest(PostcopyTLSBase):
    kind = "psk"

    def test_psk(self):
        self.run_postcopy()

    def test_psk_preempt(self):
        self.run_postcopy(caps=dict(postcopy_preempt=True))

    def test_psk_multifd_preempt(self):
        self.run_postcopy(caps=dict(multifd=True, postcopy_preempt=True),
                          params=dict(multifd_channels=2))


class PostcopyRequestTLSTest(PostcopyTLSBase):
    """The destination's guest runs during postcopy: its page requests
    come back over the TLS return path while the source writes."""

    def run_requests(self, caps=None, params=None):
        src, dst, qs, qd = self.pair(caps, params=params, live=False)
        set_params(qs, max_postcopy_bandwidth=4 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        wait_status(qd, ("postcopy-active",), 30)
        r = qd.execute("x-guest-workload", {
            "dirty-rate": 8, "pattern": "random", "content": "read"})
        self.assertNotIn("error", r, r)
        time.sleep(2.0)
        n = qs.cmd("query-migrate")["ram"].get("postcopy-requests", 0)
        self.assertGreater(n, 0)
        qd.cmd("x-guest-workload", {"dirty-rate": "idle"})
        set_params(qs, max_postcopy_bandwidth=0)
        self.finish(qs, qd)

    def test_requests(self):
        self.run_requests()

    def test_requests_preempt(self):
        self.run_requests(dict(postcopy_preempt=True))

    def test_requests_multifd_preempt(self):
        self.run_requests(dict(multifd=True, postcopy_preempt=True),
                          params=dict(multifd_channels=2))


class PostcopyRecoveryTLSTest(PostcopyTLSBase):
    """A break during postcopy over TLS: both sides pause, migrate-recover
    + migrate resume:true open new TLS sessions."""
    kind = "psk"

    def cut_cycle(self, rounds, caps=None, params=None):
        src, dst, qs, qd = self.pair(caps, params=params)
        set_params(qs, max_postcopy_bandwidth=16 << 20)
        self.start(qs, qd, proxy=True)
        time.sleep(0.5)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        time.sleep(0.1)
        preempt = bool((caps or {}).get("postcopy_preempt"))
        base = 1 + ((params or {}).get("multifd_channels", 0)
                    if (caps or {}).get("multifd") else 0)
        if preempt:
            self.proxy.wait_conns(base + 1)
        for i in range(rounds):
            time.sleep(0.3 * i)
            self.proxy.cut()
            pc.PostcopyRecoveryTest.paused_both(self, qs, qd)
            pc.PostcopyRecoveryTest.recover(self, qs, qd)
            st = wait_status(qs, ("postcopy-active", "completed"), 30)
            if st["status"] == "postcopy-active":
                self.proxy.wait_conns(2 if preempt else 1)
        set_params(qs, max_postcopy_bandwidth=0)
        self.finish(qs, qd)
        ev = events(qs)
        self.assertEqual(ev.count("postcopy-paused"), rounds, ev)
        self.assertEqual(ev[-1], "completed", ev)

    def test_break_once(self):
        self.cut_cycle(1)

    def test_breaks_twice_preempt(self):
        self.cut_cycle(2, caps=dict(postcopy_preempt=True))

    def test_break_multifd_preempt(self):
        self.cut_cycle(1, caps=dict(multifd=True, postcopy_preempt=True),
                       params=dict(multifd_channels=2))


class PostcopyRecoveryX509Test(PostcopyRecoveryTLSTest):
    kind = "x509"

    def test_breaks_twice_preempt(self):
        raise unittest.SkipTest("covered with psk")

    def test_break_multifd_preempt(self):
        raise unittest.SkipTest("covered with psk")


if __name__ == "__main__":
    unittest.main()
