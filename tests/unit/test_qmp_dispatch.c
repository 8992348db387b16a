/* test_qmp_dispatch.c — control/qmp.c dispatch without sockets: a server
 * with the core commands plus a small fake table, driven through
 * qmp_server_handle_text() (whose in-process monitor starts negotiated).
 * Checks request validation, ids, replies, errors and registration against
 * QEMU's qmp_dispatch() behaviour. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/migd.h"
#include "control/qmp.h"
#include "util/evloop.h"

struct fixture {
	struct migd md;
	struct qmp_server *srv;
	int calls; /* fake-echo invocations */
};

/* md is the first member, so handlers find the fixture from md. */
static struct fixture *fx_of(struct migd *md)
{
	return (struct fixture *)md;
}

static json_t *fake_echo(struct migd *md, struct qmp_monitor *mon, json_t *args,
			 struct mig_error **errp)
{
	fx_of(md)->calls++;
	return json_deep_copy(args);
}

static json_t *fake_fail(struct migd *md, struct qmp_monitor *mon, json_t *args,
			 struct mig_error **errp)
{
	mig_error_set(errp, MIG_ERR_DEVICE_NOT_FOUND, "Device '%s' not found",
		      "dev0");
	return NULL;
}

/* A handler that returns nothing and sets no error: the reply is {}. */
static json_t *fake_null(struct migd *md, struct qmp_monitor *mon, json_t *args,
			 struct mig_error **errp)
{
	return NULL;
}

static json_t *fake_fds(struct migd *md, struct qmp_monitor *mon, json_t *args,
			struct mig_error **errp)
{
	return json_pack("{s:i,s:i}", "take", qmp_monitor_take_fd(mon), "named",
			 qmp_monitor_dup_named_fd(mon, "nope"));
}

static json_t *fake_scalar(struct migd *md, struct qmp_monitor *mon,
			   json_t *args, struct mig_error **errp)
{
	return json_string("s\xc3\xa9"); /* "sé" */
}

/* Emits an event from inside a command: the in-process monitor is not a
 * broadcast target, so only the reply comes back. */
static json_t *fake_event(struct migd *md, struct qmp_monitor *mon,
			  json_t *args, struct mig_error **errp)
{
	qmp_event(md->qmp, "STOP", NULL);
	qmp_event(md->qmp, "MIGRATION", json_pack("{s:s}", "status", "setup"));
	return json_object();
}

static const struct qmp_command fake_commands[] = {
	{"fake-echo", fake_echo, 0},
	{"fake-fail", fake_fail, 0},
	{"fake-null", fake_null, 0},
	{"fake-fds", fake_fds, 0},
	{"fake-scalar", fake_scalar, 0},
	{"fake-event", fake_event, 0},
	{"fake-oob", fake_null, QMP_CMD_ALLOW_OOB},
};
#define N_FAKE (sizeof(fake_commands) / sizeof(fake_commands[0]))

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->md.loop = ev_loop_new();
	assert_non_null(fx->md.loop);
	fx->srv = qmp_server_new(&fx->md, fx->md.loop);
	assert_non_null(fx->srv);
	fx->md.qmp = fx->srv;
	qmp_core_register(fx->srv);
	assert_int_equal(qmp_register(fx->srv, fake_commands, N_FAKE), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	qmp_server_free(fx->srv);
	ev_loop_free(fx->md.loop);
	free(fx);
	return 0;
}

struct replies {
	json_t *v[16];
	size_t n;
};

static void replies_free(struct replies *r)
{
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->v[i]);
	r->n = 0;
}

/* Runs text and splits the output into CRLF-terminated JSON lines. */
static void run(struct fixture *fx, const char *text, struct replies *r)
{
	char *out = qmp_server_handle_text(fx->srv, text, strlen(text));
	char *line = out, *crlf;

	r->n = 0;
	if (!out)
		return;
	while (*line) {
		json_error_t jerr;

		crlf = strstr(line, "\r\n");
		assert_non_null(crlf); /* every message ends with CRLF */
		assert_null(memchr(line, '\n', (size_t)(crlf - line)));
		assert_true(r->n < 16);
		r->v[r->n] = json_loadb(line, (size_t)(crlf - line), 0, &jerr);
		assert_non_null(r->v[r->n]);
		r->n++;
		line = crlf + 2;
	}
	free(out);
}

