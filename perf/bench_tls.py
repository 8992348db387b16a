#!/usr/bin/env python3
"""bench_tls — TLS migration throughput and its cost against plain TCP.

One source migd with SIZE of CONTENT RAM (default 4G mixed, filled once,
then stopped), migrated again and again to fresh destinations over
loopback with multifd CHANNELS (default 2): plain TCP, tls-creds-x509 and
tls-creds-psk, in alternating order for RUNS rounds. Reports medians
(min–max) of GB/s and CPU s/GB on each side, and TLS/plain ratios. Every
run's RAM digests are compared (perf/bench_live.py's migrate_once).

    python3 perf/bench_tls.py --build build [--size 4G] [--runs 3]
        [--channels 2] [--content mixed] [--kinds plain,x509,psk]
        [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import bench_live as bl  # noqa: E402

GEN = os.path.join(HERE, "..", "tests", "tls", "gen-certs.sh")
CREDS = {  # kind -> (qom-type, client dir, server dir)
    "x509": ("tls-creds-x509", "client", "server"),
    "psk": ("tls-creds-psk", "psk", "psk"),
}


def install_tls(certs):
    """Destination kinds "tls-KIND" get -object server credentials with the
    same id as the source's client ones; configure() then sets tls-creds on
    both sides when the source is given one."""
    for kind, (qom, _, sdir) in CREDS.items():
        obj = "%s,id=%s,endpoint=server,dir=%s" % (
            qom, kind, os.path.join(certs, sdir))
        bl.DST_ARGS["tls-" + kind] = (
            lambda size, obj=obj: ["-m", size, "-object", obj])
    plain_configure = bl.configure

    def configure(qs, qd, channels, **src_params):
        plain_configure(qs, qd, channels, **src_params)
        bl.set_params(qd, tls_creds=src_params.get("tls_creds", ""))
    bl.configure = configure


def add_client_objects(q, certs):
    for kind, (qom, cdir, _) in CREDS.items():
        q.cmd("object-add", {"qom-type": qom, "id": kind,
                             "endpoint": "client",
                             "dir": os.path.join(certs, cdir)})


def run(cfg):
    src = bl.Source(cfg, cfg.size, cfg.content)
    results = {k: [] for k in cfg.kinds}
    try:
        add_client_objects(src.q, cfg.certs)
        src.stop_guest()
        for r in range(cfg.runs):
            order = cfg.kinds if r % 2 == 0 else list(reversed(cfg.kinds))
            for kind in order:
                busy = bl.wait_quiet(cfg.busy_limit, cfg.load_wait)
                time.sleep(cfg.cold_wait)
                dst_kind = "anon" if kind == "plain" else "tls-" + kind
                creds = "" if kind == "plain" else kind
                res = bl.migrate_once(cfg, src, cfg.channels, dst_kind,
                                      tls_creds=creds, max_bandwidth=0)
                res["busy_before"] = busy
                bl.log("  run %d %-5s: %.2f GB/s, %.2f s, cpu src %.2f "
                       "dst %.2f s/GB, others busy %.0f%%" % (
                           r + 1, kind, res["gbs"], res["total_time_s"],
                           res["src_cpu_s_per_gb"],
                           res["dst_cpu_s_per_gb"], 100 * busy))
                results[kind].append(res)
    finally:
        src.close()
    return results


def med(runs, key):
    return bl.fmt(bl.stat([r[key] for r in runs]))


def report(cfg, results):
    plain = results.get("plain")
    base = bl.stat([r["gbs"] for r in plain])["median"] if plain else None
    rows = []
    for kind, runs in results.items():
        gbs = bl.stat([r["gbs"] for r in runs])["median"]
        rows.append([kind, med(runs, "gbs"), med(runs, "total_time_s"),
                     med(runs, "src_cpu_s_per_gb"),
                     med(runs, "dst_cpu_s_per_gb"),
                     "%.0f%%" % (100 * gbs / base) if base else "-"])
    print("\n### TLS vs plain TCP: %s %s RAM, multifd %d, loopback, "
          "%d runs\n" % (cfg.size, cfg.content, cfg.channels, cfg.runs))
    print(bl.table(["transport", "GB/s", "time s", "src CPU s/GB",
                    "dst CPU s/GB", "of plain"], rows))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--build", default="build")
    p.add_argument("--size", default="4G")
    p.add_argument("--content", default="mixed")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--channels", type=int, default=2)
    p.add_argument("--kinds", default="plain,x509,psk")
    p.add_argument("--json")
    p.add_argument("--busy-limit", type=float, default=0.25,
                   help="wait until other processes use less CPU than this")
    p.add_argument("--load-wait", type=float, default=60,
                   help="at most this many seconds of waiting per run")
    a = p.parse_args(argv)
    a.kinds = [k for k in a.kinds.split(",") if k]
    a.timeout, a.cold_wait = 600, 2
    return a


def main(argv):
    cfg = parse_args(argv)
    os.environ["MIGD_BUILD"] = os.path.abspath(cfg.build)
    cfg.certs = tempfile.mkdtemp(prefix="migd-bench-tls-")
    try:
        subprocess.run(["bash", GEN, cfg.certs], check=True)
        install_tls(cfg.certs)
        results = run(cfg)
    finally:
        shutil.rmtree(cfg.certs, ignore_errors=True)
    report(cfg, results)
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"config": {k: getattr(cfg, k) for k in
                                  ("size", "content", "runs", "channels",
                                   "kinds")},
                       "results": results}, f, indent=1, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
