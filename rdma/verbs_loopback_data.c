/* verbs_loopback_data.c — the loopback fabric's data path: PDs, MRs, CQs,
 * completion channels, RC QPs, posting, execution and completion (rules
 * 1-7 and 9 of verbs_loopback.h). A WR executes when posted, or later when
 * the responder posts a receive or an RNR timer runs out (progress).
 * Any thread; everything under fab->lock. */
#include "rdma/loopback_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LB_MAX_WR 16384
#define LB_MAX_CQE (1 << 20)
/* Execution result meaning "wait: the responder has no receive". */
#define LB_BLOCKED (-1)

#define LB_PD(p) ((struct lb_pd *)(p))
#define LB_CQ(p) ((struct lb_cq *)(p))
#define LB_CC(p) ((struct lb_cc *)(p))
#define LB_QP(p) ((struct lb_qp *)(p))

/* --- protection domains and memory regions --------------------------- */

struct rv_pd *lb_alloc_pd(struct rv_cm_id *i, int *err)
{
	struct lb_id *id = (struct lb_id *)i;
	struct lb_pd *pd;

	if (id->state == LB_ID_IDLE) {
		*err = ENODEV; /* no device until an address is bound */
		return NULL;
	}
	pd = calloc(1, sizeof(*pd));
	if (!pd) {
		*err = ENOMEM;
		return NULL;
	}
	pd->fab = id->fab;
	pthread_mutex_lock(&pd->fab->lock);
	pd->fab->live++;
	pthread_mutex_unlock(&pd->fab->lock);
	return (struct rv_pd *)pd;
}

int lb_dealloc_pd(struct rv_pd *p)
{
	struct lb_pd *pd = LB_PD(p);
	struct lb_fabric *fab = pd->fab;

	pthread_mutex_lock(&fab->lock);
	if (pd->users) {
		pthread_mutex_unlock(&fab->lock);
		return -EBUSY;
	}
	fab->live--;
	pthread_mutex_unlock(&fab->lock);
	free(pd);
	return 0;
}

static int lb_take_fault(unsigned int *countdown, int err)
{
	if (*countdown && --*countdown == 0)
		return -(err ? err : EIO);
	return 0;
}

/* rv_loop_set_reg_delay(): a large pin takes time (outside the lock). */
static void lb_reg_delay(struct lb_fabric *fab, size_t len)
{
	int delay;

	pthread_mutex_lock(&fab->lock);
	delay = fab->reg_delay_ms;
	pthread_mutex_unlock(&fab->lock);
	if (delay && len >= (1u << 20)) /* guest RAM, not a buffer */
		usleep((useconds_t)delay * 1000);
}

struct rv_mr *lb_reg_mr(struct rv_pd *p, void *addr, size_t len, int access,
			int *err)
{
	struct lb_pd *pd = LB_PD(p);
	struct lb_fabric *fab = pd->fab;
	struct lb_mr *mr;
	int ret;

	if (!addr || !len || (access & ~7)) {
		*err = EINVAL;
		return NULL;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr) {
		*err = ENOMEM;
		return NULL;
	}
	lb_reg_delay(fab, len);
	pthread_mutex_lock(&fab->lock);
	ret = lb_take_fault(&fab->fail_reg_in, fab->fail_reg_err);
	if (!ret) {
		mr->base = (struct rv_mr){.addr = addr,
					  .length = len,
					  .lkey = fab->next_key++,
					  .rkey = fab->next_key++,
					  .access = access};
		mr->pd = pd;
		mr->next = fab->mrs;
		fab->mrs = mr;
		pd->users++;
		fab->live++;
	}
	pthread_mutex_unlock(&fab->lock);
	if (ret) {
		*err = -ret;
		free(mr);
		return NULL;
	}
	return &mr->base;
}

