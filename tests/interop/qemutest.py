"""qemutest — helpers for the interop tests: real QEMU peers (7.2 from
bookworm, 10.0 unpacked by contrib/install-qemu.sh) next to real migd
processes, RAM contents written straight into memory-backend files, and
one migration driver used by every test of the matrix.

QEMU runs as `-M none -m SIZE` with one file-backed RAM block `ram0`
(memory-backend-file share=on), so its RAM is a file this process can fill
before a migration and hash after one. migd runs with the same machine
options (a memory-backend-file or memory-backend-ram with id ram0), so both
sides have one block named `ram0`.

Environment: QEMU72 / QEMU100 override the binaries; INTEROP_KEEP=1 keeps the
temporary directories (logs, RAM files) of failed tests; INTEROP_CAPTURE=1
puts a relay between source and destination (relay.py) that tees every
connection to DIR/capture/conn-N.bin and, when the test fails, keeps them
with a decoded summary in DIR/capture/decoded.txt; INTEROP_FULL=1 runs the
whole matrix (make check-interop-long).
"""
import functools
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.interop.relay import Relay, decode_main, decode_multifd
from tests.system.migdtest import QMP, MigdTestCase, free_tcp_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = 4096
MiB = 1 << 20
GiB = 1 << 30

DEFAULT_BINARIES = {
    "7.2": "/usr/bin/qemu-system-x86_64",
    "10.0": os.path.join(ROOT, "build", "qemu-10.0", "qemu-system-x86_64"),
}
ENV_VARS = {"7.2": "QEMU72", "10.0": "QEMU100"}
FINAL = ("completed", "failed", "cancelled")
SOURCE_BANDWIDTH = 16 << 30  # max-bandwidth of every source, bytes/s
LIVE_BANDWIDTH = 128 << 20   # of a source whose guest keeps writing
LIVE_WORKING_SET = 64 << 20    # where it writes: several dirty rounds
LIVE_DIRTY_RATE = 30           # MB/s

# The compatibility knobs a migd peer of QEMU 7.2 needs (reference §2.5).
COMPAT_72_GLOBALS = ["-global", "migration.multifd-flush-after-each-section=on",
                     "-global", "migration.send-switchover-start=off"]


def wanted_binary(version):
    return os.environ.get(ENV_VARS[version]) or DEFAULT_BINARIES[version]


@functools.lru_cache(maxsize=None)
def qemu_binary(version):
    """Path of QEMU `version` ("7.2" or "10.0"), or None when missing or
    when the binary found reports another version."""
    path = wanted_binary(version)
    if not os.access(path, os.X_OK):
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True,
                             text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"QEMU emulator version (\d+)\.(\d+)\.", out)
    if not m or "%s.%s" % m.groups() != version:
        return None
    return path


def require_qemu(version):
    """Class decorator: skip every test when QEMU `version` is missing."""
    return unittest.skipUnless(
        qemu_binary(version),
        "QEMU %s not found (run contrib/install-qemu.sh or set %s)"
        % (version, ENV_VARS[version]))


