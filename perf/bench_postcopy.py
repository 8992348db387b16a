#!/usr/bin/env python3
"""bench_postcopy.py — issue 10's figures: a guest dirtying its RAM faster
than the link carries it, migrated between two local migds with
  (a) precopy + auto-converge (capped at --precopy-max-time seconds),
  (b) postcopy (migrate-start-postcopy after --postcopy-after s),
  (c) postcopy + postcopy-preempt,
and the latency of a single page request while the background stream
saturates the link,
  (d) without preempt and (e) with preempt: the destination guest runs the
      probe (x-guest-workload content=probe: one vCPU reads random pages
      that have not arrived, one at a time; x-query-guest-probe).
Figures: total time, downtime, postcopy blocktime (destination: the total
and the vCPUs' sum), the guest's progress during the migration (precopy:
the source guest's mean write rate, throttled by auto-converge; postcopy:
the destination guest's write rate while postcopy runs), postcopy bytes
and page requests; the probe's median and p99.

The link: --link-mode relay (default) puts migperf's link relay between
the peers (perf/migperf/link.py: one token bucket of --link bytes/s shared
by every connection, so the link really saturates and sockets back up);
--link-mode param uses max-bandwidth and max-postcopy-bandwidth instead
(migd sleeps; nothing queues). Each configuration runs --reps times in
ABBA order (migperf compare's order) with a fresh destination; the source
is kept and its RAM filled once. Medians with min-max; markdown tables at
the end, ready for docs/benchmarks.md. Uses migperf's Runner (docs/migperf.md).

Usage:
  perf/bench_postcopy.py [--build build] [--mem 1G] [--cpus 2]
      [--dirty-rate 256] [--link 96M] [--link-mode relay|param] [--reps 3]
      [--postcopy-after 3] [--precopy-max-time 120] [--output-dir DIR]
  perf/bench_postcopy.py --quick      # 64 MiB, seconds: a smoke test
Full run: about 10-15 minutes on an idle 2-core machine (precopy's cap
dominates when it never converges).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "perf"))
from migperf import scenario  # noqa: E402
from migperf.compare import run_points  # noqa: E402
from migperf.runner import Runner  # noqa: E402
from migperf.util import fmt_stat, log, parse_size, stat  # noqa: E402

MiB = 1 << 20

# name: (label, scenario changes)
CONFIGS = (
    ("precopy-ac", "precopy + auto-converge",
     {"auto_converge": True}),
    ("postcopy", "postcopy", {"postcopy": True}),
    ("postcopy-preempt", "postcopy + preempt",
     {"postcopy": True, "postcopy_preempt": True}),
    ("probe", "page requests, no preempt",
     {"postcopy": True, "postcopy_dst_probe": True}),
    ("probe-preempt", "page requests, preempt",
     {"postcopy": True, "postcopy_preempt": True,
      "postcopy_dst_probe": True}),
)
MIGRATION = ("precopy-ac", "postcopy", "postcopy-preempt")
PROBES = ("probe", "probe-preempt")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.environ.get("MIGPERF_BUILD") or
                   os.path.join(ROOT, "build"))
    p.add_argument("--mem", default="1G")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--dirty-rate", type=float, default=256,
                   help="MB/s the source guest's vCPUs write together")
    p.add_argument("--link", default="96M", help="bytes/s of the link")
    p.add_argument("--link-mode", choices=("relay", "param"),
                   default="relay")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--postcopy-after", type=float, default=3.0)
    p.add_argument("--precopy-max-time", type=float, default=120.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--only", help="comma-separated configurations (%s)" %
                   ",".join(c[0] for c in CONFIGS))
    p.add_argument("--output-dir", help="writes runs/*.json, "
                   "bench_postcopy.json and table.md here")
    p.add_argument("--quick", action="store_true", help="64 MiB, 16 MiB/s "
                   "link, one repetition, short caps (a smoke test)")
    if p.parse_args(argv).quick:  # other defaults; options still win
        p.set_defaults(mem="64M", dirty_rate=100, link="16M", reps=1,
                       postcopy_after=0.5, precopy_max_time=4.0,
                       warmup=0.3)
    return p.parse_args(argv)


def base_scenario(args):
    scen = scenario.defaults()
    link = parse_size(args.link)
    scen.update(mem=parse_size(args.mem), cpus=args.cpus,
                dirty_rate=args.dirty_rate, pattern="random",
                postcopy_after=args.postcopy_after, warmup=args.warmup,
                max_iters=100000, max_time=args.precopy_max_time)
    if args.link_mode == "relay":
        scen["link"] = link
    else:
        scen.update(max_bandwidth=link, max_postcopy_bandwidth=link)
    scen["extra_params"], scen["extra_caps"] = {}, {}
    return scen


def points(args):
    base = base_scenario(args)
    only = set(args.only.split(",")) if args.only else None
    pts = []
    for name, label, changes in CONFIGS:
        if only and name not in only:
            continue
        scen = dict(base, **changes)
        if scen["postcopy"]:  # postcopy always finishes: no time cap
            scen["max_time"] = max(600.0, args.precopy_max_time)
        pts.append({"settings": {"config": name}, "name": name,
                    "label": label, "scenario": scenario.check(scen),
                    "reports": []})
    return pts


def figures(rep):
    res, name = rep["result"], rep["_config"]
    tt = res.get("total_time_ms")
    vb = res.get("postcopy_vcpu_blocktime_ms")
    if name == "precopy-ac":
        guest = res.get("guest_rate_bps")
    else:
        guest = res.get("dst_guest_rate_during_postcopy_bps")
    return {"total_s": tt / 1000 if tt is not None else None,
            "downtime_ms": res.get("downtime_ms"),
            "blocktime_ms": res.get("postcopy_blocktime_ms"),
            "vcpu_blocktime_ms": sum(vb) if isinstance(vb, list) else None,
            "guest_mbs": guest / 1e6 if guest is not None else None,
            "postcopy_mib": (res["postcopy_bytes"] / MiB
                             if res.get("postcopy_bytes") is not None
                             else None),
            "requests": res.get("postcopy_requests"),
            "throttle_pct": max([s.get("throttle_pct") or 0
                                 for s in rep.get("timeline", [])] or [0]),
            "probe_samples": res.get("probe_samples"),
            "probe_median_ms": _ms(res.get("probe_median_us")),
            "probe_p99_ms": _ms(res.get("probe_p99_us")),
            "probe_max_ms": _ms(res.get("probe_max_us"))}


def _ms(us):
    return us / 1000 if us is not None else None


# Precopy that never converges is cancelled at its cap: what the guest
# did meanwhile still counts (its rate, the throttle reached).
ANY_RUN = ("guest_mbs", "throttle_pct")


def summarize(p):
    ok = [r for r in p["reports"] if r["result"].get("success")]
    figs = [figures(r) for r in ok]
    every = [figures(r) for r in p["reports"]]
    keys = every[0].keys() if every else ()
    p["stats"] = {k: stat([f[k] for f in (every if k in ANY_RUN and
                                          p["name"] == "precopy-ac"
                                          else figs)]) for k in keys}
    p["ok"] = len(ok)
    p["errors"] = sorted({r["result"].get("error") or
                          r["result"].get("status") for r in p["reports"]
                          if not r["result"].get("success")} - {None})
    return p


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def tables(pts, args):
    st = {p["name"]: p for p in pts}
    out = ["Postcopy (issue 10): %s RAM, %d vCPUs writing %.0f MB/s "
           "(random pages), link %s/s (%s), %d repetition(s), ABBA; "
           "median (min-max)." % (args.mem, args.cpus, args.dirty_rate,
                                  args.link, "shared-bucket relay"
                                  if args.link_mode == "relay"
                                  else "max-bandwidth / max-postcopy-"
                                  "bandwidth", args.reps), ""]
    cols = (("total_s", "total s", 2), ("downtime_ms", "downtime ms", 0),
            ("blocktime_ms", "blocktime ms", 0),
            ("vcpu_blocktime_ms", "vCPU blocktime ms (sum)", 0),
            ("guest_mbs", "guest MB/s during", 1),
            ("throttle_pct", "max throttle %", 0),
            ("postcopy_mib", "postcopy MiB", 1),
            ("requests", "page requests", 0))
    out.append(_row(["migration", "ok"] + [c[1] for c in cols]))
    out.append("|" + "---|" * (len(cols) + 2))
    for name in MIGRATION:
        if name in st:
            p = st[name]
            out.append(_row([p["label"], "%d/%d" % (p["ok"],
                                                    len(p["reports"]))] +
                            [fmt_stat(p["stats"].get(k), d)
                             for k, _, d in cols]))
    pcols = (("probe_samples", "samples", 0),
             ("probe_median_ms", "median ms", 2),
             ("probe_p99_ms", "p99 ms", 2), ("probe_max_ms", "max ms", 2),
             ("requests", "page requests", 0))
    if any(n in st for n in PROBES):
        out += ["", "Single page-request latency seen by the destination "
                "guest (first access to a page not yet received) while "
                "the background stream saturates the link:", ""]
        out.append(_row(["postcopy", "ok"] + [c[1] for c in pcols]))
        out.append("|" + "---|" * (len(pcols) + 2))
        for name in PROBES:
            if name in st:
                p = st[name]
                out.append(_row([p["label"], "%d/%d" % (
                    p["ok"], len(p["reports"]))] + [
                        fmt_stat(p["stats"].get(k), d)
                        for k, _, d in pcols]))
    errs = ["- %s: %s" % (p["label"], e) for p in pts for e in p["errors"]]
    if errs:
        out += ["", "Runs without success (left out of the figures):"] + errs
    out += ["", "guest MB/s during: precopy = the source guest's mean write "
            "rate during the migration (auto-converge throttles it; "
            "cancelled runs count here); "
            "postcopy = the destination guest's write rate while postcopy "
            "runs. blocktime: QEMU's postcopy-blocktime (all vCPUs blocked "
            "at once) and the sum of postcopy-vcpu-blocktime."]
    return "\n".join(out)


def main(argv):
    args = parse_args(argv)
    if not os.access(os.path.join(args.build, "migd"), os.X_OK):
        print("bench_postcopy: no migd in %s (make first)" % args.build,
              file=sys.stderr)
        return 2
    pts = points(args)
    runner = Runner(args.build)
    t0 = time.monotonic()

    def on_run(p, r, rep):
        rep["_config"] = p["name"]
        res = rep["result"]
        log("[%6.0f s] rep %d %-18s %s total %s ms%s" % (
            time.monotonic() - t0, r + 1, p["name"],
            "ok" if res.get("success") else "FAILED (%s)" % (
                res.get("error") or res.get("status")),
            res.get("total_time_ms"),
            ", probe median %s us p99 %s us" % (
                res.get("probe_median_us"), res.get("probe_p99_us"))
            if res.get("probe_samples") is not None else ""))
    try:
        run_points(runner, pts, args.reps, on_run)
    finally:
        runner.close()
    for p in pts:
        summarize(p)
    text = tables(pts, args)
    if args.output_dir:
        write_output(args.output_dir, pts, text)
    print(text)
    return 0 if all(p["ok"] for p in pts if p["name"] != "precopy-ac") \
        else 1


def write_output(d, pts, text):
    os.makedirs(os.path.join(d, "runs"), exist_ok=True)
    for p in pts:
        for i, rep in enumerate(p["reports"]):
            with open(os.path.join(d, "runs", "%s-%d.json" %
                                   (p["name"], i)), "w") as f:
                json.dump(rep, f, indent=1, default=str)
    with open(os.path.join(d, "bench_postcopy.json"), "w") as f:
        json.dump([{k: p[k] for k in ("name", "label", "scenario", "stats",
                                      "ok", "errors")} for p in pts], f,
                  indent=1, default=str)
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
