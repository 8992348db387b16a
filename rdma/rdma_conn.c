/* rdma_conn.c — one RC endpoint (rdma_conn.h): resolve, connect, accept,
 * memory registration with memlock diagnostics, cancel and teardown.
 * Build/free on one thread; rdma_ep_kick() from any thread. */
#include "rdma/rdma_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

static struct rdma_ep *ep_new(struct rv_fabric *fab, struct mig_error **errp)
{
	struct rdma_ep *ep = calloc(1, sizeof(*ep));

	if (!ep) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	ep->fab = fab;
	ep->conn_cancel_fd = -1;
	ep->cancel_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ep->cancel_fd < 0) {
		mig_error_setg_errno(errp, errno, "RDMA ERROR: eventfd");
		free(ep);
		return NULL;
	}
	return ep;
}

/* PD, completion channel, CQ and QP on ep->id. */
static int ep_verbs(struct rdma_ep *ep, const struct rdma_ep_opts *o,
		    struct mig_error **errp)
{
	const struct rv_ops *ops = ep->fab->ops;
	struct rv_qp_init_attr a = {.max_send_wr = o->max_send_wr,
				    .max_recv_wr = o->max_recv_wr,
				    .max_send_sge = 1,
				    .max_recv_sge = 1};
	int err = 0;

	ep->pd_shared = o->shared_pd != NULL;
	ep->pd = ep->pd_shared ? *o->shared_pd : NULL;
	if (!ep->pd)
		ep->pd = ops->alloc_pd(ep->id, &err);
	/* Published once, by the first endpoint: later ones only read it
	 * (a registration worker may be reading it meanwhile). */
	if (ep->pd_shared && !*o->shared_pd)
		*o->shared_pd = ep->pd;
	if (!ep->pd)
		return mig_error_setg_errno(errp, err,
					    "RDMA ERROR: "
					    "failed to allocate protection "
					    "domain");
	ep->cc = ops->create_comp_channel(ep->id, &err);
	if (!ep->cc)
		return mig_error_setg_errno(errp, err,
					    "RDMA ERROR: "
					    "failed to allocate completion "
					    "channel");
	ep->cq = ops->create_cq(ep->id, o->cqe, ep->cc, &err);
	if (!ep->cq)
		return mig_error_setg_errno(errp, err,
					    "RDMA ERROR: "
					    "failed to allocate completion "
					    "queue");
	a.send_cq = a.recv_cq = ep->cq;
	ep->qp = ops->create_qp(ep->id, ep->pd, &a, &err);
	if (!ep->qp)
		return mig_error_setg_errno(errp, err,
					    "RDMA ERROR: "
					    "failed to create queue pair");
	return 0;
}

/* True when fd is readable now (a cancel that came before the wait: an
 * event already queued would otherwise be taken without looking at it). */
static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Waits for the next CM event on ep's channel; it must be want. */
static int ep_expect(struct rdma_ep *ep, enum rv_cm_event_type want,
		     struct rv_cm_event *ev, const char *what, int timeout_ms,
		     struct mig_error **errp)
{
	int cfd = ep->conn_cancel_fd >= 0 ? ep->conn_cancel_fd : ep->cancel_fd;
	int ret = fd_readable(cfd) ? -ECANCELED
				   : rv_wait_cm_event(ep->fab, ep->ech, ev, cfd,
						      timeout_ms);

	if (ret == -ECANCELED) {
		mig_error_setg(errp, "RDMA ERROR: cancelled while %s", what);
		return ret;
	}
	if (ret) {
		mig_error_setg_errno(errp, -ret,
				     "RDMA ERROR: no event while %s", what);
		return ret;
	}
	if (ev->type == want)
		return 0;
	return -EIO;
}

static int ep_resolve(struct rdma_ep *ep, const char *host, uint16_t port,
		      struct mig_error **errp)
{
	const struct rv_ops *ops = ep->fab->ops;
	struct rv_cm_event ev;
	int ret = ops->resolve_addr(ep->id, host, port, RDMA_CONN_TIMEOUT_MS);

	if (ret)
		return mig_error_setg_errno(errp, -ret,
					    "RDMA ERROR: could "
					    "not resolve address %s",
					    host);
	ret = ep_expect(ep, RV_CM_ADDR_RESOLVED, &ev, "resolving the address",
			RDMA_CONN_TIMEOUT_MS, errp);
	if (ret == -EIO)
		mig_error_setg(errp,
			       "RDMA ERROR: result not equal to "
			       "event_addr_resolved %s (could not resolve "
			       "%s to an RDMA device)",
			       rv_cm_event_str(ev.type), host);
	if (ret)
		return ret;
	ret = ops->resolve_route(ep->id, RDMA_CONN_TIMEOUT_MS);
	if (ret)
		return mig_error_setg_errno(errp, -ret,
					    "RDMA ERROR: could "
					    "not resolve rdma route");
	ret = ep_expect(ep, RV_CM_ROUTE_RESOLVED, &ev, "resolving the route",
			RDMA_CONN_TIMEOUT_MS, errp);
	if (ret == -EIO)
		mig_error_setg(errp,
			       "RDMA ERROR: result not equal to "
			       "event_route_resolved: %s (no route to %s)",
			       rv_cm_event_str(ev.type), host);
	return ret;
}

