/* test_migcfg.c — unit tests of the migration configuration: QEMU 9.0's
 * defaults, every range boundary, all-or-nothing updates, capability
 * combination rules in both directions, -global parsing, refused
 * capabilities, and the QMP handlers called directly with a fake migd. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/qmp.h"

/* ---- helpers ------------------------------------------------------------ */

static json_t *run(struct migd *md, const char *cmd, const char *args_text,
		   struct mig_error **errp)
{
	size_t n;
	const struct qmp_command *c = migcfg_qmp_commands(&n);
	json_t *args = json_loads(args_text ? args_text : "{}", 0, NULL);
	json_t *ret = NULL;
	bool found = false;

	assert_non_null(args);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(c[i].name, cmd)) {
			ret = c[i].fn(md, NULL, args, errp);
			found = true;
		}
	}
	assert_true(found);
	json_decref(args);
	return ret;
}

static void ok(struct migd *md, const char *cmd, const char *args)
{
	struct mig_error *err = NULL;
	json_t *r = run(md, cmd, args, &err);

	if (!r)
		fail_msg("%s %s: %s", cmd, args,
			 err ? err->desc : "(no error)");
	assert_null(err);
	json_decref(r);
}

static void fails(struct migd *md, const char *cmd, const char *args,
		  const char *desc)
{
	struct mig_error *err = NULL;
	json_t *r = run(md, cmd, args, &err);

	if (r)
		fail_msg("%s %s: succeeded, expected '%s'", cmd, args, desc);
	assert_non_null(err);
	assert_int_equal(err->cls, MIG_ERR_GENERIC);
	if (strcmp(err->desc, desc))
		fail_msg("%s %s:\n got '%s'\nwant '%s'", cmd, args, err->desc,
			 desc);
	mig_error_free(err);
}

static void set_params_ok(struct migd *md, const char *args)
{
	ok(md, "migrate-set-parameters", args);
}

static void set_params_fails(struct migd *md, const char *args,
			     const char *desc)
{
	fails(md, "migrate-set-parameters", args, desc);
}

static json_t *query_params(struct migd *md)
{
	struct mig_error *err = NULL;
	json_t *r = run(md, "query-migrate-parameters", NULL, &err);

	assert_non_null(r);
	return r;
}

static json_t *param_json(struct migd *md, const char *name)
{
	json_t *all = query_params(md);
	json_t *v = json_incref(json_object_get(all, name));

	json_decref(all);
	return v;
}

static long long param_int(struct migd *md, const char *name)
{
	json_t *v = param_json(md, name);
	long long n;

	assert_true(json_is_integer(v));
	n = json_integer_value(v);
	json_decref(v);
	return n;
}

static void assert_param_str(struct migd *md, const char *name,
			     const char *want)
{
	json_t *v = param_json(md, name);

	assert_true(json_is_string(v));
	assert_string_equal(json_string_value(v), want);
	json_decref(v);
}

static void set_caps_ok(struct migd *md, const char *list)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "{\"capabilities\": %s}", list);
	ok(md, "migrate-set-capabilities", buf);
}

static void set_caps_fails(struct migd *md, const char *list, const char *desc)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "{\"capabilities\": %s}", list);
	fails(md, "migrate-set-capabilities", buf, desc);
}

/* "[{"capability": NAME, "state": true}]" for one name. */
static const char *cap_on(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf),
		 "[{\"capability\": \"%s\", \"state\": true}]", name);
	return buf;
}

static int setup(void **state)
{
	struct migd *md = calloc(1, sizeof(*md));

	if (!md)
		return -1;
	md->config = mig_config_new();
	md->mig_status = MIG_STATUS_NONE;
	*state = md;
	return md->config ? 0 : -1;
}

static int teardown(void **state)
{
	struct migd *md = *state;

	mig_config_free(md->config);
	free(md);
	return 0;
}

/* ---- defaults ----------------------------------------------------------- */

static const char *const default_params =
	"{\"announce-initial\": 50, \"announce-max\": 550,"
	" \"announce-rounds\": 5, \"announce-step\": 100,"
	" \"compress-level\": 1, \"compress-threads\": 8,"
	" \"compress-wait-thread\": true, \"decompress-threads\": 2,"
	" \"throttle-trigger-threshold\": 50, \"cpu-throttle-initial\": 20,"
	" \"cpu-throttle-increment\": 10, \"cpu-throttle-tailslow\": false,"
	" \"tls-creds\": \"\", \"tls-hostname\": \"\", \"tls-authz\": \"\","
	" \"max-bandwidth\": 134217728, \"avail-switchover-bandwidth\": 0,"
	" \"downtime-limit\": 300, \"x-checkpoint-delay\": 20000,"
	" \"block-incremental\": false, \"multifd-channels\": 2,"
	" \"xbzrle-cache-size\": 67108864, \"max-postcopy-bandwidth\": 0,"
	" \"max-cpu-throttle\": 99, \"multifd-compression\": \"none\","
	" \"multifd-zlib-level\": 1, \"multifd-zstd-level\": 1,"
	" \"x-vcpu-dirty-limit-period\": 1000, \"vcpu-dirty-limit\": 1,"
	" \"mode\": \"normal\", \"zero-page-detection\": \"multifd\","
	" \"direct-io\": false}";

