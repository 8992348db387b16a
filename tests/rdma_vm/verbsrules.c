/* verbsrules.c — checks on the real stack (rxe in the rdma_vm guest, or a
 * real device) the verbs rules that migd's loopback fabric enforces
 * (rdma/verbs_loopback.h, rules 1-9), so the fake and the kernel agree:
 * "verbsrules ADDR PORT" connects pairs of RC QPs over rdma_cm to itself on
 * ADDR, provokes each rule and prints "RULE <n> <what>: ok|MISMATCH|note
 * (observed)". Exit status: the number of mismatches (0 = all agree).
 * Single-threaded test tool; not part of migd. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define BUF 65536
#define TIMEOUT_MS 5000

struct side {
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;    /* BUF bytes, local + remote write */
	struct ibv_mr *ro_mr; /* BUF bytes, local write only */
	char buf[BUF], ro_buf[BUF];
};

struct pair {
	struct rdma_event_channel *ec_c, *ec_s;
	struct rdma_cm_id *listen;
	struct side c, s;
	int priv_at_server, priv_at_client; /* private data lengths seen */
};

struct opts {
	int rnr_retry;	 /* client's rnr_retry_count */
	int max_send_wr; /* client */
};

static int mismatches;
static struct sockaddr_in addr;

static void rule(int n, const char *what, bool ok, const char *fmt, int v)
{
	char obs[128];

	snprintf(obs, sizeof(obs), fmt, v);
	printf("RULE %d %s: %s (%s)\n", n, what, ok ? "ok" : "MISMATCH", obs);
	if (!ok)
		mismatches++;
}

/* Waits for the next CM event on ec; returns its type (-1 on timeout) and
 * copies status, the event's id and the private data length. */
static int next_event(struct rdma_event_channel *ec, int *status,
		      struct rdma_cm_id **id, int *priv_len)
{
	struct pollfd pfd = {.fd = ec->fd, .events = POLLIN};
	struct rdma_cm_event *ev;
	int type;

	if (poll(&pfd, 1, TIMEOUT_MS) != 1 || rdma_get_cm_event(ec, &ev))
		return -1;
	type = ev->event;
	if (status)
		*status = ev->status;
	if (id)
		*id = ev->id;
	if (priv_len)
		*priv_len = ev->param.conn.private_data_len;
	rdma_ack_cm_event(ev);
	return type;
}

static int expect(struct rdma_event_channel *ec, int want,
		  struct rdma_cm_id **id, int *priv_len)
{
	int got = next_event(ec, NULL, id, priv_len);

	if (got != want)
		fprintf(stderr, "verbsrules: want %s, got %s\n",
			rdma_event_str(want),
			got < 0 ? "timeout" : rdma_event_str(got));
	return got == want ? 0 : -1;
}

/* PD, CQ, MRs and an RC QP for one side (id->verbs is known by now). */
static int side_init(struct side *sd, int max_send_wr)
{
	struct ibv_qp_init_attr qa = {.qp_type = IBV_QPT_RC};
	int acc = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;

	sd->pd = ibv_alloc_pd(sd->id->verbs);
	sd->cq =
		sd->pd ? ibv_create_cq(sd->id->verbs, 64, NULL, NULL, 0) : NULL;
	if (!sd->cq)
		return -1;
	sd->mr = ibv_reg_mr(sd->pd, sd->buf, BUF, acc);
	sd->ro_mr = ibv_reg_mr(sd->pd, sd->ro_buf, BUF, IBV_ACCESS_LOCAL_WRITE);
	if (!sd->mr || !sd->ro_mr)
		return -1;
	qa.send_cq = qa.recv_cq = sd->cq;
	qa.cap.max_send_wr = max_send_wr;
	qa.cap.max_recv_wr = 16;
	qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
	return rdma_create_qp(sd->id, sd->pd, &qa);
}

static void side_free(struct side *sd)
{
	if (sd->id && sd->id->qp)
		rdma_destroy_qp(sd->id);
	if (sd->mr)
		ibv_dereg_mr(sd->mr);
	if (sd->ro_mr)
		ibv_dereg_mr(sd->ro_mr);
	if (sd->cq)
		ibv_destroy_cq(sd->cq);
	if (sd->pd)
		ibv_dealloc_pd(sd->pd);
	if (sd->id)
		rdma_destroy_id(sd->id);
	sd->id = NULL;
}

