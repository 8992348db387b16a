/* rdma_mfd.c — multifd over RDMA, the shared half (rdma_mfd.h): the set
 * (one PD and one MR per guest RAM block for all channels, reference
 * counted: the last channel or owner frees it), the channel object behind
 * migd's channel ops, buffers, posting, completions and the wire codec.
 *
 * Protocol (per channel, one RC QP):
 *  1. connect: private data = caps {version 1, RMFD_CAP_CHANNEL} + the
 *     MultiFDInit_t fields (magic, version, uuid, id); the destination
 *     rebuilds the 64-byte init and checks it as for a socket channel.
 *  2. the destination posts RMFD_CREDITS packet receives, accepts, and
 *     SENDs the block table (addr, length, rkey, name per block; its RAM
 *     registered LOCAL|REMOTE_WRITE once for all channels).
 *  3. per packet the source RDMA WRITEs the normal pages (unsignaled,
 *     adjacent pages merged) and SENDs the 1344-byte packet (one credit);
 *     RC ordering places the WRITEs before the SEND is delivered. Zero
 *     pages are never written: the destination zeroes them from the list.
 *  4. the destination returns credits (CREDIT) once half are owed; at a
 *     SYNC packet it sends SYNC_ACK (with the owed credits) after every
 *     earlier packet of the channel was handled, so the source's sync
 *     returns only when no zeroing of this round can still follow. */
#include "rdma/rdma_mfd_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/byteorder.h"
#include "rdma/rdma_chan_priv.h"
#include "util/evloop.h"

/* ---- the set ------------------------------------------------------------- */

struct rdma_mfd_set *rmfd_set_new(struct rv_fabric *fab, const struct guest *g)
{
	struct rdma_mfd_set *set = calloc(1, sizeof(*set));
	size_t i = 0;

	if (!set)
		return NULL;
	set->fab = fab;
	set->g = g;
	atomic_init(&set->refs, 1);
	pthread_mutex_init(&set->lock, NULL);
	set->nblocks = g->nblocks;
	set->blocks = calloc(g->nblocks + 1, sizeof(*set->blocks));
	set->mrs = calloc(g->nblocks + 1, sizeof(*set->mrs));
	if (!set->blocks || !set->mrs) {
		rdma_mfd_set_unref(set);
		return NULL;
	}
	for (struct ram_block *b = g->blocks; b && i < g->nblocks; b = b->next)
		set->blocks[i++] = b;
	set->nblocks = i;
	return set;
}

struct rdma_mfd_set *rdma_mfd_set_new(struct rv_fabric *fab,
				      const struct guest *g)
{
	return rmfd_set_new(fab, g);
}

void rmfd_set_ref(struct rdma_mfd_set *set)
{
	atomic_fetch_add(&set->refs, 1);
}

/* Last reference: every endpoint is gone, so MRs then the PD go. */
void rdma_mfd_set_unref(struct rdma_mfd_set *set)
{
	if (!set || atomic_fetch_sub(&set->refs, 1) != 1)
		return;
	if (set->reg_started) /* a pin cannot be interrupted: wait it out */
		pthread_join(set->reg_thread, NULL);
	mig_error_free(set->reg_err);
	for (size_t i = 0; set->mrs && i < set->nblocks; i++)
		if (set->mrs[i])
			set->fab->ops->dereg_mr(set->mrs[i]);
	if (set->pd)
		set->fab->ops->dealloc_pd(set->pd);
	free(set->mrs);
	free(set->blocks);
	pthread_mutex_destroy(&set->lock);
	free(set);
}

static void memlock_error(const struct ram_block *b, int err,
			  struct mig_error **errp)
{
	char lim[48];

	rdma_memlock_limit(lim, sizeof(lim));
	mig_error_setg(errp,
		       "RDMA ERROR: multifd: cannot register RAM block '%s' "
		       "(%" PRIu64 " bytes): %s. The locked-memory limit "
		       "(RLIMIT_MEMLOCK) is %s; multifd over RDMA pins all "
		       "guest RAM once: " RDMA_MEMLOCK_HINT,
		       b->name, b->used_length, strerror(err), lim);
}