static void test_default_parameters(void **state)
{
	json_t *want = json_loads(default_params, JSON_PRESERVE_ORDER, NULL);
	json_t *got = query_params(*state);
	void *wi = json_object_iter(want), *gi = json_object_iter(got);

	assert_non_null(want);
	if (!json_equal(want, got)) {
		char *s = json_dumps(got, JSON_PRESERVE_ORDER);

		fail_msg("defaults differ: %s", s);
	}
	/* Same member order as QEMU's output visitor (schema order). */
	for (; wi && gi; wi = json_object_iter_next(want, wi),
			 gi = json_object_iter_next(got, gi))
		assert_string_equal(json_object_iter_key(wi),
				    json_object_iter_key(gi));
	assert_null(wi);
	assert_null(gi);
	json_decref(want);
	json_decref(got);
}

static void test_default_capabilities(void **state)
{
	struct mig_error *err = NULL;
	json_t *caps = run(*state, "query-migrate-capabilities", NULL, &err);
	static const char *const names[] = {
		"xbzrle",
		"rdma-pin-all",
		"auto-converge",
		"zero-blocks",
		"compress",
		"events",
		"postcopy-ram",
		"x-colo",
		"release-ram",
		"block",
		"return-path",
		"pause-before-switchover",
		"multifd",
		"dirty-bitmaps",
		"postcopy-blocktime",
		"late-block-activate",
		"x-ignore-shared",
		"validate-uuid",
		"background-snapshot",
		"zero-copy-send",
		"postcopy-preempt",
		"switchover-ack",
		"dirty-limit",
		"mapped-ram",
	};

	assert_non_null(caps);
	assert_int_equal(json_array_size(caps), 24);
	for (size_t i = 0; i < 24; i++) {
		json_t *c = json_array_get(caps, i);

		assert_string_equal(
			json_string_value(json_object_get(c, "capability")),
			names[i]);
		assert_true(json_is_false(json_object_get(c, "state")));
		assert_int_equal(json_object_size(c), 2);
	}
	json_decref(caps);
}

static void test_default_knobs(void **state)
{
	struct migd *md = *state;
	const struct mig_config *c = md->config;

	assert_true(mig_config_knob(c, MIG_KNOB_STORE_GLOBAL_STATE));
	assert_true(mig_config_knob(c, MIG_KNOB_SEND_CONFIGURATION));
	assert_true(mig_config_knob(c, MIG_KNOB_SEND_SECTION_FOOTER));
	assert_true(mig_config_knob(c, MIG_KNOB_DECOMPRESS_ERROR_CHECK));
	assert_false(
		mig_config_knob(c, MIG_KNOB_MULTIFD_FLUSH_AFTER_EACH_SECTION));
	assert_false(mig_config_knob(c, MIG_KNOB_PREEMPT_PRE_7_2));
	assert_true(mig_config_knob(c, MIG_KNOB_SEND_SWITCHOVER_START));
	assert_true(mig_config_knob(c, MIG_KNOB_MULTIFD_CLEAN_TLS_TERMINATION));
	assert_int_equal(mig_config_clear_bitmap_shift(c), 18);
	assert_int_equal(mig_config_multifd_channels(c), 2);
	assert_int_equal(mig_config_max_bandwidth(c), 128 << 20);
	assert_int_equal(mig_config_downtime_limit(c), 300);
	assert_false(mig_config_tls_enabled(c));
	assert_int_equal(mig_config_zero_page_detection(c),
			 MIG_ZERO_PAGE_DETECTION_MULTIFD);
	assert_int_equal(mig_config_check(c, NULL), 0);
}

/* ---- ranges ----------------------------------------------------------- */

struct range_case {
	const char *param;
	long long lo, hi;	/* accepted boundaries */
	long long below, above; /* refused just outside; -1: none */
	const char *msg;
};

static const struct range_case ranges[] = {
	{"compress-level", 0, 9, -1, 10,
	 "Parameter 'compress_level' expects a value between 0 and 9"},
	{"compress-threads", 1, 255, 0, -1,
	 "Parameter 'compress_threads' expects a value between 1 and 255"},
	{"decompress-threads", 1, 255, 0, -1,
	 "Parameter 'decompress_threads' expects a value between 1 and 255"},
	{"throttle-trigger-threshold", 1, 100, 0, 101,
	 "Parameter 'throttle_trigger_threshold' expects an integer in the "
	 "range of 1 to 100"},
	{"cpu-throttle-initial", 1, 99, 0, 100,
	 "Parameter 'cpu_throttle_initial' expects an integer in the range "
	 "of 1 to 99"},
	{"cpu-throttle-increment", 1, 99, 0, 100,
	 "Parameter 'cpu_throttle_increment' expects an integer in the range "
	 "of 1 to 99"},
	{"downtime-limit", 0, 2000000, -1, 2000001,
	 "Parameter 'downtime_limit' expects an integer in the range of 0 "
	 "to (2000 * 1000) ms"},
	{"multifd-channels", 1, 255, 0, -1,
	 "Parameter 'multifd_channels' expects a value between 1 and 255"},
	{"multifd-zlib-level", 0, 9, -1, 10,
	 "Parameter 'multifd_zlib_level' expects a value between 0 and 9"},
	{"multifd-zstd-level", 0, 20, -1, 21,
	 "Parameter 'multifd_zstd_level' expects a value between 0 and 20"},
	{"max-cpu-throttle", 20, 99, 19, 100,
	 "Parameter 'max_cpu_throttle' expects an integer in the range of "
	 "cpu_throttle_initial to 99"},
	{"announce-initial", 0, 100000, -1, 100001,
	 "Parameter 'announce_initial' expects a value between 0 and 100000"},
	{"announce-max", 0, 100000, -1, 100001,
	 "Parameter 'announce_max' expects a value between 0 and 100000"},
	{"announce-rounds", 0, 1000, -1, 1001,
	 "Parameter 'announce_rounds' expects a value between 0 and 1000"},
	{"announce-step", 1, 10000, 0, 10001,
	 "Parameter 'announce_step' expects a value between 0 and 10000"},
	{"x-vcpu-dirty-limit-period", 1, 1000, 0, 1001,
	 "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 "
	 "and 1000"},
	{"vcpu-dirty-limit", 1, 1000000, 0, -1,
	 "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"},
	{"xbzrle-cache-size", 4096, 1ll << 40, 2048, (1ll << 40) + 4096,
	 "Parameter 'xbzrle_cache_size' expects a power of two no less than "
	 "the target page size"},
	{"x-checkpoint-delay", 0, 4294967295ll, -1, -1, NULL},
	{"max-bandwidth", 0, INT64_MAX, -1, -1, NULL},
	{"avail-switchover-bandwidth", 0, INT64_MAX, -1, -1, NULL},
	{"max-postcopy-bandwidth", 0, INT64_MAX, -1, -1, NULL},
};

