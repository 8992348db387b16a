"""The guest's vCPUs, workload and RAM digests over QMP: x-guest-workload
sets the workload and reports per-vCPU progress; stop pauses the vCPUs (no
progress, a stable digest), cont resumes them; -S and -incoming keep them
parked; -workload on the command line; x-query-ram-digest's sha256 equals
sha256sum of a file-backed RAM image and its xxh3-128 equals the ramdigest
tool's; exact errors for bad workload keys and digest arguments."""
import hashlib
import os
import subprocess
import time
import unittest

from tests.system import migdtest

GENERIC = "GenericError"
MiB = 1 << 20


def total_bytes(reply):
    return sum(v["bytes-written"] for v in reply["vcpus"])


class GuestTestCase(migdtest.MigdTestCase):
    def wait_bytes(self, q, at_least, timeout=10.0):
        """Waits until the vCPUs wrote at least at_least bytes in all."""
        migdtest.wait_for(
            lambda: total_bytes(q.cmd("x-guest-workload")) >= at_least,
            timeout=timeout, what="%d bytes written" % at_least)
        return q.cmd("x-guest-workload")

    def digest(self, q, algorithm=None):
        args = {"algorithm": algorithm} if algorithm else None
        return q.cmd("x-query-ram-digest", args)


class Workload(GuestTestCase):
    def test_idle_by_default(self):
        q = self.migd(["-smp", "2", "-m", "64M"]).qmp()
        time.sleep(0.1)
        self.assertEqual(q.cmd("x-guest-workload"), {
            "dirty-rate": "idle",
            "vcpus": [{"cpu": i, "bytes-written": 0, "rate": 0,
                       "throttle-ns": 0} for i in range(2)]})

    def test_progress_stop_cont(self):
        q = self.migd(["-smp", "2", "-m", "256M"]).qmp()
        r = q.cmd("x-guest-workload", {"dirty-rate": 40, "pattern": "random",
                                       "seed": 7})
        self.assertEqual({k: v for k, v in r.items() if k != "vcpus"}, {
            "dirty-rate": 40.0, "per-vcpu-rate": 20.0,
            "working-set": 256 * MiB, "pattern": "random",
            "content": "random", "write-size": 4096, "seed": 7})
        r = self.wait_bytes(q, 8 * MiB)
        self.assertEqual([v["cpu"] for v in r["vcpus"]], [0, 1])
        for v in r["vcpus"]:
            self.assertGreater(v["bytes-written"], 0)
            self.assertGreater(v["rate"], 0)
        q.cmd("stop")
        q.wait_event("STOP")
        stopped = total_bytes(q.cmd("x-guest-workload"))
        d1 = self.digest(q)
        time.sleep(0.3)
        self.assertEqual(total_bytes(q.cmd("x-guest-workload")), stopped)
        self.assertEqual(self.digest(q), d1)
        self.assertEqual(d1[0]["block"], "ram")
        self.assertEqual(d1[0]["size"], 256 * MiB)
        self.assertEqual(d1[0]["algorithm"], "xxh3-128")
        self.assertRegex(d1[0]["digest"], "^[0-9a-f]{32}$")
        # A second after stopping the rate is 0.
        time.sleep(1.1)
        for v in q.cmd("x-guest-workload")["vcpus"]:
            self.assertEqual(v["rate"], 0)
        q.cmd("cont")
        q.wait_event("RESUME")
        self.wait_bytes(q, stopped + 2 * MiB)
        self.assertNotEqual(self.digest(q), d1)

    def test_command_line_workload(self):
        q = self.migd(["-smp", "2", "-m", "64M", "-workload",
                       "dirty-rate=20,working-set=16M,pattern=hotcold,"
                       "hot-fraction=0.25,content=mixed,zero-fraction=0.5,"
                       "text-fraction=0.25,write-size=1K,seed=3"]).qmp()
        r = self.wait_bytes(q, 1 * MiB)
        self.assertEqual({k: v for k, v in r.items() if k != "vcpus"}, {
            "dirty-rate": 20.0, "per-vcpu-rate": 10.0,
            "working-set": 16 * MiB, "pattern": "hotcold",
            "hot-fraction": 0.25, "hot-ratio": 0.9, "content": "mixed",
            "zero-fraction": 0.5, "text-fraction": 0.25, "write-size": 1024,
            "seed": 3})
        q.cmd("x-guest-workload", {"dirty-rate": "idle"})
        self.assertEqual(q.cmd("x-guest-workload")["dirty-rate"], "idle")

    def test_per_vcpu_rate_and_working_set_limit(self):
        m = self.migd(start=False)
        img = os.path.join(m.tmpdir, "ram.img")
        m.args = ["-smp", "2", "-m", "32M", "-object",
                  "memory-backend-file,id=mem,size=32M,mem-path=%s,"
                  "share=on" % img, "-machine", "memory-backend=mem"]
        m.start()
        q = m.qmp()
        r = q.cmd("x-guest-workload", {"per-vcpu-rate": 8,
                                       "working-set": 4 * MiB,
                                       "content": "text"})
        self.assertEqual(r["dirty-rate"], 16.0)
        self.assertEqual(r["per-vcpu-rate"], 8.0)
        self.wait_bytes(q, 4 * MiB)
        q.cmd("stop")
        with open(img, "rb") as f:
            data = f.read()
        self.assertNotEqual(data[:4 * MiB], bytes(4 * MiB))
        self.assertEqual(data[4 * MiB:], bytes(28 * MiB))
        # Text content: lower-case words, spaces and newlines.
        written = data[:4 * MiB].replace(b"\0", b"")
        self.assertTrue(set(written) <= set(b"abcdefghijklmnopqrstuvwxyz \n"))

    def test_passes_fill_every_page_once(self):
        m = self.migd(start=False)
        img = os.path.join(m.tmpdir, "ram.img")
        m.args = ["-smp", "2", "-object", "memory-backend-file,id=mem,"
                  "size=32M,mem-path=%s,share=on" % img,
                  "-machine", "memory-backend=mem"]
        m.start()
        q = m.qmp()
        r = q.cmd("x-guest-workload", {"dirty-rate": 0, "passes": 1})
        self.assertEqual(r["passes"], 1)
        migdtest.wait_for(lambda: q.cmd("x-guest-workload")["finished"],
                          what="one pass")
        self.assertEqual(total_bytes(q.cmd("x-guest-workload")), 32 * MiB)
        with open(img, "rb") as f:
            data = f.read()
        zero = bytes(4096)
        self.assertFalse(any(data[i:i + 4096] == zero
                             for i in range(0, len(data), 4096)))

    def test_start_paused_with_S(self):
        q = self.migd(["-S", "-smp", "2", "-m", "64M",
                       "-workload", "50"]).qmp()
        time.sleep(0.3)
        self.assertEqual(total_bytes(q.cmd("x-guest-workload")), 0)
        q.cmd("cont")
        self.wait_bytes(q, 1 * MiB)

    def test_inmigrate_keeps_vcpus_parked(self):
        q = self.migd(["-incoming", "defer", "-m", "64M",
                       "-workload", "50"]).qmp()
        q.cmd("cont")  # only sets autostart in inmigrate
        time.sleep(0.3)
        self.assertEqual(total_bytes(q.cmd("x-guest-workload")), 0)

    def test_workload_change_while_stopped_and_quit(self):
        m = self.migd(["-smp", "3", "-m", "64M", "-workload", "0"])
        q = m.qmp()
        self.wait_bytes(q, 16 * MiB)
        q.cmd("stop")
        q.cmd("x-guest-workload", {"dirty-rate": 10, "pattern": "random"})
        before = total_bytes(q.cmd("x-guest-workload"))
        time.sleep(0.2)
        self.assertEqual(total_bytes(q.cmd("x-guest-workload")), before)
        q.cmd("cont")
        self.wait_bytes(q, before + 1 * MiB)
        q.cmd("quit")
        self.assertEqual(m.proc.wait(10), 0)


