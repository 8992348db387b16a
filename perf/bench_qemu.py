#!/usr/bin/env python3
"""bench_qemu.py — migd vs QEMU 10.0 side by side (issue 4's figures).

Both sources map the same random RAM image (a file on /dev/shm, shared), so
they send identical pages; both destinations use anonymous RAM (not
prefaulted, as a real destination) unless --prefault. Pairs run in ABBA
order; the script prints medians and min/max of GB/s, downtime, CPU
seconds per GB of each process and how much of the destination's RAM got
transparent huge pages. Usage:
  perf/bench_qemu.py [--size 2G] [--pairs 4] [--channels 2]
                     [--transport tcp|unix] [--zero] [--prefault]
                     [--kinds migd,migd-thp-off,qemu]
                     [--memory asis|warm|cold] [--logs DIR]

--memory sets the state of the machine's free memory before every run, so
that runs can be compared on equal terms: `warm` first faults and frees
size + 256 MiB of anonymous huge pages (free memory the guest kernel has not
yet handed back to the host: the next huge-page faults are cheap); `cold`
waits 15 s, long enough for free page reporting to return freed memory to
the host (every first touch then costs the host's fault). `asis` (default)
leaves it to the previous run, as the issue's ABBA comparison does.
"""
import argparse
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.system.migdtest import MIGD, QMP, free_tcp_port, wait_for  # noqa: E402
from tests.interop.qemutest import qemu_binary  # noqa: E402

GiB = 1 << 30


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def start(cmd, sock, log=None):
    err = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=err)
    if log:
        err.close()
    wait_for(lambda: os.path.exists(sock) or p.poll() is not None, what=sock)
    time.sleep(0.05)
    q = QMP(sock)
    q.negotiate()
    return p, q


def ram_args(size, path=None, prefault=False):
    if path:
        return ["-object", "memory-backend-file,id=ram0,size=%d,mem-path=%s,share=on"
                % (size, path), "-machine", "memory-backend=ram0"]
    extra = ",prealloc=on" if prefault else ""
    return ["-object", "memory-backend-ram,id=ram0,size=%d%s" % (size, extra),
            "-machine", "memory-backend=ram0"]


def anon_huge_mib(pid):
    """AnonHugePages of a process, MiB (how much of its RAM got huge pages)."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) // 1024
    return 0


MADV_POPULATE_WRITE = 23  # Linux 5.14


def set_memory_state(state, size):
    """Leaves the machine's free memory warm or cold (see the docstring)."""
    if state == "cold":
        time.sleep(15)
    elif state == "warm":
        n = size + (256 << 20)
        m = mmap.mmap(-1, n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_HUGEPAGE)
        try:
            m.madvise(MADV_POPULATE_WRITE)
        except OSError:
            for off in range(0, n, 4096):
                m[off] = 1
        m.close()