static bool set_has_mr(struct rdma_mfd_set *set, size_t i)
{
	bool have;

	pthread_mutex_lock(&set->lock);
	have = set->mrs[i] != NULL;
	pthread_mutex_unlock(&set->lock);
	return have;
}

int rmfd_set_register(struct rdma_mfd_set *set, int access,
		      struct mig_error **errp)
{
	for (size_t i = 0; i < set->nblocks; i++) {
		struct ram_block *b = set->blocks[i];
		struct rv_mr *mr;
		int err = 0;

		if (set_has_mr(set, i))
			continue;
		mr = set->fab->ops->reg_mr(set->pd, b->host, b->used_length,
					   access, &err);
		if (!mr) {
			if (err == ENOMEM || err == EAGAIN || err == EPERM)
				memlock_error(b, err, errp);
			else
				mig_error_setg_errno(errp, err,
						     "RDMA ERROR: multifd: "
						     "cannot register RAM "
						     "block '%s'",
						     b->name);
			return -(err ? err : EIO);
		}
		pthread_mutex_lock(&set->lock);
		set->mrs[i] = mr;
		pthread_mutex_unlock(&set->lock);
	}
	return 0;
}

/* ---- the channel --------------------------------------------------------- */

static ssize_t rmfd_rw(struct channel *ch, const struct iovec *iov, int n)
{
	return -EOPNOTSUPP; /* packets go through the xport ops */
}

static void rmfd_shutdown(struct channel *ch)
{
	struct rmfd_chan *c = ch->priv;

	rdma_ep_kick(c->ep);
}

static void rmfd_close(struct channel *ch)
{
	rmfd_chan_free(ch->priv);
}

static const char *rmfd_noun(const struct channel *ch)
{
	return "rdma";
}

const struct channel_ops rmfd_chan_ops = {
	.name = "rdma-multifd",
	.writev = rmfd_rw,
	.readv = rmfd_rw,
	.shutdown = rmfd_shutdown,
	.close = rmfd_close,
	.noun = rmfd_noun,
};

struct rmfd_chan *rmfd_chan_new(struct rdma_mfd_set *set, bool source,
				unsigned id, const char *desc)
{
	struct rmfd_chan *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->base.ops = &rmfd_chan_ops;
	c->base.fd = -1;
	c->base.priv = c;
	snprintf(c->base.desc, sizeof(c->base.desc), "%s", desc);
	c->set = set;
	c->source = source;
	c->id = id;
	rmfd_set_ref(set);
	return c;
}

void rmfd_chan_free(struct rmfd_chan *c)
{
	struct rdma_mfd_set *set;

	if (!c)
		return;
	set = c->set;
	pthread_mutex_lock(&set->lock);
	if (!c->source && c->id < 256 && set->by_id[c->id] == c)
		set->by_id[c->id] = NULL;
	pthread_mutex_unlock(&set->lock);
	rdma_ep_free(c->ep); /* QP, buffer MRs, CQ, channel, id */
	free(c->rbuf);
	free(c->sbuf);
	free(c->tbuf);
	free(c->remote);
	if (c->l)
		rdma_listener_unref(c->l);
	free(c);
	rdma_mfd_set_unref(set); /* MRs and PD after the last QP */
}

static void *rmfd_alloc(size_t len)
{
	void *p = NULL;

	return posix_memalign(&p, 4096, len ? len : 4096) ? NULL : p;
}

int rmfd_buffers(struct rmfd_chan *c, unsigned nrecv, size_t rsize,
		 unsigned nsend, size_t ssize, struct mig_error **errp)
{
	c->nrecv = nrecv;
	c->rsize = rsize;
	c->nsend = nsend;
	c->ssize = ssize;
	c->rbuf = rmfd_alloc(nrecv * rsize);
	c->sbuf = rmfd_alloc(nsend * ssize);
	c->tbuf = rmfd_alloc(RMFD_TABLE_MAX);
	if (!c->rbuf || !c->sbuf || !c->tbuf) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	c->rmr = rdma_ep_reg(c->ep, c->rbuf, nrecv * rsize,
			     RV_ACCESS_LOCAL_WRITE, "multifd buffers", errp);
	c->smr = c->rmr ? rdma_ep_reg(c->ep, c->sbuf, nsend * ssize,
				      RV_ACCESS_LOCAL_WRITE, "multifd buffers",
				      errp)
			: NULL;
	c->tmr = c->smr ? rdma_ep_reg(c->ep, c->tbuf, RMFD_TABLE_MAX,
				      RV_ACCESS_LOCAL_WRITE, "multifd buffers",
				      errp)
			: NULL;
	return c->tmr ? 0 : -ENOMEM;
}

