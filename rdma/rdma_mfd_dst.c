/* rdma_mfd_dst.c — multifd over RDMA, the destination: accepting a
 * channel's connection request (guest RAM registered once, receives
 * posted, the block table sent), CM events of the set's connections, and
 * the recv op mfd_recv.c calls on the channel's receive thread: the next
 * packet message, credits back to the source, SYNC_ACK at a SYNC.
 * Guest RAM is pinned by a worker thread (a large guest takes seconds):
 * accepts wait for it without blocking. Accept and CM events: control
 * thread. The recv op: the channel's
 * receive thread. */
#include "rdma/rdma_mfd_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multifd/byteorder.h"
#include "rdma/rdma_chan_priv.h"

static void dst_reject(struct rv_fabric *fab, struct rv_cm_id *id)
{
	fab->ops->reject(id, NULL, 0);
	fab->ops->destroy_id(id);
}

/* Claims c's id in the set (first wins, as QEMU's duplicate check). */
static int dst_bind(struct rmfd_chan *c, struct mig_error **errp)
{
	struct rdma_mfd_set *set = c->set;
	int ret = 0;

	pthread_mutex_lock(&set->lock);
	if (set->by_id[c->id]) {
		/* QEMU's message, stray quote included */
		mig_error_setg(errp, "multifd: received id '%d' already setup'",
			       (int)c->id);
		ret = -EEXIST;
	} else {
		set->by_id[c->id] = c;
	}
	pthread_mutex_unlock(&set->lock);
	return ret;
}

#define DST_RAM_ACCESS (RV_ACCESS_LOCAL_WRITE | RV_ACCESS_REMOTE_WRITE)

/* The worker: pins every block off the control thread. */
static void *dst_register_main(void *opaque)
{
	struct rdma_mfd_set *set = opaque;
	struct mig_error *err = NULL;
	int ret = rmfd_set_register(set, DST_RAM_ACCESS, &err);

	pthread_mutex_lock(&set->lock);
	set->reg_ret = ret;
	set->reg_err = err;
	set->reg_done = true;
	pthread_mutex_unlock(&set->lock);
	return NULL;
}

/* 1 when guest RAM is registered, 0 while the worker (started at the
 * first call) pins it, -errno with *errp when that failed. Without a
 * thread the registration runs here. Control thread. */
static int dst_registered(struct rdma_mfd_set *set, struct mig_error **errp)
{
	int ret;

	if (!set->reg_started &&
	    !pthread_create(&set->reg_thread, NULL, dst_register_main, set))
		set->reg_started = true;
	if (!set->reg_started) {
		ret = rmfd_set_register(set, DST_RAM_ACCESS, errp);
		return ret ? ret : 1;
	}
	pthread_mutex_lock(&set->lock);
	ret = !set->reg_done ? 0 : set->reg_ret ? set->reg_ret : 1;
	if (ret < 0 && set->reg_err)
		mig_error_setg(errp, "%s", set->reg_err->desc);
	pthread_mutex_unlock(&set->lock);
	return ret;
}

static int dst_post_recvs(struct rmfd_chan *c, struct mig_error **errp)
{
	int ret = 0;

	for (unsigned i = 0; !ret && i < c->nrecv; i++)
		ret = rmfd_post_recv(c, i, errp);
	return ret;
}

/* The encoded table (RAM registered), then the accept (not waited for:
 * the table goes at ESTABLISHED, rdma_mfd_accept_event). */
static int dst_accept_now(struct rmfd_chan *c, struct mig_error **errp)
{
	uint8_t pdata[RMFD_ACCEPT_SIZE];
	int len = rmfd_table_encode(c->set, c->tbuf, errp);

	if (len < 0)
		return len;
	c->tlen = (uint32_t)len;
	mfd_store_be32(pdata, RMFD_VERSION);
	mfd_store_be32(pdata + 4, RMFD_CAP_CHANNEL);
	return rdma_ep_accept_start(c->ep, pdata, sizeof(pdata), errp);
}

int rdma_mfd_accept_resume(struct channel *ch, struct mig_error **errp)
{
	struct rmfd_chan *c = ch->priv;
	int ret;

	if (!c->accept_owed)
		return 1;
	ret = dst_registered(c->set, errp);
	if (ret < 0) /* the source sees REJECTED, as before any accept */
		c->set->fab->ops->reject(c->ep->id, NULL, 0);
	if (ret <= 0)
		return ret;
	c->accept_owed = false;
	ret = dst_accept_now(c, errp);
	return ret ? ret : 1;
}

int rdma_mfd_accept_event(struct channel *ch, const struct rv_cm_event *ev,
			  struct mig_error **errp)
{
	struct rmfd_chan *c = ch->priv;
	int ret = rdma_ep_accept_event(c->ep, ev, errp);

	if (ret)
		return ret;
	return rmfd_post_send(c, c->tbuf, c->tlen, c->tmr->lkey, errp);
}

