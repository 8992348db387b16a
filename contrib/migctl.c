/* migctl.c — the migctl command: options, one QMP command per run (or the
 * `watch` loop), output and exit status. Owns only the command line; the
 * connection is qmp_client.c, argument typing migctl_args.c, progress
 * display migctl_watch.c. Single-threaded.
 * Exit status: 0 success, 1 the command (or migration) failed, 2 usage or
 * connection problem. */
#include <getopt.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contrib/migctl_args.h"
#include "contrib/migctl_watch.h"
#include "contrib/qmp_client.h"
#include "control/migd.h"

enum {
	EXIT_CMD_FAILED = 1,
	EXIT_USAGE = 2, /* also: cannot connect, protocol problems */
};

#define DEFAULT_TIMEOUT_MS 10000
#define WATCH_INTERVAL_MS 100

struct migctl_opts {
	const char *socket;
	int timeout_ms;	   /* -t, or -1 when not given */
	bool raw;	   /* --raw: print the reply line as received */
	bool print_events; /* -e */
	const char *cmd;
	int argc; /* words after cmd */
	char **argv;
};

/* What the event callback needs. */
struct event_printer {
	bool enabled;
	bool live_line; /* watch is redrawing a line on a terminal */
};

static const char *const usage_text[] = {
	"Usage: migctl -s SOCKET [OPTIONS] COMMAND [JSON | KEY=VALUE...]",
	"       migctl -s SOCKET [OPTIONS] watch",
	"Runs one QMP command on a migd (or QEMU) monitor and prints its",
	"\"return\" value as JSON.",
	"",
	"Options:",
	"  -s, --socket ADDR   monitor: PATH, unix:PATH or tcp:HOST:PORT",
	"                      (default: $MIGCTL_SOCKET)",
	"  -t, --timeout SEC   wait at most SEC for each reply (default 10);",
	"                      watch: give up if no migration starts in SEC",
	"  -e, --events        print events received while waiting",
	"      --raw           print the whole reply line as received",
	"  -h, --help          show this help",
	"      --version       show the version",
	"",
	"Arguments: one JSON object, or KEY=VALUE words. A VALUE that parses",
	"as JSON (number, true, false, null, \"string\", [array], {object})",
	"is sent as that, anything else as a string. Dotted keys nest:",
	"a.b=1 sends {\"a\": {\"b\": 1}}.",
	"",
	"watch: polls query-migrate every 100 ms and shows progress until",
	"the migration completes (exit 0) or fails or is cancelled (exit 1).",
	"",
	"Exit status: 0 success, 1 the command failed, 2 usage or connection",
	"error.",
	"",
	"Examples:",
	"  migctl -s /tmp/qmp.sock query-status",
	"  migctl -s /tmp/qmp.sock migrate-set-parameters multifd-channels=4",
	"  migctl -s tcp:127.0.0.1:4444 migrate '{\"uri\": \"tcp:host:4000\"}'",
};

static void usage(FILE *f)
{
	for (size_t i = 0; i < sizeof(usage_text) / sizeof(usage_text[0]); i++)
		fprintf(f, "%s\n", usage_text[i]);
}

/* Seconds (fractions allowed) to milliseconds; -1 when invalid. */
static int parse_timeout(const char *text)
{
	char *end;
	double sec;

	errno = 0;
	sec = strtod(text, &end);
	if (errno || end == text || *end || !(sec > 0) || sec > 86400.0 * 7)
		return -1;
	return (int)ceil(sec * 1000.0);
}

enum { OPT_RAW = 256, OPT_VERSION };

