"""TLS migrations between two real migd processes: tls-creds-x509 and
tls-creds-psk objects (object-add and -object), single stream and multifd,
RAM digests equal on both sides; each failure (wrong CA, expired
certificate, wrong hostname, wrong PSK, denied identity) fails the migration
on both sides with an error-desc; a relay that records the bytes shows
nothing passes in clear; object-add/object-del's QEMU errors.

Credentials are made by tests/tls/gen-certs.sh (openssl command line).
"""
import glob
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.interop.relay import Relay
from tests.system.migdtest import (MigdTestCase, QMPError, free_tcp_port,
                                   run_migd)
from tests.system.test_migration import (digest, fill, set_caps, set_params,
                                         wait_status)

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "tls", "gen-certs.sh")
CLIENT_DN = "CN=client,O=migd test,C=GB"
CERTS = None


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="migd-tls-")
    subprocess.run(["bash", GEN, CERTS], check=True)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def x509(qid, sub, endpoint, **props):
    return dict({"qom-type": "tls-creds-x509", "id": qid,
                 "dir": os.path.join(CERTS, sub), "endpoint": endpoint},
                **props)


def psk(qid, sub, endpoint, **props):
    return dict({"qom-type": "tls-creds-psk", "id": qid,
                 "dir": os.path.join(CERTS, sub), "endpoint": endpoint},
                **props)


