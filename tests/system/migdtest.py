"""migdtest — helpers for system tests: start real migd processes and talk
QMP to them over real sockets.

A test creates Migd(...) objects (each in its own temporary directory),
opens QMP connections with .qmp(), and checks replies and events exactly.
Every process is stopped in tearDown; a process that exits non-zero (for
instance with a sanitizer report) fails the test.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MIGD_BUILD", os.path.join(ROOT, "build"))
MIGD = os.path.join(BUILD, "migd")
MIGCTL = os.path.join(BUILD, "migctl")


class QMPError(Exception):
    def __init__(self, reply):
        super().__init__(reply)
        self.reply = reply
        err = reply.get("error", {})
        self.cls = err.get("class")
        self.desc = err.get("desc")


def _connect_once(address, timeout):
    if isinstance(address, tuple):
        return socket.create_connection(address, timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def connect(address, timeout=10.0, retry=5.0):
    """A socket to a QMP monitor: a (host, port) tuple or a unix path. A
    unix socket file exists from bind() on, but connects are refused until
    listen() (QEMU has the same window): retry briefly."""
    deadline = time.monotonic() + retry
    while True:
        try:
            return _connect_once(address, timeout)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class QMP:
    """One QMP connection. Messages are JSON objects separated by CRLF."""

    def __init__(self, address, timeout=10.0):
        self.sock = connect(address, timeout)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_raw(self, data, fds=None):
        if isinstance(data, str):
            data = data.encode()
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)

    def recv(self):
        """Next message (reply or event), or None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def recv_reply(self):
        """Next reply, queueing events met on the way."""
        while True:
            msg = self.recv()
            if msg is None or "event" not in msg:
                return msg
            self.events.append(msg)

    def send(self, obj, fds=None):
        self.send_raw(json.dumps(obj) + "\r\n", fds)

    def execute(self, name, args=None, id=None, fds=None, oob=False):
        req = {"exec-oob" if oob else "execute": name}
        if args is not None:
            req["arguments"] = args
        if id is not None:
            req["id"] = id
        self.send(req, fds)
        return self.recv_reply()

    def cmd(self, name, args=None, **kw):
        """Runs a command; returns 'return' or raises QMPError."""
        if kw:
            args = dict(args or {}, **kw)
        reply = self.execute(name, args)
        if reply is None:
            raise ConnectionError("migd closed the monitor")
        if "error" in reply:
            raise QMPError(reply)
        return reply["return"]

    def negotiate(self, oob=False):
        args = {"enable": ["oob"]} if oob else None
        return self.cmd("qmp_capabilities", args)

    def wait_event(self, name, timeout=10.0, pred=None):
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and (pred is None or pred(ev)):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %s event" % name)
            self.sock.settimeout(left)
            try:
                msg = self.recv()
            finally:
                self.sock.settimeout(10.0)
            if msg is None:
                raise ConnectionError("monitor closed")
            if "event" in msg:
                self.events.append(msg)


class Migd:
    """A migd process with one unix QMP monitor (more with extra_qmp)."""

    def __init__(self, args=(), tmpdir=None, qmp_tcp=False, start=True):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="migd-test-")
        self.own_tmpdir = tmpdir is None
        self.sock_path = os.path.join(self.tmpdir, "qmp.sock")
        self.log_path = os.path.join(self.tmpdir, "migd.log")
        self.args = list(args)
        self.tcp_port = None
        self.proc = None
        self.monitors = []
        if qmp_tcp:
            self.tcp_port = free_tcp_port()
        if start:
            self.start()

    def command_line(self):
        cmd = [MIGD, "-qmp", "unix:%s,server=on,wait=off" % self.sock_path]
        if self.tcp_port:
            cmd += ["-qmp", "tcp:127.0.0.1:%d,server=on,wait=off" % self.tcp_port]
        return cmd + self.args

    def start(self):
        self.stderr = open(self.log_path + ".stderr", "w+")
        self.proc = subprocess.Popen(self.command_line(), stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.sock_path) or self.proc.poll() is not None,
                 what="QMP socket")
        if self.proc.poll() is not None:
            raise RuntimeError("migd exited early: %s" % self.read_stderr())

    def read_stderr(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.log_path + ".stderr", errors="replace") as f:
            return f.read()

    def qmp(self, negotiate=True, tcp=False):
        addr = ("127.0.0.1", self.tcp_port) if tcp else self.sock_path
        mon = QMP(addr)
        if negotiate:
            mon.negotiate()
        self.monitors.append(mon)
        return mon

    def stop(self, timeout=15.0):
        """Sends SIGTERM if still running; returns the exit status."""
        if self.proc is None:
            if getattr(self, "stderr", None) and not self.stderr.closed:
                self.stderr.close()
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        for m in self.monitors:
            m.close()
        self.stderr.close()
        return rc

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.own_tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.01)


def run_migd(args, timeout=10.0):
    """Runs migd to completion (for command-line error tests)."""
    return subprocess.run([MIGD] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class MigdTestCase(unittest.TestCase):
    """Starts processes through self.migd(); stops them and checks that each
    exited cleanly (status 0: no sanitizer report, no crash)."""

    def setUp(self):
        self._procs = []

    def migd(self, *args, **kw):
        m = Migd(*args, **kw)
        self._procs.append(m)
        return m

    def tearDown(self):
        failures = []
        for m in self._procs:
            try:
                rc = m.stop()
                if rc not in (0, None):
                    failures.append("migd exited %s: %s" % (rc, m.read_stderr()[-4000:]))
            finally:
                m.cleanup()
        if failures:
            self.fail("\n".join(failures))

    def assertQMPError(self, reply, cls, desc):
        self.assertIn("error", reply, reply)
        self.assertEqual(reply["error"]["class"], cls, reply)
        self.assertEqual(reply["error"]["desc"], desc, reply)
