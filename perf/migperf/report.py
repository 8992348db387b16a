"""report.py — a run's outputs: the JSON report, the one-screen summary
and the live progress bar (only when stdout is a terminal).
"""
import json
import sys

from migperf.util import MiB, fmt_size

REPORT_KEYS = ("migperf", "command", "hardware", "scenario", "peers",
               "warmup", "timeline", "iterations", "post", "result")


def write_json(path, rep):
    with open(path, "w") as f:
        json.dump(rep, f, indent=1, default=str)
        f.write("\n")


def _mib(n):
    return "-" if n is None else "%.1f MiB" % (n / MiB)


def _num(v, fmt="%.2f"):
    return "-" if v is None else fmt % v


def summary(rep):
    """The human summary: one screen."""
    sc, res = rep["scenario"], rep["result"]
    peers = rep.get("peers", {})
    kind = "%s -> %s" % (peers.get("src", {}).get("kind", "?"),
                         peers.get("dst", {}).get("kind", "?"))
    lines = [
        "migperf: %s, %s RAM (%s), %d vCPU, dirty rate %s" % (
            kind, fmt_size(sc["mem"]), sc["content"], sc["cpus"],
            "idle" if not sc["dirty_rate"] else "%g MB/s" % sc["dirty_rate"]),
        "  %s, multifd %s, compression %s, zero-copy %s, tls %s, "
        "max-bandwidth %s, downtime-limit %d ms" % (
            sc.get("uri", sc["transport"]), sc["multifd"] or "off",
            sc["compression"], "on" if sc["zero_copy"] else "off",
            sc["tls"], fmt_size(sc["max_bandwidth"]) + "/s"
            if sc["max_bandwidth"] else "unlimited", sc["downtime"])]
    ok = "OK" if res.get("success") else "FAILED"
    lines.append("result: %s (%s)%s" % (
        ok, res.get("status", res.get("stage", "?")),
        " - " + res["error"] if res.get("error") else ""))
    if res.get("total_time_ms") is not None:
        lines += [
            "  total time %s ms, setup %s ms, downtime %s ms (expected %s)"
            % (res["total_time_ms"], res.get("setup_time_ms"),
               res.get("downtime_ms"), res.get("expected_downtime_ms")),
            "  RAM %s, on the wire %s, %s dirty syncs" % (
                _mib(res.get("ram_total")), _mib(res.get("transferred")),
                res.get("iterations")),
            "  throughput %s GB/s of RAM, %s GB/s on the wire" % (
                _num(res.get("throughput_gbs")), _num(res.get("wire_gbs"))),
            "  CPU: source %s s (%s s/GB), destination %s s (%s s/GB)" % (
                _num(res["cpu_s"].get("src")),
                _num(res.get("src_cpu_s_per_gb")),
                _num(res["cpu_s"].get("dst")),
                _num(res.get("dst_cpu_s_per_gb")))]
        if sc.get("postcopy"):
            lines.append(
                "  postcopy%s: started at %s s, %s on the wire, %s page "
                "requests, blocktime %s ms, destination guest %s MB/s" % (
                    " (preempt)" if sc.get("postcopy_preempt") else "",
                    res.get("postcopy_started_s"),
                    _mib(res.get("postcopy_bytes")),
                    res.get("postcopy_requests"),
                    res.get("postcopy_blocktime_ms"),
                    _num((res.get("dst_guest_rate_during_postcopy_bps") or 0)
                         / 1e6)))
        if res.get("probe_samples") is not None:
            lines.append(
                "  page-request latency (destination probe): %s samples, "
                "median %s us, p99 %s us, max %s us" % (
                    res["probe_samples"], _num(res.get("probe_median_us")),
                    _num(res.get("probe_p99_us")),
                    _num(res.get("probe_max_us"))))
        for side in ("src", "dst"):
            thr = (res.get("cpu_threads") or {}).get(side) or {}
            busy = sorted(thr.values(), key=lambda x: -x["pct"])[:4]
            if busy:
                lines.append("  %s busiest threads: %s" % (side, ", ".join(
                    "%s %.0f%%" % (t["name"], t["pct"]) for t in busy)))
    warm = rep.get("warmup") or {}
    if warm.get("guest_rate_bps") is not None and \
            res.get("guest_rate_bps") is not None:
        before = warm["guest_rate_bps"]
        lines.append("  guest progress: %.1f MB/s before, %.1f MB/s during "
                     "(%s)" % (before / 1e6, res["guest_rate_bps"] / 1e6,
                               "%.0f%%" % (100 * res["guest_rate_bps"] /
                                           before) if before else "-"))
    dg = res.get("digest")
    if dg:
        lines.append("  RAM digests: %s" % {
            True: "match", False: "DIFFER", None: "not compared"}[
                dg["match"]])
    if sc["peer"] == "qemu":
        lines.append("  note: QEMU -M none runs no guest workload; its RAM "
                     "was written into the memory-backend file beforehand")
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar redrawn on each sample; silent when not a tty."""

    def __init__(self, stream=sys.stdout, width=30):
        self.stream, self.width = stream, width
        self.enabled = stream.isatty()
        self.shown = False

    def __call__(self, s, scen):
        if not self.enabled:
            return
        total = s["total"] or scen["mem"]
        done = 1.0 - (s["remaining"] / total if total else 1.0)
        if s["status"] == "completed":
            done = 1.0
        fill = int(done * self.width)
        line = "\r[%s%s] %3.0f%% %-9s %6.2fs iter %d  %7.1f MiB left  " \
            "%7.0f Mb/s" % ("#" * fill, "." * (self.width - fill), 100 * done,
                             s["status"], s["t"], s["iterations"],
                             s["remaining"] / MiB, s["measured_mbps"] or 0)
        self.stream.write(line)
        self.stream.flush()
        self.shown = True

    def done(self):
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
