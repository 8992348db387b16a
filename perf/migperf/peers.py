"""peers.py — the source and destination: local migd or QEMU `-M none`
processes (optionally pinned with taskset), or already-running peers
reached through their QMP address; RAM images for QEMU sources, digests,
and throwaway TLS credentials. Driver thread only.
"""
import os
import shutil
import subprocess
import tempfile
import time

from migperf.qmp import QMP, QMPError
from migperf.util import MiB, ROOT


class Peer:
    """One side of a migration, driven over QMP only."""

    def __init__(self, role, kind, q, proc=None, cmdline=None, log_path=None):
        self.role, self.kind, self.q = role, kind, q
        self.proc, self.cmdline, self.log_path = proc, cmdline, log_path
        self.pid = proc.pid if proc else q.peer_pid()
        self.objects = set()      # object-add ids already created
        self.image = None         # QEMU source: its RAM file
        self.ram_digest = None    # set by the runner

    def describe(self):
        return {"kind": self.kind, "pid": self.pid,
                "cmdline": self.cmdline, "qmp": str(self.q.address),
                "version": (self.q.greeting or {}).get("QMP", {})
                .get("version")}

    def stderr_tail(self, n=2000):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def close(self):
        """Stops a process migperf started; leaves attached peers alone."""
        if self.proc is None:
            self.q.close()
            return
        try:
            self.q.cmd("quit")
        except (QMPError, OSError, ConnectionError):
            pass
        self.q.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _spawn(role, kind, cmd, tmpdir, cpus):
    sock = os.path.join(tmpdir, "%s.qmp" % role)
    log_path = os.path.join(tmpdir, "%s.log" % role)
    if os.path.exists(sock):
        os.unlink(sock)
    cmd = list(cmd) + ["-qmp", "unix:%s,server=on,wait=off" % sock]
    if cpus:
        if not shutil.which("taskset"):
            raise RuntimeError("taskset not found (util-linux)")
        cmd = ["taskset", "-c", cpus] + cmd
    with open(log_path, "w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 300   # prealloc=on faults in RAM first
    while not os.path.exists(sock):
        if proc.poll() is not None or time.monotonic() > deadline:
            with open(log_path, errors="replace") as f:
                msg = f.read().strip()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise RuntimeError("%s %s did not start: %s" % (role, kind, msg))
        time.sleep(0.01)
    return Peer(role, kind, QMP(sock), proc, cmd, log_path)


def migd_ram_args(scen, role):
    size = str(scen["mem"])
    if role == "src" or scen["dst_ram"] == "anon":
        return ["-m", "%dM" % (scen["mem"] // MiB)] \
            if scen["mem"] % MiB == 0 else ["-m", size]
    opt = {"prealloc": "prealloc=on", "thp": "x-thp=on",
           "thp-auto": "x-thp=auto"}[scen["dst_ram"]]
    return ["-object", "memory-backend-ram,id=ram,size=%s,%s" % (size, opt),
            "-machine", "memory-backend=ram"]


def start_migd(build, scen, role, tmpdir):
    cmd = [os.path.join(build, "migd")] + migd_ram_args(scen, role) + \
        ["-smp", str(scen["cpus"])]
    if role == "dst":
        cmd += ["-incoming", "defer"]
    return _spawn(role, "migd", cmd, tmpdir, scen[role + "_cpus"])


def default_qemu(build):
    for path in (os.path.join(build, "qemu-10.0", "qemu-system-x86_64"),
                 os.path.join(ROOT, "build", "qemu-10.0",
                              "qemu-system-x86_64")):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("qemu-system-x86_64")


def start_qemu(binary, scen, role, tmpdir, image=None):
    """QEMU -M none: the source maps `image` (shared file), the destination
    gets anonymous (or prealloc=on) RAM."""
    size = scen["mem"]
    if role == "src":
        backend = "memory-backend-file,id=ram0,size=%d,mem-path=%s," \
            "share=on" % (size, image)
    else:
        backend = "memory-backend-ram,id=ram0,size=%d%s" % (
            size, ",prealloc=on" if scen["dst_ram"] == "prealloc" else "")
    cmd = [binary, "-M", "none", "-m", "%dM" % (size // MiB), "-object",
           backend, "-machine", "memory-backend=ram0", "-nodefaults",
           "-display", "none", "-S", "-name",
           "migperf-%s,debug-threads=on" % role]
    if role == "dst":
        cmd += ["-incoming", "defer"]
    peer = _spawn(role, "qemu", cmd, tmpdir, scen[role + "_cpus"])
    peer.image = image
    return peer


def attach(role, address):
    """A peer someone else started (--src-qmp/--dst-qmp)."""
    q = QMP(address)
    kind = "qemu"
    try:
        q.cmd("x-query-ram-digest")
        kind = "migd"
    except QMPError:
        pass
    return Peer(role, kind, q)


# ---- RAM images and digests ---------------------------------------------------

def text_page(seed):
    words = [b"migration", b"page", b"dirty", b"guest", b"memory", b"qemu",
             b"stream", b"channel", b"the", b"of", b"and", b"to"]
    out, i = bytearray(), seed
    while len(out) < 4096:
        out += words[i % len(words)] + b" "
        i = (i * 1103515245 + 12345) & 0x7fffffff
    return bytes(out[:4096])


def write_image(path, size, content):
    """A QEMU source's RAM: content written into the backing file before
    QEMU starts (QEMU -M none has no workload to write it)."""
    chunk = 16 * MiB
    text = b"".join(text_page(i) for i in range(64))
    with open(path, "wb") as f:
        f.truncate(size)
        if content in ("zero", "untouched"):
            return
        for off in range(0, size, chunk):
            n = min(chunk, size - off)
            if content == "random":
                data = os.urandom(n)
            elif content == "text":
                data = (text * (n // len(text) + 1))[:n]
            else:   # mixed: a quarter zero, a quarter text, half random
                q = n // 4
                data = bytes(q) + (text * (q // len(text) + 1))[:q] + \
                    os.urandom(n - 2 * q)
            f.write(data)


def ramdigest(build, path):
    out = subprocess.run([os.path.join(build, "ramdigest"), path],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def digest(peer, build, tmpdir, size):
    """{block: digest} of a peer's RAM: x-query-ram-digest on migd; on
    QEMU the image file (source) or a pmemsave dump (destination), read
    with build/ramdigest, which computes the same xxh3-128."""
    if peer.kind == "migd":
        return {b["block"]: b["digest"] for b in
                peer.q.cmd("x-query-ram-digest")}
    if peer.image:
        return {"ram0": ramdigest(build, peer.image)}
    if peer.proc is None:
        return None   # a remote QEMU: its RAM is out of reach
    dump = os.path.join(tmpdir, "%s-pmemsave.ram" % peer.role)
    try:
        peer.q.cmd("pmemsave", val=0, size=size, filename=dump)
        return {"ram0": ramdigest(build, dump)}
    finally:
        if os.path.exists(dump):
            os.unlink(dump)


# ---- TLS ------------------------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_tls_dir(tmpdir):
    """Throwaway credentials in QEMU's layout (one dir for both ends):
    ca-cert.pem, server-{cert,key}.pem (localhost, 127.0.0.1),
    client-{cert,key}.pem, keys.psk (user qemu)."""
    d = tempfile.mkdtemp(prefix="tls-", dir=tmpdir)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out",
             "ca-cert.pem", "-days", "2", "-subj", "/CN=migperf CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    exts = {"server": "extendedKeyUsage=serverAuth\nsubjectAltName="
            "DNS:localhost,IP:127.0.0.1\n",
            "client": "extendedKeyUsage=clientAuth\n"}
    for name, ext in exts.items():
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,"
                    "keyEncipherment\n" + ext)
        _openssl("req", "-new", *ec, "-keyout", name + "-key.pem", "-out",
                 name + ".csr", "-subj", "/CN=%s" % (
                     "localhost" if name == "server" else "migperf-client"),
                 cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca-cert.pem",
                 "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
                 "-out", name + "-cert.pem", "-extfile", name + ".ext", cwd=d)
    with open(os.path.join(d, "keys.psk"), "w") as f:
        f.write("qemu:%s\n" % os.urandom(32).hex())
    return d


def add_tls(peer, kind, tls_dir):
    """object-add the credentials (once per peer); returns their id."""
    oid = "migperf-tls-" + kind
    if oid in peer.objects:
        return oid
    peer.q.cmd("object-add", {
        "qom-type": "tls-creds-" + kind, "id": oid, "dir": tls_dir,
        "endpoint": "client" if peer.role == "src" else "server"})
    peer.objects.add(oid)
    return oid