/* One request, one reply (returned; the caller frees it). */
static json_t *run1(struct fixture *fx, const char *text)
{
	struct replies r;

	run(fx, text, &r);
	assert_int_equal(r.n, 1);
	return r.v[0];
}

static void assert_error(json_t *rsp, const char *cls, const char *desc)
{
	json_t *err = json_object_get(rsp, "error");

	assert_non_null(err);
	assert_null(json_object_get(rsp, "return"));
	assert_int_equal(json_object_size(err), 2);
	assert_string_equal(json_string_value(json_object_get(err, "class")),
			    cls);
	assert_string_equal(json_string_value(json_object_get(err, "desc")),
			    desc);
}

static void assert_generic(json_t *rsp, const char *desc)
{
	assert_error(rsp, "GenericError", desc);
}

static void assert_return_json(json_t *rsp, const char *expected)
{
	json_t *want = json_loads(expected, JSON_DECODE_ANY, NULL);

	assert_non_null(want);
	assert_null(json_object_get(rsp, "error"));
	assert_true(json_equal(json_object_get(rsp, "return"), want));
	json_decref(want);
}

/* ---- core commands ----------------------------------------------------- */

static void test_query_version(void **state)
{
	json_t *rsp = run1(*state, "{\"execute\": \"query-version\"}");

	assert_int_equal(json_object_size(rsp), 1);
	assert_return_json(
		rsp, "{\"qemu\": {\"micro\": 0, \"minor\": 0,"
		     " \"major\": 9}, \"package\": \"migd " MIGD_VERSION "\"}");
	json_decref(rsp);
	rsp = run1(*state, "{\"execute\": \"query-version\","
			   " \"arguments\": {\"bogus\": 1}, \"id\": 3}");
	assert_generic(rsp, "Parameter 'bogus' is unexpected");
	assert_int_equal(json_integer_value(json_object_get(rsp, "id")), 3);
	json_decref(rsp);
}

static void test_query_commands(void **state)
{
	static const char *const want[] = {
		"qmp_capabilities", "query-version", "query-commands",
		"fake-echo",	    "fake-fail",     "fake-null",
		"fake-fds",	    "fake-scalar",   "fake-event",
		"fake-oob",
	};
	json_t *rsp = run1(*state, "{\"execute\": \"query-commands\"}");
	json_t *list = json_object_get(rsp, "return");

	assert_true(json_is_array(list));
	assert_int_equal(json_array_size(list), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *e = json_array_get(list, i);

		assert_int_equal(json_object_size(e), 1);
		assert_string_equal(
			json_string_value(json_object_get(e, "name")), want[i]);
	}
	json_decref(rsp);
}

/* The in-process monitor has finished negotiation. */
static void test_capabilities_again(void **state)
{
	json_t *rsp = run1(*state, "{\"execute\": \"qmp_capabilities\","
				   " \"id\": \"c\"}");

	assert_error(rsp, "CommandNotFound",
		     "Capabilities negotiation is already complete, command "
		     "ignored");
	assert_string_equal(json_string_value(json_object_get(rsp, "id")), "c");
	json_decref(rsp);
	rsp = run1(*state, "{\"execute\": \"qmp_capabilities\","
			   " \"arguments\": {\"enable\": [\"oob\"]}}");
	assert_error(rsp, "CommandNotFound",
		     "Capabilities negotiation is already complete, command "
		     "ignored");
	json_decref(rsp);
}

/* QEMU's marshaller reads (and checks) the arguments before the handler
 * runs, so bad arguments win over "already complete". */
static void test_capabilities_again_bad_args(void **state)
{
	json_t *rsp = run1(*state, "{\"execute\": \"qmp_capabilities\","
				   " \"arguments\": {\"bogus\": 1}}");

	assert_generic(rsp, "Parameter 'bogus' is unexpected");
	json_decref(rsp);
	rsp = run1(*state, "{\"execute\": \"qmp_capabilities\","
			   " \"arguments\": {\"enable\": [\"nope\"]}}");
	assert_generic(rsp, "Parameter 'null' does not accept value 'nope'");
	json_decref(rsp);
}

