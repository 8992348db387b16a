"""migctl, the QMP command-line client: arguments (JSON, KEY=VALUE, nested),
output, exit status and messages, `watch`, and connection errors.

Most tests run build/migctl against a real migd. The exact request migctl
sends and `watch` through a whole migration are checked against a small
scripted QMP server (FakeQMP) so they do not depend on a migration running.
"""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from tests.system.migdtest import MIGCTL, MigdTestCase

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9},
                                "package": "fake"}, "capabilities": []}}


def migctl(*args, timeout=20, env=None):
    return subprocess.run([MIGCTL] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


class FakeQMP:
    """A scripted QMP server on a unix socket. replies maps a command name
    to a list of "return" values (or {"error": ...} objects) handed out in
    order, the last one repeating; events maps a command name to events
    sent just before its reply. Every request is recorded."""

    def __init__(self, replies=None, events=None, greeting=GREETING,
                 close_after=None):
        self.tmpdir = tempfile.mkdtemp(prefix="migctl-test-")
        self.path = os.path.join(self.tmpdir, "fake.sock")
        self.replies = {k: list(v) for k, v in (replies or {}).items()}
        self.events = events or {}
        self.greeting = greeting
        self.close_after = close_after  # close after this many requests
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.rmdir(self.tmpdir)

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            if self.greeting is None:  # silent: wait for the client to go
                while conn.recv(4096):
                    pass
                return
            if isinstance(self.greeting, bytes):
                conn.sendall(self.greeting)
                return
            self._send(conn, self.greeting)
            buf = b""
            while True:
                while b"\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                self.requests.append(req)
                if self.close_after and len(self.requests) > self.close_after:
                    return
                self._answer(conn, req)

    def _send(self, conn, obj):
        conn.sendall(json.dumps(obj).encode() + b"\r\n")

    def _answer(self, conn, req):
        name = req.get("execute")
        for ev in self.events.get(name, []):
            self._send(conn, dict(ev, timestamp={"seconds": 1, "microseconds": 2}))
        if name == "qmp_capabilities":
            reply = {"return": {}}
        elif name in self.replies:
            queue = self.replies[name]
            value = queue.pop(0) if len(queue) > 1 else queue[0]
            reply = value if isinstance(value, dict) and "error" in value \
                else {"return": value}
        else:
            reply = {"error": {"class": "CommandNotFound",
                               "desc": "The command %s has not been found" % name}}
        if "id" in req:
            reply["id"] = req["id"]
        self._send(conn, reply)


class FakeServerTestCase(unittest.TestCase):
    def fake(self, **kw):
        srv = FakeQMP(**kw)
        self.addCleanup(srv.close)
        return srv


class TestMigctlRequests(FakeServerTestCase):
    """What migctl puts on the wire."""

    def last_args(self, srv):
        req = srv.requests[-1]
        self.assertEqual(req["id"], "migctl-%d" % len(srv.requests))
        return req.get("arguments")

    def test_negotiates_then_sends_command(self):
        srv = self.fake(replies={"query-status": [{"status": "running"}]})
        r = migctl("-s", srv.path, "query-status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([q["execute"] for q in srv.requests],
                         ["qmp_capabilities", "query-status"])
        self.assertNotIn("arguments", srv.requests[1])
        self.assertEqual(json.loads(r.stdout), {"status": "running"})

    def test_key_value_types_and_nesting(self):
        srv = self.fake(replies={"x-test": [{}]})
        r = migctl("-s", srv.path, "x-test", "n=4", "neg=-1", "f=0.5",
                   "t=true", "z=null", "s=tcp:127.0.0.1:4000", "e=",
                   "q=\"123\"", "a.b=1", "a.c.d=x",
                   "l=[{\"capability\": \"multifd\", \"state\": true}]")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_args(srv), {
            "n": 4, "neg": -1, "f": 0.5, "t": True, "z": None,
            "s": "tcp:127.0.0.1:4000", "e": "", "q": "123",
            "a": {"b": 1, "c": {"d": "x"}},
            "l": [{"capability": "multifd", "state": True}]})

    def test_json_object_argument(self):
        srv = self.fake(replies={"migrate": [{}]})
        args = {"channels": [{"channel-type": "main",
                              "addr": {"transport": "socket", "type": "inet",
                                       "host": "127.0.0.1", "port": "4000"}}]}
        r = migctl("-s", srv.path, "migrate", json.dumps(args))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.last_args(srv), args)
        self.assertEqual(r.stdout, "{}\n")

    def test_events_ignored_or_printed(self):
        ev = {"event": "STOP"}
        srv = self.fake(replies={"stop": [{}]}, events={"stop": [ev]})
        r = migctl("-s", srv.path, "stop")
        self.assertEqual((r.returncode, r.stdout), (0, "{}\n"), r.stderr)
        srv = self.fake(replies={"stop": [{}]}, events={"stop": [ev]})
        r = migctl("-e", "-s", srv.path, "stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(json.loads(lines[0])["event"], "STOP")
        self.assertEqual(lines[1:], ["{}"])

    def test_no_greeting(self):
        srv = self.fake(greeting=b"hello\r\n")
        r = migctl("-s", srv.path, "query-status")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: %s sent something that is not "
                         "QMP: '[' or '{' expected near 'hello'\n" % srv.path)

    def test_timeout(self):
        srv = self.fake(greeting=None)
        t0 = time.monotonic()
        r = migctl("-s", srv.path, "-t", "0.3", "query-status")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: timed out waiting for %s\n" % srv.path)
        self.assertLess(time.monotonic() - t0, 5)

    def test_server_closes(self):
        srv = self.fake(close_after=1)
        r = migctl("-s", srv.path, "query-status")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: %s closed the connection\n" % srv.path)

    def test_quit_when_server_closes_first(self):
        srv = self.fake(close_after=1)
        r = migctl("-s", srv.path, "quit")
        self.assertEqual((r.returncode, r.stdout), (0, "{}\n"), r.stderr)


