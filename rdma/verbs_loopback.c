/* verbs_loopback.c — the loopback fabric's frame and connection manager:
 * fabric lifetime, fault settings, event queues, cm ids and the CM event
 * sequence (rules 8 and 9 of verbs_loopback.h). The data path lives in
 * verbs_loopback_data.c. Any thread; everything under fab->lock. */
#include "rdma/loopback_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* IB CM reject reasons rdma_cm reports as the REJECTED status. */
#define LB_REJ_INVALID_SERVICE_ID 8
#define LB_REJ_CONSUMER_DEFINED 28

#define LB_FAB(f) ((struct lb_fabric *)(f))
#define LB_CH(p) ((struct lb_event_channel *)(p))
#define LB_ID(p) ((struct lb_id *)(p))

int64_t lb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- event queues ---------------------------------------------------- */

int lb_evq_init(struct lb_evq *q)
{
	q->head = q->tail = NULL;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return q->efd < 0 ? -errno : 0;
}

void lb_evq_fini(struct lb_evq *q)
{
	struct lb_evnode *n;

	while ((n = lb_evq_pop(q)))
		free(n);
	close(q->efd);
}

void lb_evq_push(struct lb_evq *q, struct lb_evnode *n)
{
	uint64_t one = 1;

	n->next = NULL;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* Cannot overflow: drained whenever the queue empties. */
	}
}

struct lb_evnode *lb_evq_pop(struct lb_evq *q)
{
	struct lb_evnode *n = q->head;
	uint64_t v;

	if (!n)
		return NULL;
	q->head = n->next;
	if (!q->head) {
		q->tail = NULL;
		if (read(q->efd, &v, sizeof(v)) < 0) {
			/* Already zero: nothing to drain. */
		}
	}
	return n;
}

/* Queues a CM event for id (lock held). Allocation failure drops the event,
 * which the waiter sees as a timeout: bounded either way. */
static void lb_cm_push(struct lb_id *id, enum rv_cm_event_type type, int status,
		       const void *data, size_t len, size_t pad)
{
	struct lb_evnode *n = calloc(1, sizeof(*n));

	if (!n)
		return;
	n->ev.type = type;
	n->ev.status = status;
	n->ev.id = (struct rv_cm_id *)id;
	if (type == RV_CM_CONNECT_REQUEST)
		n->ev.listen_id = (struct rv_cm_id *)id->listener;
	if (data && len)
		memcpy(n->ev.private_data, data, len);
	n->ev.private_data_len = (uint8_t)pad;
	lb_evq_push(&id->ch->q, n);
}

/* --- fabric ------------------------------------------------------------ */

static void lb_destroy(struct rv_fabric *f)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_destroy(&fab->lock);
	free(fab);
}

unsigned int rv_loop_live_objects(struct rv_fabric *f)
{
	struct lb_fabric *fab = LB_FAB(f);
	unsigned int n;

	pthread_mutex_lock(&fab->lock);
	n = fab->live;
	pthread_mutex_unlock(&fab->lock);
	return n;
}

void rv_loop_fail_post(struct rv_fabric *f, unsigned int nth, int err)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->fail_post_in = nth;
	fab->fail_post_err = err;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_fail_reg(struct rv_fabric *f, unsigned int nth, int err)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->fail_reg_in = nth;
	fab->fail_reg_err = err;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_refuse_port(struct rv_fabric *f, uint16_t port)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->refused_port = port;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_set_reg_delay(struct rv_fabric *f, int ms)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->reg_delay_ms = ms < 0 ? 0 : ms;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_set_accept_fault(struct rv_fabric *f, unsigned int nth,
			      enum rv_loop_accept_fault fault)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->accept_fault_in = nth;
	fab->accept_fault = fault;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_set_resolve_fault(struct rv_fabric *f,
			       enum rv_loop_resolve_fault fault)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->resolve_fault = fault;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_set_delay(struct rv_fabric *f, int delay_ms)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->delay_ms = delay_ms < 0 ? 0 : delay_ms;
	pthread_mutex_unlock(&fab->lock);
}

void rv_loop_set_rnr_delay(struct rv_fabric *f, int ms)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	fab->rnr_delay_ms = ms < 1 ? 1 : ms;
	pthread_mutex_unlock(&fab->lock);
}

