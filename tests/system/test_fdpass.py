"""fd passing over the QMP unix socket (SCM_RIGHTS): getfd/closefd (named fds,
per monitor), add-fd/remove-fd/query-fdsets (fd sets, global), QEMU's exact
errors, no fd leaks, and no fd passing on TCP monitors.

Whether migd holds a passed fd is observed from outside: we pass the write end
of a pipe and close our copy, so the read end sees EOF exactly when migd has
closed its copy too.
"""
import os
import select
import unittest

from tests.system import migdtest

GENERIC = "GenericError"
NO_FD = "No file descriptor supplied via SCM_RIGHTS"


class Pipe:
    """A pipe whose write end is handed to migd; only migd keeps it open."""

    def __init__(self):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)

    def give(self):
        """The write end to pass; call given() once it has been sent."""
        return self.w

    def given(self):
        if self.w is not None:
            os.close(self.w)
            self.w = None

    def inode(self):
        return os.fstat(self.r).st_ino

    def writer_open(self):
        """True while some process still holds the write end."""
        try:
            os.read(self.r, 1)
        except BlockingIOError:
            return True
        return False

    def wait_writer_closed(self, timeout=5.0):
        ready, _, _ = select.select([self.r], [], [], timeout)
        return bool(ready) and not self.writer_open()

    def close(self):
        self.given()
        os.close(self.r)