static void check_value(struct migd *md, const char *param, long long v,
			const char *msg)
{
	char args[256];
	long long before = param_int(md, param);

	snprintf(args, sizeof(args), "{\"%s\": %lld}", param, v);
	if (!msg) {
		set_params_ok(md, args);
		assert_int_equal(param_int(md, param), v);
		return;
	}
	set_params_fails(md, args, msg);
	assert_int_equal(param_int(md, param), before);
}

static void test_ranges(void **state)
{
	struct migd *md = *state;

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		const struct range_case *r = &ranges[i];

		/* each case starts from the defaults */
		mig_config_free(md->config);
		md->config = mig_config_new();
		assert_non_null(md->config);
		check_value(md, r->param, r->lo, NULL);
		check_value(md, r->param, r->hi, NULL);
		if (r->below >= 0)
			check_value(md, r->param, r->below, r->msg);
		if (r->above >= 0)
			check_value(md, r->param, r->above, r->msg);
	}
}

static void test_xbzrle_not_power_of_two(void **state)
{
	set_params_fails(*state, "{\"xbzrle-cache-size\": 12288}",
			 "Parameter 'xbzrle_cache_size' expects a power of two "
			 "no less than the target page size");
}

/* max-cpu-throttle is checked against the new cpu-throttle-initial. */
static void test_max_cpu_throttle_vs_initial(void **state)
{
	struct migd *md = *state;

	set_params_ok(md, "{\"max-cpu-throttle\": 50}");
	set_params_fails(md, "{\"cpu-throttle-initial\": 60}",
			 "Parameter 'max_cpu_throttle' expects an integer in "
			 "the range of cpu_throttle_initial to 99");
	set_params_ok(md, "{\"cpu-throttle-initial\": 60, "
			  "\"max-cpu-throttle\": 70}");
	assert_int_equal(param_int(md, "cpu-throttle-initial"), 60);
}

static void test_type_errors(void **state)
{
	struct migd *md = *state;

	set_params_fails(md, "{\"multifd-channels\": 256}",
			 "Parameter 'multifd-channels' expects uint8_t");
	set_params_fails(md, "{\"x-checkpoint-delay\": 4294967296}",
			 "Parameter 'x-checkpoint-delay' expects uint32_t");
	set_params_fails(md, "{\"max-bandwidth\": \"fast\"}",
			 "Parameter 'max-bandwidth' expects uint64");
	set_params_fails(md, "{\"downtime-limit\": 1.5}",
			 "Parameter 'downtime-limit' expects uint64");
	set_params_fails(md, "{\"cpu-throttle-tailslow\": 1}",
			 "Invalid parameter type for 'cpu-throttle-tailslow', "
			 "expected: boolean");
	set_params_fails(md, "{\"tls-creds\": 5}",
			 "Invalid parameter type for 'tls-creds', expected: "
			 "StrOrNull");
	set_params_fails(md, "{\"multifd-compression\": \"lz4\"}",
			 "Parameter 'multifd-compression' does not accept "
			 "value 'lz4'");
	set_params_fails(md, "{\"mode\": 1}",
			 "Invalid parameter type for 'mode', expected: string");
	set_params_fails(md, "{\"bogus\": 1}",
			 "Parameter 'bogus' is unexpected");
	/* Type errors win over unexpected members (members are read first). */
	set_params_fails(md, "{\"bogus\": 1, \"multifd-channels\": -1}",
			 "Parameter 'multifd-channels' expects uint8_t");
}

/* QEMU accepts negative numbers for uint64 members (they wrap). */
static void test_negative_wraps(void **state)
{
	struct migd *md = *state;

	set_params_ok(md, "{\"max-bandwidth\": -1}");
	assert_true(mig_config_max_bandwidth(md->config) == UINT64_MAX);
	set_params_fails(md, "{\"downtime-limit\": -1}",
			 "Parameter 'downtime_limit' expects an integer in the "
			 "range of 0 to (2000 * 1000) ms");
}

static void test_enums_and_strings(void **state)
{
	struct migd *md = *state;

	set_params_ok(md,
		      "{\"multifd-compression\": \"zstd\", \"mode\": "
		      "\"cpr-reboot\", \"zero-page-detection\": \"legacy\"}");
	assert_param_str(md, "multifd-compression", "zstd");
	assert_param_str(md, "mode", "cpr-reboot");
	assert_param_str(md, "zero-page-detection", "legacy");
	set_params_ok(md, "{\"tls-creds\": \"tls0\", \"tls-hostname\": \"h\","
			  " \"tls-authz\": \"auth0\"}");
	assert_param_str(md, "tls-creds", "tls0");
	assert_param_str(md, "tls-authz", "auth0");
	assert_true(mig_config_tls_enabled(md->config));
	/* null means "" for the three StrOrNull members */
	set_params_ok(md, "{\"tls-creds\": null, \"tls-hostname\": null, "
			  "\"tls-authz\": null}");
	assert_param_str(md, "tls-creds", "");
	assert_param_str(md, "tls-hostname", "");
	assert_param_str(md, "tls-authz", "");
	assert_false(mig_config_tls_enabled(md->config));
}

