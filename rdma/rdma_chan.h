/* rdma_chan.h — the rdma: main channel: QEMU's RDMA control channel (SEND
 * messages with a 16-byte header, READY flow control, QEMU_FILE messages
 * carrying the migration stream) behind migd's channel ops, plus the
 * RDMA WRITE and completion plumbing the RAM protocol (rdma_ram.c) uses.
 * The owner thread (migration thread, or the destination's load thread)
 * does all I/O; chan_shutdown() may come from any thread. The listener
 * lives on the control thread. */
#ifndef MIGD_RDMA_CHAN_H
#define MIGD_RDMA_CHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "rdma/rdma_proto.h"
#include "rdma/verbs.h"
#include "util/error.h"

struct channel;
struct rdma_chan;
struct rdma_listener;
struct rdma_ram;

/* Waits for a peer that must answer promptly (READY, a result). */
#define RDMA_CHAN_WAIT_MS 60000

/* Source: resolves, connects with the capabilities (pin_all requested)
 * and returns the main channel. NULL with *errp. */
struct channel *rdma_chan_connect(struct rv_fabric *fab, const char *host,
				  uint16_t port, bool pin_all,
				  struct mig_error **errp);
/* The same, cancellable from another thread while it connects: once
 * cancel_fd (an eventfd the caller owns, -1 for none) is or becomes
 * readable, it fails at once ("RDMA ERROR: cancelled while ..."). */
struct channel *rdma_chan_connect_cancellable(struct rv_fabric *fab,
					      const char *host, uint16_t port,
					      bool pin_all, int cancel_fd,
					      struct mig_error **errp);

/* The same with more capability bits requested (rdma_mfd.h's
 * RMFD_CAP_MAIN: multifd over RDMA, migd <-> migd) and the flags the
 * destination accepted in *accepted. */
struct channel *rdma_chan_connect_flags(struct rv_fabric *fab, const char *host,
					uint16_t port, bool pin_all,
					uint32_t extra, int cancel_fd,
					uint32_t *accepted,
					struct mig_error **errp);
/* Destination: multifd over RDMA is on (g: the guest whose RAM the
 * channels write): the main request must carry RMFD_CAP_MAIN (else it is
 * refused with "RDMA and multifd can't be used together"), which is
 * echoed, and multifd channel requests are accepted (rdma_mfd.h). 0 or
 * -ENOMEM. Control thread, before the source connects. */
struct guest;
struct rdma_mfd_set;
int rdma_listener_enable_mfd(struct rdma_listener *l, const struct guest *g);
/* The listener's multifd set (NULL unless enabled). */
struct rdma_mfd_set *rdma_listener_mfd(struct rdma_listener *l);

/* Destination: listens on host:port (NULL/"" = any). NULL with *errp. */
struct rdma_listener *rdma_listener_open(struct rv_fabric *fab,
					 const char *host, uint16_t port,
					 struct mig_error **errp);
/* The fd that is readable while CM events are pending. */
int rdma_listener_fd(struct rdma_listener *l);
/* Handles the pending CM events without blocking: a CONNECT_REQUEST is
 * accepted (the first main one only; later ones are rejected) and its
 * channel returned in *out once its ESTABLISHED came (multifd channels
 * after the main one). 1 with *out (call again: more may be ready), 0
 * when nothing is ready, -errno with *errp (a bad request: refused; an
 * accepted connection that failed: closed). */
int rdma_listener_handle(struct rdma_listener *l, struct channel **out,
			 struct mig_error **errp);
/* Milliseconds until the listener has timed work (0: now), -1 when none:
 * an accepted connection's deadline, or a short poll while multifd
 * accepts wait for guest RAM's registration (rdma_listener_handle()
 * sends them). rdma_listener_expire() fails a connection past its
 * deadline: -ETIMEDOUT with *errp, 0 when nothing expired. */
