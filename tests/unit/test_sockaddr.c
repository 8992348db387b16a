/* test_sockaddr.c — migration address parsing (socket/addr.c): every URI
 * form QEMU 9.0 accepts, its quirks and exact error messages; the QAPI
 * MigrationAddress form read through control/qapi.h with QEMU's
 * member-path messages; and mig_addr_format() round trips. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/qapi.h"
#include "socket/sockaddr.h"

static void parse_ok(const char *uri, struct mig_addr *a)
{
	struct mig_error *err = NULL;

	if (mig_addr_parse_uri(uri, a, &err) != 0)
		fail_msg("'%s': %s", uri, err ? err->desc : "(no error)");
	assert_null(err);
}

static void parse_fails(const char *uri, const char *desc)
{
	struct mig_error *err = NULL;
	struct mig_addr a;

	assert_int_equal(mig_addr_parse_uri(uri, &a, &err), -EINVAL);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	assert_int_equal(err->cls, MIG_ERR_GENERIC);
	/* left empty: nothing to free, nothing dangling */
	assert_null(a.host);
	assert_null(a.port);
	assert_null(a.path);
	assert_null(a.argv);
	mig_error_free(err);
}

static void expect_inet(const char *uri, enum mig_addr_kind kind,
			const char *host, const char *port)
{
	struct mig_addr a;

	parse_ok(uri, &a);
	assert_int_equal(a.kind, kind);
	assert_string_equal(a.host, host);
	assert_string_equal(a.port, port);
	mig_addr_clear(&a);
}

static void test_uri_tcp(void **state)
{
	struct mig_addr a;
	char host64[80], uri[128];

	expect_inet("tcp:127.0.0.1:4444", MIG_ADDR_TCP, "127.0.0.1", "4444");
	expect_inet("tcp:[::1]:4444", MIG_ADDR_TCP, "::1", "4444");
	expect_inet("tcp:[fe80::1%eth0]:1", MIG_ADDR_TCP, "fe80::1%eth0", "1");
	expect_inet("tcp::4444", MIG_ADDR_TCP, "", "4444");
	expect_inet("tcp:localhost:http", MIG_ADDR_TCP, "localhost", "http");
	expect_inet("tcp:h:0", MIG_ADDR_TCP, "h", "0");
	/* a port is anything up to a comma, and is cut at 32 characters */
	expect_inet("tcp:h:5:6", MIG_ADDR_TCP, "h", "5:6");
	expect_inet("tcp:h:123456789012345678901234567890123456", MIG_ADDR_TCP,
		    "h", "12345678901234567890123456789012");
	memset(host64, 'a', 64);
	host64[64] = '\0';
	snprintf(uri, sizeof(uri), "tcp:%s:1", host64);
	expect_inet(uri, MIG_ADDR_TCP, host64, "1");

	parse_ok("tcp:h:1", &a);
	assert_false(a.has_to || a.has_ipv4 || a.has_ipv6 || a.has_keep_alive ||
		     a.has_mptcp || a.has_numeric);
	mig_addr_clear(&a);
	mig_addr_clear(&a); /* idempotent */
}

static void test_uri_tcp_options(void **state)
{
	struct mig_addr a;

	parse_ok("tcp:h:1,to=5,ipv4=on,ipv6=off,keep-alive,mptcp=off", &a);
	assert_true(a.has_to);
	assert_int_equal(a.to, 5);
	assert_true(a.has_ipv4 && a.ipv4);
	assert_true(a.has_ipv6 && !a.ipv6);
	assert_true(a.has_keep_alive && a.keep_alive);
	assert_true(a.has_mptcp && !a.mptcp);
	mig_addr_clear(&a);

	/* QEMU keeps %d's value in a uint16_t; unknown options are ignored */
	parse_ok("tcp:h:1,to=70000,foo=bar,ipv6", &a);
	assert_int_equal(a.to, 70000 & 0xffff);
	assert_true(a.has_ipv6 && a.ipv6);
	mig_addr_clear(&a);
	parse_ok("tcp:h:1,to= +7", &a);
	assert_int_equal(a.to, 7);
	mig_addr_clear(&a);
}