static void test_all_or_nothing(void **state)
{
	struct migd *md = *state;

	set_params_fails(md,
			 "{\"multifd-channels\": 8, \"tls-creds\": \"x\", "
			 "\"downtime-limit\": 5000000}",
			 "Parameter 'downtime_limit' expects an integer in the "
			 "range of 0 to (2000 * 1000) ms");
	assert_int_equal(param_int(md, "multifd-channels"), 2);
	assert_param_str(md, "tls-creds", "");
	/* A type error in a later member leaves earlier ones unchanged. */
	set_params_fails(md, "{\"announce-initial\": 7, \"mode\": \"x\"}",
			 "Parameter 'mode' does not accept value 'x'");
	assert_int_equal(param_int(md, "announce-initial"), 50);
	/* First failing check in QEMU's order wins. */
	set_params_fails(md,
			 "{\"multifd-channels\": 0, \"compress-level\": "
			 "10}",
			 "Parameter 'compress_level' expects a value between 0 "
			 "and 9");
}

static void test_direct_io(void **state)
{
	struct migd *md = *state;

	set_params_ok(md, "{\"direct-io\": true}");
	assert_false(mig_config_direct_io(md->config));
	set_caps_ok(md, "[{\"capability\": \"multifd\", \"state\": true},"
			" {\"capability\": \"mapped-ram\", \"state\": true}]");
	assert_true(mig_config_direct_io(md->config));
}

/* ---- block-bitmap-mapping --------------------------------------------- */

#define BBM_PREFIX "Invalid mapping given for block-bitmap-mapping: "

static void test_bitmap_mapping(void **state)
{
	struct migd *md = *state;
	json_t *v = param_json(md, "block-bitmap-mapping");

	assert_null(v); /* absent until set */
	set_params_ok(md, "{\"block-bitmap-mapping\": [{\"node-name\": \"n1\","
			  " \"alias\": \"a1\", \"bitmaps\": [{\"name\": \"b1\","
			  " \"alias\": \"c1\", \"transform\": {\"persistent\":"
			  " true}}]}]}");
	v = param_json(md, "block-bitmap-mapping");
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(v, 0), "node-name")),
			    "n1");
	json_decref(v);
	set_params_ok(md, "{\"block-bitmap-mapping\": []}");
	v = param_json(md, "block-bitmap-mapping");
	assert_int_equal(json_array_size(v), 0);
	json_decref(v);
}

static void test_bitmap_mapping_errors(void **state)
{
	struct migd *md = *state;

	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"node-name\": "
			 "\"n\", \"alias\": \"1a\", \"bitmaps\": []}]}",
			 BBM_PREFIX "The node alias '1a' is not well-formed");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": ["
			 "{\"node-name\": \"n\", \"alias\": \"a\", "
			 "\"bitmaps\": []}, {\"node-name\": \"n\", "
			 "\"alias\": \"b\", \"bitmaps\": []}]}",
			 BBM_PREFIX "The node name 'n' is mapped twice");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": ["
			 "{\"node-name\": \"n\", \"alias\": \"a\", "
			 "\"bitmaps\": []}, {\"node-name\": \"m\", "
			 "\"alias\": \"a\", \"bitmaps\": []}]}",
			 BBM_PREFIX "The node alias 'a' is used twice");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"node-name\": "
			 "\"n\", \"alias\": \"a\", \"bitmaps\": ["
			 "{\"name\": \"b\", \"alias\": \"x\"}, "
			 "{\"name\": \"b\", \"alias\": \"y\"}]}]}",
			 BBM_PREFIX "The bitmap 'n'/'b' is mapped twice");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"node-name\": "
			 "\"n\", \"alias\": \"a\", \"bitmaps\": ["
			 "{\"name\": \"b\", \"alias\": \"x\"}, "
			 "{\"name\": \"c\", \"alias\": \"x\"}]}]}",
			 BBM_PREFIX "The bitmap alias 'a'/'x' is used twice");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"node-name\": "
			 "\"abcdefghijabcdefghijabcdefghijab\", \"alias\": "
			 "\"a\", \"bitmaps\": []}]}",
			 BBM_PREFIX "The node name "
				    "'abcdefghijabcdefghijabcdefghijab' is "
				    "longer than 31 bytes");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"alias\": \"a\", "
			 "\"bitmaps\": []}]}",
			 "Parameter 'block-bitmap-mapping[0].node-name' is "
			 "missing");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"node-name\": "
			 "\"n\", \"alias\": \"a\", \"bitmaps\": [], "
			 "\"x\": 1}]}",
			 "Parameter 'block-bitmap-mapping[0].x' is "
			 "unexpected");
	set_params_fails(md,
			 "{\"block-bitmap-mapping\": [{\"node-name\": "
			 "\"n\", \"alias\": \"a\", \"bitmaps\": ["
			 "{\"name\": \"b\", \"alias\": \"x\", "
			 "\"transform\": {\"persistent\": 1}}]}]}",
			 "Invalid parameter type for 'block-bitmap-mapping[0]"
			 ".bitmaps[0].transform.persistent', expected: "
			 "boolean");
	set_params_fails(md, "{\"block-bitmap-mapping\": {}}",
			 "Invalid parameter type for 'block-bitmap-mapping', "
			 "expected: array");
	assert_null(param_json(md, "block-bitmap-mapping"));
}

