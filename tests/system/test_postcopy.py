"""Postcopy between two real migd processes (source: control/postcopy_src*,
destination: control/postcopy_dst*): a guest that dirties memory faster
than the link, where precopy never converges, switched to postcopy during
the live precopy; the destination's RAM equals the source's RAM after the
source stopped. Also postcopy-preempt, multifd + postcopy (QEMU 10.1),
release-ram, page requests from a running destination guest, capability
rules and QMP errors, a hostile destination on the return path, and
recovery after connection breaks at several points, repeatedly.
"""
import os
import socket
import struct
import threading
import time
import unittest

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for
from tests.system.test_migration import (digest, set_caps, set_params,
                                         wait_status)

MiB = 1 << 20
LINK = 32 << 20      # max-bandwidth, bytes/s
DIRTY = 96           # MB/s the source guest writes
WORKING_SET = 96 << 20
FINAL = ("completed", "failed", "cancelled")


def fill(q):
    q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                               "content": "random", "passes": 1})
    wait_for(lambda: q.cmd("x-guest-workload").get("finished"), timeout=60,
             what="RAM filled")


def events(q, name="MIGRATION"):
    """Statuses of the MIGRATION events received so far."""
    q.sock.settimeout(0.2)
    try:
        while True:
            msg = q.recv()
            if msg is None:
                break
            if "event" in msg:
                q.events.append(msg)
    except (TimeoutError, OSError):
        pass
    finally:
        q.sock.settimeout(10.0)
    out = [e["data"]["status"] for e in q.events if e["event"] == name]
    q.events = [e for e in q.events if e["event"] != name]
    return out


class CutProxy:
    """A TCP proxy whose connections can be cut at once (both ways)."""

    def __init__(self, port):
        self.port = port
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.uri = "tcp:127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.socks = []
        self.conns = 0  # registered so far (cut() cuts those)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def wait_conns(self, n):
        """migd's connect completes in the kernel's backlog: wait until
        this proxy accepted and registered n connections."""
        wait_for(lambda: self.conns >= n, what="%d proxied connections" % n)

    def _accept(self):
        while not self.closed:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.port))
            self.socks += [a, b]
            self.conns += 1
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y),
                                 daemon=True).start()

    @staticmethod
    def _pump(x, y):
        while True:
            try:
                d = x.recv(1 << 16)
            except OSError:
                d = b""
            if not d:
                break
            try:
                y.sendall(d)
            except OSError:
                break
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.socks = []

    def close(self):
        self.closed = True
        self.lsock.close()
        self.cut()


class PostcopyBase(MigdTestCase):
    mem = "256M"

    def pair(self, caps=None, src_args=(), dst_args=(), params=None,
             live=True):
        src = self.migd(["-m", self.mem, "-smp", "2"] + list(src_args))
        dst = self.migd(["-m", self.mem, "-smp", "2", "-incoming", "defer"]
                        + list(dst_args))
        qs, qd = src.qmp(), dst.qmp()
        caps = dict(events=True, postcopy_ram=True, **(caps or {}))
        for q in (qs, qd):
            set_caps(q, **caps)
        if params:
            for q in (qs, qd):
                set_params(q, **params)
        fill(qs)
        if live:
            qs.cmd("x-guest-workload", {
                "dirty-rate": DIRTY, "pattern": "random",
                "working-set": WORKING_SET, "content": "mixed"})
        else:
            qs.cmd("x-guest-workload", {"dirty-rate": "idle"})
        set_params(qs, max_bandwidth=LINK)
        return src, dst, qs, qd

    def start(self, qs, qd, proxy=False):
        port = free_tcp_port()
        uri = "tcp:127.0.0.1:%d" % port
        qd.cmd("migrate-incoming", uri=uri)
        self.proxy = None
        if proxy:
            self.proxy = CutProxy(port)
            self.addCleanup(self.proxy.close)
            uri = self.proxy.uri
        qs.cmd("migrate", uri=uri)
        wait_status(qs, ("active",), 30)
        if proxy:
            caps = {c["capability"]: c["state"]
                    for c in qs.cmd("query-migrate-capabilities")}
            n = 1
            if caps.get("multifd"):
                n += qs.cmd("query-migrate-parameters")["multifd-channels"]
            self.proxy.wait_conns(n)

    def finish(self, qs, qd, timeout=120):
        sinfo = wait_status(qs, FINAL, timeout)
        dinfo = wait_status(qd, FINAL, 60)
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.assertEqual(digest(qs), digest(qd))
        return sinfo, dinfo

    def run_postcopy(self, caps=None, params=None, after=1.0, args=()):
        src, dst, qs, qd = self.pair(caps, params=params, src_args=args,
                                     dst_args=args)
        self.start(qs, qd)
        time.sleep(after)
        info = qs.cmd("query-migrate")
        self.assertEqual(info["status"], "active", info)
        qs.cmd("migrate-start-postcopy")
        sinfo, dinfo = self.finish(qs, qd)
        self.assertGreater(sinfo["ram"]["postcopy-bytes"], 0, sinfo)
        self.assertEqual(events(qs),
                         ["setup", "active", "postcopy-active", "completed"])
        self.assertEqual(qs.cmd("query-status")["status"], "postmigrate")
        return sinfo, dinfo