int rdma_listener_next_timeout(struct rdma_listener *l);
int rdma_listener_expire(struct rdma_listener *l, struct mig_error **errp);
/* Tests: the accept timeout (default RDMA_CONN_TIMEOUT_MS). */
void rdma_listener_set_accept_timeout(struct rdma_listener *l, int ms);
/* Stops listening; the event channel lives on until the accepted channel
 * is closed. */
void rdma_listener_free(struct rdma_listener *l);

/* The RAM protocol state of an rdma channel, NULL for other channels. */
struct rdma_ram *rdma_chan_ram(struct channel *ch);
/* True (and a copy of it in *errp if errp) when the channel failed: the
 * root cause of the I/O error the stream then saw. */
bool rdma_chan_error(struct channel *ch, struct mig_error **errp);

/* The destination's idle policy (x-incoming-idle-timeout), any thread
 * while the channel lives: a counter that moves with every completion
 * (control message received or sent, RDMA WRITE done) and registration;
 * and whether a HOOK round is open, during which the source's RDMA
 * WRITEs reach guest RAM without this side seeing them. 0/false for other
 * channels. */
uint64_t rdma_chan_progress(struct channel *ch);
bool rdma_chan_in_round(struct channel *ch);

/* The channel's QP, for fault injection in tests (rv_loop_kill()). */
struct rv_qp *rdma_chan_qp(struct channel *ch);

/* ---- for rdma_ram.c (owner thread) ---- */
struct rdma_chan *rdma_chan_of_ram(struct rdma_ram *r);
bool rdma_chan_pin_all(const struct rdma_chan *c);
bool rdma_chan_is_source(const struct rdma_chan *c);
/* QEMU's exchange_send: waits for READY when one is due, sends a message
 * and, with resp_type != NONE, waits for the answer; *resp and *resp_data
 * point into the receive buffer until the next exchange. before_wait runs
 * after the send, while the peer works (pin-all registration). */
int rdma_chan_exchange_send(struct rdma_chan *c, uint32_t type,
			    const void *data, uint32_t len, uint32_t repeat,
			    uint32_t resp_type, struct rproto_header *resp,
			    const uint8_t **resp_data,
			    int (*before_wait)(void *), void *opaque,
			    struct mig_error **errp);
/* QEMU's exchange_recv: sends READY and waits for the next message
 * (expecting NONE: any type but ERROR). *data valid until the next call. */
int rdma_chan_exchange_recv(struct rdma_chan *c, uint32_t expecting,
			    struct rproto_header *h, const uint8_t **data,
			    int timeout_ms, struct mig_error **errp);
/* Sends a message without waiting for READY (the destination's answers). */
int rdma_chan_send(struct rdma_chan *c, uint32_t type, const void *data,
		   uint32_t len, uint32_t repeat, struct mig_error **errp);
/* Registers memory in the channel's PD (memlock diagnostics). */
struct rv_mr *rdma_chan_reg(struct rdma_chan *c, void *addr, size_t len,
			    int access, struct mig_error **errp);
/* Posts one signaled RDMA WRITE (waits for a send slot when the queue is
 * full). wrid encodes block and chunk (rproto_wrid). */
int rdma_chan_write(struct rdma_chan *c, const void *local, uint32_t len,
		    uint32_t lkey, uint64_t remote, uint32_t rkey,
		    uint64_t wrid, struct mig_error **errp);
/* Processes completions: one (blocking up to timeout_ms), or every one
 * already there (timeout_ms 0). Write completions go to done(). */
int rdma_chan_poll(struct rdma_chan *c, int timeout_ms,
		   struct mig_error **errp);
unsigned int rdma_chan_writes_in_flight(const struct rdma_chan *c);
void rdma_chan_set_write_done(struct rdma_chan *c,
			      void (*done)(void *, uint32_t, uint64_t),
			      void *opaque);
/* The destination's control loop enters / leaves a HOOK round. */
void rdma_chan_set_in_round(struct rdma_chan *c, bool in_round);
/* Records err as the channel's failure (first wins) and returns ret. */
int rdma_chan_fail(struct rdma_chan *c, int ret, struct mig_error *err);

#endif
