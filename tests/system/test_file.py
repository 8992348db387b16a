"""file: save and restore between real migd processes: QEMU's sequential
stream in a file, and the mapped-ram layout (per-block header, bitmap,
1 MiB-aligned pages at fixed offsets, zero pages skipped, sparse file) with
0/1/2/4 channels, direct-io, offset= (decimal and hex), the channel form
and /dev/fdset/N files; paused and live guests. Every restore happens in a
fresh migd and is checked byte for byte with x-query-ram-digest against the
saved source; the file size is checked against headers + RAM. Corrupted
files (truncated, torn, wrong header, bitmap past the end, wrong block
size) must fail the restore with an error-desc and leave the destination
guest in inmigrate.
"""
import os
import random
import struct
import tempfile
import time

from tests.system.migdtest import MigdTestCase
from tests.system.test_migration import (digest, fill, set_caps, set_params,
                                         wait_status)

MiB = 1 << 20
GENERIC = "GenericError"
HDR = 28


def direct_io_reason(directory):
    """None when O_DIRECT opens work in directory, else why not."""
    path = os.path.join(directory, "odirect-probe")
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
        os.close(fd)
        return None
    except OSError as e:
        return "O_DIRECT refused here: %s" % e
    finally:
        if os.path.exists(path):
            os.unlink(path)


def find_header(data, size, name=b"ram"):
    """File offset of block name's mapped-ram header (after its MEM_SIZE
    entry: u8 len, name, be64 length)."""
    entry = bytes([len(name)]) + name + struct.pack(">Q", size)
    at = data.find(entry)
    assert at >= 0, "MEM_SIZE entry not found"
    return at + len(entry)


