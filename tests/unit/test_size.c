/* test_size.c — QEMU's size syntax (util/size.c): suffixes, fractions,
 * hex, the default suffix, and every way a size can be malformed or too
 * large. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/size.h"

static void expect_size(const char *s, char def, uint64_t want)
{
	uint64_t v = 0;

	assert_int_equal(size_parse(s, def, &v), 0);
	assert_int_equal(v, want);
}

static void expect_fail(const char *s, char def, int err)
{
	uint64_t v = 12345;

	assert_int_equal(size_parse(s, def, &v), err);
	assert_int_equal(v, 12345); /* untouched on error */
}

static void test_suffixes(void **state)
{
	expect_size("0", 'B', 0);
	expect_size("4096", 'B', 4096);
	expect_size("7b", 'B', 7);
	expect_size("1k", 'B', 1024);
	expect_size("1K", 'B', 1024);
	expect_size("128M", 'B', 128ull << 20);
	expect_size("128m", 'B', 128ull << 20);
	expect_size("2G", 'B', 2ull << 30);
	expect_size("3T", 'B', 3ull << 40);
	expect_size("1P", 'B', 1ull << 50);
	expect_size("15E", 'B', 15ull << 60);
}

static void test_default_suffix(void **state)
{
	expect_size("128", 'M', 128ull << 20);
	expect_size("1.5", 'M', 3ull << 19);
	expect_size("2G", 'M', 2ull << 30); /* an explicit suffix wins */
	expect_size("512", 'K', 512ull << 10);
}

static void test_fractions(void **state)
{
	expect_size("1.5G", 'B', 1610612736ull);
	expect_size("0.5K", 'B', 512);
	expect_size(".5M", 'B', 512ull << 10);
	expect_size("1.M", 'B', 1ull << 20);
	/* rounded to the nearest byte: 12.345 MiB */
	expect_size("12.345M", 'B', 12944671ull);
	expect_fail("1.5", 'B', -EINVAL); /* fraction of a byte */
	expect_fail("1.5B", 'B', -EINVAL);
	expect_fail("1e3", 'B', -EINVAL);
}

static void test_hex(void **state)
{
	expect_size("0x1000", 'B', 4096);
	expect_size("0XfF", 'B', 255);
	expect_size("0xffffffffffffffff", 'B', UINT64_MAX);
	expect_fail("0x", 'B', -EINVAL);
	expect_fail("0x10M", 'B', -EINVAL);
	expect_fail("0x1.5", 'B', -EINVAL);
	expect_fail("0x1ffffffffffffffff", 'B', -ERANGE);
}

static void test_malformed(void **state)
{
	expect_fail("", 'B', -EINVAL);
	expect_fail("M", 'B', -EINVAL);
	expect_fail("-1", 'B', -EINVAL);
	expect_fail("+1", 'B', -EINVAL);
	expect_fail(" 1", 'B', -EINVAL);
	expect_fail("1 ", 'B', -EINVAL);
	expect_fail("1MB", 'B', -EINVAL);
	expect_fail("1X", 'B', -EINVAL);
	expect_fail("1..5M", 'B', -EINVAL);
	expect_fail("abc", 'B', -EINVAL);
	assert_int_equal(size_parse(NULL, 'B', NULL), -EINVAL);
}

static void test_range(void **state)
{
	expect_size("18446744073709551615", 'B', UINT64_MAX);
	expect_fail("18446744073709551616", 'B', -ERANGE);
	expect_fail("16E", 'B', -ERANGE);
	expect_fail("16777216T", 'B', -ERANGE);
	expect_size("16777215T", 'B', 16777215ull << 40);
	expect_fail("99999999999999999999999999M", 'B', -ERANGE);
}

static void test_format(void **state)
{
	char buf[32];

	assert_string_equal(size_format(128ull << 20, buf, sizeof(buf)),
			    "128M");
	assert_string_equal(size_format(1536, buf, sizeof(buf)), "1536B");
	assert_string_equal(size_format(3ull << 39, buf, sizeof(buf)), "1536G");
	assert_string_equal(size_format(0, buf, sizeof(buf)), "0B");
	assert_string_equal(size_format(7, buf, sizeof(buf)), "7B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test(test_default_suffix),
		cmocka_unit_test(test_fractions),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
