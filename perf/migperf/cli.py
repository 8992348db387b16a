"""cli.py — `migperf run` and `migperf compare` (and `migperf bench`, the
`make bench` suite): argument parsing and top-level flow.
"""
import argparse
import os
import sys

from migperf import VERSION, report, scenario
from migperf.runner import Runner
from migperf.util import ROOT


def _common(p):
    p.add_argument("--build", default=os.environ.get("MIGPERF_BUILD") or
                   os.path.join(ROOT, "build"),
                   help="directory holding migd and ramdigest [$MIGPERF_"
                   "BUILD, else build]")
    p.add_argument("--qemu-binary", help="QEMU for --peer qemu [build/"
                   "qemu-10.0/qemu-system-x86_64, else PATH]")
    p.add_argument("--src-qmp", metavar="ADDR", help="drive a running "
                   "source: unix:PATH or tcp:HOST:PORT")
    p.add_argument("--dst-qmp", metavar="ADDR", help="drive a running "
                   "destination (started with -incoming defer)")
    p.add_argument("--dst-host", help="address the source connects to "
                   "(tcp/rdma) [127.0.0.1]")
    p.add_argument("--rdma-host", metavar="ADDR", help="with --transport "
                   "rdma: the destination's RDMA interface address "
                   "(rdma:ADDR:PORT; required, lo does not work) "
                   "[--dst-host]")
    scenario.add_options(p)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="migperf", description=__doc__.split(
        "\n")[0])
    p.add_argument("--version", action="version", version=VERSION)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="one migration scenario")
    _common(r)
    r.add_argument("--output", "-o", metavar="FILE.json")
    r.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar, no summary")
    c = sub.add_parser("compare", help="a matrix of scenarios")
    _common(c)
    c.add_argument("--vary", action="append", default=[],
                   metavar="FIELD=V1,V2,...", required=True)
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--output-dir", required=True)
    c.add_argument("--title", help="title of the tables and plots")
    c.add_argument("--no-plots", action="store_true")
    b = sub.add_parser("bench", help="the make bench suite")
    from migperf import bench
    bench.add_options(b)
    return p.parse_args(argv)


def cmd_run(args, argv):
    scen = scenario.from_args(args)
    bar = report.ProgressBar() if not args.quiet else None
    runner = Runner(args.build, args.qemu_binary, args.src_qmp,
                    args.dst_qmp, args.dst_host, progress=bar,
                    rdma_host=args.rdma_host)
    try:
        rep = runner.run(scen)
    finally:
        if bar:
            bar.done()
        runner.close()
    rep = dict({"migperf": VERSION, "command": ["migperf"] + argv}, **rep)
    if args.output:
        report.write_json(args.output, rep)
    if not args.quiet:
        print(report.summary(rep))
    return 0 if rep["result"].get("success") else 1


def main(argv):
    try:
        args = parse_args(argv)
        if args.cmd == "run":
            return cmd_run(args, argv)
        if args.cmd == "compare":
            from migperf import compare
            return compare.main(args, argv)
        from migperf import bench
        return bench.main(args)
    except ValueError as e:
        print("migperf: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