static void lb_progress(struct rv_fabric *f)
{
	struct lb_fabric *fab = LB_FAB(f);

	pthread_mutex_lock(&fab->lock);
	lb_progress_locked(fab);
	pthread_mutex_unlock(&fab->lock);
}

/* --- event channels ------------------------------------------------------ */

static struct rv_event_channel *lb_create_event_channel(struct rv_fabric *f,
							int *err)
{
	struct lb_fabric *fab = LB_FAB(f);
	struct lb_event_channel *ch = calloc(1, sizeof(*ch));
	int ret;

	if (!ch) {
		*err = ENOMEM;
		return NULL;
	}
	ret = lb_evq_init(&ch->q);
	if (ret) {
		*err = -ret;
		free(ch);
		return NULL;
	}
	ch->fab = fab;
	pthread_mutex_lock(&fab->lock);
	fab->live++;
	pthread_mutex_unlock(&fab->lock);
	return (struct rv_event_channel *)ch;
}

static int lb_destroy_event_channel(struct rv_event_channel *c)
{
	struct lb_event_channel *ch = LB_CH(c);
	struct lb_fabric *fab = ch->fab;

	pthread_mutex_lock(&fab->lock);
	if (ch->nids) {
		pthread_mutex_unlock(&fab->lock);
		return -EBUSY;
	}
	fab->live--;
	lb_evq_fini(&ch->q);
	pthread_mutex_unlock(&fab->lock);
	free(ch);
	return 0;
}

static int lb_event_channel_fd(struct rv_event_channel *c)
{
	return LB_CH(c)->q.efd;
}

static int lb_get_cm_event(struct rv_event_channel *c, struct rv_cm_event *ev)
{
	struct lb_event_channel *ch = LB_CH(c);
	struct lb_evnode *n;

	pthread_mutex_lock(&ch->fab->lock);
	n = lb_evq_pop(&ch->q);
	pthread_mutex_unlock(&ch->fab->lock);
	if (!n)
		return -EAGAIN;
	*ev = n->ev;
	free(n);
	return 0;
}

/* --- cm ids -------------------------------------------------------------- */

static struct lb_id *lb_id_new(struct lb_event_channel *ch, void *context)
{
	struct lb_id *id = calloc(1, sizeof(*id));

	if (!id)
		return NULL;
	id->fab = ch->fab;
	id->ch = ch;
	id->context = context;
	id->next = ch->fab->ids;
	ch->fab->ids = id;
	ch->nids++;
	ch->fab->live++;
	return id;
}

static struct rv_cm_id *lb_create_id(struct rv_event_channel *c, void *context,
				     int *err)
{
	struct lb_event_channel *ch = LB_CH(c);
	struct lb_id *id;

	pthread_mutex_lock(&ch->fab->lock);
	id = lb_id_new(ch, context);
	pthread_mutex_unlock(&ch->fab->lock);
	if (!id)
		*err = ENOMEM;
	return (struct rv_cm_id *)id;
}

static void lb_id_unlink(struct lb_id *id)
{
	struct lb_id **pp;

	for (pp = &id->fab->ids; *pp; pp = &(*pp)->next) {
		if (*pp == id) {
			*pp = id->next;
			break;
		}
	}
}

/* Ends id's connection (lock held): both QPs flushed, DISCONNECTED to
 * both ids. first is the status of the survivor's in-flight send. */
static void lb_id_break(struct lb_id *id, enum rv_wc_status first)
{
	struct lb_id *peer = id->peer;

	if (id->qp)
		lb_qp_flush(id->qp, RV_WC_WR_FLUSH_ERR);
	if (peer && peer->qp)
		lb_qp_flush(peer->qp, first);
	if (id->qp)
		id->qp->peer = NULL;
	if (peer && peer->qp)
		peer->qp->peer = NULL;
	if (id->state == LB_ID_CONNECTED)
		lb_cm_push(id, RV_CM_DISCONNECTED, 0, NULL, 0, 0);
	if (peer && peer->state == LB_ID_CONNECTED) {
		lb_cm_push(peer, RV_CM_DISCONNECTED, 0, NULL, 0, 0);
		peer->state = LB_ID_DISCONNECTED;
	}
	if (peer)
		peer->peer = NULL;
	id->peer = NULL;
	id->state = LB_ID_DISCONNECTED;
}