/* ---- capabilities ----------------------------------------------------- */

static void test_caps_set_and_query(void **state)
{
	struct migd *md = *state;

	set_caps_ok(md, "[{\"capability\": \"events\", \"state\": true},"
			" {\"capability\": \"multifd\", \"state\": true}]");
	assert_true(mig_config_cap(md->config, MIG_CAP_EVENTS));
	assert_true(mig_config_cap(md->config, MIG_CAP_MULTIFD));
	set_caps_ok(md, "[{\"capability\": \"multifd\", \"state\": false}]");
	assert_false(mig_config_cap(md->config, MIG_CAP_MULTIFD));
	assert_true(mig_config_cap(md->config, MIG_CAP_EVENTS));
	set_caps_ok(md, "[]");
}

static void test_caps_input_errors(void **state)
{
	struct migd *md = *state;

	fails(md, "migrate-set-capabilities", "{}",
	      "Parameter 'capabilities' is missing");
	fails(md, "migrate-set-capabilities", "{\"capabilities\": {}}",
	      "Invalid parameter type for 'capabilities', expected: array");
	set_caps_fails(md, "[{\"capability\": \"nope\", \"state\": true}]",
		       "Parameter 'capability' does not accept value 'nope'");
	set_caps_fails(md, "[{\"capability\": \"events\", \"state\": 1}]",
		       "Invalid parameter type for 'capabilities[0].state', "
		       "expected: boolean");
	set_caps_fails(md, "[{\"capability\": \"events\"}]",
		       "Parameter 'capabilities[0].state' is missing");
	set_caps_fails(md,
		       "[{\"capability\": \"events\", \"state\": true, "
		       "\"x\": 0}]",
		       "Parameter 'capabilities[0].x' is unexpected");
	fails(md, "migrate-set-capabilities",
	      "{\"capabilities\": [], \"extra\": 1}",
	      "Parameter 'extra' is unexpected");
}

static void test_caps_refused(void **state)
{
	struct migd *md = *state;
	static const char *const refused[] = {
		"block",
		"x-colo",
		"compress",
		"zero-blocks",
	};

	for (size_t i = 0; i < 4; i++) {
		struct mig_error *err = NULL;
		char buf[512];
		json_t *r;

		snprintf(buf, sizeof(buf), "{\"capabilities\": %s}",
			 cap_on(refused[i]));
		r = run(md, "migrate-set-capabilities", buf, &err);
		assert_null(r);
		assert_non_null(err);
		assert_non_null(strstr(err->desc, "not supported by migd"));
		assert_non_null(strstr(err->desc, refused[i]));
		mig_error_free(err);
		snprintf(buf, sizeof(buf),
			 "[{\"capability\": \"%s\", "
			 "\"state\": false}]",
			 refused[i]);
		set_caps_ok(md, buf);
	}
	set_caps_fails(md, cap_on("block"),
		       "Capability 'block' is not supported by migd: block "
		       "migration is deprecated (QEMU 9.1 removed it); migd "
		       "has no block devices: migrate disks with "
		       "blockdev-mirror over NBD instead");
}

static void test_caps_while_running(void **state)
{
	struct migd *md = *state;
	static const enum mig_status busy[] = {
		MIG_STATUS_SETUP,	   MIG_STATUS_ACTIVE,
		MIG_STATUS_CANCELLING,	   MIG_STATUS_POSTCOPY_ACTIVE,
		MIG_STATUS_PRE_SWITCHOVER, MIG_STATUS_DEVICE,
		MIG_STATUS_WAIT_UNPLUG,	   MIG_STATUS_COLO,
	};
	static const enum mig_status idle[] = {
		MIG_STATUS_NONE,
		MIG_STATUS_COMPLETED,
		MIG_STATUS_FAILED,
		MIG_STATUS_CANCELLED,
	};

	for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++) {
		md->mig_status = busy[i];
		set_caps_fails(md, cap_on("events"),
			       "There's a migration process in progress");
	}
	for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
		md->mig_status = idle[i];
		set_caps_ok(md, cap_on("events"));
	}
	/* Parameters may change during a migration, as in QEMU. */
	md->mig_status = MIG_STATUS_ACTIVE;
	set_params_ok(md, "{\"max-bandwidth\": 1000}");
}

static void test_caps_all_or_nothing(void **state)
{
	struct migd *md = *state;

	set_caps_fails(md,
		       "[{\"capability\": \"multifd\", \"state\": true},"
		       " {\"capability\": \"xbzrle\", \"state\": true}]",
		       "Multifd is not compatible with xbzrle");
	assert_false(mig_config_cap(md->config, MIG_CAP_MULTIFD));
	assert_false(mig_config_cap(md->config, MIG_CAP_XBZRLE));
}

#define ZC_MSG                                                                 \
	"Zero copy only available for non-compressed non-TLS "                 \
	"multifd migration"
#define MR_MSG                                                                 \
	"Mapped-ram only available for non-compressed non-TLS "                \
	"multifd migration"
#define MULTIFD_ON "{\"capability\": \"multifd\", \"state\": true}"