static void pair_free(struct pair *p)
{
	side_free(&p->c);
	side_free(&p->s);
	if (p->listen)
		rdma_destroy_id(p->listen);
	if (p->ec_c)
		rdma_destroy_event_channel(p->ec_c);
	if (p->ec_s)
		rdma_destroy_event_channel(p->ec_s);
	free(p);
}

/* Listener on addr (when listen), client id resolved and its QP created. */
static struct pair *pair_prepare(const struct opts *o, bool listen)
{
	struct pair *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->ec_c = rdma_create_event_channel();
	p->ec_s = rdma_create_event_channel();
	if (!p->ec_c || !p->ec_s)
		goto fail;
	if (listen && (rdma_create_id(p->ec_s, &p->listen, NULL, RDMA_PS_TCP) ||
		       rdma_bind_addr(p->listen, (struct sockaddr *)&addr) ||
		       rdma_listen(p->listen, 4)))
		goto fail;
	if (rdma_create_id(p->ec_c, &p->c.id, NULL, RDMA_PS_TCP) ||
	    rdma_resolve_addr(p->c.id, NULL, (struct sockaddr *)&addr,
			      TIMEOUT_MS) ||
	    expect(p->ec_c, RDMA_CM_EVENT_ADDR_RESOLVED, NULL, NULL) ||
	    rdma_resolve_route(p->c.id, TIMEOUT_MS) ||
	    expect(p->ec_c, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL, NULL) ||
	    side_init(&p->c, o->max_send_wr))
		goto fail;
	return p;
fail:
	perror("verbsrules: prepare");
	pair_free(p);
	return NULL;
}

static int pair_connect(struct pair *p, const struct opts *o)
{
	char priv[196] = "migd";
	struct rdma_conn_param cp = {
		.private_data = priv,
		.private_data_len = 10,
		.initiator_depth = 1,
		.responder_resources = 1,
		.retry_count = 5,
		.rnr_retry_count = o->rnr_retry,
	};

	if (rdma_connect(p->c.id, &cp) ||
	    expect(p->ec_s, RDMA_CM_EVENT_CONNECT_REQUEST, &p->s.id,
		   &p->priv_at_server) ||
	    side_init(&p->s, 64))
		return -1;
	if (rdma_accept(p->s.id, &cp) ||
	    expect(p->ec_c, RDMA_CM_EVENT_ESTABLISHED, NULL,
		   &p->priv_at_client) ||
	    expect(p->ec_s, RDMA_CM_EVENT_ESTABLISHED, NULL, NULL))
		return -1;
	return 0;
}

static struct pair *pair_open(const struct opts *o)
{
	struct pair *p = pair_prepare(o, true);

	if (p && pair_connect(p, o)) {
		fprintf(stderr, "verbsrules: connect failed\n");
		pair_free(p);
		return NULL;
	}
	return p;
}

static int post(struct ibv_qp *qp, enum ibv_wr_opcode op, void *buf,
		uint32_t len, uint32_t lkey, uint64_t raddr, uint32_t rkey,
		bool signaled)
{
	struct ibv_sge sge = {(uintptr_t)buf, len, lkey};
	struct ibv_send_wr wr = {.sg_list = &sge, .num_sge = 1, .opcode = op},
			   *bad;

	wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(qp, &wr, &bad);
}

static int post_recv_id(struct side *sd, uint32_t len, uint64_t wr_id)
{
	struct ibv_sge sge = {(uintptr_t)sd->buf, len, sd->mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1},
			   *bad;

	return ibv_post_recv(sd->id->qp, &wr, &bad);
}

static int post_recv(struct side *sd, uint32_t len)
{
	return post_recv_id(sd, len, 0);
}

/* wr_id of the next completion on cq (successful or not), -1 if none. */
static long long wc_id(struct ibv_cq *cq)
{
	struct ibv_wc wc;
	int i;

	for (i = 0; i < TIMEOUT_MS; i++) {
		if (ibv_poll_cq(cq, 1, &wc) == 1)
			return wc.status == IBV_WC_SUCCESS ? (long long)wc.wr_id
							   : -2;
		poll(NULL, 0, 1);
	}
	return -1;
}

/* Status of the next completion on cq, -1 when none comes in ms. */
static int wc_status_in(struct ibv_cq *cq, int ms)
{
	struct ibv_wc wc;
	int i, n;

	for (i = 0; i < ms; i++) {
		n = ibv_poll_cq(cq, 1, &wc);
		if (n == 1)
			return wc.status;
		if (n < 0)
			return -1;
		poll(NULL, 0, 1);
	}
	return -1;
}

static int wc_status(struct ibv_cq *cq)
{
	return wc_status_in(cq, TIMEOUT_MS);
}

/* An error completion whose exact status may differ from the IB spec's
 * (and the fake's) on some providers: checked as "an error", the status
 * printed. */
static bool wc_error(int st)
{
	return st > IBV_WC_SUCCESS;
}

static const struct opts dflt = {.rnr_retry = 7, .max_send_wr = 64};
static int base_port, pairs_made;

/* A new pair on a fresh port (a closed listener's port may linger). */
static struct pair *fresh(const struct opts *o, int kind)
{
	addr.sin_port = htons(base_port + pairs_made++);
	if (kind == 1)
		return pair_prepare(o, true);
	if (kind == 2)
		return pair_prepare(o, false);
	return pair_open(o);
}

#define WRITE_TO(p, len, raddr, rkey)                                          \
	post((p)->c.id->qp, IBV_WR_RDMA_WRITE, (p)->c.buf, (len),              \
	     (p)->c.mr->lkey, (uintptr_t)(raddr), (rkey), true)

static void rule1(void)
{
	struct pair *p = fresh(&dflt, 0);
	int st, st2;

	if (!p || WRITE_TO(p, 4096, p->s.buf, p->s.mr->rkey))
		goto broken;
	st = wc_status(p->c.cq);
	rule(1, "RDMA WRITE, valid rkey", st == IBV_WC_SUCCESS, "status %d",
	     st);
	WRITE_TO(p, 4096, p->s.buf, p->s.mr->rkey + 0x100);
	WRITE_TO(p, 4096, p->s.buf, p->s.mr->rkey);
	st = wc_status(p->c.cq);
	st2 = wc_status(p->c.cq);
	rule(1, "bad rkey -> REM_ACCESS_ERR", st == IBV_WC_REM_ACCESS_ERR,
	     "status %d", st);
	rule(1, "next WR flushed", st2 == IBV_WC_WR_FLUSH_ERR, "status %d",
	     st2);
	st = WRITE_TO(p, 4096, p->s.buf, p->s.mr->rkey);
	st2 = st ? -1 : wc_status(p->c.cq);
	rule(7, "post to a QP in error -> WR_FLUSH_ERR",
	     !st && st2 == IBV_WC_WR_FLUSH_ERR, "post error or status %d",
	     st ? st : st2);
	pair_free(p);
	p = fresh(&dflt, 0);
	if (!p || WRITE_TO(p, 4096, p->s.ro_buf, p->s.ro_mr->rkey))
		goto broken;
	st = wc_status(p->c.cq);
	rule(1, "MR without REMOTE_WRITE -> REM_ACCESS_ERR",
	     st == IBV_WC_REM_ACCESS_ERR, "status %d", st);
	pair_free(p);
	p = fresh(&dflt, 0);
	if (!p || WRITE_TO(p, 4096, p->s.buf + BUF - 100, p->s.mr->rkey))
		goto broken;
	st = wc_status(p->c.cq);
	rule(1, "past the MR's end -> REM_ACCESS_ERR",
	     st == IBV_WC_REM_ACCESS_ERR, "status %d", st);
broken:
	if (!p)
		rule(1, "setup", false, "pair %d", 0);
	else
		pair_free(p);
}

static void rule2_3(void)
{
	struct pair *p = fresh(&dflt, 0);
	int st, st2;

	if (!p)
		return rule(2, "setup", false, "pair %d", 0);
	post(p->c.id->qp, IBV_WR_RDMA_WRITE, p->c.buf, 4096,
	     p->c.mr->lkey + 0x100, (uintptr_t)p->s.buf, p->s.mr->rkey, true);
	st = wc_status(p->c.cq);
	rule(2, "bad lkey -> error (fake, IB spec: LOC_PROT_ERR 4)",
	     wc_error(st), "status %d", st);
	pair_free(p);
	p = fresh(&dflt, 0);
	if (!p)
		return rule(3, "setup", false, "pair %d", 0);
	post_recv_id(&p->s, 64, 1);
	post_recv_id(&p->s, 64, 2);
	post(p->c.id->qp, IBV_WR_SEND, p->c.buf, 32, p->c.mr->lkey, 0, 0, true);
	post(p->c.id->qp, IBV_WR_SEND, p->c.buf, 32, p->c.mr->lkey, 0, 0, true);
	st = (int)wc_id(p->s.cq);
	st2 = (int)wc_id(p->s.cq);
	rule(3, "SENDs consume receives in posted order", st == 1 && st2 == 2,
	     "wr_ids %d", st * 10 + st2);
	pair_free(p);
	p = fresh(&dflt, 0);
	if (!p)
		return rule(3, "setup", false, "pair %d", 0);
	post_recv(&p->s, 64);
	post(p->c.id->qp, IBV_WR_SEND, p->c.buf, 4096, p->c.mr->lkey, 0, 0,
	     true);
	st = wc_status(p->s.cq);
	st2 = wc_status(p->c.cq);
	rule(3,
	     "SEND > receive: responder error (fake, IB spec: "
	     "LOC_LEN_ERR 1)",
	     wc_error(st), "status %d", st);
	rule(3,
	     "SEND > receive: requester error (fake, IB spec: "
	     "REM_INV_REQ_ERR 9)",
	     wc_error(st2), "status %d", st2);
	pair_free(p);
}

static void rule4_5(void)
{
	struct opts o = {.rnr_retry = 0, .max_send_wr = 8};
	struct ibv_qp_init_attr ia;
	struct ibv_qp_attr qa;
	struct pair *p = fresh(&o, 0);
	int st, n, ret = 0;

	if (!p)
		return rule(4, "setup", false, "pair %d", 0);
	post(p->c.id->qp, IBV_WR_SEND, p->c.buf, 64, p->c.mr->lkey, 0, 0, true);
	st = wc_status(p->c.cq);
	rule(4, "no receive, rnr_retry 0 -> RNR_RETRY_EXC_ERR",
	     st == IBV_WC_RNR_RETRY_EXC_ERR, "status %d", st);
	pair_free(p);
	o.rnr_retry = 7; /* the first SEND waits forever: the queue fills */
	p = fresh(&o, 0);
	if (!p || ibv_query_qp(p->c.id->qp, &qa, IBV_QP_CAP, &ia))
		return rule(5, "setup", false, "pair %d", 0);
	for (n = 0; n < 4096 && !ret; n++)
		ret = post(p->c.id->qp, IBV_WR_SEND, p->c.buf, 64,
			   p->c.mr->lkey, 0, 0, n == 0);
	rule(5, "post past max_send_wr -> ENOMEM",
	     ret == ENOMEM && n - 1 == (int)qa.cap.max_send_wr,
	     "max_send_wr 8, cap %d", (int)qa.cap.max_send_wr);
	printf("RULE 5 detail: post %d failed with %d (%s)\n", n, ret,
	       strerror(ret));
	pair_free(p);
}

static void rule7_9(void)
{
	struct pair *p = fresh(&dflt, 2);
	int ret;

	if (!p)
		return rule(7, "setup", false, "pair %d", 0);
	ret = post(p->c.id->qp, IBV_WR_SEND, p->c.buf, 64, p->c.mr->lkey, 0, 0,
		   true);
	rule(7, "post_send before RTS fails", ret != 0, "returned %d", ret);
	ret = post_recv(&p->c, 64);
	rule(7, "post_recv before connect works", ret == 0, "returned %d", ret);
	ret = ibv_dealloc_pd(p->c.pd);
	rule(9, "dealloc_pd with MRs/QP alive -> EBUSY", ret == EBUSY,
	     "returned %d", ret);
	if (!ret)
		p->c.pd = NULL;
	ret = ibv_destroy_cq(p->c.cq);
	rule(9, "destroy_cq with a QP on it -> EBUSY", ret == EBUSY,
	     "returned %d", ret);
	if (!ret)
		p->c.cq = NULL;
	pair_free(p);
}

static void rule8_cm(void)
{
	struct pair *p = fresh(&dflt, 0);
	int st = -1, type;

	if (!p)
		return rule(8, "setup", false, "pair %d", 0);
	rule(8, "connect private data padded to 56", p->priv_at_server == 56,
	     "length %d", p->priv_at_server);
	rule(8, "accept private data padded to 196", p->priv_at_client == 196,
	     "length %d", p->priv_at_client);
	post_recv(&p->s, 64);
	rdma_disconnect(p->c.id);
	type = next_event(p->ec_s, NULL, NULL, NULL);
	rule(8, "disconnect: DISCONNECTED at the peer",
	     type == RDMA_CM_EVENT_DISCONNECTED, "event %d", type);
	/* The peer's QP is only moved to error by its own rdma_disconnect,
	 * and the initiator's DISCONNECTED waits for that reply. */
	st = wc_status_in(p->s.cq, 500);
	printf("RULE 8 note: peer's receives %s before it disconnects "
	       "(status %d)\n",
	       st < 0 ? "not flushed" : "flushed", st);
	rdma_disconnect(p->s.id);
	type = next_event(p->ec_c, NULL, NULL, NULL);
	rule(8,
	     "disconnect: DISCONNECTED at the initiator once the peer "
	     "disconnects",
	     type == RDMA_CM_EVENT_DISCONNECTED, "event %d", type);
	if (st < 0)
		st = wc_status(p->s.cq);
	rule(8, "peer's rdma_disconnect flushes its receives",
	     st == IBV_WC_WR_FLUSH_ERR, "status %d", st);
	pair_free(p);
}

static void rule8_refuse(void)
{
	struct rdma_conn_param cp = {.private_data = "x",
				     .private_data_len = 57};
	struct pair *p = fresh(&dflt, 2);
	int st = -1, type, ret;

	if (!p)
		return rule(8, "setup", false, "pair %d", 0);
	ret = rdma_connect(p->c.id, &cp) ? errno : 0;
	rule(8, "connect private data 57 -> EINVAL", ret == EINVAL, "errno %d",
	     ret);
	cp.private_data_len = 1;
	rdma_connect(p->c.id, &cp);
	type = next_event(p->ec_c, &st, NULL, NULL);
	rule(8, "nobody listening -> REJECTED status 8",
	     type == RDMA_CM_EVENT_REJECTED && st == 8, "status %d", st);
	pair_free(p);
	p = fresh(&dflt, 1);
	if (!p)
		return;
	rdma_connect(p->c.id, &cp);
	if (!expect(p->ec_s, RDMA_CM_EVENT_CONNECT_REQUEST, &p->s.id, NULL)) {
		static const char big[149];

		ret = rdma_reject(p->s.id, big, sizeof(big)) ? errno : 0;
		rule(8, "reject private data 149 -> EINVAL", ret == EINVAL,
		     "errno %d", ret);
		rdma_reject(p->s.id, "no", 3);
	}
	type = next_event(p->ec_c, &st, NULL, NULL);
	rule(8, "rdma_reject -> REJECTED status 28",
	     type == RDMA_CM_EVENT_REJECTED && st == 28, "status %d", st);
	pair_free(p);
}

int main(int argc, char **argv)
{
	if (argc != 3 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 ||
	    (base_port = atoi(argv[2])) < 1024 || base_port > 65000) {
		fprintf(stderr, "usage: verbsrules IPV4-ADDR PORT\n");
		return 2;
	}
	addr.sin_family = AF_INET;
	setvbuf(stdout, NULL, _IOLBF, 0);
	rule1();
	rule2_3();
	rule4_5();
	rule7_9();
	rule8_cm();
	rule8_refuse();
	printf("RULE 6 CQ overrun: not checked (the transport sizes CQs so "
	       "they cannot overrun)\n");
	printf("verbsrules: %d mismatch(es), %d connections\n", mismatches,
	       pairs_made);
	return mismatches > 100 ? 100 : mismatches;
}