def migration(status, transferred=0, total=1 << 30, remaining=None, sync=1,
              **extra):
    info = {"status": status, "total-time": 1000,
            "ram": {"transferred": transferred, "total": total,
                    "remaining": total - transferred if remaining is None else remaining,
                    "duplicate": 5, "normal": transferred // 4096,
                    "mbps": 800.0, "dirty-pages-rate": 0,
                    "dirty-sync-count": sync, "page-size": 4096}}
    info.update(extra)
    return info


class TestMigctlWatch(FakeServerTestCase):
    """watch through a scripted migration (stdout is not a terminal: one
    line per change)."""

    def test_completed(self):
        done = migration("completed", 1 << 30, remaining=0, sync=2,
                         downtime=12, **{"setup-time": 3, "total-time": 2000})
        srv = self.fake(replies={"query-migrate": [
            {}, {"status": "setup", "total-time": 0},
            migration("active", 1 << 28), migration("active", 1 << 28),
            migration("active", 3 << 28), done]})
        r = migctl("-s", srv.path, "watch")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, (
            "waiting for a migration to start\n"
            "setup  0.0s\n"
            "active   25.0%  100.0 MB/s  rem 768.0 MiB  dirty 0.0 MB/s  iter 1\n"
            "active   75.0%  100.0 MB/s  rem 256.0 MiB  dirty 0.0 MB/s  iter 1\n"
            "Migration completed\n"
            "  total time    2000 ms\n"
            "  downtime      12 ms\n"
            "  setup time    3 ms\n"
            "  transferred   1.00 GiB\n"
            "  throughput    536.9 MB/s average\n"
            "  pages         262144 normal, 5 duplicate\n"
            "  iterations    2\n"))
        self.assertTrue(all(q["execute"] in ("qmp_capabilities", "query-migrate")
                            for q in srv.requests))

    def test_failed(self):
        srv = self.fake(replies={"query-migrate": [
            migration("active", 1 << 20),
            {"status": "failed", "error-desc": "Unable to write to socket: "
             "Connection reset by peer", "total-time": 5}]})
        r = migctl("-s", srv.path, "watch")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertTrue(r.stdout.endswith(
            "Migration failed\n  total time    5 ms\n"
            "  error         Unable to write to socket: Connection reset by peer\n"),
            r.stdout)

    def test_cancelled(self):
        srv = self.fake(replies={"query-migrate": [{"status": "cancelled"}]})
        r = migctl("-s", srv.path, "watch")
        self.assertEqual((r.returncode, r.stdout), (1, "Migration cancelled\n"))

    def test_query_error(self):
        srv = self.fake(replies={"query-migrate": [
            {"error": {"class": "GenericError", "desc": "boom"}}]})
        r = migctl("-s", srv.path, "watch")
        self.assertEqual((r.returncode, r.stderr), (1, "error: GenericError: boom\n"))

    def test_connection_lost(self):
        srv = self.fake(replies={"query-migrate": [migration("active", 1)]},
                        close_after=3)
        r = migctl("-s", srv.path, "watch")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: %s closed the connection\n" % srv.path)


