/* rdma_listen.c — the destination's rdma: listener (rdma_chan.h): listen,
 * CONNECT_REQUEST with the capabilities check (QEMU's "Unknown source RDMA
 * version"), accept of the first request, rejection of the others, and
 * disconnects of the accepted connection. With multifd over RDMA enabled
 * (migd <-> migd, rdma_mfd.h) the first request must carry migd's bit and
 * multifd channel requests are accepted into the listener's set.
 * Accepts never block: each accepted id is pending until its own CM event
 * (ESTABLISHED hands the channel out; anything else, or no event within
 * the accept timeout, fails it), so requests arriving together are all
 * served and the control loop never waits; multifd accepts are owed until
 * the set's worker has pinned guest RAM (polled, rdma_mfd.h). The event
 * channel is shared with the accepted ids, so it is reference counted: it
 * goes when the listener and every channel are gone. Control thread (the
 * last unref may come from a channel's close). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdma/rdma_chan_priv.h"
#include "rdma/rdma_mfd.h"
#include "socket/channel.h"
#include "util/evloop.h"
#include "util/log.h"

/* How often accepts owed to a registration in progress are retried. */
#define RL_RESUME_POLL_MS 20

/* An accepted connection not handed out yet: waiting for its CM event
 * until deadline_ms, or (ready) a multifd channel established before the
 * main channel was handed out (it must follow the main one). */
struct rl_pending {
	struct rv_cm_id *id;
	struct channel *ch;
	bool main, ready;
	bool owed; /* a multifd accept waiting for guest RAM's registration */
	uint64_t deadline_ms;
	struct rl_pending *next;
};

struct rdma_listener {
	struct rv_fabric *fab;
	struct rv_event_channel *ech;
	struct rv_cm_id *lid;
	struct rv_cm_id *accepted_id; /* the main connection's id */
	struct rdma_chan *accepted;   /* its channel until closed */
	bool main_out;		      /* the main channel was handed out */
	struct rl_pending *pending;
	int accept_timeout_ms;
	atomic_int refs;
	/* multifd over RDMA (rdma_mfd.h): a reference, NULL when off */
	struct rdma_mfd_set *mfd;
};

void rdma_listener_ref(struct rdma_listener *l)
{
	atomic_fetch_add(&l->refs, 1);
}

void rdma_listener_chan_gone(struct rdma_listener *l)
{
	l->accepted = NULL;
	rdma_listener_unref(l);
}

void rdma_listener_unref(struct rdma_listener *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	if (l->lid)
		l->fab->ops->destroy_id(l->lid);
	if (l->ech)
		l->fab->ops->destroy_event_channel(l->ech);
	rdma_mfd_set_unref(l->mfd); /* after every channel's QP */
	free(l);
}

static void refuse(struct rdma_listener *l, struct rv_cm_id *id);

int rdma_listener_enable_mfd(struct rdma_listener *l, const struct guest *g)
{
	if (!l->mfd)
		l->mfd = rdma_mfd_set_new(l->fab, g);
	return l->mfd ? 0 : -ENOMEM;
}

struct rdma_mfd_set *rdma_listener_mfd(struct rdma_listener *l)
{
	return l ? l->mfd : NULL;
}

/* ---- pending connections ----------------------------------------------- */

static int pending_add(struct rdma_listener *l, struct rv_cm_id *id,
		       struct channel *ch, bool main, struct mig_error **errp)
{
	struct rl_pending *p = calloc(1, sizeof(*p));

	if (!p) {
		chan_close(ch);
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	p->id = id;
	p->ch = ch;
	p->main = main;
	p->deadline_ms = ev_now_ms() + (uint64_t)l->accept_timeout_ms;
	p->next = l->pending;
	l->pending = p;
	return 0;
}

static struct rl_pending *pending_find(struct rdma_listener *l,
				       const struct rv_cm_id *id)
{
	struct rl_pending *p = l->pending;

	while (p && p->id != id)
		p = p->next;
	return p;
}

/* Unlinks p and returns its channel. */
static struct channel *pending_take(struct rdma_listener *l,
				    struct rl_pending *p)
{
	struct rl_pending **pp = &l->pending;
	struct channel *ch = p->ch;

	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	free(p);
	return ch;
}

/* The oldest multifd channel that waited for the main one, or NULL. */
static struct channel *pending_take_ready(struct rdma_listener *l)
{
	struct rl_pending *p, *found = NULL;