static void test_uri_tcp_errors(void **state)
{
	char host65[80], uri[128], msg[160];

	parse_fails("tcp:nohost", "error parsing address 'nohost'");
	parse_fails("tcp:", "error parsing address ''");
	parse_fails("tcp:h:", "error parsing address 'h:'");
	parse_fails("tcp:h:,ipv4", "error parsing address 'h:,ipv4'");
	parse_fails("tcp::", "error parsing port in address ':'");
	parse_fails("tcp::,to=4", "error parsing port in address ':,to=4'");
	parse_fails("tcp:[::1]", "error parsing IPv6 address '[::1]'");
	parse_fails("tcp:[]:1", "error parsing IPv6 address '[]:1'");
	parse_fails("tcp:[::1]4444", "error parsing IPv6 address '[::1]4444'");
	parse_fails("tcp:[::1:4444", "error parsing IPv6 address '[::1:4444'");
	/* QEMU's host buffer holds 64 characters */
	memset(host65, 'a', 65);
	host65[65] = '\0';
	snprintf(uri, sizeof(uri), "tcp:%s:1", host65);
	snprintf(msg, sizeof(msg), "error parsing address '%s:1'", host65);
	parse_fails(uri, msg);
	parse_fails("tcp:h:1,to=abc", "error parsing to= argument");
	parse_fails("tcp:h:1,to=5x", "error parsing to= argument");
	parse_fails("tcp:h:1,to=", "error parsing to= argument");
	parse_fails("tcp:h:1,ipv4=yes", "error parsing 'ipv4' flag '=yes'");
	parse_fails("tcp:h:1,ipv4=yes,ipv6",
		    "error parsing 'ipv4' flag '=yes,ipv6'");
	parse_fails("tcp:h:1,ipv6=on,,foo",
		    "error parsing 'ipv6' flag '=on,,foo'");
	parse_fails("tcp:h:1,ipv4x", "error parsing 'ipv4' flag 'x'");
	parse_fails("tcp:h:1,keep-alive=1",
		    "error parsing 'keep-alive' flag '=1'");
	parse_fails("tcp:h:1,mptcp=", "error parsing 'mptcp' flag '='");
}

static void test_uri_other_forms(void **state)
{
	struct mig_addr a;

	parse_ok("unix:/tmp/mig.sock", &a);
	assert_int_equal(a.kind, MIG_ADDR_UNIX);
	assert_string_equal(a.path, "/tmp/mig.sock");
	assert_false(a.abstract);
	mig_addr_clear(&a);

	parse_ok("vsock:3:1234", &a);
	assert_int_equal(a.kind, MIG_ADDR_VSOCK);
	assert_string_equal(a.cid, "3");
	assert_string_equal(a.port, "1234");
	mig_addr_clear(&a);

	parse_ok("fd:migfd", &a);
	assert_int_equal(a.kind, MIG_ADDR_FD);
	assert_string_equal(a.fdname, "migfd");
	mig_addr_clear(&a);

	parse_ok("exec:cat > /dev/null", &a);
	assert_int_equal(a.kind, MIG_ADDR_EXEC);
	assert_string_equal(a.argv[0], "/bin/sh");
	assert_string_equal(a.argv[1], "-c");
	assert_string_equal(a.argv[2], "cat > /dev/null");
	assert_null(a.argv[3]);
	mig_addr_clear(&a);
	parse_ok("exec:", &a);
	assert_string_equal(a.argv[2], "");
	mig_addr_clear(&a);

	expect_inet("rdma:192.168.0.1:4444", MIG_ADDR_RDMA, "192.168.0.1",
		    "4444");
	expect_inet("rdma:[fe80::1]:4444,ipv6", MIG_ADDR_RDMA, "fe80::1",
		    "4444");
}

static uint64_t file_offset(const char *uri, const char *path)
{
	struct mig_addr a;
	uint64_t off;

	parse_ok(uri, &a);
	assert_int_equal(a.kind, MIG_ADDR_FILE);
	assert_string_equal(a.path, path);
	off = a.offset;
	mig_addr_clear(&a);
	return off;
}

