/* rdma_mfd.h — multifd over RDMA (migd <-> migd only; QEMU never had it):
 * each multifd channel is its own RC connection; pages go by RDMA WRITE
 * straight into the destination's registered guest RAM and the multifd
 * packet (MultiFDPacket_t, byte for byte) follows as a SEND on the same
 * QP, so its arrival says the pages are placed. Protocol: docs in
 * /work/notes/reports/hmr_docs.md and the comment in rdma_mfd.c.
 * Threads: sets and channels are built on the migration thread (source)
 * or the control thread (destination); the send/recv ops run on the
 * channel's multifd thread; chan_shutdown() from any thread. */
#ifndef MIGD_RDMA_MFD_H
#define MIGD_RDMA_MFD_H

#include <stdbool.h>
#include <stdint.h>

#include "multifd/mfd_recv.h"
#include "multifd/mfd_send.h"
#include "rdma/verbs.h"
#include "util/error.h"

struct channel;
struct guest;
struct rdma_mfd_set;

/* Capability bits in the connect private data (be32 flags after be32
 * version 1, as QEMU's RDMACapabilities). QEMU's destination drops bits
 * it does not know, so a migd source talking to QEMU never sees them back.
 * MAIN: on the main rdma: connection, "migd source with multifd over
 * RDMA"; echoed by a migd destination that has multifd on.
 * CHANNEL: the connection is multifd channel (never sent to QEMU). */
#define RMFD_CAP_MAIN 0x00010000u
#define RMFD_CAP_CHANNEL 0x00020000u
/* The error both sides give when the peer cannot (QEMU's words). */
#define RMFD_QEMU_REFUSAL "RDMA and multifd can't be used together"

/* Receive credits of a channel: packets the source may have in flight. */
#define RMFD_CREDITS 16
/* Largest block table (one SEND). */
#define RMFD_TABLE_MAX (64 * 1024)
/* Waits for a peer that must answer promptly (table, credits, SYNC). */
#define RMFD_WAIT_MS 60000

/* What a connect request's private data is: 0 (plain QEMU), or the
 * RMFD_CAP_* bits it carries. len is what the event holds. */
uint32_t rdma_mfd_connect_flags(const uint8_t *pdata, uint8_t len);

/* ---- source (migration thread) ---- */
/* Connects multifd channel id to host:port with the capabilities and the
 * MultiFDInit_t fields (uuid, id) in the private data, and waits (bounded)
 * for the destination's block table. first: NULL for the first channel,
 * which creates the set (one PD, every RAM block of g registered once
 * for all channels), else a channel returned before, whose set is
 * shared. Once cancel_fd (an eventfd, -1 for none) is readable the
 * connection phase ends at once. A destination that does not answer as
 * migd: "RDMA and multifd can't be used together". NULL with *errp. */
struct channel *rdma_mfd_connect(struct rv_fabric *fab, const char *host,
				 uint16_t port, const struct guest *g,
				 const uint8_t uuid[16], unsigned id,
				 struct channel *first, int cancel_fd,
				 struct mig_error **errp);
/* The send ops for mfd_send_opts.xport. */
extern const struct mfd_send_xport rdma_mfd_send_xport;

/* ---- destination (control thread) ---- */
struct rdma_listener;
/* A set for one incoming migration: every block of g is registered
 * (LOCAL|REMOTE_WRITE) in one PD at the first channel. NULL on
 * allocation failure. Each channel holds a reference. */
struct rdma_mfd_set *rdma_mfd_set_new(struct rv_fabric *fab,
				      const struct guest *g);
void rdma_mfd_set_unref(struct rdma_mfd_set *set);
/* What a channel's identification must say (the local UUID, multifd-
 * channels): a request that does not is refused before anything is built
 * for it, with QEMU's messages. Control thread, before channels come. */
void rdma_mfd_set_expect(struct rdma_mfd_set *set, const uint8_t uuid[16],
			 unsigned channels);
/* Where the receive threads count each packet and its pages' bytes, as
 * the source counts multifd-bytes (the pages came by RDMA WRITE). */
void rdma_mfd_set_counter(struct rdma_mfd_set *set, _Atomic uint64_t *bytes);
/* A CONNECT_REQUEST carrying RMFD_CAP_CHANNEL (its id on the listener's
 * channel ech; l, if not NULL, is referenced until the channel closes):
 * builds the endpoint, claims the channel id ("multifd: received id '%d'
 * already setup'") and posts the receives. The accept is owed until guest
 * RAM is registered (a worker thread pins it, started by the first
 * rdma_mfd_accept_resume()). The channel, or NULL with *errp (the request
 * is then rejected and destroyed). */
struct channel *rdma_mfd_accept(struct rdma_mfd_set *set,
				struct rdma_listener *l,
				struct rv_event_channel *ech,
				const struct rv_cm_event *req,
				struct mig_error **errp);
/* Sends the owed accept once guest RAM is registered, without blocking:
 * 1 when the accept is out (its event then goes to
 * rdma_mfd_accept_event), 0 while the registration runs (call again),
 * -errno with *errp (registration failed: the request is rejected; or
 * the accept failed) — the caller closes the channel. */
int rdma_mfd_accept_resume(struct channel *ch, struct mig_error **errp);
/* The next CM event of a channel rdma_mfd_accept() made: ESTABLISHED
 * sends the block table (0); anything else, or a failed send, is -errno
 * with *errp (the caller closes the channel). Control thread. */
int rdma_mfd_accept_event(struct channel *ch, const struct rv_cm_event *ev,
			  struct mig_error **errp);
/* True for a channel rdma_mfd_accept() made, with the MultiFDInit_t its
 * request stands for in init (for mfd_recv_accept_init()). */
bool rdma_mfd_chan_init(struct channel *ch, uint8_t init[MFD_INIT_SIZE]);
/* A CM event of one of the set's connections (DISCONNECTED...): its QP
 * goes to error so its thread wakes. True when it was one of ours. */
bool rdma_mfd_cm_event(struct rdma_mfd_set *set, const struct rv_cm_event *ev);
/* The recv ops: mfd_recv_set_xport(r, &rdma_mfd_recv_xport, set). */
extern const struct mfd_recv_xport rdma_mfd_recv_xport;

/* Tests: a channel's QP (rv_loop_kill()). */
struct rv_qp *rdma_mfd_qp(struct channel *ch);

#endif
