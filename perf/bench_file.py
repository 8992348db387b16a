#!/usr/bin/env python3
"""bench_file.py — save and restore of a paused guest to a file (issue 6's
figures): migd mapped-ram with 1/2/4 channels, with and without direct-io,
against QEMU 10.0 mapped-ram + multifd and QEMU 7.2 `exec:cat > FILE`, and
dd's sequential write/read of the same size, on each target directory (the
project's disk and /dev/shm by default).

Every source maps the same RAM image (random or mixed content, a shared
file on /dev/shm), so all write identical pages; destinations use anonymous
RAM (not prefaulted). Save time = `migrate` to status completed; the file
is then fsync'ed and dropped from the page cache (posix_fadvise), so the
restore (`migrate-incoming` to completed) reads from the device (tmpfs
has no device: there it reads memory). Configurations run in ABBA order
per repetition; the table shows medians (min-max) in GB/s of RAM size.
Usage:
  perf/bench_file.py [--size 4G] [--reps 2] [--content random,mixed]
                     [--dirs DIR,...] [--quick]
--quick: 256 MiB, one repetition, random only, fewer configurations (a
sanity run on a shared machine).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from perf.bench_qemu import ram_args, start  # noqa: E402
from tests.interop.qemutest import fill_ram_file, qemu_binary  # noqa: E402
from tests.system.migdtest import MIGD, wait_for  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30


def parse_size(s):
    mult = {"M": MiB, "G": GiB}.get(s[-1].upper(), 1)
    return int(s[:-1] if s[-1].isalpha() else s) * mult


def set_caps(q, caps):
    q.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True} for c in caps])


def configure(q, cfg):
    caps = ["mapped-ram"] if cfg["mapped_ram"] else []
    if cfg["channels"]:
        caps.append("multifd")
    if caps:
        set_caps(q, caps)
    params = {}
    if cfg["channels"]:
        params["multifd-channels"] = cfg["channels"]
    if cfg.get("direct_io"):
        params["direct-io"] = True
    params["max-bandwidth"] = 0  # unlimited (QEMU's default is 128 MiB/s)
    if params:
        q.cmd("migrate-set-parameters", params)


def binary(kind):
    return {"migd": MIGD, "qemu10": qemu_binary("10.0"),
            "qemu72": qemu_binary("7.2")}[kind]


def vm(cfg, size, tmp, name, image=None, incoming=False):
    sock = os.path.join(tmp, name + ".sock")
    if os.path.exists(sock):
        os.unlink(sock)
    cmd = [binary(cfg["kind"]), "-M", "none", "-m", str(size // MiB) + "M",
           "-S", "-qmp", "unix:%s,server=on,wait=off" % sock]
    if cfg["kind"] != "migd":
        cmd += ["-nodefaults", "-display", "none"]
    cmd += ram_args(size, image)
    if incoming:
        cmd += ["-incoming", "defer"]
    p, q = start(cmd, sock)
    # QEMU's monitor does not answer while a paused guest's RAM is being
    # written under its big lock: wait as long as a save can take.
    q.sock.settimeout(600)
    return p, q


def wait_done(q, timeout=600):
    last = {}

    def done():
        nonlocal last
        last = q.cmd("query-migrate")
        return last.get("status") in ("completed", "failed")
    wait_for(done, timeout=timeout, what="migration")
    if last["status"] != "completed":
        raise RuntimeError("migration failed: %s" % last)
    return last


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def stop(p, q):
    try:
        q.cmd("quit")
    except Exception:  # noqa: BLE001 - it may be gone already
        pass
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def uris(cfg, path):
    if cfg["kind"] == "qemu72":
        return "exec:cat > %s" % path, "exec:cat %s" % path
    return "file:" + path, "file:" + path


def run_vm(cfg, size, image, path, tmp):
    """(save s, restore s) of one configuration."""
    save_uri, load_uri = uris(cfg, path)
    p, q = vm(cfg, size, tmp, "src", image)
    try:
        configure(q, cfg)
        t0 = time.monotonic()
        q.cmd("migrate", uri=save_uri)
        wait_done(q)
        t_save = time.monotonic() - t0
    finally:
        stop(p, q)
    drop_cache(path)
    p, q = vm(cfg, size, tmp, "dst", incoming=True)
    try:
        configure(q, cfg)
        t0 = time.monotonic()
        q.cmd("migrate-incoming", uri=load_uri)
        wait_done(q)
        t_load = time.monotonic() - t0
    finally:
        stop(p, q)
    os.unlink(path)
    return t_save, t_load


def run_dd(size, path, direct):
    count = size // MiB
    flag = ["oflag=direct"] if direct else ["conv=fdatasync"]
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", "of=" + path, "bs=1M",
                    "count=%d" % count] + flag, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_w = time.monotonic() - t0
    drop_cache(path)
    t0 = time.monotonic()
    subprocess.run(["dd", "if=" + path, "of=/dev/null", "bs=1M"]
                   + (["iflag=direct"] if direct else []), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_r = time.monotonic() - t0
    os.unlink(path)
    return t_w, t_r


def configs(quick, can_direct):
    out = [{"name": "dd", "kind": "dd"}]
    for ch in ((2,) if quick else (1, 2, 4)):
        out.append({"name": "migd mr c%d" % ch, "kind": "migd",
                    "mapped_ram": True, "channels": ch})
        if can_direct:
            out.append({"name": "migd mr c%d dio" % ch, "kind": "migd",
                        "mapped_ram": True, "channels": ch,
                        "direct_io": True})
    if qemu_binary("10.0"):
        for ch in ((2,) if quick else (1, 4)):
            out.append({"name": "qemu10 mr c%d" % ch, "kind": "qemu10",
                        "mapped_ram": True, "channels": ch})
    if qemu_binary("7.2"):
        out.append({"name": "qemu7.2 exec:cat", "kind": "qemu72",
                    "mapped_ram": False, "channels": 0})
    return out


def direct_ok(d):
    path = os.path.join(d, ".odirect-probe")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600))
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(path):
            os.unlink(path)


def bench_dir(d, size, image, reps, quick):
    tmp = tempfile.mkdtemp(prefix="bench-file-", dir=d)
    cfgs = configs(quick, direct_ok(tmp))
    res = {c["name"]: ([], []) for c in cfgs}
    for r in range(reps):
        order = cfgs if r % 2 == 0 else list(reversed(cfgs))  # ABBA
        for c in order:
            path = os.path.join(tmp, "vm.sav")
            if c["kind"] == "dd":
                ts, tl = run_dd(size, path, direct_ok(tmp))
            else:
                ts, tl = run_vm(c, size, image, path, tmp)
            res[c["name"]][0].append(size / ts / 1e9)
            res[c["name"]][1].append(size / tl / 1e9)
            print("  %-18s save %.2f GB/s  restore %.2f GB/s"
                  % (c["name"], size / ts / 1e9, size / tl / 1e9),
                  file=sys.stderr)
    os.rmdir(tmp)
    return res


def fmt(vals):
    if len(vals) == 1:
        return "%.2f" % vals[0]
    return "%.2f (%.2f-%.2f)" % (statistics.median(vals), min(vals), max(vals))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="4G")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--content", default="random,mixed")
    ap.add_argument("--dirs", default=os.path.join(ROOT, "build") + ",/dev/shm")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.size, a.reps, a.content = "256M", 1, "random"
    size = parse_size(a.size)
    for content in a.content.split(","):
        image = os.path.join("/dev/shm", "bench-file-%d.ram" % os.getpid())
        fill_ram_file(image, size, content)
        try:
            for d in a.dirs.split(","):
                print("== %s, %s, %d MiB (dd: %s)" % (
                    d, content, size // MiB,
                    "O_DIRECT" if direct_ok(d) else "fdatasync"))
                res = bench_dir(d, size, image, a.reps, a.quick)
                print("| configuration | save GB/s | restore GB/s |")
                print("|---|---|---|")
                for name, (s, r) in res.items():
                    print("| %s | %s | %s |" % (name, fmt(s), fmt(r)))
        finally:
            os.unlink(image)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