static void test_uri_file(void **state)
{
	assert_int_equal(file_offset("file:/tmp/f", "/tmp/f"), 0);
	assert_int_equal(file_offset("file:/tmp/f,offset=4096", "/tmp/f"),
			 4096);
	assert_int_equal(file_offset("file:/tmp/f,offset=1M", "/tmp/f"),
			 1 << 20);
	assert_int_equal(file_offset("file:/tmp/f,offset=0x1000", "/tmp/f"),
			 0x1000);
	assert_int_equal(file_offset("file:/a,b,offset=1k", "/a,b"), 1024);
	assert_int_equal(file_offset("file:", ""), 0);
	assert_int_equal(file_offset("file:,offset=5", ""), 5);

	parse_fails("file:/tmp/f,offset=12X",
		    "file URI has bad offset 12X: Invalid argument");
	parse_fails("file:/tmp/f,offset=",
		    "file URI has bad offset : Invalid argument");
	parse_fails("file:/f,offset=1,offset=2",
		    "file URI has bad offset 1,offset=2: Invalid argument");
	parse_fails("file:/f,offset=99999999999999999999",
		    "file URI has bad offset 99999999999999999999: "
		    "Numerical result out of range");
}

static void test_uri_errors(void **state)
{
	parse_fails("unix:", "invalid Unix socket address");
	parse_fails("fd:", "invalid file descriptor address");
	parse_fails("vsock:3", "error parsing address '3'");
	parse_fails("vsock::5", "error parsing address ':5'");
	parse_fails("vsock:3:", "error parsing address '3:'");
	parse_fails("vsock:3:1234,x",
		    "trailing characters in address '3:1234,x'");
	parse_fails("rdma:bad", "error parsing address 'bad'");
	parse_fails("rdma:[x", "error parsing IPv6 address '[x'");
	parse_fails("http://x", "unknown migration protocol: http://x");
	parse_fails("TCP:1.2.3.4:5",
		    "unknown migration protocol: TCP:1.2.3.4:5");
	parse_fails("", "unknown migration protocol: ");
	parse_fails("tcp", "unknown migration protocol: tcp");
}

/* --- QAPI form ------------------------------------------------------------ */

/* Reads addr_json as channels[0].addr of a migrate command, so messages
 * carry QEMU's full member paths. */
static int read_qapi(const char *addr_json, struct mig_addr *a,
		     struct mig_error **err)
{
	char text[2048];
	struct qapi_in root, list, chan;
	const char *type;
	json_error_t jerr;
	json_t *args;
	int ret;

	snprintf(text, sizeof(text),
		 "{\"channels\": [{\"channel-type\": \"main\", \"addr\": %s}]}",
		 addr_json);
	args = json_loads(text, 0, &jerr);
	if (!args)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	qapi_in_init(&root, args);
	assert_true(qapi_start_list(&root, "channels", &list, NULL));
	assert_true(qapi_start_struct(&list, NULL, &chan, NULL));
	assert_true(qapi_read_str(&chan, "channel-type", &type, NULL));
	ret = mig_addr_read_qapi(&chan, "addr", a, err);
	qapi_in_fini(&chan);
	qapi_in_fini(&list);
	qapi_in_fini(&root);
	json_decref(args);
	return ret;
}

static void qapi_ok(const char *json, struct mig_addr *a)
{
	struct mig_error *err = NULL;

	if (read_qapi(json, a, &err) != 0)
		fail_msg("%s: %s", json, err ? err->desc : "(no error)");
}

static void qapi_fails(const char *json, const char *desc)
{
	struct mig_error *err = NULL;
	struct mig_addr a;

	assert_int_not_equal(read_qapi(json, &a, &err), 0);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	assert_null(a.host);
	assert_null(a.path);
	assert_null(a.argv);
	mig_error_free(err);
}

