"""util.py — sizes, /proc sampling (process and thread CPU), machine info,
statistics and logging shared by migperf's modules. Driver thread only.
"""
import os
import platform
import re
import statistics
import subprocess
import sys
import time

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
GB = 1e9
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
UNITS = {"": 1, "B": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}


def parse_size(text):
    """'128M', '1.5G', '4096' -> bytes (binary suffixes, as QEMU's)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?\s*",
                     str(text), re.I)
    if not m:
        raise ValueError("invalid size '%s'" % text)
    return int(float(m.group(1)) * UNITS[m.group(2).upper()])


def fmt_size(n):
    for unit, mult in (("G", GiB), ("M", MiB), ("K", KiB)):
        if n >= mult and n % mult == 0:
            return "%d%s" % (n // mult, unit)
    return str(n)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---- /proc -------------------------------------------------------------------

def _stat_ticks(path):
    """(comm, utime+stime ticks) of a /proc stat file, or None."""
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        return None
    head, tail = data.rsplit(")", 1)
    fields = tail.split()
    return head.split("(", 1)[1], int(fields[11]) + int(fields[12])


def cpu_snapshot(pid):
    """{'t': monotonic, 'proc': ticks, 'threads': {tid: (comm, ticks)}}."""
    if not pid:
        return None
    snap = {"t": time.monotonic(), "threads": {}}
    proc = _stat_ticks("/proc/%d/stat" % pid)
    if proc is None:
        return None
    snap["proc"] = proc[1]
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tids = []
    for tid in tids:
        st = _stat_ticks("/proc/%d/task/%s/stat" % (pid, tid))
        if st:
            snap["threads"][int(tid)] = st
    return snap


def cpu_delta(a, b):
    """CPU use between two snapshots: process % and per-thread % (100 = one
    core busy), plus the seconds of CPU used."""
    if not a or not b or b["t"] <= a["t"]:
        return None
    dt = b["t"] - a["t"]
    pct = lambda ticks: round(100.0 * ticks / CLK_TCK / dt, 1)
    threads = {}
    for tid, (comm, ticks) in b["threads"].items():
        before = a["threads"].get(tid, (comm, 0))[1]
        threads[str(tid)] = {"name": comm, "pct": pct(ticks - before)}
    return {"pct": pct(b["proc"] - a["proc"]),
            "cpu_s": (b["proc"] - a["proc"]) / CLK_TCK, "threads": threads}


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_busy(window=1.0):
    """Share of all CPUs busy over `window` seconds (/proc/stat)."""
    def snap():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
        return sum(vals), vals[3] + vals[4]
    t0, i0 = snap()
    time.sleep(window)
    t1, i1 = snap()
    return 1 - (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


def wait_quiet(limit, max_wait):
    """Waits up to max_wait s until others use less than `limit` of the
    CPUs; returns the last busy share seen."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy(0.5)
    while busy >= limit and time.monotonic() < deadline:
        busy = cpu_busy(0.5)
    return busy


def read_first(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def machine_info():
    model = ""
    for line in read_first("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in read_first("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always",
                             "--dirty"], capture_output=True, text=True)
    return {"host": platform.node(), "cpu": model, "cores": os.cpu_count(),
            "ram_gib": round(mem_kb / (1 << 20), 1),
            "kernel": platform.release(),
            "thp": read_first("/sys/kernel/mm/transparent_hugepage/enabled"),
            "loadavg": read_first("/proc/loadavg").split()[:3],
            "commit": commit.stdout.strip()}


# ---- statistics ----------------------------------------------------------------

def stat(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def fmt_stat(s, prec=2):
    if s is None:
        return "-"
    m = "%.*f" % (prec, s["median"])
    if s["n"] == 1:
        return m
    return "%s (%.*f-%.*f)" % (m, prec, s["min"], prec, s["max"])
