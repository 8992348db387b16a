/* test_opts.c — QEMU's key=value option strings (util/opts.c): implied
 * first key, ",," escapes, last-one-wins duplicates, typed readers and
 * QEMU's syntax error messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "util/opts.h"

static struct opts *parse_ok(const char *s, const char *implied)
{
	struct mig_error *err = NULL;
	struct opts *o = opts_parse(s, implied, &err);

	assert_null(err);
	assert_non_null(o);
	return o;
}

static void parse_fails(const char *s, const char *implied, const char *desc)
{
	struct mig_error *err = NULL;

	assert_null(opts_parse(s, implied, &err));
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void test_pairs(void **state)
{
	struct opts *o = parse_ok("id=ram0,size=2G,share=on", NULL);

	assert_int_equal(o->n, 3);
	assert_string_equal(opts_get(o, "id"), "ram0");
	assert_string_equal(opts_get(o, "size"), "2G");
	assert_string_equal(opts_get(o, "share"), "on");
	assert_null(opts_get(o, "mem-path"));
	assert_null(opts_first_unused(o));
	opts_free(o);
}

static void test_implied_key(void **state)
{
	struct opts *o = parse_ok("none,memory-backend=ram0", "type");

	assert_string_equal(opts_get(o, "type"), "none");
	assert_string_equal(opts_get(o, "memory-backend"), "ram0");
	opts_free(o);
	o = parse_ok("type=none", "type"); /* explicit key still works */
	assert_string_equal(opts_get(o, "type"), "none");
	opts_free(o);
	o = parse_ok("1.5G", "size"); /* '.' is a key char: still implied */
	assert_string_equal(opts_get(o, "size"), "1.5G");
	opts_free(o);
	o = parse_ok("my guest,process=p", "guest");
	assert_string_equal(opts_get(o, "guest"), "my guest");
	opts_free(o);
}

static void test_comma_escape(void **state)
{
	struct opts *o = parse_ok("a,,b,path=/x,,y,,,z=1", "name");

	assert_string_equal(opts_get(o, "name"), "a,b");
	assert_string_equal(opts_get(o, "path"), "/x,y,");
	assert_string_equal(opts_get(o, "z"), "1");
	opts_free(o);
}

static void test_duplicates_and_unused(void **state)
{
	struct opts *o = parse_ok("size=1G,size=2G,bogus=1,", NULL);

	assert_int_equal(o->n, 3);
	assert_true(opts_has(o, "bogus"));
	assert_string_equal(opts_get(o, "size"), "2G"); /* last one wins */
	assert_string_equal(opts_first_unused(o), "bogus");
	opts_get(o, "bogus");
	assert_null(opts_first_unused(o));
	opts_free(o);
	o = parse_ok("", "size");
	assert_int_equal(o->n, 0);
	opts_free(o);
	o = parse_ok("empty=", NULL);
	assert_string_equal(opts_get(o, "empty"), "");
	opts_free(o);
}

static void test_syntax_errors(void **state)
{
	parse_fails("size", NULL, "Expected '=' after parameter 'size'");
	parse_fails("a=1,flag", NULL, "Expected '=' after parameter 'flag'");
	parse_fails("a=1,flag,b=2", "x", "Expected '=' after parameter 'flag'");
	parse_fails("=1", NULL, "Invalid parameter ''");
	parse_fails("a=1,b c=2", NULL, "Invalid parameter 'b c'");
	parse_fails(",a=1", NULL, "Invalid parameter ''");
}

static void test_bool(void **state)
{
	struct mig_error *err = NULL;
	struct opts *o = parse_ok("a=on,b=off,c=yes,d=n,e=maybe", NULL);
	bool v = false, untouched = true;

	assert_true(opts_get_bool(o, "a", &v, &err) && v);
	assert_true(opts_get_bool(o, "b", &v, &err) && !v);
	assert_true(opts_get_bool(o, "c", &v, &err) && v);
	assert_true(opts_get_bool(o, "d", &v, &err) && !v);
	assert_true(opts_get_bool(o, "absent", &untouched, &err));
	assert_true(untouched);
	assert_false(opts_get_bool(o, "e", &v, &err));
	assert_string_equal(err->desc, "Parameter 'e' expects 'on' or 'off'");
	mig_error_free(err);
	opts_free(o);
}

static void test_size_and_uint(void **state)
{
	struct mig_error *err = NULL;
	struct opts *o = parse_ok("s=1G,t=12,bad=1Q,n=42,h=0x10,neg=-1", NULL);
	uint64_t v = 0;

	assert_true(opts_get_size(o, "s", 'B', &v, &err));
	assert_int_equal(v, 1ull << 30);
	assert_true(opts_get_size(o, "t", 'B', &v, &err));
	assert_int_equal(v, 12);
	assert_false(opts_get_size(o, "bad", 'B', &v, &err));
	assert_string_equal(err->desc, "Parameter 'bad' expects size");
	mig_error_free(err);
	err = NULL;
	assert_true(opts_get_uint(o, "n", &v, &err));
	assert_int_equal(v, 42);
	assert_true(opts_get_uint(o, "h", &v, &err));
	assert_int_equal(v, 16);
	assert_false(opts_get_uint(o, "neg", &v, &err));
	assert_string_equal(err->desc, "Parameter 'neg' expects a number");
	mig_error_free(err);
	opts_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs),
		cmocka_unit_test(test_implied_key),
		cmocka_unit_test(test_comma_escape),
		cmocka_unit_test(test_duplicates_and_unused),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_size_and_uint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
