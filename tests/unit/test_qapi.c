/* test_qapi.c — control/qapi.c argument readers against QEMU's
 * qobject-input-visitor: missing/unexpected/type messages, full member names
 * through nested structs and lists, integer range messages (which QEMU
 * prints with the bare member name), enums and StrOrNull. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/qapi.h"

static json_t *js(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

	assert_non_null(v);
	return v;
}

/* Asserts that err is a GenericError with message desc, and frees it. */
static void expect_err(struct mig_error **err, const char *desc)
{
	assert_non_null(*err);
	assert_int_equal((*err)->cls, MIG_ERR_GENERIC);
	assert_string_equal((*err)->desc, desc);
	mig_error_free(*err);
	*err = NULL;
}

static void test_missing(void **state)
{
	json_t *root = js("{\"a\": {}}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	const char *s = NULL;
	int64_t i;

	qapi_in_init(&in, root);
	assert_false(qapi_read_str(&in, "uri", &s, &err));
	expect_err(&err, "Parameter 'uri' is missing");
	assert_false(qapi_start_struct(&in, "nope", &sub, &err));
	expect_err(&err, "Parameter 'nope' is missing");
	qapi_in_fini(&sub);
	assert_true(qapi_start_struct(&in, "a", &sub, &err));
	assert_false(qapi_read_int(&sub, "port", &i, &err));
	expect_err(&err, "Parameter 'a.port' is missing");
	qapi_in_fini(&sub);
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_type_errors(void **state)
{
	json_t *root = js("{\"s\": 1, \"b\": \"x\", \"i\": 1.5, \"j\": \"1\","
			  " \"n\": true, \"o\": [], \"l\": {}, \"u\": {}}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	const char *s;
	bool b;
	int64_t i;
	double d;
	uint64_t u;

	qapi_in_init(&in, root);
	assert_false(qapi_read_str(&in, "s", &s, &err));
	expect_err(&err, "Invalid parameter type for 's', expected: string");
	assert_false(qapi_read_bool(&in, "b", &b, &err));
	expect_err(&err, "Invalid parameter type for 'b', expected: boolean");
	assert_false(qapi_read_int(&in, "i", &i, &err));
	expect_err(&err, "Invalid parameter type for 'i', expected: integer");
	assert_false(qapi_read_int(&in, "j", &i, &err));
	expect_err(&err, "Invalid parameter type for 'j', expected: integer");
	assert_false(qapi_read_number(&in, "n", &d, &err));
	expect_err(&err, "Invalid parameter type for 'n', expected: number");
	assert_false(qapi_start_struct(&in, "o", &sub, &err));
	expect_err(&err, "Invalid parameter type for 'o', expected: object");
	assert_false(qapi_start_list(&in, "l", &sub, &err));
	expect_err(&err, "Invalid parameter type for 'l', expected: array");
	assert_false(qapi_read_uint64(&in, "u", &u, &err));
	expect_err(&err, "Parameter 'u' expects uint64");
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_unexpected(void **state)
{
	json_t *root = js("{\"a\": 1, \"s\": {\"x\": 1, \"y\": 2}, \"b\": 2}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	int64_t i;

	qapi_in_init(&in, root);
	assert_true(qapi_read_int(&in, "a", &i, &err));
	assert_true(qapi_start_struct(&in, "s", &sub, &err));
	assert_true(qapi_read_int(&sub, "x", &i, &err));
	assert_false(qapi_check_struct(&sub, &err));
	expect_err(&err, "Parameter 's.y' is unexpected");
	assert_true(qapi_read_int(&sub, "y", &i, &err));
	assert_true(qapi_check_struct(&sub, &err));
	qapi_in_fini(&sub);
	assert_false(qapi_check_struct(&in, &err));
	expect_err(&err, "Parameter 'b' is unexpected");
	/* reading a member twice consumes it once */
	assert_true(qapi_read_int(&in, "b", &i, &err));
	assert_true(qapi_read_int(&in, "b", &i, &err));
	assert_int_equal(i, 2);
	assert_true(qapi_check_struct(&in, &err));
	assert_null(err);
	qapi_in_fini(&in);
	json_decref(root);
}

/* MigrationChannel-like input: names go through lists and structs. */
static void test_full_names(void **state)
{
	json_t *root =
		js("{\"channels\": [{\"channel-type\": \"main\", \"addr\":"
		   " {\"transport\": \"socket\", \"port\": \"x\"}},"
		   " {\"addr\": {\"port\": 1, \"zz\": 0}}]}");
	struct mig_error *err = NULL;
	struct qapi_in in, list, ch, addr;
	const char *s;
	int64_t port;

	qapi_in_init(&in, root);
	assert_true(qapi_start_list(&in, "channels", &list, &err));
	assert_true(qapi_has(&list, NULL));
	assert_true(qapi_start_struct(&list, NULL, &ch, &err));
	assert_true(qapi_read_str(&ch, "channel-type", &s, &err));
	assert_true(qapi_start_struct(&ch, "addr", &addr, &err));
	assert_true(qapi_read_str(&addr, "transport", &s, &err));
	assert_false(qapi_read_int(&addr, "port", &port, &err));
	expect_err(&err, "Invalid parameter type for 'channels[0].addr.port',"
			 " expected: integer");
	assert_false(qapi_read_str(&addr, "host", &s, &err));
	expect_err(&err, "Parameter 'channels[0].addr.host' is missing");
	qapi_in_fini(&addr);
	qapi_in_fini(&ch);

	assert_true(qapi_has(&list, NULL));
	assert_true(qapi_start_struct(&list, NULL, &ch, &err));
	assert_false(qapi_read_str(&ch, "channel-type", &s, &err));
	expect_err(&err, "Parameter 'channels[1].channel-type' is missing");
	assert_true(qapi_start_struct(&ch, "addr", &addr, &err));
	assert_true(qapi_read_int(&addr, "port", &port, &err));
	assert_int_equal(port, 1);
	assert_false(qapi_check_struct(&addr, &err));
	expect_err(&err, "Parameter 'channels[1].addr.zz' is unexpected");
	qapi_in_fini(&addr);
	assert_true(qapi_check_struct(&ch, &err));
	qapi_in_fini(&ch);
	assert_false(qapi_has(&list, NULL));
	qapi_in_fini(&list);
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_list_elements(void **state)
{
	json_t *root = js("{\"enable\": [\"oob\", 7], \"m\": [[1, \"x\"]],"
			  " \"o\": 1}");
	struct mig_error *err = NULL;
	struct qapi_in in, list, inner;
	const char *s;
	int64_t i;
	char buf[64];

	qapi_in_init(&in, root);
	assert_string_equal(qapi_full_name(&in, NULL, buf, sizeof(buf)),
			    "<anonymous>");
	assert_string_equal(qapi_full_name(&in, "o", buf, sizeof(buf)), "o");
	assert_true(qapi_start_list(&in, "enable", &list, &err));
	assert_true(qapi_read_str(&list, NULL, &s, &err));
	assert_string_equal(s, "oob");
	assert_false(qapi_read_str(&list, NULL, &s, &err));
	expect_err(&err,
		   "Invalid parameter type for 'enable[1]', expected: string");
	assert_false(qapi_has(&list, NULL));
	assert_false(qapi_read_str(&list, NULL, &s, &err));
	expect_err(&err, "Parameter 'enable[2]' is missing");
	qapi_in_fini(&list);

	assert_true(qapi_start_list(&in, "m", &list, &err));
	assert_true(qapi_start_list(&list, NULL, &inner, &err));
	assert_true(qapi_read_int(&inner, NULL, &i, &err));
	assert_false(qapi_read_int(&inner, NULL, &i, &err));
	expect_err(&err,
		   "Invalid parameter type for 'm[0][1]', expected: integer");
	qapi_in_fini(&inner);
	qapi_in_fini(&list);
	qapi_in_fini(&in);
	json_decref(root);
}

/* QEMU's visit_type_uintN/intN print the member's own name, not the full
 * path, and "null" for list elements. */
static void test_int_ranges(void **state)
{
	json_t *root =
		js("{\"u8\": 256, \"u8ok\": 255, \"u16\": 65536,"
		   " \"u32\": 4294967296, \"u32ok\": 4294967295,"
		   " \"neg8\": -1, \"i32\": 2147483648, \"i32n\": -2147483649,"
		   " \"i32ok\": -2147483648, \"s\": {\"v\": 300},"
		   " \"l\": [1, 1000], \"f\": 1.0}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	int32_t i32;

	qapi_in_init(&in, root);
	assert_false(qapi_read_uint8(&in, "u8", &u8, &err));
	expect_err(&err, "Parameter 'u8' expects uint8_t");
	assert_true(qapi_read_uint8(&in, "u8ok", &u8, &err));
	assert_int_equal(u8, 255);
	assert_false(qapi_read_uint16(&in, "u16", &u16, &err));
	expect_err(&err, "Parameter 'u16' expects uint16_t");
	assert_false(qapi_read_uint32(&in, "u32", &u32, &err));
	expect_err(&err, "Parameter 'u32' expects uint32_t");
	assert_true(qapi_read_uint32(&in, "u32ok", &u32, &err));
	assert_int_equal(u32, UINT32_MAX);
	/* -1 wraps to UINT64_MAX first, then fails the range check */
	assert_false(qapi_read_uint8(&in, "neg8", &u8, &err));
	expect_err(&err, "Parameter 'neg8' expects uint8_t");
	assert_false(qapi_read_int32(&in, "i32", &i32, &err));
	expect_err(&err, "Parameter 'i32' expects int32_t");
	assert_false(qapi_read_int32(&in, "i32n", &i32, &err));
	expect_err(&err, "Parameter 'i32n' expects int32_t");
	assert_true(qapi_read_int32(&in, "i32ok", &i32, &err));
	assert_int_equal(i32, INT32_MIN);
	/* a real is not a uint: full name, "uint64" */
	assert_false(qapi_read_uint8(&in, "f", &u8, &err));
	expect_err(&err, "Parameter 'f' expects uint64");

	assert_true(qapi_start_struct(&in, "s", &sub, &err));
	assert_false(qapi_read_uint8(&sub, "v", &u8, &err));
	expect_err(&err, "Parameter 'v' expects uint8_t");
	qapi_in_fini(&sub);
	assert_true(qapi_start_list(&in, "l", &sub, &err));
	assert_true(qapi_read_uint8(&sub, NULL, &u8, &err));
	assert_int_equal(u8, 1);
	assert_false(qapi_read_uint8(&sub, NULL, &u8, &err));
	expect_err(&err, "Parameter 'null' expects uint8_t");
	qapi_in_fini(&sub);
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_uint64(void **state)
{
	json_t *root = js("{\"neg\": -1, \"max\": 9223372036854775807,"
			  " \"s\": {\"v\": \"12\"}, \"b\": true, \"min\": "
			  "-9223372036854775808}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	uint64_t u;

	qapi_in_init(&in, root);
	/* QEMU accepts negative integers for uint64 (backward compat) */
	assert_true(qapi_read_uint64(&in, "neg", &u, &err));
	assert_true(u == UINT64_MAX);
	assert_true(qapi_read_uint64(&in, "min", &u, &err));
	assert_true(u == (uint64_t)INT64_MIN);
	assert_true(qapi_read_uint64(&in, "max", &u, &err));
	assert_true(u == (uint64_t)INT64_MAX);
	assert_false(qapi_read_uint64(&in, "b", &u, &err));
	expect_err(&err, "Parameter 'b' expects uint64");
	/* unlike the range checks, the uint64 type error uses the full name */
	assert_true(qapi_start_struct(&in, "s", &sub, &err));
	assert_false(qapi_read_uint64(&sub, "v", &u, &err));
	expect_err(&err, "Parameter 's.v' expects uint64");
	qapi_in_fini(&sub);
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_enums(void **state)
{
	static const char *const modes[] = {"normal", "cpr-reboot", NULL};
	json_t *root = js("{\"mode\": \"cpr-reboot\", \"bad\": \"bogus\","
			  " \"num\": 1, \"s\": {\"mode\": \"x\"},"
			  " \"l\": [\"normal\", \"nope\"]}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	int v = -1;

	assert_int_equal(qapi_enum_lookup(modes, "normal"), 0);
	assert_int_equal(qapi_enum_lookup(modes, "nope"), -1);
	qapi_in_init(&in, root);
	assert_true(qapi_read_enum(&in, "mode", modes, &v, &err));
	assert_int_equal(v, 1);
	assert_false(qapi_read_enum(&in, "bad", modes, &v, &err));
	expect_err(&err, "Parameter 'bad' does not accept value 'bogus'");
	assert_false(qapi_read_enum(&in, "num", modes, &v, &err));
	expect_err(&err, "Invalid parameter type for 'num', expected: string");
	assert_false(qapi_read_enum(&in, "missing", modes, &v, &err));
	expect_err(&err, "Parameter 'missing' is missing");
	assert_true(qapi_start_struct(&in, "s", &sub, &err));
	assert_false(qapi_read_enum(&sub, "mode", modes, &v, &err));
	expect_err(&err, "Parameter 'mode' does not accept value 'x'");
	qapi_in_fini(&sub);
	assert_true(qapi_start_list(&in, "l", &sub, &err));
	assert_true(qapi_read_enum(&sub, NULL, modes, &v, &err));
	assert_int_equal(v, 0);
	assert_false(qapi_read_enum(&sub, NULL, modes, &v, &err));
	expect_err(&err, "Parameter 'null' does not accept value 'nope'");
	qapi_in_fini(&sub);
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_str_or_null(void **state)
{
	json_t *root = js("{\"tls-creds\": null, \"tls-hostname\": \"h\","
			  " \"tls-authz\": 5}");
	struct mig_error *err = NULL;
	struct qapi_in in;
	const char *s = "unchanged";

	qapi_in_init(&in, root);
	assert_true(qapi_has(&in, "tls-creds")); /* present even as null */
	assert_false(qapi_has(&in, "absent"));
	assert_true(qapi_read_str_or_null(&in, "tls-creds", &s, &err));
	assert_null(s);
	assert_true(qapi_read_str_or_null(&in, "tls-hostname", &s, &err));
	assert_string_equal(s, "h");
	assert_false(qapi_read_str_or_null(&in, "tls-authz", &s, &err));
	expect_err(&err, "Invalid parameter type for 'tls-authz', expected:"
			 " StrOrNull");
	assert_false(qapi_read_str_or_null(&in, "absent", &s, &err));
	expect_err(&err, "Parameter 'absent' is missing");
	assert_true(qapi_check_struct(&in, &err));
	qapi_in_fini(&in);
	json_decref(root);
}

/* QEMU's generated alternate visitor names the member by its bare name (or
 * "null" in a list), like the integer range checks. */
static void test_str_or_null_nested(void **state)
{
	json_t *root =
		js("{\"p\": {\"tls-creds\": []}, \"l\": [\"a\", null, 1]}");
	struct mig_error *err = NULL;
	struct qapi_in in, sub;
	const char *s;

	qapi_in_init(&in, root);
	assert_true(qapi_start_struct(&in, "p", &sub, &err));
	assert_false(qapi_read_str_or_null(&sub, "tls-creds", &s, &err));
	expect_err(&err, "Invalid parameter type for 'tls-creds', expected:"
			 " StrOrNull");
	qapi_in_fini(&sub);
	assert_true(qapi_start_list(&in, "l", &sub, &err));
	assert_true(qapi_read_str_or_null(&sub, NULL, &s, &err));
	assert_string_equal(s, "a");
	assert_true(qapi_read_str_or_null(&sub, NULL, &s, &err));
	assert_null(s);
	assert_false(qapi_read_str_or_null(&sub, NULL, &s, &err));
	expect_err(&err, "Invalid parameter type for 'null', expected:"
			 " StrOrNull");
	qapi_in_fini(&sub);
	qapi_in_fini(&in);
	json_decref(root);
}

static void test_number_and_any(void **state)
{
	json_t *root = js("{\"i\": 3, \"r\": 0.5, \"a\": [1, {\"x\": null}]}");
	struct mig_error *err = NULL;
	struct qapi_in in;
	json_t *any = NULL;
	double d;

	qapi_in_init(&in, root);
	assert_true(qapi_read_number(&in, "i", &d, &err));
	assert_true(d == 3.0);
	assert_true(qapi_read_number(&in, "r", &d, &err));
	assert_true(d == 0.5);
	assert_true(qapi_read_any(&in, "a", &any, &err));
	assert_true(json_is_array(any));
	assert_true(qapi_check_struct(&in, &err));
	assert_null(err);
	qapi_in_fini(&in);
	qapi_in_fini(&in); /* fini twice is safe */
	json_decref(root);
}

/* Many members: the consumed-key table grows; a long path is truncated, not
 * overflowed. */
static void test_many_members_and_long_names(void **state)
{
	json_t *root = json_object(), *deep = root;
	struct mig_error *err = NULL;
	struct qapi_in in, chain[40];
	char key[16], buf[600];
	int64_t v;
	int depth = 40;

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		json_object_set_new(root, key, json_integer(i));
	}
	qapi_in_init(&in, root);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_true(qapi_read_int(&in, key, &v, &err));
		assert_int_equal(v, i);
	}
	assert_true(qapi_check_struct(&in, &err));
	qapi_in_fini(&in);
	json_decref(root);

	root = deep = json_object();
	for (int i = 0; i < depth; i++) {
		json_t *n = json_object();

		json_object_set_new(deep, "a-rather-long-member-name", n);
		deep = n;
	}
	qapi_in_init(&in, root);
	for (int i = 0; i < depth; i++)
		assert_true(qapi_start_struct(i ? &chain[i - 1] : &in,
					      "a-rather-long-member-name",
					      &chain[i], &err));
	assert_false(qapi_read_int(&chain[depth - 1], "x", &v, &err));
	assert_non_null(err);
	assert_true(strlen(err->desc) < 600);
	assert_non_null(
		strstr(err->desc, "Parameter 'a-rather-long-member-name"));
	mig_error_free(err);
	err = NULL;
	/* a short buffer truncates the name and stays terminated */
	assert_true(strlen(qapi_full_name(&chain[0], "x", buf, 8)) < 8);
	assert_true(!strncmp(buf, "a-rat", 5));
	for (int i = depth - 1; i >= 0; i--)
		qapi_in_fini(&chain[i]);
	qapi_in_fini(&in);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_type_errors),
		cmocka_unit_test(test_unexpected),
		cmocka_unit_test(test_full_names),
		cmocka_unit_test(test_list_elements),
		cmocka_unit_test(test_int_ranges),
		cmocka_unit_test(test_uint64),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_str_or_null),
		cmocka_unit_test(test_str_or_null_nested),
		cmocka_unit_test(test_number_and_any),
		cmocka_unit_test(test_many_members_and_long_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