class Digest(GuestTestCase):
    def test_sha256_of_file_backed_guest(self):
        m = self.migd(start=False)
        img = os.path.join(m.tmpdir, "guest.img")
        m.args = ["-smp", "2", "-object", "memory-backend-file,id=mem,"
                  "size=64M,mem-path=%s,share=on" % img, "-machine",
                  "none,memory-backend=mem", "-workload",
                  "dirty-rate=100,pattern=random"]
        m.start()
        q = m.qmp()
        self.wait_bytes(q, 16 * MiB)
        q.cmd("stop")
        sha = self.digest(q, "sha256")
        self.assertEqual(sha, self.digest(q, "sha256"))
        with open(img, "rb") as f:
            data = f.read()
        self.assertEqual(sha, [{"block": "mem", "size": 64 * MiB,
                                "algorithm": "sha256",
                                "digest": hashlib.sha256(data).hexdigest()}])
        # The ramdigest tool computes the same xxh3-128 tree from the file.
        xxh = self.digest(q)[0]["digest"]
        out = subprocess.run([os.path.join(migdtest.BUILD, "ramdigest"), img],
                             capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout, "%s  %s\n" % (xxh, img))
        out = subprocess.run([os.path.join(migdtest.BUILD, "ramdigest"),
                              "-a", "sha256", img],
                             capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.split()[0], sha[0]["digest"])

    def test_fresh_ram_digests(self):
        q = self.migd(["-m", "1M"]).qmp()
        zero = bytes(1 * MiB)
        self.assertEqual(self.digest(q, "sha256")[0]["digest"],
                         hashlib.sha256(zero).hexdigest())
        self.assertEqual(self.digest(q), self.digest(q, "xxh3-128"))

    def test_digest_errors(self):
        q = self.migd(["-m", "1M"]).qmp()
        for args, desc in [
                ({"algorithm": "md5"},
                 "Parameter 'algorithm' does not accept value 'md5'"),
                ({"algorithm": 1},
                 "Invalid parameter type for 'algorithm', expected: string"),
                ({"block": "ram"}, "Parameter 'block' is unexpected")]:
            with self.subTest(args=args):
                self.assertQMPError(q.execute("x-query-ram-digest", args),
                                    GENERIC, desc)