class PostcopyTest(PostcopyBase):
    # ---- end to end ----------------------------------------------------

    def test_precopy_never_converges_postcopy_completes(self):
        self.run_postcopy()

    def test_preempt(self):
        self.run_postcopy(caps=dict(postcopy_preempt=True))

    def test_multifd_postcopy(self):
        self.run_postcopy(caps=dict(multifd=True),
                          params=dict(multifd_channels=2))

    def test_thp_auto_destination(self):
        # ADVISE switches the destination's x-thp=auto policy off (uffd
        # places 4 KiB pages); the RAM must arrive whole either way.
        ram = ["-object", "memory-backend-ram,id=ram,size=%s,x-thp=auto" % self.mem,
               "-machine", "memory-backend=ram"]
        self.run_postcopy(caps=dict(multifd=True),
                          params=dict(multifd_channels=2), args=ram)

    def test_pause_before_switchover(self):
        src, dst, qs, qd = self.pair(dict(pause_before_switchover=True))
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("pre-switchover",), 30)
        self.assertEqual(qs.cmd("query-status")["status"], "finish-migrate")
        qs.cmd("migrate-continue", state="pre-switchover")
        self.finish(qs, qd)
        self.assertEqual(events(qs), ["setup", "active", "pre-switchover",
                                      "postcopy-active", "completed"])

    def test_stop_event_and_query_fields(self):
        src, dst, qs, qd = self.pair()
        set_params(qs, max_postcopy_bandwidth=16 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        qs.wait_event("STOP", timeout=30)
        info = wait_status(qs, ("postcopy-active",), 30)
        self.assertIn("downtime", info)
        self.assertNotIn("expected-downtime", info)
        self.assertEqual(info["ram"]["downtime-bytes"], 0)
        set_params(qs, max_postcopy_bandwidth=0)
        sinfo, _ = self.finish(qs, qd)
        ram = sinfo["ram"]
        self.assertGreater(ram["precopy-bytes"], 0)
        self.assertEqual(ram["precopy-bytes"] + ram["postcopy-bytes"],
                         ram["transferred"])

    def test_max_postcopy_bandwidth(self):
        src, dst, qs, qd = self.pair(live=False)
        set_params(qs, max_postcopy_bandwidth=16 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        b0, t0 = qs.cmd("query-migrate")["ram"]["transferred"], time.time()
        time.sleep(1.0)
        b1, t1 = qs.cmd("query-migrate")["ram"]["transferred"], time.time()
        rate = (b1 - b0) / (t1 - t0)
        self.assertLess(rate, 24 << 20, rate)
        self.assertGreater(rate, 8 << 20, rate)
        set_params(qs, max_postcopy_bandwidth=0)  # live, as QEMU
        self.finish(qs, qd)

    def test_multifd_flush_after_each_section(self):
        self.run_postcopy(caps=dict(multifd=True),
                          params=dict(multifd_channels=2),
                          args=["-global",
                                "migration.multifd-flush-after-each-"
                                "section=on"])

    def test_multifd_preempt(self):
        self.run_postcopy(caps=dict(multifd=True, postcopy_preempt=True),
                          params=dict(multifd_channels=2))


class ReleaseRamTest(PostcopyBase):
    """release-ram: the source frees pages once they left during
    postcopy; the destination still gets every byte."""

    def run_release(self, caps=None, src_args=()):
        src, dst, qs, qd = self.pair(dict(release_ram=True, **(caps or {})),
                                     src_args=src_args, dst_args=src_args,
                                     live=False)
        before = digest(qs)
        self.start(qs, qd)
        time.sleep(0.3)
        qs.cmd("migrate-start-postcopy")
        sinfo = wait_status(qs, FINAL, 120)
        dinfo = wait_status(qd, FINAL, 60)
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.assertEqual(digest(qd), before)
        # the source's copy is gone (released pages read as zero)
        self.assertNotEqual(digest(qs), before)

    def test_release_ram(self):
        self.run_release()

    def test_release_ram_preempt(self):
        self.run_release(dict(postcopy_preempt=True))

    def test_release_ram_memfd(self):
        self.run_release(src_args=[
            "-object", "memory-backend-memfd,id=m0,size=%s,share=on"
            % self.mem, "-machine", "memory-backend=m0"])


class PostcopyRequestTest(PostcopyBase):
    """The destination's guest runs during postcopy and touches pages that
    have not arrived: they are requested over the return path."""

    def run_requests(self, caps=None):
        src, dst, qs, qd = self.pair(caps, live=False)
        set_params(qs, max_postcopy_bandwidth=4 << 20)
        r = qd.execute("x-guest-workload", {
            "dirty-rate": 8, "pattern": "random", "content": "mixed"})
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        if "error" in r:  # the destination takes no workload while loading
            r = qd.execute("x-guest-workload", {
                "dirty-rate": 8, "pattern": "random", "content": "mixed"})
        self.assertNotIn("error", r, r)
        wait_for(lambda: qs.cmd("query-migrate")["ram"]
                 ["postcopy-requests"] > 0, timeout=30,
                 what="page requests")
        set_params(qs, max_postcopy_bandwidth=0)
        sinfo = wait_status(qs, FINAL, 120)
        dinfo = wait_status(qd, FINAL, 60)
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"), (sinfo, dinfo))
        self.assertGreater(sinfo["ram"]["postcopy-requests"], 0, sinfo)

    def test_requests(self):
        self.run_requests()

    def test_requests_preempt(self):
        self.run_requests(dict(postcopy_preempt=True))


class PostcopyRecoveryTest(PostcopyBase):
    """Connection breaks during postcopy: both sides postcopy-paused (the
    source keeps its stopped guest and RAM), migrate-recover + migrate
    resume:true resynchronise, repeatedly, and the RAM ends up equal."""

    def paused_both(self, qs, qd):
        info = wait_status(qs, ("postcopy-paused",), 30)
        self.assertIn("error-desc", info)
        wait_status(qd, ("postcopy-paused",), 30)
        self.assertEqual(qs.cmd("query-status")["status"], "finish-migrate")
        return info

    def recover(self, qs, qd, proxy=True):
        port = free_tcp_port()
        qd.cmd("migrate-recover", uri="tcp:127.0.0.1:%d" % port)
        uri = "tcp:127.0.0.1:%d" % port
        if proxy:
            self.proxy = CutProxy(port)
            self.addCleanup(self.proxy.close)
            uri = self.proxy.uri
        qs.cmd("migrate", uri=uri, resume=True)

    def cut_cycle(self, rounds, caps=None, delay=0.3):
        src, dst, qs, qd = self.pair(caps)
        set_params(qs, max_postcopy_bandwidth=16 << 20)
        self.start(qs, qd, proxy=True)
        time.sleep(0.5)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        time.sleep(0.1)  # past the switch (a break during it: see below)
        preempt = bool((caps or {}).get("postcopy_preempt"))
        if preempt:
            self.proxy.wait_conns(2)  # main + preempt
        for i in range(rounds):
            time.sleep(delay * (i % 3))  # early, middle, later breaks
            self.proxy.cut()
            self.paused_both(qs, qd)
            self.recover(qs, qd)
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

    def test_breaks_repeatedly(self):
        self.cut_cycle(4)

    def test_breaks_multifd(self):
        self.cut_cycle(2, caps=dict(multifd=True))

    def test_breaks_preempt(self):
        self.cut_cycle(3, caps=dict(postcopy_preempt=True))

    def test_migrate_pause_then_recover(self):
        src, dst, qs, qd = self.pair()
        set_params(qs, max_postcopy_bandwidth=8 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        qo = src.qmp(negotiate=False)  # migrate-pause is allow-oob
        qo.negotiate(oob=True)
        r = qo.execute("migrate-pause", oob=True)
        self.assertEqual(r.get("return"), {}, r)
        info = self.paused_both(qs, qd)
        self.assertEqual(info["error-desc"],
                         "Postcopy migration is paused by the user")
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "resume": True})
        # connection refused: back to postcopy-paused, the guest is safe
        self.assertEqual(r.get("return"), {}, r)
        wait_status(qs, ("postcopy-paused",), 30)
        self.recover(qs, qd, proxy=False)
        set_params(qs, max_postcopy_bandwidth=0)
        self.finish(qs, qd)

    def test_break_during_recovery(self):
        """A recovery that stalls (a destination that never answers
        RECV_BITMAP) is paused again by migrate-pause; the next one works."""
        src, dst, qs, qd = self.pair()
        set_params(qs, max_postcopy_bandwidth=8 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        qs.cmd("migrate-pause")
        self.paused_both(qs, qd)
        fake = FakeDestination()
        self.addCleanup(fake.close)
        qs.cmd("migrate", uri=fake.uri, resume=True)
        wait_status(qs, ("postcopy-recover",), 30)
        qs.cmd("migrate-pause")  # allowed in postcopy-recover
        wait_status(qs, ("postcopy-paused",), 30)
        self.recover(qs, qd, proxy=False)
        set_params(qs, max_postcopy_bandwidth=0)
        self.finish(qs, qd)

    def test_destination_dies(self):
        """The destination process dies during postcopy: the source stays
        paused with its RAM (an operator decides), it does not fail."""
        src, dst, qs, qd = self.pair()
        set_params(qs, max_postcopy_bandwidth=8 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        before = digest(qs)
        dst.proc.kill()
        dst.proc.wait()
        self._procs.remove(dst)  # killed on purpose: not a test failure
        dst.cleanup()
        info = wait_status(qs, ("postcopy-paused",), 30)
        self.assertIn("error-desc", info)
        self.assertEqual(digest(qs), before)
        self.assertEqual(qs.cmd("query-status")["status"], "finish-migrate")

    def test_break_before_postcopy_fails_and_restarts(self):
        """A break during precopy (postcopy-ram on, not started) fails the
        migration as precopy does, and the source guest runs again."""
        src, dst, qs, qd = self.pair()
        self.start(qs, qd, proxy=True)
        time.sleep(0.3)
        self.proxy.cut()
        info = wait_status(qs, FINAL, 30)
        self.assertEqual(info["status"], "failed", info)
        wait_for(lambda: qs.cmd("query-status")["status"] == "running",
                 what="source running again")

    def test_break_at_the_switch(self):
        """A break right when postcopy starts: either before the package
        (failed, the source guest runs again) or after it (paused, then
        recovered) - never a lost guest."""
        for delay in (0.0, 0.005, 0.02):
            src, dst, qs, qd = self.pair(live=False)
            set_params(qs, max_postcopy_bandwidth=8 << 20)
            self.start(qs, qd, proxy=True)
            qs.cmd("migrate-start-postcopy")
            time.sleep(delay)
            self.proxy.cut()
            info = wait_status(qs, ("failed", "postcopy-paused"), 30)
            if info["status"] == "failed":
                wait_for(lambda: qs.cmd("query-status")["status"] in
                         ("running", "paused"), what="source back")
                continue
            wait_status(qd, ("postcopy-paused", "failed"), 30)
            if qd.cmd("query-migrate")["status"] == "failed":
                continue  # it never got the package: nothing runs there
            self.recover(qs, qd, proxy=False)
            set_params(qs, max_postcopy_bandwidth=0)
            self.finish(qs, qd)

    def test_migrate_pause_on_destination(self):
        """migrate-pause on a migd destination (its half: hpd's
        incoming_postcopy_pause) pauses both sides too."""
        src, dst, qs, qd = self.pair()
        set_params(qs, max_postcopy_bandwidth=8 << 20)
        self.start(qs, qd)
        qs.cmd("migrate-start-postcopy")
        wait_status(qd, ("postcopy-active",), 30)
        self.assertEqual(qd.cmd("migrate-pause"), {})
        self.paused_both(qs, qd)
        r = qd.execute("migrate-pause")
        self.assertQMPError(r, "GenericError",
                            "migrate-pause is currently only supported "
                            "during postcopy-active or postcopy-recover "
                            "state")
        self.recover(qs, qd, proxy=False)
        set_params(qs, max_postcopy_bandwidth=0)
        self.finish(qs, qd)

    def test_resume_errors(self):
        src, dst, qs, qd = self.pair(live=False)
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "resume": True})
        self.assertQMPError(r, "GenericError",
                            "Cannot resume if there is no paused migration")
        set_caps(qs, release_ram=True)
        set_params(qs, max_postcopy_bandwidth=8 << 20)
        self.start(qs, qd)
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "resume": True})
        self.assertQMPError(r, "GenericError",
                            "Cannot resume if there is no paused migration")
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        qs.cmd("migrate-pause")
        wait_status(qs, ("postcopy-paused",), 30)
        r = qs.execute("migrate", {"uri": "tcp:127.0.0.1:1", "resume": True})
        self.assertQMPError(r, "GenericError",
                            "Postcopy recovery cannot work when release-ram "
                            "capability is set")
        r = qs.execute("migrate_cancel")
        self.assertQMPError(r, "GenericError",
                            "Postcopy migration in progress, cannot cancel.")
        # the destination may have run the guest: the source stays stopped
        self.assertEqual(qs.cmd("query-status")["status"], "finish-migrate")


