/* rdma_mfd_priv.h — state shared by rdma_mfd.c (set, channel, codec,
 * completions), rdma_mfd_src.c (the source's connect and send ops) and
 * rdma_mfd_dst.c (the destination's accept and recv ops). Not for other
 * modules. A channel's fields belong to its owner thread (builder, then
 * its multifd thread); the set's by_id table is written on the control
 * thread before the channel's thread starts. */
#ifndef MIGD_RDMA_MFD_PRIV_H
#define MIGD_RDMA_MFD_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "rdma/rdma_conn.h"
#include "rdma/rdma_mfd.h"
#include "socket/channel.h"

/* Control messages (destination -> source), big endian:
 *   TABLE:    be32 type, be32 credits, be32 nblocks, then per block
 *             be64 addr, be64 length, be32 rkey, be32 name_len, name.
 *   CREDIT:   be32 type, be32 credits returned.
 *   SYNC_ACK: be32 type, be32 credits returned (the SYNC and everything
 *             before it on this channel has been handled).
 * Source -> destination: only the 1344-byte multifd packet. */
enum rmfd_msg {
	RMFD_MSG_TABLE = 1,
	RMFD_MSG_CREDIT = 2,
	RMFD_MSG_SYNC_ACK = 3,
};
#define RMFD_CTRL_SIZE 8
#define RMFD_TABLE_HDR 12
#define RMFD_TABLE_ENTRY 24 /* plus the name */
#define RMFD_VERSION 1
/* Connect private data: be32 version, be32 flags, be32 multifd magic,
 * be32 multifd version, uuid[16], u8 id (33 of the 56 bytes). */
#define RMFD_CONNECT_SIZE 33
/* Accept private data: be32 version, be32 flags (RMFD_CAP_CHANNEL). */
#define RMFD_ACCEPT_SIZE 8

/* Work request ids: kind in the top byte, a sequence or index below. */
#define RMFD_WR_KIND(w) ((w) >> 56)
#define RMFD_WR_VAL(w) ((w) & ((1ull << 56) - 1))
#define RMFD_WR(kind, v) ((uint64_t)(kind) << 56 | (v))
enum { RMFD_WR_WRITE, RMFD_WR_SEND, RMFD_WR_RECV, RMFD_WR_TBL };

/* Queue sizes. Source: a packet is at most 128 WRITEs + 1 SEND. Receives:
 * the table, then one per credit message and SYNC_ACK that can be
 * outstanding (every credit message returns at least one of the
 * RMFD_CREDITS credits; one SYNC_ACK per SYNC, waited for). */
#define RMFD_SRC_SEND_WR 512
#define RMFD_SRC_RECVS (RMFD_CREDITS + 2)
#define RMFD_DST_SENDS (RMFD_CREDITS + 4)
#define RMFD_CQE 128
/* The source looks at its CM channel this often while it waits. */
#define RMFD_CM_SLICE_MS 200

struct rmfd_remote {
	uint64_t addr, length;
	uint32_t rkey;
	bool found;
};

struct rdma_mfd_set {
	struct rv_fabric *fab;
	const struct guest *g;
	atomic_int refs;
	pthread_mutex_t lock;	   /* registration and by_id */
	struct rv_pd *pd;	   /* every channel's, freed last */
	struct ram_block **blocks; /* g's blocks, list order */
	struct rv_mr **mrs;	   /* one per block, NULL until registered */
	size_t nblocks;
	struct rmfd_chan *by_id[256]; /* destination */
	uint8_t uuid[16];	      /* destination: expected (if channels) */
	unsigned channels;
	_Atomic uint64_t *bytes; /* destination: multifd bytes, or NULL */
	/* destination: guest RAM registered by a worker thread, off the
	 * control thread (rdma_mfd_dst.c); reg_done, reg_ret, reg_err under
	 * lock, the rest control thread */
	pthread_t reg_thread;
	bool reg_started, reg_done;
	int reg_ret;
	struct mig_error *reg_err;
};

