#!/usr/bin/env python3
"""bench_live.py — `make bench`: live-migration figures for docs/benchmarks.md.

Drives real migd processes over QMP (the helpers of tests/system/migdtest.py)
and measures, against the machine's own limits taken in the same run:

  limits  loopback TCP (iperf3, 1 and 2 streams), memcpy, first touch of
          fresh memory (4 KiB / THP, cold), zero scan (build/migd-limits)
  random  N GiB of random RAM, source stopped, single stream and multifd
          1/2/4 channels, destination RAM anonymous (default) and
          prealloc=on, and anonymous with x-thp=on (2/4 channels): GB/s,
          CPU s per GB of each process, downtime
  zero    N GiB of zero RAM (written with zeros, and never touched): time
          and bytes on the wire
  live    a converging workload: measured vs expected downtime
  rss     sender overhead: source RSS beyond guest RAM, 1/4/8 channels
  profile (only with --only) perf record -g of one destination

Every migration's RAM is verified with x-query-ram-digest on both sides; a
mismatch aborts the suite. Each figure is the median of the runs with
min/max; compared configurations run in alternating order run to run.
Prints markdown tables on stdout, progress on stderr, raw results as JSON
(--json). Python 3 stdlib only; to be replaced by migperf.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GiB = 1 << 30
MiB = 1 << 20
GB = 1e9


# ---- processes and /proc ---------------------------------------------------

def proc_cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def mapping_rss_kb(pid, size):
    """Rss of the mapping that is exactly `size` bytes (the guest RAM)."""
    want, cur = size // 1024, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "Size:":
                cur = int(parts[1])
            elif parts[0] == "Rss:" and cur == want:
                return int(parts[1])
    return None


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_busy(window=1.0):
    """Share of all CPUs busy over `window` seconds (from /proc/stat). Taken
    between runs, when this suite's own processes are idle, it is the load
    from others; the load average would still count our last run."""
    def snap():
        with open("/proc/stat") as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
        return sum(vals), vals[3] + vals[4]
    t0, i0 = snap()
    time.sleep(window)
    t1, i1 = snap()
    return 1 - (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


def wait_quiet(limit, max_wait):
    """Waits (up to max_wait s) until other work uses less than `limit` of
    the CPUs: on this 2-core machine it skews every figure. Returns the
    last busy share seen."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy >= limit and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---- statistics and tables -------------------------------------------------

def stat(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def fmt(s, prec=2):
    if s is None:
        return "–"
    m = "%.*f" % (prec, s["median"])
    if s["n"] == 1:
        return m
    return "%s (%.*f–%.*f)" % (m, prec, s["min"], prec, s["max"])


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ---- machine ---------------------------------------------------------------

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
    cmdline = read_first("/proc/cmdline").split()
    reporting = [a for a in cmdline if a.startswith("page_reporting")]
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always",
                             "--dirty"], capture_output=True, text=True)
    return {"cpu": model, "cores": os.cpu_count(),
            "ram_gib": round(mem_kb / (1 << 20), 1),
            "kernel": platform.release(),
            "thp": read_first("/sys/kernel/mm/transparent_hugepage/enabled"),
            "thp_defrag": read_first(
                "/sys/kernel/mm/transparent_hugepage/defrag"),
            "page_reporting": " ".join(reporting),
            "commit": commit.stdout.strip()}


# ---- limits ----------------------------------------------------------------

