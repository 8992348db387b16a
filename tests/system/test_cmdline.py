"""migd's command line in QEMU's conventions: every option is accepted (with
one or two dashes), every bad option exits 1 with a message naming it,
-daemonize/-pidfile, SIGTERM, and the memory backends really mapping guest
RAM (a shared file backend is the guest RAM image)."""
import os
import re
import signal
import subprocess
import time
import unittest

from tests.system import migdtest

UUID = "5A1B2C3D-0000-4000-8000-00000000ABCD"


def mapped_files(pid):
    """Paths of the files mapped into a process."""
    with open("/proc/%d/maps" % pid) as f:
        return {line.split(None, 5)[5].strip() for line in f
                if len(line.split(None, 5)) == 6}


def mapping_sizes(pid):
    """Sizes in bytes of every mapping of a process."""
    sizes = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            lo, hi = line.split()[0].split("-")
            sizes.append(int(hi, 16) - int(lo, 16))
    return sizes


class AcceptedOptions(migdtest.MigdTestCase):
    def test_all_options_together(self):
        tmp = self.tmp()
        m = self.migd(["-m", "64M", "-smp", "4", "-name", "guest=vm1",
                       "-uuid", UUID, "-S", "-nodefaults", "-display", "none",
                       "-nographic", "-D", os.path.join(tmp, "migd.log"),
                       "-machine", "none",
                       "-global", "migration.send-switchover-start=off",
                       "-pidfile", os.path.join(tmp, "migd.pid")],
                      qmp_tcp=True)
        q = m.qmp()
        t = m.qmp(tcp=True)
        self.assertEqual(q.cmd("query-status")["status"], "prelaunch")
        self.assertEqual(t.cmd("query-name"), {"name": "vm1"})
        self.assertEqual(q.cmd("query-uuid"), {"UUID": UUID.lower()})
        with open(os.path.join(tmp, "migd.pid")) as f:
            self.assertEqual(int(f.read()), m.proc.pid)
        self.assertIn(64 << 20, mapping_sizes(m.proc.pid))
        self.assertEqual(m.stop(), 0)
        self.assertFalse(os.path.exists(os.path.join(tmp, "migd.pid")))
        with open(os.path.join(tmp, "migd.log")) as f:
            self.assertIn("guest RAM block 'ram': 67108864 bytes", f.read())

    def tmp(self):
        m = self.migd(start=False)
        return m.tmpdir

    def test_two_dashes_and_alternate_spellings(self):
        m = self.migd(["--m", "size=32M", "--smp", "cpus=2", "--name", "vm2",
                       "--S", "-M", "type=none", "--nodefaults"])
        q = m.qmp()
        self.assertEqual(q.cmd("query-status")["status"], "prelaunch")
        self.assertEqual(q.cmd("query-name"), {"name": "vm2"})
        self.assertIn(32 << 20, mapping_sizes(m.proc.pid))

    def test_default_ram_is_128m(self):
        m = self.migd([])
        m.qmp()
        self.assertIn(128 << 20, mapping_sizes(m.proc.pid))

    def test_suffixless_m_is_mib(self):
        m = self.migd(["-m", "48"])
        m.qmp()
        self.assertIn(48 << 20, mapping_sizes(m.proc.pid))

    def test_incoming_defer(self):
        m = self.migd(["-incoming", "defer"])
        q = m.qmp()
        self.assertEqual(q.cmd("query-status"),
                         {"status": "inmigrate", "singlestep": False,
                          "running": False})

    def test_help_and_version(self):
        for opt in ("-h", "--help", "-help"):
            r = migdtest.run_migd([opt])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("usage: migd [options]", r.stdout)
            self.assertIn("-qmp unix:PATH,server=on,wait=off", r.stdout)
        for opt in ("-version", "--version"):
            r = migdtest.run_migd([opt])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout,
                             r"^migd version \S+ \(QEMU QAPI 9\.0\.0\)\n$")
        r = migdtest.run_migd(["-machine", "help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("none ", r.stdout)


class BadOptions(unittest.TestCase):
    CASES = [
        (["-bogus"], "migd: -bogus: invalid option"),
        (["--bogus"], "migd: --bogus: invalid option"),
        (["disk.img"], "migd: disk.img: invalid option"),
        (["-m"], "migd: -m: requires an argument"),
        (["-qmp"], "migd: -qmp: requires an argument"),
        (["-m", "lots"], "migd: -m lots: Parameter 'size' expects a "
         "non-negative number below 2^64"),
        (["-m", "1.5"], "migd: -m 1.5: Parameter 'size' expects a "
         "non-negative number below 2^64"),
        (["-m", "99999999999999999999"], "migd: -m 99999999999999999999: "
         "Value '99999999999999999999' is out of range for parameter 'size'"),
        (["-m", "1G,bogus=1"], "migd: -m 1G,bogus=1: Invalid parameter "
         "'bogus'"),
        (["-m", "1G,maxmem=4G"], "migd: -m 1G,maxmem=4G: memory hotplug "
         "(slots, maxmem) is not supported by machine 'none'"),
        (["-M", "pc"], "migd: -M pc: unsupported machine type: \"pc\""),
        (["-machine", "none,bogus=1"], "migd: -machine none,bogus=1: "
         "Property 'none-machine.bogus' not found"),
        (["-machine", "none,x"], "migd: -machine none,x: Expected '=' after "
         "parameter 'x'"),
        (["-smp", "0"], "migd: -smp 0: Invalid CPU topology: CPU topology "
         "parameters must be greater than zero"),
        (["-smp", "257"], "migd: -smp 257: Invalid SMP CPUs 257. The max "
         "CPUs supported by machine 'none' is 256"),
        (["-smp", "two"], "migd: -smp two: Parameter 'cpus' expects a "
         "number"),
        (["-smp", "2,maxcpus=1"], "migd: -smp 2,maxcpus=1: Invalid CPU "
         "topology: maxcpus must be equal to or greater than smp"),
        (["-name", "x,bogus=1"], "migd: -name x,bogus=1: Invalid parameter "
         "'bogus'"),
        (["-uuid", "1234"], "migd: -uuid 1234: Fail to parse UUID string. "
         "Wrong format."),
        (["-uuid", "5a1b2c3d-0000-4000-8000-00000000abcg"],
         "migd: -uuid 5a1b2c3d-0000-4000-8000-00000000abcg: Fail to parse "
         "UUID string. Wrong format."),
        (["-display", "gtk"], "migd: -display gtk: Display 'gtk' is not "
         "available"),
        (["-global", "virtio-net.x=1"], "migd: -global virtio-net.x=1: "
         "driver 'virtio-net' is not supported: migd has only the "
         "'migration' object's properties"),
        (["-global", "migration.no-such-prop=1"],
         "migd: can't apply global migration.no-such-prop=1: Property "
         "'migration.no-such-prop' not found"),
        (["-global", "migration"], "migd: -global migration: Expected '=' "
         "after parameter 'migration'"),
        (["-object", "memory-backend-ram,size=1M"], "migd: -object "
         "memory-backend-ram,size=1M: Parameter 'id' is missing"),
        (["-object", "memory-backend-ram,id=1x,size=1M"], "migd: -object "
         "memory-backend-ram,id=1x,size=1M: Parameter 'id' expects an "
         "identifier"),
        (["-object", "memory-backend-ram,id=m,size=1M,bogus=on"],
         "migd: -object memory-backend-ram,id=m,size=1M,bogus=on: Property "
         "'memory-backend-ram.bogus' not found"),
        (["-object", "memory-backend-ram,id=m,size=1M,share=maybe"],
         "migd: -object memory-backend-ram,id=m,size=1M,share=maybe: "
         "Parameter 'share' expects 'on' or 'off'"),
        (["-object", "memory-backend-ram,id=m,size=1M,x-thp=maybe"],
         "migd: -object memory-backend-ram,id=m,size=1M,x-thp=maybe: "
         "Parameter 'x-thp' expects 'on', 'off' or 'auto'"),
        (["-object", "memory-backend-ram,id=m,size=big"], "migd: -object "
         "memory-backend-ram,id=m,size=big: Parameter 'size' expects size"),
        (["-object", "memory-backend-ram,id=m"], "migd: -object "
         "memory-backend-ram,id=m: can't create backend with size 0"),
        (["-object", "memory-backend-file,id=m,size=1M"], "migd: -object "
         "memory-backend-file,id=m,size=1M: mem-path property not set"),
        (["-object", "memory-backend-ram,id=m,size=1M",
          "-object", "memory-backend-ram,id=m,size=1M"],
         "migd: -object memory-backend-ram,id=m,size=1M: attempt to add "
         "duplicate property 'm' to object (type 'container')"),
        (["-object", "secret,id=s,data=x"], "migd: -object "
         "secret,id=s,data=x: object type 'secret' is not supported by migd"),
        (["-machine", "memory-backend=nope"],
         "migd: Memory backend 'nope' not found"),
        (["-m", "2G", "-object", "memory-backend-ram,id=r0,size=1G",
          "-machine", "memory-backend=r0"],
         "migd: Machine memory size does not match the size of the memory "
         "backend"),
        (["-object", "memory-backend-ram,id=ram,size=1M"],
         "migd: object's id 'ram' is reserved for the default RAM backend, "
         "it can't be used for any other purposes"),
        (["-object", "memory-backend-file,id=f,size=1M,"
          "mem-path=/nonexistent-migd/f", "-M", "none,memory-backend=f"],
         "migd: -object memory-backend-file,id=f,size=1M,mem-path="
         "/nonexistent-migd/f: can't open backing store /nonexistent-migd/f "
         "for guest RAM: No such file or directory"),
        (["-qmp", "unix:/nonexistent-migd/q.sock,server=on,wait=off"],
         "migd: -qmp unix:/nonexistent-migd/q.sock,server=on,wait=off: "
         "Failed to bind socket to /nonexistent-migd/q.sock: No such file or "
         "directory"),
        (["-pidfile", "/nonexistent-migd/pid"], "migd: cannot create PID "
         "file: Cannot open pid file: No such file or directory"),
        (["-D", "/nonexistent-migd/log"], "migd: -D: could not open log "
         "file '/nonexistent-migd/log': No such file or directory"),
    ]

    def test_bad_options_exit_1_naming_the_option(self):
        for args, message in self.CASES:
            with self.subTest(args=args):
                r = migdtest.run_migd(args)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stderr.splitlines()[0], message)
                self.assertEqual(r.stdout, "")


class Backends(migdtest.MigdTestCase):
    def test_file_backend_shared_is_the_ram_image(self):
        m = self.migd(start=False)
        img = os.path.join(m.tmpdir, "guest.img")
        m.args = ["-object", "memory-backend-file,id=ram0,size=8M,"
                  "mem-path=%s,share=on,prealloc=on" % img,
                  "-machine", "none,memory-backend=ram0", "-m", "8M"]
        m.start()
        q = m.qmp()
        self.assertIn(img, mapped_files(m.proc.pid))
        q.cmd("quit")
        self.assertEqual(m.proc.wait(10), 0)
        self.assertEqual(os.path.getsize(img), 8 << 20)
        with open(img, "rb") as f:
            self.assertEqual(f.read(), bytes(8 << 20))  # fresh RAM is zero

    def test_file_backend_keeps_existing_content(self):
        m = self.migd(start=False)
        img = os.path.join(m.tmpdir, "guest.img")
        data = bytes(range(256)) * (4 << 12)
        with open(img, "wb") as f:
            f.write(data)
        m.args = ["-object", "memory-backend-file,id=mem,size=1M,"
                  "mem-path=%s,share=on" % img, "-M", "memory-backend=mem"]
        m.start()
        m.qmp()
        self.assertEqual(m.stop(), 0)
        with open(img, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_memfd_and_ram_backends(self):
        for kind in ("memfd", "ram"):
            with self.subTest(kind=kind):
                m = self.migd(["-object", "memory-backend-%s,id=m0,size=16M,"
                               "prealloc=on" % kind,
                               "-machine", "memory-backend=m0"])
                m.qmp()
                self.assertIn(16 << 20, mapping_sizes(m.proc.pid))
                if kind == "memfd":
                    self.assertTrue(any("memory-backend-memfd" in p for p in
                                        mapped_files(m.proc.pid)))
                self.assertEqual(m.stop(), 0)


class ProcessLife(migdtest.MigdTestCase):
    def test_sigterm_clean_exit_removes_socket(self):
        m = self.migd(["-S"])
        q = m.qmp()
        m.proc.send_signal(signal.SIGTERM)
        ev = q.wait_event("SHUTDOWN")
        self.assertEqual(ev["data"], {"guest": False, "reason": "host-signal"})
        self.assertIsNone(q.recv())  # then the monitor closes
        self.assertEqual(m.proc.wait(10), 0)
        self.assertFalse(os.path.exists(m.sock_path))
        self.assertRegex(m.read_stderr(),
                         r"migd: terminating on signal 15 from pid \d+")

    def test_sigint_clean_exit(self):
        m = self.migd([])
        m.qmp()
        m.proc.send_signal(signal.SIGINT)
        self.assertEqual(m.proc.wait(10), 0)
        self.assertFalse(os.path.exists(m.sock_path))

    def test_daemonize_and_pidfile(self):
        m = self.migd(start=False)
        pidfile = os.path.join(m.tmpdir, "migd.pid")
        sock = m.sock_path
        # Relative paths: the daemon chdir()s to "/" as QEMU's does, yet
        # must create and remove both files where they were asked for.
        cmd = [migdtest.MIGD, "-daemonize", "-pidfile", "migd.pid", "-qmp",
               "unix:qmp.sock,server=on,wait=off", "-S"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL, cwd=m.tmpdir)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The launcher exited only once the socket was listening.
        self.assertTrue(os.path.exists(sock))
        with open(pidfile) as f:
            pid = int(f.read())
        try:
            self.assertNotEqual(pid, os.getpid())
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read().split()
            # Detached: a session of its own, not our process group's.
            self.assertNotEqual(int(stat[5]), os.getsid(0))
            q = migdtest.QMP(sock)
            q.negotiate()
            self.assertEqual(q.cmd("query-status")["status"], "prelaunch")
            self.assertEqual(q.cmd("quit"), {})
            self.assertEqual(q.wait_event("SHUTDOWN")["data"]["reason"],
                             "host-qmp-quit")
            q.close()
            migdtest.wait_for(lambda: not os.path.exists("/proc/%d" % pid),
                              what="daemon exit")
        finally:
            if os.path.exists("/proc/%d" % pid):
                os.kill(pid, signal.SIGKILL)
        self.assertFalse(os.path.exists(pidfile))
        self.assertFalse(os.path.exists(sock))

    def test_daemonize_failure_exits_1(self):
        r = migdtest.run_migd(["-daemonize", "-object",
                               "memory-backend-file,id=f,size=1M,mem-path="
                               "/nonexistent-migd/f", "-M", "memory-backend=f"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("can't open backing store", r.stderr)

    def test_pidfile_is_locked(self):
        m = self.migd(start=False)
        pidfile = os.path.join(m.tmpdir, "migd.pid")
        m.args = ["-pidfile", pidfile]
        m.start()
        m.qmp()
        r = migdtest.run_migd(["-pidfile", pidfile])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(), "migd: cannot create PID file: "
                         "Cannot lock pid file: Resource temporarily "
                         "unavailable")
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), m.proc.pid)


if __name__ == "__main__":
    unittest.main()