def one_run(kind, args, image, tmp):
    binary = qemu_binary("10.0") if kind == "qemu" else MIGD
    base = [binary, "-M", "none", "-m", str(args.size_bytes // (1 << 20)) + "M"]
    if kind == "qemu":
        base += ["-nodefaults", "-display", "none"]
    ssock, dsock = os.path.join(tmp, kind + "-s.sock"), os.path.join(tmp, kind + "-d.sock")
    for s in (ssock, dsock):
        if os.path.exists(s):
            os.unlink(s)
    logs = {side: os.path.join(args.logs, "%s-%s.log" % (kind, side)) if args.logs else None
            for side in ("src", "dst")}
    # migd writes its log with -D; QEMU's stderr goes to the same file
    log_args = {side: ["-D", path] if path and kind != "qemu" else []
                for side, path in logs.items()}
    src, qs = start(base + log_args["src"] + ram_args(args.size_bytes, image) + ["-S", "-qmp",
                    "unix:%s,server=on,wait=off" % ssock], ssock, logs["src"])
    dst_ram = ram_args(args.size_bytes, prefault=args.prefault)
    if kind.startswith("migd-thp-"):  # migd-thp-off / -on: x-thp=
        dst_ram[1] += ",x-thp=" + kind[len("migd-thp-"):]
    dst, qd = start(base + log_args["dst"] + dst_ram +
                    ["-S", "-incoming", "defer", "-qmp",
                     "unix:%s,server=on,wait=off" % dsock], dsock, logs["dst"])
    try:
        for q in (qs, qd):
            if args.channels:
                q.cmd("migrate-set-capabilities", capabilities=[
                    {"capability": "multifd", "state": True}])
                q.cmd("migrate-set-parameters", {"multifd-channels": args.channels})
        qs.cmd("migrate-set-parameters", {"max-bandwidth": 0})
        if args.transport == "tcp":
            uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        else:
            uri = "unix:%s/%s-mig.sock" % (tmp, kind)
        qd.cmd("migrate-incoming", uri=uri)
        c0 = (cpu_seconds(src.pid), cpu_seconds(dst.pid))
        qs.cmd("migrate", uri=uri)
        while True:
            info = qs.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.02)
        wait_for(lambda: qd.cmd("query-migrate").get("status") in ("completed", "failed"),
                 timeout=60, what="destination done")
        c1 = (cpu_seconds(src.pid), cpu_seconds(dst.pid))
        huge = anon_huge_mib(dst.pid)
        if info["status"] != "completed":
            raise RuntimeError("%s: %s" % (kind, info))
        gb = args.size_bytes / 1e9
        return {"gbs": gb / (info["total-time"] / 1000.0), "downtime": info.get("downtime"),
                "src_cpu": (c1[0] - c0[0]) / gb, "dst_cpu": (c1[1] - c0[1]) / gb,
                "huge_mib": huge}
    finally:
        for p, q in ((src, qs), (dst, qd)):
            try:
                q.cmd("quit")
            except Exception:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def fmt(vals, key, f="%.2f"):
    xs = [v[key] for v in vals]
    return ("%s (%s–%s)" % (f, f, f)) % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="2G")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--transport", default="tcp", choices=("tcp", "unix"))
    ap.add_argument("--zero", action="store_true", help="zero RAM instead of random")
    ap.add_argument("--prefault", action="store_true", help="prealloc=on destinations")
    ap.add_argument("--logs", help="append each process's log (migd: -D) or stderr "
                    "to DIR/KIND-src|dst.log")
    ap.add_argument("--memory", default="asis", choices=("asis", "warm", "cold"),
                    help="state of free memory before each run")
    ap.add_argument("--kinds", default="migd,qemu",
                    help="comma list of migd, migd-thp-off, migd-thp-on, qemu; "
                    "run in this order, then reversed (ABBA)")
    args = ap.parse_args()
    args.size_bytes = int(args.size[:-1]) * GiB if args.size.endswith("G") else int(args.size)
    tmp = tempfile.mkdtemp(prefix="bench-qemu-")
    image = "/dev/shm/bench-qemu-%d.ram" % os.getpid()
    with open(image, "wb") as f:
        if args.zero:
            f.truncate(args.size_bytes)
        else:
            chunk = 64 << 20
            for _ in range(args.size_bytes // chunk):
                f.write(os.urandom(chunk))
    kinds = args.kinds.split(",")
    results = {k: [] for k in kinds}
    try:
        for i in range(args.pairs):
            for kind in (kinds if i % 2 == 0 else kinds[::-1]):
                set_memory_state(args.memory, args.size_bytes)
                r = one_run(kind, args, image, tmp)
                results[kind].append(r)
                print("run %d %s: %.2f GB/s downtime %s ms, dst huge pages %d MiB"
                      % (i, kind, r["gbs"], r["downtime"], r["huge_mib"]), flush=True)
    finally:
        os.unlink(image)
    print("\nfree memory before each run: %s" % args.memory)
    print("\n| %s, %s RAM, %s, multifd %d, destination %s | GB/s | slowest/median "
          "| downtime ms | src CPU s/GB | dst CPU s/GB | dst huge pages MiB |"
          % (args.size, "zero" if args.zero else "random", args.transport, args.channels,
             "prefaulted" if args.prefault else "anonymous"))
    print("|---|---|---|---|---|---|---|")
    names = {"migd": "migd → migd", "qemu": "QEMU 10.0 → QEMU 10.0",
             "migd-thp-off": "migd → migd (x-thp=off)",
             "migd-thp-on": "migd → migd (x-thp=on)"}
    for kind in kinds:
        v = results[kind]
        med = statistics.median(r["gbs"] for r in v)
        print("| %s | %s | %d%% | %s | %s | %s | %s |"
              % (names.get(kind, kind), fmt(v, "gbs"), 100 * min(r["gbs"] for r in v) / med,
                 fmt(v, "downtime", "%d"), fmt(v, "src_cpu"), fmt(v, "dst_cpu"),
                 fmt(v, "huge_mib", "%d")))
    if "qemu" in results:
        for kind in kinds:
            if kind != "qemu":
                ratio = statistics.median(r["gbs"] for r in results[kind]) / \
                    statistics.median(r["gbs"] for r in results["qemu"])
                print("%s / QEMU median throughput: %.2fx" % (kind, ratio))


if __name__ == "__main__":
    main()