static const struct option long_opts[] = {
	{"socket", required_argument, NULL, 's'},
	{"timeout", required_argument, NULL, 't'},
	{"events", no_argument, NULL, 'e'},
	{"raw", no_argument, NULL, OPT_RAW},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

/* Handles one option. Returns -1 to go on, else an exit status. */
static int handle_option(int opt, struct migctl_opts *o)
{
	switch (opt) {
	case 's':
		o->socket = optarg;
		return -1;
	case 't':
		o->timeout_ms = parse_timeout(optarg);
		if (o->timeout_ms > 0)
			return -1;
		fprintf(stderr,
			"migctl: invalid timeout '%s': expected "
			"seconds > 0\n",
			optarg);
		return EXIT_USAGE;
	case 'e':
		o->print_events = true;
		return -1;
	case OPT_RAW:
		o->raw = true;
		return -1;
	case 'h':
		usage(stdout);
		return 0;
	case OPT_VERSION:
		printf("migctl %s\n", MIGD_VERSION);
		return 0;
	default:
		fputs("Try 'migctl --help'.\n", stderr);
		return EXIT_USAGE;
	}
}

/* Returns -1 when the command should run, else the exit status. */
static int parse_options(int argc, char **argv, struct migctl_opts *o)
{
	int opt, status;

	o->socket = getenv("MIGCTL_SOCKET");
	o->timeout_ms = -1;
	/* '+': stop at the command, so its KEY=VALUE words stay untouched */
	while ((opt = getopt_long(argc, argv, "+s:t:eh", long_opts, NULL)) !=
	       -1) {
		status = handle_option(opt, o);
		if (status >= 0)
			return status;
	}
	if (optind >= argc) {
		fputs("migctl: no command given. Try 'migctl --help'.\n",
		      stderr);
		return EXIT_USAGE;
	}
	if (!o->socket || !*o->socket) {
		fputs("migctl: no monitor socket given (-s SOCKET)\n", stderr);
		return EXIT_USAGE;
	}
	o->cmd = argv[optind];
	o->argc = argc - optind - 1;
	o->argv = argv + optind + 1;
	return -1;
}

static void print_event(void *opaque, json_t *event, const char *line)
{
	struct event_printer *ep = opaque;

	if (!ep->enabled)
		return;
	printf("%s%s\n", ep->live_line ? "\r\033[K" : "", line);
	fflush(stdout);
}

/* Connects and negotiates. NULL (message printed) on failure. */
static struct qmpc *open_monitor(const struct migctl_opts *o,
				 struct event_printer *ep)
{
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	struct mig_error *err = NULL;
	struct qmpc *c;

	c = qmpc_connect(o->socket, timeout, &err);
	if (c) {
		qmpc_set_event_fn(c, print_event, ep);
		if (qmpc_handshake(c, &err) == 0)
			return c;
	}
	fprintf(stderr, "migctl: %s\n", err->desc);
	mig_error_free(err);
	qmpc_close(c);
	return NULL;
}

/* Prints a reply: the line with --raw, else "return" or the error. */
static int print_reply(const struct migctl_opts *o, json_t *reply,
		       const char *line)
{
	char *text = qmpc_error_string(reply);
	int status = text ? EXIT_CMD_FAILED : 0;

	if (o->raw)
		printf("%s\n", line);
	else if (text)
		fprintf(stderr, "error: %s\n", text);
	free(text);
	if (o->raw || status)
		return status;
	text = json_dumps(json_object_get(reply, "return"),
			  JSON_INDENT(2) | JSON_ENCODE_ANY |
				  JSON_PRESERVE_ORDER);
	if (!text) {
		fputs("migctl: reply has no \"return\" value\n", stderr);
		return EXIT_USAGE;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}

static int run_command(const struct migctl_opts *o, struct qmpc *c,
		       json_t *args)
{
	struct mig_error *err = NULL;
	json_t *reply = NULL;
	char *line = NULL;
	int ret, status;

	ret = qmpc_execute(c, o->cmd, args, &reply, &line, &err);
	if (ret == -ECONNRESET && !strcmp(o->cmd, "quit")) {
		/* the monitor may go away before the reply is read */
		mig_error_free(err);
		printf(o->raw ? "{\"return\": {}}\n" : "{}\n");
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "migctl: %s\n", err->desc);
		mig_error_free(err);
		return EXIT_USAGE;
	}
	status = print_reply(o, reply, line);
	json_decref(reply);
	free(line);
	return status;
}

static int run_watch(const struct migctl_opts *o, struct qmpc *c,
		     struct event_printer *ep)
{
	struct mctl_watch_opts wo = {
		.start_timeout_ms = o->timeout_ms,
		.interval_ms = WATCH_INTERVAL_MS,
		.live = isatty(STDOUT_FILENO),
		.out = stdout,
	};

	ep->live_line = wo.live;
	return mctl_watch(c, &wo);
}

int main(int argc, char **argv)
{
	struct migctl_opts o = {0};
	struct event_printer ep = {0};
	struct mig_error *err = NULL;
	json_t *args = NULL;
	struct qmpc *c;
	int status;

	status = parse_options(argc, argv, &o);
	if (status >= 0)
		return status;
	ep.enabled = o.print_events;
	if (!strcmp(o.cmd, "watch") && o.argc) {
		fputs("migctl: watch takes no arguments\n", stderr);
		return EXIT_USAGE;
	}
	if (strcmp(o.cmd, "watch")) {
		args = mctl_args_parse(o.argc, o.argv, &err);
		if (!args) {
			fprintf(stderr, "migctl: %s\n", err->desc);
			mig_error_free(err);
			return EXIT_USAGE;
		}
	}
	c = open_monitor(&o, &ep);
	if (!c) {
		json_decref(args);
		return EXIT_USAGE;
	}
	if (args)
		status = run_command(&o, c,
				     json_object_size(args) ? args : NULL);
	else
		status = run_watch(&o, c, &ep);
	qmpc_close(c);
	json_decref(args);
	return status;
}