static void test_zero_copy_rules(void **state)
{
	struct migd *md = *state;

	set_caps_fails(md, cap_on("zero-copy-send"), ZC_MSG);
	set_caps_fails(md,
		       "[" MULTIFD_ON ", {\"capability\": \"xbzrle\", "
		       "\"state\": true}, {\"capability\": "
		       "\"zero-copy-send\", \"state\": true}]",
		       ZC_MSG);
	set_caps_ok(md, "[" MULTIFD_ON ", {\"capability\": \"zero-copy-send\", "
			"\"state\": true}]");
	/* parameters that would break it are refused */
	set_params_fails(md, "{\"multifd-compression\": \"zstd\"}", ZC_MSG);
	set_params_fails(md, "{\"tls-creds\": \"tls0\"}", ZC_MSG);
	assert_param_str(md, "multifd-compression", "none");
	/* turning multifd off under it is refused too */
	set_caps_fails(md, "[{\"capability\": \"multifd\", \"state\": false}]",
		       ZC_MSG);
	/* the other direction: compression first */
	set_caps_ok(md, "[{\"capability\": \"zero-copy-send\", \"state\": "
			"false}]");
	set_params_ok(md, "{\"multifd-compression\": \"zlib\"}");
	set_caps_fails(md, cap_on("zero-copy-send"), ZC_MSG);
	set_params_ok(md, "{\"multifd-compression\": \"none\", \"tls-creds\": "
			  "\"tls0\"}");
	set_caps_fails(md, cap_on("zero-copy-send"), ZC_MSG);
}

static void test_mapped_ram_rules(void **state)
{
	struct migd *md = *state;

	set_caps_fails(md,
		       "[{\"capability\": \"mapped-ram\", \"state\": "
		       "true}, {\"capability\": \"xbzrle\", \"state\": "
		       "true}]",
		       "Mapped-ram migration is incompatible with xbzrle");
	set_caps_fails(md,
		       "[{\"capability\": \"mapped-ram\", \"state\": "
		       "true}, {\"capability\": \"postcopy-ram\", "
		       "\"state\": true}]",
		       "Mapped-ram migration is incompatible with postcopy");
	set_caps_ok(md, cap_on("mapped-ram"));
	set_params_fails(md, "{\"multifd-compression\": \"zlib\"}", MR_MSG);
	set_params_fails(md, "{\"tls-creds\": \"t\"}", MR_MSG);
	set_params_ok(md, "{\"tls-creds\": null}");
	set_caps_ok(md, "[{\"capability\": \"mapped-ram\", \"state\": false}]");
	set_params_ok(md, "{\"multifd-compression\": \"zlib\"}");
	set_caps_fails(md, cap_on("mapped-ram"), MR_MSG);
}

static void test_postcopy_rules(void **state)
{
	struct migd *md = *state;

	/* multifd + postcopy-ram: allowed as in QEMU 10.1 */
	set_caps_ok(md, "[{\"capability\": \"postcopy-ram\", \"state\": "
			"true}, " MULTIFD_ON "]");
	set_caps_ok(md, "[{\"capability\": \"postcopy-ram\", \"state\": "
			"false}, {\"capability\": \"multifd\", \"state\": "
			"false}]");
	set_caps_fails(md,
		       "[{\"capability\": \"postcopy-ram\", \"state\": "
		       "true}, {\"capability\": \"x-ignore-shared\", "
		       "\"state\": true}]",
		       "Postcopy is not compatible with ignore-shared");
	set_caps_fails(md, cap_on("postcopy-preempt"),
		       "Postcopy preempt requires postcopy-ram");
	set_caps_ok(md, "[{\"capability\": \"postcopy-ram\", \"state\": true},"
			" {\"capability\": \"postcopy-preempt\", \"state\": "
			"true}]");
	set_caps_fails(md,
		       "[{\"capability\": \"postcopy-ram\", \"state\": "
		       "false}]",
		       "Postcopy preempt requires postcopy-ram");
	set_caps_ok(md, cap_on("multifd"));
}

static void test_misc_cap_rules(void **state)
{
	struct migd *md = *state;

	set_caps_fails(md, cap_on("switchover-ack"),
		       "Capability 'switchover-ack' requires capability "
		       "'return-path'");
	set_caps_ok(md, "[{\"capability\": \"return-path\", \"state\": true},"
			" {\"capability\": \"switchover-ack\", \"state\": "
			"true}]");
	set_caps_fails(md,
		       "[{\"capability\": \"return-path\", \"state\": "
		       "false}]",
		       "Capability 'switchover-ack' requires capability "
		       "'return-path'");
	/* dirty-limit: allowed alone (no KVM dirty ring needed in migd) */
	set_caps_ok(md, cap_on("dirty-limit"));
	set_caps_fails(
		md, cap_on("auto-converge"),
		"dirty-limit conflicts with auto-converge either of then "
		"available currently");
	set_caps_ok(md, "[{\"capability\": \"dirty-limit\", \"state\": false},"
			" {\"capability\": \"auto-converge\", \"state\": "
			"true}]");
	set_caps_fails(
		md, cap_on("dirty-limit"),
		"dirty-limit conflicts with auto-converge either of then "
		"available currently");
	set_caps_ok(md, cap_on("xbzrle"));
	set_caps_fails(md, cap_on("multifd"),
		       "Multifd is not compatible with xbzrle");
}

static void test_background_snapshot_rules(void **state)
{
	struct migd *md = *state;
	static const char *const incompatible[] = {
		"postcopy-ram",
		"dirty-bitmaps",
		"postcopy-blocktime",
		"late-block-activate",
		"return-path",
		"multifd",
		"pause-before-switchover",
		"auto-converge",
		"release-ram",
		"rdma-pin-all",
		"xbzrle",
		"validate-uuid",
	};

	for (size_t i = 0; i < sizeof(incompatible) / sizeof(char *); i++) {
		char list[256], msg[256];

		snprintf(list, sizeof(list),
			 "[{\"capability\": \"background-snapshot\", "
			 "\"state\": true}, {\"capability\": \"%s\", "
			 "\"state\": true}]",
			 incompatible[i]);
		snprintf(msg, sizeof(msg),
			 "Background-snapshot is not compatible with %s",
			 incompatible[i]);
		set_caps_fails(md, list, msg);
	}
	set_caps_ok(md, cap_on("background-snapshot"));
	set_caps_ok(md, cap_on("events"));
}

