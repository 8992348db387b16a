/* rdma_chan_priv.h — the rdma: channel's state, shared by rdma_chan.c
 * (control messages, completions), rdma_chan_io.c (channel ops, connect,
 * accept) and rdma_listen.c (the destination's listener). Not for other
 * modules. Fields belong to the owner thread except the error (lock). */
#ifndef MIGD_RDMA_CHAN_PRIV_H
#define MIGD_RDMA_CHAN_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "rdma/rdma_chan.h"
#include "rdma/rdma_conn.h"
#include "socket/channel.h"

/* Work request ids (QEMU's values). */
#define RC_WRID_WRITE 1
#define RC_WRID_SEND 2000
#define RC_WRID_RECV 4000
/* Receive buffers: READY (flow control and stream), DATA (answers). */
#define RC_READY 0
#define RC_DATA 1
#define RC_NBUF 2

struct rdma_chan {
	struct channel base; /* base.priv == this */
	struct rv_fabric *fab;
	struct rdma_ep *ep;
	struct rdma_listener *listener; /* destination: a reference */
	bool source, pin_all, ready_expected, send_busy;
	bool mfd; /* RMFD_CAP_MAIN agreed: multifd over RDMA (rdma_mfd.h) */
	/* destination: set by the listener (control thread); source: by
	 * its owner thread from its own CM channel (gone_event: which) */
	atomic_bool peer_gone;
	enum rv_cm_event_type gone_event;
	int64_t gone_ms; /* source: when it was seen (ev_now_ms) */
	/* Idle policy (any thread reads): moves with every successful
	 * completion and registration; in_round while the destination's
	 * control loop waits inside a HOOK round (the source's RDMA WRITEs
	 * land then, unseen by this side's CPU). */
	_Atomic uint64_t progress;
	atomic_bool in_round;
	uint8_t *rbuf[RC_NBUF];
	struct rv_mr *rmr[RC_NBUF];
	bool rgot[RC_NBUF];
	uint32_t rlen[RC_NBUF];
	uint8_t *sbuf;
	struct rv_mr *smr;
	uint8_t *out; /* QEMU_FILE bytes being gathered */
	uint8_t *in;  /* QEMU_FILE bytes received, not read yet */
	size_t in_len, in_off;
	unsigned int nb_sent; /* RDMA WRITEs in flight */
	void (*write_done)(void *, uint32_t, uint64_t);
	void *wd_opaque;
	struct rdma_ram *ram;
	pthread_mutex_t lock;
	struct mig_error *err; /* (lock) the first failure */
	int err_ret;	       /* (lock) */
};

extern const struct channel_ops rdma_chan_ops;

/* rdma_chan_io.c: a channel around a built endpoint (buffers registered,
 * READY receive posted). NULL with *errp; ep is then freed. */
struct rdma_chan *rdma_chan_new(struct rdma_ep *ep, bool source,
				const char *desc, struct mig_error **errp);
/* Destination: accepts the request on id with the caps kept, without
 * waiting: the id's next CM event goes to rdma_ep_accept_event(). */
struct channel *rdma_chan_accept(struct rv_fabric *fab,
				 struct rv_event_channel *ech,
				 struct rv_cm_id *id,
				 const struct rproto_caps *caps,
				 const char *desc, struct mig_error **errp);
/* The next CM event of a channel rdma_chan_accept() made: ESTABLISHED
 * connects it (0), anything else is -ECONNABORTED with *errp. */
int rdma_chan_accept_event(struct channel *ch, const struct rv_cm_event *ev,
			   struct mig_error **errp);
/* rdma_listen.c: the channel drops its listener reference when closed. */
void rdma_listener_unref(struct rdma_listener *l);
void rdma_listener_ref(struct rdma_listener *l);
/* The accepted channel is closing: forget it and drop its reference. */
void rdma_listener_chan_gone(struct rdma_listener *l);

/* rdma_ram.c */
struct rdma_ram *rdma_ram_new(struct rdma_chan *c);
void rdma_ram_free(struct rdma_ram *r);
/* Sends the pending merged write (before any QEMU_FILE message). */
int rdma_ram_flush(struct rdma_ram *r, struct mig_error **errp);

#endif