def ram_dir():
    """Where RAM files live: tmpfs when there is one (no disk writeback)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return tempfile.gettempdir()


# ---- RAM contents ------------------------------------------------------------

def _random_pages(rng, base, chunk_index, npages):
    """npages pages of pseudo-random bytes: a rotation of the shared random
    base plus the page's index stamped at its start, so no two pages of the
    file are equal (a page landing at the wrong offset is caught)."""
    shift = (chunk_index * 4099 * 7 + rng.randrange(len(base))) % len(base)
    data = bytearray(base[shift:] + base[:shift])
    data = data[:npages * PAGE]
    for i in range(npages):
        stamp = (chunk_index * 1024 + i + 1).to_bytes(8, "little")
        data[i * PAGE:i * PAGE + 8] = stamp
    return data


def _text_page(rng):
    word = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(61))
    return (word * (PAGE // len(word) + 1))[:PAGE]


def _mixed_pages(rng, base, chunk_index, npages):
    """Per page: 45% zero, 35% random, 15% text, 5% zero but for one byte
    at a random place (a page that is almost zero)."""
    rand = _random_pages(rng, base, chunk_index, npages)
    out = bytearray(npages * PAGE)
    text = [_text_page(rng) for _ in range(4)]
    for i in range(npages):
        r = rng.random()
        if r < 0.45:
            continue
        if r < 0.80:
            out[i * PAGE:(i + 1) * PAGE] = rand[i * PAGE:(i + 1) * PAGE]
        elif r < 0.95:
            out[i * PAGE:(i + 1) * PAGE] = rng.choice(text)
        else:
            out[i * PAGE + rng.randrange(PAGE)] = rng.randrange(1, 256)
    return out


def fill_ram_file(path, size, content="random", seed=1):
    """Writes `size` bytes of `content` (random, zero or mixed) to path.
    Zero leaves a sparse file (like fresh guest RAM)."""
    with open(path, "r+b" if os.path.exists(path) else "wb") as f:
        f.truncate(0)
        f.truncate(size)
        if content == "zero":
            return
        rng = random.Random(seed)
        base = rng.randbytes(4 * MiB)
        chunk = 4 * MiB
        for index, off in enumerate(range(0, size, chunk)):
            npages = min(chunk, size - off) // PAGE
            if content == "random":
                data = _random_pages(rng, base, index, npages)
            elif content == "mixed":
                data = _mixed_pages(rng, base, index, npages)
            else:
                raise ValueError("content " + content)
            f.seek(off)
            f.write(data)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(16 * MiB)
            if not block:
                return h.hexdigest()
            h.update(block)


def diff_pages(path_a, path_b, limit=8):
    """(count, [first differing page offsets]) between two RAM files."""
    bad, first = 0, []
    with open(path_a, "rb") as a, open(path_b, "rb") as b:
        off = 0
        while True:
            x, y = a.read(16 * MiB), b.read(16 * MiB)
            if not x and not y:
                return bad, first
            if x != y:
                for p in range(0, max(len(x), len(y)), PAGE):
                    if x[p:p + PAGE] != y[p:p + PAGE]:
                        bad += 1
                        if len(first) < limit:
                            first.append(off + p)
            off += max(len(x), len(y))


def describe_page(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        page = f.read(PAGE)
    if not page.strip(b"\0"):
        return "zero page"
    return "first bytes %s" % page[:16].hex()


# ---- processes ---------------------------------------------------------------

class Qemu:
    """A QEMU process: -M none, one file-backed RAM block ram0, -S, one
    QMP unix monitor (self.q, negotiated)."""

    def __init__(self, version, size, tmpdir, incoming=False, paused=True,
                 extra=(), ram_path=None, index=0):
        self.version = version
        self.binary = qemu_binary(version)
        self.size = size
        self.tmpdir = tmpdir
        self.name = "qemu%s-%s%s" % (version, "dst" if incoming else "src",
                                     index or "")
        self.sock_path = os.path.join(tmpdir, self.name + ".qmp")
        self.log_path = os.path.join(tmpdir, self.name + ".log")
        self.ram_path = ram_path or os.path.join(
            ram_dir(), "%s-%s.ram" % (os.path.basename(tmpdir), self.name))
        if not os.path.exists(self.ram_path):
            with open(self.ram_path, "wb") as f:
                f.truncate(size)
        self.args = ["-M", "none", "-m", str(size // MiB) + "M",
                     "-object", "memory-backend-file,id=ram0,size=%d,mem-path=%s,"
                     "share=on" % (size, self.ram_path),
                     "-machine", "memory-backend=ram0", "-nodefaults",
                     "-display", "none",
                     "-qmp", "unix:%s,server=on,wait=off" % self.sock_path]
        if paused:
            self.args.append("-S")
        if incoming:
            self.args += ["-incoming", "defer"]
        self.args += list(extra)
        self.proc = None
        self.q = None
        self.expected_rc = 0

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary] + self.args,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.sock_path) or
                 self.proc.poll() is not None, what=self.name + " QMP socket")
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited early: %s" % (self.name, self.read_log()))
        self.q = QMP(self.sock_path)
        self.q.negotiate()
        return self

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=30.0):
        """quit over QMP (SIGTERM if that fails); returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.q.execute("quit")
            except (OSError, ValueError, AttributeError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "killed after %ss" % timeout
        if self.q:
            self.q.close()
        self.log.close()
        return rc

    def cleanup(self, keep=False):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not keep and os.path.exists(self.ram_path):
            os.unlink(self.ram_path)


def migd_machine_args(size, ram_path=None, paused=False, incoming=False):
    """migd's command line for the same machine as Qemu(): block ram0,
    file-backed when ram_path is given, anonymous otherwise."""
    if ram_path:
        backend = ("memory-backend-file,id=ram0,size=%d,mem-path=%s,share=on"
                   % (size, ram_path))
    else:
        backend = "memory-backend-ram,id=ram0,size=%d" % size
    args = ["-M", "none", "-m", str(size // MiB) + "M", "-object", backend,
            "-machine", "memory-backend=ram0", "-nodefaults", "-display", "none"]
    if paused:
        args.append("-S")
    if incoming:
        args += ["-incoming", "defer"]
    return args


# ---- QMP helpers -------------------------------------------------------------

def set_caps(q, **caps):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v} for k, v in caps.items()])