struct rmfd_chan {
	struct channel base; /* base.priv == this */
	struct rdma_mfd_set *set;
	struct rdma_listener *l; /* destination: a listener reference */
	struct rdma_ep *ep;
	bool source;
	unsigned id;
	uint8_t init[MFD_INIT_SIZE];
	/* Receives: n buffers of size each (one MR); source: table first. */
	uint8_t *rbuf;
	struct rv_mr *rmr;
	unsigned nrecv;
	size_t rsize;
	uint8_t *tbuf;	  /* the table (source: received; dest: sent) */
	uint32_t tlen;	  /* destination: the encoded table's length */
	bool accept_owed; /* destination: waits for the registration */
	struct rv_mr *tmr;
	/* Sends: n buffers of size each, used round robin. */
	uint8_t *sbuf;
	struct rv_mr *smr;
	unsigned nsend;
	size_t ssize;
	uint64_t wr_posted, wr_freed;  /* send queue slots (source) */
	uint64_t msg_posted, msg_done; /* signaled sends */
	unsigned credits;	       /* source: may send; dest: owed */
	bool sync_acked, ended;
	bool peer_gone; /* source: DISCONNECTED seen on its CM channel */
	struct rmfd_remote *remote; /* source: per local block */
};

extern const struct channel_ops rmfd_chan_ops;

struct rmfd_chan *rmfd_chan_new(struct rdma_mfd_set *set, bool source,
				unsigned id, const char *desc);
void rmfd_chan_free(struct rmfd_chan *c);
/* Buffers and their MRs: nrecv receives of rsize, nsend sends of ssize,
 * a table buffer. 0 or -errno with *errp. */
int rmfd_buffers(struct rmfd_chan *c, unsigned nrecv, size_t rsize,
		 unsigned nsend, size_t ssize, struct mig_error **errp);
int rmfd_post_recv(struct rmfd_chan *c, unsigned i, struct mig_error **errp);
int rmfd_post_table_recv(struct rmfd_chan *c, struct mig_error **errp);
/* Posts a signaled SEND of len bytes of send buffer i. */
int rmfd_post_send(struct rmfd_chan *c, const void *buf, uint32_t len,
		   uint32_t lkey, struct mig_error **errp);
/* Next completion within timeout_ms (cancellable): 1 with *wc, or
 * -errno with *errp (-ECANCELED once shut down). */
int rmfd_wait_wc(struct rmfd_chan *c, struct rv_wc *wc, int timeout_ms,
		 struct mig_error **errp);
/* A completion with an error status, as an error. */
int rmfd_wc_error(struct rmfd_chan *c, const struct rv_wc *wc,
		  struct mig_error **errp);

/* The set: registers every block once (access flags), in set->pd; the
 * lock is not held while the NIC pins memory. One registering thread at
 * a time (the source's migration thread, or the destination's worker). */
int rmfd_set_register(struct rdma_mfd_set *set, int access,
		      struct mig_error **errp);
struct rdma_mfd_set *rmfd_set_new(struct rv_fabric *fab, const struct guest *g);
void rmfd_set_ref(struct rdma_mfd_set *set);

/* Codec. */
void rmfd_connect_encode(const uint8_t uuid[16], unsigned id,
			 uint8_t out[RMFD_CONNECT_SIZE]);
/* The init packet a connect request stands for. -EINVAL with *errp. */
int rmfd_connect_decode(const uint8_t *pd, uint8_t len,
			uint8_t init[MFD_INIT_SIZE], unsigned *id,
			struct mig_error **errp);
/* Encodes set's table into out (RMFD_TABLE_MAX): its length, or -E2BIG. */
int rmfd_table_encode(const struct rdma_mfd_set *set, uint8_t *out,
		      struct mig_error **errp);
/* Matches a received table against the local blocks into remote[]. */
int rmfd_table_decode(const uint8_t *in, uint32_t len,
		      const struct rdma_mfd_set *set,
		      struct rmfd_remote *remote, unsigned *credits,
		      struct mig_error **errp);

#endif
