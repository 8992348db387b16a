"""relay — a TCP / unix-socket relay that tees every migration connection to
files, for finding out which side of a failed interop migration is wrong.

The source migrates to relay.uri; each accepted connection is forwarded to
the destination's URI and what the source sent is written to
DIR/conn-N.bin (N in accept order: 0 is the first connection, which for
QEMU 7.2 and migd is the main channel), what the destination sent back to
DIR/conn-N.rev.bin. Decode with decode_main() / decode_multifd() below, or
contrib/migdump.

Used by the harness when INTEROP_CAPTURE=1, or by hand:
    r = Relay("tcp:127.0.0.1:4444", "/tmp/cap"); ... migrate to r.uri
"""
import os
import socket
import struct
import threading
import time


def _parse(uri):
    if uri.startswith("tcp:"):
        host, port = uri[4:].rsplit(":", 1)
        return socket.AF_INET, (host, int(port))
    if uri.startswith("unix:"):
        return socket.AF_UNIX, uri[5:]
    raise ValueError("relay: unsupported URI " + uri)


class Relay:
    def __init__(self, target_uri, capdir):
        self.family, self.target = _parse(target_uri)
        self.capdir = capdir
        os.makedirs(capdir, exist_ok=True)
        self.lsock = socket.socket(self.family, socket.SOCK_STREAM)
        if self.family == socket.AF_INET:
            self.lsock.bind(("127.0.0.1", 0))
            self.uri = "tcp:127.0.0.1:%d" % self.lsock.getsockname()[1]
        else:
            path = os.path.join(capdir, "relay.sock")
            self.lsock.bind(path)
            self.uri = "unix:" + path
        self.lsock.listen(16)
        self.count = 0
        self.threads = []
        self.conns = []  # (src, dst) sockets, for cut()
        self.closed = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _connect_target(self):
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(self.family, socket.SOCK_STREAM)
            try:
                s.connect(self.target)
                return s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _accept(self):
        while not self.closed:
            try:
                src, _ = self.lsock.accept()
            except OSError:
                return
            n = self.count
            self.count += 1
            dst = self._connect_target()
            self.conns.append((src, dst))
            base = os.path.join(self.capdir, "conn-%d" % n)
            t = threading.Thread(target=self._connection,
                                 args=(src, dst, base), daemon=True)
            t.start()
            self.threads.append(t)

    def _connection(self, src, dst, base):
        pumps = [threading.Thread(target=self._pump, args=args, daemon=True)
                 for args in ((src, dst, base + ".bin"),
                              (dst, src, base + ".rev.bin"))]
        for t in pumps:
            t.start()
        for t in pumps:
            t.join()
        src.close()
        dst.close()

    @staticmethod
    def _pump(a, b, path):
        with open(path, "wb") as f:
            while True:
                try:
                    data = a.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    break
                f.write(data)
                try:
                    b.sendall(data)
                except OSError:
                    break
        for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass

    def cut(self, keep_listening=False):
        """Breaks every connection (both ends see a reset/EOF): a network
        failure in the middle of a migration. Stops accepting unless
        keep_listening (later connections are relayed as before)."""
        if not keep_listening:
            self.closed = True
            self.lsock.close()
        for pair in self.conns:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self, timeout=5.0):
        self.closed = True
        self.lsock.close()
        for t in self.threads:
            t.join(timeout)


# ---- decoding (reference §1 and §2), for reports ------------------------------

RAM_FLAGS = {0x02: "ZERO", 0x04: "MEM_SIZE", 0x08: "PAGE", 0x10: "EOS",
             0x20: "CONTINUE", 0x40: "XBZRLE", 0x80: "HOOK",
             0x100: "COMPRESS", 0x200: "MULTIFD_FLUSH"}


class DecodeError(Exception):
    pass


