/* rdma_testutil.h — helpers for the rdma unit tests: a connected pair of RC
 * endpoints on the loopback fabric, built and torn down the way the
 * transport does it. Test thread only. */
#ifndef MIGD_TESTS_RDMA_TESTUTIL_H
#define MIGD_TESTS_RDMA_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "rdma/verbs.h"
#include "rdma/verbs_loopback.h"

#define RT_PORT 4444

struct rt_ep {
	struct rv_event_channel *ch;
	struct rv_cm_id *id;
	struct rv_pd *pd;
	struct rv_comp_channel *cc;
	struct rv_cq *cq;
	struct rv_qp *qp;
};

struct rt_pair {
	struct rv_fabric *fab;
	struct rv_event_channel *lch;
	struct rv_cm_id *lid;
	struct rt_ep cli, srv;
	struct rv_cm_event req; /* what the server got */
	struct rv_cm_event est; /* what the client got */
};

static inline void rt_expect_event(struct rv_fabric *fab,
				   struct rv_event_channel *ch,
				   enum rv_cm_event_type type,
				   struct rv_cm_event *ev)
{
	struct rv_cm_event tmp;

	if (!ev)
		ev = &tmp;
	assert_int_equal(rv_wait_cm_event(fab, ch, ev, -1, 1000), 0);
	assert_string_equal(rv_cm_event_str(ev->type), rv_cm_event_str(type));
}

static inline void rt_ep_verbs(struct rv_fabric *fab, struct rt_ep *ep,
			       uint32_t sq, uint32_t rq, int cqe)
{
	const struct rv_ops *o = fab->ops;
	struct rv_qp_init_attr a = {.max_send_wr = sq,
				    .max_recv_wr = rq,
				    .max_send_sge = 1,
				    .max_recv_sge = 1};
	int err = 0;

	ep->pd = o->alloc_pd(ep->id, &err);
	assert_non_null(ep->pd);
	ep->cc = o->create_comp_channel(ep->id, &err);
	assert_non_null(ep->cc);
	ep->cq = o->create_cq(ep->id, cqe, ep->cc, &err);
	assert_non_null(ep->cq);
	a.send_cq = a.recv_cq = ep->cq;
	ep->qp = o->create_qp(ep->id, ep->pd, &a, &err);
	assert_non_null(ep->qp);
}

/* Resolves the client up to ROUTE_RESOLVED and listens. */
static inline void rt_pair_prepare(struct rt_pair *p)
{
	const struct rv_ops *o;
	int err = 0;

	memset(p, 0, sizeof(*p));
	p->fab = rv_loop_create();
	assert_non_null(p->fab);
	o = p->fab->ops;
	p->lch = o->create_event_channel(p->fab, &err);
	p->lid = o->create_id(p->lch, NULL, &err);
	assert_int_equal(o->listen(p->lid, "192.0.2.1", RT_PORT, 4), 0);
	p->cli.ch = o->create_event_channel(p->fab, &err);
	p->cli.id = o->create_id(p->cli.ch, NULL, &err);
	assert_int_equal(o->resolve_addr(p->cli.id, "192.0.2.1", RT_PORT, 100),
			 0);
	rt_expect_event(p->fab, p->cli.ch, RV_CM_ADDR_RESOLVED, NULL);
	assert_int_equal(o->resolve_route(p->cli.id, 100), 0);
	rt_expect_event(p->fab, p->cli.ch, RV_CM_ROUTE_RESOLVED, NULL);
}

static inline void rt_pair_connect(struct rt_pair *p, uint32_t sq, uint32_t rq,
				   int cqe, uint8_t rnr)
{
	const struct rv_ops *o;
	uint8_t caps[8] = {0, 0, 0, 1, 0, 0, 0, 1};
	struct rv_conn_param cp = {.private_data = caps,
				   .private_data_len = sizeof(caps),
				   .rnr_retry_count = rnr};

	rt_pair_prepare(p);
	o = p->fab->ops;
	rt_ep_verbs(p->fab, &p->cli, sq, rq, cqe);
	assert_int_equal(o->connect(p->cli.id, &cp), 0);
	rt_expect_event(p->fab, p->lch, RV_CM_CONNECT_REQUEST, &p->req);
	p->srv.ch = p->lch;
	p->srv.id = p->req.id;
	rt_ep_verbs(p->fab, &p->srv, sq, rq, cqe);
	assert_int_equal(o->accept(p->srv.id, &cp), 0);
	rt_expect_event(p->fab, p->lch, RV_CM_ESTABLISHED, NULL);
	rt_expect_event(p->fab, p->cli.ch, RV_CM_ESTABLISHED, &p->est);
}

static inline void rt_ep_free_verbs(struct rv_fabric *fab, struct rt_ep *ep)
{
	const struct rv_ops *o = fab->ops;

	if (ep->qp)
		assert_int_equal(o->destroy_qp(ep->qp), 0);
	if (ep->cq)
		assert_int_equal(o->destroy_cq(ep->cq), 0);
	if (ep->cc)
		assert_int_equal(o->destroy_comp_channel(ep->cc), 0);
	if (ep->pd)
		assert_int_equal(o->dealloc_pd(ep->pd), 0);
	ep->qp = NULL;
	ep->cq = NULL;
	ep->cc = NULL;
	ep->pd = NULL;
}

/* Frees everything and checks nothing was left behind. */
static inline void rt_pair_free(struct rt_pair *p)
{
	const struct rv_ops *o = p->fab->ops;

	rt_ep_free_verbs(p->fab, &p->cli);
	rt_ep_free_verbs(p->fab, &p->srv);
	if (p->srv.id)
		assert_int_equal(o->destroy_id(p->srv.id), 0);
	assert_int_equal(o->destroy_id(p->cli.id), 0);
	assert_int_equal(o->destroy_id(p->lid), 0);
	assert_int_equal(o->destroy_event_channel(p->cli.ch), 0);
	assert_int_equal(o->destroy_event_channel(p->lch), 0);
	assert_int_equal(rv_loop_live_objects(p->fab), 0);
	rv_fabric_destroy(p->fab);
}

#endif
