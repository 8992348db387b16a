"""qemustream — builds QEMU migration streams byte by byte for tests that
play the source (reference §1 and §2 of qemu-migration-facts.md): the main
stream (header, configuration, sections with footers, RAM records,
commands, timer, globalstate, EOF, vmdesc) and multifd channels (64-byte
init, 1344-byte packets, page payloads).

Nothing here validates: tests build hostile streams with the same calls.
"""
import struct

QEVM_MAGIC = 0x5145564D
MFD_MAGIC = 0x11223344
PAGE = 4096

# Section / record types
EOF = 0x00
START = 0x01
PART = 0x02
END = 0x03
FULL = 0x04
SUBSECTION = 0x05
VMDESC = 0x06
CONFIGURATION = 0x07
COMMAND = 0x08
FOOTER = 0x7E

# RAM_SAVE_FLAG_*
F_ZERO = 0x02
F_MEM_SIZE = 0x04
F_PAGE = 0x08
F_EOS = 0x10
F_CONTINUE = 0x20
F_XBZRLE = 0x40
F_HOOK = 0x80
F_COMPRESS_PAGE = 0x100
F_MULTIFD_FLUSH = 0x200

# MIG_CMD_*
CMD_OPEN_RETURN_PATH = 1
CMD_PING = 2
CMD_POSTCOPY_ADVISE = 3
CMD_SWITCHOVER_START = 11

# Section ids as QEMU 10.0 numbers them for -M none
ID_TIMER = 0
ID_RAM = 1
ID_GLOBALSTATE = 3

MFD_FLAG_SYNC = 0x01


def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def str8(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes([len(s)]) + s


class Stream:
    """A main migration stream. Methods append and return self."""

    def __init__(self):
        self.b = bytearray()

    def raw(self, data):
        self.b += data
        return self

    def bytes(self):
        return bytes(self.b)

    # -- framing ---------------------------------------------------------
    def header(self, machine="none", magic=QEVM_MAGIC, version=3,
               configuration=True):
        self.b += be32(magic) + be32(version)
        if configuration:
            self.b += bytes([CONFIGURATION]) + be32(len(machine)) + machine.encode()
        return self

    def section_full(self, type_, sid, idstr, instance, version):
        self.b += bytes([type_]) + be32(sid) + str8(idstr) + be32(instance) + be32(version)
        return self

    def section_short(self, type_, sid):
        self.b += bytes([type_]) + be32(sid)
        return self

    def footer(self, sid):
        self.b += bytes([FOOTER]) + be32(sid)
        return self

    def command(self, cmd, payload=b"", length=None):
        n = len(payload) if length is None else length
        self.b += bytes([COMMAND]) + be16(cmd) + be16(n) + payload
        return self

    def eof(self):
        self.b += bytes([EOF])
        return self

    def vmdesc(self, text=b'{"page_size": 4096, "devices": []}'):
        self.b += bytes([VMDESC]) + be32(len(text)) + text
        return self

    # -- ram records -----------------------------------------------------
    def record(self, value):
        self.b += be64(value)
        return self

    def mem_size(self, blocks):
        """blocks: [(name, used_length)]"""
        total = sum(size for _, size in blocks)
        self.b += be64(total | F_MEM_SIZE)
        for name, size in blocks:
            self.b += str8(name) + be64(size)
        return self

    def page(self, offset, data, block="ram", flags=0):
        """block None: CONTINUE."""
        assert len(data) == PAGE
        if block is None:
            self.b += be64(offset | F_PAGE | F_CONTINUE | flags)
        else:
            self.b += be64(offset | F_PAGE | flags) + str8(block)
        self.b += data
        return self

    def zero(self, offset, block="ram", fill=0):
        if block is None:
            self.b += be64(offset | F_ZERO | F_CONTINUE)
        else:
            self.b += be64(offset | F_ZERO) + str8(block)
        self.b += bytes([fill])
        return self

    def eos(self):
        return self.record(F_EOS)

    def flush(self):
        return self.record(F_MULTIFD_FLUSH)

    # -- whole sections --------------------------------------------------
    def ram_start(self, blocks, sid=ID_RAM, flush=False):
        self.section_full(START, sid, "ram", 0, 4).mem_size(blocks)
        if flush:
            self.flush()
        return self.eos().footer(sid)

    def ram_part(self, sid=ID_RAM, end=False):
        """Opens a PART (or END) section; add records, then close()."""
        return self.section_short(END if end else PART, sid)

    def close(self, sid=ID_RAM):
        return self.eos().footer(sid)

    def timer(self, sid=ID_TIMER, version=2):
        self.section_full(FULL, sid, "timer", 0, version)
        self.b += bytes(24)
        return self.footer(sid)

    def globalstate(self, runstate="running", sid=ID_GLOBALSTATE):
        self.section_full(FULL, sid, "globalstate", 0, 1)
        name = runstate.encode()
        body = name + bytes(100 - len(name))
        self.b += be32(len(name) + 1) + body
        return self.footer(sid)

    def tail(self, runstate="running", vmdesc=True):
        """timer, globalstate, EOF, vmdesc: the end of every stream."""
        self.timer().globalstate(runstate).eof()
        if vmdesc:
            self.vmdesc()
        return self


def simple_stream(pages, size, zeros=(), runstate="running", block="ram"):
    """A complete single-channel stream: pages {offset: data} then zero
    pages, in one PART and an END section."""
    s = Stream().header().ram_start([(block, size)])
    s.ram_part()
    first = True
    for off in sorted(pages):
        s.page(off, pages[off], block=block if first else None)
        first = False
    for off in zeros:
        s.zero(off, block=block if first else None)
        first = False
    s.close()
    s.ram_part(end=True).close()
    return s.tail(runstate)


# -- multifd ------------------------------------------------------------------
def mfd_init(cid, uuid=bytes(16), magic=MFD_MAGIC, version=1):
    return be32(magic) + be32(version) + uuid + bytes([cid]) + bytes(7) + bytes(32)


def mfd_packet(normal=(), zero=(), flags=0, block="ram", packet_num=0,
               pages_alloc=None, normal_count=None, zero_count=None,
               next_size=None, magic=MFD_MAGIC, version=1):
    """A 1344-byte packet header. normal/zero: offsets (their page data is
    the caller's to append for normal pages)."""
    normal = list(normal)
    zero = list(zero)
    n = len(normal) if normal_count is None else normal_count
    z = len(zero) if zero_count is None else zero_count
    alloc = (128 if (n or z) else 0) if pages_alloc is None else pages_alloc
    nxt = n * PAGE if next_size is None else next_size
    name = block.encode() if isinstance(block, str) else block
    hdr = (be32(magic) + be32(version) + be32(flags) + be32(alloc) + be32(n)
           + be32(nxt) + be64(packet_num) + be32(z) + bytes(4) + bytes(24)
           + name + bytes(256 - len(name)))
    offs = normal + zero
    offs += [0] * (128 - len(offs))
    return hdr + b"".join(be64(o) for o in offs[:128])


def mfd_sync(packet_num=0):
    return mfd_packet(flags=MFD_FLAG_SYNC, packet_num=packet_num)
