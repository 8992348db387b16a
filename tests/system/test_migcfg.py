"""Migration capabilities and parameters over real QMP: QEMU 9.0's defaults,
exact error classes and messages for wrong types, unknown members, ranges
and capability combinations, all-or-nothing updates, capabilities migd
refuses, and -global migration.PROP on the command line showing in the
queries (and bad -global values stopping migd as QEMU stops)."""
import unittest

from tests.system import migdtest

GE = "GenericError"

DEFAULT_PARAMS = {
    "announce-initial": 50, "announce-max": 550, "announce-rounds": 5,
    "announce-step": 100, "compress-level": 1, "compress-threads": 8,
    "compress-wait-thread": True, "decompress-threads": 2,
    "throttle-trigger-threshold": 50, "cpu-throttle-initial": 20,
    "cpu-throttle-increment": 10, "cpu-throttle-tailslow": False,
    "tls-creds": "", "tls-hostname": "", "tls-authz": "",
    "max-bandwidth": 134217728, "avail-switchover-bandwidth": 0,
    "downtime-limit": 300, "x-checkpoint-delay": 20000,
    "block-incremental": False, "multifd-channels": 2,
    "xbzrle-cache-size": 67108864, "max-postcopy-bandwidth": 0,
    "max-cpu-throttle": 99, "multifd-compression": "none",
    "multifd-zlib-level": 1, "multifd-zstd-level": 1,
    "x-vcpu-dirty-limit-period": 1000, "vcpu-dirty-limit": 1,
    "mode": "normal", "zero-page-detection": "multifd", "direct-io": False,
}

CAPS = ["xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress",
        "events", "postcopy-ram", "x-colo", "release-ram", "block",
        "return-path", "pause-before-switchover", "multifd", "dirty-bitmaps",
        "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
        "validate-uuid", "background-snapshot", "zero-copy-send",
        "postcopy-preempt", "switchover-ack", "dirty-limit", "mapped-ram"]

ZC = "Zero copy only available for non-compressed non-TLS multifd migration"
MR = "Mapped-ram only available for non-compressed non-TLS multifd migration"


def caps(**states):
    return {"capabilities": [{"capability": k.replace("_", "-"), "state": v}
                             for k, v in states.items()]}


class MigcfgCase(migdtest.MigdTestCase):
    def setUp(self):
        super().setUp()
        self.m = self.migd()
        self.q = self.m.qmp()

    def params(self):
        return self.q.cmd("query-migrate-parameters")

    def caps_on(self):
        return {c["capability"] for c in self.q.cmd("query-migrate-capabilities")
                if c["state"]}

    def set_params_error(self, args, desc):
        self.assertQMPError(self.q.execute("migrate-set-parameters", args),
                            GE, desc)

    def set_caps_error(self, args, desc):
        self.assertQMPError(self.q.execute("migrate-set-capabilities", args),
                            GE, desc)


class Defaults(MigcfgCase):
    def test_parameters(self):
        got = self.params()
        self.assertEqual(got, DEFAULT_PARAMS)
        self.assertEqual(list(got), list(DEFAULT_PARAMS))  # schema order

    def test_capabilities(self):
        got = self.q.cmd("query-migrate-capabilities")
        self.assertEqual(got, [{"capability": c, "state": False} for c in CAPS])

    def test_query_migrate_before_any_migration(self):
        self.assertEqual(self.q.cmd("query-migrate"), {})


