"""migdump_relay — a TCP relay for tests that capture migration streams:
it accepts the source's connections, connects each to the destination in
the order they arrive, pipes both directions, and tees what the source
sends on each connection to a file. After the migration, .captures()
tells the main stream from the multifd channels by their first 4 bytes.
"""
import os
import socket
import struct
import threading

QEVM_MAGIC = 0x5145564D
MFD_MAGIC = 0x11223344


class Relay:
    def __init__(self, dst_port, outdir, dst_host="127.0.0.1"):
        self.dst = (dst_host, dst_port)
        self.outdir = outdir
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.paths = []
        self.threads = []
        self.errors = []
        self.stopping = False
        self.acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self.acceptor.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                src, _ = self.lsock.accept()
            except OSError:
                return
            try:
                dst = socket.create_connection(self.dst, timeout=10)
                dst.settimeout(None)
            except OSError as e:
                self.errors.append(e)
                src.close()
                continue
            path = os.path.join(self.outdir, "conn-%d.bin" % len(self.paths))
            self.paths.append(path)
            out = open(path, "wb")
            done = threading.Barrier(2, action=lambda s=src, d=dst, o=out: (
                s.close(), d.close(), o.close()))
            for a, b, tee in ((src, dst, out), (dst, src, None)):
                t = threading.Thread(target=self._pipe, args=(a, b, tee, done),
                                     daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pipe(a, b, tee, done):
        try:
            while True:
                data = a.recv(1 << 20)
                if not data:
                    break
                if tee:
                    tee.write(data)
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            done.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass

    def wait(self, timeout=30):
        """Waits until every relayed connection has closed both ways."""
        for t in list(self.threads):
            t.join(timeout)

    def close(self):
        self.stopping = True
        self.lsock.close()

    def captures(self):
        """(main stream path, [multifd channel paths ordered by id])."""
        main, chans = None, []
        for p in self.paths:
            with open(p, "rb") as f:
                head = f.read(25)
            if len(head) < 4:
                continue
            magic = struct.unpack(">I", head[:4])[0]
            if magic == QEVM_MAGIC:
                main = p
            elif magic == MFD_MAGIC and len(head) == 25:
                chans.append((head[24], p))
        return main, [p for _, p in sorted(chans)]
