/* migctl_watch.c — the `migctl watch` loop: query-migrate every interval,
 * a live line on a terminal or one line per change elsewhere, then the
 * summary. Single-threaded (see migctl_watch.h). */
#include "contrib/migctl_watch.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "contrib/migctl_progress.h"
#include "contrib/qmp_client.h"

#define CLEAR_LINE "\r\033[K"

/* What makes a new line worth printing when not on a terminal. */
struct change_key {
	char status[32];
	uint64_t iteration;
	int percent;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0)
		;
}

static int terminal_width(FILE *out)
{
	struct winsize ws;

	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Runs query-migrate. 0 with *p filled, or migctl's exit status. */
static int poll_once(struct qmpc *c, const struct mctl_watch_opts *o,
		     struct mctl_progress *p)
{
	struct mig_error *err = NULL;
	json_t *reply = NULL;
	char *what;
	int ret;

	ret = qmpc_execute(c, "query-migrate", NULL, &reply, NULL, &err);
	if (ret < 0 || json_object_get(reply, "error")) {
		if (o->live)
			fputs(CLEAR_LINE, o->out);
		fflush(o->out);
	}
	if (ret < 0) {
		fprintf(stderr, "migctl: %s\n", err->desc);
		mig_error_free(err);
		return 2;
	}
	what = qmpc_error_string(reply);
	if (what) {
		fprintf(stderr, "error: %s\n", what);
		free(what);
		json_decref(reply);
		return 1;
	}
	mctl_progress_parse(json_object_get(reply, "return"), p);
	json_decref(reply);
	return 0;
}

static void show_running(const struct mctl_progress *p,
			 const struct mctl_watch_opts *o,
			 struct change_key *last)
{
	struct change_key key;
	char line[512];

	if (o->live) {
		mctl_progress_line(p, terminal_width(o->out), true, line,
				   sizeof(line));
		fprintf(o->out, CLEAR_LINE "%s", line);
		fflush(o->out);
		return;
	}
	memcpy(key.status, p->status, sizeof(key.status));
	key.iteration = p->dirty_sync_count;
	key.percent = (int)floor(mctl_progress_percent(p));
	if (!strcmp(key.status, last->status) &&
	    key.iteration == last->iteration && key.percent == last->percent)
		return;
	*last = key;
	mctl_progress_line(p, 0, false, line, sizeof(line));
	fprintf(o->out, "%s\n", line);
	fflush(o->out);
}

static int show_final(const struct mctl_progress *p,
		      const struct mctl_watch_opts *o)
{
	char *summary = mctl_progress_summary(p);

	if (o->live)
		fputs(CLEAR_LINE, o->out);
	fputs(summary ? summary : "Migration ended\n", o->out);
	fflush(o->out);
	free(summary);
	return mctl_progress_phase(p) == MCTL_PHASE_COMPLETED ? 0 : 1;
}

/* Handles "no migration yet" (redrawn on a terminal, where an event may
 * have overwritten it; printed once elsewhere). Returns 0 to keep waiting,
 * else the exit status. */
static int show_waiting(const struct mctl_watch_opts *o, int64_t start,
			bool *shown)
{
	if (o->live)
		fputs(CLEAR_LINE "waiting for a migration to start...", o->out);
	else if (!*shown)
		fputs("waiting for a migration to start\n", o->out);
	fflush(o->out);
	*shown = true;
	if (o->start_timeout_ms < 0 || mono_ms() - start < o->start_timeout_ms)
		return 0;
	if (o->live)
		fputs(CLEAR_LINE, o->out);
	fflush(o->out);
	fprintf(stderr, "migctl: no migration started within %g s\n",
		o->start_timeout_ms / 1000.0);
	return 1;
}

int mctl_watch(struct qmpc *c, const struct mctl_watch_opts *o)
{
	struct change_key last = {.percent = -1};
	int64_t start = mono_ms();
	struct mctl_progress p;
	bool waiting_shown = false;
	int status;

	for (;;) {
		status = poll_once(c, o, &p);
		if (status)
			return status;
		switch (mctl_progress_phase(&p)) {
		case MCTL_PHASE_NONE:
			status = show_waiting(o, start, &waiting_shown);
			break;
		case MCTL_PHASE_RUNNING:
			show_running(&p, o, &last);
			break;
		default:
			return show_final(&p, o);
		}
		if (status)
			return status;
		sleep_ms(o->interval_ms);
	}
}