/* A pending request disappears: the active side is rejected. */
static void lb_id_abandon(struct lb_id *id)
{
	struct lb_id *peer = id->peer;

	if (id->listener)
		id->listener->pending--;
	id->listener = NULL;
	if (!peer)
		return;
	lb_cm_push(peer, RV_CM_REJECTED, LB_REJ_CONSUMER_DEFINED, NULL, 0, 0);
	peer->state = LB_ID_REJECTED;
	peer->peer = NULL;
	id->peer = NULL;
}

static void lb_forget_listener(struct lb_fabric *fab, struct lb_id *l)
{
	for (struct lb_id *i = fab->ids; i; i = i->next)
		if (i->listener == l)
			i->listener = NULL;
}

static int lb_destroy_id(struct rv_cm_id *i)
{
	struct lb_id *id = LB_ID(i);
	struct lb_fabric *fab = id->fab;

	pthread_mutex_lock(&fab->lock);
	if (id->qp) {
		pthread_mutex_unlock(&fab->lock);
		return -EBUSY;
	}
	if (id->state == LB_ID_CONNECTED)
		lb_id_break(id, RV_WC_RETRY_EXC_ERR);
	else if (id->state == LB_ID_CONNECTING && id->passive)
		lb_id_abandon(id);
	else if (id->peer)
		lb_id_abandon(id->peer);
	if (id->state == LB_ID_LISTEN)
		lb_forget_listener(fab, id);
	lb_id_unlink(id);
	id->ch->nids--;
	fab->live--;
	pthread_mutex_unlock(&fab->lock);
	free(id);
	return 0;
}

static void *lb_id_context(struct rv_cm_id *i)
{
	return LB_ID(i)->context;
}

static void lb_set_id_context(struct rv_cm_id *i, void *context)
{
	LB_ID(i)->context = context;
}

static int lb_listen(struct rv_cm_id *i, const char *host, uint16_t port,
		     int backlog)
{
	struct lb_id *id = LB_ID(i);
	int ret = 0;

	pthread_mutex_lock(&id->fab->lock);
	for (struct lb_id *o = id->fab->ids; o; o = o->next)
		if (o->state == LB_ID_LISTEN && o->port == port)
			ret = -EADDRINUSE;
	if (!ret && id->state != LB_ID_IDLE)
		ret = -EINVAL;
	if (!ret) {
		snprintf(id->host, sizeof(id->host), "%s", host ? host : "");
		id->port = port;
		id->backlog = backlog > 0 ? backlog : 1;
		id->state = LB_ID_LISTEN;
	}
	pthread_mutex_unlock(&id->fab->lock);
	return ret;
}

static int lb_resolve_addr(struct rv_cm_id *i, const char *host, uint16_t port,
			   int timeout_ms)
{
	struct lb_id *id = LB_ID(i);
	struct lb_fabric *fab = id->fab;

	if (!host || !*host || strlen(host) >= sizeof(id->host))
		return -EINVAL;
	pthread_mutex_lock(&fab->lock);
	if (id->state != LB_ID_IDLE) {
		pthread_mutex_unlock(&fab->lock);
		return -EINVAL;
	}
	snprintf(id->host, sizeof(id->host), "%s", host);
	id->port = port;
	if (fab->resolve_fault == RV_LOOP_ADDR_ERROR) {
		lb_cm_push(id, RV_CM_ADDR_ERROR, -EHOSTUNREACH, NULL, 0, 0);
	} else {
		id->state = LB_ID_ADDR;
		lb_cm_push(id, RV_CM_ADDR_RESOLVED, 0, NULL, 0, 0);
	}
	pthread_mutex_unlock(&fab->lock);
	return 0;
}

static int lb_resolve_route(struct rv_cm_id *i, int timeout_ms)
{
	struct lb_id *id = LB_ID(i);
	struct lb_fabric *fab = id->fab;
	int ret = 0;

	pthread_mutex_lock(&fab->lock);
	if (id->state != LB_ID_ADDR)
		ret = -EINVAL;
	else if (fab->resolve_fault == RV_LOOP_ROUTE_ERROR)
		lb_cm_push(id, RV_CM_ROUTE_ERROR, -ETIMEDOUT, NULL, 0, 0);
	else {
		id->state = LB_ID_ROUTE;
		lb_cm_push(id, RV_CM_ROUTE_RESOLVED, 0, NULL, 0, 0);
	}
	pthread_mutex_unlock(&fab->lock);
	return ret;
}