class TestMigctl(MigdTestCase):
    """migctl against a real migd."""

    def setUp(self):
        super().setUp()
        self.vm = self.migd(["-m", "64M", "-S"])
        self.sock = self.vm.sock_path

    def run_ok(self, *args):
        r = migctl("-s", self.sock, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return json.loads(r.stdout)

    def test_query_pretty_printed(self):
        r = migctl("-s", self.sock, "query-status")
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = json.loads(r.stdout)
        self.assertEqual((reply["status"], reply["running"]),
                         ("prelaunch", False))
        self.assertIn('\n  "status": "prelaunch"', r.stdout)

    def test_json_args(self):
        self.assertEqual(self.run_ok("migrate-set-parameters",
                                     '{"multifd-channels": 7}'), {})
        params = self.run_ok("query-migrate-parameters")
        self.assertEqual(params["multifd-channels"], 7)

    def test_key_value_args(self):
        self.assertEqual(self.run_ok("migrate-set-parameters",
                                     "multifd-channels=5",
                                     "max-bandwidth=1000000",
                                     "multifd-compression=zlib"), {})
        params = self.run_ok("query-migrate-parameters")
        self.assertEqual((params["multifd-channels"], params["max-bandwidth"],
                          params["multifd-compression"]), (5, 1000000, "zlib"))

    def test_key_value_json_list(self):
        self.run_ok("migrate-set-capabilities",
                    'capabilities=[{"capability": "multifd", "state": true}]')
        caps = {c["capability"]: c["state"]
                for c in self.run_ok("query-migrate-capabilities")}
        self.assertTrue(caps["multifd"])

    def test_nested_key_reaches_server(self):
        # a.b=1 is sent as {"a": {"b": 1}}: migd rejects the member by name
        r = migctl("-s", self.sock, "migrate-set-parameters", "bogus.inner=1")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "error: GenericError: Parameter 'bogus' is unexpected\n")

    def test_unknown_command(self):
        r = migctl("-s", self.sock, "no-such-cmd")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, "error: CommandNotFound: The command "
                         "no-such-cmd has not been found\n")

    def test_raw(self):
        r = migctl("--raw", "-s", self.sock, "query-status")
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["id"], "migctl-2")
        self.assertEqual(reply["return"]["status"], "prelaunch")
        r = migctl("--raw", "-s", self.sock, "no-such-cmd")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout)["error"]["class"], "CommandNotFound")

    def test_unix_prefix_and_tcp(self):
        r = migctl("-s", "unix:" + self.sock, "query-status")
        self.assertEqual(r.returncode, 0, r.stderr)
        vm = self.migd(["-m", "16M"], qmp_tcp=True)
        r = migctl("-s", "tcp:127.0.0.1:%d" % vm.tcp_port, "query-status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "running")

    def test_watch_without_migration_times_out(self):
        t0 = time.monotonic()
        r = migctl("-s", self.sock, "-t", "0.5", "watch")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "waiting for a migration to start\n")
        self.assertEqual(r.stderr, "migctl: no migration started within 0.5 s\n")
        self.assertGreaterEqual(elapsed, 0.5)
        self.assertLess(elapsed, 5.0)

    def test_env_socket(self):
        env = dict(os.environ, MIGCTL_SOCKET=self.sock)
        r = migctl("query-status", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_quit(self):
        self.assertEqual(self.run_ok("quit"), {})
        self.assertEqual(self.vm.proc.wait(10), 0)


class TestMigctlUsage(unittest.TestCase):
    """Errors found before or while connecting: exit status 2."""

    def test_bad_socket_path(self):
        r = migctl("-s", "/nonexistent/migd.sock", "query-status")
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, "migctl: cannot connect to "
                         "/nonexistent/migd.sock: No such file or directory\n")

    def test_not_listening(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "dead.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.close()  # bound, never listened: refused
            r = migctl("-s", path, "query-status")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: cannot connect to %s: "
                         "Connection refused\n" % path)

    def test_tcp_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = migctl("-s", "tcp:127.0.0.1:%d" % port, "query-status")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: cannot connect to "
                         "tcp:127.0.0.1:%d: Connection refused\n" % port)

    def test_bad_tcp_address(self):
        r = migctl("-s", "tcp:nohostport", "query-status")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "migctl: invalid address 'tcp:nohostport': "
                         "expected tcp:HOST:PORT\n")

    def test_missing_socket_and_command(self):
        env = {k: v for k, v in os.environ.items() if k != "MIGCTL_SOCKET"}
        r = migctl("query-status", env=env)
        self.assertEqual((r.returncode, r.stderr),
                         (2, "migctl: no monitor socket given (-s SOCKET)\n"))
        r = migctl("-s", "/tmp/x.sock")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no command given", r.stderr)

    def test_bad_arguments(self):
        r = migctl("-s", "/nonexistent", "migrate", "uri")
        self.assertEqual((r.returncode, r.stderr),
                         (2, "migctl: argument 'uri' is not KEY=VALUE\n"))
        r = migctl("-s", "/nonexistent", "migrate", "{bad")
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith("migctl: invalid JSON arguments: "),
                        r.stderr)
        r = migctl("-s", "/nonexistent", "-t", "0", "query-status")
        self.assertEqual((r.returncode, r.stderr), (2, "migctl: invalid timeout "
                                                    "'0': expected seconds > 0\n"))

    def test_help_and_version(self):
        r = migctl("--help")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("Usage: migctl -s SOCKET"))
        r = migctl("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^migctl \d+\.\d+\.\d+\n$")


if __name__ == "__main__":
    unittest.main()