class SetParameters(MigcfgCase):
    def test_set_and_query(self):
        self.q.cmd("migrate-set-parameters", {
            "multifd-channels": 8, "max-bandwidth": 1 << 30,
            "downtime-limit": 2000000, "multifd-compression": "zstd",
            "multifd-zstd-level": 20, "tls-creds": "tls0",
            "tls-hostname": "dst", "zero-page-detection": "legacy",
            "x-checkpoint-delay": 4294967295, "mode": "cpr-reboot"})
        p = self.params()
        self.assertEqual(p["multifd-channels"], 8)
        self.assertEqual(p["max-bandwidth"], 1 << 30)
        self.assertEqual(p["downtime-limit"], 2000000)
        self.assertEqual(p["multifd-compression"], "zstd")
        self.assertEqual(p["multifd-zstd-level"], 20)
        self.assertEqual(p["tls-creds"], "tls0")
        self.assertEqual(p["tls-hostname"], "dst")
        self.assertEqual(p["zero-page-detection"], "legacy")
        self.assertEqual(p["x-checkpoint-delay"], 4294967295)
        self.assertEqual(p["mode"], "cpr-reboot")
        self.q.cmd("migrate-set-parameters",
                   {"tls-creds": None, "tls-hostname": None, "tls-authz": None})
        p = self.params()
        self.assertEqual((p["tls-creds"], p["tls-hostname"], p["tls-authz"]),
                         ("", "", ""))

    def test_wrong_types(self):
        cases = [
            ({"multifd-channels": "8"},
             "Parameter 'multifd-channels' expects uint64"),
            ({"multifd-channels": 256},
             "Parameter 'multifd-channels' expects uint8_t"),
            ({"max-bandwidth": 1.5}, "Parameter 'max-bandwidth' expects uint64"),
            ({"x-checkpoint-delay": 1 << 32},
             "Parameter 'x-checkpoint-delay' expects uint32_t"),
            ({"cpu-throttle-tailslow": "yes"},
             "Invalid parameter type for 'cpu-throttle-tailslow', expected: "
             "boolean"),
            ({"tls-creds": 1},
             "Invalid parameter type for 'tls-creds', expected: StrOrNull"),
            ({"multifd-compression": "lz4"},
             "Parameter 'multifd-compression' does not accept value 'lz4'"),
            ({"mode": None},
             "Invalid parameter type for 'mode', expected: string"),
            ({"block-bitmap-mapping": {}},
             "Invalid parameter type for 'block-bitmap-mapping', expected: "
             "array"),
        ]
        for args, desc in cases:
            with self.subTest(args=args):
                self.set_params_error(args, desc)
        self.assertEqual(self.params(), DEFAULT_PARAMS)

    def test_unknown_member(self):
        self.set_params_error({"no-such-parameter": 1},
                              "Parameter 'no-such-parameter' is unexpected")

    def test_range_boundaries(self):
        cases = [
            ("multifd-channels", 1, 255, [0],
             "Parameter 'multifd_channels' expects a value between 1 and 255"),
            ("downtime-limit", 0, 2000000, [2000001],
             "Parameter 'downtime_limit' expects an integer in the range of 0 "
             "to (2000 * 1000) ms"),
            ("throttle-trigger-threshold", 1, 100, [0, 101],
             "Parameter 'throttle_trigger_threshold' expects an integer in "
             "the range of 1 to 100"),
            ("cpu-throttle-increment", 1, 99, [0, 100],
             "Parameter 'cpu_throttle_increment' expects an integer in the "
             "range of 1 to 99"),
            ("multifd-zlib-level", 0, 9, [10],
             "Parameter 'multifd_zlib_level' expects a value between 0 and 9"),
            ("multifd-zstd-level", 0, 20, [21],
             "Parameter 'multifd_zstd_level' expects a value between 0 and 20"),
            ("compress-level", 0, 9, [10],
             "Parameter 'compress_level' expects a value between 0 and 9"),
            ("announce-step", 1, 10000, [0, 10001],
             "Parameter 'announce_step' expects a value between 0 and 10000"),
            ("x-vcpu-dirty-limit-period", 1, 1000, [0, 1001],
             "Parameter 'x-vcpu-dirty-limit-period' expects a value between "
             "1 and 1000"),
            ("vcpu-dirty-limit", 1, 1 << 40, [0],
             "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"),
            ("xbzrle-cache-size", 4096, 1 << 40, [2048, 12288],
             "Parameter 'xbzrle_cache_size' expects a power of two no less "
             "than the target page size"),
            ("max-cpu-throttle", 20, 99, [19, 100],
             "Parameter 'max_cpu_throttle' expects an integer in the range of "
             "cpu_throttle_initial to 99"),
        ]
        for name, lo, hi, bad, desc in cases:
            with self.subTest(param=name):
                for v in (lo, hi):
                    self.q.cmd("migrate-set-parameters", {name: v})
                    self.assertEqual(self.params()[name], v)
                for v in bad:
                    self.set_params_error({name: v}, desc)
                    self.assertEqual(self.params()[name], hi)

    def test_all_or_nothing(self):
        self.set_params_error(
            {"multifd-channels": 16, "tls-creds": "x", "announce-rounds": 1001},
            "Parameter 'announce_rounds' expects a value between 0 and 1000")
        self.assertEqual(self.params(), DEFAULT_PARAMS)

    def test_block_bitmap_mapping(self):
        mapping = [{"node-name": "drive0", "alias": "d0", "bitmaps": [
            {"name": "b0", "alias": "a0", "transform": {"persistent": True}}]}]
        self.q.cmd("migrate-set-parameters", {"block-bitmap-mapping": mapping})
        self.assertEqual(self.params()["block-bitmap-mapping"], mapping)
        self.set_params_error(
            {"block-bitmap-mapping": [
                {"node-name": "n", "alias": "a", "bitmaps": []},
                {"node-name": "m", "alias": "a", "bitmaps": []}]},
            "Invalid mapping given for block-bitmap-mapping: The node alias "
            "'a' is used twice")
        self.set_params_error(
            {"block-bitmap-mapping": [{"node-name": "n", "bitmaps": []}]},
            "Parameter 'block-bitmap-mapping[0].alias' is missing")
        self.assertEqual(self.params()["block-bitmap-mapping"], mapping)