class FileTest(MigdTestCase):
    mem = "256M"
    size = 256 * MiB

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="migd-file-",
                                    dir=os.environ.get("MIGD_FILE_DIR"))
        self.addCleanup(self.rmdir)

    def rmdir(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def path(self, name="vm.sav"):
        return os.path.join(self.dir, name)

    def configure(self, q, mapped_ram=False, channels=0, direct_io=False,
                  **params):
        caps = {"events": True}
        if mapped_ram:
            caps["mapped-ram"] = True
        if channels:
            caps["multifd"] = True
        set_caps(q, **caps)
        if channels:
            params["multifd_channels"] = channels
        if direct_io:
            params["direct_io"] = True
        if params:
            set_params(q, **params)

    def save(self, uri=None, content="mixed", live=False, fdset=None,
             channels_arg=None, **cfg):
        src = self.migd(["-m", self.mem, "-smp", "2"])
        qs = src.qmp()
        self.configure(qs, **cfg)
        fill(qs, content)
        if live:
            qs.cmd("x-guest-workload", {"dirty-rate": 50, "pattern": "random",
                                        "content": "random"})
            time.sleep(0.2)
        if fdset is not None:
            fdset(qs)
        if channels_arg is not None:
            qs.cmd("migrate", channels=channels_arg)
        else:
            qs.cmd("migrate", uri=uri)
        info = wait_status(qs, ("completed", "failed"))
        self.assertEqual(info["status"], "completed", info)
        self.assertEqual(qs.cmd("query-status")["status"], "postmigrate")
        return src, qs, digest(qs)

    def restore(self, uri, expect=None, dst_args=(), **cfg):
        dst = self.migd(["-m", self.mem, "-incoming", "defer"] + list(dst_args))
        qd = dst.qmp()
        self.configure(qd, **cfg)
        qd.cmd("migrate-incoming", uri=uri)
        info = wait_status(qd, ("completed", "failed"))
        if expect is None:
            self.assertEqual(info["status"], "completed", info)
            self.assertEqual(qd.cmd("query-status")["status"], "running")
        else:
            self.assertEqual(info["status"], "failed", info)
            self.assertIn(expect, info.get("error-desc", ""), info)
            self.assertEqual(qd.cmd("query-status")["status"], "inmigrate")
        return dst, qd

    def round_trip(self, content="mixed", live=False, suffix="", **cfg):
        path = self.path()
        src, qs, want = self.save("file:" + path + suffix, content, live,
                                  **cfg)
        dst, qd = self.restore("file:" + path + suffix, **cfg)
        self.assertEqual(digest(qd), want)
        return path

    def check_mapped_size(self, path, offset=0):
        st = os.stat(path)
        # header area (< 1 MiB) + pages + the stream's tail (a few KiB)
        self.assertLessEqual(st.st_size, offset + MiB + self.size + 64 * 1024)
        self.assertGreater(st.st_size, offset + self.size)
        return st

    # ---- sequential ---------------------------------------------------------

    def test_restore_into_thp_auto_ram(self):
        # the first-touch policy picks page sizes; the RAM must not change
        ram = ["-object", "memory-backend-ram,id=ram,size=%s,x-thp=auto" % self.mem,
               "-machine", "memory-backend=ram"]
        for content, cfg in (("random", dict(mapped_ram=True, channels=2)),
                             ("mixed", dict(mapped_ram=True, channels=4)),
                             ("mixed", {})):
            with self.subTest(content=content, **cfg):
                path = self.path()
                _, _, want = self.save("file:" + path, content, **cfg)
                _, qd = self.restore("file:" + path, dst_args=ram, **cfg)
                self.assertEqual(digest(qd), want)
                os.unlink(path)

    def test_sequential_random(self):
        self.round_trip("random")

    def test_sequential_live(self):
        self.round_trip("random", live=True)

    def test_multifd_without_mapped_ram_refused(self):
        src = self.migd(["-m", "16M"])
        qs = src.qmp()
        set_caps(qs, multifd=True)
        self.assertQMPError(
            qs.execute("migrate", {"uri": "file:" + self.path()}), GENERIC,
            "Migration requires multi-channel URIs (e.g. tcp)")
        dst = self.migd(["-m", "16M", "-incoming", "defer"])
        qd = dst.qmp()
        set_caps(qd, multifd=True)
        self.assertQMPError(
            qd.execute("migrate-incoming", {"uri": "file:" + self.path()}),
            GENERIC, "Migration requires multi-channel URIs (e.g. tcp)")

    def test_open_errors(self):
        src = self.migd(["-m", "16M"])
        qs = src.qmp()
        bad = os.path.join(self.dir, "missing", "x")
        self.assertQMPError(
            qs.execute("migrate", {"uri": "file:" + bad}), GENERIC,
            "Could not create '%s': No such file or directory" % bad)
        dst = self.migd(["-m", "16M", "-incoming", "defer"])
        qd = dst.qmp()
        self.assertQMPError(
            qd.execute("migrate-incoming", {"uri": "file:" + bad}), GENERIC,
            "Could not open '%s': No such file or directory" % bad)

    # ---- mapped-ram ---------------------------------------------------------

    def test_mapped_ram_channels(self):
        for channels in (0, 1, 2, 4):
            with self.subTest(channels=channels):
                path = self.round_trip("mixed", mapped_ram=True,
                                       channels=channels)
                st = self.check_mapped_size(path)
                # mixed content has zero pages: they are holes
                self.assertLess(st.st_blocks * 512, st.st_size)
                os.unlink(path)

    def test_mapped_ram_layout(self):
        path = self.path()
        self.save("file:" + path, "mixed", mapped_ram=True, channels=2)
        with open(path, "rb") as f:
            data = f.read(2 * MiB)
        at = find_header(data, self.size)
        ver, psize, bmap, pages = struct.unpack(">IQQQ", data[at:at + HDR])
        self.assertEqual((ver, psize), (1, 4096))
        self.assertEqual(bmap, at + HDR)
        self.assertEqual(pages % MiB, 0)
        self.assertEqual(pages, (bmap + self.size // 4096 // 8 + MiB - 1)
                         // MiB * MiB)
        st = os.stat(path)
        self.assertGreaterEqual(st.st_size, pages + self.size)
        with open(path, "rb") as f:
            f.seek(pages + self.size)
            tail = f.read()
        # the stream goes on with EOS and ends with EOF + vmdesc
        self.assertEqual(tail[:8], struct.pack(">Q", 0x10))
        self.assertIn(b'"page_size"', tail)

    def test_mapped_ram_random_live(self):
        path = self.round_trip("random", live=True, mapped_ram=True,
                               channels=2)
        self.check_mapped_size(path)

    def test_mapped_ram_live_no_multifd(self):
        path = self.round_trip("random", live=True, mapped_ram=True)
        self.check_mapped_size(path)

    def test_direct_io(self):
        reason = direct_io_reason(self.dir)
        if reason:
            self.skipTest(reason)
        for channels in (1, 4):
            with self.subTest(channels=channels):
                path = self.round_trip("random", mapped_ram=True,
                                       channels=channels, direct_io=True)
                os.unlink(path)

    def test_offset_hex_and_decimal(self):
        for off in (",offset=0x1000", ",offset=8192"):
            with self.subTest(offset=off):
                path = self.path()
                with open(path, "wb") as f:
                    f.write(b"H" * 8192)
                self.round_trip("mixed", suffix=off, mapped_ram=True,
                                channels=2)
                n = int(off.split("=")[1], 0)
                with open(path, "rb") as f:
                    head = f.read(n + 4)
                self.assertEqual(head[:n], b"H" * n)
                self.assertEqual(head[n:], b"QEVM")
                self.check_mapped_size(path, n)
                os.unlink(path)

    def test_channel_form(self):
        path = self.path()
        chan = [{"channel-type": "main",
                 "addr": {"transport": "file", "filename": path,
                          "offset": 4096}}]
        src, qs, want = self.save(content="random", channels_arg=chan,
                                  mapped_ram=True, channels=2)
        dst, qd = self.restore("file:%s,offset=4096" % path,
                               mapped_ram=True, channels=2)
        self.assertEqual(digest(qd), want)

    def fdset_adder(self, path, flags_list, fdset_id=7):
        def add(q):
            for flags in flags_list:
                fd = os.open(path, flags | os.O_CREAT, 0o600)
                try:
                    r = q.execute("add-fd", {"fdset-id": fdset_id},
                                  fds=[fd])
                    self.assertIn("return", r, r)
                finally:
                    os.close(fd)
        return add

    def test_fdset(self):
        path = self.path()
        uri = "file:/dev/fdset/7"
        add = self.fdset_adder(path, [os.O_WRONLY, os.O_WRONLY])
        src, qs, want = self.save(uri, "mixed", fdset=add, mapped_ram=True,
                                  channels=2)
        dst = self.migd(["-m", self.mem, "-incoming", "defer"])
        qd = dst.qmp()
        self.configure(qd, mapped_ram=True, channels=2)
        self.fdset_adder(path, [os.O_RDONLY, os.O_RDONLY])(qd)
        qd.cmd("migrate-incoming", uri=uri)
        info = wait_status(qd, ("completed", "failed"))
        self.assertEqual(info["status"], "completed", info)
        self.assertEqual(digest(qd), want)

    def test_cancel_mapped_ram(self):
        src = self.migd(["-m", self.mem, "-smp", "2"])
        qs = src.qmp()
        self.configure(qs, mapped_ram=True, channels=2,
                       max_bandwidth=16 << 20)
        fill(qs, "random")
        qs.cmd("migrate", uri="file:" + self.path())
        wait_status(qs, ("active",))
        qs.cmd("migrate_cancel")
        info = wait_status(qs, ("cancelled", "failed", "completed"))
        self.assertEqual(info["status"], "cancelled", info)
        self.assertEqual(qs.cmd("query-status")["status"], "running")
        # the next save works
        set_params(qs, max_bandwidth=0)
        qs.cmd("migrate", uri="file:" + self.path())
        info = wait_status(qs, ("completed", "failed"))
        self.assertEqual(info["status"], "completed", info)

    # ---- corruption ---------------------------------------------------------

    def saved_mapped(self):
        path = self.path("good.sav")
        self.save("file:" + path, "mixed", mapped_ram=True, channels=2)
        with open(path, "rb") as f:
            head = f.read(2 * MiB)
        return path, find_header(head, self.size)

    def corrupt(self, src, how):
        path = self.path("bad.sav")
        with open(src, "rb") as f, open(path, "wb") as g:
            while True:
                buf = f.read(16 * MiB)
                if not buf:
                    break
                g.write(buf)
        how(path)
        return path

    def patch(self, path, at, data):
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(data)

    def test_corrupted_files(self):
        good, at = self.saved_mapped()
        with open(good, "rb") as f:
            pages = struct.unpack(">Q", f.read(at + HDR)[at + 20:])[0]
        size = os.stat(good).st_size
        cases = [
            ("truncated in the pages",
             lambda p: os.truncate(p, pages + self.size // 2),
             "ramblock ram"),
            ("truncated in the bitmap", lambda p: os.truncate(p, at + 40),
             "ram"),
            ("torn tail (device sections)",
             lambda p: os.truncate(p, pages + self.size + 30), ""),
            ("header version",
             lambda p: self.patch(p, at, struct.pack(">I", 2)),
             "Migration mapped-ram capability version not supported "
             "(expected <= 1, got 2)"),
            ("bad alignment",
             lambda p: self.patch(p, at + 20, struct.pack(">Q", pages + 1)),
             "Error reading ramblock ram pages, region has bad alignment"),
            ("bitmap past the file",
             lambda p: self.patch(p, at + 12,
                                  struct.pack(">Q", size + 4096)), "ram"),
            ("block size",
             lambda p: self.patch(p, at - 8, struct.pack(">Q", self.size // 2)),
             ""),
        ]
        rng = random.Random(6)
        for i in range(4):  # random bytes in the header area
            off = rng.randrange(9, at + HDR)
            byte = bytes([rng.randrange(256)])
            cases.append(("fuzz %d at %d" % (i, off),
                          lambda p, o=off, b=byte: self.patch(p, o, b), None))
        for name, how, expect in cases:
            with self.subTest(case=name):
                path = self.corrupt(good, how)
                dst = self.migd(["-m", self.mem, "-incoming", "defer"])
                qd = dst.qmp()
                self.configure(qd, mapped_ram=True, channels=2)
                qd.cmd("migrate-incoming", uri="file:" + path)
                info = wait_status(qd, ("completed", "failed"))
                if expect is None:  # fuzz: either is fine, never a crash
                    if info["status"] == "failed":
                        self.assertEqual(qd.cmd("query-status")["status"],
                                         "inmigrate")
                else:
                    self.assertEqual(info["status"], "failed", info)
                    self.assertIn(expect, info.get("error-desc"), info)
                    self.assertEqual(qd.cmd("query-status")["status"],
                                     "inmigrate")
                self.assertEqual(dst.stop(), 0)
                os.unlink(path)

    def test_mapped_ram_mismatch_refused(self):
        path = self.path()
        self.save("file:" + path, "zero", mapped_ram=True)
        # a destination without mapped-ram refuses the configuration
        self.restore("file:" + path, expect="mapped-ram")