static void test_incoming_started(void **state)
{
	struct migd *md = *state;

	mig_config_set_incoming_started(md->config, true);
	set_caps_fails(md, cap_on("multifd"),
		       "Multifd must be set before incoming starts");
	set_caps_fails(md,
		       "[{\"capability\": \"postcopy-ram\", \"state\": "
		       "true}, {\"capability\": \"postcopy-preempt\", "
		       "\"state\": true}]",
		       "Postcopy preempt must be set before incoming starts");
	mig_config_set_incoming_started(md->config, false);
	set_caps_ok(md, cap_on("multifd"));
}

/* ---- -global ------------------------------------------------------------ */

static void global_ok(struct mig_config *cfg, const char *prop,
		      const char *value)
{
	struct mig_error *err = NULL;

	if (mig_config_set_global(cfg, prop, value, &err) < 0)
		fail_msg("-global %s=%s: %s", prop, value, err->desc);
}

static void global_fails(struct mig_config *cfg, const char *prop,
			 const char *value, const char *desc)
{
	struct mig_error *err = NULL;

	assert_int_equal(mig_config_set_global(cfg, prop, value, &err),
			 -EINVAL);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void test_global_values(void **state)
{
	struct migd *md = *state;
	struct mig_config *c = md->config;

	global_ok(c, "multifd-channels", "8");
	global_ok(c, "x-multifd", "on");
	global_ok(c, "x-events", "yes");
	global_ok(c, "store-global-state", "off");
	global_ok(c, "send-switchover-start", "No");
	global_ok(c, "multifd-flush-after-each-section", "TRUE");
	global_ok(c, "x-clear-bitmap-shift", "40");
	global_ok(c, "xbzrle-cache-size", "128M");
	global_ok(c, "x-max-bandwidth", "1.5G");
	global_ok(c, "x-downtime-limit", "0x100");
	global_ok(c, "multifd-compression", "zstd");
	global_ok(c, "zero-page-detection", "legacy");
	global_ok(c, "tls-creds", "tls0");
	global_ok(c, "mode", "cpr-reboot");
	global_ok(c, "mapped-ram", "off");
	assert_int_equal(mig_config_multifd_channels(c), 8);
	assert_true(mig_config_cap(c, MIG_CAP_MULTIFD));
	assert_true(mig_config_cap(c, MIG_CAP_EVENTS));
	assert_false(mig_config_knob(c, MIG_KNOB_STORE_GLOBAL_STATE));
	assert_false(mig_config_knob(c, MIG_KNOB_SEND_SWITCHOVER_START));
	assert_true(
		mig_config_knob(c, MIG_KNOB_MULTIFD_FLUSH_AFTER_EACH_SECTION));
	assert_int_equal(mig_config_clear_bitmap_shift(c), 31); /* clamped */
	assert_int_equal(mig_config_param(c, MIG_PARAM_XBZRLE_CACHE_SIZE),
			 128 << 20);
	assert_int_equal(mig_config_max_bandwidth(c), 1536ull << 20);
	assert_int_equal(mig_config_downtime_limit(c), 256);
	assert_int_equal(mig_config_multifd_compression(c),
			 MIG_MULTIFD_COMPRESSION_ZSTD);
	assert_int_equal(mig_config_zero_page_detection(c),
			 MIG_ZERO_PAGE_DETECTION_LEGACY);
	assert_string_equal(mig_config_param_str(c, MIG_PARAM_TLS_CREDS),
			    "tls0");
	assert_int_equal(mig_config_mode(c), MIG_MODE_CPR_REBOOT);
	assert_param_str(md, "multifd-compression", "zstd");
	assert_int_equal(mig_config_check(c, NULL), 0);
}

#define GA "can't apply global migration."

static void test_global_errors(void **state)
{
	struct mig_config *c = ((struct migd *)*state)->config;

	global_fails(c, "nope", "1",
		     GA "nope=1: Property 'migration.nope' "
			"not found");
	/* capabilities without a property, and unprefixed names */
	global_fails(c, "multifd", "on",
		     GA "multifd=on: Property "
			"'migration.multifd' not found");
	global_fails(c, "validate-uuid", "on",
		     GA "validate-uuid=on: Property 'migration.validate-uuid' "
			"not found");
	global_fails(c, "multifd-channels", "abc",
		     GA "multifd-channels=abc: Parameter 'multifd-channels' "
			"expects uint64");
	global_fails(c, "multifd-channels", "300",
		     GA "multifd-channels=300: Parameter 'multifd-channels' "
			"expects uint8_t");
	global_fails(c, "multifd-channels", "",
		     GA "multifd-channels=: Parameter 'multifd-channels' "
			"expects uint64");
	global_fails(c, "x-checkpoint-delay", "4294967296",
		     GA "x-checkpoint-delay=4294967296: Parameter "
			"'x-checkpoint-delay' expects uint32_t");
	global_fails(c, "x-multifd", "maybe",
		     GA "x-multifd=maybe: Invalid parameter type for "
			"'x-multifd', expected: boolean");
	global_fails(c, "xbzrle-cache-size", "12Q",
		     GA "xbzrle-cache-size=12Q: Parameter 'xbzrle-cache-size' "
			"expects a non-negative number below 2^64");
	global_fails(c, "xbzrle-cache-size", "-1",
		     GA "xbzrle-cache-size=-1: Parameter 'xbzrle-cache-size' "
			"expects a non-negative number below 2^64");
	global_fails(c, "announce-max", "99999999999999999999",
		     GA "announce-max=99999999999999999999: Value "
			"'99999999999999999999' is out of range for parameter "
			"'announce-max'");
	global_fails(c, "multifd-compression", "lz4",
		     GA "multifd-compression=lz4: Parameter "
			"'multifd-compression' does not accept value 'lz4'");
	global_fails(c, "x-clear-bitmap-shift", "256",
		     GA "x-clear-bitmap-shift=256: Parameter "
			"'x-clear-bitmap-shift' expects uint8_t");
	/* nothing was changed by the failures */
	assert_int_equal(mig_config_multifd_channels(c), 2);
	assert_false(mig_config_cap(c, MIG_CAP_MULTIFD));
}

static void check_fails(struct mig_config *c, const char *desc)
{
	struct mig_error *err = NULL;

	assert_int_equal(mig_config_check(c, &err), -EINVAL);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

/* -global values are validated together afterwards, as QEMU's
 * migration_object_check() does; their order does not matter. */
static void test_global_check(void **state)
{
	struct mig_config *c = ((struct migd *)*state)->config;

	global_ok(c, "multifd-channels", "0");
	check_fails(c, "Parameter 'multifd_channels' expects a value between "
		       "1 and 255");
	global_ok(c, "multifd-channels", "4");
	global_ok(c, "x-zero-copy-send", "on");
	check_fails(c, ZC_MSG);
	global_ok(c, "x-multifd", "on");
	assert_int_equal(mig_config_check(c, NULL), 0);
	global_ok(c, "x-block", "on");
	check_fails(c, "Capability 'block' is not supported by migd: block "
		       "migration is deprecated (QEMU 9.1 removed it); migd "
		       "has no block devices: migrate disks with "
		       "blockdev-mirror over NBD instead");
	global_ok(c, "x-block", "off");
	global_ok(c, "x-colo", "on");
	check_fails(c, "Capability 'x-colo' is not supported by migd: COLO "
		       "needs QEMU's replication module and block "
		       "replication, which migd does not have; use a QEMU "
		       "built with replication support");
}

/* ---- snapshots, status, query-migrate ------------------------------------ */

static void test_snapshot(void **state)
{
	struct migd *md = *state;
	struct mig_config *snap;

	set_params_ok(md, "{\"tls-creds\": \"a\", \"block-bitmap-mapping\": "
			  "[{\"node-name\": \"n\", \"alias\": \"a\", "
			  "\"bitmaps\": []}]}");
	set_caps_ok(md, cap_on("events"));
	snap = mig_config_snapshot(md->config);
	assert_non_null(snap);
	set_params_ok(md, "{\"tls-creds\": \"b\", \"multifd-channels\": 9, "
			  "\"block-bitmap-mapping\": []}");
	set_caps_ok(md, "[{\"capability\": \"events\", \"state\": false}]");
	assert_string_equal(mig_config_param_str(snap, MIG_PARAM_TLS_CREDS),
			    "a");
	assert_int_equal(mig_config_multifd_channels(snap), 2);
	assert_true(mig_config_cap(snap, MIG_CAP_EVENTS));
	assert_int_equal(json_array_size(mig_config_block_bitmap_mapping(snap)),
			 1);
	mig_config_free(snap);
}

static void test_status(void **state)
{
	assert_string_equal(mig_status_names[MIG_STATUS_WAIT_UNPLUG],
			    "wait-unplug");
	assert_null(mig_status_names[MIG_STATUS__MAX]);
	assert_false(mig_status_is_running(MIG_STATUS_NONE));
	assert_false(mig_status_is_running(MIG_STATUS_COMPLETED));
	assert_false(mig_status_is_running(MIG_STATUS_FAILED));
	assert_false(mig_status_is_running(MIG_STATUS_CANCELLED));
	assert_false(mig_status_is_running(MIG_STATUS_COLO));
	assert_true(mig_status_is_running(MIG_STATUS_CANCELLING));
	assert_true(mig_status_is_running(MIG_STATUS_POSTCOPY_RECOVER_SETUP));
	/* query-migrate is control/migration.c's:
	 * tests/system/test_migration.py */
}

static int notified;

static void count_notify(void *opaque, const struct mig_config *cfg)
{
	(void)cfg;
	(*(int *)opaque)++;
}

static void test_notify(void **state)
{
	struct migd *md = *state;

	notified = 0;
	mig_config_set_notify(md->config, count_notify, &notified);
	set_params_ok(md, "{\"max-bandwidth\": 1}");
	set_params_fails(md, "{\"multifd-channels\": 0}",
			 "Parameter 'multifd_channels' expects a value between "
			 "1 and 255");
	set_caps_ok(md, cap_on("events"));
	assert_int_equal(notified, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_default_parameters),
		T(test_default_capabilities),
		T(test_default_knobs),
		T(test_ranges),
		T(test_xbzrle_not_power_of_two),
		T(test_max_cpu_throttle_vs_initial),
		T(test_type_errors),
		T(test_negative_wraps),
		T(test_enums_and_strings),
		T(test_all_or_nothing),
		T(test_direct_io),
		T(test_bitmap_mapping),
		T(test_bitmap_mapping_errors),
		T(test_caps_set_and_query),
		T(test_caps_input_errors),
		T(test_caps_refused),
		T(test_caps_while_running),
		T(test_caps_all_or_nothing),
		T(test_zero_copy_rules),
		T(test_mapped_ram_rules),
		T(test_postcopy_rules),
		T(test_misc_cap_rules),
		T(test_background_snapshot_rules),
		T(test_incoming_started),
		T(test_global_values),
		T(test_global_errors),
		T(test_global_check),
		T(test_snapshot),
		T(test_status),
		T(test_notify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
