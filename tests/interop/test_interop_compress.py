"""multifd compression against real QEMU: QEMU 10.0 -> migd and migd ->
QEMU 10.0 with zlib and zstd (2 channels, 256 MiB of mixed RAM: zero,
random and text-like pages), and the same with QEMU 7.2, whose zlib/zstd
framing is the same (one stream per channel, flushed per packet). RAM is
compared byte for byte, statuses, events and runstates as in the matrix.
"""
from tests.interop.qemutest import (MiB, Case, InteropTestCase, require_qemu,
                                    set_params)


class _CompressCases(InteropTestCase):
    version = None

    def setup_side(self, q, case, is_qemu, source):
        super().setup_side(q, case, is_qemu, source)
        set_params(q, multifd_compression=case.compression)

    def run_compressed(self, direction, method, channels=2, **kw):
        case = Case(self.version, direction, "tcp", channels, None, "mixed",
                    256 * MiB, **kw)
        case.compression = method
        sinfo, _ = self.run_case(case)
        if direction == "from-migd":
            # migd's transferred counts the compressed bytes on the wire
            ram = sinfo["ram"]
            self.assertLess(ram["multifd-bytes"], 0.8 * case.size)
            self.assertLessEqual(ram["transferred"],
                                 ram["multifd-bytes"] + 8 * MiB)
        return sinfo

    def test_to_migd_zlib(self):
        self.run_compressed("to-migd", "zlib")

    def test_to_migd_zstd(self):
        self.run_compressed("to-migd", "zstd")

    def test_from_migd_zlib(self):
        self.run_compressed("from-migd", "zlib")

    def test_from_migd_zstd(self):
        self.run_compressed("from-migd", "zstd")


@require_qemu("10.0")
class Qemu100Compress(_CompressCases):
    version = "10.0"

    def test_from_migd_zstd_live(self):
        self.run_compressed("from-migd", "zstd", dirty_rate=30)


@require_qemu("7.2")
class Qemu72Compress(_CompressCases):
    version = "7.2"


del _CompressCases  # only the versioned classes run
