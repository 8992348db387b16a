/* test_qmp_json.c — the QMP JSON streamer/parser: framing across arbitrary
 * chunk boundaries, QEMU's extensions and error messages, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/qmp_json.h"

struct sink {
	char *items[64]; /* "V:<json>" or "E:<desc>" */
	int n;
};

static void sink_emit(void *opaque, json_t *v, struct mig_error *err)
{
	struct sink *s = opaque;
	char *txt;

	if (v) {
		char *j = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		assert_true(asprintf(&txt, "V:%s", j) > 0);
		free(j);
		json_decref(v);
	} else {
		assert_non_null(err);
		assert_true(asprintf(&txt, "E:%s", err->desc) > 0);
		mig_error_free(err);
	}
	assert_true(s->n < 64);
	s->items[s->n++] = txt;
}

static void sink_clear(struct sink *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->items[i]);
	s->n = 0;
}

/* Feeds text one byte at a time and all at once; both must agree. */
static void feed_both(const char *text, struct sink *out)
{
	struct sink a = {0};
	struct qmp_json_stream *st = qmp_json_stream_new(sink_emit, &a);

	for (size_t i = 0; text[i]; i++)
		qmp_json_stream_feed(st, text + i, 1);
	qmp_json_stream_free(st);
	st = qmp_json_stream_new(sink_emit, out);
	qmp_json_stream_feed(st, text, strlen(text));
	qmp_json_stream_free(st);
	assert_int_equal(a.n, out->n);
	for (int i = 0; i < a.n; i++)
		assert_string_equal(a.items[i], out->items[i]);
	sink_clear(&a);
}

static void test_framing(void **state)
{
	struct sink s = {0};

	feed_both("{\"execute\": \"a\"}{\"execute\":\"b\"}\r\n  [1, 2] \"x\" ",
		  &s);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.items[0], "V:{\"execute\":\"a\"}");
	assert_string_equal(s.items[1], "V:{\"execute\":\"b\"}");
	assert_string_equal(s.items[2], "V:[1,2]");
	assert_string_equal(s.items[3], "V:\"x\"");
	sink_clear(&s);
}

static void test_single_quotes_and_escapes(void **state)
{
	struct sink s = {0};

	feed_both("{'a': 'it\\'s \"q\"', \"b\": \"\\u00e9\\ud83d\\ude00\\n\"}",
		  &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(
		s.items[0],
		"V:{\"a\":\"it's "
		"\\\"q\\\"\",\"b\":\"\xc3\xa9\xf0\x9f\x98\x80\\n\"}");
	sink_clear(&s);
}

static void test_numbers(void **state)
{
	struct sink s = {0};

	feed_both(
		"[0, -1, 9223372036854775807, 1.5, 2e3, 18446744073709551615]",
		&s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0], "V:[0,-1,9223372036854775807,1.5,2000."
					"0,1.8446744073709552e19]");
	sink_clear(&s);
}

struct err_case {
	const char *in;
	const char *out;
};

static void test_errors(void **state)
{
	static const struct err_case cases[] = {
		{"{\"a\": }", "E:JSON parse error, expecting value"},
		{"{\"a\" 1}", "E:JSON parse error, missing : in object pair"},
		{"{1: 2}", "E:JSON parse error, key is not a string in object"},
		{"{\"a\": 1 \"b\": 2}",
		 "E:JSON parse error, expected separator in dict"},
		{"[1 2]", "E:JSON parse error, expected separator in list"},
		{"{\"a\": 1, \"a\": 2}", "E:JSON parse error, duplicate key"},
		{"[tru]", "E:JSON parse error, invalid keyword 'tru'"},
		{"@", "E:JSON parse error, stray '@'"},
		{"}", "E:JSON parse error, expecting value"},
		{"[\"\\u0000\"]",
		 "E:JSON parse error, \\u0000 is not supported"},
		{"[\"\\ud800\"]",
		 "E:JSON parse error, invalid hex escape sequence in string"},
		/* bytes that are not UTF-8 are shown as U+FFFD, so the
		 * message can travel in a QMP reply (found by fuzzing) */
		{"[t\x8c]",
		 "E:JSON parse error, invalid keyword 't\xef\xbf\xbd'"},
		{"\xc3", "E:JSON parse error, stray '\xef\xbf\xbd'"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sink s = {0};

		feed_both(cases[i].in, &s);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.items[0], cases[i].out);
		sink_clear(&s);
	}
}

/* After an error, the stream recovers at the next balanced point and the
 * next request parses normally. */
static void test_recovery(void **state)
{
	struct sink s = {0};

	feed_both("{\"a\": @@ [1] } {\"ok\": true}", &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "E:JSON parse error, stray '@'");
	assert_string_equal(s.items[1], "V:{\"ok\":true}");
	sink_clear(&s);
	/* 0xFF resets a half-received message */
	feed_both("{\"half\": \xff{\"x\": 1}", &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0], "V:{\"x\":1}");
	sink_clear(&s);
}

static void test_nesting_limit(void **state)
{
	struct sink s = {0};
	size_t n = QMP_JSON_MAX_NESTING + 10;
	char *deep = malloc(2 * n + 16);

	memset(deep, '[', n);
	memset(deep + n, ']', n);
	strcpy(deep + 2 * n, "{\"y\":2}");
	feed_both(deep, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "E:JSON nesting depth limit exceeded");
	assert_string_equal(s.items[1], "V:{\"y\":2}");
	sink_clear(&s);
	free(deep);
}

static void test_size_limit(void **state)
{
	struct sink s = {0};
	size_t n = QMP_JSON_MAX_SIZE + 100;
	char *big = malloc(n + 64);
	struct qmp_json_stream *st = qmp_json_stream_new(sink_emit, &s);

	strcpy(big, "{\"k\": \"");
	memset(big + 7, 'a', n);
	strcpy(big + 7 + n, "\"} {\"z\": 3}");
	qmp_json_stream_feed(st, big, strlen(big));
	qmp_json_stream_free(st);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0], "E:JSON token size limit exceeded");
	assert_string_equal(s.items[1], "V:{\"z\":3}");
	sink_clear(&s);
	free(big);
}

static void test_parse_one(void **state)
{
	struct mig_error *err = NULL;
	json_t *v = qmp_json_parse("{\"a\": [true, null]}", 19, &err);

	assert_non_null(v);
	assert_null(err);
	json_decref(v);
	v = qmp_json_parse("{\"a\": ", 6, &err);
	assert_null(v);
	assert_string_equal(err->desc, "JSON parse error, premature EOI");
	mig_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_single_quotes_and_escapes),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_recovery),
		cmocka_unit_test(test_nesting_limit),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_parse_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
