"""Postcopy on migd's destination with crafted QEMU streams
(tests/system/qemustream.py): a complete postcopy stream (ADVISE, precopy
pages, DISCARD, PACKAGED with LISTEN/RUN, pages placed through
userfaultfd, EOF), and hostile commands and records: bad blocks, offsets,
lengths, commands in the wrong order, oversized or truncated packages.
Each ends with QEMU's message, never with a crash, a write outside RAM or
a guest running on zero-filled pages.
"""
import hashlib
import struct
import time

from tests.interop.qemutest import event_trace, migration_events
from tests.system import qemustream as qs
from tests.system.test_incoming import IncomingBase, page, wait_status

PAGE = qs.PAGE
MiB = 1 << 20
SIZE = 4 * MiB
GENERIC = "GenericError"

CMD_ADVISE = 3
CMD_LISTEN = 4
CMD_RUN = 5
CMD_DISCARD = 6
CMD_PACKAGED = 7
CMD_RESUME = 9
CMD_RECV_BITMAP = 10


def advise(summary=PAGE, target=PAGE):
    return struct.pack(">QQ", summary, target)


def discard(name, ranges, version=0, nil=0):
    name = name.encode()
    out = bytes([version, len(name)]) + name + bytes([nil])
    for start, length in ranges:
        out += struct.pack(">QQ", start, length)
    return out


def package(inner, length=None):
    """PACKAGED command + blob (inner: a Stream without header)."""
    data = inner.bytes()
    n = len(data) if length is None else length
    return qs.Stream().command(CMD_PACKAGED, qs.be32(n)).raw(data)


def listen_run(runstate="running"):
    return (qs.Stream().command(CMD_LISTEN).timer().globalstate(runstate)
            .command(CMD_RUN))


def prefix():
    """Header, ADVISE, the RAM section's start, two precopy pages."""
    s = qs.Stream().header().command(qs.CMD_OPEN_RETURN_PATH)
    s.command(CMD_ADVISE, advise()).ram_start([("ram", SIZE)])
    s.ram_part().page(0, page(0xA0)).page(PAGE, page(0xA1), block=None)
    return s.close()


def rest():
    """ZERO records for every page, as a source sends what is left: pages
    already placed or present stay as they are. Without them the stream
    would end with pages never received (refused: the guest would read
    zeros where the source's data belongs)."""
    s = qs.Stream().ram_part().zero(0)
    for off in range(PAGE, SIZE, PAGE):
        s.zero(off, block=None)
    return s.close()


def image(pages):
    img = bytearray(SIZE)
    for off, data in pages.items():
        img[off:off + PAGE] = data
    return hashlib.sha256(img).hexdigest()