int lb_dereg_mr(struct rv_mr *m)
{
	struct lb_mr *mr = (struct lb_mr *)m;
	struct lb_fabric *fab = mr->pd->fab;
	struct lb_mr **pp;

	pthread_mutex_lock(&fab->lock);
	for (pp = &fab->mrs; *pp; pp = &(*pp)->next) {
		if (*pp == mr) {
			*pp = mr->next;
			break;
		}
	}
	mr->pd->users--;
	fab->live--;
	pthread_mutex_unlock(&fab->lock);
	free(mr);
	return 0;
}

/* The MR of pd whose key (lkey or rkey) is key and which covers
 * [addr, addr + len) with the access bits need, or NULL. */
static struct lb_mr *lb_find_mr(struct lb_fabric *fab, struct lb_pd *pd,
				uint32_t key, bool remote, uint64_t addr,
				uint64_t len, int need)
{
	for (struct lb_mr *mr = fab->mrs; mr; mr = mr->next) {
		uint64_t start = (uintptr_t)mr->base.addr;

		if ((remote ? mr->base.rkey : mr->base.lkey) != key)
			continue;
		if (mr->pd != pd || (mr->base.access & need) != need)
			return NULL;
		if (addr < start || len > mr->base.length ||
		    addr - start > mr->base.length - len)
			return NULL;
		return mr;
	}
	return NULL;
}

/* Checks a local SGE list; *total gets its byte count. */
static bool lb_sges_ok(struct lb_fabric *fab, struct lb_pd *pd,
		       const struct rv_sge *sge, int n, int need,
		       uint64_t *total)
{
	*total = 0;
	for (int i = 0; i < n; i++) {
		if (!lb_find_mr(fab, pd, sge[i].lkey, false, sge[i].addr,
				sge[i].length, need))
			return false;
		*total += sge[i].length;
	}
	return true;
}

/* Copies len bytes from the src SGE list into the dst SGE list. */
static void lb_sg_copy(const struct rv_sge *dst, int nd,
		       const struct rv_sge *src, int ns)
{
	uint32_t doff = 0, soff = 0;
	int d = 0, s = 0;

	while (d < nd && s < ns) {
		uint32_t dl = dst[d].length - doff, sl = src[s].length - soff;
		uint32_t n = dl < sl ? dl : sl;

		memmove((void *)(uintptr_t)(dst[d].addr + doff),
			(const void *)(uintptr_t)(src[s].addr + soff), n);
		doff += n;
		soff += n;
		if (doff == dst[d].length) {
			d++;
			doff = 0;
		}
		if (soff == src[s].length) {
			s++;
			soff = 0;
		}
	}
}

/* --- completion queues and channels ------------------------------------ */

struct rv_comp_channel *lb_create_comp_channel(struct rv_cm_id *i, int *err)
{
	struct lb_id *id = (struct lb_id *)i;
	struct lb_cc *cc = calloc(1, sizeof(*cc));
	int ret;

	if (!cc) {
		*err = ENOMEM;
		return NULL;
	}
	ret = lb_evq_init(&cc->q);
	if (ret) {
		*err = -ret;
		free(cc);
		return NULL;
	}
	cc->fab = id->fab;
	pthread_mutex_lock(&cc->fab->lock);
	cc->fab->live++;
	pthread_mutex_unlock(&cc->fab->lock);
	return (struct rv_comp_channel *)cc;
}

int lb_destroy_comp_channel(struct rv_comp_channel *c)
{
	struct lb_cc *cc = LB_CC(c);
	struct lb_fabric *fab = cc->fab;

	pthread_mutex_lock(&fab->lock);
	if (cc->ncq) {
		pthread_mutex_unlock(&fab->lock);
		return -EBUSY;
	}
	lb_evq_fini(&cc->q);
	fab->live--;
	pthread_mutex_unlock(&fab->lock);
	free(cc);
	return 0;
}

int lb_comp_channel_fd(struct rv_comp_channel *c)
{
	return LB_CC(c)->q.efd;
}

