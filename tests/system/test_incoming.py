"""The destination side of live migration against a source played by the
test: QEMU streams crafted byte by byte (tests/system/qemustream.py) over
real sockets. Valid streams must complete with the right RAM (checked with
x-query-ram-digest and, for a file-backed guest, on disk) and runstate;
every hostile stream must end in status 'failed' with the exact
error-desc while the daemon stays up; a source that stalls must not hang
the destination beyond x-incoming-idle-timeout.
"""
import hashlib
import os
import shutil
import socket
import tempfile
import time

from tests.system import qemustream as qs
from tests.system.migdtest import MigdTestCase, run_migd, wait_for

PAGE = qs.PAGE
MiB = 1 << 20
SIZE = 4 * MiB
GENERIC = "GenericError"


def wait_status(q, statuses, timeout=20):
    last = {}

    def done():
        nonlocal last
        last = q.cmd("query-migrate")
        return last.get("status") in statuses
    wait_for(done, timeout=timeout, what="status in %s" % (statuses,))
    return last


def page(fill):
    return bytes([fill]) * PAGE


def sha256_image(pages, size=SIZE):
    img = bytearray(size)
    for off, data in pages.items():
        img[off:off + PAGE] = data
    return hashlib.sha256(img).hexdigest()


class IncomingBase(MigdTestCase):
    def dest(self, *extra, defer=True, events=True, mem="4M"):
        args = ["-m", mem, "-incoming", "defer" if defer else extra[0]]
        args += list(extra if defer else extra[1:])
        m = self.migd(args)
        q = m.qmp()
        if events:
            q.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "events", "state": True}])
        return m, q

    def listen(self, q, uri="tcp:127.0.0.1:0", multifd=0, **globals_):
        if multifd:
            q.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "multifd", "state": True}])
            q.cmd("migrate-set-parameters", {"multifd-channels": multifd})
        self.assertEqual(q.cmd("migrate-incoming", uri=uri), {})
        return self.address(q)

    def address(self, q):
        sa = q.cmd("query-migrate")["socket-address"][0]
        if sa["type"] == "inet":
            return (sa["host"], int(sa["port"]))
        return sa["path"]

    def connect(self, addr):
        if isinstance(addr, tuple):
            s = socket.create_connection(addr, timeout=10)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(addr)
        self.addCleanup(s.close)
        return s

    def send_main(self, addr, data):
        s = self.connect(addr)
        s.sendall(data)
        return s

    def digest(self, q):
        return q.cmd("x-query-ram-digest", algorithm="sha256")[0]["digest"]

    def runstate(self, q):
        return q.cmd("query-status")["status"]

    def statuses(self, q):
        return [e["data"]["status"] for e in q.events
                if e["event"] == "MIGRATION"]

    def expect_failed(self, q, desc, timeout=20):
        info = wait_status(q, ("failed", "completed"), timeout)
        self.assertEqual(info, {"status": "failed", "error-desc": desc})
        # The daemon stays up and the guest waits, as before.
        self.assertEqual(self.runstate(q), "inmigrate")
        self.assertQMPError(q.execute("migrate-incoming",
                                      {"uri": "tcp:127.0.0.1:0"}),
                            GENERIC,
                            "The incoming migration has already been started")
        return info


# ---- the command ------------------------------------------------------------------


