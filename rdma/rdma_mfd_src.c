/* rdma_mfd_src.c — multifd over RDMA, the source: connecting a channel
 * (capabilities + MultiFDInit_t fields in the private data, the block
 * table back), and the send ops mfd_send.c calls on the channel's send
 * thread: RDMA WRITEs of a batch's normal pages, the packet as a SEND
 * behind a receive credit, SYNC waiting for the destination's SYNC_ACK.
 * Connect: migration thread. Ops: the channel's send thread. */
#include "rdma/rdma_mfd_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/byteorder.h"

enum src_want { WANT_TABLE, WANT_CREDIT, WANT_SLOTS, WANT_ACK };

/* A control message from the destination in receive buffer i. */
static int src_ctrl(struct rmfd_chan *c, unsigned i, uint32_t len,
		    struct mig_error **errp)
{
	const uint8_t *m = c->rbuf + i * c->rsize;
	uint32_t type = len == RMFD_CTRL_SIZE ? mfd_load_be32(m) : 0;
	uint32_t n = len == RMFD_CTRL_SIZE ? mfd_load_be32(m + 4) : 0;

	if ((type != RMFD_MSG_CREDIT && type != RMFD_MSG_SYNC_ACK) ||
	    n > RMFD_CREDITS - c->credits) {
		mig_error_setg(errp,
			       "RDMA ERROR: multifd channel %u: bad "
			       "control message (type %u, %u bytes)",
			       c->id, type, len);
		return -EPROTO;
	}
	c->credits += n;
	if (type == RMFD_MSG_SYNC_ACK)
		c->sync_acked = true;
	return rmfd_post_recv(c, i, errp);
}

static int src_table(struct rmfd_chan *c, uint32_t len, struct mig_error **errp)
{
	c->remote = calloc(c->set->nblocks + 1, sizeof(*c->remote));
	if (!c->remote) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	return rmfd_table_decode(c->tbuf, len, c->set, c->remote, &c->credits,
				 errp);
}

static int src_handle(struct rmfd_chan *c, const struct rv_wc *wc,
		      struct mig_error **errp)
{
	if (wc->status != RV_WC_SUCCESS)
		return rmfd_wc_error(c, wc, errp);
	switch (RMFD_WR_KIND(wc->wr_id)) {
	case RMFD_WR_SEND:
		c->wr_freed = RMFD_WR_VAL(wc->wr_id);
		c->msg_done++;
		return 0;
	case RMFD_WR_RECV:
		if (RMFD_WR_VAL(wc->wr_id) >= c->nrecv)
			break;
		return src_ctrl(c, (unsigned)RMFD_WR_VAL(wc->wr_id),
				wc->byte_len, errp);
	case RMFD_WR_TBL:
		if (c->remote)
			break;
		return src_table(c, wc->byte_len, errp);
	}
	mig_error_setg(errp,
		       "RDMA ERROR: multifd channel %u: unexpected "
		       "completion",
		       c->id);
	return -EPROTO;
}

static bool src_have(const struct rmfd_chan *c, enum src_want w, unsigned slots)
{
	switch (w) {
	case WANT_TABLE:
		return c->remote;
	case WANT_CREDIT:
		return c->credits > 0;
	case WANT_SLOTS:
		return c->wr_posted - c->wr_freed + slots <= RMFD_SRC_SEND_WR;
	case WANT_ACK:
		return c->sync_acked;
	}
	return false;
}

/* Handles completions until w holds; every wait bounded by timeout_ms. */
static int src_wait(struct rmfd_chan *c, enum src_want w, unsigned slots,
		    int timeout_ms, struct mig_error **errp)
{
	struct rv_wc wc;
	int ret;

	while (!src_have(c, w, slots)) {
		ret = rmfd_wait_wc(c, &wc, timeout_ms, errp);
		if (ret < 0)
			return ret;
		ret = src_handle(c, &wc, errp);
		if (ret)
			return ret;
	}
	return 0;
}

/* Receives (table first), the connect with the private data, the
 * destination's answer, then the table. */