static int post_recv(struct rmfd_chan *c, uint64_t wr_id, void *buf,
		     uint32_t len, uint32_t lkey, struct mig_error **errp)
{
	struct rv_sge sge = {
		.addr = (uintptr_t)buf, .length = len, .lkey = lkey};
	struct rv_recv_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1};
	int ret = c->ep->fab->ops->post_recv(c->ep->qp, &wr);

	if (ret)
		mig_error_setg_errno(errp, -ret,
				     "RDMA ERROR: multifd channel "
				     "%u: cannot post a receive",
				     c->id);
	return ret;
}

int rmfd_post_recv(struct rmfd_chan *c, unsigned i, struct mig_error **errp)
{
	return post_recv(c, RMFD_WR(RMFD_WR_RECV, i), c->rbuf + i * c->rsize,
			 (uint32_t)c->rsize, c->rmr->lkey, errp);
}

int rmfd_post_table_recv(struct rmfd_chan *c, struct mig_error **errp)
{
	return post_recv(c, RMFD_WR(RMFD_WR_TBL, 0), c->tbuf, RMFD_TABLE_MAX,
			 c->tmr->lkey, errp);
}

int rmfd_post_send(struct rmfd_chan *c, const void *buf, uint32_t len,
		   uint32_t lkey, struct mig_error **errp)
{
	struct rv_sge sge = {
		.addr = (uintptr_t)buf, .length = len, .lkey = lkey};
	struct rv_send_wr wr = {.opcode = RV_WR_SEND,
				.sg_list = &sge,
				.num_sge = 1,
				.signaled = true};
	int ret;

	wr.wr_id = RMFD_WR(RMFD_WR_SEND, c->wr_posted + 1);
	ret = c->ep->fab->ops->post_send(c->ep->qp, &wr);
	if (ret)
		return mig_error_setg_errno(errp, -ret,
					    "RDMA ERROR: multifd "
					    "channel %u: cannot post a send",
					    c->id);
	c->wr_posted++;
	c->msg_posted++;
	return 0;
}

int rmfd_wc_error(struct rmfd_chan *c, const struct rv_wc *wc,
		  struct mig_error **errp)
{
	if (rdma_ep_kicked(c->ep)) {
		mig_error_setg(errp, "multifd: channel shut down");
		return -ECANCELED;
	}
	mig_error_setg(errp, "RDMA ERROR: multifd channel %u: %s%s", c->id,
		       rv_wc_status_str(wc->status),
		       wc->status == RV_WC_RETRY_EXC_ERR ||
				       wc->status == RV_WC_WR_FLUSH_ERR
			       ? " (the peer is gone or disconnected)"
			       : "");
	return -EIO;
}

/* The source's channel owns its CM event channel, which nobody else
 * reads once connected: a DISCONNECTED there (the destination closed or
 * died) does not flush our QP by itself, so a source waiting for credits
 * would only notice at its timeout. */
static bool src_peer_gone(struct rmfd_chan *c)
{
	struct rv_cm_event ev;

	if (!c->source || !c->ep->own_ech)
		return false;
	while (c->ep->fab->ops->get_cm_event(c->ep->ech, &ev) == 0)
		if (ev.type == RV_CM_DISCONNECTED ||
		    ev.type == RV_CM_DEVICE_REMOVAL)
			c->peer_gone = true;
	return c->peer_gone;
}