def iperf3_once(streams, seconds):
    """Sum of the receivers' GB/s of `streams` iperf3 pairs run at once.
    One process per stream: iperf3 3.12 runs all -P streams on one thread,
    while migd gives each multifd channel its own thread. Writes of 512 KiB,
    the payload of one multifd packet."""
    from tests.system.migdtest import free_tcp_port
    ports = [free_tcp_port() for _ in range(streams)]
    servers = [subprocess.Popen(["iperf3", "-s", "-1", "-p", str(p)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for p in ports]
    try:
        time.sleep(0.5)   # let the servers listen
        clients = [subprocess.Popen(["iperf3", "-c", "127.0.0.1", "-p", str(p),
                                     "-t", str(seconds), "-l", "512K", "-J"],
                                    stdout=subprocess.PIPE, text=True)
                   for p in ports]
        outs = [json.loads(c.communicate()[0] or "{}") for c in clients]
        if any("error" in o or "end" not in o for o in outs):
            return None
        return sum(o["end"]["sum_received"]["bits_per_second"]
                   for o in outs) / 8 / GB
    finally:
        for srv in servers:
            if srv.poll() is None:
                srv.kill()
            srv.wait()


def iperf3_gbs(streams, seconds):
    for _ in range(3):
        gbs = iperf3_once(streams, seconds)
        if gbs is not None:
            return gbs
    raise RuntimeError("iperf3 failed 3 times")


def run_limits(cfg):
    runs = []
    for r in range(cfg.limit_runs):
        one = {"busy": wait_quiet(cfg.busy_limit, cfg.load_wait)}
        order = (1, 2) if r % 2 == 0 else (2, 1)
        for n in order:
            one["tcp_%d_gbs" % n] = iperf3_gbs(n, cfg.iperf_seconds)
        out = subprocess.run([cfg.limits_bin, "-c", str(cfg.cold_wait),
                              "-t", str(cfg.touch_mib), str(cfg.limits_mib)],
                             capture_output=True, text=True, check=True)
        one.update(json.loads(out.stdout))
        log("  limits run %d: %s" % (r + 1, one))
        runs.append(one)
    return runs


def limits_table(runs):
    keys = [("tcp_1_gbs", "loopback TCP, 1 stream (iperf3)"),
            ("tcp_2_gbs", "loopback TCP, 2 streams (2 iperf3 pairs)"),
            ("memcpy_gbs", "memcpy, 1 thread"),
            ("zero_scan_gbs", "zero-page scan (mfd_page_is_zero)"),
            ("first_touch_4k_warm_gbs", "first touch 4 KiB, warm"),
            ("first_touch_4k_cold_gbs", "first touch 4 KiB, cold"),
            ("first_touch_thp_cold_gbs", "first touch THP, cold"),
            ("first_touch_4k_cold_2t_gbs", "first touch 4 KiB, cold, "
             "2 threads")]
    rows = [(label, fmt(stat([r.get(k) for r in runs])))
            for k, label in keys]
    return table(["limit", "GB/s median (min–max)"], rows)


# ---- migrations --------------------------------------------------------------

# Destination RAM. The backend's id is the RAM block's name, so it is
# "ram", the name of the source's plain -m block (QEMU's way to replace the
# default RAM backend).
def backend(size, opts):
    return ["-object", "memory-backend-ram,id=ram,size=%s%s" % (size, opts),
            "-machine", "memory-backend=ram"]


DST_ARGS = {
    "anon": lambda size: ["-m", size],
    "anon-thp": lambda size: backend(size, ",x-thp=on"),
    "prealloc": lambda size: backend(size, ",prealloc=on"),
}


def set_caps(q, **caps):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": k.replace("_", "-"), "state": v}
        for k, v in caps.items()])


def set_params(q, **params):
    q.cmd("migrate-set-parameters",
          {k.replace("_", "-"): v for k, v in params.items()})


def digest(q):
    return [(b["block"], b["digest"]) for b in q.cmd("x-query-ram-digest")]


class Source:
    """A source migd whose RAM is filled once; reused run after run (cont +
    stop after each migration brings it back from postmigrate)."""

    def __init__(self, cfg, size, content, smp=2):
        self.size = size
        self.m = new_migd(["-m", size, "-smp", str(smp)])
        try:
            self._fill(content)
        except BaseException:
            self.close()
            raise
        self.running = True

    def _fill(self, content):
        from tests.system.migdtest import wait_for
        self.q = self.m.qmp()
        if content is None:   # fresh RAM: zero, never touched
            self.ram_bytes = sum(b["size"] for b in
                                 self.q.cmd("x-query-ram-digest"))
            return
        self.q.cmd("x-guest-workload", {"dirty-rate": 0,
                                        "pattern": "sequential",
                                        "content": content, "passes": 1})
        wait_for(lambda: self.q.cmd("x-guest-workload").get("finished"),
                 timeout=600, what="RAM filled")
        self.q.cmd("x-guest-workload", {"dirty-rate": "idle"})
        self.ram_bytes = sum(b["size"] for b in
                             self.q.cmd("x-query-ram-digest"))

    def stop_guest(self):
        self.q.cmd("stop")
        self.running = False
        self.digest = digest(self.q)

    def after_migration(self):
        """postmigrate → running (→ paused again when it was stopped)."""
        self.q.cmd("cont")
        if not self.running:
            self.q.cmd("stop")

    def close(self):
        self.m.stop(timeout=60)
        self.m.cleanup()