static struct lb_id *lb_find_listener(struct lb_fabric *fab,
				      const struct lb_id *id)
{
	for (struct lb_id *l = fab->ids; l; l = l->next) {
		if (l->state != LB_ID_LISTEN || l->port != id->port)
			continue;
		if (!l->host[0] || !strcmp(l->host, "0.0.0.0") ||
		    !strcmp(l->host, id->host))
			return l;
	}
	return NULL;
}

/* Hands the request to the listener as a new passive id (lock held). */
static int lb_deliver_request(struct lb_id *id, struct lb_id *l,
			      const struct rv_conn_param *p)
{
	struct lb_id *child = lb_id_new(l->ch, l->context);

	if (!child)
		return -ENOMEM;
	child->passive = true;
	child->listener = l;
	child->state = LB_ID_CONNECTING;
	child->peer = id;
	snprintf(child->host, sizeof(child->host), "%s", id->host);
	child->port = id->port;
	l->pending++;
	id->peer = child;
	id->state = LB_ID_CONNECTING;
	lb_cm_push(child, RV_CM_CONNECT_REQUEST, 0, p->private_data,
		   p->private_data_len, RV_CONNECT_PRIVATE_MAX);
	return 0;
}

static int lb_connect(struct rv_cm_id *i, const struct rv_conn_param *p)
{
	struct lb_id *id = LB_ID(i);
	struct lb_fabric *fab = id->fab;
	struct lb_id *l;
	int ret = 0;

	if (p->private_data_len > RV_CONNECT_PRIVATE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&fab->lock);
	if (id->state != LB_ID_ROUTE || !id->qp) {
		ret = -EINVAL;
		goto out;
	}
	id->rnr_retry = p->rnr_retry_count;
	l = lb_find_listener(fab, id);
	if (fab->resolve_fault == RV_LOOP_UNREACHABLE) {
		lb_cm_push(id, RV_CM_UNREACHABLE, -ETIMEDOUT, NULL, 0, 0);
	} else if (!l || fab->refused_port == id->port ||
		   l->pending >= l->backlog) {
		id->state = LB_ID_REJECTED;
		lb_cm_push(id, RV_CM_REJECTED, LB_REJ_INVALID_SERVICE_ID, NULL,
			   0, 0);
	} else {
		ret = lb_deliver_request(id, l, p);
	}
out:
	pthread_mutex_unlock(&fab->lock);
	return ret;
}

/* Joins the two QPs and moves both to RTS (lock held). */
static void lb_establish(struct lb_id *child, struct lb_id *act)
{
	child->qp->peer = act->qp;
	act->qp->peer = child->qp;
	child->qp->rnr_retry = child->rnr_retry;
	act->qp->rnr_retry = act->rnr_retry;
	child->qp->state = RV_QPS_RTS;
	act->qp->state = RV_QPS_RTS;
	child->state = LB_ID_CONNECTED;
	act->state = LB_ID_CONNECTED;
	if (child->listener)
		child->listener->pending--;
	child->listener = NULL;
}

/* An accept the active side never completes (lock held): silent, or it
 * vanished (the passive id gets CONNECT_ERROR, the active one REJECTED). */
static void lb_accept_fault(struct lb_id *id, enum rv_loop_accept_fault f)
{
	if (f != RV_LOOP_ACCEPT_LOST)
		return;
	lb_id_abandon(id);
	id->state = LB_ID_DISCONNECTED;
	lb_cm_push(id, RV_CM_CONNECT_ERROR, -ETIMEDOUT, NULL, 0, 0);
}

static int lb_accept(struct rv_cm_id *i, const struct rv_conn_param *p)
{
	struct lb_id *id = LB_ID(i);
	struct lb_fabric *fab = id->fab;
	struct lb_id *act;
	int ret = 0;

	if (p->private_data_len > RV_ACCEPT_PRIVATE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&fab->lock);
	act = id->peer;
	if (!id->passive || id->state != LB_ID_CONNECTING || !id->qp) {
		ret = -EINVAL;
	} else if (!act) {
		ret = -ECONNRESET;
	} else if (fab->accept_fault_in && --fab->accept_fault_in == 0 &&
		   fab->accept_fault != RV_LOOP_ACCEPT_OK) {
		lb_accept_fault(id, fab->accept_fault);
	} else {
		id->rnr_retry = p->rnr_retry_count;
		lb_establish(id, act);
		lb_cm_push(id, RV_CM_ESTABLISHED, 0, NULL, 0, 0);
		lb_cm_push(act, RV_CM_ESTABLISHED, 0, p->private_data,
			   p->private_data_len, RV_ACCEPT_PRIVATE_MAX);
	}
	pthread_mutex_unlock(&fab->lock);
	return ret;
}