class TLSMigration(MigdTestCase):
    mem = "128M"

    def pair(self, src_obj, dst_obj, channels=0, authz=None, hostname=None):
        src = self.migd(["-m", self.mem, "-smp", "1"])
        dst = self.migd(["-m", self.mem, "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        for q in (qs, qd):
            set_caps(q, events=True)
            if channels:
                set_caps(q, multifd=True)
                set_params(q, multifd_channels=channels)
        qs.cmd("object-add", src_obj)
        qd.cmd("object-add", dst_obj)
        set_params(qs, tls_creds=src_obj["id"])
        set_params(qd, tls_creds=dst_obj["id"])
        if hostname:
            set_params(qs, tls_hostname=hostname)
        if authz:
            qd.cmd("object-add", {"qom-type": "authz-simple", "id": "auth0",
                                  "identity": authz})
            set_params(qd, tls_authz="auth0")
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        return qs, qd, uri

    def start(self, qs, qd, uri, src_uri=None):
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=src_uri or uri)

    def migrate_ok(self, qs, qd, uri, src_uri=None):
        fill(qs, "mixed")
        self.start(qs, qd, uri, src_uri)
        info = wait_status(qs, ("completed", "failed"), 120)
        self.assertEqual(info["status"], "completed", info)
        dinfo = wait_status(qd, ("completed", "failed"), 30)
        self.assertEqual(dinfo["status"], "completed", dinfo)
        self.assertEqual(digest(qs), digest(qd))
        return info

    def migrate_fail(self, qs, qd, uri, src_desc=None, dst_desc=None,
                     src_prefix=None, dst_prefix=None):
        self.start(qs, qd, uri)
        si = wait_status(qs, ("completed", "failed"), 60)
        di = wait_status(qd, ("completed", "failed"), 60)
        self.assertEqual(si["status"], "failed", si)
        self.assertEqual(di["status"], "failed", di)
        for info, desc, prefix in ((si, src_desc, src_prefix),
                                   (di, dst_desc, dst_prefix)):
            self.assertIn("error-desc", info)
            if desc:
                self.assertEqual(info["error-desc"], desc)
            if prefix:
                self.assertTrue(info["error-desc"].startswith(prefix), info)
        return si, di

    # --- successes --------------------------------------------------------

    def test_x509_single_stream(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"))
        self.migrate_ok(qs, qd, uri)

    def test_x509_multifd_2_with_authz(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"),
                                channels=2, authz=CLIENT_DN)
        info = self.migrate_ok(qs, qd, uri)
        self.assertGreater(info["ram"]["multifd-bytes"], 0)

    def test_x509_tls_hostname(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"),
                                channels=2, hostname="localhost")
        self.migrate_ok(qs, qd, uri)

    def test_psk_single_stream(self):
        qs, qd, uri = self.pair(psk("tls0", "psk", "client"),
                                psk("tls0", "psk", "server"))
        self.migrate_ok(qs, qd, uri)

    def test_psk_multifd_2_with_authz(self):
        qs, qd, uri = self.pair(psk("tls0", "psk", "client",
                                    username="alice"),
                                psk("tls0", "psk", "server"),
                                channels=2, authz="alice")
        self.migrate_ok(qs, qd, uri)

    def test_nothing_in_clear(self):
        """A relay records both directions of every connection: the main
        stream's QEVM magic, the multifd magic and the guest's text pages
        never show up."""
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"),
                                channels=2)
        cap = tempfile.mkdtemp(prefix="migd-tls-cap-")
        relay = Relay(uri, cap)
        try:
            qs.cmd("x-guest-workload", {"dirty-rate": 0,
                                        "pattern": "sequential",
                                        "content": "text", "passes": 1})
            self.migrate_ok(qs, qd, uri, src_uri=relay.uri)
        finally:
            relay.close()
        files = sorted(glob.glob(os.path.join(cap, "conn-*.bin")))
        self.assertGreaterEqual(len(files), 3)
        total = 0
        for f in files:
            with open(f, "rb") as fh:
                data = fh.read()
            total += len(data)
            self.assertNotIn(b"QEVM", data, f)
            self.assertNotIn(b"\x11\x22\x33\x44", data, f)
            # a TLS record starts every stream: handshake (22), TLS 1.x
            if data and not f.endswith(".rev.bin"):
                self.assertEqual(data[:2], b"\x16\x03", f)
                # ends with close_notify: a TLS 1.2 AES-GCM alert record
                # (8-byte nonce + 2-byte alert + 16-byte tag)
                self.assertEqual(data[-31:-26], b"\x15\x03\x03\x00\x1a", f)
        self.assertGreater(total, 64 << 20)
        shutil.rmtree(cap, ignore_errors=True)

    def test_cmdline_objects(self):
        src = self.migd(["-m", self.mem, "-object",
                         "tls-creds-psk,id=tls0,endpoint=client,dir=%s"
                         % os.path.join(CERTS, "psk")])
        dst = self.migd(["-m", self.mem, "-incoming", "defer", "-object",
                         "tls-creds-psk,id=tls0,endpoint=server,dir=%s"
                         % os.path.join(CERTS, "psk"),
                         "-object", "authz-simple,id=a0,identity=qemu"])
        qs, qd = src.qmp(), dst.qmp()
        set_params(qs, tls_creds="tls0")
        set_params(qd, tls_creds="tls0", tls_authz="a0")
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        self.migrate_ok(qs, qd, uri)

    # --- failures on both sides ---------------------------------------------

    def test_wrong_ca(self):
        qs, qd, uri = self.pair(x509("tls0", "client-otherca", "client"),
                                x509("tls0", "server", "server"))
        self.migrate_fail(qs, qd, uri,
                          src_desc="The certificate hasn't got a known "
                                   "issuer",
                          dst_prefix="TLS handshake failed: ")

    def test_expired_server_cert(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server-expired", "server"),
                                channels=2)
        self.migrate_fail(qs, qd, uri,
                          src_desc="The certificate has expired",
                          dst_prefix="TLS handshake failed: ")

    def test_expired_client_cert(self):
        qs, qd, uri = self.pair(x509("tls0", "client-expired", "client"),
                                x509("tls0", "server", "server"))
        self.migrate_fail(qs, qd, uri,
                          src_prefix="TLS handshake failed: ",
                          dst_desc="The certificate has expired")

    def test_wrong_hostname(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"),
                                hostname="migd.example")
        self.migrate_fail(qs, qd, uri,
                          src_desc="Certificate does not match the "
                                   "hostname migd.example",
                          dst_prefix="TLS handshake failed: ")

    def test_wrong_psk(self):
        qs, qd, uri = self.pair(psk("tls0", "psk-wrong", "client"),
                                psk("tls0", "psk", "server"), channels=2)
        self.migrate_fail(qs, qd, uri, src_prefix="TLS handshake failed: ",
                          dst_prefix="TLS handshake failed: ")

    def test_x509_authz_denied(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"),
                                authz="CN=someone-else")
        self.migrate_fail(qs, qd, uri,
                          src_prefix="TLS handshake failed: ",
                          dst_desc="TLS x509 authz check for %s is denied"
                                   % CLIENT_DN)

    def test_psk_authz_denied(self):
        qs, qd, uri = self.pair(psk("tls0", "psk", "client"),
                                psk("tls0", "psk", "server"),
                                authz="alice")
        self.migrate_fail(qs, qd, uri,
                          src_prefix="TLS handshake failed: ",
                          dst_desc="TLS PSK authz check for qemu is denied")

    def test_missing_creds_object(self):
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"))
        set_params(qs, tls_creds="nope")
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        si = wait_status(qs, ("completed", "failed"), 30)
        self.assertEqual(si["error-desc"], "No TLS credentials with id 'nope'")

    def test_wrong_endpoint(self):
        qs, qd, uri = self.pair(x509("tls0", "server", "server"),
                                x509("tls0", "server", "server"))
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        si = wait_status(qs, ("completed", "failed"), 30)
        self.assertEqual(si["error-desc"],
                         "Expected TLS credentials for a client endpoint")

    def test_tls_source_plain_destination(self):
        """A TLS source meets a plain destination: both fail, nothing in
        clear is accepted."""
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"))
        set_params(qd, tls_creds="")
        self.migrate_fail(qs, qd, uri)


    def test_probes_do_not_fail_a_tls_destination(self):
        """A connect-and-close (port probe) and a peer talking clear text
        are dropped by a TLS destination, which keeps listening: the real
        TLS source that comes next completes (QEMU drops failed handshakes
        the same way)."""
        import socket
        qs, qd, uri = self.pair(x509("tls0", "client", "client"),
                                x509("tls0", "server", "server"))
        qd.cmd("migrate-incoming", uri=uri)
        port = int(uri.rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port)).close()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"QEVM\x00\x00\x00\x03garbage")
        time.sleep(0.5)  # let the destination look at both
        self.assertEqual(qd.cmd("query-migrate").get("status"), "setup")
        fill(qs, "mixed")
        qs.cmd("migrate", uri=uri)
        info = wait_status(qs, ("completed", "failed"), 120)
        self.assertEqual(info["status"], "completed", info)
        dinfo = wait_status(qd, ("completed", "failed"), 30)
        self.assertEqual(dinfo["status"], "completed", dinfo)
        self.assertEqual(digest(qs), digest(qd))


