/* rdma_chan_io.c — the rdma: channel as migd's channel ops (QEMU_FILE
 * messages of up to 32 KiB, each behind a READY), its creation around a
 * connected endpoint, the source's connect with the capabilities, the
 * destination's accept, and the teardown. I/O on the owner thread;
 * shutdown from any thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdma/rdma_chan_priv.h"
#include "rdma/rdma_mfd.h"
#include "util/log.h"

#define RC_QP_OPTS                                                             \
	{                                                                      \
		.max_send_wr = RPROTO_SIGNALED_SEND_MAX, .max_recv_wr = 3,     \
		.cqe = RPROTO_SIGNALED_SEND_MAX * 3                            \
	}

static ssize_t rc_writev(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	struct rdma_chan *c = ch->priv;
	size_t total = 0, fill = 0;
	int ret = c->ram ? rdma_ram_flush(c->ram, NULL) : 0;

	for (int i = 0; i < iovcnt && !ret; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left && !ret) {
			size_t n = RPROTO_SEND_INCREMENT - fill;

			if (n > left)
				n = left;
			memcpy(c->out + fill, p, n);
			fill += n;
			p += n;
			left -= n;
			total += n;
			if (fill == RPROTO_SEND_INCREMENT) {
				ret = rdma_chan_exchange_send(
					c, RPROTO_QEMU_FILE, c->out, fill, 1,
					RPROTO_NONE, NULL, NULL, NULL, NULL,
					NULL);
				fill = 0;
			}
		}
	}
	if (!ret && fill)
		ret = rdma_chan_exchange_send(c, RPROTO_QEMU_FILE, c->out, fill,
					      1, RPROTO_NONE, NULL, NULL, NULL,
					      NULL, NULL);
	return ret ? ret : (ssize_t)total;
}

static ssize_t rc_readv(struct channel *ch, const struct iovec *iov, int iovcnt)
{
	struct rdma_chan *c = ch->priv;
	size_t got = 0;

	while (c->in_off == c->in_len) {
		struct rproto_header h;
		const uint8_t *data;
		int ret = rdma_chan_exchange_recv(c, RPROTO_QEMU_FILE, &h,
						  &data, -1, NULL);

		if (ret)
			return ret;
		memcpy(c->in, data, h.len);
		c->in_len = h.len;
		c->in_off = 0;
	}
	for (int i = 0; i < iovcnt && c->in_off < c->in_len; i++) {
		size_t n = c->in_len - c->in_off;

		if (n > iov[i].iov_len)
			n = iov[i].iov_len;
		memcpy(iov[i].iov_base, c->in + c->in_off, n);
		c->in_off += n;
		got += n;
	}
	return (ssize_t)got;
}

static void rc_shutdown(struct channel *ch)
{
	struct rdma_chan *c = ch->priv;

	rdma_ep_kick(c->ep);
}

static void rc_free(struct rdma_chan *c)
{
	struct rdma_listener *l = c->listener;

	rdma_ep_free(c->ep); /* QP, every MR, CQ, channel, PD, id */
	rdma_ram_free(c->ram);
	for (int i = 0; i < RC_NBUF; i++)
		free(c->rbuf[i]);
	free(c->sbuf);
	free(c->out);
	free(c->in);
	mig_error_free(c->err);
	pthread_mutex_destroy(&c->lock);
	free(c);
	if (l)
		rdma_listener_chan_gone(l);
}

static void rc_close(struct channel *ch)
{
	rc_free(ch->priv);
}

static const char *rc_noun(const struct channel *ch)
{
	return "rdma";
}

const struct channel_ops rdma_chan_ops = {
	.name = "rdma",
	.writev = rc_writev,
	.readv = rc_readv,
	.shutdown = rc_shutdown,
	.close = rc_close,
	.noun = rc_noun,
};

static void *rc_buf(size_t len)
{
	void *p = NULL;

	return posix_memalign(&p, 4096, len) ? NULL : p;
}

/* Buffers, their MRs and the first READY receive. */
static int rc_buffers(struct rdma_chan *c, struct mig_error **errp)
{
	for (int i = 0; i < RC_NBUF; i++)
		c->rbuf[i] = rc_buf(RPROTO_MAX_BUFFER);
	c->sbuf = rc_buf(RPROTO_MAX_BUFFER);
	c->out = malloc(RPROTO_SEND_INCREMENT);
	c->in = malloc(RPROTO_MAX_DATA);
	if (!c->rbuf[0] || !c->rbuf[1] || !c->sbuf || !c->out || !c->in) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < RC_NBUF; i++) {
		c->rmr[i] = rdma_ep_reg(c->ep, c->rbuf[i], RPROTO_MAX_BUFFER,
					RV_ACCESS_LOCAL_WRITE, "control buffer",
					errp);
		if (!c->rmr[i])
			return -ENOMEM;
	}
	c->smr = rdma_ep_reg(c->ep, c->sbuf, RPROTO_MAX_BUFFER,
			     RV_ACCESS_LOCAL_WRITE, "control buffer", errp);
	return c->smr ? 0 : -ENOMEM;
}