class SetCapabilities(MigcfgCase):
    def test_set_and_query(self):
        self.q.cmd("migrate-set-capabilities", caps(events=True, multifd=True))
        self.assertEqual(self.caps_on(), {"events", "multifd"})
        self.q.cmd("migrate-set-capabilities", caps(multifd=False))
        self.assertEqual(self.caps_on(), {"events"})

    def test_input_errors(self):
        self.set_caps_error({}, "Parameter 'capabilities' is missing")
        self.set_caps_error(
            {"capabilities": [{"capability": "turbo", "state": True}]},
            "Parameter 'capability' does not accept value 'turbo'")
        self.set_caps_error(
            {"capabilities": [{"capability": "events", "state": "on"}]},
            "Invalid parameter type for 'capabilities[0].state', expected: "
            "boolean")
        self.set_caps_error({"capabilities": [], "extra": True},
                            "Parameter 'extra' is unexpected")

    def test_refused(self):
        for cap in ("block", "x-colo", "compress", "zero-blocks"):
            with self.subTest(cap=cap):
                r = self.q.execute("migrate-set-capabilities",
                                   {"capabilities": [{"capability": cap,
                                                      "state": True}]})
                self.assertEqual(r["error"]["class"], GE)
                self.assertTrue(r["error"]["desc"].startswith(
                    "Capability '%s' is not supported by migd: " % cap), r)
                self.q.cmd("migrate-set-capabilities",
                           {"capabilities": [{"capability": cap,
                                              "state": False}]})
        self.assertEqual(self.caps_on(), set())

    def test_combinations(self):
        self.set_caps_error(caps(zero_copy_send=True), ZC)
        self.set_caps_error(caps(multifd=True, xbzrle=True),
                            "Multifd is not compatible with xbzrle")
        # postcopy-ram + multifd: allowed as in QEMU 10.1 (test_postcopy)
        self.set_caps_error(caps(postcopy_preempt=True),
                            "Postcopy preempt requires postcopy-ram")
        self.set_caps_error(caps(switchover_ack=True),
                            "Capability 'switchover-ack' requires capability "
                            "'return-path'")
        self.set_caps_error(caps(dirty_limit=True, auto_converge=True),
                            "dirty-limit conflicts with auto-converge either "
                            "of then available currently")
        self.set_caps_error(caps(mapped_ram=True, xbzrle=True),
                            "Mapped-ram migration is incompatible with xbzrle")
        self.set_caps_error(caps(background_snapshot=True, return_path=True),
                            "Background-snapshot is not compatible with "
                            "return-path")
        self.assertEqual(self.caps_on(), set())

    def test_zero_copy_both_directions(self):
        self.q.cmd("migrate-set-capabilities",
                   caps(multifd=True, zero_copy_send=True))
        self.set_params_error({"multifd-compression": "zstd"}, ZC)
        self.set_params_error({"tls-creds": "tls0"}, ZC)
        self.q.cmd("migrate-set-capabilities", caps(zero_copy_send=False))
        self.q.cmd("migrate-set-parameters", {"multifd-compression": "zlib"})
        self.set_caps_error(caps(zero_copy_send=True), ZC)

    def test_mapped_ram_both_directions(self):
        self.q.cmd("migrate-set-capabilities", caps(mapped_ram=True))
        self.set_params_error({"multifd-compression": "zlib"}, MR)
        self.q.cmd("migrate-set-capabilities", caps(mapped_ram=False))
        self.q.cmd("migrate-set-parameters", {"tls-creds": "tls0"})
        self.set_caps_error(caps(mapped_ram=True), MR)