static void test_qapi_inet(void **state)
{
	struct mig_addr a;

	qapi_ok("{\"transport\": \"socket\", \"type\": \"inet\", "
		"\"host\": \"::1\", \"port\": \"4444\"}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_TCP);
	assert_string_equal(a.host, "::1");
	assert_string_equal(a.port, "4444");
	assert_false(a.has_numeric || a.has_to || a.has_ipv4 || a.has_ipv6 ||
		     a.has_keep_alive || a.has_mptcp);
	mig_addr_clear(&a);

	qapi_ok("{\"transport\": \"socket\", \"type\": \"inet\", "
		"\"host\": \"h\", \"port\": \"1\", \"numeric\": true, "
		"\"to\": 9, \"ipv4\": false, \"ipv6\": true, "
		"\"keep-alive\": false, \"mptcp\": true}",
		&a);
	assert_true(a.has_numeric && a.numeric);
	assert_true(a.has_to);
	assert_int_equal(a.to, 9);
	assert_true(a.has_ipv4 && !a.ipv4);
	assert_true(a.has_ipv6 && a.ipv6);
	assert_true(a.has_keep_alive && !a.keep_alive);
	assert_true(a.has_mptcp && a.mptcp);
	mig_addr_clear(&a);

	qapi_ok("{\"transport\": \"rdma\", \"host\": \"10.0.0.1\", "
		"\"port\": \"4444\"}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_RDMA);
	assert_string_equal(a.host, "10.0.0.1");
	mig_addr_clear(&a);
}

static void test_qapi_other(void **state)
{
	struct mig_addr a;

	qapi_ok("{\"transport\": \"socket\", \"type\": \"unix\", "
		"\"path\": \"/tmp/s\"}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_UNIX);
	assert_string_equal(a.path, "/tmp/s");
	assert_false(a.abstract || a.has_tight);
	mig_addr_clear(&a);
	qapi_ok("{\"transport\": \"socket\", \"type\": \"unix\", "
		"\"path\": \"n\", \"abstract\": true, \"tight\": false}",
		&a);
	assert_true(a.abstract);
	assert_true(a.has_tight && !a.tight);
	mig_addr_clear(&a);

	qapi_ok("{\"transport\": \"socket\", \"type\": \"vsock\", "
		"\"cid\": \"2\", \"port\": \"99\"}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_VSOCK);
	assert_string_equal(a.cid, "2");
	assert_string_equal(a.port, "99");
	mig_addr_clear(&a);

	qapi_ok("{\"transport\": \"socket\", \"type\": \"fd\", "
		"\"str\": \"fdname\"}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_FD);
	assert_string_equal(a.fdname, "fdname");
	mig_addr_clear(&a);

	qapi_ok("{\"transport\": \"exec\", \"args\": [\"nc\", \"-l\", "
		"\"4444\"]}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_EXEC);
	assert_string_equal(a.argv[0], "nc");
	assert_string_equal(a.argv[2], "4444");
	assert_null(a.argv[3]);
	mig_addr_clear(&a);
	qapi_ok("{\"transport\": \"exec\", \"args\": []}", &a);
	assert_null(a.argv[0]);
	mig_addr_clear(&a);

	qapi_ok("{\"transport\": \"file\", \"filename\": \"/tmp/f\", "
		"\"offset\": 8192}",
		&a);
	assert_int_equal(a.kind, MIG_ADDR_FILE);
	assert_string_equal(a.path, "/tmp/f");
	assert_int_equal(a.offset, 8192);
	mig_addr_clear(&a);
}

static void test_qapi_errors(void **state)
{
	qapi_fails("{}", "Parameter 'channels[0].addr.transport' is missing");
	qapi_fails("\"tcp:h:1\"", "Invalid parameter type for "
				  "'channels[0].addr', expected: object");
	qapi_fails("{\"transport\": \"x\"}",
		   "Parameter 'transport' does not accept value 'x'");
	qapi_fails("{\"transport\": 1}", "Invalid parameter type for "
					 "'channels[0].addr.transport', "
					 "expected: string");
	qapi_fails("{\"transport\": \"socket\"}",
		   "Parameter 'channels[0].addr.type' is missing");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"tcp\"}",
		   "Parameter 'type' does not accept value 'tcp'");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"inet\", "
		   "\"host\": \"h\"}",
		   "Parameter 'channels[0].addr.port' is missing");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"inet\", "
		   "\"host\": \"h\", \"port\": 4444}",
		   "Invalid parameter type for 'channels[0].addr.port', "
		   "expected: string");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"inet\", "
		   "\"host\": \"h\", \"port\": \"1\", \"to\": 70000}",
		   "Parameter 'to' expects uint16_t");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"inet\", "
		   "\"host\": \"h\", \"port\": \"1\", \"ipv4\": \"on\"}",
		   "Invalid parameter type for 'channels[0].addr.ipv4', "
		   "expected: boolean");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"inet\", "
		   "\"host\": \"h\", \"port\": \"1\", \"bogus\": 1}",
		   "Parameter 'channels[0].addr.bogus' is unexpected");
	qapi_fails("{\"transport\": \"socket\", \"type\": \"unix\", "
		   "\"path\": \"/p\", \"host\": \"h\"}",
		   "Parameter 'channels[0].addr.host' is unexpected");
	qapi_fails("{\"transport\": \"exec\", \"args\": \"ls\"}",
		   "Invalid parameter type for 'channels[0].addr.args', "
		   "expected: array");
	qapi_fails("{\"transport\": \"exec\", \"args\": [\"ls\", 1]}",
		   "Invalid parameter type for 'channels[0].addr.args[1]', "
		   "expected: string");
	qapi_fails("{\"transport\": \"file\", \"filename\": \"/f\"}",
		   "Parameter 'channels[0].addr.offset' is missing");
	qapi_fails("{\"transport\": \"file\", \"filename\": \"/f\", "
		   "\"offset\": \"0\"}",
		   "Parameter 'channels[0].addr.offset' expects uint64");
	qapi_fails("{\"transport\": \"rdma\", \"host\": \"h\", "
		   "\"port\": \"1\", \"path\": \"/x\"}",
		   "Parameter 'channels[0].addr.path' is unexpected");
}

