"""QEMU 7.2 <-> migd: real migrations both ways (single stream and multifd
1/2/4 channels, tcp and unix, random/zero/mixed RAM). migd runs with the
knobs QEMU users set for an old peer: multifd-flush-after-each-section=on,
send-switchover-start=off, zero-page-detection=legacy. 7.2 streams carry
zero pages on the main channel, a SYNC per RAM section, stale
next_packet_size in SYNC packets and pages riding on SYNC packets.
"""
import os

from tests.interop.qemutest import (MiB, Case, InteropTestCase, add_matrix,
                                    require_qemu)
from tests.interop.relay import main_stats, multifd_stats


@require_qemu("7.2")
class Qemu72Interop(InteropTestCase):
    pass


add_matrix(Qemu72Interop, "7.2")


@require_qemu("7.2")
class Qemu72Quirks(InteropTestCase):
    """A 7.2 multifd stream really has the quirks the migd destination
    must handle: the same migration as the matrix, with the streams
    captured on the way and counted."""

    def test_quirks_exercised(self):
        case = Case("7.2", "to-migd", "tcp", 2, None, "mixed", 256 * MiB)
        self.run_case(case, capture=True)
        self.relay.close()
        capdir, stats = self.relay.capdir, []
        for n in range(self.relay.count):
            with open(os.path.join(capdir, "conn-%d.bin" % n), "rb") as f:
                data = f.read()
            if n == 0:  # 7.2: the first connection is the main channel
                self.assertEqual(data[:4], b"QEVM")
                main = main_stats(data)
            else:
                stats.append(multifd_stats(data))
        # zero pages on the main channel (mixed RAM is ~45% zero pages)
        self.assertGreater(int(main.get("ZERO|CONTINUE", 0)), 10000, main)
        self.assertNotIn("MULTIFD_FLUSH", main)
        self.assertEqual(len(stats), 2)
        for st in stats:
            # a SYNC per RAM section: setup, iterations, completion
            self.assertGreaterEqual(st["sync"], 3, stats)
            self.assertGreater(st["stale_next"], 0, stats)
            self.assertEqual(st["zero_pages"], 0, stats)
