/* migd.c — life of the daemon context (see migd.h): the quit request that
 * lets pending QMP replies and events go out before the loop ends.
 * Control thread only. */
#include "control/migd.h"

#include "util/evloop.h"

static void stop_loop(struct ev_loop *loop, void *opaque)
{
	ev_loop_stop(loop);
}

void migd_request_quit(struct migd *md)
{
	if (md->quit_requested)
		return;
	md->quit_requested = true;
	/* Stop on the next turn of the loop rather than now: replies and
	 * events queued by the current callback are written first (and
	 * qmp_server_free() flushes what a slow client left behind). */
	if (ev_loop_post(md->loop, stop_loop, md) < 0)
		ev_loop_stop(md->loop);
}
