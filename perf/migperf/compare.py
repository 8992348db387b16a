"""compare.py — `migperf compare`: a matrix of scenarios (--vary), each
point repeated (order alternating between repeats), reduced to medians
with min/max, written as a text table, CSV, JSON and gnuplot plots.
"""
import csv
import itertools
import os

from migperf import VERSION, plot, report, scenario
from migperf.runner import Runner
from migperf.util import fmt_stat, log, stat

# (key, column title, scale, decimals): figures of each run's result.
METRICS = (
    ("throughput_gbs", "GB/s", 1, 2),
    ("total_time_s", "total time s", 1, 3),
    ("downtime_ms", "downtime ms", 1, 0),
    ("expected_downtime_ms", "expected downtime ms", 1, 0),
    ("setup_time_ms", "setup ms", 1, 0),
    ("transferred_mib", "wire MiB", 1, 1),
    ("iterations", "dirty syncs", 1, 0),
    ("src_cpu_s_per_gb", "src CPU s/GB", 1, 3),
    ("dst_cpu_s_per_gb", "dst CPU s/GB", 1, 3),
    ("guest_mbs", "guest MB/s", 1, 1),
)


def parse_vary(items):
    """['channels=1,2'] -> [(field, [(text, value), ...])]."""
    out = []
    for item in items:
        if "=" not in item:
            raise ValueError("--vary expects FIELD=V1,V2,... got '%s'" % item)
        name, vals = item.split("=", 1)
        field = scenario.field_name(name)
        texts = [v for v in vals.split(",") if v != ""]
        if not texts:
            raise ValueError("--vary %s: no values" % name)
        out.append((field, [(t, scenario.convert(field, t)) for t in texts]))
    return out


def points_of(base, vary):
    pts = []
    for combo in itertools.product(*[vals for _, vals in vary]):
        scen = dict(base)
        settings = {}
        for (field, _), (text, value) in zip(vary, combo):
            scen[field] = value
            settings[field] = text
        pts.append({"settings": settings, "scenario": scenario.check(scen),
                    "label": " ".join("%s=%s" % kv for kv in
                                      settings.items()), "reports": []})
    return pts


def run_points(runner, pts, repeat, on_run=None):
    """Runs every point `repeat` times, reversing the order every other
    repeat (ABBA) so drift on the machine hits every point alike."""
    for r in range(repeat):
        order = pts if r % 2 == 0 else list(reversed(pts))
        for p in order:
            rep = runner.run(p["scenario"])
            p["reports"].append(rep)
            if on_run:
                on_run(p, r, rep)
    return pts


def metrics(rep):
    res = rep["result"]
    if not res.get("success"):
        return {}
    tt = res.get("total_time_ms")
    return {"throughput_gbs": res.get("throughput_gbs"),
            "total_time_s": tt / 1000 if tt is not None else None,
            "downtime_ms": res.get("downtime_ms"),
            "expected_downtime_ms": res.get("expected_downtime_ms"),
            "setup_time_ms": res.get("setup_time_ms"),
            "transferred_mib": (res.get("transferred") or 0) / (1 << 20),
            "iterations": res.get("iterations"),
            "src_cpu_s_per_gb": res.get("src_cpu_s_per_gb"),
            "dst_cpu_s_per_gb": res.get("dst_cpu_s_per_gb"),
            "guest_mbs": res["guest_rate_bps"] / 1e6
            if res.get("guest_rate_bps") is not None else None}


def summarize(p):
    ms = [metrics(r) for r in p["reports"]]
    p["stats"] = {k: stat([m.get(k) for m in ms]) for k, *_ in METRICS}
    p["ok"] = sum(1 for r in p["reports"] if r["result"].get("success"))
    p["errors"] = sorted({r["result"].get("error") for r in p["reports"]
                          if not r["result"].get("success")} - {None})
    return p


