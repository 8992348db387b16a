"""QMP protocol behaviour of a real migd over real sockets, checked against
QEMU's: greeting, capabilities negotiation, request validation, ids, JSON
framing and its limits, hostile and vanishing clients, many monitors,
events, query-commands, TCP monitors, socket permissions, shutdown.

Every error assertion checks the exact class and desc.
"""
import json
import os
import resource
import signal
import socket
import stat
import threading
import time
import unittest

from tests.system import migdtest
from tests.system.migdtest import QMP, ROOT, MigdTestCase


def migd_version():
    """MIGD_VERSION from control/migd.h: the greeting's package string."""
    with open(os.path.join(ROOT, "control", "migd.h")) as f:
        for line in f:
            if line.startswith("#define MIGD_VERSION "):
                return json.loads(line.split(None, 2)[2])
    raise RuntimeError("MIGD_VERSION not found")


PACKAGE = "migd " + migd_version()
VERSION_INFO = {"qemu": {"micro": 0, "minor": 0, "major": 9},
                "package": PACKAGE}

ERR_NEGOTIATE = "Expecting capabilities negotiation with 'qmp_capabilities'"
ERR_NEGOTIATED = "Capabilities negotiation is already complete, command ignored"

# Spec commands that migd does not implement yet: they must not be listed
# (or answer anything but CommandNotFound) until their issue lands.
NOT_IMPLEMENTED = [
    "xen-save-devices-state", "xen-set-global-dirty-log",
    "xen-load-devices-state", "xen-set-replication", "xen-colo-do-checkpoint",
    "x-colo-lost-heartbeat", "query-colo-status", "query-xen-replication-status",
]

# Commands that must be there (core QMP plus what earlier issues delivered).
REQUIRED = [
    "qmp_capabilities", "query-version", "query-commands",
    "getfd", "closefd", "add-fd", "remove-fd", "query-fdsets",
    "migrate-set-capabilities", "query-migrate-capabilities",
    "migrate-set-parameters", "query-migrate-parameters", "query-migrate",
    "query-status", "stop", "cont", "quit",
    "snapshot-save", "snapshot-load", "snapshot-delete", "query-jobs",
    "job-dismiss", "migrate-start-postcopy", "migrate-pause",
]


class RawMonitor:
    """A QMP connection that keeps the bytes: for framing tests."""

    def __init__(self, address, timeout=10.0):
        self.sock = migdtest.connect(address, timeout)
        self.buf = b""

    def line(self):
        """Next raw line including its terminator, or None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def msg(self):
        line = self.line()
        if line is None:
            return None
        if not line.endswith(b"\r\n"):
            raise AssertionError("line does not end with CRLF: %r" % line)
        return json.loads(line)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def nothing_pending(self, wait=0.3):
        """True when no message arrives within wait seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(10.0)
        self.buf += chunk
        return False

    def close(self):
        self.sock.close()