/* rv_wait_wc in slices, looking at the CM between them (source). */
static int wait_sliced(struct rmfd_chan *c, struct rv_wc *wc, int cfd,
		       int timeout_ms)
{
	int64_t deadline = (int64_t)ev_now_ms() + timeout_ms;

	for (;;) {
		int64_t left = timeout_ms < 0 ? RMFD_CM_SLICE_MS
					      : deadline - (int64_t)ev_now_ms();
		int ret = rv_wait_wc(
			c->ep->fab, c->ep->cc, c->ep->cq, wc, cfd,
			left < RMFD_CM_SLICE_MS ? (int)left : RMFD_CM_SLICE_MS);

		if (ret != -ETIMEDOUT)
			return ret;
		if (src_peer_gone(c))
			return -ECONNRESET;
		if (timeout_ms >= 0 && (int64_t)ev_now_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

int rmfd_wait_wc(struct rmfd_chan *c, struct rv_wc *wc, int timeout_ms,
		 struct mig_error **errp)
{
	/* The source's handshake (no table yet) is the connection phase. */
	int cfd = c->source && !c->remote && c->ep->conn_cancel_fd >= 0
			  ? c->ep->conn_cancel_fd
			  : c->ep->cancel_fd;
	int ret = c->source ? wait_sliced(c, wc, cfd, timeout_ms)
			    : rv_wait_wc(c->ep->fab, c->ep->cc, c->ep->cq, wc,
					 cfd, timeout_ms);

	if (ret == 1)
		return 1;
	if (ret == -ECANCELED)
		mig_error_setg(errp, "multifd: channel shut down");
	else if (ret == -ECONNRESET)
		mig_error_setg(errp,
			       "RDMA ERROR: multifd channel %u: the "
			       "destination disconnected",
			       c->id);
	else if (ret == -ETIMEDOUT)
		mig_error_setg(errp,
			       "RDMA ERROR: multifd channel %u: no "
			       "answer from the peer in %d ms",
			       c->id, timeout_ms);
	else if (ret == -EOVERFLOW)
		mig_error_setg(errp,
			       "RDMA ERROR: multifd channel %u: "
			       "completion queue overrun",
			       c->id);
	else
		mig_error_setg_errno(errp, -ret,
				     "RDMA ERROR: multifd channel "
				     "%u: waiting for a completion",
				     c->id);
	return ret ? ret : -EIO;
}

struct rv_qp *rdma_mfd_qp(struct channel *ch)
{
	return ch && ch->ops == &rmfd_chan_ops
		       ? ((struct rmfd_chan *)ch->priv)->ep->qp
		       : NULL;
}

/* ---- codec --------------------------------------------------------------- */

uint32_t rdma_mfd_connect_flags(const uint8_t *pdata, uint8_t len)
{
	if (len < 8 || mfd_load_be32(pdata) != RMFD_VERSION)
		return 0;
	return mfd_load_be32(pdata + 4) & (RMFD_CAP_MAIN | RMFD_CAP_CHANNEL);
}

void rmfd_connect_encode(const uint8_t uuid[16], unsigned id,
			 uint8_t out[RMFD_CONNECT_SIZE])
{
	mfd_store_be32(out, RMFD_VERSION);
	mfd_store_be32(out + 4, RMFD_CAP_CHANNEL);
	mfd_store_be32(out + 8, MFD_MAGIC);
	mfd_store_be32(out + 12, MFD_VERSION);
	memcpy(out + 16, uuid, 16);
	out[32] = (uint8_t)id;
}

int rmfd_connect_decode(const uint8_t *pd, uint8_t len,
			uint8_t init[MFD_INIT_SIZE], unsigned *id,
			struct mig_error **errp)
{
	if (len < RMFD_CONNECT_SIZE ||
	    !(rdma_mfd_connect_flags(pd, len) & RMFD_CAP_CHANNEL)) {
		mig_error_setg(errp, "RDMA ERROR: multifd: bad connection "
				     "request");
		return -EINVAL;
	}
	/* MultiFDInit_t: magic, version, uuid, id, zeros. */
	memset(init, 0, MFD_INIT_SIZE);
	memcpy(init, pd + 8, 8 + 16);
	init[24] = pd[32];
	*id = pd[32];
	return 0;
}

int rmfd_table_encode(const struct rdma_mfd_set *set, uint8_t *out,
		      struct mig_error **errp)
{
	size_t pos = RMFD_TABLE_HDR;

	mfd_store_be32(out, RMFD_MSG_TABLE);
	mfd_store_be32(out + 4, RMFD_CREDITS);
	mfd_store_be32(out + 8, (uint32_t)set->nblocks);
	for (size_t i = 0; i < set->nblocks; i++) {
		const struct ram_block *b = set->blocks[i];
		size_t nl = strnlen(b->name, MFD_NAME_SIZE - 1);

		if (pos + RMFD_TABLE_ENTRY + nl > RMFD_TABLE_MAX) {
			mig_error_setg(errp, "RDMA ERROR: multifd: too many "
					     "RAM blocks for the block table");
			return -E2BIG;
		}
		mfd_store_be64(out + pos, (uintptr_t)b->host);
		mfd_store_be64(out + pos + 8, b->used_length);
		mfd_store_be32(out + pos + 16, set->mrs[i]->rkey);
		mfd_store_be32(out + pos + 20, (uint32_t)nl);
		memcpy(out + pos + RMFD_TABLE_ENTRY, b->name, nl);
		pos += RMFD_TABLE_ENTRY + nl;
	}
	return (int)pos;
}

/* The local block named name[0..nl), or -1. */
static int local_block(const struct rdma_mfd_set *set, const uint8_t *name,
		       uint32_t nl)
{
	for (size_t i = 0; i < set->nblocks; i++) {
		const char *n = set->blocks[i]->name;

		if (strlen(n) == nl && !memcmp(n, name, nl))
			return (int)i;
	}
	return -1;
}

static int table_entry(const uint8_t *e, const uint8_t *end,
		       const struct rdma_mfd_set *set,
		       struct rmfd_remote *remote, struct mig_error **errp)
{
	uint32_t nl;
	int i;

	if (end - e < RMFD_TABLE_ENTRY)
		goto bad;
	nl = mfd_load_be32(e + 20);
	if (nl >= MFD_NAME_SIZE || (size_t)(end - e) < RMFD_TABLE_ENTRY + nl)
		goto bad;
	i = local_block(set, e + RMFD_TABLE_ENTRY, nl);
	if (i >= 0) {
		remote[i].addr = mfd_load_be64(e);
		remote[i].length = mfd_load_be64(e + 8);
		remote[i].rkey = mfd_load_be32(e + 16);
		remote[i].found = true;
	}
	return RMFD_TABLE_ENTRY + (int)nl;
bad:
	mig_error_setg(errp, "RDMA ERROR: multifd: malformed block table");
	return -EINVAL;
}

/* Every local block must be on the destination, with the same size. */
static int table_check(const struct rdma_mfd_set *set,
		       const struct rmfd_remote *remote,
		       struct mig_error **errp)
{
	for (size_t i = 0; i < set->nblocks; i++) {
		const struct ram_block *b = set->blocks[i];

		if (!remote[i].found) {
			mig_error_setg(errp,
				       "RAMBlock '%s' not found on "
				       "destination",
				       b->name);
			return -EINVAL;
		}
		if (remote[i].length != b->used_length) {
			mig_error_setg(errp,
				       "RDMA ERROR: multifd: RAM block "
				       "'%s' is %" PRIu64 " bytes here and "
				       "%" PRIu64 " on the destination",
				       b->name, b->used_length,
				       remote[i].length);
			return -EINVAL;
		}
	}
	return 0;
}

int rmfd_table_decode(const uint8_t *in, uint32_t len,
		      const struct rdma_mfd_set *set,
		      struct rmfd_remote *remote, unsigned *credits,
		      struct mig_error **errp)
{
	const uint8_t *p = in + RMFD_TABLE_HDR, *end = in + len;
	uint32_t n;

	if (len < RMFD_TABLE_HDR || mfd_load_be32(in) != RMFD_MSG_TABLE ||
	    mfd_load_be32(in + 4) == 0 ||
	    mfd_load_be32(in + 4) > RMFD_CREDITS) {
		mig_error_setg(errp, "RDMA ERROR: multifd: malformed block "
				     "table");
		return -EINVAL;
	}
	*credits = mfd_load_be32(in + 4);
	n = mfd_load_be32(in + 8);
	/* each entry takes at least RMFD_TABLE_ENTRY bytes: n is bounded */
	for (uint32_t k = 0; k < n; k++) {
		int used = table_entry(p, end, set, remote, errp);

		if (used < 0)
			return used;
		p += used;
	}
	return table_check(set, remote, errp);
}