class FdPassTest(migdtest.MigdTestCase):
    def setUp(self):
        super().setUp()
        self.pipes = []
        self.m = self.migd(qmp_tcp=True)
        self.mon = self.m.qmp()

    def tearDown(self):
        for p in self.pipes:
            p.close()
        super().tearDown()

    def pipe(self):
        p = Pipe()
        self.pipes.append(p)
        return p

    def send_fd(self, name, args, pipe, mon=None):
        """Runs name with pipe's write end attached; returns the reply."""
        mon = mon or self.mon
        reply = mon.execute(name, args, fds=[pipe.give()])
        pipe.given()
        return reply

    def sync(self, mon=None):
        """A round trip: every earlier request has been fully handled."""
        (mon or self.mon).cmd("query-fdsets")

    def assertHeld(self, pipe):
        self.sync()
        self.assertTrue(pipe.writer_open(), "migd closed the passed fd")

    def assertReleased(self, pipe):
        self.sync()
        self.assertFalse(pipe.writer_open(), "migd still holds the fd")

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.m.proc.pid))

    def fd_target(self, fd):
        return os.readlink("/proc/%d/fd/%d" % (self.m.proc.pid, fd))

    # ---- getfd / closefd ---------------------------------------------------

    def test_getfd_closefd(self):
        p = self.pipe()
        self.assertEqual(self.send_fd("getfd", {"fdname": "mig"}, p),
                         {"return": {}})
        self.assertHeld(p)
        self.assertEqual(self.mon.cmd("closefd", fdname="mig"), {})
        self.assertReleased(p)
        self.assertQMPError(self.mon.execute("closefd", {"fdname": "mig"}),
                            GENERIC, "File descriptor named 'mig' not found")

    def test_getfd_replaces_same_name(self):
        old, new, other = self.pipe(), self.pipe(), self.pipe()
        self.send_fd("getfd", {"fdname": "a"}, old)
        self.send_fd("getfd", {"fdname": "b"}, other)
        self.assertEqual(self.send_fd("getfd", {"fdname": "a"}, new),
                         {"return": {}})
        self.assertReleased(old)
        self.assertHeld(new)
        self.assertHeld(other)
        self.mon.cmd("closefd", fdname="a")
        self.assertReleased(new)
        self.assertHeld(other)

    def test_getfd_errors(self):
        self.assertQMPError(self.mon.execute("getfd", {"fdname": "x"}),
                            GENERIC, NO_FD)
        cases = [
            ({"fdname": "1abc"},
             "Parameter 'fdname' expects a name not starting with a digit"),
            ({}, "Parameter 'fdname' is missing"),
            ({"fdname": 5},
             "Invalid parameter type for 'fdname', expected: string"),
            ({"fdname": "ok", "bogus": 1}, "Parameter 'bogus' is unexpected"),
        ]
        for args, desc in cases:
            with self.subTest(args=args):
                p = self.pipe()
                self.assertQMPError(self.send_fd("getfd", args, p),
                                    GENERIC, desc)
                self.assertReleased(p)
        # none of the failures left a name behind
        self.assertQMPError(self.mon.execute("closefd", {"fdname": "ok"}),
                            GENERIC, "File descriptor named 'ok' not found")

    def test_closefd_errors(self):
        self.assertQMPError(self.mon.execute("closefd", {}), GENERIC,
                            "Parameter 'fdname' is missing")
        self.assertQMPError(self.mon.execute("closefd", {"fdname": []}),
                            GENERIC,
                            "Invalid parameter type for 'fdname', expected: string")
        self.assertQMPError(self.mon.execute("closefd", {"fdname": "nope"}),
                            GENERIC, "File descriptor named 'nope' not found")

    def test_named_fds_are_per_monitor(self):
        other = self.m.qmp()
        p = self.pipe()
        self.send_fd("getfd", {"fdname": "mine"}, p, mon=other)
        self.assertQMPError(self.mon.execute("closefd", {"fdname": "mine"}),
                            GENERIC, "File descriptor named 'mine' not found")
        self.assertHeld(p)
        # the monitor's named fds die with it
        other.close()
        self.assertTrue(p.wait_writer_closed(), "fd outlived its monitor")

    def test_extra_fds_are_closed(self):
        first, second = self.pipe(), self.pipe()
        reply = self.mon.execute("getfd", {"fdname": "two"},
                                 fds=[first.give(), second.give()])
        first.given()
        second.given()
        self.assertEqual(reply, {"return": {}})
        self.assertHeld(first)      # the oldest fd is the one taken
        self.assertReleased(second)

    # ---- add-fd / remove-fd / query-fdsets ---------------------------------

    def test_add_fd_new_sets(self):
        p0, p1, p2 = self.pipe(), self.pipe(), self.pipe()
        r0 = self.send_fd("add-fd", None, p0)["return"]
        self.assertEqual(r0["fdset-id"], 0)
        # the reported fd is migd's own descriptor for what we passed
        self.assertEqual(self.fd_target(r0["fd"]), "pipe:[%d]" % p0.inode())
        r1 = self.send_fd("add-fd", {"opaque": "rdonly:/x"}, p1)["return"]
        self.assertEqual(r1["fdset-id"], 1)
        self.assertHeld(p0)
        self.assertHeld(p1)
        self.mon.cmd("remove-fd", **{"fdset-id": 0})
        self.assertReleased(p0)
        # the lowest free id is reused
        r2 = self.send_fd("add-fd", {}, p2)["return"]
        self.assertEqual(r2["fdset-id"], 0)
        self.assertEqual(self.mon.cmd("query-fdsets"), [
            {"fdset-id": 1, "fds": [{"fd": r1["fd"], "opaque": "rdonly:/x"}]},
            {"fdset-id": 0, "fds": [{"fd": r2["fd"]}]},
        ])

    def test_add_fd_to_given_set(self):
        a, b, c = self.pipe(), self.pipe(), self.pipe()
        ra = self.send_fd("add-fd", {"fdset-id": 5, "opaque": "a"}, a)
        rb = self.send_fd("add-fd", {"fdset-id": 5}, b)
        rc = self.send_fd("add-fd", {"fdset-id": 2, "opaque": ""}, c)
        fa, fb, fc = (r["return"]["fd"] for r in (ra, rb, rc))
        self.assertEqual(ra["return"]["fdset-id"], 5)
        self.assertEqual(rb["return"]["fdset-id"], 5)
        self.assertEqual(rc["return"]["fdset-id"], 2)
        self.assertEqual(len({fa, fb, fc}), 3)
        # QEMU's order: sets by descending id, fds in the order added
        self.assertEqual(self.mon.cmd("query-fdsets"), [
            {"fdset-id": 5, "fds": [{"fd": fa, "opaque": "a"}, {"fd": fb}]},
            {"fdset-id": 2, "fds": [{"fd": fc, "opaque": ""}]},
        ])
        # fd sets are global: every monitor sees them
        self.assertEqual(self.m.qmp().cmd("query-fdsets"),
                         self.mon.cmd("query-fdsets"))

    def test_add_fd_errors(self):
        self.assertQMPError(self.mon.execute("add-fd", {}), GENERIC, NO_FD)
        cases = [
            ({"fdset-id": -1},
             "Parameter 'fdset-id' expects a non-negative value"),
            ({"fdset-id": "1"},
             "Invalid parameter type for 'fdset-id', expected: integer"),
            ({"fdset-id": 1.5},
             "Invalid parameter type for 'fdset-id', expected: integer"),
            ({"opaque": 7},
             "Invalid parameter type for 'opaque', expected: string"),
            ({"bogus": True}, "Parameter 'bogus' is unexpected"),
        ]
        for args, desc in cases:
            with self.subTest(args=args):
                p = self.pipe()
                self.assertQMPError(self.send_fd("add-fd", args, p),
                                    GENERIC, desc)
                self.assertReleased(p)
        self.assertEqual(self.mon.cmd("query-fdsets"), [])

    def test_remove_fd(self):
        a, b = self.pipe(), self.pipe()
        fa = self.send_fd("add-fd", {"fdset-id": 3}, a)["return"]["fd"]
        fb = self.send_fd("add-fd", {"fdset-id": 3}, b)["return"]["fd"]
        self.assertEqual(self.mon.cmd("remove-fd", **{"fdset-id": 3, "fd": fa}),
                         {})
        self.assertReleased(a)
        self.assertHeld(b)
        self.assertEqual(self.mon.cmd("query-fdsets"),
                         [{"fdset-id": 3, "fds": [{"fd": fb}]}])
        self.assertQMPError(
            self.mon.execute("remove-fd", {"fdset-id": 3, "fd": fa}), GENERIC,
            "File descriptor named 'fdset-id:3, fd:%d' not found" % fa)
        self.mon.cmd("remove-fd", **{"fdset-id": 3})
        self.assertReleased(b)
        self.assertEqual(self.mon.cmd("query-fdsets"), [])
        self.assertQMPError(self.mon.execute("remove-fd", {"fdset-id": 3}),
                            GENERIC,
                            "File descriptor named 'fdset-id:3' not found")

    def test_remove_fd_errors(self):
        cases = [
            ({}, "Parameter 'fdset-id' is missing"),
            ({"fdset-id": "0"},
             "Invalid parameter type for 'fdset-id', expected: integer"),
            ({"fdset-id": 0, "fd": "3"},
             "Invalid parameter type for 'fd', expected: integer"),
            ({"fdset-id": 0, "x": 1}, "Parameter 'x' is unexpected"),
            ({"fdset-id": 9}, "File descriptor named 'fdset-id:9' not found"),
            ({"fdset-id": -4, "fd": 77},
             "File descriptor named 'fdset-id:-4, fd:77' not found"),
        ]
        for args, desc in cases:
            with self.subTest(args=args):
                self.assertQMPError(self.mon.execute("remove-fd", args),
                                    GENERIC, desc)

    def test_query_fdsets_args(self):
        self.assertEqual(self.mon.execute("query-fdsets"), {"return": []})
        self.assertQMPError(self.mon.execute("query-fdsets", {"a": 1}),
                            GENERIC, "Parameter 'a' is unexpected")

    # ---- leaks and transports ----------------------------------------------

    def test_untaken_fds_are_closed(self):
        self.sync()
        before = self.fd_count()
        for i in range(50):
            p = Pipe()
            try:
                cmd = ("query-fdsets", "query-status", "no-such-command",
                       "closefd")[i % 4]
                args = {"fdname": "none"} if cmd == "closefd" else None
                self.send_fd(cmd, args, p)
                self.assertReleased(p)
            finally:
                p.close()
        self.assertLessEqual(self.fd_count(), before)

    def test_fd_with_invalid_request_is_closed(self):
        # requests that never reach a command still must not keep the fd,
        # or a later getfd would silently pick it up
        for raw in ('{"execute": }\r\n', '[1, 2]\r\n',
                    '{"arguments": {}}\r\n'):
            with self.subTest(raw=raw):
                p = self.pipe()
                self.mon.send_raw(raw, fds=[p.give()])
                p.given()
                self.assertEqual(self.mon.recv_reply()["error"]["class"],
                                 GENERIC)
                self.assertQMPError(self.mon.execute("getfd", {"fdname": "z"}),
                                    GENERIC, NO_FD)
                self.assertReleased(p)

    def test_no_fd_passing_on_tcp(self):
        tcp = self.m.qmp(tcp=True)
        p = self.pipe()
        self.assertQMPError(tcp.execute("getfd", {"fdname": "t"}), GENERIC,
                            NO_FD)
        self.assertQMPError(tcp.execute("add-fd", {}), GENERIC, NO_FD)
        # Linux accepts SCM_RIGHTS on a TCP sendmsg but never delivers it:
        # migd sees a plain request, and no copy of the fd reaches it.
        tcp.send_raw('{"execute": "getfd", "arguments": {"fdname": "t"}}',
                     fds=[p.give()])
        p.given()
        self.assertQMPError(tcp.recv_reply(), GENERIC, NO_FD)
        self.assertReleased(p)
        self.assertEqual(tcp.cmd("query-fdsets"), [])


if __name__ == "__main__":
    unittest.main()