	for (p = l->pending; p; p = p->next)
		if (p->ready)
			found = p; /* the list is newest first */
	return found ? pending_take(l, found) : NULL;
}

/* ---- requests ------------------------------------------------------------ */

/* Multifd accepts owed while guest RAM was being pinned: sent once it is
 * (the whole set's registration: all or none are ready). */
static int pending_resume(struct rdma_listener *l, struct mig_error **errp)
{
	for (struct rl_pending *p = l->pending; p; p = p->next) {
		int ret;

		if (!p->owed)
			continue;
		ret = rdma_mfd_accept_resume(p->ch, errp);
		if (ret == 0)
			return 0; /* still pinning */
		if (ret < 0) {
			chan_close(pending_take(l, p));
			return ret;
		}
		p->owed = false;
		p->deadline_ms = ev_now_ms() + (uint64_t)l->accept_timeout_ms;
	}
	return 0;
}

/* A multifd channel's connection (multifd over RDMA, migd <-> migd). */
static int on_mfd_request(struct rdma_listener *l, const struct rv_cm_event *ev,
			  struct mig_error **errp)
{
	struct channel *ch;
	int ret;

	if (!l->mfd || !l->accepted_id || !l->lid) {
		log_warn("rdma: refusing a multifd channel (multifd is off "
			 "or no main connection)");
		refuse(l, ev->id);
		return 0;
	}
	ch = rdma_mfd_accept(l->mfd, l, l->ech, ev, errp);
	if (!ch)
		return -ECONNABORTED;
	ret = pending_add(l, ev->id, ch, false, errp);
	if (!ret)
		l->pending->owed = true; /* pending_resume() sends it */
	return ret ? ret : pending_resume(l, errp);
}

struct rdma_listener *rdma_listener_open(struct rv_fabric *fab,
					 const char *host, uint16_t port,
					 struct mig_error **errp)
{
	struct rdma_listener *l = calloc(1, sizeof(*l));
	int err = 0, ret;

	if (!l) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	l->fab = fab;
	l->accept_timeout_ms = RDMA_CONN_TIMEOUT_MS;
	atomic_init(&l->refs, 1);
	l->ech = fab->ops->create_event_channel(fab, &err);
	if (!l->ech) {
		rdma_event_channel_error("rdma event channel", err, errp);
		goto fail;
	}
	l->lid = fab->ops->create_id(l->ech, l, &err);
	if (!l->lid) {
		mig_error_setg_errno(errp, err,
				     "RDMA ERROR: could not create "
				     "listen_id");
		goto fail;
	}
	ret = fab->ops->listen(l->lid, host, port, 5);
	if (ret) {
		mig_error_setg_errno(errp, -ret,
				     "RDMA ERROR: listening on "
				     "socket!");
		goto fail;
	}
	return l;
fail:
	rdma_listener_unref(l);
	return NULL;
}

int rdma_listener_fd(struct rdma_listener *l)
{
	return l->fab->ops->event_channel_fd(l->ech);
}

static void refuse(struct rdma_listener *l, struct rv_cm_id *id)
{
	l->fab->ops->reject(id, NULL, 0);
	l->fab->ops->destroy_id(id);
}

static int on_request(struct rdma_listener *l, const struct rv_cm_event *ev,
		      struct mig_error **errp)
{
	uint32_t mfd =
		rdma_mfd_connect_flags(ev->private_data, ev->private_data_len);
	struct rproto_caps caps;
	struct channel *ch;
	int ret;

	if (mfd & RMFD_CAP_CHANNEL)
		return on_mfd_request(l, ev, errp);
	if (l->mfd && !(mfd & RMFD_CAP_MAIN) && !l->accepted_id && l->lid) {
		/* multifd on here, and a source that cannot (QEMU) */
		refuse(l, ev->id);
		mig_error_setg(errp, RMFD_QEMU_REFUSAL);
		return -EINVAL;
	}
	if (l->accepted_id || !l->lid) {
		log_warn("rdma: refusing a second connection request");
		refuse(l, ev->id);
		return 0;
	}
	ret = rproto_caps_decode(ev->private_data, ev->private_data_len, &caps,
				 errp);
	if (ret) {
		refuse(l, ev->id);
		return ret;
	}
	if (l->mfd)
		caps.flags |= RMFD_CAP_MAIN; /* echoed: multifd on both sides */
	ch = rdma_chan_accept(l->fab, l->ech, ev->id, &caps, "rdma", errp);
	if (!ch)
		return -ECONNABORTED;
	l->accepted_id = ev->id;
	l->accepted = ch->priv;
	l->accepted->listener = l;
	rdma_listener_ref(l);
	return pending_add(l, ev->id, ch, true, errp);
}

/* ---- events -------------------------------------------------------------- */

/* A pending connection's CM event: ESTABLISHED hands it out (a multifd
 * channel only after the main one), anything else fails it. */
static int on_pending_event(struct rdma_listener *l, struct rl_pending *p,
			    const struct rv_cm_event *ev, struct channel **out,
			    struct mig_error **errp)
{
	int ret;