class _Reader:
    def __init__(self, data):
        self.d, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.d):
            raise DecodeError("truncated at %d (need %d bytes)" % (self.pos, n))
        b = self.d[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def be16(self):
        return struct.unpack(">H", self.take(2))[0]

    def be32(self):
        return struct.unpack(">I", self.take(4))[0]

    def be64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def str8(self):
        return self.take(self.u8()).decode(errors="replace")


def decode_main(data, page=4096, limit=200):
    """Summary lines of a main stream: sections, RAM record counts,
    commands; ends with the first malformed byte and its offset."""
    r, out, sections = _Reader(data), [], {}
    counts = {}
    try:
        if r.be32() != 0x5145564D:
            raise DecodeError("bad magic")
        out.append("header version %d" % r.be32())
        while r.pos < len(data):
            at, kind = r.pos, r.u8()
            if kind == 0x07:
                out.append("@%d CONFIGURATION %r" % (at, r.take(r.be32())))
                while r.pos < len(data) and data[r.pos] == 0x05:
                    r.u8()
                    name = r.str8()
                    r.be32()
                    out.append("@%d  subsection %s (body not decoded)" % (r.pos, name))
                    raise DecodeError("subsection bodies not decoded")
            elif kind in (0x01, 0x04):
                sid = r.be32()
                name, inst, ver = r.str8(), r.be32(), r.be32()
                sections[sid] = name
                out.append("@%d %s id=%d %s inst=%d v=%d" % (
                    at, "START" if kind == 1 else "FULL", sid, name, inst, ver))
                if name == "ram":
                    _decode_ram(r, out, counts, page)
                elif name == "timer":
                    r.take(24)
                elif name == "globalstate":
                    size = r.be32()
                    state = r.take(100 if size <= 100 else size)
                    out.append("   globalstate %r" % state.split(b"\0")[0])
                else:
                    raise DecodeError("section %s body unknown" % name)
                _footer(r, sid, out)
            elif kind in (0x02, 0x03):
                sid = r.be32()
                if sections.get(sid) != "ram":
                    raise DecodeError("PART/END for section %d" % sid)
                _decode_ram(r, counts=counts, out=None, page=page)
                _footer(r, sid, out)
                if kind == 0x03:
                    out.append("@%d END id=%d" % (at, sid))
            elif kind == 0x08:
                cmd, ln = r.be16(), r.be16()
                r.take(ln)
                out.append("@%d COMMAND %d len %d" % (at, cmd, ln))
            elif kind == 0x00:
                out.append("@%d EOF" % at)
            elif kind == 0x06:
                ln = r.be32()
                r.take(ln)
                out.append("@%d VMDESCRIPTION %d bytes" % (at, ln))
            else:
                raise DecodeError("unknown section type 0x%02x" % kind)
    except DecodeError as e:
        out.append("MALFORMED at offset %d: %s" % (r.pos, e))
    out.append("RAM records: %s" % ", ".join(
        "%s=%d" % kv for kv in sorted(counts.items())))
    return out[:limit]


def _footer(r, sid, out):
    at = r.pos
    if r.u8() != 0x7E or r.be32() != sid:
        raise DecodeError("missing footer for section %d at %d" % (sid, at))


def _decode_ram(r, out, counts, page):
    while True:
        v = r.be64()
        flags, off = v & (page - 1), v & ~(page - 1)
        name = "|".join(n for b, n in RAM_FLAGS.items() if flags & b) or hex(flags)
        counts[name] = counts.get(name, 0) + 1
        if flags & 0x04:
            total = off
            while total > 0:
                bname, length = r.str8(), r.be64()
                if out is not None:
                    out.append("   block %s used_length %d" % (bname, length))
                total -= length
            continue
        if flags & 0x10:
            return
        if flags == 0x200:
            continue
        if flags & (0x02 | 0x08):
            if not flags & 0x20:
                r.str8()
            if flags & 0x02:
                fill = r.u8()
                if fill:
                    raise DecodeError("zero page with fill %d" % fill)
            else:
                r.take(page)
            continue
        raise DecodeError("RAM flags 0x%x at offset 0x%x" % (flags, off))


def decode_multifd(data, page=4096, limit=50):
    """Summary of one multifd channel: init, then per packet flags, counts
    and packet_num; flags packets that look like 7.2's stale SYNCs."""
    r, out = _Reader(data), []
    try:
        magic, ver = r.be32(), r.be32()
        uuid, cid = r.take(16), r.u8()
        r.take(39)
        out.append("init magic 0x%x version %d uuid %s id %d" % (
            magic, ver, uuid.hex(), cid))
        n = 0
        while r.pos < len(data):
            at = r.pos
            hdr = struct.unpack(">IIIIIIQI", r.take(36))
            r.take(28)
            bname = r.take(256).split(b"\0")[0].decode(errors="replace")
            r.take(8 * (512 * 1024 // page))
            magic, ver, flags, alloc, normal, nxt, num, zero = hdr
            if magic != 0x11223344:
                raise DecodeError("packet magic 0x%x" % magic)
            r.take(normal * page)
            stale = " (stale next)" if normal == 0 and nxt else ""
            if n < limit:
                out.append("@%d flags %x alloc %d normal %d zero %d next %d "
                           "num %d %s%s" % (at, flags, alloc, normal, zero, nxt,
                                             num, bname, stale))
            n += 1
        out.append("%d packets" % n)
    except DecodeError as e:
        out.append("MALFORMED at offset %d: %s" % (r.pos, e))
    return out


def multifd_stats(data, page=4096):
    """Counts over one captured multifd channel: packets, sync (SYNC
    packets), sync_with_pages (SYNC packets carrying pages, as <9.0
    senders do), stale_next (no pages but next_packet_size != 0, as 7.2
    leaves it), zero_pages (the zero_pages field, 9.0+)."""
    st = dict(packets=0, sync=0, sync_with_pages=0, stale_next=0, zero_pages=0)
    pos, plen = 64, 320 + 8 * (512 * 1024 // page)
    while pos + plen <= len(data):
        _, _, flags, _, normal, nxt, _, zero = struct.unpack_from(
            ">IIIIIIQI", data, pos)
        st["packets"] += 1
        st["sync"] += flags & 1
        st["sync_with_pages"] += bool(flags & 1 and normal)
        st["stale_next"] += bool(normal == 0 and nxt)
        st["zero_pages"] += zero
        pos += plen + normal * page
    return st


def main_stats(data, page=4096):
    """RAM record counts of a captured main stream (decode_main's)."""
    for line in decode_main(data, page, limit=10**9):
        if line.startswith("MALFORMED"):
            raise DecodeError(line)
        if line.startswith("RAM records: "):
            return dict(kv.split("=") for kv in line[13:].split(", ") if kv)
    return {}
