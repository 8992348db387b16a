"""link.py — `--link RATE`: an emulated network link between the source and
the destination. A TCP relay on 127.0.0.1 forwards every connection of one
migration (main, multifd, postcopy preempt) to the destination; what the
source sends shares one token bucket of RATE bytes/s, taken in FIFO order
in chunks of CHUNK bytes (one bottleneck, like a real link, and each
connection keeps its own kernel buffers in front of it). The return
direction is not limited (a full-duplex link whose reverse is idle).

Unlike max-bandwidth / max-postcopy-bandwidth, which make the source sleep,
the link makes its sockets back up: data written later waits behind what
is queued. That is the "saturated link" a postcopy page request must
cross (postcopy-preempt sends requested pages on their own connection).
Driver thread creates and closes it; pump threads run the data.
"""
import socket
import threading
import time

CHUNK = 32 * 1024


class TokenBucket:
    """FIFO reservations on one rate: take(n) returns once n bytes fit."""

    def __init__(self, rate):
        self.rate = float(rate)
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, n):
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + n / self.rate
            wait = self.next_free - now
        if wait > 0:
            time.sleep(wait)


class LinkRelay:
    def __init__(self, target_host, target_port, rate):
        self.target = (target_host, target_port)
        self.bucket = TokenBucket(rate)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.uri = "tcp:127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.socks = []
        self.closed = False
        self.bytes = 0
        threading.Thread(target=self._accept, daemon=True,
                         name="link-accept").start()

    def _accept(self):
        while not self.closed:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target, timeout=10)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            for s in (a, b):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, False),
                             daemon=True).start()

    def _pump(self, x, y, limited):
        while True:
            try:
                d = x.recv(CHUNK)
            except OSError:
                d = b""
            if not d:
                break
            if limited:
                self.bucket.take(len(d))
                self.bytes += len(d)
            try:
                y.sendall(d)
            except OSError:
                break
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []
