/* test_rdma_loopback.c — the loopback fabric (rdma/verbs_loopback.h) keeps
 * the verbs rules the rdma: transport relies on: CM sequence and private
 * data, rkey/bounds/access checks, RNR, send-queue accounting, ordering,
 * CQ overflow, teardown order, faults, and blocking waits across threads. */
#include "tests/unit/rdma_testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct rt_buf {
	uint8_t data[8192];
	struct rv_mr *mr;
};

static void rt_reg(struct rv_fabric *fab, struct rv_pd *pd, struct rt_buf *b,
		   int access)
{
	int err = 0;

	b->mr = fab->ops->reg_mr(pd, b->data, sizeof(b->data), access, &err);
	assert_non_null(b->mr);
}

static int rt_post_recv(struct rv_fabric *fab, struct rv_qp *qp,
			struct rt_buf *b, uint32_t len, uint64_t id)
{
	struct rv_sge sge = {(uintptr_t)b->data, len, b->mr->lkey};
	struct rv_recv_wr wr = {.wr_id = id, .sg_list = &sge, .num_sge = 1};

	return fab->ops->post_recv(qp, &wr);
}

static int rt_post(struct rv_fabric *fab, struct rv_qp *qp,
		   enum rv_wr_opcode op, struct rt_buf *b, uint32_t len,
		   uint64_t raddr, uint32_t rkey, bool signaled, uint64_t id)
{
	struct rv_sge sge = {(uintptr_t)b->data, len, b->mr->lkey};
	struct rv_send_wr wr = {.wr_id = id,
				.opcode = op,
				.sg_list = &sge,
				.num_sge = 1,
				.signaled = signaled,
				.remote_addr = raddr,
				.rkey = rkey,
				.imm_data = 0xabcd};

	return fab->ops->post_send(qp, &wr);
}

static void rt_poll1(struct rv_fabric *fab, struct rt_ep *ep, struct rv_wc *wc)
{
	assert_int_equal(rv_wait_wc(fab, ep->cc, ep->cq, wc, -1, 1000), 1);
}

static void rt_free_buf(struct rv_fabric *fab, struct rt_buf *b)
{
	assert_int_equal(fab->ops->dereg_mr(b->mr), 0);
}

/* --- connection manager ---------------------------------------------- */

static void test_cm_sequence_private_data(void **state)
{
	struct rt_pair p;

	rt_pair_connect(&p, 8, 8, 64, 0);
	assert_int_equal(p.req.private_data_len, RV_CONNECT_PRIVATE_MAX);
	assert_int_equal(p.req.private_data[3], 1);
	assert_int_equal(p.req.private_data[7], 1);
	assert_int_equal(p.req.private_data[8], 0); /* zero padding */
	assert_ptr_equal(p.req.listen_id, p.lid);
	assert_int_equal(p.est.private_data_len, RV_ACCEPT_PRIVATE_MAX);
	/* disconnect: DISCONNECTED on both sides */
	assert_int_equal(p.fab->ops->disconnect(p.cli.id), 0);
	rt_expect_event(p.fab, p.cli.ch, RV_CM_DISCONNECTED, NULL);
	rt_expect_event(p.fab, p.lch, RV_CM_DISCONNECTED, NULL);
	rt_pair_free(&p);
}

static void test_cm_private_data_limits(void **state)
{
	uint8_t big[200] = {0};
	struct rv_conn_param cp = {.private_data = big, .private_data_len = 57};
	struct rt_pair p;

	rt_pair_prepare(&p);
	rt_ep_verbs(p.fab, &p.cli, 4, 4, 16);
	assert_int_equal(p.fab->ops->connect(p.cli.id, &cp), -EINVAL);
	cp.private_data_len = 56;
	assert_int_equal(p.fab->ops->connect(p.cli.id, &cp), 0);
	rt_expect_event(p.fab, p.lch, RV_CM_CONNECT_REQUEST, &p.req);
	p.srv.id = p.req.id;
	rt_ep_verbs(p.fab, &p.srv, 4, 4, 16);
	cp.private_data_len = 197;
	assert_int_equal(p.fab->ops->accept(p.srv.id, &cp), -EINVAL);
	assert_int_equal(p.fab->ops->reject(p.srv.id, big, 149), -EINVAL);
	big[0] = 0x42;
	assert_int_equal(p.fab->ops->reject(p.srv.id, big, 4), 0);
	rt_expect_event(p.fab, p.cli.ch, RV_CM_REJECTED, &p.est);
	assert_int_equal(p.est.status, 28);
	assert_int_equal(p.est.private_data_len, 4);
	assert_int_equal(p.est.private_data[0], 0x42);
	rt_pair_free(&p);
}

static void rt_connect_fails(void (*setup)(struct rt_pair *),
			     enum rv_cm_event_type expect, int status)
{
	struct rv_conn_param cp = {0};
	struct rv_cm_event ev;
	struct rt_pair p;

	rt_pair_prepare(&p);
	setup(&p);
	rt_ep_verbs(p.fab, &p.cli, 4, 4, 16);
	assert_int_equal(p.fab->ops->connect(p.cli.id, &cp), 0);
	rt_expect_event(p.fab, p.cli.ch, expect, &ev);
	assert_int_equal(ev.status, status);
	rt_pair_free(&p);
}

static void rt_refuse(struct rt_pair *p)
{
	rv_loop_refuse_port(p->fab, RT_PORT);
}

static void rt_unreachable(struct rt_pair *p)
{
	rv_loop_set_resolve_fault(p->fab, RV_LOOP_UNREACHABLE);
}

static void rt_no_listener(struct rt_pair *p)
{
	assert_int_equal(p->fab->ops->destroy_id(p->lid), 0);
	p->lid = p->fab->ops->create_id(p->lch, NULL, &(int){0});
}

static void test_cm_refused_unreachable(void **state)
{
	rt_connect_fails(rt_refuse, RV_CM_REJECTED, 8);
	rt_connect_fails(rt_unreachable, RV_CM_UNREACHABLE, -ETIMEDOUT);
	rt_connect_fails(rt_no_listener, RV_CM_REJECTED, 8);
}

static void test_cm_resolve_errors(void **state)
{
	struct rv_fabric *fab = rv_loop_create();
	const struct rv_ops *o = fab->ops;
	struct rv_event_channel *ch = o->create_event_channel(fab, &(int){0});
	struct rv_cm_id *id = o->create_id(ch, NULL, &(int){0});
	struct rv_cm_event ev;

	assert_int_equal(o->resolve_addr(id, "", 1, 10), -EINVAL);
	rv_loop_set_resolve_fault(fab, RV_LOOP_ADDR_ERROR);
	assert_int_equal(o->resolve_addr(id, "host", 1, 10), 0);
	rt_expect_event(fab, ch, RV_CM_ADDR_ERROR, &ev);
	assert_int_equal(ev.status, -EHOSTUNREACH);
	/* no device before an address: PD allocation fails */
	assert_null(o->alloc_pd(id, &(int){0}));
	assert_int_equal(o->destroy_id(id), 0);
	id = o->create_id(ch, NULL, &(int){0});
	rv_loop_set_resolve_fault(fab, RV_LOOP_ROUTE_ERROR);
	assert_int_equal(o->resolve_addr(id, "host", 1, 10), 0);
	rt_expect_event(fab, ch, RV_CM_ADDR_RESOLVED, NULL);
	assert_int_equal(o->resolve_route(id, 10), 0);
	rt_expect_event(fab, ch, RV_CM_ROUTE_ERROR, NULL);
	/* nothing more arrives: the wait is bounded */
	assert_int_equal(rv_wait_cm_event(fab, ch, &ev, -1, 20), -ETIMEDOUT);
	assert_int_equal(o->destroy_event_channel(ch), -EBUSY);
	assert_int_equal(o->destroy_id(id), 0);
	assert_int_equal(o->destroy_event_channel(ch), 0);
	assert_int_equal(rv_loop_live_objects(fab), 0);
	rv_fabric_destroy(fab);
}

/* --- RDMA WRITE ---------------------------------------------------------- */

static void test_write_checks(void **state)
{
	struct rt_buf *src = calloc(1, sizeof(*src));
	struct rt_buf *dst = calloc(1, sizeof(*dst));
	struct rt_buf *ro = calloc(1, sizeof(*ro));
	struct rt_pair p;
	struct rv_wc wc;
	uint64_t d;

	rt_pair_connect(&p, 8, 8, 64, 0);
	rt_reg(p.fab, p.cli.pd, src, 0);
	rt_reg(p.fab, p.srv.pd, dst,
	       RV_ACCESS_LOCAL_WRITE | RV_ACCESS_REMOTE_WRITE);
	rt_reg(p.fab, p.srv.pd, ro, RV_ACCESS_LOCAL_WRITE);
	d = (uintptr_t)dst->data;
	memset(src->data, 0x5a, sizeof(src->data));
	assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, src, 4096,
				 d + 4096, dst->mr->rkey, true, 1),
			 0);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.status, RV_WC_SUCCESS);
	assert_int_equal(wc.opcode, RV_WC_RDMA_WRITE);
	assert_int_equal(dst->data[4096], 0x5a);
	assert_int_equal(dst->data[4095], 0);
	/* one byte past the end: remote access error, then flush */
	assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, src, 4096,
				 d + 4097, dst->mr->rkey, false, 2),
			 0);
	assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, src, 1, d,
				 dst->mr->rkey, false, 3),
			 0);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.status, RV_WC_REM_ACCESS_ERR);
	assert_int_equal(wc.wr_id, 2);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.status, RV_WC_WR_FLUSH_ERR);
	assert_int_equal(wc.wr_id, 3);
	assert_int_equal(dst->data[0], 0);
	rt_free_buf(p.fab, src);
	rt_free_buf(p.fab, dst);
	rt_free_buf(p.fab, ro);
	rt_pair_free(&p);
	free(src);
	free(dst);
	free(ro);
}

/* Wrong rkey, missing REMOTE_WRITE, wrong lkey: each fails the write. */
static void test_write_keys_and_access(void **state)
{
	struct rt_buf *src = calloc(1, sizeof(*src));
	struct rt_buf *dst = calloc(1, sizeof(*dst));
	struct rt_buf *ro = calloc(1, sizeof(*ro));
	enum rv_wc_status want[3] = {RV_WC_REM_ACCESS_ERR, RV_WC_REM_ACCESS_ERR,
				     RV_WC_LOC_PROT_ERR};

	for (int i = 0; i < 3; i++) {
		struct rt_pair p;
		struct rv_wc wc;
		uint32_t rkey;
		uint64_t addr;

		rt_pair_connect(&p, 8, 8, 64, 0);
		rt_reg(p.fab, p.cli.pd, src, 0);
		rt_reg(p.fab, p.srv.pd, dst, RV_ACCESS_REMOTE_WRITE);
		rt_reg(p.fab, p.srv.pd, ro, RV_ACCESS_LOCAL_WRITE);
		rkey = i == 0	? dst->mr->rkey + 100
		       : i == 1 ? ro->mr->rkey
				: dst->mr->rkey;
		addr = i == 1 ? (uintptr_t)ro->data : (uintptr_t)dst->data;
		if (i == 2)
			src->mr->lkey ^= 0; /* use the remote MR's lkey */
		{
			struct rv_sge sge = {(uintptr_t)src->data, 8,
					     i == 2 ? dst->mr->lkey
						    : src->mr->lkey};
			struct rv_send_wr wr = {.opcode = RV_WR_RDMA_WRITE,
						.sg_list = &sge,
						.num_sge = 1,
						.signaled = true,
						.remote_addr = addr,
						.rkey = rkey};

			assert_int_equal(p.fab->ops->post_send(p.cli.qp, &wr),
					 0);
		}
		rt_poll1(p.fab, &p.cli, &wc);
		assert_int_equal(wc.status, want[i]);
		rt_free_buf(p.fab, src);
		rt_free_buf(p.fab, dst);
		rt_free_buf(p.fab, ro);
		rt_pair_free(&p);
	}
	free(src);
	free(dst);
	free(ro);
}

/* --- SEND/RECV, RNR ----------------------------------------------------------
 */

static void test_send_recv_and_len(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct rt_pair p;
	struct rv_wc wc;

	rt_pair_connect(&p, 8, 8, 64, 0);
	rt_reg(p.fab, p.cli.pd, a, RV_ACCESS_LOCAL_WRITE);
	rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_LOCAL_WRITE);
	memcpy(a->data, "hello", 5);
	assert_int_equal(rt_post_recv(p.fab, p.srv.qp, b, 16, 7), 0);
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0, 0, true, 1), 0);
	rt_poll1(p.fab, &p.srv, &wc);
	assert_int_equal(wc.status, RV_WC_SUCCESS);
	assert_int_equal(wc.opcode, RV_WC_RECV);
	assert_int_equal(wc.byte_len, 5);
	assert_int_equal(wc.wr_id, 7);
	assert_memory_equal(b->data, "hello", 5);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.opcode, RV_WC_SEND);
	/* larger than the receive: both sides fail */
	assert_int_equal(rt_post_recv(p.fab, p.srv.qp, b, 4, 8), 0);
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0, 0, true, 2), 0);
	rt_poll1(p.fab, &p.srv, &wc);
	assert_int_equal(wc.status, RV_WC_LOC_LEN_ERR);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.status, RV_WC_REM_INV_REQ_ERR);
	rt_free_buf(p.fab, a);
	rt_free_buf(p.fab, b);
	rt_pair_free(&p);
	free(a);
	free(b);
}

static void test_rnr(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	uint8_t rnr[3] = {0, 3, RV_RNR_RETRY_INFINITE};

	for (int i = 0; i < 3; i++) {
		struct rt_pair p;
		struct rv_wc wc;

		rt_pair_connect(&p, 8, 8, 64, rnr[i]);
		rv_loop_set_rnr_delay(p.fab, 5);
		rt_reg(p.fab, p.cli.pd, a, RV_ACCESS_LOCAL_WRITE);
		rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_LOCAL_WRITE);
		assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0,
					 0, true, 1),
				 0);
		if (rnr[i] == RV_RNR_RETRY_INFINITE) {
			/* waits; a later receive lets it through */
			assert_int_equal(rv_wait_wc(p.fab, p.cli.cc, p.cli.cq,
						    &wc, -1, 30),
					 -ETIMEDOUT);
			assert_int_equal(
				rt_post_recv(p.fab, p.srv.qp, b, 16, 9), 0);
			rt_poll1(p.fab, &p.cli, &wc);
			assert_int_equal(wc.status, RV_WC_SUCCESS);
		} else {
			rt_poll1(p.fab, &p.cli, &wc);
			assert_int_equal(wc.status, RV_WC_RNR_RETRY_EXC_ERR);
		}
		rt_free_buf(p.fab, a);
		rt_free_buf(p.fab, b);
		rt_pair_free(&p);
	}
	free(a);
	free(b);
}

/* --- queues -----------------------------------------------------------------
 */

static void test_sq_accounting_and_order(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct rt_pair p;
	struct rv_wc wc;
	uint64_t d;

	rt_pair_connect(&p, 4, 4, 64, 0);
	rt_reg(p.fab, p.cli.pd, a, 0);
	rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_REMOTE_WRITE);
	d = (uintptr_t)b->data;
	for (int i = 0; i < 3; i++)
		assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, a,
					 8, d, b->mr->rkey, false, i),
				 0);
	assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, a, 8, d,
				 b->mr->rkey, true, 3),
			 0);
	/* four outstanding: the fifth does not fit until one is polled */
	assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, a, 8, d,
				 b->mr->rkey, true, 4),
			 -ENOMEM);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.wr_id, 3);
	for (int i = 4; i < 8; i++)
		assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, a,
					 8, d, b->mr->rkey, true, i),
				 0);
	for (int i = 4; i < 8; i++) {
		rt_poll1(p.fab, &p.cli, &wc);
		assert_int_equal(wc.wr_id, i); /* in order */
	}
	rt_free_buf(p.fab, a);
	rt_free_buf(p.fab, b);
	rt_pair_free(&p);
	free(a);
	free(b);
}

static void test_cq_overflow(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct rt_pair p;
	struct rv_wc wc;

	rt_pair_connect(&p, 8, 8, 2, 0);
	rt_reg(p.fab, p.cli.pd, a, 0);
	rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_REMOTE_WRITE);
	for (int i = 0; i < 3; i++)
		assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, a,
					 8, (uintptr_t)b->data, b->mr->rkey,
					 true, i),
				 0);
	assert_int_equal(p.fab->ops->poll_cq(p.cli.cq, 1, &wc), -EOVERFLOW);
	rt_free_buf(p.fab, a);
	rt_free_buf(p.fab, b);
	rt_pair_free(&p);
	free(a);
	free(b);
}

static void test_teardown_order_and_rts(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a));
	struct rt_pair p;

	rt_pair_prepare(&p);
	rt_ep_verbs(p.fab, &p.cli, 4, 4, 16);
	rt_reg(p.fab, p.cli.pd, a, RV_ACCESS_LOCAL_WRITE);
	/* no SEND before the connection is up; receives are fine */
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 1, 0, 0, true, 1),
		-EINVAL);
	assert_int_equal(rt_post_recv(p.fab, p.cli.qp, a, 16, 1), 0);
	assert_int_equal(p.fab->ops->destroy_id(p.cli.id), -EBUSY);
	assert_int_equal(p.fab->ops->destroy_cq(p.cli.cq), -EBUSY);
	assert_int_equal(p.fab->ops->dealloc_pd(p.cli.pd), -EBUSY);
	assert_int_equal(p.fab->ops->destroy_comp_channel(p.cli.cc), -EBUSY);
	rt_free_buf(p.fab, a);
	rt_pair_free(&p);
	free(a);
}

/* --- faults -----------------------------------------------------------------
 */

static void test_fail_post_and_reg(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a));
	struct rt_pair p;
	int err = 0;

	rt_pair_connect(&p, 4, 4, 16, 0);
	rv_loop_fail_reg(p.fab, 1, ENOMEM);
	assert_null(p.fab->ops->reg_mr(p.cli.pd, a->data, 64,
				       RV_ACCESS_LOCAL_WRITE, &err));
	assert_int_equal(err, ENOMEM);
	rt_reg(p.fab, p.cli.pd, a, RV_ACCESS_LOCAL_WRITE);
	rv_loop_fail_post(p.fab, 2, EIO);
	assert_int_equal(rt_post_recv(p.fab, p.cli.qp, a, 16, 1), 0);
	assert_int_equal(rt_post_recv(p.fab, p.cli.qp, a, 16, 2), -EIO);
	assert_int_equal(rt_post_recv(p.fab, p.cli.qp, a, 16, 3), 0);
	rt_free_buf(p.fab, a);
	rt_pair_free(&p);
	free(a);
}

static void test_kill_peer(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct rt_pair p;
	struct rv_wc wc;

	rt_pair_connect(&p, 8, 8, 64, RV_RNR_RETRY_INFINITE);
	rt_reg(p.fab, p.cli.pd, a, RV_ACCESS_LOCAL_WRITE);
	rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_LOCAL_WRITE);
	assert_int_equal(rt_post_recv(p.fab, p.cli.qp, a, 16, 10), 0);
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0, 0, false, 1),
		0); /* blocked: no receive */
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0, 0, false, 2), 0);
	assert_int_equal(rv_loop_kill(p.fab, p.srv.qp), 0);
	assert_int_equal(rv_loop_kill(p.fab, p.srv.qp), -ENOTCONN);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.wr_id, 1);
	assert_int_equal(wc.status, RV_WC_RETRY_EXC_ERR);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.status, RV_WC_WR_FLUSH_ERR);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.opcode, RV_WC_RECV);
	assert_int_equal(wc.status, RV_WC_WR_FLUSH_ERR);
	rt_expect_event(p.fab, p.cli.ch, RV_CM_DISCONNECTED, NULL);
	rt_expect_event(p.fab, p.lch, RV_CM_DISCONNECTED, NULL);
	/* posting after the error completes with a flush */
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0, 0, false, 3), 0);
	rt_poll1(p.fab, &p.cli, &wc);
	assert_int_equal(wc.status, RV_WC_WR_FLUSH_ERR);
	rt_free_buf(p.fab, a);
	rt_free_buf(p.fab, b);
	rt_pair_free(&p);
	free(a);
	free(b);
}

static void test_delay(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct rt_pair p;
	struct rv_wc wc;

	rt_pair_connect(&p, 8, 8, 64, 0);
	rt_reg(p.fab, p.cli.pd, a, 0);
	rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_REMOTE_WRITE);
	rv_loop_set_delay(p.fab, 30);
	assert_int_equal(rt_post(p.fab, p.cli.qp, RV_WR_RDMA_WRITE, a, 8,
				 (uintptr_t)b->data, b->mr->rkey, true, 1),
			 0);
	assert_int_equal(p.fab->ops->poll_cq(p.cli.cq, 1, &wc), 0);
	assert_int_equal(rv_wait_wc(p.fab, p.cli.cc, p.cli.cq, &wc, -1, 1000),
			 1);
	rt_free_buf(p.fab, a);
	rt_free_buf(p.fab, b);
	rt_pair_free(&p);
	free(a);
	free(b);
}

/* --- threads ----------------------------------------------------------------
 */

struct rt_waiter {
	struct rt_pair *p;
	int cancel_fd;
	int timeout_ms;
	int ret;
	struct rv_wc wc;
};

static void *rt_wait_thread(void *arg)
{
	struct rt_waiter *w = arg;

	w->ret = rv_wait_wc(w->p->fab, w->p->srv.cc, w->p->srv.cq, &w->wc,
			    w->cancel_fd, w->timeout_ms);
	return NULL;
}

static void test_threads_wait_and_cancel(void **state)
{
	struct rt_buf *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct rt_pair p;
	struct rt_waiter w;
	pthread_t t;
	uint64_t one = 1;

	rt_pair_connect(&p, 8, 8, 64, 0);
	rt_reg(p.fab, p.cli.pd, a, RV_ACCESS_LOCAL_WRITE);
	rt_reg(p.fab, p.srv.pd, b, RV_ACCESS_LOCAL_WRITE);
	w = (struct rt_waiter){
		.p = &p, .cancel_fd = eventfd(0, 0), .timeout_ms = 5000};
	assert_int_equal(rt_post_recv(p.fab, p.srv.qp, b, 64, 1), 0);
	assert_int_equal(pthread_create(&t, NULL, rt_wait_thread, &w), 0);
	usleep(20000);
	assert_int_equal(
		rt_post(p.fab, p.cli.qp, RV_WR_SEND, a, 5, 0, 0, false, 1), 0);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, 1);
	assert_int_equal(w.wc.byte_len, 5);
	/* nothing arrives: another thread's cancel wakes the waiter */
	assert_int_equal(pthread_create(&t, NULL, rt_wait_thread, &w), 0);
	usleep(20000);
	assert_int_equal(write(w.cancel_fd, &one, sizeof(one)), 8);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, -ECANCELED);
	/* and without a cancel, the timeout bounds it */
	close(w.cancel_fd);
	w.cancel_fd = -1;
	w.timeout_ms = 20;
	rt_wait_thread(&w);
	assert_int_equal(w.ret, -ETIMEDOUT);
	rt_free_buf(p.fab, a);
	rt_free_buf(p.fab, b);
	rt_pair_free(&p);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cm_sequence_private_data),
		cmocka_unit_test(test_cm_private_data_limits),
		cmocka_unit_test(test_cm_refused_unreachable),
		cmocka_unit_test(test_cm_resolve_errors),
		cmocka_unit_test(test_write_checks),
		cmocka_unit_test(test_write_keys_and_access),
		cmocka_unit_test(test_send_recv_and_len),
		cmocka_unit_test(test_rnr),
		cmocka_unit_test(test_sq_accounting_and_order),
		cmocka_unit_test(test_cq_overflow),
		cmocka_unit_test(test_teardown_order_and_rts),
		cmocka_unit_test(test_fail_post_and_reg),
		cmocka_unit_test(test_kill_peer),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_threads_wait_and_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