def set_params(q, **params):
    if params:
        q.cmd("migrate-set-parameters",
              {k.replace("_", "-"): v for k, v in params.items()})


def wait_status(q, statuses, timeout=120, what="migration"):
    last = {}

    def done():
        nonlocal last
        last = q.cmd("query-migrate")
        return last.get("status") in statuses
    try:
        wait_for(done, timeout=timeout, what="%s status in %s" % (what, statuses))
    except TimeoutError:
        raise TimeoutError("%s: still %s after %ss" % (what, last, timeout))
    return last


def drain_events(q, wait=0.2):
    """Reads what the monitor has sent (events) for `wait` seconds."""
    q.sock.settimeout(wait)
    try:
        while True:
            msg = q.recv()
            if msg is None:
                break
            if "event" in msg:
                q.events.append(msg)
    except (TimeoutError, OSError):
        pass
    finally:
        q.sock.settimeout(10.0)


def event_trace(q):
    """The events received so far, in order, as short strings
    ("MIGRATION setup", "RESUME", ...); drained."""
    drain_events(q)
    out = []
    for e in q.events:
        data = e.get("data") or {}
        out.append(" ".join([e["event"]] + [str(data[k]) for k in sorted(data)]))
    q.events = []
    return out


def migration_events(q):
    """Status list of the MIGRATION events received so far (drained)."""
    drain_events(q)
    out = [e["data"]["status"] for e in q.events if e["event"] == "MIGRATION"]
    q.events = [e for e in q.events if e["event"] != "MIGRATION"]
    return out


def migd_digest(q):
    """{block: sha256 hex} of a migd's RAM."""
    return {b["block"]: b["digest"]
            for b in q.cmd("x-query-ram-digest", {"algorithm": "sha256"})}


def fill_migd_workload(q, content="random", timeout=120):
    """migd's own one-pass fill (x-guest-workload), then idle."""
    q.cmd("x-guest-workload", {"dirty-rate": 0, "pattern": "sequential",
                               "content": content, "passes": 1})
    wait_for(lambda: q.cmd("x-guest-workload").get("finished"),
             timeout=timeout, what="migd RAM filled")
    q.cmd("x-guest-workload", {"dirty-rate": "idle"})


# ---- the test case -----------------------------------------------------------

class Case:
    """One interop migration: who sends, who receives, and how."""

    def __init__(self, version, direction, transport="tcp", channels=0,
                 zpd=None, content="random", size=256 * MiB,
                 migd_ram="file", src_running=False, dst_paused=False,
                 fill="file", dirty_rate=0):
        self.version = version          # QEMU peer: "7.2" / "10.0"
        self.direction = direction      # "to-migd" / "from-migd"
        self.transport = transport      # "tcp" / "unix"
        self.channels = channels        # 0 = no multifd
        self.zpd = zpd                  # zero-page-detection, None = default
        self.content = content
        self.size = size
        self.migd_ram = migd_ram        # "file" / "anon" (memory-backend-ram)
        self.src_running = src_running  # `cont` the source first
        self.dst_paused = dst_paused    # -S on the destination
        self.fill = fill                # migd source: "file" / "workload"
        self.dirty_rate = dirty_rate    # migd source: MB/s written while
        if dirty_rate:                  # migrating (live; needs vCPUs)
            self.src_running = True
        if direction == "from-migd" and migd_ram == "anon":
            self.fill = "workload"      # no file to write into
        if self.fill == "workload":     # migd's vCPUs only run when started
            self.src_running = True

    def __repr__(self):
        return "%s %s %s mfd=%d zpd=%s %s %dM%s" % (
            self.version, self.direction, self.transport, self.channels,
            self.zpd, self.content, self.size // MiB,
            " dirtying %d MB/s" % self.dirty_rate if self.dirty_rate else "")


