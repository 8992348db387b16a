"""rdma: over QMP on a host without RDMA hardware (the transport itself is
tested on the loopback fabric in tests/unit/test_rdma_*.c and over
soft-RoCE in tests/rdma_vm/): the URI and channel forms are accepted, the
argument errors are QEMU's, xbzrle/postcopy-ram with rdma are refused
with QEMU's words, multifd with rdma is accepted (migd <-> migd), and a missing RDMA device fails the migration
(source) or the command (destination) with a clear message. When the
host has an RDMA device these tests are skipped (the failure cases
assume none); tests/rdma_vm/ covers that case. With a device and
MIGD_RDMA_SILENT_ADDR set, migrate_cancel during the connection phase is
checked (RdmaConnectCancel).
"""
import glob
import os
import shutil
import tempfile
import time
import unittest

from tests.system.migdtest import MigdTestCase, run_migd, wait_for

GENERIC = "GenericError"
NO_DEVICE_SRC = ("RDMA ERROR: could not create CM channel: No such device "
                 "(no RDMA device on this host)")
NO_DEVICE_DST = ("RDMA ERROR: could not create rdma event channel: No such "
                 "device (no RDMA device on this host)")


def have_rdma_device():
    return bool(glob.glob("/sys/class/infiniband/*"))


def rdma_channel(host="192.0.2.1", port="4444"):
    return [{"channel-type": "main",
             "addr": {"transport": "rdma", "host": host, "port": port}}]