struct rv_cq *lb_create_cq(struct rv_cm_id *i, int cqe,
			   struct rv_comp_channel *c, int *err)
{
	struct lb_id *id = (struct lb_id *)i;
	struct lb_fabric *fab = id->fab;
	struct lb_cq *cq;

	if (cqe < 1 || cqe > LB_MAX_CQE) {
		*err = EINVAL;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (cq)
		cq->ring = calloc((size_t)cqe, sizeof(*cq->ring));
	if (!cq || !cq->ring) {
		free(cq);
		*err = ENOMEM;
		return NULL;
	}
	cq->fab = fab;
	cq->cqe = cqe;
	cq->cc = LB_CC(c);
	pthread_mutex_lock(&fab->lock);
	if (cq->cc)
		cq->cc->ncq++;
	cq->next = fab->cqs;
	fab->cqs = cq;
	fab->live++;
	pthread_mutex_unlock(&fab->lock);
	return (struct rv_cq *)cq;
}

/* Drops cq's pending events from its channel (lock held). */
static void lb_cc_forget(struct lb_cc *cc, struct lb_cq *cq)
{
	struct lb_evq keep = {.efd = cc->q.efd};
	struct lb_evnode *n;
	uint64_t v;

	while ((n = cc->q.head)) {
		cc->q.head = n->next;
		if (n->cq == cq) {
			free(n);
		} else {
			n->next = NULL;
			if (keep.tail)
				keep.tail->next = n;
			else
				keep.head = n;
			keep.tail = n;
		}
	}
	cc->q = keep;
	if (!keep.head && read(cc->q.efd, &v, sizeof(v)) < 0) {
		/* Already drained. */
	}
}

int lb_destroy_cq(struct rv_cq *c)
{
	struct lb_cq *cq = LB_CQ(c);
	struct lb_fabric *fab = cq->fab;
	struct lb_cq **pp;

	pthread_mutex_lock(&fab->lock);
	if (cq->nqp || cq->events_got != cq->events_acked) {
		pthread_mutex_unlock(&fab->lock);
		return -EBUSY;
	}
	for (pp = &fab->cqs; *pp; pp = &(*pp)->next) {
		if (*pp == cq) {
			*pp = cq->next;
			break;
		}
	}
	if (cq->cc) {
		lb_cc_forget(cq->cc, cq);
		cq->cc->ncq--;
	}
	fab->live--;
	pthread_mutex_unlock(&fab->lock);
	free(cq->ring);
	free(cq);
	return 0;
}

/* Raises the channel event if armed and something is visible. */
static void lb_cq_notify(struct lb_cq *cq)
{
	struct lb_evnode *n;
	bool ready =
		cq->overflow ||
		(cq->count && cq->ring[cq->head].visible_at <= lb_now_ms());

	if (!cq->armed || !cq->cc || !ready)
		return;
	n = calloc(1, sizeof(*n));
	if (!n)
		return; /* the waiter times out: bounded */
	cq->armed = false;
	n->cq = cq;
	lb_evq_push(&cq->cc->q, n);
}

int lb_req_notify_cq(struct rv_cq *c)
{
	struct lb_cq *cq = LB_CQ(c);

	pthread_mutex_lock(&cq->fab->lock);
	cq->armed = true;
	pthread_mutex_unlock(&cq->fab->lock);
	return 0;
}

int lb_get_cq_event(struct rv_comp_channel *c, struct rv_cq **out)
{
	struct lb_cc *cc = LB_CC(c);
	struct lb_evnode *n;

	pthread_mutex_lock(&cc->fab->lock);
	n = lb_evq_pop(&cc->q);
	if (n)
		n->cq->events_got++;
	pthread_mutex_unlock(&cc->fab->lock);
	if (!n)
		return -EAGAIN;
	*out = (struct rv_cq *)n->cq;
	free(n);
	return 0;
}

void lb_ack_cq_events(struct rv_cq *c, unsigned int n)
{
	struct lb_cq *cq = LB_CQ(c);

	pthread_mutex_lock(&cq->fab->lock);
	cq->events_acked += n;
	pthread_mutex_unlock(&cq->fab->lock);
}

static void lb_cq_push(struct lb_cq *cq, const struct rv_wc *wc, uint64_t seq,
		       bool is_send)
{
	struct lb_cqe *e;

	if (cq->count == cq->cqe) {
		cq->overflow = true;
	} else {
		e = &cq->ring[(cq->head + cq->count) % cq->cqe];
		e->wc = *wc;
		e->seq = seq;
		e->is_send = is_send;
		e->visible_at = lb_now_ms() + cq->fab->delay_ms;
		cq->count++;
	}
	lb_cq_notify(cq);
}

int lb_poll_cq(struct rv_cq *c, int n, struct rv_wc *wc)
{
	struct lb_cq *cq = LB_CQ(c);
	int64_t now = lb_now_ms();
	int got = 0;

	pthread_mutex_lock(&cq->fab->lock);
	if (cq->overflow) {
		pthread_mutex_unlock(&cq->fab->lock);
		return -EOVERFLOW;
	}
	while (got < n && cq->count && cq->ring[cq->head].visible_at <= now) {
		struct lb_cqe *e = &cq->ring[cq->head];
		struct lb_qp *qp = LB_QP(e->wc.qp);

		if (e->is_send && qp->sq_freed < e->seq + 1)
			qp->sq_freed = e->seq + 1;
		wc[got++] = e->wc;
		cq->head = (cq->head + 1) % cq->cqe;
		cq->count--;
	}
	pthread_mutex_unlock(&cq->fab->lock);
	return got;
}

/* Removes qp's entries from cq (qp is being destroyed; lock held). */
static void lb_cq_purge(struct lb_cq *cq, struct lb_qp *qp)
{
	int kept = 0;

	for (int i = 0; i < cq->count; i++) {
		struct lb_cqe e = cq->ring[(cq->head + i) % cq->cqe];

		if (LB_QP(e.wc.qp) != qp)
			cq->ring[(cq->head + kept++) % cq->cqe] = e;
	}
	cq->count = kept;
}

/* --- queue pairs --------------------------------------------------------- */

static bool lb_qp_attr_ok(const struct rv_qp_init_attr *a)
{
	return a->send_cq && a->recv_cq && a->max_send_wr >= 1 &&
	       a->max_send_wr <= LB_MAX_WR && a->max_recv_wr >= 1 &&
	       a->max_recv_wr <= LB_MAX_WR && a->max_send_sge <= RV_MAX_SGE &&
	       a->max_recv_sge <= RV_MAX_SGE;
}

static void lb_qp_attach(struct lb_qp *qp, struct lb_id *id)
{
	struct lb_fabric *fab = id->fab;

	qp->id = id;
	id->qp = qp;
	qp->pd->users++;
	qp->send_cq->nqp++;
	qp->recv_cq->nqp++;
	qp->next = fab->qps;
	fab->qps = qp;
	fab->live++;
}

struct rv_qp *lb_create_qp(struct rv_cm_id *i, struct rv_pd *p,
			   const struct rv_qp_init_attr *a, int *err)
{
	struct lb_id *id = (struct lb_id *)i;
	struct lb_qp *qp;

	if (!lb_qp_attr_ok(a)) {
		*err = EINVAL;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	if (qp) {
		qp->sq = calloc(a->max_send_wr, sizeof(*qp->sq));
		qp->rq = calloc(a->max_recv_wr, sizeof(*qp->rq));
	}
	if (!qp || !qp->sq || !qp->rq) {
		if (qp) {
			free(qp->sq);
			free(qp->rq);
		}
		free(qp);
		*err = ENOMEM;
		return NULL;
	}
	qp->fab = id->fab;
	qp->pd = LB_PD(p);
	qp->send_cq = LB_CQ(a->send_cq);
	qp->recv_cq = LB_CQ(a->recv_cq);
	qp->attr = *a;
	qp->state = RV_QPS_INIT;
	pthread_mutex_lock(&id->fab->lock);
	if (id->qp) {
		pthread_mutex_unlock(&id->fab->lock);
		free(qp->sq);
		free(qp->rq);
		free(qp);
		*err = EEXIST;
		return NULL;
	}
	lb_qp_attach(qp, id);
	pthread_mutex_unlock(&id->fab->lock);
	return (struct rv_qp *)qp;
}

static void lb_qp_unlink(struct lb_qp *qp)
{
	struct lb_fabric *fab = qp->fab;
	struct lb_qp **pp;

	for (pp = &fab->qps; *pp; pp = &(*pp)->next) {
		if (*pp == qp) {
			*pp = qp->next;
			break;
		}
	}
	if (qp->peer) {
		lb_qp_flush(qp->peer, RV_WC_RETRY_EXC_ERR);
		qp->peer->peer = NULL;
	}
	lb_cq_purge(qp->send_cq, qp);
	if (qp->recv_cq != qp->send_cq)
		lb_cq_purge(qp->recv_cq, qp);
	qp->send_cq->nqp--;
	qp->recv_cq->nqp--;
	qp->pd->users--;
	qp->id->qp = NULL;
	fab->live--;
}

int lb_destroy_qp(struct rv_qp *q)
{
	struct lb_qp *qp = LB_QP(q);

	pthread_mutex_lock(&qp->fab->lock);
	lb_qp_unlink(qp);
	pthread_mutex_unlock(&qp->fab->lock);
	free(qp->sq);
	free(qp->rq);
	free(qp);
	return 0;
}

int lb_modify_qp_state(struct rv_qp *q, enum rv_qp_state state)
{
	struct lb_qp *qp = LB_QP(q);

	if (state != RV_QPS_ERR)
		return -EINVAL;
	pthread_mutex_lock(&qp->fab->lock);
	lb_qp_flush(qp, RV_WC_WR_FLUSH_ERR);
	pthread_mutex_unlock(&qp->fab->lock);
	return 0;
}

/* --- execution ------------------------------------------------------------ */

static void lb_send_done(struct lb_qp *qp, struct lb_swr *s,
			 enum rv_wc_status st)
{
	struct rv_wc wc = {
		.wr_id = s->wr.wr_id,
		.status = st,
		.opcode = s->wr.opcode == RV_WR_SEND ? RV_WC_SEND
						     : RV_WC_RDMA_WRITE,
		.qp = (struct rv_qp *)qp,
	};

	if (st == RV_WC_SUCCESS && !s->wr.signaled)
		return; /* its slot frees with a later signaled completion */
	lb_cq_push(qp->send_cq, &wc, s->seq, true);
}

static void lb_recv_done(struct lb_qp *qp, enum rv_wc_status st,
			 enum rv_wc_opcode op, uint32_t len,
			 const struct lb_swr *s)
{
	struct lb_rwr *r = &qp->rq[qp->rq_head];
	struct rv_wc wc = {.wr_id = r->wr.wr_id,
			   .status = st,
			   .opcode = op,
			   .byte_len = len,
			   .qp = (struct rv_qp *)qp};

	if (s && op == RV_WC_RECV_RDMA_WITH_IMM) {
		wc.imm_data = s->wr.imm_data;
		wc.has_imm = true;
	}
	qp->rq_head = (qp->rq_head + 1) % (int)qp->attr.max_recv_wr;
	qp->rq_count--;
	lb_cq_push(qp->recv_cq, &wc, 0, false);
}

void lb_qp_flush(struct lb_qp *qp, enum rv_wc_status first)
{
	qp->state = RV_QPS_ERR;
	while (qp->sq_count) {
		lb_send_done(qp, &qp->sq[qp->sq_head], first);
		first = RV_WC_WR_FLUSH_ERR;
		qp->sq_head = (qp->sq_head + 1) % (int)qp->attr.max_send_wr;
		qp->sq_count--;
	}
	while (qp->rq_count)
		lb_recv_done(qp, RV_WC_WR_FLUSH_ERR, RV_WC_RECV, 0, NULL);
}

/* Rule 4: what a send needing a receive does when there is none. */
static int lb_rnr(struct lb_qp *qp, struct lb_swr *s)
{
	int64_t now = lb_now_ms();

	if (qp->rnr_retry == 0)
		return RV_WC_RNR_RETRY_EXC_ERR;
	if (qp->rnr_retry >= RV_RNR_RETRY_INFINITE)
		return LB_BLOCKED;
	if (!s->rnr_deadline)
		s->rnr_deadline =
			now + (int64_t)qp->rnr_retry * qp->fab->rnr_delay_ms;
	return now >= s->rnr_deadline ? RV_WC_RNR_RETRY_EXC_ERR : LB_BLOCKED;
}

/* Rule 3: delivers s into the responder's next receive. */
static int lb_deliver_send(struct lb_qp *qp, struct lb_qp *peer,
			   struct lb_swr *s, uint64_t len)
{
	struct lb_rwr *r = &peer->rq[peer->rq_head];
	uint64_t cap;

	if (!lb_sges_ok(qp->fab, peer->pd, r->sge, r->wr.num_sge,
			RV_ACCESS_LOCAL_WRITE, &cap)) {
		lb_recv_done(peer, RV_WC_LOC_PROT_ERR, RV_WC_RECV, 0, NULL);
		lb_qp_flush(peer, RV_WC_WR_FLUSH_ERR);
		return RV_WC_REM_OP_ERR;
	}
	if (len > cap) {
		lb_recv_done(peer, RV_WC_LOC_LEN_ERR, RV_WC_RECV, 0, NULL);
		lb_qp_flush(peer, RV_WC_WR_FLUSH_ERR);
		return RV_WC_REM_INV_REQ_ERR;
	}
	lb_sg_copy(r->sge, r->wr.num_sge, s->sge, s->wr.num_sge);
	lb_recv_done(peer, RV_WC_SUCCESS, RV_WC_RECV, (uint32_t)len, s);
	return RV_WC_SUCCESS;
}

/* Rule 1: an RDMA WRITE (with or without immediate). */
static int lb_write(struct lb_qp *qp, struct lb_qp *peer, struct lb_swr *s,
		    uint64_t len)
{
	bool imm = s->wr.opcode == RV_WR_RDMA_WRITE_WITH_IMM;
	struct rv_sge dst = {.addr = s->wr.remote_addr,
			     .length = (uint32_t)len};

	if (!lb_find_mr(qp->fab, peer->pd, s->wr.rkey, true, s->wr.remote_addr,
			len, RV_ACCESS_REMOTE_WRITE))
		return RV_WC_REM_ACCESS_ERR;
	if (imm && !peer->rq_count)
		return lb_rnr(qp, s);
	lb_sg_copy(&dst, 1, s->sge, s->wr.num_sge);
	if (imm)
		lb_recv_done(peer, RV_WC_SUCCESS, RV_WC_RECV_RDMA_WITH_IMM,
			     (uint32_t)len, s);
	return RV_WC_SUCCESS;
}

static int lb_execute(struct lb_qp *qp, struct lb_swr *s)
{
	struct lb_qp *peer = qp->peer;
	uint64_t len;

	if (!lb_sges_ok(qp->fab, qp->pd, s->sge, s->wr.num_sge, 0, &len))
		return RV_WC_LOC_PROT_ERR;
	if (!peer || peer->state == RV_QPS_ERR)
		return RV_WC_RETRY_EXC_ERR; /* nobody acknowledges */
	if (len > UINT32_MAX)
		return RV_WC_LOC_LEN_ERR;
	if (s->wr.opcode != RV_WR_SEND)
		return lb_write(qp, peer, s, len);
	if (!peer->rq_count)
		return lb_rnr(qp, s);
	return lb_deliver_send(qp, peer, s, len);
}

void lb_qp_progress(struct lb_qp *qp)
{
	while (qp->sq_count) {
		struct lb_swr *s = &qp->sq[qp->sq_head];
		int st = qp->state == RV_QPS_ERR ? RV_WC_WR_FLUSH_ERR
						 : lb_execute(qp, s);

		if (st == LB_BLOCKED)
			return;
		lb_send_done(qp, s, (enum rv_wc_status)st);
		qp->sq_head = (qp->sq_head + 1) % (int)qp->attr.max_send_wr;
		qp->sq_count--;
		if (st != RV_WC_SUCCESS)
			lb_qp_flush(qp, RV_WC_WR_FLUSH_ERR);
	}
}

void lb_progress_locked(struct lb_fabric *fab)
{
	for (struct lb_qp *qp = fab->qps; qp; qp = qp->next)
		if (qp->sq_count)
			lb_qp_progress(qp);
	for (struct lb_cq *cq = fab->cqs; cq; cq = cq->next)
		lb_cq_notify(cq);
}

/* --- posting ----------------------------------------------------------- */

static int lb_send_check(struct lb_qp *qp, const struct rv_send_wr *wr)
{
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->attr.max_send_sge)
		return -EINVAL;
	if (wr->opcode != RV_WR_SEND && wr->opcode != RV_WR_RDMA_WRITE &&
	    wr->opcode != RV_WR_RDMA_WRITE_WITH_IMM)
		return -EINVAL;
	if (qp->state != RV_QPS_RTS && qp->state != RV_QPS_ERR)
		return -EINVAL;
	if (qp->sq_seq - qp->sq_freed >= qp->attr.max_send_wr)
		return -ENOMEM;
	return lb_take_fault(&qp->fab->fail_post_in, qp->fab->fail_post_err);
}

int lb_post_send(struct rv_qp *q, const struct rv_send_wr *wr)
{
	struct lb_qp *qp = LB_QP(q);
	struct lb_swr *s;
	int ret;

	pthread_mutex_lock(&qp->fab->lock);
	ret = lb_send_check(qp, wr);
	if (!ret) {
		s = &qp->sq[(qp->sq_head + qp->sq_count) %
			    (int)qp->attr.max_send_wr];
		memset(s, 0, sizeof(*s));
		s->wr = *wr;
		if (wr->num_sge)
			memcpy(s->sge, wr->sg_list,
			       sizeof(*s->sge) * wr->num_sge);
		s->wr.sg_list = s->sge;
		s->seq = qp->sq_seq++;
		qp->sq_count++;
		lb_qp_progress(qp);
	}
	pthread_mutex_unlock(&qp->fab->lock);
	return ret;
}

int lb_post_recv(struct rv_qp *q, const struct rv_recv_wr *wr)
{
	struct lb_qp *qp = LB_QP(q);
	struct lb_rwr *r;
	int ret = 0;

	pthread_mutex_lock(&qp->fab->lock);
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->attr.max_recv_sge)
		ret = -EINVAL;
	else if ((uint32_t)qp->rq_count >= qp->attr.max_recv_wr)
		ret = -ENOMEM;
	else
		ret = lb_take_fault(&qp->fab->fail_post_in,
				    qp->fab->fail_post_err);
	if (!ret) {
		r = &qp->rq[(qp->rq_head + qp->rq_count) %
			    (int)qp->attr.max_recv_wr];
		r->wr = *wr;
		if (wr->num_sge)
			memcpy(r->sge, wr->sg_list,
			       sizeof(*r->sge) * wr->num_sge);
		r->wr.sg_list = r->sge;
		qp->rq_count++;
		if (qp->state == RV_QPS_ERR)
			lb_qp_flush(qp, RV_WC_WR_FLUSH_ERR);
		else if (qp->peer)
			lb_qp_progress(qp->peer);
	}
	pthread_mutex_unlock(&qp->fab->lock);
	return ret;
}