/* --- formatting -------------------------------------------------------- */

static void assert_same_addr(const struct mig_addr *x, const struct mig_addr *y)
{
#define SAME_STR(f)                                                            \
	do {                                                                   \
		if (x->f || y->f)                                              \
			assert_string_equal(x->f ? x->f : "(null)",            \
					    y->f ? y->f : "(null)");           \
	} while (0)
	assert_int_equal(x->kind, y->kind);
	SAME_STR(host);
	SAME_STR(port);
	SAME_STR(path);
	SAME_STR(cid);
	SAME_STR(fdname);
	for (int i = 0; x->argv && x->argv[i]; i++)
		assert_string_equal(x->argv[i], y->argv[i]);
	assert_int_equal(x->offset, y->offset);
	assert_int_equal(x->has_to, y->has_to);
	assert_int_equal(x->to, y->to);
	assert_int_equal(x->has_ipv4 * 2 + x->ipv4, y->has_ipv4 * 2 + y->ipv4);
	assert_int_equal(x->has_ipv6 * 2 + x->ipv6, y->has_ipv6 * 2 + y->ipv6);
	assert_int_equal(x->has_keep_alive * 2 + x->keep_alive,
			 y->has_keep_alive * 2 + y->keep_alive);
	assert_int_equal(x->has_mptcp * 2 + x->mptcp,
			 y->has_mptcp * 2 + y->mptcp);
#undef SAME_STR
}

static void round_trip(const char *uri, const char *formatted)
{
	struct mig_addr a, b;
	char buf[256];

	parse_ok(uri, &a);
	mig_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, formatted);
	parse_ok(buf, &b);
	assert_same_addr(&a, &b);
	mig_addr_clear(&a);
	mig_addr_clear(&b);
}

static void test_format(void **state)
{
	struct mig_addr a;
	char small[8];

	round_trip("tcp:127.0.0.1:4444", "tcp:127.0.0.1:4444");
	round_trip("tcp:[::1]:4444", "tcp:[::1]:4444");
	round_trip("tcp::0", "tcp::0");
	round_trip("tcp:h:1,keep-alive,ipv6=off,to=9,mptcp",
		   "tcp:h:1,to=9,ipv6=off,keep-alive=on,mptcp=on");
	round_trip("unix:/tmp/x", "unix:/tmp/x");
	round_trip("vsock:3:1234", "vsock:3:1234");
	round_trip("fd:name", "fd:name");
	round_trip("exec:cat > /dev/null", "exec:cat > /dev/null");
	round_trip("rdma:[fe80::1]:4444", "rdma:[fe80::1]:4444");
	round_trip("file:/tmp/f", "file:/tmp/f");
	round_trip("file:/tmp/f,offset=0x10", "file:/tmp/f,offset=16");

	/* QAPI-only details */
	qapi_ok("{\"transport\": \"socket\", \"type\": \"unix\", "
		"\"path\": \"n\", \"abstract\": true}",
		&a);
	mig_addr_format(&a, small, sizeof(small));
	assert_string_equal(small, "unix:@n");
	mig_addr_clear(&a);
	qapi_ok("{\"transport\": \"exec\", \"args\": [\"nc\", \"-l\"]}", &a);
	mig_addr_format(&a, small, sizeof(small));
	assert_string_equal(small, "exec:nc"); /* truncated, terminated */
	mig_addr_clear(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_tcp),
		cmocka_unit_test(test_uri_tcp_options),
		cmocka_unit_test(test_uri_tcp_errors),
		cmocka_unit_test(test_uri_other_forms),
		cmocka_unit_test(test_uri_file),
		cmocka_unit_test(test_uri_errors),
		cmocka_unit_test(test_qapi_inet),
		cmocka_unit_test(test_qapi_other),
		cmocka_unit_test(test_qapi_errors),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