def expected_dst_runstate(src_runstate, dst_paused):
    """The runstate QEMU's destination ends in (process_incoming_migration_bh
    in 7.2/10.0): a running source (globalstate 'running') starts the
    destination unless -S, which leaves it 'paused'; any other source state
    is copied."""
    if src_runstate == "running":
        return "paused" if dst_paused else "running"
    return src_runstate


class InteropTestCase(MigdTestCase):
    """Starts migd and QEMU processes, runs Cases, checks RAM, statuses,
    events and runstates on both ends."""

    def setUp(self):
        super().setUp()
        self.tmpdir = tempfile.mkdtemp(prefix="migd-interop-")
        self._qemus = []
        self._files = []
        self.relay = None

    def tearDown(self):
        failed = self._outcome_failed()
        keep = failed and "1" in (os.environ.get("INTEROP_KEEP"),
                                  os.environ.get("INTEROP_CAPTURE"))
        problems = []
        if self.relay:
            self.relay.close()
            if failed:
                self.decode_capture()
        for qm in self._qemus:  # every one, whatever happens to the others
            try:
                rc = qm.stop()
                if rc not in (qm.expected_rc, None):
                    problems.append("%s exited %s: %s"
                                    % (qm.name, rc, qm.read_log()[-2000:]))
            except Exception as e:  # noqa: BLE001 - reported below
                problems.append("%s: stopping: %r" % (qm.name, e))
            finally:
                qm.cleanup(keep)
        for path in self._files:
            if not keep and os.path.exists(path):
                os.unlink(path)
        try:
            super().tearDown()
        finally:
            if keep:
                print("\nkept %s" % self.tmpdir)
            else:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems:
            self.fail("\n".join(problems))

    def decode_capture(self):
        """capture/decoded.txt: what each captured connection holds."""
        capdir = self.relay.capdir
        with open(os.path.join(capdir, "decoded.txt"), "w") as out:
            for n in range(self.relay.count):
                path = os.path.join(capdir, "conn-%d.bin" % n)
                with open(path, "rb") as f:
                    data = f.read()
                magic = data[:4].hex()
                out.write("== conn-%d.bin: %d bytes, starts %s\n"
                          % (n, len(data), magic))
                lines = (decode_main(data) if magic == "5145564d"
                         else decode_multifd(data))
                out.write("\n".join(lines) + "\n")

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        return outcome is not None and not outcome.success

    def qemu(self, version, size, **kw):
        qm = Qemu(version, size, self.tmpdir, index=len(self._qemus), **kw)
        self._qemus.append(qm)
        return qm

    def ram_file(self, name, size):
        path = os.path.join(ram_dir(), "%s-%s.ram"
                            % (os.path.basename(self.tmpdir), name))
        with open(path, "wb") as f:
            f.truncate(size)
        self._files.append(path)
        return path

    def start_migd(self, case, incoming):
        ram_path = None
        if case.migd_ram == "file":
            ram_path = self.ram_file("migd-" + ("dst" if incoming else "src"),
                                     case.size)
        paused = case.dst_paused if incoming else not case.src_running
        args = migd_machine_args(case.size, ram_path, paused, incoming)
        if case.version == "7.2":
            args += COMPAT_72_GLOBALS
        if not incoming and (case.fill == "workload" or case.dirty_rate):
            args += ["-smp", "2"]
        tmpdir = os.path.join(self.tmpdir, "migd-dst" if incoming else "migd-src")
        os.mkdir(tmpdir)
        m = self.migd(args, tmpdir=tmpdir)
        m.ram_path = ram_path
        return m

    def uri(self):
        if self.transport_ == "tcp":
            return "tcp:127.0.0.1:%d" % free_tcp_port()
        return "unix:%s" % os.path.join(self.tmpdir, "mig.sock")

    def setup_side(self, q, case, is_qemu, source):
        set_caps(q, events=True)
        params = {}
        if source:  # nothing dirties RAM: no need for QEMU's 128 MiB/s
            params["max_bandwidth"] = SOURCE_BANDWIDTH
        if case.channels:
            set_caps(q, multifd=True)
            params["multifd_channels"] = case.channels
        zpd = case.zpd
        if not is_qemu and case.version == "7.2":
            zpd = "legacy"
        if zpd and not (is_qemu and case.version == "7.2"):
            params["zero_page_detection"] = zpd
        set_params(q, **params)

    def run_case(self, case, timeout=180, capture=False):
        """Runs one migration; returns (src_info, dst_info). capture: put
        a relay in between (self.relay.capdir holds the streams)."""
        t0 = time.monotonic()
        self.transport_ = case.transport
        to_migd = case.direction == "to-migd"
        if to_migd:
            dst = self.start_migd(case, incoming=True)
            qd = dst.qmp()
            src = self.qemu(case.version, case.size, paused=True)
            fill_ram_file(src.ram_path, case.size, case.content)
            src.start()
            qs = src.q
        else:
            dst = self.qemu(case.version, case.size, incoming=True,
                            paused=case.dst_paused).start()
            qd = dst.q
            src = self.start_migd(case, incoming=False)
            qs = src.qmp()
            if case.fill == "file":
                fill_ram_file(src.ram_path, case.size, case.content)
        self.setup_side(qs, case, is_qemu=to_migd, source=True)
        self.setup_side(qd, case, is_qemu=not to_migd, source=False)
        if case.src_running:
            qs.cmd("cont")
        if not to_migd and case.fill == "workload":
            fill_migd_workload(qs, case.content)
        if case.dirty_rate:  # pages keep changing, some to zero and back
            qs.cmd("x-guest-workload", {
                "dirty-rate": case.dirty_rate, "pattern": "random",
                "working-set": LIVE_WORKING_SET, "content": "mixed"})
            set_params(qs, max_bandwidth=LIVE_BANDWIDTH)
        src_state = qs.cmd("query-status")["status"]
        uri = src_uri = self.uri()
        qd.cmd("migrate-incoming", uri=uri)
        if capture or os.environ.get("INTEROP_CAPTURE") == "1":
            self.relay = Relay(uri, os.path.join(self.tmpdir, "capture"))
            src_uri = self.relay.uri
        qs.cmd("migrate", uri=src_uri)
        sinfo = wait_status(qs, FINAL, timeout, "source (%s)" % case)
        dinfo = wait_status(qd, FINAL, 60, "destination (%s)" % case)
        self.assertEqual((sinfo["status"], dinfo["status"]),
                         ("completed", "completed"),
                         "%s\nsource: %s\ndestination: %s"
                         % (case, sinfo, dinfo))
        self.check_ram(case, src, dst, qs, qd)
        self.check_states(case, qs, qd, src_state)
        if to_migd:  # QEMU's destination shows nothing but the status
            self.assertEqual(dinfo, {"status": "completed"}, case)
        self.elapsed = time.monotonic() - t0
        return sinfo, dinfo

    def check_ram(self, case, src, dst, qs, qd):
        if case.direction == "to-migd":
            want = file_sha256(src.ram_path)
            got = migd_digest(qd)
            if dst.ram_path and got.get("ram0") != want:
                self.fail_ram(case, src.ram_path, dst.ram_path)
            self.assertEqual(got, {"ram0": want}, case)
        else:
            want = migd_digest(qs)
            got = file_sha256(dst.ram_path)
            if src.ram_path and want.get("ram0") != got:
                self.fail_ram(case, src.ram_path, dst.ram_path)
            self.assertEqual(want, {"ram0": got}, case)

    def fail_ram(self, case, src_path, dst_path):
        n, first = diff_pages(src_path, dst_path)
        lines = ["%s: %d pages differ; first:" % (case, n)]
        for off in first:
            lines.append("  0x%x: source %s, destination %s" % (
                off, describe_page(src_path, off), describe_page(dst_path, off)))
        self.fail("\n".join(lines))

    def check_states(self, case, qs, qd, src_state):
        """Events and runstates on both ends, as QEMU's would be."""
        self.assertEqual(migration_events(qd), ["setup", "active", "completed"],
                         "destination MIGRATION events, %s" % case)
        sev = migration_events(qs)
        self.assertEqual(sev[:1] + sev[-1:], ["setup", "completed"],
                         "source MIGRATION events %s, %s" % (sev, case))
        self.assertIn("active", sev)
        self.assertEqual(qs.cmd("query-status")["status"], "postmigrate", case)
        want = expected_dst_runstate(src_state, case.dst_paused)
        self.assertEqual(qd.cmd("query-status")["status"], want,
                         "destination runstate, source was %s, %s"
                         % (src_state, case))
        resumed = [e for e in qd.events if e["event"] == "RESUME"]
        self.assertEqual(len(resumed), 1 if want == "running" else 0,
                         "destination RESUME events %s, %s" % (qd.events, case))


