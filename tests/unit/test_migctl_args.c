/* test_migctl_args.c — migctl's pure pieces: KEY=VALUE and JSON arguments to
 * a QMP arguments object (contrib/migctl_args.c), and query-migrate to the
 * progress line and summary (contrib/migctl_progress.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "contrib/migctl_args.h"
#include "contrib/migctl_progress.h"

/* Parses words and returns the result as compact sorted JSON (malloc'd),
 * or the error message prefixed with "ERR: ". */
static char *args_text(int argc, const char *const *words)
{
	struct mig_error *err = NULL;
	json_t *obj;
	char *text;

	obj = mctl_args_parse(argc, (char *const *)words, &err);
	if (!obj) {
		assert_non_null(err);
		assert_true(asprintf(&text, "ERR: %s", err->desc) > 0);
		mig_error_free(err);
		return text;
	}
	assert_null(err);
	text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(obj);
	return text;
}

#define ASSERT_ARGS(expect, ...)                                               \
	do {                                                                   \
		const char *const w_[] = {__VA_ARGS__};                        \
		char *t_ = args_text(sizeof(w_) / sizeof(w_[0]), w_);          \
		assert_string_equal(t_, expect);                               \
		free(t_);                                                      \
	} while (0)

static void test_no_words_is_empty_object(void **state)
{
	char *t = args_text(0, NULL);

	assert_string_equal(t, "{}");
	free(t);
}

static void test_value_types(void **state)
{
	ASSERT_ARGS("{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":true,\"e\":false,"
		    "\"f\":null}",
		    "a=1", "b=-2", "c=1.5", "d=true", "e=false", "f=null");
	ASSERT_ARGS("{\"s\":\"tcp:127.0.0.1:4444\",\"t\":\"\",\"u\":\"1x\"}",
		    "s=tcp:127.0.0.1:4444", "t=", "u=1x");
	ASSERT_ARGS("{\"q\":\"true\",\"r\":\"123\"}", "q=\"true\"",
		    "r=\"123\"");
	ASSERT_ARGS("{\"v\":\"a=b\"}", "v=a=b");
}

static void test_json_values(void **state)
{
	ASSERT_ARGS("{\"caps\":[{\"capability\":\"multifd\",\"state\":true}]}",
		    "caps=[{\"capability\": \"multifd\", \"state\": true}]");
	ASSERT_ARGS("{\"o\":{\"x\":[1,2]}}", "o={\"x\": [1, 2]}");
	/* not JSON after all: a string */
	ASSERT_ARGS("{\"o\":\"[1,\"}", "o=[1,");
}

static void test_dotted_keys(void **state)
{
	ASSERT_ARGS("{\"a\":{\"b\":1,\"c\":{\"d\":\"x\"}},\"e\":2}", "a.b=1",
		    "a.c.d=x", "e=2");
	ASSERT_ARGS("{\"a\":{\"x\":1,\"y\":2}}", "a={\"x\": 1}", "a.y=2");
}

static void test_bad_words(void **state)
{
	ASSERT_ARGS("ERR: argument 'novalue' is not KEY=VALUE", "novalue");
	ASSERT_ARGS("ERR: invalid argument name ''", "=1");
	ASSERT_ARGS("ERR: invalid argument name 'a..b'", "a..b=1");
	ASSERT_ARGS("ERR: invalid argument name 'a.'", "a.=1");
	ASSERT_ARGS("ERR: invalid argument name '.a'", ".a=1");
	ASSERT_ARGS("ERR: argument 'a' given twice", "a=1", "a=2");
	ASSERT_ARGS("ERR: argument 'a.b' given twice", "a.b=1", "a.b=2");
	ASSERT_ARGS("ERR: argument 'a.b' conflicts with an earlier value "
		    "for 'a'",
		    "a=1", "a.b=2");
	ASSERT_ARGS("ERR: argument 'a' given twice", "a.b=1", "a=2");
	ASSERT_ARGS("ERR: number '99999999999999999999' is out of range",
		    "n=99999999999999999999");
}

static void test_json_object_argument(void **state)
{
	ASSERT_ARGS("{\"uri\":\"tcp:h:1\",\"x\":{\"y\":[true]}}",
		    "{\"uri\": \"tcp:h:1\", \"x\": {\"y\": [true]}}");
	ASSERT_ARGS("{}", "  {}");
	ASSERT_ARGS("ERR: invalid JSON arguments: '}' expected near end of "
		    "file (column 6)",
		    "{\"a\":1");
	ASSERT_ARGS("ERR: argument '{\"a\":1}' is not KEY=VALUE (JSON "
		    "arguments must be the only argument)",
		    "{\"a\":1}", "b=2");
}

