"""runner.py — one migration scenario end to end: peers, configuration,
warm-up, migrate, sampling every `interval` s (query-migrate, the guest's
progress, host CPU of each process and thread), the max-iters/max-time
caps with migrate_cancel, digests, and the report dict. Driver thread only.

A Runner keeps local migd sources between runs (filling a large RAM once);
each run gets a fresh destination.
"""
import os
import shutil
import socket
import tempfile
import time

from migperf import peers, rdma
from migperf.link import LinkRelay
from migperf.qmp import QMPError
from migperf.util import GB, cpu_delta, cpu_snapshot, machine_info, \
    status_kb

FINAL = ("completed", "failed", "cancelled")


class RunFailed(Exception):
    """A stage failed; the report still records what happened."""

    def __init__(self, stage, msg):
        super().__init__("%s: %s" % (stage, msg))
        self.stage = stage


class Runner:
    def __init__(self, build, qemu_binary=None, src_qmp=None, dst_qmp=None,
                 dst_host=None, progress=None, tmpdir=None,
                 rdma_host=None):
        self.build = os.path.abspath(build)
        self.rdma_host = rdma_host or dst_host
        self.qemu_binary = qemu_binary or peers.default_qemu(self.build)
        self.src_qmp, self.dst_qmp, self.dst_host = src_qmp, dst_qmp, dst_host
        self.progress = progress
        self.own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="migperf-")
        self.sources = {}      # guest key -> Peer (local migd, reused)
        self.images = {}       # (mem, content) -> QEMU RAM image path
        self.tls_dir = None
        self.hardware = machine_info()
        self.dst_used = False

    def close_sources(self):
        """Stops the kept sources and removes QEMU RAM images."""
        for src in self.sources.values():
            src.close()
        self.sources.clear()
        for path in self.images.values():
            if os.path.exists(path):
                os.unlink(path)
        self.images.clear()

    def close(self):
        self.close_sources()
        if self.own_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    # ---- peers ------------------------------------------------------------------

    def _guest_key(self, scen):
        return (scen["peer"], scen["mem"], scen["cpus"], scen["content"],
                scen["src_cpus"])

    def source(self, scen):
        if self.src_qmp:
            key = "remote"
            if key not in self.sources:
                self.sources[key] = peers.attach("src", self.src_qmp)
            src = self.sources[key]
            if src.kind == "migd":
                self._set_workload(src, scen)
            return src
        if scen["peer"] == "qemu":
            return peers.start_qemu(self.qemu_binary, scen, "src",
                                    self.tmpdir, self._image(scen))
        key = self._guest_key(scen)
        if key not in self.sources:
            src = peers.start_migd(self.build, scen, "src", self.tmpdir)
            self.sources[key] = src
            self._fill(src, scen)
        src = self.sources[key]
        self._set_workload(src, scen)
        return src

    def _image(self, scen):
        key = (scen["mem"], scen["content"])
        if key not in self.images:
            path = os.path.join("/dev/shm" if os.path.isdir("/dev/shm")
                                else self.tmpdir, "migperf-%d-%d.ram" %
                                (os.getpid(), len(self.images)))
            peers.write_image(path, scen["mem"], scen["content"])
            self.images[key] = path
        return self.images[key]

    def _fill(self, src, scen):
        if scen["content"] == "untouched":
            return
        src.q.cmd("x-guest-workload", {"dirty-rate": 0, "passes": 1,
                                       "pattern": "sequential",
                                       "content": scen["content"]})
        deadline = time.monotonic() + 3600
        while not src.q.cmd("x-guest-workload").get("finished"):
            if time.monotonic() > deadline:
                raise RunFailed("fill", "the guest did not fill its RAM")
            time.sleep(0.05)

    def _set_workload(self, src, scen):
        q = src.q
        st = q.cmd("query-status")["status"]
        if st == "postmigrate" or (st == "paused" and src.proc):
            q.cmd("cont")
        if scen["dirty_rate"] <= 0:
            q.cmd("x-guest-workload", {"dirty-rate": "idle"})
            return
        args = {"dirty-rate": scen["dirty_rate"], "pattern": scen["pattern"],
                "content": "random" if scen["content"] == "untouched"
                else scen["content"]}
        if scen["working_set"]:
            args["working-set"] = scen["working_set"]
        q.cmd("x-guest-workload", args)

    def destination(self, scen):
        if self.dst_qmp:
            if self.dst_used:
                raise RunFailed("setup", "--dst-qmp: the destination was "
                                "used by an earlier run; one run only")
            self.dst_used = True
            return peers.attach("dst", self.dst_qmp)
        if scen["peer"] == "qemu":
            return peers.start_qemu(self.qemu_binary, scen, "dst",
                                    self.tmpdir)
        return peers.start_migd(self.build, scen, "dst", self.tmpdir)

    # ---- configuration ------------------------------------------------------

    def configure(self, src, dst, scen):
        caps = {"multifd": scen["multifd"] > 0,
                "mapped-ram": scen["mapped_ram"]}
        if scen["postcopy"]:
            caps["postcopy-ram"] = True
            caps["postcopy-preempt"] = scen["postcopy_preempt"]
        if scen["transport"] == "rdma":  # QEMU wants it on both sides
            caps["rdma-pin-all"] = scen["rdma_pin_all"]
        caps.update(scen["extra_caps"])
        src_caps = dict(caps, **{"zero-copy-send": scen["zero_copy"],
                                 "auto-converge": scen["auto_converge"],
                                 "dirty-limit": scen["dirty_limit"] > 0})
        src_caps.update(scen["extra_caps"])
        common = {"multifd-compression": scen["compression"]}
        if scen["multifd"]:
            common["multifd-channels"] = scen["multifd"]
        if scen["compression_level"] is not None and \
                scen["compression"] != "none":
            common["multifd-%s-level" % scen["compression"]] = \
                scen["compression_level"]
        common.update(scen["extra_params"])
        src_params = dict(common, **{"max-bandwidth": scen["max_bandwidth"],
                                     "downtime-limit": scen["downtime"]})
        if scen["auto_converge"]:
            src_params["cpu-throttle-increment"] = scen["auto_converge_step"]
        if scen["dirty_limit"]:
            src_params["vcpu-dirty-limit"] = scen["dirty_limit"]
        if scen["postcopy"]:
            src_params["max-postcopy-bandwidth"] = \
                scen["max_postcopy_bandwidth"]
        dst_params = dict(common)
        dst_caps = dict(caps)
        if scen["postcopy"]:  # the destination measures vCPU blocktime
            dst_caps["postcopy-blocktime"] = True
        self._tls(src, dst, scen, src_params, dst_params)
        for peer, c, p in ((src, src_caps, src_params),
                           (dst, dst_caps, dst_params)):
            self._set(peer, c, p)

    def _set(self, peer, caps, params):
        """Capabilities off first (a reused migd source keeps the last
        run's), then parameters, then capabilities on. Fresh QEMU peers
        only get what is on, so older QEMUs are not asked about newer
        capabilities."""
        if params.get("multifd-compression") == "none" and \
                (peer.kind == "qemu" or not caps.get("multifd")):
            params = {k: v for k, v in params.items()
                      if k != "multifd-compression"}
        off = [{"capability": k, "state": False} for k, v in caps.items()
               if not v and peer.kind == "migd"]
        on = [{"capability": k, "state": True} for k, v in caps.items() if v]
        if off:
            peer.q.cmd("migrate-set-capabilities", capabilities=off)
        peer.q.cmd("migrate-set-parameters", params)
        if on:
            peer.q.cmd("migrate-set-capabilities", capabilities=on)

    def _tls(self, src, dst, scen, src_params, dst_params):
        if scen["tls"] == "none":
            if src.kind == "migd" or src.proc:
                src_params.update({"tls-creds": "", "tls-hostname": ""})
                dst_params["tls-creds"] = ""
            return
        if self.tls_dir is None:
            self.tls_dir = peers.make_tls_dir(self.tmpdir)
        src_params["tls-creds"] = peers.add_tls(src, scen["tls"],
                                                self.tls_dir)
        src_params["tls-hostname"] = "localhost"
        dst_params["tls-creds"] = peers.add_tls(dst, scen["tls"],
                                                self.tls_dir)

    # ---- addresses ---------------------------------------------------------

    def uris(self, src, dst, scen):
        """(incoming URI, outgoing URI) for the transport; fd: passes one
        end of a socketpair to each side with getfd."""
        t, host = scen["transport"], self.dst_host or "127.0.0.1"
        if t == "rdma":
            return (rdma.uri(self.rdma_host, _free_port()),) * 2
        if t == "tcp":
            port = _free_port()
            return ("%s:%s:%d" % (t, host, port),) * 2
        if t == "unix":
            path = os.path.join(self.tmpdir, "mig-%d.sock" % time.time_ns())
            return ("unix:" + path,) * 2
        if t == "vsock":
            return ("vsock:1:%d" % _free_port(),) * 2
        if t == "file":
            path = os.path.join(self.tmpdir, "mig.img")
            if os.path.exists(path):
                os.unlink(path)
            return ("file:" + path,) * 2
        if t == "exec":
            fifo = os.path.join(self.tmpdir, "mig-%d.fifo" % time.time_ns())
            os.mkfifo(fifo)
            return "exec:cat %s" % fifo, "exec:cat > %s" % fifo
        a, b = socket.socketpair()
        try:
            dst.q.cmd("getfd", {"fdname": "migperf"}, fds=[a.fileno()])
            src.q.cmd("getfd", {"fdname": "migperf"}, fds=[b.fileno()])
        finally:
            a.close()
            b.close()
        return ("fd:migperf",) * 2

    # ---- one run --------------------------------------------------------------

    def run(self, scen):
        """Runs `scen`; returns the report dict (never raises for a
        failed migration: result.success says)."""
        rep = {"hardware": dict(self.hardware), "scenario": dict(scen),
               "peers": {}, "timeline": [], "iterations": [],
               "warmup": None, "post": None, "result": {"success": False}}
        src = dst = None
        stage = "setup"
        rdma.preflight(scen, self.rdma_host,
                       not (self.src_qmp and self.dst_qmp))
        try:
            src = self.source(scen)
            rep["peers"]["src"] = src.describe()
            dst = self.destination(scen)
            rep["peers"]["dst"] = dst.describe()
            stage = "configure"
            self.configure(src, dst, scen)
            stage = "warmup"
            rep["warmup"] = self._warmup(src, dst, scen)
            stage = "migrate"
            self._migrate(src, dst, scen, rep)
            stage = "verify"
            self._verify(src, dst, scen, rep)
            if scen["post_sleep"] > 0 and rep["result"]["status"] == \
                    "completed":
                stage = "post"
                rep["post"] = self._post(dst, scen)
        except (QMPError, RunFailed, RuntimeError, OSError,
                ConnectionError) as e:
            res = rep["result"]
            res.update(success=False, stage=getattr(e, "stage", stage),
                       error=getattr(e, "desc", None) or str(e))
            if isinstance(e, QMPError):
                res["qmp_error"] = {"command": e.command, "class": e.cls,
                                    "desc": e.desc}
            for p in (src, dst):
                if p is not None and p.proc and p.proc.poll() is not None:
                    res.setdefault("stderr", {})[p.role] = p.stderr_tail()
        finally:
            if dst is not None:
                dst.close()
            if src is not None and src.kind == "qemu" and src.proc:
                src.close()
        return rep

    def _warmup(self, src, dst, scen):
        if scen["warmup"] <= 0:
            return None
        g0, c0 = guest_progress(src), cpu_snapshot(src.pid)
        time.sleep(scen["warmup"])
        g1, c1 = guest_progress(src), cpu_snapshot(src.pid)
        out = {"seconds": scen["warmup"], "src_cpu": cpu_delta(c0, c1)}
        if g0 and g1:
            out["guest_rate_bps"] = (g1["bytes_written"] -
                                     g0["bytes_written"]) / scen["warmup"]
        return out

    def _migrate(self, src, dst, scen, rep):
        inc, out = self.uris(src, dst, scen)
        rep["scenario"]["uri"] = out
        if scen["transport"] != "file":
            dst.q.cmd("migrate-incoming", uri=inc)
        link = None
        if scen["link"]:
            host, port = out[len("tcp:"):].rsplit(":", 1)
            link = LinkRelay(host, int(port), scen["link"])
            out = link.uri
        try:
            self._migrate_via(src, dst, scen, rep, inc, out)
        finally:
            if link:
                link.close()

    def _migrate_via(self, src, dst, scen, rep, inc, out):
        if scen["stopped"]:
            src.q.cmd("stop")
        if src.pid:
            rep["result"]["src_rss_kb_before"] = status_kb(src.pid, "VmRSS")
        snaps = {"src": cpu_snapshot(src.pid), "dst": cpu_snapshot(dst.pid)}
        first = dict(snaps)
        t0 = time.monotonic()
        src.q.cmd("migrate", uri=out)
        pc = Postcopy(self, src, dst, scen, rep) if scen["postcopy"] \
            else None
        info = sample_loop(src, dst, scen, rep, t0, snaps, self.progress,
                           pc)
        if scen["transport"] == "file" and info.get("status") == "completed":
            dst.q.cmd("migrate-incoming", uri=inc)
        dinfo = wait_final(dst.q, 600)
        last = {"src": cpu_snapshot(src.pid), "dst": cpu_snapshot(dst.pid)}
        rep["result"].update(figures(info, dinfo, first, last, rep))

    def _verify(self, src, dst, scen, rep):
        res = rep["result"]
        if res["status"] != "completed":
            return
        if res.get("dst_wrote_during_postcopy"):
            # the destination's guest changed its RAM after the switch:
            # nothing to compare (test_postcopy.py checks the idle case)
            res["digest"] = {"match": None, "skipped": "the destination "
                             "guest wrote during postcopy"}
            return
        size = scen["mem"]
        ds = peers.digest(src, self.build, self.tmpdir, size)
        dd = peers.digest(dst, self.build, self.tmpdir, size)
        match = None
        if ds is not None and dd is not None:
            match = sorted(ds.values()) == sorted(dd.values())
        res["digest"] = {"algorithm": "xxh3-128", "src": ds, "dst": dd,
                         "match": match}
        res["success"] = match is not False
        if match is False:
            res["error"] = "RAM digests differ between source and " \
                "destination"

    def _post(self, dst, scen):
        if dst.kind != "migd" or scen["dirty_rate"] <= 0:
            return None
        self._set_workload(dst, scen)
        g0, c0 = guest_progress(dst), cpu_snapshot(dst.pid)
        time.sleep(scen["post_sleep"])
        g1, c1 = guest_progress(dst), cpu_snapshot(dst.pid)
        return {"seconds": scen["post_sleep"], "dst_cpu": cpu_delta(c0, c1),
                "guest_rate_bps": (g1["bytes_written"] - g0["bytes_written"])
                / scen["post_sleep"]}


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def guest_progress(peer):
    """Sum of the vCPUs' progress (x-guest-workload), or None (QEMU)."""
    if peer.kind != "migd":
        return None
    try:
        st = peer.q.cmd("x-guest-workload")
    except QMPError:
        return None
    vcpus = st.get("vcpus", [])
    return {"bytes_written": sum(v["bytes-written"] for v in vcpus),
            "rate_bps": sum(v["rate"] for v in vcpus),
            "throttle_ns": sum(v.get("throttle-ns", 0) for v in vcpus),
            "vcpus": vcpus}


