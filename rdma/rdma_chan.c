/* rdma_chan.c — the rdma: main channel (rdma_chan.h): control buffers,
 * completion dispatch, QEMU's exchange_send / exchange_recv with READY
 * flow control, the QEMU_FILE byte stream behind channel ops, and the
 * source's connect. Owner thread for I/O; shutdown from any thread. */
#include "rdma/rdma_chan.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdma/rdma_chan_priv.h"
#include "socket/channel.h"
#include "util/evloop.h"
#include "util/log.h"

/* Slice of a completion wait between checks of the CM channel. */
#define RC_SLICE_MS 100
/* After a DISCONNECTED, how long flushed work may take to complete. */
#define RC_GONE_GRACE_MS 1000

static struct rdma_chan *to_rc(struct channel *ch)
{
	return ch->priv;
}

int rdma_chan_fail(struct rdma_chan *c, int ret, struct mig_error *err)
{
	pthread_mutex_lock(&c->lock);
	if (!c->err_ret) {
		c->err_ret = ret ? ret : -EIO;
		c->err = err;
		err = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	mig_error_free(err);
	return ret;
}

/* The stored failure into *errp; its return value. */
static int rc_failed(struct rdma_chan *c, struct mig_error **errp)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = c->err_ret;
	if (ret && c->err)
		mig_error_setg(errp, "%s", c->err->desc);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* Formats a failure, records it and copies it to *errp. */
static int rc_error(struct rdma_chan *c, int ret, struct mig_error **errp,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int rc_error(struct rdma_chan *c, int ret, struct mig_error **errp,
		    const char *fmt, ...)
{
	struct mig_error *err = NULL;
	va_list ap;

	va_start(ap, fmt);
	mig_error_vset(&err, MIG_ERR_GENERIC, fmt, ap);
	va_end(ap);
	rdma_chan_fail(c, ret, err);
	return rc_failed(c, errp);
}

/* Takes err as the failure (unless one is recorded) and reports. */
static int rc_take(struct rdma_chan *c, int ret, struct mig_error *err,
		   struct mig_error **errp)
{
	rdma_chan_fail(c, ret, err);
	return rc_failed(c, errp);
}

bool rdma_chan_error(struct channel *ch, struct mig_error **errp)
{
	struct rdma_chan *c;

	if (!ch || ch->ops != &rdma_chan_ops)
		return false;
	c = to_rc(ch);
	return rc_failed(c, errp) != 0;
}

struct rdma_ram *rdma_chan_ram(struct channel *ch)
{
	/* multifd over RDMA: pages go by the multifd channels, the main
	 * channel only carries the stream (no HOOK rounds) */
	return ch && ch->ops == &rdma_chan_ops && !to_rc(ch)->mfd
		       ? to_rc(ch)->ram
		       : NULL;
}

uint64_t rdma_chan_progress(struct channel *ch)
{
	if (!ch || ch->ops != &rdma_chan_ops)
		return 0;
	return atomic_load(&to_rc(ch)->progress);
}

bool rdma_chan_in_round(struct channel *ch)
{
	return ch && ch->ops == &rdma_chan_ops &&
	       atomic_load(&to_rc(ch)->in_round);
}

void rdma_chan_set_in_round(struct rdma_chan *c, bool in_round)
{
	atomic_store(&c->in_round, in_round);
}

struct rv_qp *rdma_chan_qp(struct channel *ch)
{
	return ch && ch->ops == &rdma_chan_ops ? to_rc(ch)->ep->qp : NULL;
}

bool rdma_chan_pin_all(const struct rdma_chan *c)
{
	return c->pin_all;
}

bool rdma_chan_is_source(const struct rdma_chan *c)
{
	return c->source;
}

unsigned int rdma_chan_writes_in_flight(const struct rdma_chan *c)
{
	return c->nb_sent;
}

void rdma_chan_set_write_done(struct rdma_chan *c,
			      void (*done)(void *, uint32_t, uint64_t),
			      void *opaque)
{
	c->write_done = done;
	c->wd_opaque = opaque;
}

struct rv_mr *rdma_chan_reg(struct rdma_chan *c, void *addr, size_t len,
			    int access, struct mig_error **errp)
{
	struct mig_error *err = NULL;
	struct rv_mr *mr =
		rdma_ep_reg(c->ep, addr, len, access, "guest RAM", &err);

	if (!mr)
		rc_take(c, -ENOMEM, err, errp);
	else
		atomic_fetch_add(&c->progress, 1);
	return mr;
}

/* ---- completions --------------------------------------------------------- */

static const char *wrid_desc(uint64_t wr_id)
{
	switch (wr_id & 0xffff) {
	case RC_WRID_WRITE:
		return "WRITE RDMA";
	case RC_WRID_SEND:
		return "CONTROL SEND";
	default:
		return "CONTROL RECV";
	}
}

static const char *wc_hint(enum rv_wc_status st)
{
	switch (st) {
	case RV_WC_RETRY_EXC_ERR:
	case RV_WC_RNR_RETRY_EXC_ERR:
		return ": the peer is gone or unreachable";
	case RV_WC_REM_ACCESS_ERR:
		return ": the peer refused the memory access";
	case RV_WC_WR_FLUSH_ERR:
		return ": the connection was shut down (the peer closed it or "
		       "is gone)";
	default:
		return "";
	}
}

static int rc_check_cm(struct rdma_chan *c, struct mig_error **errp);
static int rc_disconnected(struct rdma_chan *c, struct mig_error **errp);

static int rc_handle_wc(struct rdma_chan *c, const struct rv_wc *wc,
			struct mig_error **errp)
{
	uint32_t type, block;
	uint64_t chunk, low = wc->wr_id & 0xffff;

	if (wc->status != RV_WC_SUCCESS) {
		if (rdma_ep_kicked(c->ep))
			return rc_error(c, -ECANCELED, errp,
					"RDMA ERROR: migration cancelled");
		if (wc->status == RV_WC_WR_FLUSH_ERR && c->ep->own_ech) {
			rc_check_cm(c, NULL); /* the disconnect behind it */
			if (atomic_load(&c->peer_gone))
				return rc_disconnected(c, errp);
		}
		return rc_error(
			c, -EIO, errp, "RDMA ERROR: %s completion failed: %s%s",
			wrid_desc(wc->wr_id), rv_wc_status_str(wc->status),
			atomic_load(&c->peer_gone) ? ": the peer disconnected"
						   : wc_hint(wc->status));
	}
	atomic_fetch_add(&c->progress, 1 + (uint64_t)wc->byte_len);
	if (low == RC_WRID_WRITE) {
		rproto_wrid_split(wc->wr_id, &type, &block, &chunk);
		if (c->nb_sent)
			c->nb_sent--;
		if (c->write_done)
			c->write_done(c->wd_opaque, block, chunk);
	} else if (low == RC_WRID_SEND) {
		c->send_busy = false;
	} else if (low >= RC_WRID_RECV && low < RC_WRID_RECV + RC_NBUF) {
		c->rgot[low - RC_WRID_RECV] = true;
		c->rlen[low - RC_WRID_RECV] = wc->byte_len;
	}
	return 0;
}

/* The source's view of a disconnect (its own CM channel told it). */
static int rc_disconnected(struct rdma_chan *c, struct mig_error **errp)
{
	return rc_error(c, -ECONNRESET, errp,
			"RDMA ERROR: the destination disconnected (%s)",
			rv_cm_event_str(c->gone_event));
}

/* The source's own CM channel. A DISCONNECTED flushes the QP rather than
 * failing at once: work the destination already acknowledged (its last
 * message, before it closed) may not have been polled yet, and completes
 * as it did; what is left flushes (rc_disconnected). A wait that still
 * sees nothing a grace period later (nothing was posted) fails. */
static int rc_check_cm(struct rdma_chan *c, struct mig_error **errp)
{
	const struct rv_ops *o = c->fab->ops;
	struct rv_cm_event ev;

	if (!c->ep->own_ech)
		return 0;
	if (atomic_load(&c->peer_gone))
		return (int64_t)ev_now_ms() - c->gone_ms < RC_GONE_GRACE_MS
			       ? 0
			       : rc_disconnected(c, errp);
	while (o->get_cm_event(c->ep->ech, &ev) == 0) {
		if (ev.type != RV_CM_DISCONNECTED &&
		    ev.type != RV_CM_DEVICE_REMOVAL)
			continue;
		c->gone_event = ev.type;
		c->gone_ms = (int64_t)ev_now_ms();
		atomic_store(&c->peer_gone, true);
		o->modify_qp_state(c->ep->qp, RV_QPS_ERR);
		break;
	}
	return 0;
}

/* Every completion already there, without blocking. */
static int rc_reap(struct rdma_chan *c, struct mig_error **errp)
{
	struct rv_wc wc;
	int ret;

	for (;;) {
		ret = c->fab->ops->poll_cq(c->ep->cq, 1, &wc);
		if (ret == -EOVERFLOW)
			return rc_error(c, ret, errp,
					"RDMA ERROR: completion queue overrun");
		if (ret <= 0)
			return ret;
		ret = rc_handle_wc(c, &wc, errp);
		if (ret)
			return ret;
	}
}

int rdma_chan_poll(struct rdma_chan *c, int timeout_ms, struct mig_error **errp)
{
	int64_t deadline = (int64_t)ev_now_ms() + timeout_ms;
	struct rdma_ep *ep = c->ep;
	struct rv_wc wc;
	int ret = rc_failed(c, errp);

	if (ret)
		return ret;
	if (timeout_ms == 0)
		return rc_reap(c, errp);
	for (;;) {
		int64_t left = timeout_ms < 0 ? RC_SLICE_MS
					      : deadline - (int64_t)ev_now_ms();

		if (left < 0)
			left = 0;

		ret = rv_wait_wc(c->fab, ep->cc, ep->cq, &wc, ep->cancel_fd,
				 left < RC_SLICE_MS ? (int)left : RC_SLICE_MS);
		if (ret == 1)
			return rc_handle_wc(c, &wc, errp);
		if (ret == -ECANCELED)
			return rc_error(c, ret, errp,
					"RDMA ERROR: migration cancelled");
		if (ret != -ETIMEDOUT)
			return rc_error(c, ret, errp,
					"RDMA ERROR: polling the completion "
					"queue: %s",
					strerror(-ret));
		ret = rc_check_cm(c, errp);
		if (ret)
			return ret;
		if (timeout_ms >= 0 && (int64_t)ev_now_ms() >= deadline)
			return rc_error(c, -ETIMEDOUT, errp,
					"RDMA ERROR: no answer from the peer "
					"within %d ms",
					timeout_ms);
	}
}

/* ---- control messages ---------------------------------------------------- */

static int rc_post_recv(struct rdma_chan *c, int idx, struct mig_error **errp)
{
	struct rv_sge sge = {.addr = (uintptr_t)c->rbuf[idx],
			     .length = RPROTO_MAX_BUFFER,
			     .lkey = c->rmr[idx]->lkey};
	struct rv_recv_wr wr = {.wr_id = RC_WRID_RECV + (uint64_t)idx,
				.sg_list = &sge,
				.num_sge = 1};
	int ret = c->fab->ops->post_recv(c->ep->qp, &wr);

	c->rgot[idx] = false;
	if (ret)
		return rc_error(c, ret, errp,
				"RDMA ERROR: error posting receive control: "
				"%s",
				strerror(-ret));
	return 0;
}

int rdma_chan_send(struct rdma_chan *c, uint32_t type, const void *data,
		   uint32_t len, uint32_t repeat, struct mig_error **errp)
{
	struct rproto_header h = {.len = len, .type = type, .repeat = repeat};
	struct rv_sge sge = {.addr = (uintptr_t)c->sbuf,
			     .length = RPROTO_HEADER_SIZE + len,
			     .lkey = c->smr->lkey};
	struct rv_send_wr wr = {.wr_id = RC_WRID_SEND,
				.opcode = RV_WR_SEND,
				.sg_list = &sge,
				.num_sge = 1,
				.signaled = true};
	int ret = rc_failed(c, errp);

	if (ret)
		return ret;
	if (len > RPROTO_MAX_DATA)
		return rc_error(c, -EINVAL, errp,
				"RDMA ERROR: control message of %" PRIu32
				" bytes is too long",
				len);
	rproto_header_encode(&h, c->sbuf);
	if (len)
		memmove(c->sbuf + RPROTO_HEADER_SIZE, data, len);
	ret = c->fab->ops->post_send(c->ep->qp, &wr);
	if (ret)
		return rc_error(c, ret, errp,
				"RDMA ERROR: Failed to use post IB SEND for "
				"control: %s",
				strerror(-ret));
	c->send_busy = true;
	while (c->send_busy && !ret)
		ret = rdma_chan_poll(c, RDMA_CHAN_WAIT_MS, errp);
	return ret;
}

/* Waits for the message in buffer idx and checks its header. */
static int rc_recv_msg(struct rdma_chan *c, int idx, uint32_t expecting,
		       struct rproto_header *h, int timeout_ms,
		       struct mig_error **errp)
{
	struct mig_error *err = NULL;
	bool got_error = false;
	int ret = 0;

	while (!c->rgot[idx] && !ret)
		ret = rdma_chan_poll(c, timeout_ms, errp);
	if (ret)
		return ret;
	c->rgot[idx] = false;
	ret = rproto_header_decode(c->rbuf[idx], c->rlen[idx], h, &err);
	if (!ret && expecting == RPROTO_NONE && h->type == RPROTO_ERROR) {
		mig_error_setg(&err, "RDMA ERROR: the peer reported an error");
		ret = -EIO;
	} else if (!ret && expecting != RPROTO_NONE) {
		ret = rproto_expect(h, expecting, &got_error, &err);
	}
	return ret ? rc_take(c, ret, err, errp) : 0;
}

int rdma_chan_exchange_send(struct rdma_chan *c, uint32_t type,
			    const void *data, uint32_t len, uint32_t repeat,
			    uint32_t resp_type, struct rproto_header *resp,
			    const uint8_t **resp_data,
			    int (*before_wait)(void *), void *opaque,
			    struct mig_error **errp)
{
	struct rproto_header ready;
	int ret = 0;

	if (c->ready_expected)
		ret = rc_recv_msg(c, RC_READY, RPROTO_READY, &ready,
				  RDMA_CHAN_WAIT_MS, errp);
	c->ready_expected = false;
	if (!ret && resp_type != RPROTO_NONE)
		ret = rc_post_recv(c, RC_DATA, errp);
	if (!ret)
		ret = rc_post_recv(c, RC_READY, errp);
	if (!ret)
		ret = rdma_chan_send(c, type, data, len, repeat, errp);
	if (!ret && before_wait)
		ret = before_wait(opaque);
	if (!ret && resp_type != RPROTO_NONE) {
		ret = rc_recv_msg(c, RC_DATA, resp_type, resp,
				  RDMA_CHAN_WAIT_MS, errp);
		*resp_data = c->rbuf[RC_DATA] + RPROTO_HEADER_SIZE;
	}
	c->ready_expected = true;
	return ret;
}

int rdma_chan_exchange_recv(struct rdma_chan *c, uint32_t expecting,
			    struct rproto_header *h, const uint8_t **data,
			    int timeout_ms, struct mig_error **errp)
{
	int ret = rdma_chan_send(c, RPROTO_READY, NULL, 0, 1, errp);

	if (!ret)
		ret = rc_recv_msg(c, RC_READY, expecting, h, timeout_ms, errp);
	/* The peer sends nothing more before our next READY: the data stays
	 * intact in the re-posted buffer until then. */
	if (!ret)
		ret = rc_post_recv(c, RC_READY, errp);
	*data = c->rbuf[RC_READY] + RPROTO_HEADER_SIZE;
	return ret;
}

int rdma_chan_write(struct rdma_chan *c, const void *local, uint32_t len,
		    uint32_t lkey, uint64_t remote, uint32_t rkey,
		    uint64_t wrid, struct mig_error **errp)
{
	struct rv_sge sge = {
		.addr = (uintptr_t)local, .length = len, .lkey = lkey};
	struct rv_send_wr wr = {.wr_id = wrid,
				.opcode = RV_WR_RDMA_WRITE,
				.sg_list = &sge,
				.num_sge = 1,
				.signaled = true,
				.remote_addr = remote,
				.rkey = rkey};
	int ret = rc_failed(c, errp);

	while (!ret) {
		ret = c->fab->ops->post_send(c->ep->qp, &wr);
		if (ret != -ENOMEM || !c->nb_sent)
			break;
		ret = rdma_chan_poll(c, RDMA_CHAN_WAIT_MS, errp);
	}
	if (ret && !rc_failed(c, NULL))
		return rc_error(c, ret, errp,
				"RDMA ERROR: rdma migration: post rdma write "
				"failed: %s",
				strerror(-ret));
	if (!ret)
		c->nb_sent++;
	return ret;
}