	if (p->ready) { /* established: a DISCONNECTED flushes its QP */
		rdma_mfd_cm_event(l->mfd, ev);
		return 0;
	}
	ret = p->main ? rdma_chan_accept_event(p->ch, ev, errp)
		      : rdma_mfd_accept_event(p->ch, ev, errp);
	if (ret) {
		chan_close(pending_take(l, p));
		return ret;
	}
	if (!p->main && !l->main_out) {
		p->ready = true;
		return 0;
	}
	l->main_out = l->main_out || p->main;
	*out = pending_take(l, p);
	return 1;
}

/* The handed-out main connection's events. */
static void on_main_event(struct rdma_listener *l, const struct rv_cm_event *ev)
{
	if (ev->id != l->accepted_id || !l->accepted)
		return;
	if (ev->type == RV_CM_DISCONNECTED ||
	    ev->type == RV_CM_DEVICE_REMOVAL) {
		/* Flush what waits: the load thread sees it. */
		atomic_store(&l->accepted->peer_gone, true);
		l->fab->ops->modify_qp_state(l->accepted->ep->qp, RV_QPS_ERR);
	}
}

static int on_event(struct rdma_listener *l, const struct rv_cm_event *ev,
		    struct channel **out, struct mig_error **errp)
{
	struct rl_pending *p;

	if (ev->type == RV_CM_CONNECT_REQUEST)
		return on_request(l, ev, errp);
	p = pending_find(l, ev->id);
	if (p)
		return on_pending_event(l, p, ev, out, errp);
	if (!rdma_mfd_cm_event(l->mfd, ev)) /* else a multifd channel's */
		on_main_event(l, ev);
	return 0;
}

int rdma_listener_handle(struct rdma_listener *l, struct channel **out,
			 struct mig_error **errp)
{
	struct rv_cm_event ev;
	int ret;

	*out = l->main_out ? pending_take_ready(l) : NULL;
	if (*out)
		return 1;
	ret = pending_resume(l, errp);
	if (ret)
		return ret;
	while (l->fab->ops->get_cm_event(l->ech, &ev) == 0) {
		ret = on_event(l, &ev, out, errp);
		if (ret)
			return ret;
	}
	return 0;
}

int rdma_listener_next_timeout(struct rdma_listener *l)
{
	uint64_t now = ev_now_ms(), first = UINT64_MAX;

	for (struct rl_pending *p = l->pending; p; p = p->next) {
		uint64_t when =
			p->owed ? now + RL_RESUME_POLL_MS : p->deadline_ms;

		if (!p->ready && when < first)
			first = when;
	}
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now);
}

int rdma_listener_expire(struct rdma_listener *l, struct mig_error **errp)
{
	uint64_t now = ev_now_ms();

	for (struct rl_pending *p = l->pending; p; p = p->next) {
		if (p->ready || p->owed || p->deadline_ms > now)
			continue;
		chan_close(pending_take(l, p));
		mig_error_setg(errp,
			       "RDMA ERROR: no event while accepting: the "
			       "source did not complete the connection within "
			       "%d ms",
			       l->accept_timeout_ms);
		return -ETIMEDOUT;
	}
	return 0;
}

void rdma_listener_set_accept_timeout(struct rdma_listener *l, int ms)
{
	l->accept_timeout_ms = ms;
}

void rdma_listener_free(struct rdma_listener *l)
{
	struct rv_cm_event ev;

	if (!l)
		return;
	/* A request still queued (a source that gave up, or one that came
	 * after migrate-incoming was cancelled) has its own id: refuse it,
	 * or the event channel could never be destroyed. */
	while (l->fab->ops->get_cm_event(l->ech, &ev) == 0)
		if (ev.type == RV_CM_CONNECT_REQUEST)
			refuse(l, ev.id);
	while (l->pending) /* accepted, never handed out */
		chan_close(pending_take(l, l->pending));
	if (l->lid)
		l->fab->ops->destroy_id(l->lid);
	l->lid = NULL;
	l->accepted = NULL; /* its events are nobody's now */
	rdma_listener_unref(l);
}