struct rdma_chan *rdma_chan_new(struct rdma_ep *ep, bool source,
				const char *desc, struct mig_error **errp)
{
	struct rdma_chan *c = calloc(1, sizeof(*c));
	struct rv_sge sge;
	struct rv_recv_wr wr = {.wr_id = RC_WRID_RECV + RC_READY,
				.sg_list = &sge,
				.num_sge = 1};
	int ret;

	if (!c) {
		rdma_ep_free(ep);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->ep = ep;
	c->fab = ep->fab;
	c->source = source;
	c->base.ops = &rdma_chan_ops;
	c->base.fd = -1;
	c->base.priv = c;
	snprintf(c->base.desc, sizeof(c->base.desc), "%s", desc);
	c->ram = rdma_ram_new(c);
	ret = c->ram ? rc_buffers(c, errp) : -ENOMEM;
	if (!ret) {
		sge = (struct rv_sge){.addr = (uintptr_t)c->rbuf[RC_READY],
				      .length = RPROTO_MAX_BUFFER,
				      .lkey = c->rmr[RC_READY]->lkey};
		ret = c->fab->ops->post_recv(ep->qp, &wr);
		if (ret)
			mig_error_setg_errno(errp, -ret,
					     "RDMA ERROR: error "
					     "posting receive control");
	}
	if (ret) {
		mig_error_setg(errp, "Out of memory");
		rc_free(c);
		return NULL;
	}
	return c;
}

struct channel *rdma_chan_connect(struct rv_fabric *fab, const char *host,
				  uint16_t port, bool pin_all,
				  struct mig_error **errp)
{
	return rdma_chan_connect_cancellable(fab, host, port, pin_all, -1,
					     errp);
}

struct channel *rdma_chan_connect_cancellable(struct rv_fabric *fab,
					      const char *host, uint16_t port,
					      bool pin_all, int cancel_fd,
					      struct mig_error **errp)
{
	uint32_t accepted;

	return rdma_chan_connect_flags(fab, host, port, pin_all, 0, cancel_fd,
				       &accepted, errp);
}

struct channel *rdma_chan_connect_flags(struct rv_fabric *fab, const char *host,
					uint16_t port, bool pin_all,
					uint32_t extra, int cancel_fd,
					uint32_t *accepted,
					struct mig_error **errp)
{
	struct rdma_ep_opts o = RC_QP_OPTS;
	struct rproto_caps caps = {.version = RPROTO_VERSION,
				   .flags = (pin_all ? RPROTO_CAP_PIN_ALL : 0) |
					    extra};
	uint8_t pdata[RPROTO_CAPS_SIZE];
	struct rv_cm_event est;
	struct rdma_ep *ep;
	struct rdma_chan *c;
	char desc[128];

	o.has_conn_cancel = cancel_fd >= 0;
	o.conn_cancel_fd = cancel_fd;
	ep = rdma_ep_resolve(fab, host, port, &o, errp);
	if (!ep)
		return NULL;
	snprintf(desc, sizeof(desc), "rdma:%s:%u", host, port);
	c = rdma_chan_new(ep, true, desc, errp);
	if (!c)
		return NULL;
	rproto_caps_encode(&caps, pdata);
	if (rdma_ep_connect(ep, pdata, sizeof(pdata), &est, errp)) {
		rc_free(c);
		return NULL;
	}
	*accepted = est.private_data_len >= RPROTO_CAPS_SIZE
			    ? rdma_mfd_connect_flags(est.private_data, 8) |
				      (est.private_data[7] & RPROTO_CAP_PIN_ALL)
			    : 0;
	c->mfd = *accepted & extra & RMFD_CAP_MAIN;
	/* The accepted capabilities: in network order, like the request. */
	c->pin_all = pin_all && est.private_data_len >= RPROTO_CAPS_SIZE &&
		     (est.private_data[7] & RPROTO_CAP_PIN_ALL);
	if (pin_all && !c->pin_all)
		log_warn("Server cannot support pinning all memory. Will "
			 "register memory dynamically.");
	c->ready_expected = true;
	return &c->base;
}

struct channel *rdma_chan_accept(struct rv_fabric *fab,
				 struct rv_event_channel *ech,
				 struct rv_cm_id *id,
				 const struct rproto_caps *caps,
				 const char *desc, struct mig_error **errp)
{
	const struct rdma_ep_opts o = RC_QP_OPTS;
	struct rproto_caps kept = {
		.version = RPROTO_VERSION,
		.flags = caps->flags & (RPROTO_KNOWN_CAPS | RMFD_CAP_MAIN)};
	uint8_t pdata[RPROTO_CAPS_SIZE];
	struct rdma_ep *ep = rdma_ep_from_request(fab, ech, id, &o, errp);
	struct rdma_chan *c;

	if (!ep) {
		fab->ops->reject(id, NULL, 0);
		fab->ops->destroy_id(id);
		return NULL;
	}
	c = rdma_chan_new(ep, false, desc, errp);
	if (!c)
		return NULL; /* ep (and the id) freed */
	c->pin_all = kept.flags & RPROTO_CAP_PIN_ALL;
	c->mfd = kept.flags & RMFD_CAP_MAIN;
	rproto_caps_encode(&kept, pdata);
	if (rdma_ep_accept_start(ep, pdata, sizeof(pdata), errp)) {
		rc_free(c);
		return NULL;
	}
	return &c->base;
}

int rdma_chan_accept_event(struct channel *ch, const struct rv_cm_event *ev,
			   struct mig_error **errp)
{
	return rdma_ep_accept_event(((struct rdma_chan *)ch->priv)->ep, ev,
				    errp);
}
