#!/usr/bin/env python3
"""bench_compress.py — multifd compression, migd vs QEMU 10.0 side by side.

Both sources map the same RAM image (a file on /dev/shm, shared) of mixed
content: per page 1/4 zero, 1/2 random, 1/4 text-like (words copied from
a 64 KiB pool at random offsets, like the guest workload's "mixed"), so
both send identical pages. Destinations use anonymous RAM. For each method
the pairs run in ABBA order; the script prints medians (min–max) of
throughput (RAM size / total-time), wire bytes (the source's
ram.transferred), and CPU seconds per GB of RAM of each process. Usage:
  perf/bench_compress.py [--size 4G] [--pairs 3] [--channels 2]
                         [--methods zlib,zstd] [--level N]
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from perf.bench_qemu import cpu_seconds, ram_args, start  # noqa: E402
from tests.system.migdtest import MIGD, free_tcp_port, wait_for  # noqa: E402
from tests.interop.qemutest import qemu_binary  # noqa: E402

GiB = 1 << 30
PAGE = 4096
WORDS = (b"the migration of a guest moves its memory pages over the network "
         b"while the virtual machine keeps running and dirtying memory ").split()


def text_pool(rng, size=64 << 10):
    out = bytearray()
    while len(out) < size + PAGE:
        out += rng.choice(WORDS) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out)


def fill_mixed(path, size, seed=7):
    """1/4 zero, 1/2 random, 1/4 text pages, in a random order."""
    rng = random.Random(seed)
    pool = text_pool(rng)
    chunk_pages = 1024
    with open(path, "wb") as f:
        f.truncate(size)
        for off in range(0, size, chunk_pages * PAGE):
            rand = os.urandom(chunk_pages * PAGE)
            buf = bytearray(chunk_pages * PAGE)
            for i in range(chunk_pages):
                r = rng.random()
                if r < 0.25:
                    continue
                s = slice(i * PAGE, (i + 1) * PAGE)
                if r < 0.75:
                    buf[s] = rand[s]
                else:
                    o = rng.randrange(len(pool) - PAGE)
                    buf[s] = pool[o:o + PAGE]
            f.seek(off)
            f.write(buf)


def setup(q, args, method):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": "multifd", "state": True}])
    params = {"multifd-channels": args.channels,
              "multifd-compression": method}
    if args.level is not None:
        params["multifd-%s-level" % method] = args.level
    q.cmd("migrate-set-parameters", params)


def wait_done(qs, qd):
    while True:
        info = qs.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.02)
    wait_for(lambda: qd.cmd("query-migrate").get("status")
             in ("completed", "failed"), timeout=120, what="destination done")
    return info


def stop(procs):
    for p, q in procs:
        try:
            q.cmd("quit")
        except Exception:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_run(kind, method, args, image, tmp):
    binary = MIGD if kind == "migd" else qemu_binary("10.0")
    base = [binary, "-M", "none", "-m", "%dM" % (args.size_bytes >> 20)]
    if kind == "qemu":
        base += ["-nodefaults", "-display", "none"]
    ssock = os.path.join(tmp, kind + "-s.sock")
    dsock = os.path.join(tmp, kind + "-d.sock")
    for s in (ssock, dsock):
        if os.path.exists(s):
            os.unlink(s)
    src, qs = start(base + ram_args(args.size_bytes, image) + [
        "-S", "-qmp", "unix:%s,server=on,wait=off" % ssock], ssock)
    dst, qd = start(base + ram_args(args.size_bytes) + [
        "-S", "-incoming", "defer", "-qmp",
        "unix:%s,server=on,wait=off" % dsock], dsock)
    try:
        for q in (qs, qd):
            setup(q, args, method)
        qs.cmd("migrate-set-parameters", {"max-bandwidth": 0})
        uri = "tcp:127.0.0.1:%d" % free_tcp_port()
        qd.cmd("migrate-incoming", uri=uri)
        c0 = (cpu_seconds(src.pid), cpu_seconds(dst.pid))
        qs.cmd("migrate", uri=uri)
        info = wait_done(qs, qd)
        c1 = (cpu_seconds(src.pid), cpu_seconds(dst.pid))
        if info["status"] != "completed":
            raise RuntimeError("%s %s: %s" % (kind, method, info))
        gb = args.size_bytes / 1e9
        return {"gbs": gb / (info["total-time"] / 1000.0),
                "secs": info["total-time"] / 1000.0,
                "wire": info["ram"]["transferred"] / 1e6,
                "src_cpu": (c1[0] - c0[0]) / gb,
                "dst_cpu": (c1[1] - c0[1]) / gb}
    finally:
        stop(((src, qs), (dst, qd)))


def fmt(vals, key, f="%.2f"):
    xs = [v[key] for v in vals]
    return ("%s (%s–%s)" % (f, f, f)) % (statistics.median(xs), min(xs),
                                        max(xs))


def table(args, results):
    print("\n| %s mixed RAM, tcp loopback, multifd %d | time s | GB/s | "
          "wire MB | src CPU s/GB | dst CPU s/GB |"
          % (args.size, args.channels))
    print("|---|---|---|---|---|---|")
    for method in args.methods:
        for kind, name in (("migd", "migd → migd"),
                           ("qemu", "QEMU 10.0 → QEMU 10.0")):
            v = results[method][kind]
            print("| %s %s | %s | %s | %s | %s | %s |" % (
                method, name, fmt(v, "secs"), fmt(v, "gbs"),
                fmt(v, "wire", "%.0f"), fmt(v, "src_cpu"),
                fmt(v, "dst_cpu")))
    for method in args.methods:
        m = statistics.median(r["secs"] for r in results[method]["migd"])
        q = statistics.median(r["secs"] for r in results[method]["qemu"])
        print("%s: migd time / QEMU time (medians) = %.2f" % (method, m / q))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="4G")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--methods", default="zlib,zstd")
    ap.add_argument("--level", type=int, default=None)
    args = ap.parse_args()
    args.methods = args.methods.split(",")
    s = args.size
    args.size_bytes = int(s[:-1]) * GiB if s.endswith("G") else int(s)
    tmp = tempfile.mkdtemp(prefix="bench-compress-")
    image = "/dev/shm/bench-compress-%d.ram" % os.getpid()
    fill_mixed(image, args.size_bytes)
    results = {m: {"migd": [], "qemu": []} for m in args.methods}
    try:
        for method in args.methods:
            for i in range(args.pairs):
                order = ("migd", "qemu") if i % 2 == 0 else ("qemu", "migd")
                for kind in order:
                    r = one_run(kind, method, args, image, tmp)
                    results[method][kind].append(r)
                    print("%s run %d %s: %.1f s, %.2f GB/s, wire %.0f MB, "
                          "cpu %.2f/%.2f s/GB" % (
                              method, i, kind, r["secs"], r["gbs"], r["wire"],
                              r["src_cpu"], r["dst_cpu"]), flush=True)
    finally:
        os.unlink(image)
    table(args, results)


if __name__ == "__main__":
    main()