void rdma_mfd_set_expect(struct rdma_mfd_set *set, const uint8_t uuid[16],
			 unsigned channels)
{
	memcpy(set->uuid, uuid, sizeof(set->uuid));
	set->channels = channels;
}

void rdma_mfd_set_counter(struct rdma_mfd_set *set, _Atomic uint64_t *bytes)
{
	set->bytes = bytes;
}

/* The packet and the payload it announces (normal_pages, be32 at 16,
 * clamped: the packet is checked by the receive thread afterwards). */
static void dst_count(struct rmfd_chan *c, const uint8_t *pkt)
{
	uint32_t normal = mfd_load_be32(pkt + 16);

	if (normal > MFD_PAGE_COUNT)
		normal = MFD_PAGE_COUNT;
	if (c->set->bytes)
		atomic_fetch_add_explicit(
			c->set->bytes,
			MFD_PACKET_SIZE + (uint64_t)normal * MFD_PAGE_SIZE,
			memory_order_relaxed);
}

/* The socket path's checks on the rebuilt MultiFDInit_t (bad magic or
 * version, another UUID, an id out of range), before anything is built:
 * the block table never goes to a peer that is not our source. */
static int dst_check_init(const struct rdma_mfd_set *set,
			  const uint8_t init[MFD_INIT_SIZE],
			  struct mig_error **errp)
{
	struct mfd_init in;

	if (!set->channels)
		return 0;
	if (mfd_init_decode(init, &in, errp) ||
	    mfd_init_check(&in, set->uuid, set->channels, errp))
		return -EINVAL;
	return 0;
}

static struct rmfd_chan *dst_chan(struct rdma_mfd_set *set,
				  struct rv_event_channel *ech,
				  const struct rv_cm_event *req,
				  struct mig_error **errp)
{
	struct rdma_ep_opts o = {.max_send_wr = RMFD_DST_SENDS + 2,
				 .max_recv_wr = RMFD_CREDITS,
				 .cqe = RMFD_CQE,
				 .shared_pd = &set->pd};
	uint8_t init[MFD_INIT_SIZE];
	struct rmfd_chan *c;
	unsigned id;

	if (rmfd_connect_decode(req->private_data, req->private_data_len, init,
				&id, errp) ||
	    dst_check_init(set, init, errp))
		return NULL;
	c = rmfd_chan_new(set, false, id, "rdma-multifd");
	if (!c) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	memcpy(c->init, init, sizeof(init));
	c->ep = rdma_ep_from_request(set->fab, ech, req->id, &o, errp);
	if (!c->ep) {
		rmfd_chan_free(c);
		return NULL;
	}
	return c;
}

struct channel *rdma_mfd_accept(struct rdma_mfd_set *set,
				struct rdma_listener *l,
				struct rv_event_channel *ech,
				const struct rv_cm_event *req,
				struct mig_error **errp)
{
	struct rmfd_chan *c = dst_chan(set, ech, req, errp);

	if (!c) {
		dst_reject(set->fab, req->id);
		return NULL;
	}
	if (l) {
		rdma_listener_ref(l);
		c->l = l;
	}
	if (rmfd_buffers(c, RMFD_CREDITS, MFD_PACKET_SIZE, RMFD_DST_SENDS,
			 RMFD_CTRL_SIZE, errp) ||
	    dst_bind(c, errp) || dst_post_recvs(c, errp)) {
		set->fab->ops->reject(req->id, NULL, 0);
		rmfd_chan_free(c); /* destroys the id */
		return NULL;
	}
	c->accept_owed = true; /* rdma_mfd_accept_resume() */
	snprintf(c->base.desc, sizeof(c->base.desc), "rdma (multifd %u)",
		 c->id);
	return &c->base;
}

bool rdma_mfd_chan_init(struct channel *ch, uint8_t init[MFD_INIT_SIZE])
{
	if (!ch || ch->ops != &rmfd_chan_ops)
		return false;
	memcpy(init, ((struct rmfd_chan *)ch->priv)->init, MFD_INIT_SIZE);
	return true;
}

bool rdma_mfd_cm_event(struct rdma_mfd_set *set, const struct rv_cm_event *ev)
{
	bool ours = false;

	if (!set)
		return false;
	pthread_mutex_lock(&set->lock);
	for (unsigned i = 0; i < 256 && !ours; i++) {
		struct rmfd_chan *c = set->by_id[i];

		if (!c || !c->ep || c->ep->id != ev->id)
			continue;
		ours = true;
		if (ev->type == RV_CM_DISCONNECTED ||
		    ev->type == RV_CM_DEVICE_REMOVAL)
			set->fab->ops->modify_qp_state(c->ep->qp, RV_QPS_ERR);
	}
	pthread_mutex_unlock(&set->lock);
	return ours;
}

/* ---- the recv op (the channel's receive thread) -------------------------- */

/* A control message to the source (CREDIT or SYNC_ACK) with the credits
 * owed. Send buffers are reused round robin once their send completed. */