static int src_handshake(struct rmfd_chan *c, const uint8_t uuid[16],
			 struct mig_error **errp)
{
	uint8_t pdata[RMFD_CONNECT_SIZE];
	struct rv_cm_event est;
	int ret = rmfd_post_table_recv(c, errp);

	for (unsigned i = 0; !ret && i < c->nrecv; i++)
		ret = rmfd_post_recv(c, i, errp);
	if (ret)
		return ret;
	rmfd_connect_encode(uuid, c->id, pdata);
	ret = rdma_ep_connect(c->ep, pdata, sizeof(pdata), &est, errp);
	if (ret)
		return ret;
	if (!(rdma_mfd_connect_flags(est.private_data, est.private_data_len) &
	      RMFD_CAP_CHANNEL)) {
		mig_error_setg(errp, RMFD_QEMU_REFUSAL);
		return -EPROTO;
	}
	return src_wait(c, WANT_TABLE, 0, RDMA_CONN_TIMEOUT_MS, errp);
}

static struct rmfd_chan *src_chan(const char *host, uint16_t port, unsigned id,
				  struct channel *first, struct rv_fabric *fab,
				  const struct guest *g)
{
	struct rdma_mfd_set *set;
	struct rmfd_chan *c;
	char desc[128];

	if (first && first->ops != &rmfd_chan_ops)
		return NULL;
	set = first ? ((struct rmfd_chan *)first->priv)->set
		    : rmfd_set_new(fab, g);
	if (!set)
		return NULL;
	snprintf(desc, sizeof(desc), "rdma:%s:%u (multifd %u)", host, port, id);
	c = rmfd_chan_new(set, true, id, desc);
	if (!first)
		rdma_mfd_set_unref(set); /* the channel holds it now */
	return c;
}

struct channel *rdma_mfd_connect(struct rv_fabric *fab, const char *host,
				 uint16_t port, const struct guest *g,
				 const uint8_t uuid[16], unsigned id,
				 struct channel *first, int cancel_fd,
				 struct mig_error **errp)
{
	struct rmfd_chan *c = src_chan(host, port, id, first, fab, g);
	/* The destination accepts once its guest RAM is pinned, which for
	 * a large guest takes longer than the usual connect bound. */
	struct rdma_ep_opts o = {.max_send_wr = RMFD_SRC_SEND_WR,
				 .max_recv_wr = RMFD_SRC_RECVS + 1,
				 .cqe = RMFD_CQE,
				 .conn_timeout_ms = RMFD_WAIT_MS};

	if (!c) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	o.shared_pd = &c->set->pd;
	o.has_conn_cancel = cancel_fd >= 0;
	o.conn_cancel_fd = cancel_fd;
	c->ep = rdma_ep_resolve(fab, host, port, &o, errp);
	if (!c->ep ||
	    /* WRITE sources are only read, but a read-only pin of RAM
	     * never touched pins the shared zero page (or a page a later
	     * copy-on-write replaces) on some kernels, and the NIC would
	     * send stale bytes: pin writable, as QEMU does */
	    rmfd_set_register(c->set, RV_ACCESS_LOCAL_WRITE, errp) ||
	    rmfd_buffers(c, RMFD_SRC_RECVS, RMFD_CTRL_SIZE, RMFD_CREDITS + 1,
			 MFD_PACKET_SIZE, errp) ||
	    src_handshake(c, uuid, errp)) {
		rmfd_chan_free(c);
		return NULL;
	}
	return &c->base;
}

/* ---- send ops (the channel's send thread) -------------------------------- */

static int src_block(const struct rmfd_chan *c, const struct ram_block *b,
		     struct mig_error **errp)
{
	for (size_t i = 0; i < c->set->nblocks; i++)
		if (c->set->blocks[i] == b)
			return (int)i;
	mig_error_setg(errp,
		       "RDMA ERROR: multifd: RAM block '%s' is not "
		       "registered",
		       b->name);
	return -1;
}