class MigrateIncomingCommand(IncomingBase):
    def test_not_inmigrate(self):
        q = self.migd(["-m", "4M"]).qmp()
        self.assertQMPError(q.execute("migrate-incoming",
                                      {"uri": "tcp:127.0.0.1:0"}),
                            GENERIC,
                            "'-incoming' was not specified on the command line")
        self.assertEqual(q.cmd("query-migrate"), {})

    def test_argument_errors(self):
        _, q = self.dest(events=False)
        chan = {"channel-type": "main",
                "addr": {"transport": "socket", "type": "inet",
                         "host": "127.0.0.1", "port": "0"}}
        cases = [
            ({}, "need either 'uri' or 'channels' argument"),
            ({"uri": "tcp:127.0.0.1:0", "channels": [chan]},
             "need either 'uri' or 'channels' argument"),
            ({"channels": []}, "need either 'uri' or 'channels' argument"),
            ({"channels": [chan, chan]},
             "Channel list has more than one entries"),
            ({"uri": "foo:bar"}, "unknown migration protocol: foo:bar"),
            ({"uri": "rdma:127.0.0.1:0"},  # no RDMA device here
             "RDMA ERROR: could not create rdma event channel: No such "
             "device (no RDMA device on this host)"),
            ({"uri": "tcp:127.0.0.1:0", "bogus": 1},
             "Parameter 'bogus' is unexpected"),
            ({"uri": 5}, "Invalid parameter type for 'uri', expected: string"),
        ]
        for args, desc in cases:
            with self.subTest(args=args):
                self.assertQMPError(q.execute("migrate-incoming", args),
                                    GENERIC, desc)
        self.assertEqual(q.cmd("query-migrate"), {})

    def test_transport_rules(self):
        _, q = self.dest(events=False)
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "multifd", "state": True}])
        self.assertQMPError(q.execute("migrate-incoming", {"uri": "exec:cat"}),
                            GENERIC,
                            "Migration requires multi-channel URIs (e.g. tcp)")
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "multifd", "state": False},
                            {"capability": "mapped-ram", "state": True}])
        self.assertQMPError(q.execute("migrate-incoming",
                                      {"uri": "tcp:127.0.0.1:0"}),
                            GENERIC,
                            "Migration requires seekable transport (e.g. file)")

    def test_listen_failure_can_be_retried(self):
        _, q = self.dest(events=False)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        reply = q.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:%d" % port})
        self.assertIn("error", reply)
        self.assertEqual(q.cmd("query-migrate"), {})
        self.listen(q)
        self.assertEqual(q.cmd("query-migrate")["status"], "setup")

    def test_setup_state_and_socket_address(self):
        _, q = self.dest()
        self.assertEqual(q.cmd("query-migrate"), {})
        host, port = self.listen(q)
        self.assertEqual(q.wait_event("MIGRATION")["data"], {"status": "setup"})
        self.assertEqual(q.cmd("query-migrate"), {
            "status": "setup",
            "socket-address": [{"type": "inet", "host": "127.0.0.1",
                                "port": str(port), "ipv4": True}]})
        self.assertNotEqual(port, 0)
        self.assertQMPError(q.execute("migrate-incoming",
                                      {"uri": "tcp:127.0.0.1:0"}),
                            GENERIC,
                            "The incoming migration has already been started")
        # QEMU refuses changing multifd once the incoming side listens.
        self.assertQMPError(
            q.execute("migrate-set-capabilities",
                      {"capabilities": [{"capability": "multifd",
                                         "state": True}]}),
            GENERIC, "Multifd must be set before incoming starts")

    def test_channels_form_unix(self):
        m, q = self.dest()
        path = os.path.join(m.tmpdir, "in.sock")
        q.cmd("migrate-incoming", channels=[{
            "channel-type": "main",
            "addr": {"transport": "socket", "type": "unix", "path": path}}])
        self.assertEqual(q.cmd("query-migrate"), {
            "status": "setup",
            "socket-address": [{"type": "unix", "path": path}]})

    def test_incoming_uri_at_startup(self):
        m = self.migd(["-m", "4M", "-incoming", "tcp:127.0.0.1:0"])
        q = m.qmp()
        info = q.cmd("query-migrate")
        self.assertEqual(info["status"], "setup")
        self.assertEqual(info["socket-address"][0]["type"], "inet")
        self.assertQMPError(q.execute("migrate-incoming",
                                      {"uri": "tcp:127.0.0.1:0"}),
                            GENERIC,
                            "The incoming migration has already been started")

    def test_incoming_bad_uri_at_startup_exits(self):
        r = run_migd(["-m", "4M", "-incoming", "foo:bar"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr,
                         "migd: -incoming foo:bar: unknown migration protocol: "
                         "foo:bar\n")


# ---- valid streams ------------------------------------------------------------------


class ValidStreams(IncomingBase):
    PAGES = {0: page(0xa1), 3 * PAGE: page(0xa3), SIZE - PAGE: page(0xaf),
             1000 * PAGE: page(0x10)}

    def test_single_stream_tcp(self):
        _, q = self.dest()
        addr = self.listen(q)
        s = qs.simple_stream(self.PAGES, SIZE, zeros=[PAGE, 5 * PAGE])
        self.send_main(addr, s.bytes())
        info = wait_status(q, ("completed", "failed"))
        self.assertEqual(info, {"status": "completed"})  # listener closed
        self.assertEqual(self.digest(q), sha256_image(self.PAGES))
        self.assertEqual(self.runstate(q), "running")
        self.assertEqual(self.statuses(q), ["setup", "active", "completed"])
        names = [e["event"] for e in q.events]
        # RESUME comes before 'completed', as QEMU's bh does it
        self.assertLess(names.index("RESUME"), len(names) - 1)

    def test_single_stream_unix_paused_with_S(self):
        m = self.migd(["-m", "4M", "-S", "-incoming", "defer"])
        q = m.qmp()
        addr = self.listen(q, "unix:%s" % os.path.join(m.tmpdir, "mig.sock"))
        self.send_main(addr, qs.simple_stream(self.PAGES, SIZE).bytes())
        wait_status(q, ("completed",))
        self.assertEqual(self.runstate(q), "paused")
        self.assertEqual(self.digest(q), sha256_image(self.PAGES))
        self.assertFalse(os.path.exists(addr))  # the socket file is gone

    def test_stopped_source_state_is_adopted(self):
        _, q = self.dest()
        addr = self.listen(q)
        self.send_main(addr, qs.simple_stream({}, SIZE,
                                              runstate="postmigrate").bytes())
        wait_status(q, ("completed",))
        self.assertEqual(self.runstate(q), "postmigrate")

    def test_file_backed_ram_on_disk(self):
        tmp = tempfile.mkdtemp(prefix="migd-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "ram.img")
        m = self.migd(["-object", "memory-backend-file,id=mem,size=4M,"
                       "mem-path=%s,share=on" % path,
                       "-M", "none,memory-backend=mem", "-incoming", "defer"],
                      tmpdir=tmp)
        q = m.qmp()
        addr = self.listen(q)
        self.send_main(addr, qs.simple_stream(self.PAGES, SIZE,
                                              block="mem").bytes())
        wait_status(q, ("completed",))
        with open(path, "rb") as f:
            disk = f.read()
        self.assertEqual(hashlib.sha256(disk).hexdigest(),
                         sha256_image(self.PAGES))

    def test_return_path_ping_pong(self):
        _, q = self.dest()
        addr = self.listen(q)
        s = qs.Stream().header().ram_start([("ram", SIZE)])
        s.command(qs.CMD_OPEN_RETURN_PATH).command(qs.CMD_PING, qs.be32(7))
        s.tail()
        c = self.send_main(addr, s.bytes())
        got = b""
        while len(got) < 16:
            chunk = c.recv(64)
            if not chunk:
                break
            got += chunk
        # PONG(7), then SHUT(0) once loaded
        self.assertEqual(got, bytes([0, 2, 0, 4, 0, 0, 0, 7,
                                     0, 1, 0, 4, 0, 0, 0, 0]))
        wait_status(q, ("completed",))

    def test_extra_connection_ignored(self):
        _, q = self.dest()
        addr = self.listen(q)
        s = qs.Stream().header().ram_start([("ram", SIZE)])
        c = self.send_main(addr, s.bytes())
        wait_status(q, ("active",))
        extra = self.connect(addr)
        self.assertEqual(extra.recv(1), b"")  # closed at once
        c.sendall(qs.Stream().tail().bytes())
        self.assertEqual(wait_status(q, ("completed", "failed")),
                         {"status": "completed"})

    def _multifd_stream(self, legacy=False):
        """Main stream + per-channel data for 2 channels; zero pages in
        packets, a 7.2-style SYNC carrying pages and a stale size."""
        pages = {0: page(1), PAGE: page(2), 2 * PAGE: page(3),
                 100 * PAGE: page(4), SIZE - PAGE: page(5)}
        main = qs.Stream().header()
        ch = [bytearray(qs.mfd_init(0)), bytearray(qs.mfd_init(1))]
        main.section_full(qs.START, 1, "ram", 0, 4).mem_size([("ram", SIZE)])
        for c in ch:
            c += qs.mfd_sync()
        if not legacy:
            main.flush()
        main.eos().footer(1)
        # data: channel 0 gets adjacent pages and zero pages; channel 1 a
        # SYNC packet with a page on it (< 9.0 senders)
        ch[0] += qs.mfd_packet(normal=[0, PAGE, 2 * PAGE],
                               zero=[3 * PAGE, 4 * PAGE], packet_num=2)
        ch[0] += pages[0] + pages[PAGE] + pages[2 * PAGE]
        ch[1] += qs.mfd_packet(normal=[SIZE - PAGE], packet_num=3)
        ch[1] += pages[SIZE - PAGE]
        ch[1] += qs.mfd_packet(normal=[100 * PAGE], packet_num=4,
                               flags=qs.MFD_FLAG_SYNC)
        ch[1] += pages[100 * PAGE]
        ch[1] += qs.mfd_packet(normal_count=0, next_size=4 * PAGE,
                               flags=qs.MFD_FLAG_SYNC, packet_num=5)
        ch[0] += qs.mfd_sync(6) + qs.mfd_sync(7)
        # two sync rounds (the second one with the END section)
        main.ram_part()
        if not legacy:
            main.flush()
        main.close()
        main.raw(bytes([qs.COMMAND]) + qs.be16(11) + qs.be16(0))
        main.ram_part(end=True)
        if not legacy:
            main.flush()
        main.close().tail()
        return pages, main.bytes(), [bytes(c) for c in ch]

    def _run_multifd(self, legacy=False, main_first=False):
        extra = ["-global", "migration.multifd-flush-after-each-section=on"] \
            if legacy else []
        _, q = self.dest(*extra)
        addr = self.listen(q, multifd=2)
        pages, main, chans = self._multifd_stream(legacy)
        socks = []
        if main_first:
            socks.append(self.send_main(addr, main))
        for data in reversed(chans):  # out of order
            socks.append(self.send_main(addr, data))
        if not main_first:
            socks.append(self.send_main(addr, main))
        info = wait_status(q, ("completed", "failed"))
        self.assertEqual(info, {"status": "completed"})
        self.assertEqual(self.digest(q), sha256_image(pages))
        self.assertEqual(self.runstate(q), "running")

    def test_multifd_two_channels(self):
        self._run_multifd()

    def test_multifd_main_channel_first(self):
        self._run_multifd(main_first=True)

    def test_multifd_legacy_sync_at_eos(self):
        self._run_multifd(legacy=True)


# ---- hostile streams -------------------------------------------------------------------


class HostileStreams(IncomingBase):
    def fail_with(self, data, desc, close=True):
        _, q = self.dest()
        addr = self.listen(q)
        c = self.send_main(addr, data)
        if close:
            c.shutdown(socket.SHUT_WR)
        info = self.expect_failed(q, desc)
        self.assertEqual(self.statuses(q), ["setup", "active", "failed"])
        return q, info

    def start(self):
        return qs.Stream().header().ram_start([("ram", SIZE)])

    def test_bad_magic(self):
        self.fail_with(qs.Stream().header(magic=0x12345678).bytes(),
                       "Not a migration stream")

    def test_old_version(self):
        self.fail_with(qs.Stream().header(version=2).bytes(),
                       "SaveVM v2 format is obsolete and don't work anymore")

    def test_unknown_device(self):
        s = qs.Stream().header().section_full(qs.FULL, 9, "e1000", 0, 1)
        self.fail_with(s.bytes(),
                       "Unknown savevm section or instance 'e1000' 0. Make "
                       "sure that your current VM setup matches your saved "
                       "VM setup, including any hotplugged devices")

    def test_length_mismatch(self):
        s = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        s.mem_size([("ram", 2 * SIZE)])
        self.fail_with(s.bytes(), "Size mismatch: ram: 0x800000 != "
                                  "0x400000: Invalid argument")

    def test_unknown_block(self):
        s = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        s.mem_size([("pc.ram", SIZE)])
        self.fail_with(s.bytes(),
                       'Unknown ramblock "pc.ram", cannot accept migration')

    def test_offset_outside_ram(self):
        s = self.start().ram_part().page(SIZE, page(9))
        self.fail_with(s.bytes(), "Illegal RAM offset 400000")

    def test_zero_page_with_value(self):
        s = self.start().ram_part().zero(0, fill=3)
        self.fail_with(s.bytes(), "Found a zero page with value 3")

    def test_unknown_flags(self):
        s = self.start().ram_part().record(qs.F_XBZRLE)
        self.fail_with(s.bytes(), "Unknown combination of migration flags: 0x40")

    def test_unknown_command(self):
        s = self.start().command(42)
        self.fail_with(s.bytes(), "MIG_CMD 0x2a unknown (len 0x0)")

    def test_truncated_stream(self):
        s = self.start().ram_part().page(0, page(1))
        self.fail_with(s.bytes()[:-100],
                       "migration stream ended while reading a RAM record")

    def test_source_closes_between_sections(self):
        self.fail_with(self.start().bytes(),
                       "migration stream ended while reading the next section")

    def test_connection_reset(self):
        _, q = self.dest()
        addr = self.listen(q)
        c = self.send_main(addr, self.start().ram_part().bytes())
        wait_status(q, ("active",))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     bytes([1, 0, 0, 0, 0, 0, 0, 0]))
        c.close()
        self.expect_failed(q, "error reading a RAM record from the migration "
                              "stream: Connection reset by peer")

    # -- multifd --

    def mfd_fail(self, chans, desc, uuid=None):
        extra = ["-uuid", uuid] if uuid else []
        _, q = self.dest(*extra)
        addr = self.listen(q, multifd=2)
        for data in chans:
            self.send_main(addr, data)
        return self.expect_failed(q, desc)

    def test_multifd_bad_init_magic(self):
        self.mfd_fail([qs.mfd_init(0, magic=0xdeadbeef)],
                      "multifd: received packet magic deadbeef expected "
                      "11223344")

    def test_multifd_uuid_mismatch(self):
        self.mfd_fail([qs.mfd_init(0)],
                      "multifd: received uuid '00000000-0000-0000-0000-"
                      "000000000000' and expected uuid '11111111-2222-3333-"
                      "4444-555555555555' for channel 0",
                      uuid="11111111-2222-3333-4444-555555555555")

    def test_multifd_id_out_of_range(self):
        self.mfd_fail([qs.mfd_init(2)],
                      "multifd: received channel id 2 is greater than "
                      "number of channels 2")

    def test_multifd_duplicate_id(self):
        self.mfd_fail([qs.mfd_init(1), qs.mfd_init(1)],
                      "multifd: received id '1' already setup'")

    def test_multifd_truncated_init(self):
        _, q = self.dest()
        addr = self.listen(q, multifd=2)
        c = self.send_main(addr, qs.mfd_init(0)[:20])
        c.shutdown(socket.SHUT_WR)
        self.expect_failed(q, "Unexpected end-of-file before all data "
                              "were read")

    def test_multifd_bad_packet(self):
        bad = qs.mfd_init(0) + qs.mfd_packet(normal=[0], block="nope")
        self.mfd_fail([bad], "multifd: unknown ram block nope")

    def test_multifd_offset_too_long(self):
        bad = qs.mfd_init(1) + qs.mfd_packet(normal=[SIZE])
        self.mfd_fail([bad], "multifd: offset too long 4194304 (max 400000)")

    def test_multifd_compression_flags(self):
        bad = qs.mfd_init(0) + qs.mfd_packet(normal=[0], flags=0x04)
        self.mfd_fail([bad], "multifd 0: flags received 4 flags expected 0")

    def test_multifd_too_many_pages(self):
        bad = qs.mfd_init(0) + qs.mfd_packet(normal_count=129,
                                             pages_alloc=128)
        self.mfd_fail([bad], "multifd: received packet with 129 non-zero "
                             "pages, which exceeds maximum expected pages 128")

    def test_multifd_channel_closed_before_sync(self):
        _, q = self.dest()
        addr = self.listen(q, multifd=2)
        self.send_main(addr, qs.mfd_init(0) + qs.mfd_sync())
        self.send_main(addr, qs.mfd_init(1)).shutdown(socket.SHUT_WR)
        main = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        self.send_main(addr, main.mem_size([("ram", SIZE)]).flush().bytes())
        self.expect_failed(q, "multifd: channel 1 was closed before its SYNC "
                              "packet")


# ---- stalls ----------------------------------------------------------------------------


class Stalls(IncomingBase):
    TIMEOUT = ["-global", "migration.x-incoming-idle-timeout=2"]
    STALL = ("No data received from the migration source for 2 seconds "
             "(x-incoming-idle-timeout)")

    def test_stall_inside_a_section(self):
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q)
        s = qs.Stream().header().ram_start([("ram", SIZE)]).ram_part()
        c = self.send_main(addr, s.bytes() + qs.be64(qs.F_PAGE))  # no data
        t0 = time.monotonic()
        self.expect_failed(q, self.STALL)
        self.assertLess(time.monotonic() - t0, 8)
        c.close()

    def test_connect_and_send_nothing(self):
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q)
        self.connect(addr)
        self.expect_failed(q, self.STALL)

    def test_multifd_silent_connection_is_dropped(self):
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q, multifd=1)
        silent = self.connect(addr)
        silent.settimeout(8)
        self.assertEqual(silent.recv(1), b"")  # dropped after the timeout
        self.assertEqual(q.cmd("query-migrate")["status"], "setup")
        # a real source can still come
        pages = {PAGE: page(7)}
        main = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        main.mem_size([("ram", SIZE)]).flush().eos().footer(1)
        main.ram_part(end=True).flush().close().tail()
        ch = qs.mfd_init(0) + qs.mfd_sync() + qs.mfd_packet(normal=[PAGE]) \
            + pages[PAGE] + qs.mfd_sync()
        self.send_main(addr, ch)
        self.send_main(addr, main.bytes())
        self.assertEqual(wait_status(q, ("completed", "failed")),
                         {"status": "completed"})
        self.assertEqual(self.digest(q), sha256_image(pages))

    def test_multifd_stall_inside_a_packet(self):
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q, multifd=1)
        self.send_main(addr, qs.mfd_init(0) + qs.mfd_packet(normal=[0])[:100])
        self.expect_failed(q, self.STALL)

    def test_paused_source_is_not_a_stall(self):
        """pause-before-switchover: the source stops between sections for
        as long as its operator wants."""
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q)
        s = qs.Stream().header().ram_start([("ram", SIZE)])
        s.ram_part().page(0, page(0x42)).close()
        c = self.send_main(addr, s.bytes())
        time.sleep(4.5)
        self.assertEqual(q.cmd("query-migrate")["status"], "active")
        c.sendall(qs.Stream().ram_part(end=True).close().tail().bytes())
        self.assertEqual(wait_status(q, ("completed", "failed")),
                         {"status": "completed"})
        self.assertEqual(self.digest(q), sha256_image({0: page(0x42)}))

    def test_paused_multifd_source_is_not_a_stall(self):
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q, multifd=1)
        ch = self.send_main(addr, qs.mfd_init(0) + qs.mfd_sync()
                            + qs.mfd_packet(normal=[PAGE]) + page(0x24))
        main = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        main.mem_size([("ram", SIZE)]).flush().eos().footer(1)
        c = self.send_main(addr, main.bytes())
        time.sleep(4.5)
        self.assertEqual(q.cmd("query-migrate")["status"], "active")
        ch.sendall(qs.mfd_sync())
        c.sendall(qs.Stream().ram_part(end=True).flush().close().tail()
                  .bytes())
        self.assertEqual(wait_status(q, ("completed", "failed")),
                         {"status": "completed"})
        self.assertEqual(self.digest(q), sha256_image({PAGE: page(0x24)}))

    def test_old_source_without_legacy_knob(self):
        """A source that syncs before every EOS (QEMU < 8.1) and never
        sends 0x200 leaves the channels waiting at a SYNC."""
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q, multifd=1)
        self.send_main(addr, qs.mfd_init(0) + qs.mfd_sync())
        main = qs.Stream().header().ram_start([("ram", SIZE)])
        self.send_main(addr, main.bytes())
        self.expect_failed(q, self.STALL + "; multifd channels wait at a "
                           "SYNC: a source older than QEMU 8.1 needs -global "
                           "migration.multifd-flush-after-each-section=on")

    def test_missing_vmdesc_does_not_hang(self):
        _, q = self.dest(*self.TIMEOUT)
        addr = self.listen(q)
        s = qs.Stream().header().ram_start([("ram", SIZE)]).tail(vmdesc=False)
        c = self.send_main(addr, s.bytes())  # and keep the connection open
        self.assertEqual(wait_status(q, ("completed", "failed"), 10),
                         {"status": "completed"})
        c.close()

    def test_no_timeout_when_disabled(self):
        _, q = self.dest("-global", "migration.x-incoming-idle-timeout=0")
        addr = self.listen(q)
        c = self.send_main(addr, qs.Stream().header().bytes()[:6])
        time.sleep(3)
        self.assertEqual(q.cmd("query-migrate")["status"], "active")
        c.close()
        self.expect_failed(q, "migration stream ended while reading the "
                              "stream header")
