"""scenario.py — the one Scenario schema migperf runs, compares and reports:
the guest, the migration settings, and where the peers run. Every field
has a command-line option; `compare --vary NAME=V1,V2` sets the same fields.
"""
from migperf.util import parse_size

PATTERNS = ("sequential", "random", "hotcold")
CONTENTS = ("random", "text", "zero", "mixed", "untouched")
TRANSPORTS = ("tcp", "unix", "exec", "fd", "vsock", "file", "rdma")
COMPRESSIONS = ("none", "zlib", "zstd")
TLS_KINDS = ("none", "x509", "psk")
PEERS = ("migd", "qemu")


def _bool(text):
    t = str(text).lower()
    if t in ("1", "on", "yes", "true"):
        return True
    if t in ("0", "off", "no", "false"):
        return False
    raise ValueError("expected on/off, got '%s'" % text)


def _rate(text):
    """--dirty-rate: MB/s of all vCPUs together; 0 or 'idle' = idle."""
    return 0.0 if str(text) == "idle" else float(text)


def _opt_int(text):
    return None if str(text) in ("", "none", "off") else int(text)


def _choice(values):
    def conv(text):
        if text not in values:
            raise ValueError("expected one of %s, got '%s'" %
                             ("|".join(values), text))
        return text
    return conv


# name: (converter, default, help). Order = report order.
FIELDS = {
    # the guest
    "mem": (parse_size, "128M", "guest RAM (K/M/G suffixes)"),
    "cpus": (int, 1, "vCPU threads of the guest workload"),
    "dirty_rate": (_rate, 0.0, "MB/s the vCPUs write, all together "
                   "(0 = idle: RAM is filled once, then left alone)"),
    "working_set": (parse_size, 0, "bytes the workload writes to "
                    "(0 = all RAM)"),
    "pattern": (_choice(PATTERNS), "sequential", "|".join(PATTERNS)),
    "content": (_choice(CONTENTS), "random", "|".join(CONTENTS) +
                ": what the RAM is filled with and the vCPUs write"),
    # the migration
    "transport": (_choice(TRANSPORTS), "tcp", "|".join(TRANSPORTS)),
    "multifd": (int, 0, "multifd channels (0 = single stream); "
                "--vary channels=... sets it too"),
    "compression": (_choice(COMPRESSIONS), "none",
                    "multifd-compression: " + "|".join(COMPRESSIONS)),
    "compression_level": (_opt_int, None, "multifd-zlib/zstd-level"),
    "zero_copy": (_bool, False, "zero-copy-send capability"),
    "rdma_pin_all": (_bool, False, "rdma-pin-all capability (--transport "
                     "rdma): register all guest RAM at setup instead of "
                     "1 MiB chunks on first use"),
    "tls": (_choice(TLS_KINDS), "none", "TLS with throwaway credentials: "
            "|".join(TLS_KINDS)),
    "max_bandwidth": (parse_size, 0, "max-bandwidth in bytes/s (K/M/G "
                      "suffixes), 0 = unlimited"),
    "downtime": (int, 300, "downtime-limit, ms"),
    "mapped_ram": (_bool, False, "mapped-ram capability (file:)"),
    "pause_iters": (_opt_int, None, "stop the source guest after N dirty "
                    "syncs (guestperf's pause)"),
    "auto_converge": (_bool, False, "auto-converge capability"),
    "auto_converge_step": (int, 10, "cpu-throttle-increment with "
                           "auto-converge"),
    "dirty_limit": (int, 0, "dirty-limit capability with this "
                    "vcpu-dirty-limit, MB/s per vCPU (0 = off)"),
    "postcopy": (_bool, False, "postcopy-ram on both sides; "
                 "migrate-start-postcopy after --postcopy-after seconds"),
    "postcopy_preempt": (_bool, False, "postcopy-preempt too (implies "
                         "--postcopy on)"),
    "postcopy_after": (float, 1.0, "seconds of precopy before "
                       "migrate-start-postcopy (with --postcopy)"),
    "postcopy_dst_workload": (_bool, True, "with --postcopy: the "
                              "destination guest runs the workload once it "
                              "runs (guest progress during postcopy; no "
                              "digest check then)"),
    "max_postcopy_bandwidth": (parse_size, 0, "max-postcopy-bandwidth in "
                               "bytes/s, 0 = unlimited"),
    "postcopy_dst_probe": (_bool, False, "with --postcopy: once postcopy "
                           "runs, the destination guest runs the page-"
                           "request latency probe (x-guest-workload "
                           "content=probe: one vCPU reads random missing "
                           "pages one at a time) instead of the workload; "
                           "the report gets probe_* figures"),
    "link": (parse_size, 0, "an emulated link: a relay carrying at most "
             "this many bytes/s from source to destination over all the "
             "migration's connections together (tcp only; 0 = direct)"),
    "max_iters": (int, 30, "cancel after this many dirty syncs"),
    "max_time": (float, 300.0, "cancel after this many seconds"),
    "stopped": (_bool, False, "stop the source guest before migrate "
                "(a non-live migration of frozen RAM)"),
    # where and how it runs
    "peer": (_choice(PEERS), "migd", "migd|qemu: the source and "
             "destination programs"),
    "src_cpus": (str, "", "taskset CPU list of the source"),
    "dst_cpus": (str, "", "taskset CPU list of the destination"),
    "dst_ram": (_choice(("anon", "prealloc", "thp", "thp-auto")), "anon",
                "destination RAM: anonymous, prealloc=on, x-thp=on or "
                "x-thp=auto (migd)"),
    "warmup": (float, 1.0, "seconds the workload runs before migrate"),
    "post_sleep": (float, 0.0, "seconds sampled after completion"),
    "interval": (float, 0.05, "sampling period, s (0.05-0.1)"),
}
ALIASES = {"channels": "multifd", "bandwidth": "max_bandwidth",
           "downtime_limit": "downtime", "zerocopy": "zero_copy",
           "ram": "mem", "smp": "cpus"}


