/* rdma_conn.h — one connected RC endpoint over the verbs seam: its cm id,
 * PD, completion channel, CQ and QP, the MRs registered in its PD, a
 * cancel eventfd, and the teardown that releases all of them in the order
 * verbs require. Usable once per channel (the rdma: main channel today,
 * each multifd channel later). Build and free on one thread; rdma_ep_kick()
 * from any thread. */
#ifndef MIGD_RDMA_CONN_H
#define MIGD_RDMA_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rdma/verbs.h"
#include "util/error.h"

/* Bounds of the connection phase (QEMU's RDMA_RESOLVE_TIMEOUT_MS). */
#define RDMA_CONN_TIMEOUT_MS 10000

struct rdma_ep_opts {
	uint32_t max_send_wr;
	uint32_t max_recv_wr;
	int cqe;
	/* Multifd over RDMA (rdma_mfd.c): one PD for every channel. When set,
	 * *shared_pd is used (allocated first if NULL) and never freed by
	 * the endpoint: the caller deallocates it after every endpoint. */
	struct rv_pd **shared_pd;
	/* Source: an fd (an eventfd) the caller makes readable to cancel
	 * the connection phase (address/route resolution, the wait for
	 * ESTABLISHED) from another thread before the endpoint exists for
	 * rdma_ep_kick(); the migration's kick. Only read with
	 * has_conn_cancel (0 is a valid fd); stays the caller's. */
	bool has_conn_cancel;
	int conn_cancel_fd;
	/* Source: the bound of the wait for ESTABLISHED (0: the default
	 * RDMA_CONN_TIMEOUT_MS); a multifd destination pins guest RAM
	 * before it accepts. */
	int conn_timeout_ms;
};

struct rdma_ep {
	struct rv_fabric *fab;
	struct rv_event_channel *ech; /* owned when own_ech */
	bool own_ech;
	struct rv_cm_id *id;
	struct rv_pd *pd;
	bool pd_shared; /* opts.shared_pd: not ours to free */
	struct rv_comp_channel *cc;
	struct rv_cq *cq;
	struct rv_qp *qp;
	struct rv_mr **mrs; /* every MR still registered */
	size_t nmrs, cap_mrs;
	int cancel_fd;	     /* eventfd: readable once kicked */
	int conn_cancel_fd;  /* opts' connect-phase cancel fd, or -1 */
	int conn_timeout_ms; /* opts' bound of the wait for ESTABLISHED */
	atomic_bool kicked;
	bool connected;
};

/* Active side up to ROUTE_RESOLVED with the verbs objects built (the
 * caller then posts its receives and calls rdma_ep_connect). NULL with
 * *errp (QEMU's "RDMA ERROR: ..." messages). */
struct rdma_ep *rdma_ep_resolve(struct rv_fabric *fab, const char *host,
				uint16_t port, const struct rdma_ep_opts *o,
				struct mig_error **errp);
/* Connects with private data and waits for ESTABLISHED; *est gets the
 * event (the peer's accept data). 0 or -errno with *errp. With
 * opts.has_conn_cancel, resolve and connect end at once with -ECANCELED
 * ("RDMA ERROR: cancelled while ...") when that fd is or becomes
 * readable; they then do not watch the endpoint's own cancel fd. */
int rdma_ep_connect(struct rdma_ep *ep, const void *pdata, uint8_t len,
		    struct rv_cm_event *est, struct mig_error **errp);
/* Passive side: builds the verbs objects on the id of a CONNECT_REQUEST
 * (ech is the listener's channel, not owned). NULL with *errp; the id is
 * then the caller's to reject and destroy. */
struct rdma_ep *rdma_ep_from_request(struct rv_fabric *fab,
				     struct rv_event_channel *ech,
				     struct rv_cm_id *id,
				     const struct rdma_ep_opts *o,
				     struct mig_error **errp);
/* Passive side, without blocking: sends the accept with private data;
 * the caller then waits for the id's next CM event on the listener's
 * channel and gives it to rdma_ep_accept_event(). 0 or -errno. */
int rdma_ep_accept_start(struct rdma_ep *ep, const void *pdata, uint8_t len,
			 struct mig_error **errp);
/* The accepted id's next CM event: ESTABLISHED connects the endpoint (0);
 * anything else (REJECTED, CONNECT_ERROR, UNREACHABLE, DISCONNECTED) is
 * -ECONNABORTED with QEMU's "rdma_accept not event established". */
int rdma_ep_accept_event(struct rdma_ep *ep, const struct rv_cm_event *ev,
			 struct mig_error **errp);
/* Both, blocking (bounded by RDMA_CONN_TIMEOUT_MS) on ep's channel: for
 * tests and single-connection callers, never the control thread. */
int rdma_ep_accept(struct rdma_ep *ep, const void *pdata, uint8_t len,
		   struct mig_error **errp);

/* What to raise when the locked-memory limit stops a registration. */
#define RDMA_MEMLOCK_HINT                                                      \
	"raise it (ulimit -l, systemd LimitMEMLOCK=, limits.conf memlock) "    \
	"or grant CAP_IPC_LOCK"
/* RLIMIT_MEMLOCK's soft limit as text ("4096 KiB", "unlimited"). */
void rdma_memlock_limit(char *buf, size_t len);
/* "RDMA ERROR: could not create <what>: <errno>" and, when the error
 * says there is no device, that hint. */
void rdma_event_channel_error(const char *what, int err,
			      struct mig_error **errp);

/* Registers [addr, addr + len) in the endpoint's PD. A failure caused by
 * the locked-memory limit names RLIMIT_MEMLOCK and what to raise
 * (what: "guest RAM", "control buffer"). NULL with *errp. */
struct rv_mr *rdma_ep_reg(struct rdma_ep *ep, void *addr, size_t len,
			  int access, const char *what,
			  struct mig_error **errp);

/* Cancel: wakes every wait (-ECANCELED) and moves the QP to error so
 * posted work flushes. Any thread, any time before rdma_ep_free(). */
void rdma_ep_kick(struct rdma_ep *ep);
bool rdma_ep_kicked(struct rdma_ep *ep);

/* Disconnects and releases everything: QP, MRs, CQ (its events acked),
 * completion channel, PD, id, and the event channel when owned. With
 * destroy_id false the id is left to the caller (a rejected request). */
void rdma_ep_free(struct rdma_ep *ep);

#endif
