"""QEMU 10.0 <-> migd: real migrations both ways (single stream and multifd
1/2/4 channels, tcp and unix, zero-page-detection multifd and legacy,
random/zero/mixed RAM), checking RAM, statuses, events and runstates.
`make check` runs a representative subset, `make check-long` everything.
"""
from tests.interop.qemutest import InteropTestCase, add_matrix, require_qemu


@require_qemu("10.0")
class Qemu100Interop(InteropTestCase):
    pass


add_matrix(Qemu100Interop, "10.0")