class PostcopyDst(IncomingBase):
    def pc_dest(self, *extra, postcopy=True):
        m, q = self.dest(*extra)
        if postcopy:
            q.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "postcopy-ram", "state": True}])
        return m, q, self.listen(q)

    def expect(self, q, desc, runstate="inmigrate"):
        info = wait_status(q, ("failed", "completed"))
        self.assertEqual(info["status"], "failed", info)
        self.assertEqual(info["error-desc"], desc)
        self.assertEqual(self.runstate(q), runstate)
        return info

    def test_complete_stream(self):
        _, q, addr = self.pc_dest()
        s = prefix()
        s.command(CMD_DISCARD, discard("ram", [(0, PAGE)]))
        s.raw(package(listen_run()).bytes())
        s.ram_part().page(0, page(0xB0)).zero(2 * PAGE, block=None)
        s.page(3 * PAGE, page(0xB3), block=None).close()
        s.raw(rest().bytes()).ram_part(end=True).close().eof()
        self.send_main(addr, s.bytes())
        info = wait_status(q, ("failed", "completed"))
        self.assertEqual(info, {"status": "completed"})
        self.assertEqual(self.runstate(q), "running")
        self.assertEqual(event_trace(q), [
            "MIGRATION setup", "MIGRATION active", "MIGRATION postcopy-active",
            "RESUME", "MIGRATION completed"])
        want = image({0: page(0xB0), PAGE: page(0xA1), 3 * PAGE: page(0xB3)})
        self.assertEqual(self.digest(q), want)

    def test_autostart_off(self):
        """-S: RUN leaves the guest paused (QEMU's run_bh), no RESUME."""
        _, q, addr = self.pc_dest("-S")
        s = prefix().raw(package(listen_run()).bytes())
        s.raw(rest().bytes()).ram_part(end=True).close().eof()
        self.send_main(addr, s.bytes())
        self.assertEqual(wait_status(q, ("failed", "completed")),
                         {"status": "completed"})
        self.assertEqual(self.runstate(q), "paused")
        self.assertNotIn("RESUME", event_trace(q))

    def test_digest_refused_while_pages_missing(self):
        _, q, addr = self.pc_dest()
        s = prefix().raw(package(listen_run()).bytes())
        sock = self.send_main(addr, s.bytes())
        wait_status(q, ("postcopy-active",))
        self.assertQMPError(q.execute("x-query-ram-digest"), GENERIC,
                            "Guest RAM is incomplete: postcopy has not "
                            "received every page")
        sock.close()  # a network break: paused, not failed
        wait_status(q, ("postcopy-paused",))
        self.assertEqual(self.runstate(q), "running")

    # ---- hostile commands -------------------------------------------------

    def hostile(self, tail, desc, postcopy=True, runstate="inmigrate",
                base=None, dest=None):
        _, q, addr = dest or self.pc_dest(postcopy=postcopy)
        s = prefix() if base is None else base
        self.send_main(addr, s.raw(tail.bytes()).bytes())
        return self.expect(q, desc, runstate)

    def test_advise_checks(self):
        head = qs.Stream().header()
        cases = [
            (True, advise(summary=0x201000),
             "Postcopy needs matching RAM page sizes (s=201000 d=1000)"),
            (True, advise(target=0x10000),
             "Postcopy needs matching target page sizes (s=65536 d=4096)"),
            (False, advise(),
             "RAM postcopy is disabled but have 16 byte advise"),
            (True, b"", "RAM postcopy is enabled but have 0 byte advise"),
        ]
        for postcopy, payload, desc in cases:
            with self.subTest(desc=desc):
                tail = qs.Stream().command(CMD_ADVISE, payload)
                self.hostile(tail, desc, postcopy, base=qs.Stream().header())
        del head

    def test_wrong_order(self):
        def head():
            return qs.Stream().header()
        cases = [
            (head(), qs.Stream().command(CMD_LISTEN),
             "CMD_POSTCOPY_LISTEN in wrong postcopy state (0)"),
            (head(), qs.Stream().command(CMD_RUN),
             "CMD_POSTCOPY_RUN in wrong postcopy state (0)"),
            (head(), qs.Stream().command(CMD_DISCARD,
                                         discard("ram", [(0, PAGE)])),
             "CMD_POSTCOPY_RAM_DISCARD in wrong postcopy state (0)"),
            (prefix(), qs.Stream().command(CMD_ADVISE, advise()),
             "CMD_POSTCOPY_ADVISE in wrong postcopy state (1)"),
            (prefix(), qs.Stream().command(CMD_RUN),
             "CMD_POSTCOPY_RUN in wrong postcopy state (1)"),
            (prefix(), qs.Stream().command(CMD_RECV_BITMAP, b"\x03ram"),
             "loadvm_handle_recv_bitmap: only possible to receive bitmap "
             "during recover"),
        ]
        for base, tail, desc in cases:
            with self.subTest(desc=desc):
                self.hostile(tail, desc, base=base)

    def test_discard_checks(self):
        cases = [
            (discard("nope", [(0, PAGE)]),
             "ram_discard_range: Failed to find block 'nope'"),
            (discard("ram", [(SIZE, PAGE)]),
             "ram_block_discard_range: Overrun block 'ram' "
             "(4194304/1000/400000)"),
            (discard("ram", [(PAGE, 1 << 63)]),
             "ram_block_discard_range: Overrun block 'ram' "
             "(4096/8000000000000000/400000)"),
            (discard("ram", [(100, PAGE)]),
             "ram_block_discard_range: Unaligned start address: 0x64"),
            (discard("ram", [(0, 100)]),
             "ram_block_discard_range: Unaligned length: 64"),
            (discard("ram", [(0, PAGE)], version=1),
             "CMD_POSTCOPY_RAM_DISCARD invalid version (1)"),
            (discard("ram", [(0, PAGE)], nil=7),
             "CMD_POSTCOPY_RAM_DISCARD missing nil (7)"),
            (discard("ram", [(0, PAGE)])[:-3],
             "CMD_POSTCOPY_RAM_DISCARD invalid length (19)"),
        ]
        for payload, desc in cases:
            with self.subTest(desc=desc):
                self.hostile(qs.Stream().command(CMD_DISCARD, payload), desc)

    def test_packaged_checks(self):
        nested = qs.Stream().raw(package(listen_run()).bytes())
        cases = [
            (package(listen_run(), length=(1 << 24) + 1),
             "Unreasonably large packaged state: 16777217"),
            (package(nested),
             "CMD_PACKAGED inside a packaged stream"),
            (package(qs.Stream().command(CMD_LISTEN).raw(b"\x99")),
             "Unknown savevm section type 153"),
        ]
        for tail, desc in cases:
            with self.subTest(desc=desc):
                self.hostile(tail, desc)

    def test_packaged_truncated(self):
        _, q, addr = self.pc_dest()
        s = prefix().raw(package(listen_run(), length=4096).bytes())
        sock = self.send_main(addr, s.bytes())
        time.sleep(0.3)
        sock.close()
        info = wait_status(q, ("failed", "completed"))
        self.assertEqual(info["status"], "failed")
        self.assertTrue(info["error-desc"].startswith(
            "CMD_PACKAGED: Buffer receive fail"), info)

    # ---- hostile records after LISTEN ------------------------------------

    def test_records_after_listen(self):
        listen_only = package(qs.Stream().command(CMD_LISTEN)
                              .timer().globalstate().eof())
        cases = [
            (qs.Stream().ram_part().page(SIZE, page(1)),
             "Illegal RAM offset 400000"),
            (qs.Stream().ram_part().page(0, page(1), block="nope"),
             "Can't find block nope"),
            (qs.Stream().ram_part().zero(0, fill=5),
             "Found a zero page with value 5"),
            (qs.Stream().ram_part().record(qs.F_MULTIFD_FLUSH),
             "Unknown combination of migration flags: 0x200 "
             "(postcopy mode)"),
        ]
        # the package ends without RUN: the guest never runs
        for tail, desc in cases:
            with self.subTest(desc=desc):
                base = prefix().raw(listen_only.bytes())
                self.hostile(tail, desc, base=base)

    def test_bad_record_after_run_keeps_guest_blocked(self):
        dest = self.pc_dest("-smp", "1")
        q = dest[1]
        q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "random",
                                   "content": "read"})
        base = prefix().raw(package(listen_run()).bytes())
        tail = qs.Stream().ram_part().page(SIZE + PAGE, page(1))
        time.sleep(0.3)  # the vCPUs fault meanwhile
        self.hostile(tail, "Illegal RAM offset 401000", runstate="running",
                     base=base, dest=dest)
        # vCPUs wait on their missing pages: RAM is never zero-filled
        self.assertQMPError(q.execute("x-query-ram-digest"), GENERIC,
                            "Guest RAM is incomplete: postcopy has not "
                            "received every page")
        first = [c["bytes-written"]
                 for c in q.cmd("x-guest-workload")["vcpus"]]
        time.sleep(0.5)
        self.assertEqual([c["bytes-written"]
                          for c in q.cmd("x-guest-workload")["vcpus"]], first)

    def test_eof_with_pages_never_sent_keeps_guest_blocked(self):
        """A source that ends postcopy without sending every page: failed,
        RAM stays registered (the guest never reads zeros for them)."""
        dest = self.pc_dest()
        q = dest[1]
        base = prefix().raw(package(listen_run()).bytes())
        base.ram_part().page(5 * PAGE, page(5)).close()
        self.hostile(qs.Stream().ram_part(end=True).close().eof(),
                     "Postcopy ended with %d pages of block ram never "
                     "received" % (SIZE // PAGE - 3), runstate="running",
                     base=base, dest=dest)
        self.assertQMPError(q.execute("x-query-ram-digest"), GENERIC,
                            "Guest RAM is incomplete: postcopy has not "
                            "received every page")

    def test_idle_timeout_pauses(self):
        """A source gone silent after RUN (a stalled network, no error):
        x-incoming-idle-timeout pauses instead of failing, so that
        migrate-recover can still save the running guest."""
        _, q, addr = self.pc_dest(
            "-global", "migration.x-incoming-idle-timeout=1")
        s = prefix().raw(package(listen_run()).bytes())
        sock = self.send_main(addr, s.bytes())
        info = wait_status(q, ("postcopy-paused", "failed"), timeout=15)
        self.assertEqual(info["status"], "postcopy-paused", info)
        self.assertEqual(self.runstate(q), "running")
        self.assertEqual(migration_events(q), [
            "setup", "active", "postcopy-active", "postcopy-paused"])
        sock.close()

    def test_resume_outside_recovery_is_ignored(self):
        _, q, addr = self.pc_dest()
        s = prefix().raw(package(listen_run()).bytes())
        s.command(CMD_RESUME).raw(rest().bytes())
        s.ram_part(end=True).close().eof()
        self.send_main(addr, s.bytes())
        self.assertEqual(wait_status(q, ("failed", "completed")),
                         {"status": "completed"})

    # ---- migrate-recover / migrate-pause ----------------------------------

    def test_recover_and_pause_states(self):
        _, q, addr = self.pc_dest()
        self.assertQMPError(
            q.execute("migrate-recover", {"uri": "tcp:127.0.0.1:0"}),
            GENERIC, "Migrate recover can only be run when postcopy is "
            "paused.")
        self.assertQMPError(
            q.execute("migrate-pause"), GENERIC,
            "migrate-pause is currently only supported during "
            "postcopy-active or postcopy-recover state")
        s = prefix().raw(package(listen_run()).bytes())
        self.send_main(addr, s.bytes())
        wait_status(q, ("postcopy-active",))
        self.assertEqual(q.cmd("migrate-pause"), {})
        wait_status(q, ("postcopy-paused",))
        self.assertQMPError(
            q.execute("migrate-recover", {"uri": "foo:bar"}), GENERIC,
            "unknown migration protocol: foo:bar")
        self.assertQMPError(
            q.execute("migrate-recover", {"uri": "exec:cat"}), GENERIC,
            "Postcopy recovery is only supported by migd over tcp:, unix: "
            "and vsock:")
        self.assertQMPError(
            q.execute("migrate-recover"), GENERIC,
            "Parameter 'uri' is missing")
        self.assertEqual(q.cmd("migrate-recover", uri="tcp:127.0.0.1:0"),
                         {})
        new = self.address(q)
        self.assertNotEqual(new, addr)
        # the new main channel: postcopy-recover, then RESUME -> ACK
        sock = self.connect(new)
        sock.sendall(qs.Stream().command(CMD_RECV_BITMAP, b"\x03ram")
                     .bytes())
        wait_status(q, ("postcopy-recover",))
        hdr = self.recv_exact(sock, 4 + 4)
        self.assertEqual(hdr, b"\x00\x05\x00\x04\x03ram")
        size = struct.unpack(">Q", self.recv_exact(sock, 8))[0]
        self.assertEqual(size, SIZE // PAGE // 8)
        bits = self.recv_exact(sock, size)
        self.assertEqual(bits, b"\x03" + bytes(size - 1))  # precopy 0, 1
        self.assertEqual(self.recv_exact(sock, 8),
                         struct.pack(">Q", 0x0123456789abcdef))
        sock.sendall(qs.Stream().command(CMD_RESUME).bytes())
        self.assertEqual(self.recv_exact(sock, 8),
                         b"\x00\x06\x00\x04\x00\x00\x00\x01")
        wait_status(q, ("postcopy-active",))
        sock.sendall(rest().ram_part(end=True).close().eof().bytes())
        self.assertEqual(wait_status(q, ("failed", "completed")),
                         {"status": "completed"})

    def test_break_during_recovery(self):
        """migrate-pause in postcopy-recover (before RESUME): paused
        again; a second migrate-recover finishes."""
        _, q, addr = self.pc_dest()
        s = prefix().raw(package(listen_run()).bytes())
        first = self.send_main(addr, s.bytes())
        wait_status(q, ("postcopy-active",))
        first.close()
        wait_status(q, ("postcopy-paused",))
        for attempt in range(2):
            q.cmd("migrate-recover", uri="tcp:127.0.0.1:0")
            sock = self.connect(self.address(q))
            sock.sendall(qs.Stream().command(CMD_RECV_BITMAP, b"\x03ram")
                         .bytes())
            wait_status(q, ("postcopy-recover",))
            self.recv_exact(sock, 8 + 8 + SIZE // PAGE // 8 + 8)
            if attempt == 0:  # paused again, by migrate-pause this time
                self.assertEqual(q.cmd("migrate-pause"), {})
                wait_status(q, ("postcopy-paused",))
                sock.close()
        sock.sendall(qs.Stream().command(CMD_RESUME).raw(rest().bytes())
                     .ram_part(end=True).close().eof().bytes())
        self.assertEqual(wait_status(q, ("failed", "completed")),
                         {"status": "completed"})
        self.assertEqual(migration_events(q), [
            "setup", "active", "postcopy-active", "postcopy-paused",
            "postcopy-recover", "postcopy-paused", "postcopy-recover",
            "postcopy-active", "completed"])

    @staticmethod
    def recv_exact(sock, n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                break
            out += chunk
        return out


if __name__ == "__main__":
    import unittest
    unittest.main()


class PostcopyFromMigd(IncomingBase):
    """migd -> migd (hps's source side), QEMU 10.1 semantics: multifd
    precopy pages, then postcopy pages on the main (and preempt) channel;
    the destination's vCPUs read during postcopy. RAM must match."""

    def run_case(self, multifd=0, preempt=False, cut=False, recover=False):
        import os
        import tempfile
        from tests.interop.qemutest import migd_machine_args, set_params
        from tests.interop.relay import Relay
        from tests.system.migdtest import free_tcp_port, wait_for
        size = 256 * MiB if cut else 64 * MiB
        qd = self.migd(migd_machine_args(size, incoming=True)
                       + ["-smp", "2"]).qmp()
        qsrc = self.migd(migd_machine_args(size) + ["-smp", "2"]).qmp()
        caps = [{"capability": "events", "state": True},
                {"capability": "postcopy-ram", "state": True}]
        if preempt:
            caps.append({"capability": "postcopy-preempt", "state": True})
        if multifd:
            caps.append({"capability": "multifd", "state": True})
        for q in (qsrc, qd):
            q.cmd("migrate-set-capabilities", capabilities=caps)
            if multifd:
                set_params(q, multifd_channels=multifd)
        qsrc.cmd("x-guest-workload", {"dirty-rate": 0, "passes": 1,
                                      "pattern": "sequential"})
        wait_for(lambda: qsrc.cmd("x-guest-workload").get("finished"),
                 timeout=60, what="source RAM filled")
        qsrc.cmd("x-guest-workload", {"dirty-rate": 40, "pattern": "random",
                                      "content": "mixed",
                                      "working-set": 16 * MiB})
        qd.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "random",
                                    "content": "read"})
        set_params(qsrc, max_bandwidth=16 * MiB)
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        relay = None
        if cut:
            capdir = tempfile.mkdtemp(prefix="migd-relay-")
            relay = Relay(uri, os.path.join(capdir, "capture"))
            self.addCleanup(relay.close)
            set_params(qsrc, max_postcopy_bandwidth=4 * MiB)
            uri = relay.uri
        qsrc.cmd("migrate", uri=uri)
        wait_for(lambda: qsrc.cmd("query-migrate").get("ram", {})
                 .get("transferred", 0) > 8 * MiB, timeout=30,
                 what="precopy under way")
        qsrc.cmd("migrate-start-postcopy")
        if cut:  # as soon as postcopy runs
            wait_for(lambda: qd.cmd("query-migrate")["status"] ==
                     "postcopy-active", timeout=30,
                     what="postcopy-active")
            relay.cut()
            wait_status(qd, ("postcopy-paused",))
            time.sleep(0.5)
            self.assertEqual(qd.cmd("query-migrate")["status"],
                             "postcopy-paused")
            self.assertEqual(self.runstate(qd), "running")
            if not recover:
                return
            wait_status(qsrc, ("postcopy-paused",))
            uri = "tcp:127.0.0.1:%d" % free_tcp_port()
            qd.cmd("migrate-recover", uri=uri)
            qsrc.cmd("migrate", uri=uri, resume=True)
        si = wait_status(qsrc, ("completed", "failed"), 120)
        di = wait_status(qd, ("completed", "failed"), 60)
        self.assertEqual((si["status"], di["status"]),
                         ("completed", "completed"), (si, di))
        self.assertEqual(migration_events(qd), [
            "setup", "active", "postcopy-active"] + ([
                "postcopy-paused", "postcopy-recover", "postcopy-active"]
                if recover else []) + ["completed"])
        self.assertEqual(self.runstate(qd), "running")
        self.assertEqual(self.runstate(qsrc), "postmigrate")
        self.assertEqual(qd.cmd("x-query-ram-digest"),
                         qsrc.cmd("x-query-ram-digest"))

    def test_single_stream(self):
        self.run_case()

    def test_multifd(self):
        self.run_case(multifd=2)

    def test_multifd_preempt(self):
        self.run_case(multifd=2, preempt=True)

    def test_multifd_break_pauses(self):
        self.run_case(multifd=2, cut=True)

    def test_multifd_preempt_recover(self):
        self.run_case(multifd=2, preempt=True, cut=True, recover=True)