def field_name(name):
    n = name.replace("-", "_")
    n = ALIASES.get(n, n)
    if n not in FIELDS:
        raise ValueError("unknown scenario field '%s'" % name)
    return n


def convert(name, text):
    conv = FIELDS[name][0]
    try:
        return conv(text)
    except ValueError as e:
        raise ValueError("--%s: %s" % (name.replace("_", "-"), e))


def defaults():
    return {k: (v[0](v[1]) if isinstance(v[1], str) and v[0] is not str
                else v[1]) for k, v in FIELDS.items()}


def add_options(parser):
    g = parser.add_argument_group("scenario")
    for name, (_, default, help_) in FIELDS.items():
        g.add_argument("--" + name.replace("_", "-"), dest="f_" + name,
                       metavar="V", help="%s [%s]" % (help_, default))
    parser.add_argument("--set-param", action="append", default=[],
                        metavar="NAME=VALUE", help="any other "
                        "migrate-set-parameters member (both sides)")
    parser.add_argument("--set-cap", action="append", default=[],
                        metavar="NAME=on|off", help="any other capability "
                        "(both sides)")


def from_args(args):
    """The scenario given on the command line, with defaults."""
    scen = defaults()
    for name in FIELDS:
        val = getattr(args, "f_" + name, None)
        if val is not None:
            scen[name] = convert(name, val)
    scen["extra_params"] = dict(_kv(p) for p in args.set_param)
    scen["extra_caps"] = {k: _bool(v) for k, v in
                          (_kv(c) for c in args.set_cap)}
    return check(scen)


def _kv(text):
    if "=" not in text:
        raise ValueError("expected NAME=VALUE, got '%s'" % text)
    k, v = text.split("=", 1)
    try:
        v = int(v)
    except ValueError:
        if v in ("true", "false"):
            v = v == "true"
    return k, v


def check(scen):
    """Refuses what migperf itself cannot set up (the peers decide the
    rest and report it with their own QMP errors)."""
    if scen["cpus"] < 1:
        raise ValueError("--cpus must be at least 1")
    if scen["peer"] == "qemu" and scen["dirty_rate"] > 0:
        raise ValueError("--peer qemu: QEMU -M none has no vCPUs, so no "
                         "guest workload; --dirty-rate must be 0")
    if scen["content"] == "untouched" and scen["dirty_rate"] > 0:
        raise ValueError("--content untouched (fresh RAM) needs "
                         "--dirty-rate 0")
    if scen["postcopy_preempt"]:
        scen["postcopy"] = True
    if scen["postcopy"] and scen["transport"] in ("file", "rdma"):
        raise ValueError("--postcopy needs a stream transport with a "
                         "return path (tcp, unix, vsock)")
    if scen["rdma_pin_all"] and scen["transport"] != "rdma":
        raise ValueError("--rdma-pin-all needs --transport rdma")
    if scen["postcopy_dst_probe"] and not scen["postcopy"]:
        raise ValueError("--postcopy-dst-probe needs --postcopy on")
    if scen["postcopy_dst_probe"] and scen["peer"] != "migd":
        raise ValueError("--postcopy-dst-probe needs a migd destination")
    if scen["link"] and scen["transport"] != "tcp":
        raise ValueError("--link needs --transport tcp")
    if scen["postcopy"] and scen["postcopy_after"] < 0:
        raise ValueError("--postcopy-after must be >= 0")
    if not 0.01 <= scen["interval"] <= 1:
        raise ValueError("--interval must be between 0.01 and 1 s")
    return scen


def describe(scen):
    """A short label of the settings that differ from the defaults."""
    base = defaults()
    skip = {"warmup", "post_sleep", "interval", "extra_params", "extra_caps"}
    parts = ["%s=%s" % (k, v) for k, v in scen.items()
             if k not in skip and base.get(k) != v]
    return " ".join(parts) or "defaults"