@unittest.skipIf(have_rdma_device(), "an RDMA device exists on this host")
class RdmaNoDevice(MigdTestCase):
    def start(self, *extra):
        m = self.migd(["-m", "4M"] + list(extra))
        return m, m.qmp()

    def caps(self, q, **caps):
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": k.replace("_", "-"), "state": v}
                            for k, v in caps.items()])

    def wait_failed(self, q):
        info = {}

        def done():
            nonlocal info
            info = q.cmd("query-migrate")
            return info.get("status") in ("failed", "completed")
        wait_for(done, timeout=30, what="migration end")
        return info

    def test_migrate_uri_no_device(self):
        _, q = self.start()
        self.assertEqual(q.cmd("migrate", uri="rdma:192.0.2.1:4444"), {})
        info = self.wait_failed(q)
        self.assertEqual(info["status"], "failed")
        self.assertEqual(info["error-desc"], NO_DEVICE_SRC)
        # the source keeps its guest running
        self.assertEqual(q.cmd("query-status")["status"], "running")

    def test_migrate_channel_form_no_device(self):
        _, q = self.start()
        self.assertEqual(q.cmd("migrate", channels=rdma_channel()), {})
        info = self.wait_failed(q)
        self.assertEqual(info["error-desc"], NO_DEVICE_SRC)

    def test_migrate_pin_all_no_device(self):
        _, q = self.start()
        self.caps(q, rdma_pin_all=True)
        self.assertEqual(q.cmd("migrate", uri="rdma:[fe80::1]:4444"), {})
        self.assertEqual(self.wait_failed(q)["error-desc"], NO_DEVICE_SRC)

    def test_incoming_no_device(self):
        _, q = self.start("-incoming", "defer")
        self.assertQMPError(
            q.execute("migrate-incoming", {"uri": "rdma:0.0.0.0:4444"}),
            GENERIC, NO_DEVICE_DST)
        self.assertQMPError(
            q.execute("migrate-incoming", {"channels": rdma_channel()}),
            GENERIC, NO_DEVICE_DST)
        # nothing started: no status yet, and the command may be retried
        self.assertEqual(q.cmd("query-migrate"), {})

    def test_incoming_cmdline_no_device(self):
        r = run_migd(["-m", "4M", "-incoming", "rdma:0.0.0.0:4444"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(NO_DEVICE_DST, r.stderr)

    def test_argument_errors(self):
        _, q = self.start("-incoming", "defer")
        cases = [
            ({"uri": "rdma:bad"}, "error parsing address 'bad'"),
            ({"uri": "rdma:[x"}, "error parsing IPv6 address '[x'"),
        ]
        for args, desc in cases:
            for cmd in ("migrate", "migrate-incoming"):
                with self.subTest(cmd=cmd, args=args):
                    self.assertQMPError(q.execute(cmd, args), GENERIC, desc)

    def test_multifd_accepted(self):
        # multifd over RDMA (migd <-> migd): QMP accepts it; here the
        # missing device fails it. A QEMU peer is refused with QEMU's
        # "RDMA and multifd can't be used together" when it answers the
        # connection (tests/unit/test_rdma_mfd.c).
        _, q = self.start()
        self.caps(q, multifd=True)
        q.cmd("migrate-set-parameters", {"multifd-channels": 4})
        self.assertEqual(q.cmd("migrate", uri="rdma:192.0.2.1:4444"), {})
        self.assertEqual(self.wait_failed(q)["error-desc"], NO_DEVICE_SRC)
        self.assertEqual(q.cmd("query-status")["status"], "running")
        _, q = self.start("-incoming", "defer")
        self.caps(q, multifd=True)
        self.assertQMPError(
            q.execute("migrate-incoming", {"channels": rdma_channel()}),
            GENERIC, NO_DEVICE_DST)

    def test_multifd_compression_refused(self):
        for cmd in ("migrate", "migrate-incoming"):
            with self.subTest(cmd=cmd):
                _, q = self.start("-incoming", "defer")
                self.caps(q, multifd=True)
                q.cmd("migrate-set-parameters",
                      {"multifd-compression": "zlib"})
                self.assertQMPError(
                    q.execute(cmd, {"uri": "rdma:192.0.2.1:4444"}),
                    GENERIC, "migd does not support multifd-compression "
                    "or zero-copy-send with multifd over rdma")

    def test_xbzrle_and_postcopy_refused(self):
        _, q = self.start()
        self.caps(q, xbzrle=True)
        self.assertQMPError(q.execute("migrate",
                                      {"uri": "rdma:192.0.2.1:4444"}),
                            GENERIC, "RDMA and XBZRLE can't be used together")
        self.caps(q, xbzrle=False, postcopy_ram=True)
        self.assertQMPError(q.execute("migrate",
                                      {"uri": "rdma:192.0.2.1:4444"}),
                            GENERIC,
                            "RDMA and postcopy-ram can't be used together")

    def test_tls_refused(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "keys.psk"), "w") as f:
            f.write("qemu:" + "ab" * 32 + "\n")
        _, q = self.start()
        q.cmd("object-add", {"qom-type": "tls-creds-psk", "id": "tls0",
                             "dir": d, "endpoint": "client"})
        q.cmd("migrate-set-parameters", {"tls-creds": "tls0"})
        self.assertQMPError(q.execute("migrate",
                                      {"uri": "rdma:192.0.2.1:4444"}),
                            GENERIC, "migd does not support TLS over rdma")

    def test_return_path_refused(self):
        _, q = self.start()
        self.caps(q, return_path=True)
        self.assertEqual(q.cmd("migrate", uri="rdma:192.0.2.1:4444"), {})
        self.assertEqual(self.wait_failed(q)["error-desc"],
                         "migd does not support the return path over rdma "
                         "yet")


SILENT_ADDR = os.environ.get("MIGD_RDMA_SILENT_ADDR", "")


@unittest.skipUnless(have_rdma_device() and SILENT_ADDR,
                     "needs an RDMA device and MIGD_RDMA_SILENT_ADDR (an "
                     "address on the RDMA interface's subnet that nobody "
                     "holds, so address resolution waits)")
class RdmaConnectCancel(MigdTestCase):
    """migrate_cancel while the source is still resolving an address
    nobody answers for: cancelled at once, not after the 10 s bound."""

    def test_cancel_while_connecting(self):
        m = self.migd(["-m", "4M"])
        q = m.qmp()
        self.assertEqual(q.cmd("migrate",
                               uri="rdma:%s:4444" % SILENT_ADDR), {})
        time.sleep(0.5)
        self.assertEqual(q.cmd("query-migrate")["status"], "setup")
        t0 = time.monotonic()
        q.cmd("migrate_cancel")
        wait_for(lambda: q.cmd("query-migrate")["status"] == "cancelled",
                 timeout=3, what="cancelled")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(q.cmd("query-status")["status"], "running")


if __name__ == "__main__":
    unittest.main()


class RdmaSymbols(unittest.TestCase):
    """No global symbol of migd may share a name with one librdmacm or
    libibverbs exports: the executable's definition would interpose the
    library's, and rdma-core's own calls would land in migd (a migd
    function once named rdma_listen crashed every rdma: destination)."""

    def test_no_clash_with_rdma_core(self):
        from tests.system.migdtest import MIGD
        nm = shutil.which("nm")
        if not nm:
            self.skipTest("nm (binutils) not installed")
        import subprocess

        def syms(args):
            out = subprocess.run([nm] + args, capture_output=True,
                                 text=True, check=True).stdout
            return {line.split()[-1].split("@")[0]
                    for line in out.splitlines() if line.strip()}
        libs = set()
        for name in ("librdmacm.so.1", "libibverbs.so.1"):
            paths = glob.glob("/usr/lib/*/" + name) + glob.glob(
                "/usr/lib/" + name)
            self.assertTrue(paths, name + " not found")
            libs |= syms(["-D", "--defined-only", paths[0]])
        ours = syms(["-g", "--defined-only", MIGD])
        self.assertEqual(sorted(ours & libs), [])
