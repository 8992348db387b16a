"""The fd:, exec: and vsock: transports between two real migd processes, for
both migrate and migrate-incoming: fds passed with getfd over the unix
monitor (SCM_RIGHTS) or through an fd set (add-fd, "fd:/dev/fdset/N"), a
socketpair or a pipe; commands in the URI form ("exec:CMD", run by /bin/sh)
and the channel form (an argv list), joined by a FIFO; vsock over the
loopback transport where the kernel has it. Every completed migration is
checked byte for byte with x-query-ram-digest; failures with QEMU's errors.
"""
import os
import random
import socket
import subprocess
import sys

from tests.system.migdtest import MigdTestCase, free_tcp_port, wait_for
from tests.system.test_migration import (digest, fill, set_caps, set_params,
                                         wait_status)

GENERIC = "GenericError"
MULTI = "Migration requires multi-channel URIs (e.g. tcp)"


def children(pid):
    """Pids of pid's child processes (zombies included)."""
    out = []
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        with open("%s/%s/children" % (task, tid)) as f:
            out += f.read().split()
    return out


def vsock_loopback_reason():
    """None when vsock loopback (CID 1) works here, else why not."""
    if not hasattr(socket, "AF_VSOCK"):
        return "Python has no AF_VSOCK"
    if os.geteuid() == 0:
        try:
            subprocess.run(["modprobe", "vsock_loopback"], check=False,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        srv = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    except OSError as e:
        return "no AF_VSOCK sockets: %s" % e
    try:
        srv.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
        srv.listen(1)
        port = srv.getsockname()[1]
        cli = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        cli.settimeout(3)
        try:
            cli.connect((1, port))
        finally:
            cli.close()
    except OSError as e:
        return ("vsock loopback (CID 1) unavailable: %s (needs the "
                "vsock_loopback module%s)" %
                (e, "" if os.geteuid() == 0 else "; not root, no modprobe"))
    finally:
        srv.close()
    return None


class TransportTest(MigdTestCase):
    mem = "128M"

    def pair(self, multifd=False):
        src = self.migd(["-m", self.mem, "-smp", "2"])
        dst = self.migd(["-m", self.mem, "-incoming", "defer"])
        qs, qd = src.qmp(), dst.qmp()
        for q in (qs, qd):
            set_caps(q, events=True)
            if multifd:
                set_caps(q, multifd=True)
                set_params(q, multifd_channels=2)
        fill(qs, "mixed")
        return src, dst, qs, qd

    def finish(self, qs, qd):
        info = wait_status(qs, ("completed", "failed", "cancelled"))
        self.assertEqual(info["status"], "completed", info)
        dinfo = wait_status(qd, ("completed", "failed"), 30)
        self.assertEqual(dinfo["status"], "completed", dinfo)
        self.assertEqual(digest(qs), digest(qd))
        self.assertEqual(qd.cmd("query-status")["status"], "running")
        return info, dinfo

    def getfd(self, q, name, fd):
        reply = q.execute("getfd", {"fdname": name}, fds=[fd])
        self.assertEqual(reply.get("return"), {}, reply)

    # --- fd: ------------------------------------------------------------

    def test_fd_socketpair(self):
        _, _, qs, qd = self.pair()
        a, b = socket.socketpair()
        self.getfd(qs, "mig", a.fileno())
        self.getfd(qd, "mig", b.fileno())
        a.close()
        b.close()
        qd.cmd("migrate-incoming", uri="fd:mig")
        # the fd was taken: QEMU's monitor_get_fd() removes it
        self.assertEqual(qd.cmd("query-migrate")["status"], "setup")
        qs.cmd("migrate", uri="fd:mig")
        info, dinfo = self.finish(qs, qd)
        self.assertNotIn("socket-address", dinfo)
        self.assertNotIn("socket-address", info)
        self.assertEqual(info["ram"]["multifd-bytes"], 0)

    def test_fd_pipe_channels_form(self):
        _, _, qs, qd = self.pair()
        r, w = os.pipe()
        self.getfd(qs, "out", w)
        self.getfd(qd, "in", r)
        os.close(r)
        os.close(w)

        def chan(name):
            return [{"channel-type": "main",
                     "addr": {"transport": "socket", "type": "fd",
                              "str": name}}]
        qd.cmd("migrate-incoming", channels=chan("in"))
        qs.cmd("migrate", channels=chan("out"))
        self.finish(qs, qd)

    def test_fd_from_fdset(self):
        _, _, qs, qd = self.pair()
        a, b = socket.socketpair()
        reply = qs.execute("add-fd", {"opaque": "migration"}, fds=[a.fileno()])
        set_id = reply["return"]["fdset-id"]
        self.getfd(qd, "mig", b.fileno())
        a.close()
        b.close()
        qd.cmd("migrate-incoming", uri="fd:mig")
        qs.cmd("migrate", uri="fd:/dev/fdset/%d" % set_id)
        self.finish(qs, qd)
        qs.cmd("remove-fd", {"fdset-id": set_id})

    def test_fd_errors(self):
        _, _, qs, qd = self.pair()
        self.assertQMPError(qs.execute("migrate", {"uri": "fd:nope"}), GENERIC,
                            "File descriptor named 'nope' has not been found")
        info = qs.cmd("query-migrate")
        self.assertEqual(info["status"], "failed")
        self.assertEqual(info["error-desc"],
                         "File descriptor named 'nope' has not been found")
        self.assertQMPError(
            qd.execute("migrate-incoming", {"uri": "fd:12x"}), GENERIC,
            "Invalid file descriptor number '12x'")
        self.assertQMPError(
            qd.execute("migrate-incoming", {"uri": "fd:nope"}), GENERIC,
            "File descriptor named 'nope' has not been found")
        self.assertQMPError(
            qs.execute("migrate", {"uri": "fd:/dev/fdset/7"}), GENERIC,
            "Failed to find fdset /dev/fdset/7")
        # nothing started: the destination can still be given a good one
        a, b = socket.socketpair()
        self.getfd(qs, "mig", a.fileno())
        self.getfd(qd, "mig", b.fileno())
        a.close()
        b.close()
        qd.cmd("migrate-incoming", uri="fd:mig")
        qs.cmd("migrate", uri="fd:mig")
        self.finish(qs, qd)

    # --- exec: ----------------------------------------------------------

    def test_exec_uri_fifo(self):
        src, dst, qs, qd = self.pair()
        fifo = os.path.join(src.tmpdir, "stream.fifo")
        os.mkfifo(fifo)
        qd.cmd("migrate-incoming", uri="exec:cat '%s'" % fifo)
        qs.cmd("migrate", uri="exec:cat > '%s'" % fifo)
        info, dinfo = self.finish(qs, qd)
        self.assertNotIn("socket-address", dinfo)
        for m in (src, dst):  # both commands exited and were reaped
            wait_for(lambda: not children(m.proc.pid), timeout=10,
                     what="no child process left")

    def test_exec_incoming_on_command_line(self):
        src = self.migd(["-m", self.mem])
        fifo = os.path.join(src.tmpdir, "stream.fifo")
        os.mkfifo(fifo)
        dst = self.migd(["-m", self.mem, "-incoming", "exec:cat '%s'" % fifo])
        qs, qd = src.qmp(), dst.qmp()
        fill(qs, "random")
        self.assertEqual(qd.cmd("query-migrate")["status"], "setup")
        qs.cmd("migrate", uri="exec:cat > '%s'" % fifo)
        self.finish(qs, qd)

    def test_exec_channels_form(self):
        src, _, qs, qd = self.pair()
        fifo = os.path.join(src.tmpdir, "stream.fifo")
        os.mkfifo(fifo)

        def chan(args):
            return [{"channel-type": "main",
                     "addr": {"transport": "exec", "args": args}}]
        qd.cmd("migrate-incoming", channels=chan(["cat", fifo]))
        qs.cmd("migrate", channels=chan(
            ["/bin/sh", "-c", "exec cat > \"$0\"", fifo]))
        self.finish(qs, qd)

    def test_exec_relay_through_python(self):
        """A command that is a real relay: the source pipes into a python
        process that connects to a TCP port; the destination's command
        accepts there and writes to its stdout."""
        src, _, qs, qd = self.pair()
        port = free_tcp_port()
        listen = ("import socket,sys,shutil;s=socket.create_server("
                  "('127.0.0.1',%d));c,_=s.accept();"
                  "shutil.copyfileobj(c.makefile('rb'),sys.stdout.buffer)"
                  % port)
        send = ("import socket,sys,time,shutil\n"
                "for i in range(100):\n"
                "  try:\n"
                "    c=socket.create_connection(('127.0.0.1',%d));break\n"
                "  except OSError: time.sleep(0.1)\n"
                "shutil.copyfileobj(sys.stdin.buffer,c.makefile('wb'))\n"
                % port)
        qd.cmd("migrate-incoming", channels=[{"channel-type": "main",
               "addr": {"transport": "exec",
                        "args": [sys.executable, "-c", listen]}}])
        qs.cmd("migrate", channels=[{"channel-type": "main",
               "addr": {"transport": "exec",
                        "args": [sys.executable, "-c", send]}}])
        self.finish(qs, qd)

    def test_exec_source_command_fails(self):
        _, _, qs, _ = self.pair()
        qs.cmd("migrate", uri="exec:exit 3")
        info = wait_status(qs, ("completed", "failed", "cancelled"))
        self.assertEqual(info["status"], "failed", info)
        # QEMU names the channel: a command, not a socket
        self.assertIn("Unable to write to command: Broken pipe",
                      info["error-desc"])
        # the source guest keeps running
        self.assertEqual(qs.cmd("query-status")["status"], "running")

    def test_exec_destination_command_fails(self):
        _, _, _, qd = self.pair()
        qd.cmd("migrate-incoming", uri="exec:exit 3")
        info = wait_status(qd, ("completed", "failed"), 30)
        self.assertEqual(info["status"], "failed", info)
        self.assertTrue(info.get("error-desc"), info)

    def test_exec_not_found(self):
        _, _, qs, qd = self.pair()
        args = {"channels": [{"channel-type": "main", "addr": {
            "transport": "exec", "args": ["/nonexistent/migd-helper"]}}]}
        want = ('Failed to execute child process "/nonexistent/migd-helper"'
                ' (No such file or directory)')
        self.assertQMPError(qs.execute("migrate", args), GENERIC, want)
        self.assertEqual(qs.cmd("query-migrate")["error-desc"], want)
        self.assertQMPError(qd.execute("migrate-incoming", args), GENERIC,
                            want)

    def test_exec_cancel_leaves_command_alone(self):
        """Cancel closes the pipe; the command sees end of input and exits
        by itself (it is reaped, not killed)."""
        src, _, qs, _ = self.pair()
        marker = os.path.join(src.tmpdir, "done")
        set_params(qs, max_bandwidth=1 << 20)
        qs.cmd("migrate", uri="exec:cat > /dev/null; echo ok > '%s'" % marker)
        wait_status(qs, ("active",))
        qs.cmd("migrate_cancel")
        info = wait_status(qs, ("cancelled", "failed"))
        self.assertEqual(info["status"], "cancelled", info)
        wait_for(lambda: os.path.exists(marker), timeout=10,
                 what="the command finishing on its own")
        with open(marker) as f:
            self.assertEqual(f.read().strip(), "ok")

    # --- combination rules -------------------------------------------------

    def test_multifd_refused(self):
        src, _, qs, qd = self.pair(multifd=True)
        for uri in ("fd:mig", "exec:cat > /dev/null"):
            self.assertQMPError(qs.execute("migrate", {"uri": uri}),
                                GENERIC, MULTI)
            self.assertQMPError(qd.execute("migrate-incoming", {"uri": uri}),
                                GENERIC, MULTI)
        # refused before anything started
        self.assertNotIn("status", qs.cmd("query-migrate"))

    # --- vsock: ---------------------------------------------------------

    def test_vsock_loopback(self):
        reason = vsock_loopback_reason()
        if reason:
            print("\nskipping vsock test: %s" % reason, file=sys.stderr)
            self.skipTest(reason)
        _, _, qs, qd = self.pair(multifd=True)
        port = random.randint(20000, 60000)
        qd.cmd("migrate-incoming", uri="vsock:1:%d" % port)
        addr = qd.cmd("query-migrate")["socket-address"]
        self.assertEqual(addr, [{"type": "vsock", "cid": "1",
                                 "port": str(port)}])
        qs.cmd("migrate", uri="vsock:1:%d" % port)
        info, _ = self.finish(qs, qd)
        self.assertGreater(info["ram"]["multifd-bytes"], 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