def wait_final(q, timeout):
    deadline = time.monotonic() + timeout
    while True:
        info = q.cmd("query-migrate")
        if info.get("status") in FINAL or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


# ---- sampling --------------------------------------------------------------------

def make_sample(t, info, prev, guest, cpu, rss_kb=None):
    ram = info.get("ram", {})
    page = ram.get("page-size", 4096)
    s = {"t": round(t, 4), "status": info.get("status"),
         "src_rss_kb": rss_kb,
         "total_time_ms": info.get("total-time"),
         "setup_time_ms": info.get("setup-time"),
         "expected_downtime_ms": info.get("expected-downtime"),
         "downtime_ms": info.get("downtime"),
         "throttle_pct": info.get("cpu-throttle-percentage", 0),
         "transferred": ram.get("transferred", 0),
         "remaining": ram.get("remaining", 0), "total": ram.get("total", 0),
         "duplicate": ram.get("duplicate", 0),
         "normal": ram.get("normal", 0),
         "multifd_bytes": ram.get("multifd-bytes", 0),
         "iterations": ram.get("dirty-sync-count", 0),
         "dirty_rate_pps": ram.get("dirty-pages-rate", 0),
         "dirty_rate_bps": ram.get("dirty-pages-rate", 0) * page,
         "mbps": ram.get("mbps", 0.0), "measured_mbps": None,
         "cpu": cpu, "guest": guest}
    if prev is not None and t > prev["t"]:
        s["measured_mbps"] = round((s["transferred"] - prev["transferred"])
                                   * 8 / 1e6 / (t - prev["t"]), 1)
    return s


