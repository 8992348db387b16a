"""qmp.py — a minimal QMP client: unix or TCP monitors, commands, events.

Used from one thread (migperf's driver). Errors from the peer are raised as
QMPError carrying QEMU's error class and description unchanged.
"""
import json
import socket
import struct
import time


class QMPError(Exception):
    """A command's {"error": ...} reply."""

    def __init__(self, command, reply):
        err = reply.get("error", {})
        self.cls = err.get("class", "")
        self.desc = err.get("desc", "")
        self.command = command
        super().__init__("%s: %s: %s" % (command, self.cls, self.desc))


def parse_address(addr):
    """'unix:PATH', 'tcp:HOST:PORT', 'HOST:PORT' or a path -> address."""
    if addr.startswith("unix:"):
        return addr[5:]
    if addr.startswith("tcp:"):
        addr = addr[4:]
    if ":" in addr and not addr.startswith("/"):
        host, port = addr.rsplit(":", 1)
        return (host.strip("[]"), int(port))
    return addr


def _connect(address, timeout, retry):
    deadline = time.monotonic() + retry
    while True:
        try:
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
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class QMP:
    """One negotiated QMP connection."""

    def __init__(self, address, timeout=60.0, retry=10.0):
        self.address = parse_address(address) if isinstance(address, str) \
            else address
        self.sock = _connect(self.address, timeout, retry)
        self.buf = b""
        self.events = []
        self.greeting = self._recv()
        if self.greeting is None:
            raise ConnectionError("QMP monitor closed before its greeting")
        self.cmd("qmp_capabilities")

    def peer_pid(self):
        """The process id at the other end of a unix monitor (SO_PEERCRED),
        or None (TCP monitors: the process may be on another host)."""
        if isinstance(self.address, tuple):
            return None
        try:
            cred = self.sock.getsockopt(socket.SOL_SOCKET,
                                        socket.SO_PEERCRED, 12)
            return struct.unpack("3i", cred)[0] or None
        except OSError:
            return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, name, args=None, fds=None):
        """Sends a command; returns its raw reply (events are queued)."""
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        data = (json.dumps(req) + "\r\n").encode()
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)
        while True:
            msg = self._recv()
            if msg is None:
                raise ConnectionError("QMP monitor closed during " + name)
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name, args=None, fds=None, **kw):
        if kw:
            args = dict(args or {}, **kw)
        reply = self.execute(name, args, fds)
        if "error" in reply:
            raise QMPError(name, reply)
        return reply.get("return")