def text_table(pts, fields):
    heads = list(fields) + ["ok"] + [t for _, t, _, _ in METRICS]
    rows = []
    for p in pts:
        rows.append([p["settings"][f] for f in fields] +
                    ["%d/%d" % (p["ok"], len(p["reports"]))] +
                    [fmt_stat(p["stats"][k], d) for k, _, _, d in METRICS])
    out = ["| " + " | ".join(heads) + " |",
           "|" + "|".join("---" for _ in heads) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    errs = ["- %s: %s" % (p["label"], e) for p in pts for e in p["errors"]]
    return "\n".join(out + ([""] + ["Failures:"] + errs if errs else []))


def csv_columns(fields):
    cols = list(fields) + ["runs", "ok"]
    for k, *_ in METRICS:
        cols += [k + "_median", k + "_min", k + "_max"]
    return cols


def write_csv(path, pts, fields):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(csv_columns(fields))
        for p in pts:
            row = [p["settings"][x] for x in fields] + [len(p["reports"]),
                                                        p["ok"]]
            for k, *_ in METRICS:
                s = p["stats"][k]
                row += [s["median"], s["min"], s["max"]] if s else ["", "",
                                                                    ""]
            w.writerow(row)


def _series(pts, fields, key):
    """x = the first varied field; one series per combination of the
    others (or one series)."""
    xf = fields[0]
    xlabels = []
    for p in pts:
        if p["settings"][xf] not in xlabels:
            xlabels.append(p["settings"][xf])
    series = {}
    for p in pts:
        rest = " ".join("%s=%s" % (f, p["settings"][f]) for f in fields[1:])
        vals = series.setdefault(rest or key, [None] * len(xlabels))
        s = p["stats"][key]
        if s:
            vals[xlabels.index(p["settings"][xf])] = (s["median"], s["min"],
                                                      s["max"])
    return xf, xlabels, series


def plots(outdir, pts, fields, title):
    files = []
    xf, xl, ser = _series(pts, fields, "throughput_gbs")
    files += plot.points(os.path.join(outdir, "throughput"),
                         "%s: throughput" % title, xf, xl, ser,
                         "GB/s of guest RAM (median, min-max)")
    for key, name, ylabel in (("total_time_s", "total_time",
                               "total time (s)"),
                              ("downtime_ms", "downtime", "downtime (ms)")):
        xf, xl, ser = _series(pts, fields, key)
        files += plot.points(os.path.join(outdir, name), "%s: %s" % (
            title, ylabel), xf, xl, ser, ylabel + ", median, min-max")
    run = timeline_run(pts)
    if run:
        files += plot.timeline(os.path.join(outdir, "timeline"),
                               "%s: timeline of %s" % (title, run[0]),
                               run[1]["timeline"])
    return files


def timeline_run(pts):
    """The successful run with the most samples (the most to see)."""
    best = None
    for p in pts:
        for r in p["reports"]:
            if r["result"].get("success") and (
                    best is None or len(r["timeline"]) >
                    len(best[1]["timeline"])):
                best = (p["label"], r)
    return best


def write_outputs(outdir, pts, fields, title, base, make_plots=True):
    os.makedirs(os.path.join(outdir, "runs"), exist_ok=True)
    runs = []
    for i, p in enumerate(pts):
        summarize(p)
        for j, rep in enumerate(p["reports"]):
            path = os.path.join(outdir, "runs", "point%d-run%d.json" % (i, j))
            report.write_json(path, rep)
            runs.append(os.path.relpath(path, outdir))
    table = text_table(pts, fields)
    with open(os.path.join(outdir, "table.txt"), "w") as f:
        f.write("%s\n\n%s\n" % (title, table))
    write_csv(os.path.join(outdir, "table.csv"), pts, fields)
    files = ["table.txt", "table.csv"]
    if make_plots and plot.available():
        files += plot.relpaths(plots(outdir, pts, fields, title), outdir)
    elif make_plots:
        log("migperf: gnuplot not found, no plots (apt install gnuplot-nox)")
    summary = {"migperf": VERSION, "title": title, "fields": fields,
               "base_scenario": base, "files": files, "runs": runs,
               "points": [{k: p[k] for k in ("settings", "label", "ok",
                                             "errors", "stats")}
                          for p in pts]}
    report.write_json(os.path.join(outdir, "compare.json"), summary)
    return table, files


def main(args, argv):
    base = scenario.from_args(args)
    vary = parse_vary(args.vary)
    fields = [f for f, _ in vary]
    pts = points_of(base, vary)
    if args.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    title = args.title or "migperf compare " + " ".join(args.vary)
    runner = Runner(args.build, args.qemu_binary, args.src_qmp,
                    args.dst_qmp, args.dst_host, rdma_host=args.rdma_host)

    def on_run(p, r, rep):
        res = rep["result"]
        log("  %s repeat %d: %s%s" % (
            p["label"], r + 1, "ok" if res.get("success") else "FAILED",
            ", %.2f GB/s, %s ms, downtime %s ms" % (
                res["throughput_gbs"] or 0, res["total_time_ms"],
                res["downtime_ms"]) if res.get("success")
            else ": " + str(res.get("error"))))
    try:
        run_points(runner, pts, args.repeat, on_run)
    finally:
        runner.close()
    os.makedirs(args.output_dir, exist_ok=True)
    table, files = write_outputs(args.output_dir, pts, fields, title, base,
                                 not args.no_plots)
    print(table)
    print("\nwrote %s: %s" % (args.output_dir, ", ".join(files)))
    return 0 if all(p["ok"] == len(p["reports"]) for p in pts) else 1
