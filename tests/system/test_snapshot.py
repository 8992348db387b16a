"""snapshot-save / snapshot-load / snapshot-delete as jobs over snapshot
stores declared with -blockdev driver=file,node-name=N,filename=DIR:
round trips checked with x-query-ram-digest (random RAM, the guest running
during the save: STOP, then RESUME), QEMU's JOB_STATUS_CHANGE sequences
(created, running, waiting, pending, concluded; aborting on errors; null
on job-dismiss), query-jobs, job-dismiss errors, QEMU's in-job error
messages (existing tag, missing tag, unknown node, vmstate outside the
devices, no devices), delete, tag validation, and corrupt snapshot files:
the load job fails with the reason and the guest stays stopped (no
RESUME), never running on partial RAM.
"""
import os
import shutil
import tempfile
import time

from tests.system import migdtest
from tests.system.migdtest import MigdTestCase, wait_for
from tests.system.test_migration import digest, fill

MiB = 1 << 20
GENERIC = "GenericError"
SUFFIX = ".migd-snap"


class SnapshotTest(MigdTestCase):
    mem = "256M"

    def setUp(self):
        super().setUp()
        self.dirs = [tempfile.mkdtemp(prefix="migd-snap-",
                                      dir=os.environ.get("MIGD_FILE_DIR"))
                     for _ in range(2)]
        for d in self.dirs:
            self.addCleanup(shutil.rmtree, d, True)

    def start(self, *extra, stores=1):
        args = ["-m", self.mem, "-smp", "2"]
        for i in range(stores):
            args += ["-blockdev", "driver=file,node-name=disk%d,filename=%s"
                     % (i, self.dirs[i])]
        m = self.migd(args + list(extra))
        return m, m.qmp()

    def file(self, tag, store=0):
        return os.path.join(self.dirs[store], tag + SUFFIX)

    # ---- helpers ------------------------------------------------------------

    def run_job(self, q, cmd, job_id, tag="snap0", vmstate="disk0",
                devices=("disk0",)):
        args = {"job-id": job_id, "tag": tag, "devices": list(devices)}
        if cmd != "snapshot-delete":
            args["vmstate"] = vmstate
        self.assertEqual(q.cmd(cmd, args), {})
        seq = []
        deadline = time.monotonic() + 120
        while not seq or seq[-1] != ("JOB_STATUS_CHANGE", "concluded"):
            ev = self.next_event(q, deadline)
            if ev["event"] == "JOB_STATUS_CHANGE":
                self.assertEqual(ev["data"]["id"], job_id)
                seq.append((ev["event"], ev["data"]["status"]))
            elif ev["event"] in ("STOP", "RESUME"):
                seq.append((ev["event"],))
        info = [j for j in q.cmd("query-jobs") if j["id"] == job_id]
        self.assertEqual(len(info), 1)
        return seq, info[0]

    def next_event(self, q, deadline):
        wait_for(lambda: q.events or self.pump(q), timeout=max(
            0.1, deadline - time.monotonic()), what="an event")
        return q.events.pop(0)

    def pump(self, q):
        q.sock.settimeout(0.05)
        try:
            msg = q.recv()
        except OSError:
            return False
        finally:
            q.sock.settimeout(10.0)
        if msg and "event" in msg:
            q.events.append(msg)
        return bool(q.events)

    def dismiss(self, q, job_id):
        self.assertEqual(q.cmd("job-dismiss", id=job_id), {})
        ev = q.wait_event("JOB_STATUS_CHANGE")
        self.assertEqual(ev["data"], {"status": "null", "id": job_id})

    OK = [("JOB_STATUS_CHANGE", "created"), ("JOB_STATUS_CHANGE", "running"),
          ("STOP",), ("RESUME",), ("JOB_STATUS_CHANGE", "waiting"),
          ("JOB_STATUS_CHANGE", "pending"), ("JOB_STATUS_CHANGE", "concluded")]
    FAIL = [("JOB_STATUS_CHANGE", "created"), ("JOB_STATUS_CHANGE", "running"),
            ("JOB_STATUS_CHANGE", "aborting"),
            ("JOB_STATUS_CHANGE", "concluded")]
    FAIL_STOPPED = FAIL[:2] + [("STOP",)] + FAIL[2:]
    DELETE_OK = [s for s in OK if s[0] == "JOB_STATUS_CHANGE"]

    def done(self, job_id, kind, error=None):
        info = {"id": job_id, "type": kind, "status": "concluded",
                "current-progress": 1, "total-progress": 1}
        if error is not None:
            info["error"] = error
        return info

    # ---- round trips ----------------------------------------------------------

    def test_round_trip_random(self):
        m, q = self.start()
        fill(q, "random")
        want = digest(q)
        self.assertEqual(q.cmd("query-status")["status"], "running")
        seq, info = self.run_job(q, "snapshot-save", "save0")
        self.assertEqual(seq, self.OK)
        self.assertEqual(info, self.done("save0", "snapshot-save"))
        self.assertEqual(q.cmd("query-status")["status"], "running")
        self.assertEqual(os.listdir(self.dirs[0]), ["snap0" + SUFFIX])
        size = os.stat(self.file("snap0")).st_size
        self.assertGreater(size, 256 * MiB)
        self.assertLess(size, 258 * MiB)
        self.dismiss(q, "save0")
        self.assertEqual(q.cmd("query-jobs"), [])
        fill(q, "text")  # change every page
        self.assertNotEqual(digest(q), want)
        seq, info = self.run_job(q, "snapshot-load", "load0")
        self.assertEqual(seq, self.OK)
        self.assertEqual(info, self.done("load0", "snapshot-load"))
        self.assertEqual(digest(q), want)
        self.assertEqual(q.cmd("query-status")["status"], "running")
        # the same snapshot in a fresh migd over the same store
        m2, q2 = self.start()
        seq, _ = self.run_job(q2, "snapshot-load", "load1")
        self.assertEqual(seq, self.OK)
        self.assertEqual(digest(q2), want)

    def test_paused_guest_stays_paused(self):
        m, q = self.start()
        fill(q, "random")
        want = digest(q)
        q.cmd("stop")
        q.wait_event("STOP")
        seq, _ = self.run_job(q, "snapshot-save", "s")
        self.assertEqual(seq, self.DELETE_OK)  # no STOP/RESUME
        self.assertEqual(q.cmd("query-status")["status"], "paused")
        q.cmd("cont")
        q.wait_event("RESUME")
        fill(q, "zero")
        q.cmd("stop")
        q.wait_event("STOP")
        seq, _ = self.run_job(q, "snapshot-load", "l")
        self.assertEqual(seq, self.DELETE_OK)
        self.assertEqual(q.cmd("query-status")["status"], "paused")
        self.assertEqual(digest(q), want)

    def test_live_workload_during_save(self):
        m, q = self.start()
        q.cmd("x-guest-workload", {"dirty-rate": 100, "pattern": "random",
                                   "content": "random"})
        time.sleep(0.2)
        seq, info = self.run_job(q, "snapshot-save", "s")
        self.assertEqual(seq, self.OK)
        self.assertNotIn("error", info)
        q.cmd("stop")
        m2, q2 = self.start("-S")
        seq, _ = self.run_job(q2, "snapshot-load", "l")
        self.assertEqual(seq, self.DELETE_OK)
        self.assertEqual(q2.cmd("query-status")["status"], "prelaunch")
        # a second load of the same file gives the same RAM
        first = digest(q2)
        self.run_job(q2, "snapshot-load", "l2")
        self.assertEqual(digest(q2), first)

    def test_two_devices(self):
        m, q = self.start(stores=2)
        fill(q, "random")
        want = digest(q)
        seq, info = self.run_job(q, "snapshot-save", "s",
                                 devices=["disk0", "disk1"])
        self.assertEqual(seq, self.OK)
        self.assertEqual(os.stat(self.file("snap0", 1)).st_size, 0)
        fill(q, "text")
        # the vmstate is on disk0; disk1 holds a disk-only marker
        seq, info = self.run_job(q, "snapshot-load", "l1", vmstate="disk1",
                                 devices=["disk0", "disk1"])
        self.assertEqual(seq, self.FAIL_STOPPED)
        self.assertEqual(info["error"], "This is a disk-only snapshot. "
                         "Revert to it offline using qemu-img.")
        q.cmd("cont")
        q.wait_event("RESUME")
        seq, info = self.run_job(q, "snapshot-load", "l2",
                                 devices=["disk0", "disk1"])
        self.assertEqual(seq, self.OK)
        self.assertEqual(digest(q), want)
        seq, _ = self.run_job(q, "snapshot-delete", "d",
                              devices=["disk0", "disk1"])
        self.assertEqual(seq, self.DELETE_OK)
        self.assertEqual(os.listdir(self.dirs[0]) + os.listdir(self.dirs[1]),
                         [])

    # ---- job errors (QEMU reports them in the job) ------------------------------

    def test_job_errors(self):
        m, q = self.start(stores=2)
        seq, _ = self.run_job(q, "snapshot-save", "s0")
        self.assertEqual(seq, self.OK)
        cases = [
            ("snapshot-save", "e1", {}, self.FAIL,
             "Snapshot 'snap0' already exists in one or more devices"),
            ("snapshot-save", "e2", {"tag": "x", "devices": []}, self.FAIL,
             "At least one device is required for snapshot"),
            ("snapshot-save", "e3", {"tag": "x", "vmstate": "disk9",
                                     "devices": ["disk9"]}, self.FAIL,
             "No block device node 'disk9'"),
            ("snapshot-save", "e4", {"tag": "x", "devices": ["disk1"]},
             self.FAIL, "vmstate block device 'disk0' does not exist"),
            ("snapshot-load", "e5", {"tag": "nope"}, self.FAIL_STOPPED,
             "Snapshot 'nope' does not exist in one or more devices"),
        ]
        for cmd, job_id, args, want_seq, error in cases:
            with self.subTest(job=job_id):
                if q.cmd("query-status")["status"] != "running":
                    q.cmd("cont")
                    q.wait_event("RESUME")
                seq, info = self.run_job(q, cmd, job_id, **args)
                self.assertEqual(seq, want_seq)
                self.assertEqual(info, self.done(job_id, cmd, error))
                self.dismiss(q, job_id)
        # a failed load leaves the guest stopped
        self.assertEqual(q.cmd("query-status")["status"], "paused")
        # deleting a missing tag is fine, as in QEMU
        seq, info = self.run_job(q, "snapshot-delete", "d0", tag="nope")
        self.assertEqual(seq, self.DELETE_OK)
        self.assertEqual(info, self.done("d0", "snapshot-delete"))
        seq, info = self.run_job(q, "snapshot-delete", "d1")
        self.assertEqual(seq, self.DELETE_OK)
        self.assertFalse(os.path.exists(self.file("snap0")))
        self.assertEqual(
            [j["id"] for j in q.cmd("query-jobs")], ["s0", "d0", "d1"])

    def test_command_errors(self):
        m, q = self.start()
        base = {"job-id": "j", "tag": "t", "vmstate": "disk0",
                "devices": ["disk0"]}
        bad_tags = [("", "it is empty"), ("a/b", "it contains '/'"),
                    ("..", "it names a directory"),
                    (".", "it names a directory"),
                    ("a\nb", "it contains a control character"),
                    ("x" * 201, "it is longer than 200 bytes")]
        for tag, why in bad_tags:
            for cmd in ("snapshot-save", "snapshot-load", "snapshot-delete"):
                with self.subTest(cmd=cmd, tag=tag[:10]):
                    args = dict(base, tag=tag)
                    if cmd == "snapshot-delete":
                        del args["vmstate"]
                    self.assertQMPError(q.execute(cmd, args), GENERIC,
                                        "Invalid snapshot tag: " + why)
        # QMP's parser refuses NUL first, as QEMU's does
        self.assertQMPError(q.execute("snapshot-save", dict(base, tag="a\0b")),
                            GENERIC, "JSON parse error, \\u0000 is not "
                            "supported")
        self.assertEqual(q.cmd("query-jobs"), [])
        self.assertQMPError(q.execute("snapshot-save", dict(base, **{
            "job-id": "1x"})), GENERIC, "Invalid job ID '1x'")
        self.assertQMPError(q.execute("snapshot-save", dict(base, tag=5)),
                            GENERIC,
                            "Invalid parameter type for 'tag', expected: "
                            "string")
        self.assertQMPError(q.execute("snapshot-delete", base), GENERIC,
                            "Parameter 'vmstate' is unexpected")
        self.assertQMPError(q.execute("job-dismiss", {"id": "nope"}),
                            GENERIC, "Job not found")
        # a tag up to 200 bytes is fine
        seq, _ = self.run_job(q, "snapshot-save", "long", tag="y" * 200)
        self.assertEqual(seq, self.OK)
        self.assertQMPError(q.execute("snapshot-save", dict(base, **{
            "job-id": "long"})), GENERIC, "Job ID 'long' already in use")

    def test_dismiss_running(self):
        m, q = self.start()
        fill(q, "random")
        q.cmd("snapshot-save", {"job-id": "s", "tag": "t", "vmstate": "disk0",
                                "devices": ["disk0"]})
        reply = q.execute("job-dismiss", {"id": "s"})
        status = [j["status"] for j in q.cmd("query-jobs")]
        if "error" in reply:
            self.assertQMPError(
                reply, GENERIC,
                "Job 's' in state 'running' cannot accept command verb "
                "'dismiss'")
        else:  # the save was faster than the two commands
            self.assertEqual(status, [])
        wait_for(lambda: all(j["status"] == "concluded"
                             for j in q.cmd("query-jobs")), timeout=60)

    def test_migrate_refused_during_save(self):
        """A snapshot job is a migration to a file, as in QEMU: migrate
        meanwhile gets QEMU's "in progress" error. 1 GiB: the save takes
        far longer than the two commands' round trips."""
        self.mem = "1G"
        m, q = self.start()
        fill(q, "random")
        q.cmd("snapshot-save", {"job-id": "s", "tag": "t", "vmstate": "disk0",
                                "devices": ["disk0"]})
        active = q.cmd("query-jobs")[0]["status"] != "concluded"
        reply = q.execute("migrate", {"uri": "tcp:127.0.0.1:1"})
        if active:
            self.assertQMPError(reply, GENERIC,
                                "There's a migration process in progress")
        wait_for(lambda: all(j["status"] == "concluded"
                             for j in q.cmd("query-jobs")), timeout=60)

    def test_quit_during_save(self):
        m, q = self.start()
        fill(q, "random")
        q.cmd("snapshot-save", {"job-id": "s", "tag": "t", "vmstate": "disk0",
                                "devices": ["disk0"]})
        q.cmd("quit")
        self.assertEqual(m.stop(), 0, m.read_stderr())
        # cancelled: neither the tag nor a partial file is left
        self.assertEqual(os.listdir(self.dirs[0]), [])

    # ---- integrity --------------------------------------------------------------

    def corrupt_cases(self, good):
        size = os.stat(good).st_size
        with open(good, "rb") as fh:
            fh.seek(size - 65536)
            tail = fh.read()
        timer = size - 65536 + tail.index(b"\x05timer")

        def patch(at, data):
            def f(p):
                with open(p, "r+b") as fh:
                    fh.seek(at)
                    fh.write(data)
            return f
        return [
            ("trunc-half", lambda p: os.truncate(p, size // 2)),
            ("trunc-devices", lambda p: os.truncate(p, timer + 3)),
            ("trunc-pages-end", lambda p: os.truncate(p, size - 4096)),
            ("trunc-head", lambda p: os.truncate(p, 64)),
            ("magic", patch(0, b"XXXX")),
            ("version", patch(4, b"\xff\xff\xff\xff")),
        ]

    def test_corrupt_files(self):
        m, q = self.start()
        fill(q, "random")
        seq, _ = self.run_job(q, "snapshot-save", "s")
        self.assertEqual(seq, self.OK)
        good = self.file("snap0")
        for name, how in self.corrupt_cases(good):
            with self.subTest(case=name):
                bad = self.file(name)
                shutil.copyfile(good, bad)
                how(bad)
                if q.cmd("query-status")["status"] != "running":
                    q.cmd("cont")
                    q.wait_event("RESUME")
                seq, info = self.run_job(q, "snapshot-load", name, tag=name)
                self.assertEqual(seq, self.FAIL_STOPPED)
                self.assertRegex(info["error"],
                                 r"^Error -\d+ while loading VM state: .+")
                self.assertEqual(q.cmd("query-status")["status"], "paused")
                os.unlink(bad)

    # ---- command line -----------------------------------------------------------

    def test_blockdev_options(self):
        d = self.dirs[0]
        f = os.path.join(d, "plain")
        open(f, "w").close()
        cases = [
            ("driver=qcow2,node-name=a,filename=" + d,
             "Block driver 'qcow2' is not supported by migd (only 'file', "
             "naming a snapshot store directory)"),
            ("node-name=a,filename=" + d, "Parameter 'driver' is missing"),
            ("driver=file,filename=" + d, "Parameter 'node-name' is missing"),
            ("driver=file,node-name=a", "Parameter 'filename' is missing"),
            ("driver=file,node-name=a,filename=%s,bogus=1" % d,
             "Invalid parameter 'bogus'"),
            ("driver=file,node-name=1a,filename=" + d,
             "Invalid node-name: '1a'"),
            ("driver=file,node-name=a,filename=" + f,
             "'%s' is not a directory (a migd snapshot store is a directory)"
             % f),
            ("driver=file,node-name=a,filename=" + d + "/missing",
             "Could not open '%s/missing': No such file or directory" % d),
        ]
        for arg, msg in cases:
            with self.subTest(arg=arg):
                r = migdtest.run_migd(["-blockdev", arg])
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stderr.splitlines()[0],
                                 "migd: -blockdev %s: %s" % (arg, msg))
        arg = "driver=file,node-name=a,filename=" + d
        r = migdtest.run_migd(["-blockdev", arg, "-blockdev", arg])
        self.assertEqual(r.stderr.splitlines()[0], "migd: -blockdev %s: "
                         "Duplicate nodes with node-name='a'" % arg)