class Postcopy:
    """--postcopy: migrate-start-postcopy after --postcopy-after seconds
    of precopy; once the destination runs (postcopy-active), a migd
    destination's guest gets the scenario's workload, so its progress
    during postcopy shows in the report."""

    def __init__(self, runner, src, dst, scen, rep):
        self.runner, self.src, self.dst = runner, src, dst
        self.scen, self.res = scen, rep["result"]
        self.started = self.dst_running = False

    def step(self, t, status):
        if not self.started and status == "active" and \
                t >= self.scen["postcopy_after"]:
            self.src.q.cmd("migrate-start-postcopy")
            self.started = True
            self.res["postcopy_requested_s"] = round(t, 3)
        if status == "postcopy-active" and \
                "postcopy_started_s" not in self.res:
            self.res["postcopy_started_s"] = round(t, 3)
        probe = self.scen["postcopy_dst_probe"]
        if self.started and not self.dst_running and \
                self.dst.kind == "migd" and (probe or (
                    self.scen["dirty_rate"] > 0 and
                    self.scen["postcopy_dst_workload"])):
            st = self.dst.q.cmd("query-migrate").get("status")
            if st in ("postcopy-active", "completed"):
                self._start_dst(t, probe)

    def _start_dst(self, t, probe):
        self.dst_running = True
        if probe:  # reads only: the digest check stays on
            self.dst.q.cmd("x-guest-workload", {"content": "probe"})
            self.res["probe_started_s"] = round(t, 3)
            return
        self.runner._set_workload(self.dst, self.scen)
        self.res["dst_wrote_during_postcopy"] = True
        self.g0 = (t, guest_progress(self.dst))

    def finish(self, t):
        """The destination guest's write rate during postcopy."""
        if self.started and "postcopy_started_s" not in self.res:
            # postcopy ran between two samples
            self.res["postcopy_started_s"] = self.res["postcopy_requested_s"]
        if self.dst_running and self.scen["postcopy_dst_probe"]:
            self.res.update(probe_figures(
                self.dst.q.cmd("x-query-guest-probe")))
            self.dst.q.cmd("x-guest-workload", {"dirty-rate": "idle"})
            return
        if not self.dst_running or not self.g0[1]:
            return
        g1 = guest_progress(self.dst)
        dt = t - self.g0[0]
        if g1 and dt > 0:
            self.res["dst_guest_rate_during_postcopy_bps"] = \
                (g1["bytes_written"] - self.g0[1]["bytes_written"]) / dt


