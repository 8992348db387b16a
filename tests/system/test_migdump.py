"""migdump, the migration stream inspector (contrib/migdump*.c).

Streams built byte by byte (reference §1.7's examples, every record class,
multifd channels in 10.0 and 7.2 shapes, mapped-ram files), malformed
streams with the exact offset of the first bad byte, streams captured from
real migd -> migd migrations through a teeing TCP relay (decoded counts ==
query-migrate's), and real QEMU streams when QEMU is installed.
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

from tests.system import qemustream as qs
from tests.system.migdtest import (BUILD, ROOT, QMP, MigdTestCase,
                                   free_tcp_port, wait_for)
from tests.system.migdump_relay import Relay
from tests.system.qemustream import be32, be64, str8

MIGDUMP = os.path.join(BUILD, "migdump")
PAGE = 4096
MiB = 1 << 20


def run_migdump(*args, timeout=120):
    return subprocess.run([MIGDUMP] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


class MigdumpCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="migdump-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.nfiles = 0

    def write(self, data):
        self.nfiles += 1
        path = os.path.join(self.tmp, "f%d.bin" % self.nfiles)
        with open(path, "wb") as f:
            f.write(bytes(data))
        return path

    def dump(self, main, *channels, opts=(), rc=0):
        """Runs migdump --json on byte strings; returns the report."""
        paths = [self.write(main)] + [self.write(c) for c in channels]
        r = run_migdump("--json", *opts, *paths)
        self.assertEqual(r.returncode, rc, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def assertMalformed(self, data, offset, message, opts=(), channel=None):
        """The main stream (or, with channel, that channel) is reported
        bad at offset with exactly this message."""
        chans = () if channel is None else (channel,)
        rep = self.dump(data, *chans, opts=opts, rc=2)
        part = rep["main"] if channel is None else rep["channels"][0]
        self.assertEqual(part["error"]["message"],
                         "offset %d: %s" % (offset, message))
        self.assertEqual(part["error"]["offset"], offset)
        return rep


def page(n):
    return bytes([n & 0xFF]) * PAGE


# --- reference §1.7 examples, byte for byte -----------------------------------
REF_START = bytes.fromhex("01 00000001 03") + b"ram" + bytes.fromhex(
    "00000000 00000004"
    "0000000040000004") + b"\x03ram" + bytes.fromhex(
    "0000000040000000"
    "0000000000000010"
    "7E 00000001")


def ref_stream():
    """Header, the §1.7 setup, a PART with a page, a CONTINUE page and a
    zero page, SWITCHOVER_START, an empty END, timer, globalstate, EOF,
    vmdesc."""
    s = qs.Stream().header().raw(REF_START)
    s.raw(bytes.fromhex("02 00000001 0000000000000008") + b"\x03ram" + page(1))
    s.raw(bytes.fromhex("0000000000001028") + page(2))
    s.raw(bytes.fromhex("0000000000002022 00"))
    s.eos().footer(1)
    s.command(qs.CMD_SWITCHOVER_START)
    s.ram_part(end=True).close()
    return s.tail("running")


class SyntheticStreamTest(MigdumpCase):
    def test_reference_examples(self):
        rep = self.dump(ref_stream().bytes())
        m = rep["main"]
        self.assertEqual(m["status"], "ok")
        self.assertEqual(m["header"], {"magic": 0x5145564D, "version": 3})
        self.assertEqual(m["configuration"]["machine"], "none")
        self.assertEqual(m["configuration"]["capabilities"], [])
        kinds = [(e["type"], e.get("idstr") or e.get("command"))
                 for e in m["sections"]]
        self.assertEqual(kinds, [
            ("START", "ram"), ("PART", "ram"), ("COMMAND", "SWITCHOVER_START"),
            ("END", "ram"), ("FULL", "timer"), ("FULL", "globalstate"),
            ("EOF", None), ("VMDESCRIPTION", None)])
        self.assertEqual(m["sections"][0]["offset"], 17)
        self.assertEqual(m["sections"][0]["bytes"], len(REF_START))
        part = m["sections"][1]["records"]
        self.assertEqual((part["PAGE"], part["ZERO"], part["CONTINUE"],
                          part["EOS"]), (2, 1, 2, 1))
        ram = m["ram"]
        self.assertEqual(ram["total-bytes"], 1 << 30)
        self.assertEqual([(b["name"], b["used-length"]) for b in ram["blocks"]],
                         [("ram", 1 << 30)])
        self.assertEqual(ram["records"]["EOS"], 3)
        self.assertEqual(ram["records"]["MEM_SIZE"], 1)
        self.assertEqual(ram["page-bytes"], 2 * PAGE)
        self.assertEqual(m["globalstate"]["runstate"], "running")
        self.assertEqual(m["timer"], {"cpu-ticks-offset": 0,
                                      "cpu-clock-offset": 0})
        self.assertEqual(m["vmdesc"]["length"], 34)
        self.assertEqual(m["end-offset"], len(ref_stream().bytes()))

    def test_text_summary_and_verbose(self):
        path = self.write(ref_stream().bytes())
        r = run_migdump(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("block 'ram'  used_length 1073741824 (0x40000000): "
                      "PAGE 2, ZERO 1, CONTINUE 2", r.stdout)
        self.assertIn("globalstate    runstate 'running'", r.stdout)
        self.assertIn("result         OK", r.stdout)
        r = run_migdump("-v", path)
        lines = [l.split(None, 1) for l in r.stdout.splitlines()
                 if l.startswith(" ") and l.strip()[0].isdigit()]
        self.assertIn(["17", "START id 1 'ram' instance 0 version 4 "
                       "(%d bytes) MEM_SIZE 1 EOS 1" % len(REF_START)], lines)
        self.assertTrue(any(l[1] == "COMMAND SWITCHOVER_START (11) len 0"
                            for l in lines), lines)
        r = run_migdump("--vmdesc", path)
        self.assertIn('"page_size": 4096', r.stdout)

    def test_multifd_flush_commands_and_devices(self):
        s = qs.Stream().header().ram_start([("ram", 64 * PAGE), ("vga", 4 * PAGE)],
                                           flush=True)
        s.command(qs.CMD_OPEN_RETURN_PATH).command(qs.CMD_PING, be32(7))
        s.ram_part().flush().zero(0, block="vga").close()
        s.ram_part(end=True).flush().close()
        # an opaque device: skipped to its footer
        s.section_full(qs.FULL, 9, "foo/bar", 1, 3).raw(b"\x7e\x00\x00\x00\x08xyz")
        s.footer(9)
        s.tail("paused")
        m = self.dump(s.bytes())["main"]
        cmds = [(e["command"], e["length"], e.get("value"))
                for e in m["sections"] if e["type"] == "COMMAND"]
        self.assertEqual(cmds, [("OPEN_RETURN_PATH", 0, None), ("PING", 4, 7)])
        self.assertEqual(m["ram"]["records"]["MULTIFD_FLUSH"], 3)
        blocks = {b["name"]: b for b in m["ram"]["blocks"]}
        self.assertEqual(blocks["vga"]["records"]["ZERO"], 1)
        self.assertEqual(blocks["ram"]["records"]["ZERO"], 0)
        foo = [e for e in m["sections"] if e.get("idstr") == "foo/bar"][0]
        self.assertTrue(foo["opaque"])
        self.assertEqual((foo["id"], foo["instance"], foo["version"]), (9, 1, 3))
        self.assertEqual(m["globalstate"]["runstate"], "paused")

    def test_xbzrle_compress_hook(self):
        s = qs.Stream().header().ram_start([("ram", 16 * PAGE)])
        s.ram_part()
        s.record(0x1000 | qs.F_XBZRLE).raw(str8("ram") + b"\x01" + struct.pack(">H", 3) + b"abc")
        s.record(0x2000 | qs.F_COMPRESS_PAGE | qs.F_CONTINUE).raw(be32(5) + b"12345")
        s.record(qs.F_HOOK).close()
        s.ram_part(end=True).close().tail()
        m = self.dump(s.bytes())["main"]
        rec = m["ram"]["records"]
        self.assertEqual((rec["XBZRLE"], rec["COMPRESS_PAGE"], rec["HOOK"],
                          rec["CONTINUE"]), (1, 1, 1, 1))
        self.assertEqual(m["ram"]["page-bytes"], 8)

    def test_no_configuration_no_footer_no_vmdesc(self):
        s = qs.Stream().header(configuration=False)
        s.section_full(qs.START, 1, "ram", 0, 4).mem_size([("ram", 4 * PAGE)]).eos()
        end_of_start = len(s.bytes())
        s.section_short(qs.END, 1).zero(PAGE).eos()
        s.section_full(qs.FULL, 3, "globalstate", 0, 1)
        s.raw(be32(8) + b"running" + bytes(93)).eof()
        m = self.dump(s.bytes(), opts=["--no-footer"])["main"]
        self.assertNotIn("configuration", m)
        self.assertNotIn("vmdesc", m)
        self.assertEqual(m["ram"]["records"]["ZERO"], 1)
        # the same bytes, read expecting footers
        self.assertMalformed(s.bytes(), end_of_start,
                             "section footer for section 1 expected 0x7e, "
                             "found 0x03")

    def test_capabilities_uuid_ignore_shared(self):
        uuid = bytes(range(16))
        s = qs.Stream().header()
        s.raw(b"\x05" + str8("configuration/capabilities") + be32(1) + be32(1)
              + str8("x-ignore-shared"))
        s.raw(b"\x05" + str8("configuration/uuid") + be32(1) + uuid)
        s.section_full(qs.START, 1, "ram", 0, 4)
        s.record(8 * PAGE | qs.F_MEM_SIZE).raw(str8("ram") + be64(8 * PAGE)
                                               + be64(0x100000000))
        s.close().ram_part(end=True).close().tail()
        m = self.dump(s.bytes())["main"]
        self.assertEqual(m["configuration"]["capabilities"], ["x-ignore-shared"])
        self.assertEqual(m["configuration"]["uuid"],
                         "00010203-0405-0607-0809-0a0b0c0d0e0f")
        self.assertEqual(m["ram"]["blocks"][0]["addr"], 0x100000000)
        # without the configuration, --ignore-shared says the same
        t = qs.Stream().header(configuration=False)
        t.raw(s.bytes()[s.bytes().index(b"\x01\x00\x00\x00\x01\x03ram"):])
        m = self.dump(t.bytes(), opts=["--ignore-shared"])["main"]
        self.assertEqual(m["ram"]["blocks"][0]["addr"], 0x100000000)

    def test_postcopy_page_sizes(self):
        def stream():
            s = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
            s.record((512 * PAGE + 16 * PAGE) | qs.F_MEM_SIZE)
            s.raw(str8("mem") + be64(512 * PAGE) + be64(2 * MiB))
            s.raw(str8("rom") + be64(16 * PAGE))
            return s.close().ram_part(end=True).close().tail()
        for opts in (["--postcopy"], ["--postcopy=mem"]):
            m = self.dump(stream().bytes(), opts=opts)["main"]
            blocks = [(b["name"], b.get("page-size")) for b in m["ram"]["blocks"]]
            self.assertEqual(blocks, [("mem", 2 * MiB), ("rom", None)])
        # without the option the page size reads as the next block's name
        at = stream().bytes().rindex(be64(2 * MiB))
        self.assertMalformed(stream().bytes(), at,
                             "MEM_SIZE block name expected a non-empty name, "
                             "found length 0")

    def test_packaged(self):
        inner = qs.Stream().command(4)  # POSTCOPY_LISTEN
        inner.timer().command(5)  # POSTCOPY_RUN
        s = qs.Stream().header().ram_start([("ram", 4 * PAGE)])
        s.command(qs.CMD_POSTCOPY_ADVISE, be64(PAGE) + be64(PAGE))
        s.command(7, be32(len(inner.bytes()))).raw(inner.bytes())
        s.ram_part(end=True).close()
        s.globalstate("running").eof().vmdesc()
        m = self.dump(s.bytes())["main"]
        kinds = [e.get("command") or e.get("idstr") or e["type"] for e in m["sections"]]
        self.assertEqual(kinds, ["ram", "POSTCOPY_ADVISE", "PACKAGED",
                                 "POSTCOPY_LISTEN", "timer", "POSTCOPY_RUN",
                                 "ram", "globalstate", "EOF", "VMDESCRIPTION"])

    def test_mapped_ram_file(self):
        """A mapped-ram file: per-block header, bitmap (LE 64-bit words),
        pages at page-aligned offsets, the stream going on after them."""
        s = qs.Stream().header()
        s.raw(b"\x05" + str8("configuration/capabilities") + be32(1) + be32(1)
              + str8("mapped-ram"))
        s.section_full(qs.START, 1, "ram", 0, 4)
        s.record((70 * PAGE) | qs.F_MEM_SIZE)
        hdr_at = len(s.bytes()) + len(str8("ram")) + 8
        bitmap_at = hdr_at + 28
        bitmap = bytearray(16)  # 70 pages -> 2 words
        for i in (0, 5, 64, 69):
            bitmap[i // 8] |= 1 << (i % 8)
        bitmap[9] |= 0x80  # bit 79: past the 70 pages, not counted
        pages_at = 2 * MiB
        s.raw(str8("ram") + be64(70 * PAGE) + be32(1) + be64(PAGE)
              + be64(bitmap_at) + be64(pages_at))
        s.raw(bytes(bitmap))
        s.raw(bytes(pages_at - len(s.bytes())) + bytes(70 * PAGE))
        s.eos().footer(1).ram_part(end=True).close().tail()
        m = self.dump(s.bytes())["main"]
        b = m["ram"]["blocks"][0]
        self.assertEqual(b["mapped-ram"], {"version": 1, "page-size": PAGE,
                                           "bitmap-offset": bitmap_at,
                                           "pages-offset": pages_at,
                                           "present-pages": 4})
        self.assertEqual(m["status"], "ok")
        # a PAGE record in a mapped-ram stream is refused
        bad = bytearray(s.bytes())
        at = pages_at + 70 * PAGE
        bad[at:at + 8] = be64(qs.F_PAGE)
        self.assertMalformed(bad, at, "ram record flags expected none of PAGE, "
                             "ZERO, XBZRLE, MULTIFD_FLUSH, HOOK with "
                             "mapped-ram, found 0x8")
        # cut inside the pages region
        self.assertMalformed(s.bytes()[:pages_at + PAGE], pages_at + PAGE,
                             "stream ends inside the mapped-ram pages of "
                             "'ram' (%d bytes at 0x%x)" % (70 * PAGE, pages_at))

    def test_offset_option(self):
        data = b"junk" * 25 + ref_stream().bytes()
        m = self.dump(data, opts=["--offset=100"])["main"]
        self.assertEqual(m["sections"][0]["offset"], 117)
        r = run_migdump("--offset=x", self.write(data))
        self.assertEqual(r.returncode, 1)


class MalformedStreamTest(MigdumpCase):
    """The first bad byte, its offset, what was expected, what was found."""

    def test_header(self):
        self.assertMalformed(b"QEVX" + be32(3), 0,
                             "file magic expected 0x5145564d (QEVM), found "
                             "0x51455658")
        self.assertMalformed(be32(0x5145564D) + be32(2), 4,
                             "file version expected 3, found 2 (the obsolete "
                             "v2 format)")
        self.assertMalformed(b"", 0, "stream ends before the file header")
        self.assertMalformed(b"QEV", 3, "stream ends inside the file header")

    def test_missing_footer(self):
        s = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        s.mem_size([("ram", 4 * PAGE)]).eos()
        at = len(s.bytes())
        s.section_short(qs.PART, 1).eos().footer(1)
        self.assertMalformed(s.bytes(), at, "section footer for section 1 "
                             "expected 0x7e, found 0x02")
        t = qs.Stream().header().ram_start([("ram", 4 * PAGE)], sid=1)
        data = bytearray(t.bytes())
        data[-4:] = be32(5)
        self.assertMalformed(data, len(data) - 4, "section footer for section "
                             "1 expected id 1, found 5")

    def test_sections_and_commands(self):
        base = qs.Stream().header().ram_start([("ram", 4 * PAGE)]).bytes()
        n = len(base)
        self.assertMalformed(base + b"\x09", n, "section type expected 0x00 "
                             "(EOF), 0x01..0x04 (section) or 0x08 (command), "
                             "found 0x09")
        self.assertMalformed(base + b"\x02" + be32(7), n + 1, "section id "
                             "expected one opened by a START or FULL section, "
                             "found 7")
        self.assertMalformed(base + b"\x08" + struct.pack(">HH", 12, 0), n + 1,
                             "command expected 1..11, found 12 (len 0)")
        self.assertMalformed(base + b"\x08" + struct.pack(">HH", 11, 4) + bytes(4),
                             n + 3, "command SWITCHOVER_START length expected "
                             "0, found 4")
        self.assertMalformed(base + b"\x04" + be32(3) + str8("globalstate")
                             + be32(0) + be32(2), n + 21,
                             "section 'globalstate' version expected 1, found 2")
        self.assertMalformed(base + b"\x04" + be32(3) + str8("bad\x01")
                             + be32(0) + be32(2), n + 5 + 4,
                             "section idstr expected printable text, found "
                             "'bad\\x01'")
        self.assertMalformed(base, n, "stream ends before the EOF marker (0x00)")

    def test_ram_records(self):
        s = qs.Stream().header().ram_start([("ram", 4 * PAGE)]).ram_part()
        base = s.bytes()
        n = len(base)
        cases = [
            (be64(qs.F_PAGE | qs.F_CONTINUE), n, "ram record block expected a "
             "name (no earlier record named one), found the CONTINUE flag"),
            (be64(qs.F_PAGE) + str8("rom"), n + 8, "ram record block expected "
             "one of the MEM_SIZE blocks, found 'rom'"),
            (be64(4 * PAGE | qs.F_ZERO) + str8("ram") + b"\0", n, "ram record "
             "offset expected < 0x4000 (the used_length of 'ram'), found 0x4000"),
            (be64(qs.F_ZERO) + str8("ram") + b"\x05", n + 12, "ZERO record fill "
             "byte expected 0x00, found 0x05"),
            (be64(0x01), n, "ram record flags expected one of MEM_SIZE, ZERO, "
             "PAGE, EOS, XBZRLE, COMPRESS_PAGE, MULTIFD_FLUSH, HOOK (with or "
             "without CONTINUE), found 0x1"),
            (be64(qs.F_PAGE | qs.F_ZERO), n, "ram record flags expected one of "
             "MEM_SIZE, ZERO, PAGE, EOS, XBZRLE, COMPRESS_PAGE, MULTIFD_FLUSH, "
             "HOOK (with or without CONTINUE), found 0xa"),
            (be64(qs.F_XBZRLE) + str8("ram") + b"\x02", n + 12, "XBZRLE record "
             "encoding expected 0x01, found 0x02"),
            (be64(qs.F_XBZRLE) + str8("ram") + b"\x01" + struct.pack(">H", 4097),
             n + 13, "XBZRLE record length expected <= 4096, found 4097"),
        ]
        for tail, off, msg in cases:
            with self.subTest(msg=msg):
                self.assertMalformed(base + tail, off, msg)

    def test_mem_size(self):
        s = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        n = len(s.bytes())
        s.record(4 * PAGE | qs.F_MEM_SIZE).raw(str8("ram") + be64(8 * PAGE))
        self.assertMalformed(s.bytes(), n + 12, "MEM_SIZE used_length of 'ram' "
                             "expected 1..0x4000 (what is left of the total), "
                             "found 0x8000")

    def test_truncated(self):
        full = ref_stream().bytes()
        part = full.index(b"\x02\x00\x00\x00\x01")
        cut = part + 5 + 8 + 4 + 100  # inside the first page's data
        self.assertMalformed(full[:cut], cut, "stream ends inside a PAGE "
                             "record's data")
        self.assertMalformed(full[:part + 3], part + 3,
                             "stream ends inside a section header")
        vmdesc = full.rindex(b"\x06")
        self.assertMalformed(full[:vmdesc + 10], vmdesc + 10,
                             "stream ends inside the vmdesc")

    def test_tail(self):
        full = ref_stream().bytes()
        self.assertMalformed(full + b"\x00", len(full), "end of stream expected "
                             "after the vmdesc, found 0x00")
        eof = full.rindex(b"\x00\x06")
        self.assertMalformed(full[:eof + 1] + b"\x07", eof + 1, "vmdesc (0x06) "
                             "or end of stream expected after EOF, found 0x07")

    def test_bounded_tables(self):
        """What migdump keeps is bounded; past the bounds it counts (ram
        sections) or stops (blocks, section headers)."""
        s = qs.Stream().header().ram_start([("ram", PAGE)])
        empty_part = b"\x02" + be32(1) + be64(qs.F_EOS) + b"\x7e" + be32(1)
        s.raw(empty_part * 200005).ram_part(end=True).close().tail()
        m = self.dump(s.bytes())["main"]
        self.assertEqual(len(m["sections"]), 200000)
        # START, END, timer, globalstate, EOF, vmdesc
        self.assertEqual(m["sections-omitted"], 200005 + 6 - 200000)
        self.assertEqual(m["section-counts"]["PART"], 200005)
        self.assertEqual(m["ram"]["records"]["EOS"], 200007)

        blocks = [("b%d" % i, PAGE) for i in range(4097)]
        s = qs.Stream().header().section_full(qs.START, 1, "ram", 0, 4)
        s.mem_size(blocks)
        at = s.bytes().index(str8("b4096") + be64(PAGE))
        self.assertMalformed(s.bytes(), at, "MEM_SIZE blocks expected at "
                             "most 4096, found more")

        s = qs.Stream().header()
        for i in range(65537):
            at = len(s.b)
            s.section_full(qs.FULL, i, "x", 0, 1).footer(i)
        self.assertMalformed(s.bytes(), at, "section headers expected at most "
                             "65536 different START/FULL headers, found more")

    def test_globalstate(self):
        s = qs.Stream().header().ram_start([("ram", PAGE)])
        n = len(s.bytes())
        s.globalstate("sleeping")
        self.assertMalformed(s.eof().bytes(), n + 29, "globalstate runstate "
                             "expected a RunState name, found 'sleeping'")


# --- multifd channels ------------------------------------------------------------
def main_for_channels(blocks=(("ram", 64 * PAGE),)):
    s = qs.Stream().header().ram_start(list(blocks), flush=True)
    s.ram_part(end=True).flush().close()
    return s.tail().bytes()


class SyntheticChannelTest(MigdumpCase):
    def test_10_0_channel(self):
        ch = (qs.mfd_init(1) + qs.mfd_sync(0)
              + qs.mfd_packet(normal=[0, PAGE], zero=[2 * PAGE, 3 * PAGE],
                              packet_num=2) + page(1) + page(2)
              + qs.mfd_packet(zero=[5 * PAGE], packet_num=4)
              + qs.mfd_sync(6))
        rep = self.dump(main_for_channels(), ch)
        c = rep["channels"][0]
        self.assertEqual(c["status"], "ok")
        self.assertEqual((c["id"], c["packets"], c["sync-packets"],
                          c["data-packets"], c["normal-pages"], c["zero-pages"],
                          c["payload-bytes"], c["compression"]),
                         (1, 4, 2, 2, 2, 3, 2 * PAGE, "none"))
        blk = rep["main"]["ram"]["blocks"][0]
        self.assertEqual((blk["multifd-normal"], blk["multifd-zero"]), (2, 3))
        self.assertEqual(rep["totals"], {"normal-pages": 2, "zero-pages": 3,
                                         "ok": True})

    def test_7_2_stale_sync_and_pages_on_sync(self):
        """7.2: pages_alloc 128 in SYNC packets, pages riding on a SYNC, and
        a SYNC with normal 0 but a stale next_packet_size and name: no
        payload follows."""
        ch = (qs.mfd_init(0)
              + qs.mfd_packet(flags=qs.MFD_FLAG_SYNC, pages_alloc=128)
              + qs.mfd_packet(normal=[PAGE], flags=qs.MFD_FLAG_SYNC,
                              packet_num=5) + page(9)
              + qs.mfd_packet(flags=qs.MFD_FLAG_SYNC, pages_alloc=128,
                              next_size=262144, packet_num=7)
              + qs.mfd_packet(normal=[2 * PAGE], packet_num=9) + page(3))
        c = self.dump(main_for_channels(), ch)["channels"][0]
        self.assertEqual((c["packets"], c["sync-packets"], c["normal-pages"],
                          c["stale-next-packet-size"], c["payload-bytes"]),
                         (4, 3, 2, 1, 2 * PAGE))

    def test_compressed_and_device_state(self):
        dev = (be32(qs.MFD_MAGIC) + be32(1) + be32(0x40) + b"vfio".ljust(256, b"\0")
               + be32(0) + be32(10) + b"0123456789")
        ch = (qs.mfd_init(0)
              + qs.mfd_packet(normal=[0, PAGE], flags=0x02, next_size=100)
              + bytes(100) + dev
              + qs.mfd_packet(normal=[PAGE], flags=0x02, next_size=7) + bytes(7))
        c = self.dump(main_for_channels(), ch)["channels"][0]
        self.assertEqual((c["packets"], c["device-state-packets"],
                          c["payload-bytes"], c["compression"]),
                         (3, 1, 117, "zlib"))
        # the method changes on the third packet
        bad = ch + qs.mfd_packet(normal=[0], flags=0x04, next_size=3) + bytes(3)
        self.assertMalformed(main_for_channels(), len(ch) + 8,
                             "packet compression bits expected 0x02 (zlib, as "
                             "in earlier packets), found 0x04 (zstd)",
                             channel=bad)

    def test_malformed_packets(self):
        main = main_for_channels()
        init = qs.mfd_init(0)
        n = len(init)
        cases = [
            (be32(0x11223345) + bytes(60), 0,
             "multifd init magic expected 0x11223344, found 0x11223345"),
            (init + qs.mfd_packet(magic=0x5145564D), n,
             "packet magic expected 0x11223344, found 0x5145564d"),
            (init + qs.mfd_packet(version=2), n + 4,
             "packet version expected 1, found 2"),
            (init + qs.mfd_packet(pages_alloc=129), n + 12,
             "packet pages_alloc expected <= 128, found 129"),
            (init + qs.mfd_packet(normal=[0, PAGE], pages_alloc=1), n + 16,
             "packet normal_pages expected <= 1 (pages_alloc), found 2"),
            (init + qs.mfd_packet(normal=[0], zero=[PAGE], pages_alloc=1), n + 32,
             "packet zero_pages expected <= 0 (pages_alloc - normal_pages), "
             "found 1"),
            (init + qs.mfd_packet(zero=[0, 100]), n + 320 + 8,
             "packet offset[1] expected a multiple of 4096, found 0x64"),
            (init + qs.mfd_packet(zero=[64 * PAGE]), n + 320,
             "packet offset[0] expected <= 0x3f000 (the last page of 'ram'), "
             "found 0x40000"),
            (init + qs.mfd_packet(zero=[0], block="rom"), n + 64,
             "packet ramblock expected one of the MEM_SIZE blocks, found 'rom'"),
            (init + qs.mfd_packet(normal=[0], flags=2, next_size=(1 << 20) + 1),
             n + 20, "packet next_packet_size expected <= 1048576 for a "
             "compressed payload, found 1048577"),
        ]
        for ch, off, msg in cases:
            with self.subTest(msg=msg):
                self.assertMalformed(main, off, msg, channel=ch)
        # truncations
        ch = init + qs.mfd_packet(normal=[0]) + page(1)
        self.assertMalformed(main, len(ch) - 10, "stream ends inside a "
                             "multifd packet's payload", channel=ch[:-10])
        self.assertMalformed(main, n + 100, "stream ends inside a multifd "
                             "packet", channel=ch[:n + 100])
        self.assertMalformed(main, 0, "stream ends before the multifd init "
                             "packet", channel=b"")

    def test_channel_errors_do_not_hide_the_others(self):
        good = qs.mfd_init(0) + qs.mfd_sync(0)
        paths = [self.write(main_for_channels()), self.write(good),
                 self.write(b"\x11\x22")]
        r = run_migdump("--json", *paths)
        self.assertEqual(r.returncode, 2)
        rep = json.loads(r.stdout)
        self.assertEqual([c["status"] for c in rep["channels"]],
                         ["ok", "truncated"])
        self.assertFalse(rep["totals"]["ok"])

    def test_usage(self):
        r = run_migdump()
        self.assertEqual(r.returncode, 1)
        self.assertIn("usage: migdump", r.stderr)
        r = run_migdump(os.path.join(self.tmp, "missing"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("No such file or directory", r.stderr)


# --- real migd -> migd migrations, captured by a teeing relay ----------------------
def set_caps(q, **caps):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v} for k, v in caps.items()])


def set_params(q, **params):
    q.cmd("migrate-set-parameters", {k.replace("_", "-"): v for k, v in params.items()})


def wait_status(q, statuses, timeout=120):
    last = {}

    def done():
        nonlocal last
        last = q.cmd("query-migrate")
        return last.get("status") in statuses
    wait_for(done, timeout=timeout, what="migration status in %s" % (statuses,))
    return last


class CapturedMigdTest(MigdTestCase, MigdumpCase):
    def setUp(self):
        MigdTestCase.setUp(self)
        MigdumpCase.setUp(self)

    def capture(self, channels=0, content="mixed", args=(), src_params=None):
        src = self.migd(["-m", "64M"] + list(args))
        dst = self.migd(["-m", "64M", "-incoming", "defer"] + list(args))
        qsrc, qdst = src.qmp(), dst.qmp()
        for q in (qsrc, qdst):
            if channels:
                set_caps(q, multifd=True)
                set_params(q, multifd_channels=channels)
        if src_params:
            set_params(qsrc, **src_params)
        qsrc.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                                      "content": content, "passes": 1})
        wait_for(lambda: qsrc.cmd("x-guest-workload").get("finished"),
                 timeout=60, what="RAM filled")
        qsrc.cmd("x-guest-workload", {"dirty-rate": "idle"})
        port = free_tcp_port()
        relay = Relay(port, self.tmp)
        self.addCleanup(relay.close)
        qdst.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        qsrc.cmd("migrate", uri="tcp:127.0.0.1:%d" % relay.port)
        info = wait_status(qsrc, ("completed", "failed"))
        self.assertEqual(info["status"], "completed", info)
        wait_status(qdst, ("completed",), 30)
        relay.wait()
        main, chans = relay.captures()
        self.assertEqual(len(chans), channels)
        r = run_migdump("--json", main, *chans)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
        return info["ram"], json.loads(r.stdout), main

    def test_single_stream(self):
        ram, rep, main = self.capture(0, "mixed")
        m = rep["main"]
        rec = m["ram"]["records"]
        self.assertEqual(rec["PAGE"], ram["normal"])
        self.assertEqual(rec["ZERO"], ram["duplicate"])
        self.assertEqual(rec["PAGE"] + rec["ZERO"], 64 * MiB // PAGE)
        self.assertEqual(m["bytes"], ram["transferred"])
        self.assertEqual(m["ram"]["blocks"][0]["name"], "ram")
        self.assertEqual(m["globalstate"]["runstate"], "running")
        kinds = [e.get("idstr") or e.get("command") or e["type"]
                 for e in m["sections"]]
        self.assertEqual(kinds[-6:], ["SWITCHOVER_START", "ram", "timer",
                                      "globalstate", "EOF", "VMDESCRIPTION"])
        with open(main, "rb") as f:
            f.seek(m["vmdesc"]["offset"])
            self.assertEqual(json.loads(f.read())["page_size"], PAGE)

    def test_multifd_two_channels(self):
        ram, rep, _ = self.capture(2, "mixed")
        chans = rep["channels"]
        self.assertEqual([c["id"] for c in chans], [0, 1])
        self.assertEqual(sum(c["normal-pages"] for c in chans), ram["normal"])
        self.assertEqual(sum(c["zero-pages"] for c in chans), ram["duplicate"])
        self.assertEqual(sum(c["bytes"] for c in chans), ram["multifd-bytes"])
        self.assertEqual(rep["main"]["bytes"] + ram["multifd-bytes"],
                         ram["transferred"])
        rec = rep["main"]["ram"]["records"]
        self.assertEqual((rec["PAGE"], rec["ZERO"]), (0, 0))
        # per-round sync: a SYNC on every channel for every 0x200
        for c in chans:
            self.assertEqual(c["sync-packets"], rec["MULTIFD_FLUSH"])
        self.assertEqual(rep["totals"]["normal-pages"], ram["normal"])

    def test_multifd_legacy_sync_and_zero_pages(self):
        knob = ["-global", "migration.multifd-flush-after-each-section=on"]
        ram, rep, _ = self.capture(3, "mixed", knob,
                                   {"zero_page_detection": "legacy"})
        rec = rep["main"]["ram"]["records"]
        self.assertEqual(rec["MULTIFD_FLUSH"], 0)
        self.assertEqual(rec["ZERO"], ram["duplicate"])
        for c in rep["channels"]:
            self.assertEqual(c["sync-packets"], rec["EOS"])
            self.assertEqual(c["zero-pages"], 0)
        self.assertEqual(sum(c["normal-pages"] for c in rep["channels"]),
                         ram["normal"])


# --- real QEMU streams ------------------------------------------------------------------
QEMU72 = shutil.which("qemu-system-x86_64")
QEMU10 = os.path.join(ROOT, "build", "qemu-10.0", "qemu-system-x86_64")
if not os.access(QEMU10, os.X_OK):
    QEMU10 = None


class Qemu:
    """A QEMU -M none -S with a 64 MiB RAM block 'ram0' and one QMP
    monitor."""

    def __init__(self, binary, tmp, name, ram, extra=()):
        self.sock = os.path.join(tmp, name + ".qmp")
        cmd = [binary, "-M", "none", "-m", "64M", "-S", "-nodefaults",
               "-display", "none", "-qmp", "unix:%s,server=on,wait=off" % self.sock,
               "-object", ram, "-machine", "memory-backend=ram0"] + list(extra)
        self.log = open(os.path.join(tmp, name + ".log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.sock) or self.proc.poll() is not None,
                 what="QEMU's QMP socket")
        self.qmp = QMP(self.sock)
        self.qmp.negotiate()

    def migrate_and_wait(self, uri):
        self.qmp.cmd("migrate", uri=uri)
        return wait_status(self.qmp, ("completed", "failed"), 60)

    def close(self):
        try:
            self.qmp.cmd("quit")
        except (OSError, ConnectionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.qmp.close()
        self.log.close()


class QemuStreamTest(MigdumpCase):
    """Streams QEMU itself wrote: a 64 MiB file-backed RAM with every 7th
    page random, the rest zero."""

    def setUp(self):
        super().setUp()
        self.mem = os.path.join(self.tmp, "mem.img")
        with open(self.mem, "wb") as f:
            for i in range(64 * MiB // PAGE):
                f.write(os.urandom(PAGE) if i % 7 == 0 else bytes(PAGE))
        self.nonzero = (64 * MiB // PAGE + 6) // 7

    def src(self, binary, name="src"):
        q = Qemu(binary, self.tmp, name, "memory-backend-file,id=ram0,size=64M,"
                 "mem-path=%s,share=on,readonly=on" % self.mem)
        self.addCleanup(q.close)
        return q

    def check_exec(self, binary, vmdesc_config):
        out = os.path.join(self.tmp, "stream.bin")
        info = self.src(binary).migrate_and_wait("exec:cat > %s" % out)
        self.assertEqual(info["status"], "completed", info)
        r = run_migdump("--json", out)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        m = json.loads(r.stdout)["main"]
        rec = m["ram"]["records"]
        self.assertEqual(rec["PAGE"], info["ram"]["normal"])
        self.assertEqual(rec["PAGE"], self.nonzero)
        self.assertEqual(rec["ZERO"], info["ram"]["duplicate"])
        self.assertEqual(m["ram"]["blocks"][0]["name"], "ram0")
        self.assertEqual(m["globalstate"]["runstate"], "prelaunch")
        with open(out, "rb") as f:
            f.seek(m["vmdesc"]["offset"])
            vmdesc = json.loads(f.read())
        self.assertEqual("configuration" in vmdesc, vmdesc_config)
        return m

    @unittest.skipUnless(QEMU72, "QEMU 7.2 is not installed")
    def test_qemu_7_2_exec(self):
        m = self.check_exec(QEMU72, False)
        self.assertNotIn("vm-was-suspended", m["globalstate"])

    @unittest.skipUnless(QEMU10, "QEMU 10.0 is not unpacked in build/qemu-10.0")
    def test_qemu_10_0_exec(self):
        m = self.check_exec(QEMU10, True)
        self.assertEqual(m["globalstate"]["vm-was-suspended"], False)
        self.assertIn("SWITCHOVER_START",
                      [e.get("command") for e in m["sections"]])

    @unittest.skipUnless(QEMU10, "QEMU 10.0 is not unpacked in build/qemu-10.0")
    def test_qemu_10_0_mapped_ram(self):
        out = os.path.join(self.tmp, "mapped.bin")
        q = self.src(QEMU10)
        set_caps(q.qmp, mapped_ram=True)
        info = q.migrate_and_wait("file:" + out)
        self.assertEqual(info["status"], "completed", info)
        r = run_migdump("--json", out)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        m = json.loads(r.stdout)["main"]
        self.assertEqual(m["configuration"]["capabilities"], ["mapped-ram"])
        mr = m["ram"]["blocks"][0]["mapped-ram"]
        self.assertEqual(mr["present-pages"], self.nonzero)
        self.assertEqual(mr["pages-offset"] % MiB, 0)

    def multifd(self, binary, compression=None):
        src = self.src(binary)
        dst = Qemu(binary, self.tmp, "dst", "memory-backend-ram,id=ram0,size=64M",
                   ["-incoming", "defer"])
        self.addCleanup(dst.close)
        for q in (src.qmp, dst.qmp):
            set_caps(q, multifd=True)
            set_params(q, multifd_channels=2)
            if compression:
                set_params(q, multifd_compression=compression)
        port = free_tcp_port()
        relay = Relay(port, self.tmp)
        self.addCleanup(relay.close)
        dst.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:%d" % port)
        info = src.migrate_and_wait("tcp:127.0.0.1:%d" % relay.port)
        self.assertEqual(info["status"], "completed", info)
        wait_status(dst.qmp, ("completed",), 30)
        src.close()
        dst.close()
        relay.wait()
        main, chans = relay.captures()
        r = run_migdump("--json", main, *chans)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:])
        return info["ram"], json.loads(r.stdout)

    @unittest.skipUnless(QEMU72, "QEMU 7.2 is not installed")
    def test_qemu_7_2_multifd(self):
        ram, rep = self.multifd(QEMU72)
        chans = rep["channels"]
        self.assertEqual(len(chans), 2)
        # 7.2 leaves next_packet_size in the SYNC packets that follow data
        self.assertGreater(sum(c["stale-next-packet-size"] for c in chans), 0)
        self.assertEqual(rep["main"]["ram"]["records"]["ZERO"], ram["duplicate"])
        # 7.2 may send a page twice across channels: at least each once
        self.assertGreaterEqual(sum(c["normal-pages"] for c in chans),
                                ram["normal"])
        # 7.2's multifd-bytes leaves out the 64-byte init packets
        self.assertEqual(sum(c["bytes"] - 64 for c in chans),
                         ram["multifd-bytes"])

    @unittest.skipUnless(QEMU10, "QEMU 10.0 is not unpacked in build/qemu-10.0")
    def test_qemu_10_0_multifd_zlib(self):
        ram, rep = self.multifd(QEMU10, "zlib")
        chans = rep["channels"]
        self.assertEqual({c["compression"] for c in chans}, {"zlib"})
        self.assertEqual(sum(c["normal-pages"] for c in chans), ram["normal"])
        self.assertEqual(sum(c["zero-pages"] for c in chans), ram["duplicate"])
        self.assertEqual(rep["main"]["ram"]["records"]["MULTIFD_FLUSH"],
                         chans[0]["sync-packets"])


if __name__ == "__main__":
    unittest.main()