static void test_value_parse(void **state)
{
	struct mig_error *err = NULL;
	json_t *v;

	v = mctl_value_parse("18446744073709551615", &err);
	assert_null(v);
	assert_string_equal(err->desc,
			    "number '18446744073709551615' is out of range");
	mig_error_free(err);
	v = mctl_value_parse("9223372036854775807", NULL);
	assert_true(json_is_integer(v));
	assert_true(json_integer_value(v) == INT64_MAX);
	json_decref(v);
	v = mctl_value_parse("0x10", NULL);
	assert_string_equal(json_string_value(v), "0x10");
	json_decref(v);
	v = mctl_value_parse("-", NULL);
	assert_string_equal(json_string_value(v), "-");
	json_decref(v);
}

/* --- progress ----------------------------------------------------------- */

static void parse_text(const char *text, struct mctl_progress *p)
{
	json_t *info = json_loads(text, 0, NULL);

	assert_non_null(info);
	mctl_progress_parse(info, p);
	json_decref(info);
}

static const char *const active_reply =
	"{\"status\": \"active\", \"total-time\": 1500, \"expected-downtime\":"
	" 300, \"setup-time\": 4, \"ram\": {\"transferred\": 536870912, "
	"\"remaining\": 536870912, \"total\": 1073741824, \"duplicate\": 10, "
	"\"normal\": 131072, \"mbps\": 2400.0, \"dirty-pages-rate\": 2500, "
	"\"dirty-sync-count\": 2, \"page-size\": 4096}}";

static void test_progress_parse(void **state)
{
	struct mctl_progress p;

	parse_text(active_reply, &p);
	assert_string_equal(p.status, "active");
	assert_int_equal(mctl_progress_phase(&p), MCTL_PHASE_RUNNING);
	assert_true(p.has_ram && p.has_total_time && p.has_setup_time);
	assert_false(p.has_downtime);
	assert_int_equal(p.transferred, 536870912);
	assert_int_equal(p.dirty_sync_count, 2);
	assert_true(p.mbps == 2400.0);

	mctl_progress_parse(NULL, &p);
	assert_int_equal(mctl_progress_phase(&p), MCTL_PHASE_NONE);
	parse_text("{}", &p);
	assert_int_equal(mctl_progress_phase(&p), MCTL_PHASE_NONE);
	parse_text("{\"status\": \"none\"}", &p);
	assert_int_equal(mctl_progress_phase(&p), MCTL_PHASE_NONE);
	parse_text("{\"status\": \"cancelled\"}", &p);
	assert_int_equal(mctl_progress_phase(&p), MCTL_PHASE_FAILED);
	parse_text("{\"status\": \"completed\"}", &p);
	assert_int_equal(mctl_progress_phase(&p), MCTL_PHASE_COMPLETED);
}

static void test_progress_hostile_values(void **state)
{
	struct mctl_progress p;

	parse_text("{\"status\": \"fai\\u001b[2Jled\", \"total-time\": -5, "
		   "\"error-desc\": \"x\\u009by\", \"ram\": {\"transferred\":"
		   " \"lots\", \"remaining\": -1, \"page-size\": 0, "
		   "\"mbps\": -3, \"total\": 1e300}}",
		   &p);
	assert_string_equal(p.status, "fai?[2Jled");
	assert_string_equal(p.error_desc, "x?y");
	assert_false(p.has_total_time);
	assert_int_equal(p.transferred, 0);
	assert_int_equal(p.remaining, 0);
	assert_int_equal(p.total, 0);
	assert_int_equal(p.page_size, 4096);
	assert_true(p.mbps == 0.0);
	assert_true(mctl_progress_percent(&p) == 0.0);
}

static void test_progress_percent(void **state)
{
	struct mctl_progress p = {.transferred = 50, .total = 200};

	assert_true(mctl_progress_percent(&p) == 25.0);
	/* later iterations: transferred exceeds total */
	p.transferred = 300;
	p.remaining = 100;
	assert_true(mctl_progress_percent(&p) == 75.0);
	p.remaining = 0;
	assert_true(mctl_progress_percent(&p) == 100.0);
	p.transferred = UINT64_MAX;
	p.remaining = 10;
	assert_true(mctl_progress_percent(&p) <= 100.0);
	p = (struct mctl_progress){0};
	assert_true(mctl_progress_percent(&p) == 0.0);
	/* with remaining reported: the share of RAM done, whatever it cost
	 * on the wire (zero pages are nearly free) */
	parse_text("{\"status\": \"active\", \"ram\": {\"transferred\": "
		   "4096, \"remaining\": 805306368, \"total\": 1073741824}}",
		   &p);
	assert_true(p.has_remaining);
	assert_true(mctl_progress_percent(&p) == 25.0);
	p.remaining = 2000000000; /* more than total: nothing done */
	assert_true(mctl_progress_percent(&p) == 0.0);
	p.remaining = 0;
	assert_true(mctl_progress_percent(&p) == 100.0);
}

