"""QEMU 10.0 <-> migd through files: migd saves with `migrate file:...` and
QEMU 10.0 restores it with `migrate-incoming file:...`, and the other way
round; QEMU's sequential stream and the mapped-ram layout, without multifd
and with 2/4 channels, random and mixed RAM. RAM is compared byte for byte
(both sides' RAM are memory-backend files).
"""
import os

from tests.interop.qemutest import (MiB, InteropTestCase, fill_ram_file,
                                    file_sha256, migd_machine_args,
                                    require_qemu, set_caps, set_params,
                                    wait_status)

SIZE = 256 * MiB


def configure(q, mapped_ram, channels):
    caps = {"events": True}
    if mapped_ram:
        caps["mapped-ram"] = True
    if channels:
        caps["multifd"] = True
    set_caps(q, **caps)
    if channels:
        set_params(q, multifd_channels=channels)


@require_qemu("10.0")
class FileInterop(InteropTestCase):

    def migd_side(self, name, incoming):
        self.n_ = getattr(self, "n_", 0) + 1
        name = "%s-%d" % (name, self.n_)
        ram = self.ram_file(name, SIZE)
        tmpdir = os.path.join(self.tmpdir, name)
        os.mkdir(tmpdir)
        m = self.migd(migd_machine_args(SIZE, ram, paused=True,
                                        incoming=incoming), tmpdir=tmpdir)
        return m, m.qmp(), ram

    def save_file(self):
        path = os.path.join(self.tmpdir, "vm.sav")
        if os.path.exists(path):
            os.unlink(path)
        self._files.append(path)
        return path

    def run_file(self, from_migd, mapped_ram, channels, content):
        path = self.save_file()
        if from_migd:
            src, qs, src_ram = self.migd_side("migd-src", False)
            qm = self.qemu("10.0", SIZE, incoming=True)
            dst_ram = qm.ram_path
        else:
            qm = self.qemu("10.0", SIZE)
            src_ram = qm.ram_path
        fill_ram_file(src_ram, SIZE, content, seed=channels + 3)
        if from_migd:
            qm.start()
            qd = qm.q
        else:
            qm.start()
            qs = qm.q
            dst, qd, dst_ram = self.migd_side("migd-dst", True)
        for q in (qs, qd):
            configure(q, mapped_ram, channels)
        qs.cmd("migrate", uri="file:" + path)
        info = wait_status(qs, ("completed", "failed"), what="save")
        self.assertEqual(info["status"], "completed", info)
        qd.cmd("migrate-incoming", uri="file:" + path)
        info = wait_status(qd, ("completed", "failed"), what="restore")
        self.assertEqual(info["status"], "completed", info)
        self.assertEqual(file_sha256(src_ram), file_sha256(dst_ram))
        if mapped_ram:
            self.assertLessEqual(os.stat(path).st_size,
                                 SIZE + 2 * MiB)

    def test_migd_to_qemu_sequential(self):
        self.run_file(True, False, 0, "random")

    def test_qemu_to_migd_sequential(self):
        self.run_file(False, False, 0, "mixed")

    def test_migd_to_qemu_mapped_ram(self):
        for channels in (0, 2, 4):
            with self.subTest(channels=channels):
                self.run_file(True, True, channels, "mixed")

    def test_qemu_to_migd_mapped_ram(self):
        for channels in (0, 2, 4):
            with self.subTest(channels=channels):
                self.run_file(False, True, channels, "mixed")

    def test_migd_to_qemu_mapped_ram_random(self):
        self.run_file(True, True, 2, "random")