def probe_figures(r):
    """x-query-guest-probe's reply -> report fields (microseconds)."""
    out = {"probe_samples": r.get("samples", 0),
           "probe_not_found": r.get("not-found", 0),
           "probe_histogram": r.get("histogram", [])}
    for k in ("median", "p90", "p99", "p999", "mean", "min", "max"):
        ns = r.get(k + "-ns")
        out["probe_%s_us" % k] = ns / 1000 if ns is not None else None
    return out


def sample_loop(src, dst, scen, rep, t0, snaps, progress, pc=None):
    """Polls until the source's migration ends; applies the caps."""
    prev, iters, paused, info = None, 0, False, {}
    while True:
        info = src.q.cmd("query-migrate")
        t = time.monotonic() - t0
        now = {"src": cpu_snapshot(src.pid), "dst": cpu_snapshot(dst.pid)}
        cpu = {k: cpu_delta(snaps[k], now[k]) for k in now}
        snaps.update({k: v for k, v in now.items() if v})
        for k, v in now.items():
            if v:
                rep.setdefault("_seen", {}).setdefault(k, {}).update(
                    v["threads"])
        s = make_sample(t, info, prev, guest_progress(src), cpu,
                        status_kb(src.pid, "VmRSS") if src.pid else None)
        rep["timeline"].append(s)
        if s["iterations"] > iters or info.get("status") in FINAL:
            iters = s["iterations"]
            rep["iterations"].append(len(rep["timeline"]) - 1)
        if progress:
            progress(s, scen)
        prev = s
        if pc:
            pc.step(t, info.get("status"))
        if info.get("status") in FINAL:
            if pc:
                pc.finish(t)
            return info
        if info.get("status") == "active":
            paused = _caps(src, scen, s, t, rep, paused)
        time.sleep(scen["interval"])