struct rdma_ep *rdma_ep_resolve(struct rv_fabric *fab, const char *host,
				uint16_t port, const struct rdma_ep_opts *o,
				struct mig_error **errp)
{
	const struct rv_ops *ops = fab->ops;
	struct rdma_ep *ep = ep_new(fab, errp);
	int err = 0;

	if (!ep)
		return NULL;
	if (o->has_conn_cancel)
		ep->conn_cancel_fd = o->conn_cancel_fd;
	ep->conn_timeout_ms =
		o->conn_timeout_ms ? o->conn_timeout_ms : RDMA_CONN_TIMEOUT_MS;
	ep->own_ech = true;
	ep->ech = ops->create_event_channel(fab, &err);
	if (!ep->ech) {
		rdma_event_channel_error("CM channel", err, errp);
		goto fail;
	}
	ep->id = ops->create_id(ep->ech, ep, &err);
	if (!ep->id) {
		mig_error_setg_errno(errp, err,
				     "RDMA ERROR: could not create "
				     "channel id");
		goto fail;
	}
	if (ep_resolve(ep, host, port, errp) || ep_verbs(ep, o, errp))
		goto fail;
	return ep;
fail:
	rdma_ep_free(ep);
	return NULL;
}

/* QEMU's connection parameters, both sides: initiator depth 2, retry 5,
 * RNR retry 0 (READY flow control and credits guarantee a posted receive,
 * so an RNR is a bug to fail on, not to wait out). */
static struct rv_conn_param ep_params(const void *pdata, uint8_t len)
{
	return (struct rv_conn_param){.private_data = pdata,
				      .private_data_len = len,
				      .responder_resources = 2,
				      .initiator_depth = 2,
				      .retry_count = 5,
				      .rnr_retry_count = 0};
}

int rdma_ep_connect(struct rdma_ep *ep, const void *pdata, uint8_t len,
		    struct rv_cm_event *est, struct mig_error **errp)
{
	struct rv_conn_param p = ep_params(pdata, len);
	int ret = ep->fab->ops->connect(ep->id, &p);

	if (ret)
		return mig_error_setg_errno(errp, -ret,
					    "RDMA ERROR: "
					    "connecting to destination!");
	ret = ep_expect(ep, RV_CM_ESTABLISHED, est, "connecting",
			ep->conn_timeout_ms, errp);
	if (ret == -EIO)
		mig_error_setg(errp,
			       "RDMA ERROR: connecting to destination!: "
			       "%s (status %d)%s",
			       rv_cm_event_str(est->type), est->status,
			       est->type == RV_CM_REJECTED
				       ? ": refused or rejected by the "
					 "destination"
				       : "");
	if (!ret)
		ep->connected = true;
	return ret;
}

struct rdma_ep *rdma_ep_from_request(struct rv_fabric *fab,
				     struct rv_event_channel *ech,
				     struct rv_cm_id *id,
				     const struct rdma_ep_opts *o,
				     struct mig_error **errp)
{
	struct rdma_ep *ep = ep_new(fab, errp);

	if (!ep)
		return NULL;
	ep->ech = ech;
	ep->id = id;
	fab->ops->set_id_context(id, ep);
	if (ep_verbs(ep, o, errp)) {
		ep->id = NULL; /* the caller rejects and destroys it */
		rdma_ep_free(ep);
		return NULL;
	}
	return ep;
}

int rdma_ep_accept_start(struct rdma_ep *ep, const void *pdata, uint8_t len,
			 struct mig_error **errp)
{
	struct rv_conn_param p = ep_params(pdata, len);
	int ret = ep->fab->ops->accept(ep->id, &p);

	if (ret)
		return mig_error_setg_errno(errp, -ret,
					    "RDMA ERROR: "
					    "rdma_accept failed");
	return 0;
}

int rdma_ep_accept_event(struct rdma_ep *ep, const struct rv_cm_event *ev,
			 struct mig_error **errp)
{
	if (ev->type != RV_CM_ESTABLISHED) {
		mig_error_setg(errp,
			       "RDMA ERROR: rdma_accept not event established "
			       "(%s)",
			       rv_cm_event_str(ev->type));
		return -ECONNABORTED;
	}
	ep->connected = true;
	return 0;
}