def new_migd(args):
    """A migd (tests/system/migdtest.py) given up to 120 s to come up:
    prealloc=on faults in all RAM before the monitor exists."""
    from tests.system import migdtest

    class BenchMigd(migdtest.Migd):
        def start(self):
            self.stderr = open(self.log_path + ".stderr", "w+")
            self.proc = subprocess.Popen(
                self.command_line(), stdout=subprocess.DEVNULL,
                stderr=self.stderr, stdin=subprocess.DEVNULL)
            migdtest.wait_for(lambda: os.path.exists(self.sock_path) or
                              self.proc.poll() is not None,
                              timeout=120, what="QMP socket")
            if self.proc.poll() is not None:
                raise RuntimeError("migd exited early: %s" %
                                   self.read_stderr())
    return BenchMigd(args)


def start_dst(cfg, size, kind):
    return new_migd(DST_ARGS[kind](size) + ["-incoming", "defer"])


def configure(qs, qd, channels, **src_params):
    for q in (qs, qd):
        set_caps(q, multifd=channels > 0)
        if channels:
            set_params(q, multifd_channels=channels)
    set_params(qs, **src_params)


class Sampler:
    """Polls the source's query-migrate (and optionally its RSS) until the
    migration ends; keeps the last expected-downtime seen while active."""

    def __init__(self, q, pid, interval, rss=False):
        self.q, self.pid, self.interval, self.rss = q, pid, interval, rss
        self.expected = None
        self.max_rss_kb = 0
        self.samples = 0

    def run(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rss:
                self.max_rss_kb = max(self.max_rss_kb,
                                      proc_status_kb(self.pid, "VmRSS"))
            info = self.q.cmd("query-migrate")
            self.samples += 1
            st = info.get("status")
            if st in ("completed", "failed", "cancelled"):
                return info
            if st == "active" and "expected-downtime" in info:
                self.expected = info["expected-downtime"]
            time.sleep(self.interval)
        raise TimeoutError("migration did not end in %d s" % timeout)


def wait_dst(qd, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = qd.cmd("query-migrate")
        if info.get("status") in ("completed", "failed"):
            return info
        time.sleep(0.02)
    raise TimeoutError("destination did not finish")


def migrate_once(cfg, src, channels, dst_kind, interval=0.05, rss=False,
                 **src_params):
    """One migration to a fresh destination; returns the figures."""
    from tests.system.migdtest import free_tcp_port
    t0 = time.monotonic()
    dst = start_dst(cfg, src.size, dst_kind)
    try:
        qs, qd = src.q, dst.qmp()
        dst_start_s = time.monotonic() - t0   # prealloc=on: the prefault
        configure(qs, qd, channels, **src_params)
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        spid, dpid = src.m.proc.pid, dst.proc.pid
        guest_rss = 0
        if rss:   # the guest RAM mapping, else all of it (filled)
            guest_rss = mapping_rss_kb(spid, src.ram_bytes) or \
                src.ram_bytes // 1024
        base_rss = proc_status_kb(spid, "VmRSS") if rss else 0
        c0 = (proc_cpu_s(spid), proc_cpu_s(dpid))
        qs.cmd("migrate", uri=uri)
        sampler = Sampler(qs, spid, interval, rss)
        info = sampler.run(cfg.timeout)
        c1s = proc_cpu_s(spid)
        dinfo = wait_dst(qd, 60)
        c1d = proc_cpu_s(dpid)
        if info.get("status") != "completed" or \
                dinfo.get("status") != "completed":
            raise RuntimeError("migration failed: %s / %s" % (info, dinfo))
        if src.running:
            src.digest = digest(qs)   # postmigrate: RAM frozen
        if digest(qd) != src.digest:
            raise RuntimeError("RAM digests differ: benchmark void")
        res = figures(info, c1s - c0[0], c1d - c0[1])
        res.update(expected_downtime_ms=sampler.expected, load=loadavg(),
                   dst_start_s=dst_start_s)
        if rss:
            res.update(guest_rss_mib=guest_rss / 1024,
                       idle_overhead_mib=(base_rss - guest_rss) / 1024,
                       overhead_mib=(sampler.max_rss_kb - guest_rss) / 1024)
        return res
    finally:
        dst.stop(timeout=60)
        dst.cleanup()
        src.after_migration()


def precopy_rate(info):
    """GB/s before the source stopped: what max-bandwidth limits (QEMU lifts
    the limit for the final, downtime, part)."""
    secs = (info["total-time"] - info.get("downtime", 0)) / 1000
    return info["ram"].get("precopy-bytes", 0) / GB / secs if secs > 0 \
        else None


def figures(info, src_cpu, dst_cpu):
    ram = info["ram"]
    gb = ram["total"] / GB
    secs = info["total-time"] / 1000
    return {"total_time_s": secs, "gbs": gb / secs if secs else None,
            "downtime_ms": info.get("downtime"),
            "setup_ms": info.get("setup-time"),
            "transferred": ram["transferred"],
            "multifd_bytes": ram.get("multifd-bytes"),
            "dirty_sync_count": ram.get("dirty-sync-count"),
            "downtime_mb": ram.get("downtime-bytes", 0) / 1e6,
            "precopy_gbs": precopy_rate(info),
            "src_cpu_s_per_gb": src_cpu / gb, "dst_cpu_s_per_gb": dst_cpu / gb,
            "src_cpu_s": src_cpu, "dst_cpu_s": dst_cpu}


def run_matrix(cfg, src, configs, runs, label, **kw):
    """Runs every configuration `runs` times, alternating the order run to
    run; waits cold_wait s before each so freed memory is reported."""
    results = {c: [] for c in configs}
    for r in range(runs):
        order = configs if r % 2 == 0 else list(reversed(configs))
        for c in order:
            busy = wait_quiet(cfg.busy_limit, cfg.load_wait)
            time.sleep(cfg.cold_wait)
            res = migrate_once(cfg, src, *c, **kw)
            res["busy_before"] = busy
            log("  %s run %d %s: %.2f GB/s, %.2f s, downtime %s ms, "
                "cpu src %.2f dst %.2f s/GB, others busy %.0f%%" % (
                    label, r + 1, c, res["gbs"] or 0, res["total_time_s"],
                    res["downtime_ms"], res["src_cpu_s_per_gb"],
                    res["dst_cpu_s_per_gb"], 100 * busy))
            results[c].append(res)
    return results


def chan_name(ch):
    return "single stream" if ch == 0 else "multifd %d" % ch


def run_random(cfg):
    configs = [(ch, kind) for kind in cfg.dst_kinds for ch in cfg.channels
               if kind != "anon-thp" or ch in cfg.thp_channels]
    src = Source(cfg, cfg.size, "random")
    try:
        src.stop_guest()
        return run_matrix(cfg, src, configs, cfg.runs, "random",
                          max_bandwidth=0)
    finally:
        src.close()


def random_table(results):
    rows = []
    for (ch, kind), runs in results.items():
        col = lambda k, p=2: fmt(stat([r[k] for r in runs]), p)
        rows.append((chan_name(ch), kind, col("gbs"), col("total_time_s"),
                     col("src_cpu_s_per_gb"), col("dst_cpu_s_per_gb"),
                     col("downtime_ms", 0), col("downtime_mb", 0),
                     col("dst_start_s")))
    return table(["channels", "destination RAM", "GB/s", "time s",
                  "src CPU s/GB", "dst CPU s/GB", "downtime ms",
                  "sent in downtime MB", "dst start-up s"], rows)


def run_zero(cfg):
    """Zero RAM two ways: written with zeros (resident: the source scans
    every page) and never touched (the source can skip what it knows was
    never populated)."""
    configs = [(ch, "anon") for ch in cfg.zero_channels]
    results = {}
    for content in ("zero", None):
        src = Source(cfg, cfg.size, content)
        try:
            src.stop_guest()
            res = run_matrix(cfg, src, configs, cfg.runs,
                             "zero/%s" % (content or "untouched"),
                             max_bandwidth=0)
        finally:
            src.close()
        label = "written with zeros" if content else "never touched"
        results.update({(ch, label): runs for (ch, _), runs in res.items()})
    return results


def zero_table(results):
    rows = []
    for (ch, label), runs in results.items():
        col = lambda k, p=2: fmt(stat([r[k] for r in runs]), p)
        rows.append((label, chan_name(ch), col("total_time_s", 3),
                     fmt(stat([r["transferred"] / MiB for r in runs]), 2),
                     col("gbs"), col("src_cpu_s_per_gb", 3),
                     col("dst_cpu_s_per_gb", 3), col("downtime_ms", 0)))
    return table(["source RAM", "channels", "time s", "on the wire MiB",
                  "GB/s (RAM)", "src CPU s/GB", "dst CPU s/GB",
                  "downtime ms"], rows)


def run_live(cfg):
    src = Source(cfg, cfg.live_size, "random")
    try:
        src.q.cmd("x-guest-workload", {
            "dirty-rate": cfg.live_rate, "working-set": cfg.live_ws,
            "pattern": "random", "content": "random"})
        configs = [(cfg.live_channels, "anon")]
        return run_matrix(cfg, src, configs, cfg.live_runs, "live",
                          max_bandwidth=1073741824, downtime_limit=300)
    finally:
        src.close()


def live_table(results):
    rows = []
    for (ch, kind), runs in results.items():
        col = lambda k, p=0: fmt(stat([r[k] for r in runs]), p)
        rows.append((chan_name(ch), col("downtime_ms"),
                     col("expected_downtime_ms"), col("dirty_sync_count"),
                     col("total_time_s", 2), col("precopy_gbs", 2),
                     col("downtime_mb"),
                     " ".join("%s/%s" % (r["downtime_ms"],
                                         r["expected_downtime_ms"])
                              for r in runs)))
    return table(["channels", "downtime ms", "expected-downtime ms",
                  "dirty syncs", "total time s", "precopy GB/s",
                  "sent in downtime MB",
                  "each run: measured/expected ms"], rows)


def run_rss(cfg):
    configs = [(ch, "anon") for ch in cfg.rss_channels]
    src = Source(cfg, cfg.rss_size, "random")
    try:
        src.stop_guest()
        return run_matrix(cfg, src, configs, cfg.rss_runs, "rss",
                          interval=0.02, rss=True, max_bandwidth=0)
    finally:
        src.close()


def rss_table(results):
    rows = []
    for (ch, kind), runs in results.items():
        col = lambda k, p=1: fmt(stat([r[k] for r in runs]), p)
        target = 32 + 2 * ch
        worst = max(r["overhead_mib"] for r in runs)
        rows.append((chan_name(ch), col("overhead_mib"),
                     col("idle_overhead_mib"), "%d" % target,
                     "yes" if worst <= target else "no"))
    return table(["channels", "RSS beyond guest RAM MiB (peak)",
                  "idle, before migrate MiB", "target MiB", "met"], rows)


def run_profile(cfg):
    """One migration (multifd 2 channels, default destination RAM) with
    `perf record -g` on the destination; returns perf's top symbols."""
    src = Source(cfg, cfg.size, "random")
    try:
        src.stop_guest()
        time.sleep(cfg.cold_wait)
        return profile_once(cfg, src)
    finally:
        src.close()


def profile_once(cfg, src):
    from tests.system.migdtest import free_tcp_port
    data = os.path.join(cfg.build, "bench-dst.perf.data")
    dst = start_dst(cfg, src.size, "anon")
    try:
        qd = dst.qmp()
        configure(src.q, qd, 2, max_bandwidth=0)
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        perf = subprocess.Popen(["perf", "record", "-g", "-o", data, "-p",
                                 str(dst.proc.pid)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1)   # perf attaches
        src.q.cmd("migrate", uri=uri)
        info = Sampler(src.q, src.m.proc.pid, 0.05).run(cfg.timeout)
        wait_dst(qd, 60)
        perf.send_signal(2)
        perf.wait()
    finally:
        dst.stop(timeout=60)
        dst.cleanup()
        src.after_migration()
    report = subprocess.run(["perf", "report", "-i", data, "--no-children",
                             "--stdio", "-g", "none", "--percent-limit", "2",
                             "--sort", "sym"],
                            capture_output=True, text=True).stdout
    lines = [ln.strip() for ln in report.splitlines()
             if ln.strip() and not ln.startswith("#")]
    return {"gbs": figures(info, 0, 0)["gbs"], "top": lines, "data": data}


def profile_table(res):
    return "%.2f GB/s; `perf report --no-children --sort sym` of the " \
        "destination (%s):\n\n```\n%s\n```" % (
            res["gbs"], res["data"], "\n".join(res["top"]))


# ---- targets of issue 3 ------------------------------------------------------

def median_of(runs, key):
    s = stat([r[key] for r in runs])
    return s["median"] if s else None


def check(rows, what, value, target, ok):
    if value is not None and target is not None:
        rows.append((what, value, target, "yes" if ok else "**no**"))


def random_targets(rows, res, tcp2):
    prefault = {ch: median_of(runs, "gbs") for (ch, kind), runs in
                res.items() if kind == "prealloc"}
    if tcp2 and 2 in prefault:
        check(rows, "prefaulted, multifd 2: GB/s ≥ 90% of TCP 2 streams",
              "%.2f" % prefault[2], "≥ %.2f" % (0.9 * tcp2),
              prefault[2] >= 0.9 * tcp2)
    for (ch, kind), runs in res.items():
        if kind == "prealloc" or ch not in prefault:
            continue
        gbs = median_of(runs, "gbs")
        check(rows, "%s, %s: within 20%% of prefaulted" % (
            chan_name(ch), kind), "%.2f" % gbs,
            "≥ %.2f" % (0.8 * prefault[ch]), gbs >= 0.8 * prefault[ch])


def targets_table(sections):
    rows = []
    limits = sections.get("limits")
    tcp2 = median_of(limits, "tcp_2_gbs") if limits else None
    if "random" in sections:
        random_targets(rows, sections["random"], tcp2)
    for (ch, kind), runs in sections.get("live", {}).items():
        dt = median_of(runs, "downtime_ms")
        check(rows, "live, %s: median downtime ≤ downtime-limit" %
              chan_name(ch), "%.0f ms" % dt, "≤ 300 ms", dt <= 300)
    for (ch, kind), runs in sections.get("rss", {}).items():
        worst = max(r["overhead_mib"] for r in runs)
        check(rows, "sender RSS beyond guest RAM, %s" % chan_name(ch),
              "%.1f MiB (worst run)" % worst, "≤ %d MiB" % (32 + 2 * ch),
              worst <= 32 + 2 * ch)
    return table(["target (issue 3)", "measured (median)", "target", "met"],
                 rows) if rows else None


# ---- driver ------------------------------------------------------------------

SECTIONS = ("limits", "random", "zero", "live", "rss")
EXTRA_SECTIONS = ("profile",)   # only with --only


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--quick", action="store_true",
                   help="1 GiB, fewer runs (BENCH_QUICK=1)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma-separated sections: %s (and %s)" % (
                       ",".join(SECTIONS), ",".join(EXTRA_SECTIONS)))
    p.add_argument("--runs", type=int, help="runs per configuration")
    p.add_argument("--size", help="guest RAM for random/zero (e.g. 4G)")
    p.add_argument("--channels", default="0,1,2,4",
                   help="random RAM: multifd channels, 0 = single stream")
    p.add_argument("--thp-channels", default="2,4",
                   help="random RAM: channel counts measured with anon-thp")
    p.add_argument("--dst", default="anon,anon-thp,prealloc",
                   help="random RAM: destination RAM kinds (%s)" %
                   ",".join(DST_ARGS))
    p.add_argument("--json", help="write raw results here")
    p.add_argument("--busy-limit", type=float, default=0.25,
                   help="before each run, wait until other processes use "
                   "less than this share of all CPUs")
    p.add_argument("--load-wait", type=float, default=30,
                   help="...but at most this many seconds before each run")
    p.add_argument("--section-load-wait", type=float, default=120,
                   help="...and this many before each section")
    return p.parse_args(argv)


def parse_size_mib(size):
    units = {"M": 1, "G": 1024, "T": 1 << 20}
    if size[-1:].upper() in units:
        return int(size[:-1]) * units[size[-1:].upper()]
    return int(size) >> 20


def configure_suite(a):
    q = a.quick
    a.size = a.size or ("1G" if q else "4G")
    a.runs = a.runs or (2 if q else 3)
    a.limit_runs = 1 if q else 3
    a.limits_mib = 512 if q else 1024
    a.touch_mib = parse_size_mib(a.size)
    a.iperf_seconds = 2 if q else 4
    a.cold_wait = 3
    a.channels = [int(c) for c in a.channels.split(",")]
    a.thp_channels = [int(c) for c in a.thp_channels.split(",")]
    a.dst_kinds = a.dst.split(",")
    if set(a.dst_kinds) - set(DST_ARGS):
        sys.exit("bench_live: unknown --dst kind in %s" % a.dst)
    a.zero_channels = [2, 0]
    a.live_size, a.live_ws, a.live_rate = "1G", 512 * MiB, 100
    a.live_channels = 2
    a.live_runs = 2 if q else 5
    a.rss_size = "512M" if q else "1G"
    a.rss_channels = [1, 4, 8]
    a.rss_runs = 1 if q else 3
    a.timeout = 600
    a.limits_bin = os.path.join(a.build, "migd-limits")
    a.sections = [s for s in a.only.split(",") if s]
    bad = set(a.sections) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if bad:
        sys.exit("bench_live: unknown sections: %s" % ", ".join(sorted(bad)))
    return a


SECTION_RUNNERS = {
    "limits": (run_limits, limits_table, "Machine limits"),
    "random": (run_random, random_table, "Random RAM, source stopped"),
    "zero": (run_zero, zero_table, "Zero RAM, source stopped"),
    "live": (run_live, live_table, "Converging live workload"),
    "rss": (run_rss, rss_table, "Sender overhead"),
    "profile": (run_profile, profile_table, "Destination profile"),
}


def header(cfg, info):
    lines = ["# migd live-migration benchmark%s" %
             (" (BENCH_QUICK)" if cfg.quick else ""), "",
             "- machine: %s, %d cores, %.1f GiB RAM, kernel %s" % (
                 info["cpu"], info["cores"], info["ram_gib"], info["kernel"]),
             "- THP enabled %s, defrag %s; %s" % (
                 info["thp"], info["thp_defrag"],
                 info["page_reporting"] or "no page_reporting option"),
             "- migd %s; guest %s (random/zero), live %s, rss %s; runs %d" % (
                 info["commit"], cfg.size, cfg.live_size, cfg.rss_size,
                 cfg.runs),
             "- limits: memcpy and zero scan over %d MiB, first touch over "
             "%d MiB (cold: %d s after freeing), iperf3 with 512 KiB writes "
             "for %d s" % (cfg.limits_mib, cfg.touch_mib, cfg.cold_wait,
                           cfg.iperf_seconds),
             "- figures: median (min–max) over runs; loopback TCP; shared "
             "machine (load average at start %.2f, others busy %.0f%% of "
             "the CPUs)" % (loadavg(), 100 * cpu_busy()), ""]
    return "\n".join(lines)


def main(argv):
    cfg = configure_suite(parse_args(argv))
    os.environ["MIGD_BUILD"] = os.path.abspath(cfg.build)
    sys.path.insert(0, ROOT)
    if "limits" in cfg.sections and not shutil.which("iperf3"):
        sys.exit("bench_live: iperf3 not found (make deps)")
    info = machine_info()
    results = {"machine": info, "config": {k: v for k, v in vars(cfg).items()
                                           if not callable(v)}}
    print(header(cfg, info), flush=True)
    t0 = time.monotonic()
    sections = {}
    for name in cfg.sections:
        run, render, title = SECTION_RUNNERS[name]
        busy = wait_quiet(cfg.busy_limit, cfg.section_load_wait)
        log("== %s (%.0f s elapsed, others busy %.0f%%)" % (
            name, time.monotonic() - t0, 100 * busy))
        res = run(cfg)
        sections[name] = res
        results[name] = [{"config": list(k), "runs": v}
                         for k, v in res.items()] \
            if name in ("random", "zero", "live", "rss") else res
        print("## %s\n\n%s\n" % (title, render(res)), flush=True)
        if cfg.json:   # after every section: a late failure keeps the rest
            with open(cfg.json, "w") as f:
                json.dump(results, f, indent=1)
    summary = targets_table(sections)
    if summary:
        print("## Targets\n\n%s\n" % summary)
    results["elapsed_s"] = time.monotonic() - t0
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump(results, f, indent=1)
    print("Suite time: %.0f s." % results["elapsed_s"])


if __name__ == "__main__":
    main(sys.argv[1:])