# ---- the matrix --------------------------------------------------------------

DIRECTIONS = ("to-migd", "from-migd")
MODES = (0, 1, 2, 4)  # multifd channels, 0 = single stream
TRANSPORTS = ("tcp", "unix")
CONTENTS = ("random", "zero", "mixed")
SIZES = (256 * MiB, 1 * GiB)


def full_run():
    """INTEROP_FULL=1 (make check-long) runs the whole cross product."""
    return os.environ.get("INTEROP_FULL") == "1"


def full_matrix(version):
    """Every direction x mode x transport x zero-page-detection x content
    x size. QEMU 7.2 has no zero-page-detection (migd uses legacy)."""
    zpds = ("multifd", "legacy") if version == "10.0" else (None,)
    return [Case(version, d, t, ch, z, c, sz)
            for d in DIRECTIONS for ch in MODES for t in TRANSPORTS
            for z in zpds for c in CONTENTS for sz in SIZES] + [
        Case(version, "from-migd", t, ch, z, "mixed", 256 * MiB,
             dirty_rate=LIVE_DIRTY_RATE)
        for ch in MODES for t in TRANSPORTS for z in zpds]


def quick_matrix(version):
    """A representative subset for `make check`: every direction x mode x
    zero-page-detection (x transport for 7.2), transports and contents
    rotating, runstate and RAM-backing variants spread over them, and one
    1 GiB case per direction, two live migrations (migd's guest writing
    while it migrates to QEMU)."""
    zpds = ("multifd", "legacy") if version == "10.0" else (None, None)
    cases = []
    for d in DIRECTIONS:
        for ch in MODES:
            for z in zpds:
                i = len(cases)
                cases.append(Case(
                    version, d, TRANSPORTS[(i + i // 4) % 2], ch, z,
                    CONTENTS[i % 3], 256 * MiB,
                    migd_ram="anon" if i % 5 == 3 else "file",
                    src_running=i % 4 == 1, dst_paused=i % 8 in (2, 5),
                    fill="workload" if d == "from-migd" and i % 6 in (3, 4)
                    else "file"))
    for d in DIRECTIONS:
        cases.append(Case(version, d, "unix" if d == "to-migd" else "tcp",
                          2, zpds[0], "mixed", 1 * GiB))
    for ch, t, z in ((0, "unix", zpds[1]), (4, "tcp", zpds[0])):
        cases.append(Case(version, "from-migd", t, ch, z, "mixed", 256 * MiB,
                          dirty_rate=LIVE_DIRTY_RATE))
    return cases


def case_name(case):
    parts = [case.direction.replace("-", "_"),
             "mfd%d" % case.channels if case.channels else "single",
             case.transport]
    if case.zpd:
        parts.append("zpd_" + case.zpd)
    parts += [case.content, "%dM" % (case.size // MiB)]
    if case.migd_ram == "anon":
        parts.append("anon")
    if case.dirty_rate:
        parts.append("live%d" % case.dirty_rate)
    if case.fill == "workload":
        parts.append("workload")
    elif case.src_running and not case.dirty_rate:
        parts.append("srcrunning")
    if case.dst_paused:
        parts.append("dstS")
    return "test_" + "_".join(parts)


def add_matrix(cls, version):
    """Adds one test method per Case of the matrix to cls."""
    cases = full_matrix(version) if full_run() else quick_matrix(version)
    for case in cases:
        def test(self, case=case):
            self.run_case(case)
        test.__doc__ = None
        name = case_name(case)
        assert not hasattr(cls, name), name
        setattr(cls, name, test)
    return cls


def main():
    """`python3 -m tests.interop.qemutest`: prints the QEMU binaries found;
    exits 1 when there is none (make check-interop then skips)."""
    found = 0
    for version in ("7.2", "10.0"):
        path = qemu_binary(version)
        found += path is not None
        print("interop: QEMU %s: %s" % (version, path or "not found (%s)"
                                         % wanted_binary(version)))
    return 0 if found else 1


if __name__ == "__main__":
    raise SystemExit(main())