int rdma_ep_accept(struct rdma_ep *ep, const void *pdata, uint8_t len,
		   struct mig_error **errp)
{
	struct rv_cm_event ev;
	int ret = rdma_ep_accept_start(ep, pdata, len, errp);

	if (!ret)
		ret = ep_expect(ep, RV_CM_ESTABLISHED, &ev, "accepting",
				RDMA_CONN_TIMEOUT_MS, errp);
	if (ret == -EIO)
		return rdma_ep_accept_event(ep, &ev, errp);
	if (!ret)
		ep->connected = true;
	return ret;
}

void rdma_event_channel_error(const char *what, int err,
			      struct mig_error **errp)
{
	mig_error_setg(errp, "RDMA ERROR: could not create %s: %s%s", what,
		       strerror(err),
		       err == ENODEV || err == ENOSYS
			       ? " (no RDMA device on this host)"
			       : "");
}

void rdma_memlock_limit(char *buf, size_t len)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(buf, len, "%" PRIu64 " KiB",
			 (uint64_t)rl.rlim_cur / 1024);
	else
		snprintf(buf, len, "unlimited");
}

static void memlock_error(size_t len, int err, const char *what,
			  struct mig_error **errp)
{
	char lim[48];

	rdma_memlock_limit(lim, sizeof(lim));
	mig_error_setg(
		errp,
		"RDMA ERROR: cannot register %zu bytes of %s: %s. The "
		"locked-memory limit (RLIMIT_MEMLOCK) is %s: " RDMA_MEMLOCK_HINT
		"; rdma-pin-all locks the whole "
		"guest RAM",
		len, what, strerror(err), lim);
}

struct rv_mr *rdma_ep_reg(struct rdma_ep *ep, void *addr, size_t len,
			  int access, const char *what, struct mig_error **errp)
{
	struct rv_mr *mr;
	int err = 0;

	if (ep->nmrs == ep->cap_mrs) {
		size_t n = ep->cap_mrs ? ep->cap_mrs * 2 : 16;
		struct rv_mr **m = realloc(ep->mrs, n * sizeof(*m));

		if (!m) {
			mig_error_setg(errp, "Out of memory");
			return NULL;
		}
		ep->mrs = m;
		ep->cap_mrs = n;
	}
	mr = ep->fab->ops->reg_mr(ep->pd, addr, len, access, &err);
	if (!mr) {
		if (err == ENOMEM || err == EAGAIN || err == EPERM)
			memlock_error(len, err, what, errp);
		else
			mig_error_setg_errno(errp, err,
					     "RDMA ERROR: cannot "
					     "register %zu bytes of %s",
					     len, what);
		return NULL;
	}
	ep->mrs[ep->nmrs++] = mr;
	return mr;
}

void rdma_ep_kick(struct rdma_ep *ep)
{
	uint64_t one = 1;

	if (!ep || atomic_exchange(&ep->kicked, true))
		return;
	if (write(ep->cancel_fd, &one, sizeof(one)) < 0) {
		/* cannot fail: a fresh eventfd */
	}
	if (ep->qp)
		ep->fab->ops->modify_qp_state(ep->qp, RV_QPS_ERR);
}

bool rdma_ep_kicked(struct rdma_ep *ep)
{
	return atomic_load(&ep->kicked);
}

/* Acks CQ events nobody waited for (destroy_cq needs them acked). */
static void ep_drain_cq_events(struct rdma_ep *ep)
{
	const struct rv_ops *ops = ep->fab->ops;
	struct rv_cq *cq;

	while (ep->cc && ops->get_cq_event(ep->cc, &cq) == 0)
		ops->ack_cq_events(cq, 1);
}

void rdma_ep_free(struct rdma_ep *ep)
{
	const struct rv_ops *ops;

	if (!ep)
		return;
	ops = ep->fab->ops;
	if (ep->connected)
		ops->disconnect(ep->id);
	if (ep->qp)
		ops->destroy_qp(ep->qp);
	while (ep->nmrs)
		ops->dereg_mr(ep->mrs[--ep->nmrs]);
	free(ep->mrs);
	ep_drain_cq_events(ep);
	if (ep->cq)
		ops->destroy_cq(ep->cq);
	if (ep->cc)
		ops->destroy_comp_channel(ep->cc);
	if (ep->pd && !ep->pd_shared)
		ops->dealloc_pd(ep->pd);
	if (ep->id)
		ops->destroy_id(ep->id);
	if (ep->own_ech && ep->ech)
		ops->destroy_event_channel(ep->ech);
	close(ep->cancel_fd);
	free(ep);
}