class FakeTLSDestination:
    """A TLS server that answers the source's return path with canned
    bytes (one SSL write, so one TLS record) and swallows the stream."""

    def __init__(self, certs):
        import socket
        import ssl
        import threading
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, "server-cert.pem"),
                            os.path.join(certs, "server-key.pem"))
        self.ctx = ctx
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.uri = "tcp:127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.conn = None
        self.got = 0
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            raw, _ = self.lsock.accept()
            self.conn = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:
            return
        self.ready.set()
        while True:
            try:
                d = self.conn.recv(1 << 16)
            except OSError:
                return
            if not d:
                return
            self.got += len(d)

    def send(self, data):
        self.ready.wait(10)
        self.conn.sendall(data)

    def close(self):
        self.lsock.close()
        if self.conn:
            self.conn.close()


class TLSReturnPathTest(MigdTestCase):
    """Return-path messages that arrive together sit in the TLS session
    once the first is read: poll() on the socket cannot see the second
    (control/switchover.c asks the session: tls_channel_wait_input)."""

    def test_switchover_ack_behind_pong_in_one_record(self):
        import struct
        fake = FakeTLSDestination(os.path.join(CERTS, "server"))
        self.addCleanup(fake.close)
        q = self.migd(["-m", "64M"]).qmp()
        set_caps(q, events=True, return_path=True, switchover_ack=True)
        q.cmd("object-add", x509("tls0", "client", "client"))
        set_params(q, tls_creds="tls0")
        q.cmd("migrate", uri=fake.uri)
        pong = struct.pack(">HHI", 2, 4, 1)   # MIG_RP_MSG_PONG 1
        ack = struct.pack(">HH", 7, 0)        # MIG_RP_MSG_SWITCHOVER_ACK
        fake.send(pong + ack)
        # nothing else comes from the destination: the ack alone lets the
        # idle guest switch over (stop, the rest sent, wait for SHUT)
        deadline = time.time() + 15
        while q.cmd("query-status")["status"] == "running":
            self.assertLess(time.time(), deadline,
                            "the source never saw the switchover ack: %s"
                            % q.cmd("query-migrate"))
            time.sleep(0.1)
        fake.send(struct.pack(">HHI", 1, 4, 0))  # MIG_RP_MSG_SHUT 0
        info = wait_status(q, ("completed", "failed"), 30)
        self.assertEqual(info["status"], "completed", info)
        self.assertGreater(fake.got, 0)


