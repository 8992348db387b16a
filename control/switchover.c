/* switchover.c — return path, switchover-ack and the switchover cost model
 * (see switchover.h). Everything here runs on the migration thread, which
 * also owns the main channel: return-path messages are read between its
 * writes, with poll() (and the TLS session's buffers) telling whether any
 * arrived; during postcopy the return-path thread reads instead
 * (postcopy_src.c). */
#include "control/switchover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/migd.h"
#include "multifd/byteorder.h"
#include "multifd/qemufile.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"
#include "socket/tls.h"
#include "util/log.h"

#define RP_MAX_LEN 512 /* QEMU's return-path buffer */
#define PING_VALUE 1

struct swo_history {
	double residual_ms; /* stop + destination finish, running estimate */
	unsigned n;
};

struct swo {
	struct swo_history *hist;
	bool return_path, need_ack;
	bool acked, shut;
	double ping_sent_ms, rtt_ms; /* rtt_ms < 0: no PONG yet */
	double sync_ms;		     /* running estimate */
	unsigned nsync;
};

/* QEMU's rp_cmd_args lengths (-1: variable). */
static const int rp_len[SWO_RP__MAX] = {
	[SWO_RP_INVALID] = -1,	 [SWO_RP_SHUT] = 4,
	[SWO_RP_PONG] = 4,	 [SWO_RP_REQ_PAGES_ID] = -1,
	[SWO_RP_REQ_PAGES] = 12, [SWO_RP_RECV_BITMAP] = -1,
	[SWO_RP_RESUME_ACK] = 4, [SWO_RP_SWITCHOVER_ACK] = 0,
};
static const char *const rp_name[SWO_RP__MAX] = {
	"INVALID",   "SHUT",	    "PONG",	  "REQ_PAGES_ID",
	"REQ_PAGES", "RECV_BITMAP", "RESUME_ACK", "SWITCHOVER_ACK",
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct swo *swo_new(struct migd *md, bool return_path, bool switchover_ack)
{
	struct swo *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (!md->swo)
		md->swo = calloc(1, sizeof(*md->swo));
	s->hist = md->swo; /* NULL under OOM: defaults are used */
	s->return_path = return_path;
	s->need_ack = return_path && switchover_ack;
	s->rtt_ms = -1;
	return s;
}

void swo_free(struct swo *s)
{
	free(s);
}

void swo_history_free(struct swo_history *h)
{
	free(h);
}

void swo_open_return_path(struct swo *s, struct qfile *f)
{
	uint8_t v[4];

	if (!s || !s->return_path)
		return;
	vms_put_command(f, MIG_CMD_OPEN_RETURN_PATH, 0, NULL);
	mfd_store_be32(v, PING_VALUE);
	vms_put_command(f, MIG_CMD_PING, 4, v);
	s->ping_sent_ms = now_ms();
}

/* ---- reading the return path ------------------------------------------- */

static int rp_fail(int ret, struct mig_error **errp)
{
	mig_error_setg(errp, "Unable to read from socket: %s", strerror(-ret));
	return ret;
}

static int handle_msg(struct swo *s, uint16_t type, const uint8_t *buf,
		      struct mig_error **errp)
{
	uint32_t v = 0;

	if (rp_len[type] == 4)
		v = mfd_load_be32(buf);
	switch (type) {
	case SWO_RP_SHUT:
		s->shut = true;
		if (v) {
			mig_error_setg(errp, "Sibling indicated error %d",
				       (int)v);
			return -EIO;
		}
		return 0;
	case SWO_RP_PONG:
		if (v == PING_VALUE && s->rtt_ms < 0)
			s->rtt_ms = now_ms() - s->ping_sent_ms;
		return 0;
	case SWO_RP_SWITCHOVER_ACK:
		if (!s->acked)
			log_info("migration: switchover acked by the "
				 "destination");
		s->acked = true;
		return 0;
	default: /* postcopy messages: nothing migd asked for */
		return 0;
	}
}

/* One message: header checked as QEMU's source_return_path_thread does. */
static int read_msg(struct swo *s, struct channel *ch, struct mig_error **errp)
{
	uint8_t hdr[4], buf[RP_MAX_LEN];
	uint16_t type, len;
	int ret = chan_read_all(ch, hdr, sizeof(hdr));

	if (ret)
		return rp_fail(ret, errp);
	type = mfd_load_be16(hdr);
	len = mfd_load_be16(hdr + 2);
	if (type >= SWO_RP__MAX || type == SWO_RP_INVALID) {
		mig_error_setg(errp,
			       "Received invalid message 0x%04x length 0x%04x",
			       type, len);
		return -EINVAL;
	}
	if ((rp_len[type] != -1 && len != rp_len[type]) || len > RP_MAX_LEN) {
		mig_error_setg(errp,
			       "Received '%s' message (0x%04x) with"
			       "incorrect length %d expecting %d",
			       rp_name[type], type, len, rp_len[type]);
		return -EINVAL;
	}
	ret = len ? chan_read_all(ch, buf, len) : 0;
	if (ret)
		return rp_fail(ret, errp);
	return handle_msg(s, type, buf, errp);
}

/* With TLS, a message may already sit inside the session (two records
 * read in one go, or two messages in one record): poll() on the socket
 * would wait for the destination's next send. */
static bool readable(struct channel *ch, int timeout_ms)
{
	return ch->fd >= 0 && tls_channel_wait_input(ch, timeout_ms);
}

int swo_poll(struct swo *s, struct channel *ch, int timeout_ms,
	     struct mig_error **errp)
{
	int ret = 0;

	if (!s || !s->return_path || !ch)
		return 0;
	/* After SHUT the destination only closes: nothing more to read. */
	while (!ret && !s->shut && readable(ch, timeout_ms)) {
		ret = read_msg(s, ch, errp);
		timeout_ms = 0;
	}
	return ret;
}

bool swo_can_switchover(const struct swo *s, bool guest_running)
{
	if (!s || !s->need_ack || !guest_running)
		return true;
	return s->acked;
}

bool swo_acked(const struct swo *s)
{
	return s && s->acked;
}

bool swo_ponged(const struct swo *s)
{
	return s && s->rtt_ms >= 0;
}

int swo_wait_destination(struct swo *s, struct channel *ch, int timeout_ms,
			 struct mig_error **errp)
{
	double deadline = now_ms() + timeout_ms;
	int ret = 0;

	if (!ch || ch->fd < 0)
		return 0;
	while (s && s->return_path && !s->shut && !ret) {
		int left = (int)(deadline - now_ms());

		if (left <= 0)
			return 0; /* as without a return path: give up waiting
				   */
		ret = swo_poll(s, ch, left, errp);
	}
	if (ret)
		return ret;
	/* The destination closes the main channel once it has loaded
	 * everything: that is when the guest is ready there. */
	readable(ch, timeout_ms);
	return 0;
}

/* ---- the cost model ---------------------------------------------------- */

double swo_ewma(double avg, unsigned n, double sample)
{
	return n ? avg + (sample - avg) / 4.0 : sample;
}

void swo_note_sync(struct swo *s, double ms)
{
	if (!s)
		return;
	s->sync_ms = swo_ewma(s->sync_ms, s->nsync++, ms);
}

double swo_fixed_cost_ms(const struct swo *s)
{
	double residual = SWO_DEFAULT_RESIDUAL_MS;

	if (!s)
		return residual;
	if (s->hist && s->hist->n)
		residual = s->hist->residual_ms;
	else if (s->rtt_ms >= 0)
		residual += s->rtt_ms;
	return s->sync_ms + residual;
}

void swo_record(struct swo *s, double stop_ms, double finish_ms)
{
	if (!s || !s->hist)
		return;
	s->hist->residual_ms = swo_ewma(s->hist->residual_ms, s->hist->n++,
					stop_ms + finish_ms);
}

uint64_t swo_threshold(double bw, uint64_t limit_ms, double fixed_ms)
{
	double budget = (double)limit_ms - fixed_ms;

	if (bw <= 0)
		return 0;
	if (budget < (double)limit_ms / 4.0)
		budget = (double)limit_ms / 4.0;
	return (uint64_t)(bw * budget);
}

uint64_t swo_expected_downtime(uint64_t bytes, double bw, double fixed_ms)
{
	if (bw <= 0)
		return 0;
	return (uint64_t)((double)bytes / bw + fixed_ms + 0.5);
}