static int dst_ctrl(struct rmfd_chan *c, uint32_t type,
		    struct mig_error **errp);

static int dst_send_done(struct rmfd_chan *c, const struct rv_wc *wc,
			 struct mig_error **errp)
{
	if (wc->status != RV_WC_SUCCESS)
		return rmfd_wc_error(c, wc, errp);
	c->msg_done++;
	return 0;
}

/* A packet message in receive buffer i: copied out, the buffer reposted,
 * one credit owed. */
static int dst_packet_in(struct rmfd_chan *c, const struct rv_wc *wc,
			 uint8_t *buf, struct mig_error **errp)
{
	uint64_t i = RMFD_WR_VAL(wc->wr_id);
	int ret;

	if (i >= c->nrecv || wc->byte_len != MFD_PACKET_SIZE) {
		mig_error_setg(errp,
			       "RDMA ERROR: multifd channel %u: bad "
			       "message of %u bytes",
			       c->id, wc->byte_len);
		return -EPROTO;
	}
	memcpy(buf, c->rbuf + i * c->rsize, MFD_PACKET_SIZE);
	dst_count(c, buf);
	ret = rmfd_post_recv(c, (unsigned)i, errp);
	if (ret)
		return ret;
	c->credits++;
	if (mfd_load_be32(buf + 8) & MFD_FLAG_SYNC)
		return dst_ctrl(c, RMFD_MSG_SYNC_ACK, errp);
	if (c->credits >= RMFD_CREDITS / 2)
		return dst_ctrl(c, RMFD_MSG_CREDIT, errp);
	return 0;
}

/* The end of the source's stream (disconnect flushes the receives), a
 * shutdown, or a failure. */
static int dst_recv_failed(struct rmfd_chan *c, const struct rv_wc *wc,
			   struct mig_error **errp)
{
	if (wc->status == RV_WC_WR_FLUSH_ERR && !rdma_ep_kicked(c->ep)) {
		c->ended = true;
		return 1;
	}
	return rmfd_wc_error(c, wc, errp);
}

static int dst_ctrl(struct rmfd_chan *c, uint32_t type, struct mig_error **errp)
{
	uint8_t *m;
	struct rv_wc wc;
	int ret;

	/* Unreachable in practice: at most one control message per
	 * RMFD_CREDITS / 2 packets plus one per SYNC, and every call of the
	 * recv op polls completions in order, so fewer than RMFD_DST_SENDS
	 * sends are ever unpolled. Should it happen, sends are polled; a
	 * packet polled meanwhile could not be handed back: an error. */
	while (c->msg_posted - c->msg_done >= c->nsend) {
		ret = rmfd_wait_wc(c, &wc, RMFD_WAIT_MS, errp);
		if (ret < 0)
			return ret;
		if (RMFD_WR_KIND(wc.wr_id) != RMFD_WR_SEND) {
			mig_error_setg(errp,
				       "RDMA ERROR: multifd channel %u: "
				       "control send ring full",
				       c->id);
			return -EPROTO;
		}
		ret = dst_send_done(c, &wc, errp);
		if (ret)
			return ret;
	}
	m = c->sbuf + (c->msg_posted % c->nsend) * c->ssize;
	mfd_store_be32(m, type);
	mfd_store_be32(m + 4, c->credits);
	ret = rmfd_post_send(c, m, RMFD_CTRL_SIZE, c->smr->lkey, errp);
	if (!ret)
		c->credits = 0;
	return ret;
}

static struct rmfd_chan *dst_lookup(struct rdma_mfd_set *set, unsigned id,
				    struct mig_error **errp)
{
	struct rmfd_chan *c = NULL;

	pthread_mutex_lock(&set->lock);
	if (id < 256)
		c = set->by_id[id];
	pthread_mutex_unlock(&set->lock);
	if (!c)
		mig_error_setg(errp,
			       "multifd: no rdma connection for channel "
			       "%u",
			       id);
	return c;
}

/* Waits for the channel's next packet: bounded by the peer's liveness
 * (RC retries, DISCONNECTED) and shutdown, as a socket read is. */
static int dst_packet(void *opaque, unsigned id, uint8_t buf[MFD_PACKET_SIZE],
		      struct mig_error **errp)
{
	struct rmfd_chan *c = dst_lookup(opaque, id, errp);
	struct rv_wc wc;
	int ret;

	if (!c)
		return -ENOENT;
	while (!c->ended) {
		ret = rmfd_wait_wc(c, &wc, -1, errp);
		if (ret < 0)
			return ret;
		if (RMFD_WR_KIND(wc.wr_id) == RMFD_WR_SEND)
			ret = dst_send_done(c, &wc, errp);
		else if (wc.status != RV_WC_SUCCESS)
			return dst_recv_failed(c, &wc, errp);
		else
			return dst_packet_in(c, &wc, buf, errp);
		if (ret)
			return ret;
	}
	return 1;
}

const struct mfd_recv_xport rdma_mfd_recv_xport = {
	.packet = dst_packet,
};