static void test_format_bytes(void **state)
{
	char buf[32];

	mctl_format_bytes(0, buf, sizeof(buf));
	assert_string_equal(buf, "0 B");
	mctl_format_bytes(1023, buf, sizeof(buf));
	assert_string_equal(buf, "1023 B");
	mctl_format_bytes(1536, buf, sizeof(buf));
	assert_string_equal(buf, "1.50 KiB");
	mctl_format_bytes(512ull << 20, buf, sizeof(buf));
	assert_string_equal(buf, "512.0 MiB");
	mctl_format_bytes(2ull << 30, buf, sizeof(buf));
	assert_string_equal(buf, "2.00 GiB");
	mctl_format_bytes(UINT64_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "16.0 EiB");
}

static void test_progress_line(void **state)
{
	struct mctl_progress p;
	char line[256];

	parse_text(active_reply, &p);
	mctl_progress_line(&p, 0, false, line, sizeof(line));
	assert_string_equal(line, "active   50.0%  300.0 MB/s  rem 512.0 MiB"
				  "  dirty 10.2 MB/s  iter 2");
	/* the bar fills the line up to width - 1; with a bar the numbers
	 * have fixed widths so that redraws keep the bar's size ... */
	mctl_progress_line(&p, 80, true, line, sizeof(line));
	assert_string_equal(line, "active [####----]  50.0%   300.0 MB/s  "
				  "rem  512.0 MiB  dirty  10.2 MB/s  iter 2");
	assert_int_equal(strlen(line), 79);
	p.mbps = 8000.0;
	p.remaining = 1000;
	mctl_progress_line(&p, 80, true, line, sizeof(line));
	assert_string_equal(line, "active [########]  99.9%  1000.0 MB/s  "
				  "rem     1000 B  dirty  10.2 MB/s  iter 2");
	parse_text(active_reply, &p);
	/* ... up to 40 cells */
	mctl_progress_line(&p, 200, true, line, sizeof(line));
	assert_string_equal(line, "active [####################-----------"
				  "---------]  50.0%   300.0 MB/s  rem  512.0 "
				  "MiB  dirty  10.2 MB/s  iter 2");
	/* a narrow terminal: no bar, cut to width - 1 */
	mctl_progress_line(&p, 30, true, line, sizeof(line));
	assert_string_equal(line, "active   50.0%  300.0 MB/s  r");
	parse_text("{\"status\": \"setup\", \"total-time\": 20}", &p);
	mctl_progress_line(&p, 80, true, line, sizeof(line));
	assert_string_equal(line, "setup  0.0s");
}

static void test_summary(void **state)
{
	struct mctl_progress p;
	char *s;

	parse_text("{\"status\": \"completed\", \"total-time\": 2000, "
		   "\"downtime\": 12, \"setup-time\": 3, \"ram\": "
		   "{\"transferred\": 1073741824, \"remaining\": 0, \"total\":"
		   " 1073741824, \"duplicate\": 1000, \"normal\": 262144, "
		   "\"mbps\": 0, \"dirty-sync-count\": 3}}",
		   &p);
	s = mctl_progress_summary(&p);
	assert_string_equal(s, "Migration completed\n"
			       "  total time    2000 ms\n"
			       "  downtime      12 ms\n"
			       "  setup time    3 ms\n"
			       "  transferred   1.00 GiB\n"
			       "  throughput    536.9 MB/s average\n"
			       "  pages         262144 normal, 1000 duplicate\n"
			       "  iterations    3\n");
	free(s);
	parse_text("{\"status\": \"failed\", \"error-desc\": \"Unable to "
		   "write to socket: Broken pipe\"}",
		   &p);
	s = mctl_progress_summary(&p);
	assert_string_equal(s, "Migration failed\n"
			       "  error         Unable to write to socket: "
			       "Broken pipe\n");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_words_is_empty_object),
		cmocka_unit_test(test_value_types),
		cmocka_unit_test(test_json_values),
		cmocka_unit_test(test_dotted_keys),
		cmocka_unit_test(test_bad_words),
		cmocka_unit_test(test_json_object_argument),
		cmocka_unit_test(test_value_parse),
		cmocka_unit_test(test_progress_parse),
		cmocka_unit_test(test_progress_hostile_values),
		cmocka_unit_test(test_progress_percent),
		cmocka_unit_test(test_format_bytes),
		cmocka_unit_test(test_progress_line),
		cmocka_unit_test(test_summary),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