class QMPProtocolTest(MigdTestCase):
    def setUp(self):
        super().setUp()
        self.m = self.migd()

    def raw(self):
        mon = RawMonitor(self.m.sock_path)
        self.addCleanup(mon.close)
        return mon

    def negotiated_raw(self, oob=False):
        mon = self.raw()
        mon.msg()  # greeting
        req = {"execute": "qmp_capabilities"}
        if oob:
            req["arguments"] = {"enable": ["oob"]}
        mon.send(json.dumps(req))
        self.assertEqual(mon.msg(), {"return": {}})
        return mon

    def assertAlive(self, mon, id="alive"):
        """The monitor still answers (query-version with an id)."""
        mon.send({"execute": "query-version", "id": id}
                 if isinstance(mon, QMP) else
                 json.dumps({"execute": "query-version", "id": id}))
        reply = mon.recv_reply() if isinstance(mon, QMP) else mon.msg()
        self.assertEqual(reply.get("id"), id, reply)
        self.assertIn("return", reply, reply)

    def replies_until_id(self, mon, id, limit=50):
        """Messages up to and including the reply carrying id."""
        out = []
        for _ in range(limit):
            msg = mon.msg()
            self.assertIsNotNone(msg, "monitor closed")
            out.append(msg)
            if msg.get("id") == id:
                return out
        self.fail("no reply with id %r in %r" % (id, out))

    def assertParseErrorsThenReply(self, mon, first_desc, id):
        """One or more GenericErrors without id (the first with desc
        first_desc), then the successful reply carrying id."""
        msgs = self.replies_until_id(mon, id)
        errors, last = msgs[:-1], msgs[-1]
        self.assertGreaterEqual(len(errors), 1, msgs)
        self.assertQMPError(errors[0], "GenericError", first_desc)
        for e in errors:
            self.assertNotIn("id", e)
            self.assertEqual(e["error"]["class"], "GenericError", e)
        self.assertIn("return", last, last)

    # ---- greeting and negotiation ---------------------------------------

    def test_greeting_exact(self):
        mon = self.raw()
        line = mon.line()
        self.assertTrue(line.endswith(b"\r\n"), line)
        self.assertEqual(json.loads(line), {
            "QMP": {"version": VERSION_INFO, "capabilities": ["oob"]}})
        self.assertTrue(all(b < 0x80 for b in line))
        mon.send('{"execute": "qmp_capabilities"}')
        self.assertEqual(mon.line(), b'{"return": {}}\r\n')
        mon.send('{"execute": "query-version", "id": 1}')
        line = mon.line()
        self.assertTrue(line.endswith(b"\r\n"), line)
        self.assertEqual(json.loads(line), {"return": VERSION_INFO, "id": 1})

    def test_negotiation_mode(self):
        mon = self.raw()
        mon.msg()
        for name in ("query-version", "query-commands", "no-such-cmd", "stop"):
            mon.send(json.dumps({"execute": name, "id": name}))
            reply = mon.msg()
            self.assertQMPError(reply, "CommandNotFound", ERR_NEGOTIATE)
            self.assertEqual(reply["id"], name)
        # the request object is still checked first, with GenericError
        mon.send('{"execute": "query-version", "foo": 1}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "QMP input member 'foo' is unexpected")
        mon.send('{"exec-oob": "qmp_capabilities"}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "QMP input member 'exec-oob' is unexpected")
        mon.send('{"execute": "qmp_capabilities", "arguments": {"enable": ["x"]}}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "Parameter 'null' does not accept value 'x'")
        mon.send('{"execute": "qmp_capabilities", "arguments": {"bogus": 1}}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "Parameter 'bogus' is unexpected")
        # failed attempts leave negotiation mode in place
        mon.send('{"execute": "query-version"}')
        self.assertQMPError(mon.msg(), "CommandNotFound", ERR_NEGOTIATE)
        mon.send('{"execute": "qmp_capabilities", "id": "n"}')
        self.assertEqual(mon.msg(), {"return": {}, "id": "n"})
        self.assertAlive(mon)

    def test_second_capabilities(self):
        mon = self.negotiated_raw()
        mon.send('{"execute": "qmp_capabilities", "id": 2}')
        reply = mon.msg()
        self.assertQMPError(reply, "CommandNotFound", ERR_NEGOTIATED)
        self.assertEqual(reply["id"], 2)
        mon.send('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}')
        self.assertQMPError(mon.msg(), "CommandNotFound", ERR_NEGOTIATED)

    def test_second_capabilities_bad_arguments(self):
        # QEMU reads the arguments before the handler runs
        mon = self.negotiated_raw()
        mon.send('{"execute": "qmp_capabilities", "arguments": {"bogus": 1}}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "Parameter 'bogus' is unexpected")

    def test_oob(self):
        mon = self.negotiated_raw(oob=True)
        mon.send('{"exec-oob": "query-status", "id": 7}')
        reply = mon.msg()
        self.assertQMPError(reply, "GenericError",
                            "The command query-status does not support OOB")
        self.assertEqual(reply["id"], 7)
        mon.send('{"exec-oob": "query-version"}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "The command query-version does not support OOB")
        mon.send('{"exec-oob": "no-such-cmd"}')
        self.assertQMPError(mon.msg(), "CommandNotFound",
                            "The command no-such-cmd has not been found")
        mon.send('{"exec-oob": 1}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "QMP input member 'exec-oob' must be a string")
        # in-band commands still work with oob enabled
        self.assertAlive(mon)

    def test_oob_clash(self):
        # QEMU walks the request's members in its hash order, where
        # exec-oob comes before execute: the message does not depend on
        # the order the client wrote them in.
        mon = self.negotiated_raw(oob=True)
        for req in ('{"execute": "query-status", "exec-oob": "query-status"}',
                    '{"exec-oob": "query-status", "execute": "query-status"}'):
            mon.send(req)
            self.assertQMPError(mon.msg(), "GenericError",
                                "QMP input member 'execute' clashes with "
                                "'exec-oob'")

    def test_exec_oob_without_oob(self):
        mon = self.negotiated_raw()
        mon.send('{"exec-oob": "query-status", "id": "o"}')
        reply = mon.msg()
        self.assertQMPError(reply, "GenericError",
                            "QMP input member 'exec-oob' is unexpected")
        self.assertEqual(reply["id"], "o")

    # ---- request validation -----------------------------------------------

    def test_id_echoed_verbatim(self):
        mon = self.negotiated_raw()
        ids = [0, -5, 2**53, 1.5, "x", "", "\u00e9\u20ac", {"a": [1, {"b": None}]},
               [1, "two", [3]], True, None]
        for id in ids:
            for req in ({"execute": "query-version", "id": id},
                        {"execute": "no-such-cmd", "id": id},
                        {"id": id},
                        {"execute": "query-version", "arguments": {"x": 1},
                         "id": id}):
                mon.send(json.dumps(req))
                reply = mon.msg()
                self.assertIn("id", reply, (req, reply))
                self.assertEqual(reply["id"], id, reply)
                self.assertEqual(type(reply["id"]), type(id), reply)

    def test_request_shape_errors(self):
        mon = self.negotiated_raw()
        cases = [
            ("[]", "QMP input must be a JSON object"),
            ("1 ", "QMP input must be a JSON object"),
            ('"x"', "QMP input must be a JSON object"),
            ("[{\"execute\": \"query-version\"}]",
             "QMP input must be a JSON object"),
            ("{}", "QMP input lacks member 'execute'"),
            ('{"arguments": {}}', "QMP input lacks member 'execute'"),
            ('{"execute": "query-version", "foo": 1}',
             "QMP input member 'foo' is unexpected"),
            ('{"execute": 1}', "QMP input member 'execute' must be a string"),
            ('{"execute": ["query-version"]}',
             "QMP input member 'execute' must be a string"),
            ('{"execute": "query-version", "arguments": []}',
             "QMP input member 'arguments' must be an object"),
            ('{"execute": "query-version", "arguments": "a=b"}',
             "QMP input member 'arguments' must be an object"),
        ]
        for text, desc in cases:
            mon.send(text)
            reply = mon.msg()
            self.assertQMPError(reply, "GenericError", desc)
            self.assertEqual(list(reply), ["error"], reply)
        mon.send('{"execute": "no-such-cmd"}')
        self.assertQMPError(mon.msg(), "CommandNotFound",
                            "The command no-such-cmd has not been found")
        mon.send('{"execute": "query-version", "arguments": {"bogus": 1}}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "Parameter 'bogus' is unexpected")
        mon.send('{"execute": "query-commands", "arguments": {"bogus": 1}}')
        self.assertQMPError(mon.msg(), "GenericError",
                            "Parameter 'bogus' is unexpected")

    # ---- JSON framing --------------------------------------------------------

    def test_parse_error_keeps_connection(self):
        mon = self.negotiated_raw()
        mon.send('{"execute": @}\r\n{"execute": "query-version", "id": 1}\r\n')
        self.assertParseErrorsThenReply(mon, "JSON parse error, stray '@'", 1)
        mon.send('{"execute": "query-version", "id": 2, "id": 3}\r\n'
                 '{"execute": "query-version", "id": 4}')
        self.assertParseErrorsThenReply(mon, "JSON parse error, duplicate key", 4)
        mon.send('{"execute" "query-version"}{"execute": "query-version", "id": 5}')
        self.assertParseErrorsThenReply(
            mon, "JSON parse error, missing : in object pair", 5)
        mon.send('{"execute": tru}{"execute": "query-version", "id": 6}')
        self.assertParseErrorsThenReply(
            mon, "JSON parse error, invalid keyword 'tru'", 6)

    def test_single_quoted_strings(self):
        mon = self.negotiated_raw()
        mon.send("{'execute': 'query-version', 'id': 'it\\'s \"q\"'}")
        reply = mon.msg()
        self.assertEqual(reply["id"], "it's \"q\"")
        self.assertIn("return", reply)

    def test_byte_by_byte(self):
        mon = self.negotiated_raw()
        req = b'{"execute": "query-version", "id": {"n": [1, 2.5, "\\u00e9"]}}\r\n'
        for b in req:
            mon.send(bytes([b]))
            time.sleep(0.002)
        reply = mon.msg()
        self.assertEqual(reply["id"], {"n": [1, 2.5, "\u00e9"]})
        self.assertIn("return", reply)

    def test_two_requests_one_write(self):
        mon = self.negotiated_raw()
        mon.send('{"execute": "query-version", "id": 1}'
                 '{"execute": "no-such-cmd", "id": 2}\n')
        self.assertEqual(mon.msg()["id"], 1)
        reply = mon.msg()
        self.assertQMPError(reply, "CommandNotFound",
                            "The command no-such-cmd has not been found")
        self.assertEqual(reply["id"], 2)

    def test_huge_document(self):
        mon = self.negotiated_raw()
        big = ('{"execute": "query-version", "arguments": {"k": "' +
               "a" * (5 << 20) + '"}, "id": 0}')
        sender = threading.Thread(target=mon.send, args=(big,))
        sender.start()
        sender.join(60)
        self.assertFalse(sender.is_alive())
        mon.send('{"execute": "query-version", "id": 1}')
        self.assertParseErrorsThenReply(mon, "JSON token size limit exceeded", 1)
        # many small tokens adding up to more than the limit
        big = "[" + "1," * (3 << 20) + "1]"
        sender = threading.Thread(target=mon.send, args=(big,))
        sender.start()
        sender.join(60)
        mon.send('{"execute": "query-version", "id": 2}')
        msgs = self.replies_until_id(mon, 2)
        self.assertGreaterEqual(len(msgs), 2, msgs)
        self.assertQMPError(msgs[0], "GenericError",
                            "JSON token count limit exceeded")
        self.assertAlive(mon)

    def test_deep_nesting(self):
        mon = self.negotiated_raw()
        mon.send("[" * 2000 + "]" * 2000 + '{"execute": "query-version", "id": 1}')
        self.assertParseErrorsThenReply(mon, "JSON nesting depth limit exceeded", 1)
        # exactly the limit is fine (too deep for Python's json to decode
        # the echoed id, so the raw line is checked)
        mon.send('{"execute": "query-version", "id": ' + "[" * 1023 + "]" * 1023
                 + "}")
        line = mon.line()
        self.assertTrue(line.startswith(b'{"return": {'), line[:100])
        self.assertTrue(line.endswith(b"]}\r\n"), line[-100:])
        self.assertEqual(line.count(b"["), 1023)
        self.assertAlive(mon)

    def test_non_utf8(self):
        mon = self.negotiated_raw()
        for bad in (b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                    b"\xc0\x80"):
            mon.send(b'{"execute": "query-version", "id": "' + bad + b'"}\r\n'
                     b'{"execute": "query-version", "id": 9}')
            self.assertParseErrorsThenReply(
                mon, "JSON parse error, invalid UTF-8 sequence in string", 9)
        # valid UTF-8 goes through, and comes back ASCII-escaped
        mon.send('{"execute": "query-version", "id": "\u00e9\U0001f600"}'
                 .encode())
        line = mon.line()
        self.assertTrue(all(b < 0x80 for b in line), line)
        self.assertEqual(json.loads(line)["id"], "\u00e9\U0001f600")

    def test_stray_non_ascii_byte(self):
        # A byte that cannot start a token is reported; QEMU's JSON writer
        # turns the undecodable byte into U+FFFD. The monitor stays open.
        mon = self.negotiated_raw()
        mon.send(b'\xc3 {"execute": "query-version", "id": 1}')
        self.assertParseErrorsThenReply(mon, "JSON parse error, stray '\ufffd'",
                                        1)
        mon.send(b'{"execute": "query-version", "id": 2, "x": \xe2\x82}'
                 b'{"execute": "query-version", "id": 3}')
        msgs = self.replies_until_id(mon, 3)
        self.assertGreaterEqual(len(msgs), 2, msgs)
        self.assertEqual(msgs[0]["error"]["class"], "GenericError", msgs)

    def test_resync_byte(self):
        # 0xFF abandons a half-sent request (QMP spec); the next one works
        mon = self.negotiated_raw()
        mon.send(b'{"execute": "query-version", "id": \xff'
                 b'{"execute": "query-version", "id": 3}')
        msgs = self.replies_until_id(mon, 3)
        self.assertIn("return", msgs[-1])
        for m in msgs[:-1]:
            self.assertEqual(m["error"]["class"], "GenericError", m)

    def test_fd_behind_pipelined_request(self):
        # SCM_RIGHTS data may be read together with an earlier request that
        # is still unanswered: that request must not swallow the fd meant
        # for the getfd behind it (QEMU keeps received fds until a command
        # takes them or the next fds arrive).
        mon = self.negotiated_raw()
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        failures = []
        for i in range(40):
            mon.send('{"execute": "query-version", "id": "v%d"}' % i)
            socket.send_fds(mon.sock, [b'{"execute": "getfd", "arguments": '
                                       b'{"fdname": "p%d"}, "id": "g%d"}'
                                       % (i, i)], [w])
            self.assertIn("return", mon.msg())
            reply = mon.msg()
            self.assertEqual(reply["id"], "g%d" % i)
            if "return" not in reply:
                failures.append((i, reply["error"]))
        self.assertEqual(failures, [])

    def test_received_fds_made_blocking(self):
        # O_NONBLOCK travels with SCM_RIGHTS; QEMU's socket chardev clears
        # it on every fd it receives. The flag lives in the shared open
        # file description, so the sender's copy shows it.
        import fcntl
        mon = self.negotiated_raw()
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        os.set_blocking(w, False)
        socket.send_fds(mon.sock, [b'{"execute": "getfd", "arguments": '
                                   b'{"fdname": "nb"}, "id": 1}'], [w])
        self.assertEqual(mon.msg(), {"return": {}, "id": 1})
        self.assertFalse(fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK)

    # ---- clients that go away -------------------------------------------

    def test_vanishing_clients(self):
        keep = self.m.qmp()
        # half a request, then gone
        mon = self.negotiated_raw()
        mon.send('{"execute": "query-ver')
        mon.close()
        # a request, gone before reading the reply
        for i in range(20):
            mon = self.negotiated_raw()
            mon.send('{"execute": "query-commands"}' * 50)
            mon.sock.shutdown(socket.SHUT_RDWR)
            mon.close()
        # connected and gone before the greeting was read
        for i in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.m.sock_path)
            s.close()
        # a client that never reads while events pile up stays harmless
        self.assertAlive(keep)
        fresh = self.m.qmp()
        self.assertAlive(fresh)
        self.assertIsNone(self.m.proc.poll())

    def test_flood_without_reading(self):
        # A client that sends far more than it reads is throttled (its
        # replies wait for it), the daemon stays responsive, and every
        # reply arrives in order once the client reads.
        flood = self.negotiated_raw()
        n = 5000
        data = "".join('{"execute": "query-commands", "id": %d}' % i
                       for i in range(n))
        sender = threading.Thread(target=flood.send, args=(data,))
        sender.daemon = True
        sender.start()
        time.sleep(0.5)
        other = self.m.qmp()
        self.assertAlive(other)
        for i in range(n):
            reply = flood.msg()
            self.assertEqual(reply["id"], i)
            self.assertIn("return", reply)
        sender.join(30)
        self.assertFalse(sender.is_alive())
        self.assertAlive(flood)

    def test_many_monitors_concurrently(self):
        n = 100
        barrier = threading.Barrier(n)
        errors = []
        results = [None] * n

        def client(i):
            try:
                mon = QMP(self.m.sock_path, timeout=30)
                try:
                    barrier.wait(30)
                    mon.negotiate()
                    reply = mon.execute("query-version", id=i)
                    results[i] = reply
                finally:
                    mon.close()
            except Exception as e:  # reported below
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        for i, reply in enumerate(results):
            self.assertEqual(reply, {"return": VERSION_INFO, "id": i})
        self.assertAlive(self.m.qmp())

    def test_out_of_fds_no_busy_loop(self):
        # With its descriptors used up, migd cannot accept more clients;
        # the waiting connections must not make the control loop spin,
        # existing monitors keep working, and new clients are served once
        # descriptors are free again.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            m = self.migd()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        keep = m.qmp()
        clients = []
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(m.sock_path)
            except BlockingIOError:  # the listen backlog is full too
                s.close()
                break
            clients.append(s)
        self.assertGreater(len(clients), 64)
        self.addCleanup(lambda: [c.close() for c in clients])
        time.sleep(0.5)
        used = proc_cpu_seconds(m.proc.pid)
        time.sleep(2)
        used = proc_cpu_seconds(m.proc.pid) - used
        self.assertLess(used, 0.5, "control loop spun for %.2fs of 2s" % used)
        self.assertAlive(keep)
        for c in clients:
            c.close()
        clients.clear()
        fresh = QMP(m.sock_path)
        self.addCleanup(fresh.close)
        self.assertIn("QMP", fresh.greeting)
        fresh.negotiate()
        self.assertAlive(fresh)

    # ---- events -------------------------------------------------------------

    def test_events_broadcast(self):
        a = self.m.qmp()
        b = self.m.qmp()
        pending = self.raw()
        self.assertIsNotNone(pending.msg())  # greeting only
        reply = a.execute("query-commands")
        names = {c["name"] for c in reply["return"]}
        if not {"stop", "cont"} <= names:
            self.skipTest("stop/cont are not implemented yet")
        before = time.time()
        a.cmd("stop")
        for mon in (a, b):
            ev = mon.wait_event("STOP")
            self.assertEqual(set(ev), {"event", "timestamp"}, ev)
            self.assertEqual(set(ev["timestamp"]), {"seconds", "microseconds"})
            secs = ev["timestamp"]["seconds"]
            usecs = ev["timestamp"]["microseconds"]
            self.assertIsInstance(secs, int)
            self.assertIsInstance(usecs, int)
            self.assertTrue(0 <= usecs < 1000000, ev)
            t = secs + usecs / 1e6
            self.assertTrue(before - 1 <= t <= time.time() + 1, (before, ev))
        # nothing reached the monitor still in negotiation mode
        self.assertTrue(pending.nothing_pending())
        pending.send('{"execute": "qmp_capabilities"}')
        self.assertEqual(pending.msg(), {"return": {}})
        b.cmd("cont")
        for mon in (a, b):
            ev = mon.wait_event("RESUME")
            self.assertEqual(ev["event"], "RESUME")
        ev = pending.msg()
        self.assertEqual(ev["event"], "RESUME", ev)
        self.assertEqual(set(ev["timestamp"]), {"seconds", "microseconds"})

    # ---- query-commands ------------------------------------------------------

    def test_query_commands(self):
        mon = self.m.qmp()
        listed = mon.cmd("query-commands")
        for entry in listed:
            self.assertEqual(list(entry), ["name"], entry)
        names = [c["name"] for c in listed]
        self.assertEqual(len(names), len(set(names)), names)
        for name in REQUIRED:
            self.assertIn(name, names)
        for name in NOT_IMPLEMENTED:
            self.assertNotIn(name, names)
            reply = mon.execute(name, id=name)
            self.assertQMPError(reply, "CommandNotFound",
                                "The command %s has not been found" % name)
        # every listed command is dispatched, and refuses a bogus argument
        # before doing anything, as QEMU's marshallers do (a missing
        # mandatory argument may be reported first)
        wrong = []
        for name in names:
            if name == "qmp_capabilities":
                continue
            reply = mon.execute(name, {"x-h6-bogus": 1}, id=name)
            self.assertIsNotNone(reply, name)
            self.assertEqual(reply["id"], name)
            err = reply.get("error", {})
            if (err.get("class") != "GenericError" or
                    not (err.get("desc") == "Parameter 'x-h6-bogus' is unexpected"
                         or err.get("desc", "").endswith("' is missing"))):
                wrong.append((name, reply.get("error", "succeeded")))
        self.assertEqual(wrong, [])
        self.assertIsNone(self.m.proc.poll())

    # ---- transports, permissions, shutdown --------------------------------------

    def test_tcp_monitor(self):
        m = self.migd(qmp_tcp=True)
        mon = RawMonitor(("127.0.0.1", m.tcp_port))
        self.addCleanup(mon.close)
        greeting = mon.msg()
        self.assertEqual(greeting["QMP"]["capabilities"], ["oob"])
        mon.send('{"execute": "query-version"}')
        self.assertQMPError(mon.msg(), "CommandNotFound", ERR_NEGOTIATE)
        mon.send('{"execute": "qmp_capabilities"}')
        self.assertEqual(mon.msg(), {"return": {}})
        mon.send("{'execute': 'no-such-cmd', 'id': [1]}")
        reply = mon.msg()
        self.assertQMPError(reply, "CommandNotFound",
                            "The command no-such-cmd has not been found")
        self.assertEqual(reply["id"], [1])
        self.assertAlive(mon)
        # the unix monitor of the same daemon is independent
        self.assertAlive(m.qmp())

    def test_unix_socket_mode(self):
        st = os.stat(self.m.sock_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600,
                         oct(stat.S_IMODE(st.st_mode)))

    def test_sigterm_with_open_monitors(self):
        mons = [self.m.qmp() for _ in range(10)]
        mons += [self.m.qmp(negotiate=False) for _ in range(10)]
        for mon in mons[:10]:
            self.assertAlive(mon)
        self.m.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.m.proc.wait(15), 0, self.m.read_stderr())
        self.assertFalse(os.path.exists(self.m.sock_path))
        for mon in mons:
            mon.sock.settimeout(5)
            while mon.recv() is not None:  # drains to EOF
                pass


def proc_cpu_seconds(pid):
    """User + system CPU time a process has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    unittest.main()