def _caps(src, scen, s, t, rep, paused):
    reason = None
    if s["iterations"] > scen["max_iters"]:
        reason = "max-iters (%d dirty syncs)" % scen["max_iters"]
    elif t > scen["max_time"]:
        reason = "max-time (%.0f s)" % scen["max_time"]
    if reason and "cancel_reason" not in rep["result"]:
        rep["result"]["cancel_reason"] = reason
        src.q.cmd("migrate_cancel")
    if scen["pause_iters"] is not None and not paused and \
            s["iterations"] >= scen["pause_iters"]:
        src.q.cmd("stop")
        rep["result"]["paused_at_s"] = round(t, 3)
        return True
    return paused


def thread_totals(first, seen):
    """CPU seconds and share of the migration's wall time of every thread
    seen while sampling (threads that ended count too)."""
    if not first:
        return None
    from migperf.util import CLK_TCK
    base = first["threads"]
    wall = max(time.monotonic() - first["t"], 1e-3)
    out = {}
    for tid, (comm, ticks) in seen.items():
        secs = (ticks - base.get(tid, (comm, 0))[1]) / CLK_TCK
        out[str(tid)] = {"name": comm, "cpu_s": secs,
                         "pct": round(100 * secs / wall, 1)}
    return out


def figures(info, dinfo, first, last, rep):
    ram = info.get("ram", {})
    secs = (info.get("total-time") or 0) / 1000
    total = ram.get("total", 0)
    expected = [s["expected_downtime_ms"] for s in rep["timeline"]
                if s["status"] == "active" and
                s["expected_downtime_ms"] is not None]
    cpu = {k: cpu_delta(first[k], last[k]) for k in first}
    seen = rep.pop("_seen", {})
    threads = {k: thread_totals(first[k], seen.get(k, {})) for k in first}
    cpu_s = {k: (v["cpu_s"] if v else None) for k, v in cpu.items()}
    res = {"status": info.get("status"), "dst_status": dinfo.get("status"),
           "error_desc": info.get("error-desc") or dinfo.get("error-desc"),
           "total_time_ms": info.get("total-time"),
           "setup_time_ms": info.get("setup-time"),
           "downtime_ms": info.get("downtime"),
           "expected_downtime_ms": expected[-1] if expected else None,
           "transferred": ram.get("transferred"), "ram_total": total,
           "iterations": ram.get("dirty-sync-count"),
           "downtime_bytes": ram.get("downtime-bytes"),
           "postcopy_bytes": ram.get("postcopy-bytes"),
           "postcopy_requests": ram.get("postcopy-requests"),
           "postcopy_blocktime_ms": dinfo.get("postcopy-blocktime"),
           "postcopy_vcpu_blocktime_ms": dinfo.get(
               "postcopy-vcpu-blocktime"),
           "throughput_gbs": total / GB / secs if secs else None,
           "wire_gbs": ram.get("transferred", 0) / GB / secs if secs
           else None, "cpu_s": cpu_s,
           "cpu_threads": threads,
           "query_migrate": {"src": info, "dst": dinfo}}
    for k in ("src", "dst"):
        res["%s_cpu_s_per_gb" % k] = cpu_s[k] / (total / GB) \
            if cpu_s[k] is not None and total else None
    rss = [s["src_rss_kb"] for s in rep["timeline"] if s["src_rss_kb"]]
    res["src_rss_kb_peak"] = max(rss) if rss else None
    rates = [s["guest"]["rate_bps"] for s in rep["timeline"] if s["guest"]]
    if rates and rep["scenario"]["dirty_rate"] > 0:
        res["guest_rate_bps"] = sum(rates) / len(rates)
    res["success"] = res["status"] == "completed" and \
        res["dst_status"] == "completed"
    if res["status"] == "failed" and res["error_desc"]:
        res["error"] = res["error_desc"]
    elif res["status"] == "cancelled":
        res["error"] = "cancelled: %s" % rep["result"].get(
            "cancel_reason", "by the peer")
    return res
