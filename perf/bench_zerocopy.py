#!/usr/bin/env python3
"""bench_zerocopy.py — zero-copy-send vs copy: sender CPU per GB.

N GiB of random RAM (source stopped), multifd over loopback TCP, the same
source migd migrated again and again to fresh destinations, alternating
zero-copy on/off run to run (pairs in ABBA order). Figures: source and
destination CPU seconds per GB, GB/s, and QEMU's dirty-sync-missed-zero-copy
(flushes in which the kernel reported that it had copied every send).
Every migration's RAM is checked with x-query-ram-digest (bench_live.py's
migrate_once). Medians with min–max.

Loopback cannot keep zero copy: the receiving socket cannot hold on to the
sender's pages, so the kernel copies them when it delivers them, and every
completion carries SO_EE_CODE_ZEROCOPY_COPIED. What is measured here is
therefore the cost of MSG_ZEROCOPY's bookkeeping (pinning, notifications,
flushes) with the copy merely moved, not the saving a real NIC gives.

  python3 perf/bench_zerocopy.py [--build DIR] [--size 4G] [--pairs 3]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_live as bl  # noqa: E402  (helpers: Source, migrate_once, ...)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(bl.ROOT, "build"))
    p.add_argument("--size", default="4G", help="guest RAM (random)")
    p.add_argument("--channels", type=int, default=2)
    p.add_argument("--pairs", type=int, default=3,
                   help="zero-copy/copy pairs (each run once per pair)")
    p.add_argument("--busy-limit", type=float, default=0.15)
    p.add_argument("--load-wait", type=float, default=60)
    a = p.parse_args(argv)
    a.cold_wait, a.timeout = 3, 600
    return a


def with_missed_count():
    """bench_live.figures() plus the source's zero-copy miss count; the
    wrapper is installed for this script's runs only."""
    figures = bl.figures

    def wrapped(info, src_cpu, dst_cpu):
        res = figures(info, src_cpu, dst_cpu)
        res["missed"] = info["ram"].get("dirty-sync-missed-zero-copy")
        return res
    bl.figures = wrapped


def run(cfg):
    results = {True: [], False: []}
    src = bl.Source(cfg, cfg.size, "random")
    try:
        src.stop_guest()
        for r in range(cfg.pairs):
            order = (True, False) if r % 2 == 0 else (False, True)
            for zc in order:
                busy = bl.wait_quiet(cfg.busy_limit, cfg.load_wait)
                bl.set_caps(src.q, multifd=True, zero_copy_send=zc)
                res = bl.migrate_once(cfg, src, cfg.channels, "anon",
                                      max_bandwidth=0)
                res["busy_before"] = busy
                bl.log("  pair %d %s: %.2f GB/s, cpu src %.3f dst %.3f "
                       "s/GB, missed %s of %s syncs, others busy %.0f%%" % (
                           r + 1, "zero-copy" if zc else "copy",
                           res["gbs"] or 0, res["src_cpu_s_per_gb"],
                           res["dst_cpu_s_per_gb"], res["missed"],
                           res["dirty_sync_count"], 100 * busy))
                results[zc].append(res)
    finally:
        src.close()
    return results


def render(cfg, results):
    rows = []
    for zc in (False, True):
        runs = results[zc]
        col = lambda k, p=3: bl.fmt(bl.stat([x[k] for x in runs]), p)
        rows.append(("zero-copy-send" if zc else "copy (default)",
                     col("src_cpu_s_per_gb"), col("dst_cpu_s_per_gb"),
                     col("gbs", 2), col("missed", 0),
                     col("dirty_sync_count", 0)))
    return bl.table(["mode", "src CPU s/GB", "dst CPU s/GB", "GB/s",
                     "dirty-sync-missed-zero-copy", "dirty-sync-count"],
                    rows)


def main(argv):
    cfg = parse_args(argv)
    os.environ["MIGD_BUILD"] = os.path.abspath(cfg.build)
    sys.path.insert(0, bl.ROOT)
    with_missed_count()
    info = bl.machine_info()
    print("# zero-copy-send vs copy: %s random, multifd %d, loopback TCP\n"
          % (cfg.size, cfg.channels))
    print("%s, %d cores, kernel %s, commit %s\n" % (
        info["cpu"], info["cores"], info["kernel"], info["commit"]))
    results = run(cfg)
    print(render(cfg, results))


if __name__ == "__main__":
    main(sys.argv[1:])