class FakeDestination:
    """A destination that accepts migd's main channel, reads and drops
    the stream, and writes whatever return-path bytes a test wants."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.uri = "tcp:127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.conn = None
        self.received = bytearray()
        self.cmds = []  # (cmd, payload) of QEMU_VM_COMMANDs seen (roughly)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            self.conn, _ = self.lsock.accept()
        except OSError:
            return
        while True:
            try:
                d = self.conn.recv(1 << 16)
            except OSError:
                return
            if not d:
                return
            self.received += d

    def send(self, data):
        wait_for(lambda: self.conn is not None, what="connection")
        self.conn.sendall(data)

    def close(self):
        for s in (self.conn, self.lsock):
            if s:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def rp(msg_type, payload=b""):
    return struct.pack(">HH", msg_type, len(payload)) + payload


def req_id(start, length, name):
    n = name.encode()
    return rp(3, struct.pack(">QIB", start, length, len(n)) + n)


class HostileReturnPathTest(PostcopyBase):
    """Bad input on the return path during postcopy: the source pauses
    with QEMU's message in error-desc, stays alive, keeps its stopped
    guest's RAM, and can be cancelled."""

    def start_fake(self):
        src = self.migd(["-m", self.mem, "-smp", "2"])
        qs = src.qmp()
        set_caps(qs, events=True, postcopy_ram=True)
        fill(qs)
        qs.cmd("x-guest-workload", {"dirty-rate": "idle"})
        set_params(qs, max_bandwidth=LINK, max_postcopy_bandwidth=4 << 20)
        fake = FakeDestination()
        self.addCleanup(fake.close)
        qs.cmd("migrate", uri=fake.uri)
        wait_status(qs, ("active",), 30)
        qs.cmd("migrate-start-postcopy")
        wait_status(qs, ("postcopy-active",), 30)
        self.block = qs.cmd("x-query-ram-digest")[0]["block"]
        self.size = qs.cmd("x-query-ram-digest")[0]["size"]
        return src, qs, fake

    def expect_pause(self, qs, desc):
        before = digest(qs)
        info = wait_status(qs, ("postcopy-paused",), 30)
        self.assertEqual(info.get("error-desc"), desc, info)
        self.assertEqual(qs.cmd("query-status")["status"], "finish-migrate")
        self.assertEqual(digest(qs), before)
        r = qs.execute("migrate_cancel")
        self.assertQMPError(r, "GenericError",
                            "Postcopy migration in progress, cannot cancel.")

    def test_stream_start_advise(self):
        """OPEN_RETURN_PATH, PING 1, then POSTCOPY_ADVISE (page-size
        summary, target page size) right after the header, as QEMU."""
        src, qs, fake = self.start_fake()
        want = (bytes([8, 0, 1, 0, 0]) + bytes([8, 0, 2, 0, 4])
                + struct.pack(">I", 1) + bytes([8, 0, 3, 0, 16])
                + struct.pack(">QQ", 4096, 4096))
        data = bytes(fake.received[:256])
        self.assertEqual(data[:8], b"QEVM\x00\x00\x00\x03")
        self.assertIn(want, data)
        self.assertLess(data.index(want), 32)
        # the switch: DISCARD command(s), PING 2, PACKAGED, PING 4
        wait_for(lambda: bytes([8, 0, 2, 0, 4]) + struct.pack(">I", 4)
                 in fake.received, what="PING 4")
        rest = bytes(fake.received)
        i2 = rest.index(bytes([8, 0, 2, 0, 4]) + struct.pack(">I", 2))
        self.assertEqual(rest[i2 + 9:i2 + 14], bytes([8, 0, 7, 0, 4]))
        plen = struct.unpack(">I", rest[i2 + 14:i2 + 18])[0]
        pkg = rest[i2 + 18:i2 + 18 + plen]
        self.assertEqual(pkg[:5], bytes([8, 0, 4, 0, 0]))       # LISTEN
        self.assertEqual(pkg[-5:], bytes([8, 0, 5, 0, 0]))      # RUN
        self.assertIn(bytes([8, 0, 2, 0, 4]) + struct.pack(">I", 3), pkg)
        self.assertIn(bytes([8, 0, 6]), rest[:i2])               # DISCARD

    def test_unknown_block(self):
        src, qs, fake = self.start_fake()
        fake.send(req_id(0, 4096, "nope"))
        self.expect_pause(qs, "MIG_RP_MSG_REQ_PAGES has no block 'nope'")

    def test_out_of_range(self):
        src, qs, fake = self.start_fake()
        fake.send(req_id(self.size, 4096, self.block))
        self.expect_pause(qs, "MIG_RP_MSG_REQ_PAGES request overrun, "
                          "start=%x len=1000 blocklen=%x"
                          % (self.size, self.size))

    def test_misaligned(self):
        src, qs, fake = self.start_fake()
        fake.send(req_id(100, 4096, self.block))
        self.expect_pause(qs, "MIG_RP_MSG_REQ_PAGES: Misaligned page "
                          "request, start:64 len: 4096")

    def test_no_previous_block(self):
        src, qs, fake = self.start_fake()
        fake.send(rp(4, struct.pack(">QI", 0, 4096)))
        self.expect_pause(qs, "MIG_RP_MSG_REQ_PAGES has no previous block")

    def test_invalid_message(self):
        src, qs, fake = self.start_fake()
        fake.send(rp(0x63))
        self.expect_pause(qs, "Received invalid message 0x0063 length "
                          "0x0000")

    def test_bitmap_outside_recovery(self):
        src, qs, fake = self.start_fake()
        n = self.block.encode()
        fake.send(rp(5, bytes([len(n)]) + n))
        self.expect_pause(qs, "Reload bitmap in incorrect state "
                          "postcopy-active")

    def test_destination_closes_without_shut(self):
        """The stream ends but the destination closes instead of SHUT:
        it never said it loaded everything, so the source does not report
        completed; it pauses (recoverable) and keeps its stopped guest."""
        src, qs, fake = self.start_fake()
        set_params(qs, max_postcopy_bandwidth=0)
        seen = [-1, time.monotonic()]

        def quiet():  # nothing new for 0.5 s: the stream has ended
            if len(fake.received) != seen[0]:
                seen[:] = [len(fake.received), time.monotonic()]
            return time.monotonic() - seen[1] > 0.5
        wait_for(quiet, timeout=60, what="stream ended")
        self.assertEqual(qs.cmd("query-migrate")["status"], "postcopy-active")
        fake.close()
        self.expect_pause(qs, "Unable to read from socket: the destination "
                              "closed the return path before reporting "
                              "completion")

    def test_endless_repeats(self):
        src, qs, fake = self.start_fake()
        one = req_id(0, 4096, self.block) + rp(4, struct.pack(">QI", 0, 4096))
        for _ in range(200):
            fake.send(one * 100)
        wait_for(lambda: qs.cmd("query-migrate")["ram"]["postcopy-requests"]
                 >= 40000, timeout=30, what="requests counted")
        info = qs.cmd("query-migrate")
        self.assertEqual(info["status"], "postcopy-active", info)

    def recovering_fake(self, src, qs, fake):
        qs.cmd("migrate-pause")
        wait_status(qs, ("postcopy-paused",), 30)
        fake2 = FakeDestination()
        self.addCleanup(fake2.close)
        qs.cmd("migrate", uri=fake2.uri, resume=True)
        wait_status(qs, ("postcopy-recover",), 30)
        return fake2

    def bitmap_msg(self, size, body_len, end):
        n = self.block.encode()
        return (rp(5, bytes([len(n)]) + n) + struct.pack(">Q", size)
                + b"\xff" * body_len + struct.pack(">Q", end))

    def test_bad_resume_ack(self):
        src, qs, fake = self.start_fake()
        fake2 = self.recovering_fake(src, qs, fake)
        want = self.size // 4096 // 8
        fake2.send(self.bitmap_msg(want, want, 0x0123456789abcdef))
        fake2.send(rp(6, struct.pack(">I", 2)))
        info = wait_status(qs, ("postcopy-paused",), 30)
        self.assertEqual(info.get("error-desc"), "illegal resume_ack value 2")

    def test_good_recovery_handshake(self):
        """The source's side of a recovery, byte for byte: RECV_BITMAP
        command per block, then (after the bitmap) POSTCOPY_RESUME."""
        src, qs, fake = self.start_fake()
        fake2 = self.recovering_fake(src, qs, fake)
        n = self.block.encode()
        wait_for(lambda: bytes([8, 0, 10, 0, len(n) + 1, len(n)]) + n
                 in fake2.received, what="RECV_BITMAP command")
        want = self.size // 4096 // 8
        fake2.send(self.bitmap_msg(want, want, 0x0123456789abcdef))
        wait_for(lambda: bytes([8, 0, 9, 0, 0]) in fake2.received,
                 what="POSTCOPY_RESUME")
        fake2.send(rp(6, struct.pack(">I", 1)))
        wait_status(qs, ("postcopy-active", "completed"), 30)

    def test_bad_bitmap_size(self):
        src, qs, fake = self.start_fake()
        fake2 = self.recovering_fake(src, qs, fake)
        want = self.size // 4096 // 8
        fake2.send(self.bitmap_msg(want + 8, 0, 0))
        info = wait_status(qs, ("postcopy-paused",), 30)
        self.assertEqual(info.get("error-desc"),
                         "ramblock '%s' bitmap size mismatch (0x%x != 0x%x)"
                         % (self.block, want + 8, want))

    def test_bad_bitmap_end_mark(self):
        src, qs, fake = self.start_fake()
        fake2 = self.recovering_fake(src, qs, fake)
        want = self.size // 4096 // 8
        fake2.send(self.bitmap_msg(want, want, 0x1234))
        info = wait_status(qs, ("postcopy-paused",), 30)
        self.assertEqual(info.get("error-desc"),
                         "ramblock '%s' end mark incorrect: 0x1234"
                         % self.block)