static int lb_reject(struct rv_cm_id *i, const void *data, uint8_t len)
{
	struct lb_id *id = LB_ID(i);
	struct lb_fabric *fab = id->fab;
	struct lb_id *act;
	int ret = 0;

	if (len > RV_REJECT_PRIVATE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&fab->lock);
	act = id->peer;
	if (!id->passive || id->state != LB_ID_CONNECTING) {
		ret = -EINVAL;
	} else {
		if (act) {
			lb_cm_push(act, RV_CM_REJECTED, LB_REJ_CONSUMER_DEFINED,
				   data, len, len);
			act->state = LB_ID_REJECTED;
			act->peer = NULL;
		}
		if (id->listener)
			id->listener->pending--;
		id->listener = NULL;
		id->peer = NULL;
		id->state = LB_ID_DISCONNECTED;
	}
	pthread_mutex_unlock(&fab->lock);
	return ret;
}

static int lb_disconnect(struct rv_cm_id *i)
{
	struct lb_id *id = LB_ID(i);
	int ret = 0;

	pthread_mutex_lock(&id->fab->lock);
	if (id->state == LB_ID_CONNECTED)
		lb_id_break(id, RV_WC_WR_FLUSH_ERR);
	else if (id->state != LB_ID_DISCONNECTED)
		ret = -EINVAL;
	pthread_mutex_unlock(&id->fab->lock);
	return ret;
}

int rv_loop_kill(struct rv_fabric *f, struct rv_qp *q)
{
	struct lb_qp *qp = (struct lb_qp *)q;
	struct lb_fabric *fab = LB_FAB(f);
	int ret = 0;

	pthread_mutex_lock(&fab->lock);
	if (!qp->peer || !qp->id->peer)
		ret = -ENOTCONN;
	else
		lb_id_break(qp->id, RV_WC_RETRY_EXC_ERR);
	pthread_mutex_unlock(&fab->lock);
	return ret;
}

/* --- the ops table ------------------------------------------------------- */

static const struct rv_ops lb_ops = {
	.name = "loopback",
	.destroy = lb_destroy,
	.create_event_channel = lb_create_event_channel,
	.destroy_event_channel = lb_destroy_event_channel,
	.event_channel_fd = lb_event_channel_fd,
	.get_cm_event = lb_get_cm_event,
	.create_id = lb_create_id,
	.destroy_id = lb_destroy_id,
	.id_context = lb_id_context,
	.set_id_context = lb_set_id_context,
	.listen = lb_listen,
	.resolve_addr = lb_resolve_addr,
	.resolve_route = lb_resolve_route,
	.connect = lb_connect,
	.accept = lb_accept,
	.reject = lb_reject,
	.disconnect = lb_disconnect,
	.alloc_pd = lb_alloc_pd,
	.dealloc_pd = lb_dealloc_pd,
	.reg_mr = lb_reg_mr,
	.dereg_mr = lb_dereg_mr,
	.create_comp_channel = lb_create_comp_channel,
	.destroy_comp_channel = lb_destroy_comp_channel,
	.comp_channel_fd = lb_comp_channel_fd,
	.create_cq = lb_create_cq,
	.destroy_cq = lb_destroy_cq,
	.req_notify_cq = lb_req_notify_cq,
	.get_cq_event = lb_get_cq_event,
	.ack_cq_events = lb_ack_cq_events,
	.create_qp = lb_create_qp,
	.destroy_qp = lb_destroy_qp,
	.modify_qp_state = lb_modify_qp_state,
	.post_send = lb_post_send,
	.post_recv = lb_post_recv,
	.poll_cq = lb_poll_cq,
	.progress = lb_progress,
};

struct rv_fabric *rv_loop_create(void)
{
	struct lb_fabric *fab = calloc(1, sizeof(*fab));

	if (!fab)
		return NULL;
	if (pthread_mutex_init(&fab->lock, NULL)) {
		free(fab);
		return NULL;
	}
	fab->base.ops = &lb_ops;
	fab->next_key = 0x1000;
	fab->rnr_delay_ms = 1;
	return &fab->base;
}
