"""QEMU 7.2 <-> migd: real migrations both ways (single stream and multifd
1/2/4 channels, tcp and unix, random/zero/mixed RAM). migd runs with the
knobs QEMU users set for an old peer: multifd-flush-after-each-section=on,
send-switchover-start=off, zero-page-detection=legacy. 7.2 streams carry
zero pages on the main channel, a SYNC per RAM section, stale
next_packet_size in SYNC packets and pages riding on SYNC packets.
"""
from tests.interop.qemutest import InteropTestCase, add_matrix, require_qemu


@require_qemu("7.2")
class Qemu72Interop(InteropTestCase):
    pass


add_matrix(Qemu72Interop, "7.2")