class PostcopyRulesTest(MigdTestCase):
    """Capability rules (QEMU 10.1) and QMP errors."""

    def test_capability_rules(self):
        q = self.migd(["-m", "64M"]).qmp()
        r = q.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "postcopy-preempt", "state": True}]})
        self.assertQMPError(r, "GenericError",
                            "Postcopy preempt requires postcopy-ram")
        # multifd + postcopy-ram: allowed as in QEMU 10.1
        set_caps(q, multifd=True, postcopy_ram=True, postcopy_preempt=True)
        r = q.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "x-ignore-shared", "state": True}]})
        self.assertQMPError(r, "GenericError",
                            "Postcopy is not compatible with ignore-shared")

    def test_start_postcopy_errors(self):
        q = self.migd(["-m", "64M"]).qmp()
        r = q.execute("migrate-start-postcopy")
        self.assertQMPError(r, "GenericError",
                            "Enable postcopy with migrate_set_capability "
                            "before the start of migration")
        set_caps(q, postcopy_ram=True)
        r = q.execute("migrate-start-postcopy")
        self.assertQMPError(r, "GenericError",
                            "Postcopy must be started after migration has "
                            "been started")
        r = q.execute("migrate-start-postcopy", {"x": 1})
        self.assertQMPError(r, "GenericError",
                            "Parameter 'x' is unexpected")
        r = q.execute("migrate-pause")
        self.assertQMPError(r, "GenericError",
                            "migrate-pause is currently only supported "
                            "during postcopy-active or postcopy-recover "
                            "state")

    # postcopy over TLS works: tests/system/test_postcopy_tls.py

    def test_start_postcopy_after_completion_is_ok(self):
        src = self.migd(["-m", "64M"])
        dst = self.migd(["-m", "64M", "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        for q in (qs, qd):
            set_caps(q, postcopy_ram=True)
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        qs.cmd("migrate", uri=uri)
        wait_status(qs, FINAL, 60)
        self.assertEqual(qs.cmd("migrate-start-postcopy"), {})


class MigperfPostcopyTest(unittest.TestCase):
    """migperf's postcopy scenario (--postcopy, --postcopy-preempt,
    --postcopy-after) on a small guest: completes, figures recorded."""

    def run_migperf(self, *extra):
        import json
        import subprocess
        import sys
        import tempfile
        from tests.system.migdtest import BUILD, ROOT
        out = os.path.join(tempfile.mkdtemp(prefix="test-pc-migperf-"),
                           "r.json")
        env = dict(os.environ, MIGPERF_BUILD=BUILD)
        r = subprocess.run(
            [sys.executable, os.path.join(ROOT, "perf", "migperf"), "run",
             "--mem", "64M", "--cpus", "2", "--dirty-rate", "64",
             "--working-set", "32M", "--max-bandwidth", "16M",
             "--postcopy-after", "0.5", "-q", "-o", out] + list(extra),
            capture_output=True, text=True, timeout=120, env=env,
            stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        with open(out) as f:
            return json.load(f)["result"]

    def test_postcopy_digest(self):
        res = self.run_migperf("--postcopy", "on",
                               "--postcopy-dst-workload", "off")
        self.assertTrue(res["digest"]["match"], res)
        self.assertGreater(res["postcopy_bytes"], 0)
        self.assertIsNotNone(res["postcopy_started_s"])

    def test_preempt_guest_progress(self):
        res = self.run_migperf("--postcopy-preempt", "on")
        self.assertEqual(res["status"], "completed", res)
        self.assertIn("dst_guest_rate_during_postcopy_bps", res)