class WorkloadErrors(GuestTestCase):
    QMP_CASES = [
        ({"bogus": 1}, "Parameter 'bogus' is unexpected"),
        ({"dirty-rate": "fast"},
         "Parameter 'dirty-rate' expects a number or 'idle'"),
        ({"dirty-rate": True},
         "Parameter 'dirty-rate' expects a number or 'idle'"),
        ({"dirty-rate": -5},
         "Parameter 'dirty-rate' expects a number between 0 and 1000000"),
        ({"per-vcpu-rate": "5"},
         "Invalid parameter type for 'per-vcpu-rate', expected: number"),
        ({"dirty-rate": 5, "per-vcpu-rate": 5},
         "Parameters 'dirty-rate' and 'per-vcpu-rate' are mutually "
         "exclusive"),
        ({"dirty-rate": "idle", "content": "zero"},
         "Parameter 'content' is not valid with dirty-rate 'idle'"),
        ({"pattern": "zigzag"},
         "Parameter 'pattern' does not accept value 'zigzag'"),
        ({"content": "ones"},
         "Parameter 'content' does not accept value 'ones'"),
        ({"working-set": "16M"}, "Parameter 'working-set' expects uint64"),
        ({"working-set": 1 << 30},
         "Parameter 'working-set' expects a size between 4096 and 67108864"),
        ({"working-set": 100},
         "Parameter 'working-set' expects a size between 4096 and 67108864"),
        ({"write-size": 0},
         "Parameter 'write-size' expects a value between 1 and 4096"),
        ({"write-size": 4097},
         "Parameter 'write-size' expects a value between 1 and 4096"),
        ({"hot-ratio": 0.5},
         "Parameter 'hot-ratio' is only valid with pattern 'hotcold'"),
        ({"pattern": "hotcold", "hot-fraction": 2},
         "Parameter 'hot-fraction' expects a number greater than 0 and at "
         "most 1"),
        ({"content": "mixed", "zero-fraction": 0.7, "text-fraction": 0.7},
         "Parameters 'zero-fraction' and 'text-fraction' add up to more "
         "than 1"),
        ({"zero-fraction": 0.1},
         "Parameter 'zero-fraction' is only valid with content 'mixed'"),
        ({"seed": "x"}, "Parameter 'seed' expects uint64"),
    ]

    def test_qmp_errors_leave_the_workload(self):
        q = self.migd(["-m", "64M"]).qmp()
        q.cmd("x-guest-workload", {"dirty-rate": 1, "seed": 5})
        for args, desc in self.QMP_CASES:
            with self.subTest(args=args):
                self.assertQMPError(q.execute("x-guest-workload", args),
                                    GENERIC, desc)
        r = q.cmd("x-guest-workload")
        self.assertEqual((r["dirty-rate"], r["seed"]), (1.0, 5))

    CLI_CASES = [
        ("bogus=1", "Invalid parameter 'bogus'"),
        ("fast", "Parameter 'dirty-rate' expects a number or 'idle'"),
        ("pattern=zigzag",
         "Parameter 'pattern' does not accept value 'zigzag'"),
        ("1,pattern", "Expected '=' after parameter 'pattern'"),
        ("per-vcpu-rate=x",
         "Invalid parameter type for 'per-vcpu-rate', expected: number"),
        ("working-set=lots", "Parameter 'working-set' expects size"),
        ("working-set=1G",
         "Parameter 'working-set' expects a size between 4096 and "
         "134217728"),
        ("idle,write-size=8",
         "Parameter 'write-size' is not valid with dirty-rate 'idle'"),
    ]

    def test_command_line_errors(self):
        for text, desc in self.CLI_CASES:
            with self.subTest(text=text):
                r = migdtest.run_migd(["-workload", text])
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stderr.splitlines()[0],
                                 "migd: -workload %s: %s" % (text, desc))


if __name__ == "__main__":
    unittest.main()