class GlobalProperties(migdtest.MigdTestCase):
    def test_globals_show_in_queries(self):
        g = ["multifd-channels=7", "x-multifd=on", "x-zero-copy-send=on",
             "xbzrle-cache-size=128M", "x-max-bandwidth=1G",
             "multifd-compression=none", "zero-page-detection=legacy",
             "tls-hostname=peer", "x-events=yes", "mapped-ram=off",
             "send-switchover-start=off",
             "multifd-flush-after-each-section=on", "x-clear-bitmap-shift=20"]
        args = []
        for item in g:
            args += ["-global", "migration." + item]
        m = self.migd(args)
        q = m.qmp()
        p = q.cmd("query-migrate-parameters")
        self.assertEqual(p["multifd-channels"], 7)
        self.assertEqual(p["xbzrle-cache-size"], 128 << 20)
        self.assertEqual(p["max-bandwidth"], 1 << 30)
        self.assertEqual(p["zero-page-detection"], "legacy")
        self.assertEqual(p["tls-hostname"], "peer")
        on = {c["capability"] for c in q.cmd("query-migrate-capabilities")
              if c["state"]}
        self.assertEqual(on, {"multifd", "zero-copy-send", "events"})

    def bad_global(self, item, desc):
        r = migdtest.run_migd(["-global", "migration." + item])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(desc, r.stderr)

    def test_bad_globals(self):
        self.bad_global("no-such-prop=1",
                        "can't apply global migration.no-such-prop=1: "
                        "Property 'migration.no-such-prop' not found")
        self.bad_global("multifd-channels=lots",
                        "can't apply global migration.multifd-channels=lots: "
                        "Parameter 'multifd-channels' expects uint64")
        self.bad_global("x-multifd=perhaps",
                        "can't apply global migration.x-multifd=perhaps: "
                        "Invalid parameter type for 'x-multifd', expected: "
                        "boolean")
        self.bad_global("xbzrle-cache-size=1Z",
                        "can't apply global migration.xbzrle-cache-size=1Z: "
                        "Parameter 'xbzrle-cache-size' expects a "
                        "non-negative number below 2^64")
        # validated as a whole afterwards, like migration_object_check()
        self.bad_global("multifd-channels=0",
                        "Parameter 'multifd_channels' expects a value between "
                        "1 and 255")
        self.bad_global("x-zero-copy-send=on", ZC)
        self.bad_global("x-block=on", "Capability 'block' is not supported "
                                      "by migd: ")


if __name__ == "__main__":
    unittest.main()
