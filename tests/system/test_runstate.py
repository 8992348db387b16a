"""Runstate and the commands around it, as QEMU 9.0 behaves: query-status
(with the deprecated singlestep), stop/cont and their STOP/RESUME events seen
by every monitor, cont/stop in inmigrate only toggling autostart, quit
replying before SHUTDOWN, query-name and query-uuid."""
import os
import time
import unittest

from tests.system import migdtest

GENERIC = "GenericError"


def status(name):
    return {"status": name, "singlestep": False,
            "running": name == "running"}


class Runstate(migdtest.MigdTestCase):
    def assert_no_events(self, *monitors):
        """Round-trips a command so any pending event would have arrived."""
        for q in monitors:
            q.cmd("query-status")
            self.assertEqual(q.events, [])

    def test_starts_running_without_S(self):
        q = self.migd([]).qmp()
        self.assertEqual(q.cmd("query-status"), status("running"))

    def test_stop_cont_events_on_two_monitors(self):
        m = self.migd(["-S"], qmp_tcp=True)
        a, b = m.qmp(), m.qmp(tcp=True)
        self.assertEqual(a.cmd("query-status"), status("prelaunch"))
        # stop does nothing to a VM that is not running: no event.
        self.assertEqual(a.cmd("stop"), {})
        self.assertEqual(a.cmd("query-status"), status("prelaunch"))
        self.assert_no_events(a, b)
        self.assertEqual(a.cmd("cont"), {})
        for q in (a, b):
            ev = q.wait_event("RESUME")
            self.assertNotIn("data", ev)
            self.assertEqual(set(ev["timestamp"]), {"seconds", "microseconds"})
        self.assertEqual(b.cmd("query-status"), status("running"))
        # cont on a running VM: no event.
        self.assertEqual(b.cmd("cont"), {})
        self.assert_no_events(a, b)
        self.assertEqual(b.cmd("stop"), {})
        for q in (a, b):
            self.assertNotIn("data", q.wait_event("STOP"))
        self.assertEqual(a.cmd("query-status"), status("paused"))
        self.assertEqual(a.cmd("stop"), {})
        self.assert_no_events(a, b)
        self.assertEqual(a.cmd("cont"), {})
        a.wait_event("RESUME")
        b.wait_event("RESUME")
        self.assertEqual(a.cmd("query-status"), status("running"))

    def test_events_only_after_negotiation(self):
        m = self.migd(["-S"])
        a = m.qmp()
        raw = m.qmp(negotiate=False)
        a.cmd("cont")
        a.wait_event("RESUME")
        raw.negotiate()
        self.assertEqual(raw.events, [])

    def test_inmigrate_cont_and_stop_set_autostart_only(self):
        m = self.migd(["-incoming", "defer"])
        q = m.qmp()
        self.assertEqual(q.cmd("query-status"), status("inmigrate"))
        self.assertEqual(q.cmd("stop"), {})
        self.assertEqual(q.cmd("cont"), {})
        self.assertEqual(q.cmd("query-status"), status("inmigrate"))
        self.assert_no_events(q)

    def test_inmigrate_with_S(self):
        q = self.migd(["-S", "-incoming", "defer"]).qmp()
        self.assertEqual(q.cmd("query-status"), status("inmigrate"))

    def test_commands_take_no_arguments(self):
        q = self.migd(["-S"]).qmp()
        for cmd in ("query-status", "stop", "cont", "quit", "query-name",
                    "query-uuid"):
            with self.subTest(cmd=cmd):
                r = q.execute(cmd, {"bogus": 1})
                self.assertQMPError(r, GENERIC,
                                    "Parameter 'bogus' is unexpected")
        self.assertEqual(q.cmd("query-status"), status("prelaunch"))

    def test_commands_are_listed(self):
        q = self.migd([]).qmp()
        names = {c["name"] for c in q.cmd("query-commands")}
        for cmd in ("query-status", "stop", "cont", "quit", "query-name",
                    "query-uuid"):
            self.assertIn(cmd, names)


class Quit(migdtest.MigdTestCase):
    def test_quit_replies_then_shutdown_then_exits(self):
        m = self.migd(["-S"])
        a, b = m.qmp(), m.qmp()
        a.send({"execute": "quit", "id": "q1"})
        self.assertEqual(a.recv(), {"return": {}, "id": "q1"})
        ev = a.recv()
        self.assertEqual(ev["event"], "SHUTDOWN")
        self.assertEqual(ev["data"], {"guest": False,
                                      "reason": "host-qmp-quit"})
        self.assertEqual(b.wait_event("SHUTDOWN")["data"]["reason"],
                         "host-qmp-quit")
        self.assertIsNone(a.recv())
        self.assertEqual(m.proc.wait(10), 0)
        self.assertFalse(os.path.exists(m.sock_path))

    def test_commands_after_quit_in_same_packet(self):
        m = self.migd([])
        q = m.qmp()
        q.send_raw('{"execute": "quit"}\r\n{"execute": "query-status"}\r\n')
        self.assertEqual(q.recv(), {"return": {}})
        msgs = []
        while True:
            msg = q.recv()
            if msg is None:
                break
            msgs.append(msg)
        self.assertIn("SHUTDOWN", [x.get("event") for x in msgs])
        self.assertEqual(m.proc.wait(10), 0)


class Identity(migdtest.MigdTestCase):
    def test_unset(self):
        q = self.migd([]).qmp()
        self.assertEqual(q.cmd("query-name"), {})
        self.assertEqual(q.cmd("query-uuid"),
                         {"UUID": "00000000-0000-0000-0000-000000000000"})

    def test_set(self):
        q = self.migd(["-name", "guest=vm,,one,process=migd-vm",
                       "-uuid", "0123ABCD-4567-89ef-AbCd-0123456789AB"]).qmp()
        self.assertEqual(q.cmd("query-name"), {"name": "vm,one"})
        self.assertEqual(q.cmd("query-uuid"),
                         {"UUID": "0123abcd-4567-89ef-abcd-0123456789ab"})

    def test_unicode_name(self):
        q = self.migd(["-name", "g\u00e4st"]).qmp()
        self.assertEqual(q.cmd("query-name"), {"name": "g\u00e4st"})


if __name__ == "__main__":
    unittest.main()
