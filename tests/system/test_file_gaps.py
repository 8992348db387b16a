"""mapped-ram with direct-io on fragmented RAM (mixed content: zero pages in
runs of one or two): the source writes short gaps of a batch's zero pages
as zeros to join runs into one write, the destination reads them into a
scratch buffer. Checked between real migd processes: paused and live
round trips with 1 and 4 channels give the source's digest, the bitmap
still marks the zero pages absent, and a file whose absent slots were
overwritten with junk (stale bytes) still restores exactly, with and
without direct-io: a clear bit means zero, whatever the file holds.
"""
import os
import struct
import unittest

from tests.system.test_file import FileTest, direct_io_reason, find_header
from tests.system.test_migration import digest

PAGE = 4096


def read_layout(path, size):
    """(bitmap bytes, pages offset) of block "ram" in a saved file."""
    with open(path, "rb") as f:
        head = f.read(2 * 1024 * 1024)
        at = find_header(head, size)
        _, psize, bm_off, pages_off = struct.unpack(">IQQQ",
                                                    head[at:at + 28])
        assert psize == PAGE
        f.seek(bm_off)
        return f.read(size // PAGE // 8), pages_off


def absent_pages(bitmap):
    for i, byte in enumerate(bitmap):
        for bit in range(8):
            if not byte & (1 << bit):
                yield i * 8 + bit


class FileGapsTest(FileTest):

    def setUp(self):
        super().setUp()
        reason = direct_io_reason(self.dir)
        if reason:
            self.skipTest(reason)

    def poison_absent(self, path):
        """Junk in every absent page's slot; returns how many."""
        bitmap, pages_off = read_layout(path, self.size)
        junk = bytes([0x5a]) * PAGE
        n = 0
        with open(path, "r+b") as f:
            for page in absent_pages(bitmap):
                f.seek(pages_off + page * PAGE)
                f.write(junk)
                n += 1
        return n

    def test_mixed_direct_io(self):
        for channels in (1, 4):
            with self.subTest(channels=channels):
                path = self.round_trip("mixed", mapped_ram=True,
                                       channels=channels, direct_io=True)
                bitmap, _ = read_layout(path, self.size)
                # the zero pages written into gaps are still absent
                self.assertGreater(sum(1 for _ in absent_pages(bitmap)),
                                   self.size // PAGE // 4)
                os.unlink(path)

    def test_mixed_direct_io_live(self):
        path = self.round_trip("mixed", live=True, mapped_ram=True,
                               channels=4, direct_io=True)
        os.unlink(path)

    def test_stale_bytes_in_absent_slots(self):
        path = self.path()
        src, qs, want = self.save("file:" + path, "mixed", mapped_ram=True,
                                  channels=2, direct_io=True)
        self.assertGreater(self.poison_absent(path), 0)
        for direct in (True, False):
            with self.subTest(direct_io=direct):
                dst, qd = self.restore("file:" + path, mapped_ram=True,
                                       channels=2, direct_io=direct)
                self.assertEqual(digest(qd), want)
                dst.stop()


def load_tests(loader, standard_tests, pattern):
    """Only this file's tests, not FileTest's inherited ones."""
    suite = unittest.TestSuite()
    for name in ("test_mixed_direct_io", "test_mixed_direct_io_live",
                 "test_stale_bytes_in_absent_slots"):
        suite.addTest(FileGapsTest(name))
    return suite