class TLSObjects(MigdTestCase):
    def setUp(self):
        super().setUp()
        self.q = self.migd(["-m", "16M"]).qmp()

    def err(self, name, args, desc, cls="GenericError"):
        self.assertQMPError(self.q.execute(name, args), cls, desc)

    def test_add_del(self):
        self.q.cmd("object-add", x509("t0", "server", "server"))
        self.err("object-add", x509("t0", "server", "server"),
                 "attempt to add duplicate property 't0' to object "
                 "(type 'container')")
        self.q.cmd("object-del", {"id": "t0"})
        self.err("object-del", {"id": "t0"}, "object 't0' not found")
        self.q.cmd("object-add", x509("t0", "client", "client",
                                      **{"verify-peer": False}))

    def test_bad_arguments(self):
        self.err("object-add", {"qom-type": "tls-creds-x509", "id": "1x"},
                 "Parameter 'id' expects an identifier")
        self.err("object-add", {"qom-type": "bogus", "id": "x"},
                 "Parameter 'qom-type' does not accept value 'bogus'")
        self.err("object-add", x509("x", "server", "middle"),
                 "Parameter 'endpoint' does not accept value 'middle'")
        self.err("object-add", x509("x", "server", "server", bogus=1),
                 "Parameter 'bogus' is unexpected")
        self.err("object-add", {"qom-type": "authz-simple", "id": "a"},
                 "Parameter 'identity' is missing")
        self.err("object-add", dict(x509("x", "server", "server"),
                                    dir="/nonexistent"),
                 "Unable to access credentials /nonexistent/ca-cert.pem: "
                 "No such file or directory")
        self.err("object-add", psk("x", "psk", "client", username="nobody"),
                 "Username nobody not found in PSK file %s/psk/keys.psk"
                 % CERTS)
        self.err("object-add", psk("x", "psk", "server", username="qemu"),
                 "username should not be set when endpoint=server")

    def test_in_use_delete_keeps_migration_going(self):
        """QEMU lets object-del remove credentials a migration uses: the
        migration keeps what it loaded. migd does the same."""
        self.q.cmd("object-add", psk("p0", "psk", "client"))
        self.q.cmd("object-del", {"id": "p0"})

    def test_cmdline_errors(self):
        r = run_migd(["-object", "tls-creds-x509,id=t,dir=/nonexistent,"
                      "endpoint=server"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("-object tls-creds-x509,id=t,dir=/nonexistent,"
                      "endpoint=server: Unable to access credentials "
                      "/nonexistent/ca-cert.pem: No such file or directory",
                      r.stderr)
        r = run_migd(["-object", "authz-simple,id=a,identity=x",
                      "-object", "authz-simple,id=a,identity=y"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("attempt to add duplicate property 'a' to object "
                      "(type 'container')", r.stderr)


if __name__ == "__main__":
    unittest.main()