static int post_write(struct rmfd_chan *c, int bi, uint64_t off, uint32_t len,
		      struct mig_error **errp)
{
	const struct ram_block *b = c->set->blocks[bi];
	struct rv_sge sge = {.addr = (uintptr_t)(b->host + off),
			     .length = len,
			     .lkey = c->set->mrs[bi]->lkey};
	struct rv_send_wr wr = {.wr_id = RMFD_WR(RMFD_WR_WRITE, 0),
				.opcode = RV_WR_RDMA_WRITE,
				.sg_list = &sge,
				.num_sge = 1,
				.remote_addr = c->remote[bi].addr + off,
				.rkey = c->remote[bi].rkey};
	int ret;

	if (off > b->used_length || len > b->used_length - off) {
		mig_error_setg(errp,
			       "RDMA ERROR: multifd: page outside of "
			       "RAM block '%s'",
			       b->name);
		return -EINVAL;
	}
	ret = c->ep->fab->ops->post_send(c->ep->qp, &wr);
	if (ret)
		return mig_error_setg_errno(errp, -ret,
					    "RDMA ERROR: multifd "
					    "channel %u: cannot post an RDMA "
					    "write",
					    c->id);
	c->wr_posted++;
	return 0;
}

/* One unsignaled WRITE per run of adjacent pages. */
static int post_writes(struct rmfd_chan *c, int bi, const struct mfd_batch *b,
		       uint32_t nnormal, struct mig_error **errp)
{
	uint32_t i = 0;

	while (i < nnormal) {
		uint64_t start = b->offset[i];
		uint32_t n = 1;
		int ret;

		while (i + n < nnormal &&
		       b->offset[i + n] == start + (uint64_t)n * MFD_PAGE_SIZE)
			n++;
		ret = post_write(c, bi, start, n * MFD_PAGE_SIZE, errp);
		if (ret)
			return ret;
		i += n;
	}
	return 0;
}

/* The packet as a SEND from the next header buffer (a credit is held). */
static int send_header(struct rmfd_chan *c, const uint8_t *hdr,
		       struct mig_error **errp)
{
	uint8_t *buf = c->sbuf + (c->msg_posted % c->nsend) * c->ssize;
	int ret;

	memcpy(buf, hdr, MFD_PACKET_SIZE);
	ret = rmfd_post_send(c, buf, MFD_PACKET_SIZE, c->smr->lkey, errp);
	if (!ret)
		c->credits--;
	return ret;
}

static int src_packet(struct channel *ch, const uint8_t hdr[MFD_PACKET_SIZE],
		      const struct mfd_batch *b, uint32_t nnormal,
		      struct mig_error **errp)
{
	struct rmfd_chan *c = ch->priv;
	int bi = src_block(c, b->block, errp);
	int ret;

	if (bi < 0)
		return -EINVAL;
	ret = src_wait(c, WANT_CREDIT, 0, RMFD_WAIT_MS, errp);
	if (!ret)
		ret = src_wait(c, WANT_SLOTS, nnormal + 1, RMFD_WAIT_MS, errp);
	if (!ret)
		ret = post_writes(c, bi, b, nnormal, errp);
	return ret ? ret : send_header(c, hdr, errp);
}

static int src_sync(struct channel *ch, const uint8_t hdr[MFD_PACKET_SIZE],
		    struct mig_error **errp)
{
	struct rmfd_chan *c = ch->priv;
	int ret = src_wait(c, WANT_CREDIT, 0, RMFD_WAIT_MS, errp);

	if (!ret)
		ret = src_wait(c, WANT_SLOTS, 1, RMFD_WAIT_MS, errp);
	if (ret)
		return ret;
	c->sync_acked = false;
	ret = send_header(c, hdr, errp);
	return ret ? ret : src_wait(c, WANT_ACK, 0, RMFD_WAIT_MS, errp);
}

/* The handshake went in the connect's private data (rdma_mfd_connect). */
static int src_init(struct channel *ch, const uint8_t init[MFD_INIT_SIZE],
		    struct mig_error **errp)
{
	struct rmfd_chan *c = ch->priv;

	if (init[24] != c->id) {
		mig_error_setg(errp, "multifd: channel %u announced id %u",
			       c->id, init[24]);
		return -EINVAL;
	}
	return 0;
}

const struct mfd_send_xport rdma_mfd_send_xport = {
	.init = src_init,
	.packet = src_packet,
	.sync = src_sync,
};