/* ---- registration ------------------------------------------------------ */

static void count_cmd(const struct qmp_command *cmd, void *opaque)
{
	(*(size_t *)opaque)++;
}

static void test_register(void **state)
{
	struct fixture *fx = *state;
	static const struct qmp_command dup[] = {
		{"fake-echo", fake_null, 0},
	};
	static const struct qmp_command more[] = {
		{"fake-more", fake_null, 0},
	};
	size_t n = 0;

	assert_int_equal(qmp_register(fx->srv, dup, 1), -EEXIST);
	assert_ptr_equal(qmp_find_command(fx->srv, "fake-echo"),
			 &fake_commands[0]);
	assert_null(qmp_find_command(fx->srv, "no-such-cmd"));
	assert_int_equal(qmp_register(fx->srv, more, 1), 0);
	assert_ptr_equal(qmp_find_command(fx->srv, "fake-more"), &more[0]);
	qmp_foreach_command(fx->srv, count_cmd, &n);
	assert_int_equal(n, 3 + N_FAKE + 1);
	/* many registrations grow the table */
	for (int i = 0; i < 200; i++) {
		static struct qmp_command many[200];
		static char names[200][24];

		snprintf(names[i], sizeof(names[i]), "many-%d", i);
		many[i] = (struct qmp_command){names[i], fake_null, 0};
		assert_int_equal(qmp_register(fx->srv, &many[i], 1), 0);
	}
	n = 0;
	qmp_foreach_command(fx->srv, count_cmd, &n);
	assert_int_equal(n, 3 + N_FAKE + 1 + 200);
	assert_non_null(qmp_find_command(fx->srv, "many-199"));
}

/* ---- request validation (QEMU's qmp_dispatch_check_obj) --------------- */

struct bad_request {
	const char *in;
	const char *cls;
	const char *desc;
};

static void test_bad_requests(void **state)
{
	static const struct bad_request cases[] = {
		{"[]", "GenericError", "QMP input must be a JSON object"},
		{"[{\"execute\": \"query-version\"}]", "GenericError",
		 "QMP input must be a JSON object"},
		{"1 ", "GenericError", "QMP input must be a JSON object"},
		{"\"x\"", "GenericError", "QMP input must be a JSON object"},
		{"null ", "GenericError", "QMP input must be a JSON object"},
		{"{}", "GenericError", "QMP input lacks member 'execute'"},
		{"{\"arguments\": {}}", "GenericError",
		 "QMP input lacks member 'execute'"},
		{"{\"execute\": \"query-version\", \"foo\": 1}", "GenericError",
		 "QMP input member 'foo' is unexpected"},
		{"{\"execute\": 1}", "GenericError",
		 "QMP input member 'execute' must be a string"},
		{"{\"execute\": null}", "GenericError",
		 "QMP input member 'execute' must be a string"},
		{"{\"execute\": \"query-version\", \"arguments\": []}",
		 "GenericError",
		 "QMP input member 'arguments' must be an object"},
		{"{\"execute\": \"query-version\", \"arguments\": null}",
		 "GenericError",
		 "QMP input member 'arguments' must be an object"},
		/* oob is not enabled on this monitor */
		{"{\"exec-oob\": \"fake-oob\"}", "GenericError",
		 "QMP input member 'exec-oob' is unexpected"},
		{"{\"execute\": \"no-such-cmd\"}", "CommandNotFound",
		 "The command no-such-cmd has not been found"},
		/* the command is looked up before its arguments are read */
		{"{\"execute\": \"no-such-cmd\", \"arguments\": {\"x\": 1}}",
		 "CommandNotFound",
		 "The command no-such-cmd has not been found"},
		{"{\"execute\": \"\"}", "CommandNotFound",
		 "The command  has not been found"},
		{"{\"execute\": \"fake-fail\"}", "DeviceNotFound",
		 "Device 'dev0' not found"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *rsp = run1(*state, cases[i].in);

		assert_error(rsp, cases[i].cls, cases[i].desc);
		assert_null(json_object_get(rsp, "id"));
		json_decref(rsp);
	}
}

/* The id comes back verbatim, on success and on every kind of error that
 * happens after the request was seen to be an object. */
static void test_id_echo(void **state)
{
	static const char *const ids[] = {
		"0",
		"-7",
		"12345678901234",
		"\"abc\"",
		"\"\"",
		"{\"a\": [1, {}]}",
		"[1, \"two\", null]",
		"null",
		"true",
		"1.5",
	};
	static const char *const fmts[] = {
		"{\"execute\": \"fake-echo\", \"id\": %s}",
		"{\"id\": %s, \"execute\": \"no-such-cmd\"}",
		"{\"id\": %s, \"execute\": \"fake-fail\"}",
		"{\"id\": %s}",
		"{\"id\": %s, \"execute\": 5}",
		"{\"id\": %s, \"execute\": \"fake-echo\", \"x\": 1}",
	};
	char req[256];

	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			json_t *want =
				json_loads(ids[i], JSON_DECODE_ANY, NULL);
			json_t *rsp;

			snprintf(req, sizeof(req), fmts[f], ids[i]);
			rsp = run1(*state, req);
			assert_true(
				json_equal(json_object_get(rsp, "id"), want));
			assert_int_equal(json_object_size(rsp), 2);
			json_decref(want);
			json_decref(rsp);
		}
	}
}

