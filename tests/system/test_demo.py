"""contrib/demo.sh (what `make demo` runs) against the build under test:
a live migration between two migds that must end with the RAM digest check
passing, and failures that must exit non-zero and leave nothing behind.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from tests.system.migdtest import BUILD, ROOT

DEMO = os.path.join(ROOT, "contrib", "demo.sh")


def processes_in(path):
    """Process ids whose working directory is inside path (the demo runs
    its migds in its temporary directory)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if cwd == path or cwd.startswith(path + os.sep):
            found.append(int(pid))
    return found


class DemoTest(unittest.TestCase):
    def setUp(self):
        # The demo's temporary directory goes in here, so the test can see
        # that it is removed and that no migd is left running in it.
        self.tmp = tempfile.mkdtemp(prefix="migd-test-demo-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def run_demo(self, build=BUILD, timeout=180, **env):
        full_env = dict(os.environ, TMPDIR=self.tmp, DEMO_MEM="256M", **env)
        full_env.pop("MIGCTL_SOCKET", None)
        r = subprocess.run(["bash", DEMO, build], capture_output=True,
                           text=True, timeout=timeout, env=full_env,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(os.listdir(self.tmp), [], "temp dir left behind")
        self.assertEqual(processes_in(self.tmp), [], "processes left behind")
        return r

    def test_live_migration_digest_ok(self):
        r = self.run_demo()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        # no terminal: no escape sequences, watch prints plain lines
        self.assertNotIn("\x1b", out)
        self.assertIn("$ migctl -s src.sock migrate uri=tcp:127.0.0.1:", out)
        self.assertIn("\nMigration completed\n", out)
        for field in ("status          completed", "total time ",
                      "throughput ", "downtime ", "transferred ",
                      "dirty syncs ", "destination     running"):
            self.assertIn(field, out)
        lines = [l for l in out.splitlines() if l.startswith("RAM digest check")]
        self.assertEqual(len(lines), 1, out)
        self.assertRegex(lines[0], r"^RAM digest check: OK \(xxh3-128 "
                                   r"[0-9a-f]{32}, block ram, 268435456 bytes\)$")

    def test_idle_guest_two_channels(self):
        r = self.run_demo(DEMO_DIRTY_RATE="idle", DEMO_CHANNELS="2")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("multifd-channels   2", r.stdout)
        self.assertIn("RAM digest check: OK (xxh3-128 ", r.stdout)

    def test_bad_setting(self):
        r = self.run_demo(DEMO_DIRTY_RATE="fast")
        self.assertEqual(r.returncode, 1)
        self.assertIn("DEMO_DIRTY_RATE must be a number of MiB/s or idle, "
                      "not 'fast'", r.stderr)

    def test_qmp_error_stops_the_demo(self):
        # multifd-channels=0 is refused by migd after both migds started:
        # the demo reports migctl's error and cleans up.
        r = self.run_demo(DEMO_CHANNELS="0")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("migctl -s src.sock migrate-set-parameters failed "
                      "(exit 1): error: GenericError: Parameter "
                      "'multifd_channels' expects a value between 1 and 255",
                      r.stderr)
        self.assertNotIn("RAM digest check", r.stdout)

    def test_interrupted(self):
        # SIGINT once both migds run: exit 130, both stopped, dir removed.
        env = dict(os.environ, TMPDIR=self.tmp, DEMO_MEM="256M")
        p = subprocess.Popen(["bash", DEMO, BUILD], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env,
                             stdin=subprocess.DEVNULL)
        try:
            for line in p.stdout:
                if line.startswith("== Fill"):
                    break
            p.send_signal(signal.SIGINT)
            p.stdout.read()
            self.assertEqual(p.wait(30), 130)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
        self.assertEqual(os.listdir(self.tmp), [])
        self.assertEqual(processes_in(self.tmp), [])

    def test_missing_build(self):
        r = self.run_demo(build=os.path.join(self.tmp, "nowhere"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("build first:", r.stderr)


if __name__ == "__main__":
    unittest.main()