static void test_arguments(void **state)
{
	struct fixture *fx = *state;
	json_t *rsp;

	rsp = run1(fx, "{\"execute\": \"fake-echo\"}");
	assert_return_json(rsp, "{}");
	json_decref(rsp);
	rsp = run1(fx, "{'execute': 'fake-echo', 'arguments': {'a': [1, 'x',"
		       " {'b': null}], 'c': 1.5, 'd': \"q'\"}}");
	assert_return_json(rsp, "{\"a\": [1, \"x\", {\"b\": null}], \"c\": 1.5,"
				" \"d\": \"q'\"}");
	json_decref(rsp);
	assert_int_equal(fx->calls, 2);
	rsp = run1(fx, "{\"execute\": \"fake-null\"}");
	assert_return_json(rsp, "{}");
	json_decref(rsp);
	rsp = run1(fx, "{\"execute\": \"fake-scalar\", \"id\": 1}");
	assert_return_json(rsp, "\"s\xc3\xa9\"");
	json_decref(rsp);
}

/* Output is ASCII: non-ASCII characters are \u escapes with upper-case
 * hex digits, as QEMU writes them. */
static void test_ascii_output(void **state)
{
	char *out;
	const char *req = "{\"execute\": \"fake-scalar\","
			  " \"id\": \"\xe2\x82\xac\"}";

	out = qmp_server_handle_text(((struct fixture *)*state)->srv, req,
				     strlen(req));
	assert_non_null(out);
	for (const char *p = out; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	assert_non_null(strstr(out, "\"s\\u00E9\""));
	assert_non_null(strstr(out, "\"id\": \"\\u20AC\""));
	free(out);
}

static void test_fd_helpers(void **state)
{
	json_t *rsp = run1(*state, "{\"execute\": \"fake-fds\"}");

	assert_return_json(rsp, "{\"take\": -1, \"named\": -2}");
	json_decref(rsp);
}

static void test_events_not_to_local(void **state)
{
	struct fixture *fx = *state;
	json_t *rsp;

	qmp_event(fx->srv, "RESUME", NULL);
	rsp = run1(fx, "{\"execute\": \"fake-event\", \"id\": 9}");
	assert_return_json(rsp, "{}");
	json_decref(rsp);
}

/* ---- framing and parse errors ------------------------------------------ */

static void test_parse_errors(void **state)
{
	struct fixture *fx = *state;
	struct replies r;

	/* a parse error has no id; the next request is served */
	run(fx,
	    "{\"execute\": \"fake-echo\", \"id\": 1, @} "
	    "{\"execute\": \"fake-null\", \"id\": 2}",
	    &r);
	assert_true(r.n >= 2);
	for (size_t i = 0; i + 1 < r.n; i++) {
		assert_non_null(json_object_get(r.v[i], "error"));
		assert_null(json_object_get(r.v[i], "id"));
		assert_string_equal(
			json_string_value(json_object_get(
				json_object_get(r.v[i], "error"), "class")),
			"GenericError");
	}
	assert_int_equal(
		json_integer_value(json_object_get(r.v[r.n - 1], "id")), 2);
	assert_return_json(r.v[r.n - 1], "{}");
	replies_free(&r);

	run(fx, "{\"execute\": ", &r);
	assert_int_equal(r.n, 1);
	assert_generic(r.v[0], "JSON parse error, premature EOI");
	replies_free(&r);

	run(fx, "{\"execute\": \"fake-null\", \"execute\": \"fake-echo\"}", &r);
	assert_int_equal(r.n, 1);
	assert_generic(r.v[0], "JSON parse error, duplicate key");
	replies_free(&r);

	run(fx, "{\"execute\": \"fake-\\u0000\"}", &r);
	assert_int_equal(r.n, 1);
	assert_generic(r.v[0], "JSON parse error, \\u0000 is not supported");
	replies_free(&r);

	run(fx, "{\"execute\": \"fake-\xc3\x28\"}", &r);
	assert_int_equal(r.n, 1);
	assert_generic(r.v[0], "JSON parse error, invalid UTF-8 sequence in"
			       " string");
	replies_free(&r);

	/* jansson has no infinity: refused with a message (found by fuzzing;
	 * the stream used to emit neither a value nor an error) */
	run(fx, "1e400 [1e400] {\"execute\": \"fake-null\", \"id\": -1e999}",
	    &r);
	assert_int_equal(r.n, 3);
	for (size_t i = 0; i < r.n; i++)
		assert_generic(r.v[i], "JSON parse error, number out of range");
	replies_free(&r);

	run(fx, "", &r);
	assert_int_equal(r.n, 0);
	run(fx, " \r\n\t ", &r);
	assert_int_equal(r.n, 0);
}

static void test_several_requests(void **state)
{
	struct fixture *fx = *state;
	struct replies r;

	run(fx,
	    "{\"execute\": \"fake-null\", \"id\": 1}"
	    "{\"execute\": \"no-such-cmd\", \"id\": 2}\r\n"
	    "[] {'execute': 'query-version', 'id': 3}",
	    &r);
	assert_int_equal(r.n, 4);
	assert_int_equal(json_integer_value(json_object_get(r.v[0], "id")), 1);
	assert_error(r.v[1], "CommandNotFound",
		     "The command no-such-cmd has not been found");
	assert_int_equal(json_integer_value(json_object_get(r.v[1], "id")), 2);
	assert_generic(r.v[2], "QMP input must be a JSON object");
	assert_int_equal(json_integer_value(json_object_get(r.v[3], "id")), 3);
	replies_free(&r);
}

/* A long run of requests on one monitor: nothing accumulates. */
static void test_many_requests(void **state)
{
	struct fixture *fx = *state;

	for (int i = 0; i < 2000; i++) {
		char req[96];
		json_t *rsp;

		snprintf(req, sizeof(req),
			 "{\"execute\": \"fake-echo\", \"arguments\": {\"i\":"
			 " %d}, \"id\": %d}",
			 i, i);
		rsp = run1(fx, req);
		assert_int_equal(json_integer_value(json_object_get(
					 json_object_get(rsp, "return"), "i")),
				 i);
		json_decref(rsp);
	}
	assert_int_equal(fx->calls, 2000);
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_query_version),
		FX_TEST(test_query_commands),
		FX_TEST(test_capabilities_again),
		FX_TEST(test_capabilities_again_bad_args),
		FX_TEST(test_register),
		FX_TEST(test_bad_requests),
		FX_TEST(test_id_echo),
		FX_TEST(test_arguments),
		FX_TEST(test_ascii_output),
		FX_TEST(test_fd_helpers),
		FX_TEST(test_events_not_to_local),
		FX_TEST(test_parse_errors),
		FX_TEST(test_several_requests),
		FX_TEST(test_many_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
