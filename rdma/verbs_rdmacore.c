/* verbs_rdmacore.c — the seam's real backend: 1:1 calls into librdmacm and
 * libibverbs (rdma-core 44). The only file that includes their headers.
 * Exercised only on a real or soft-RoCE device (tests/rdma_vm/); the unit
 * tests use verbs_loopback.c. Any thread, as verbs.h says. */
#include "rdma/verbs.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

struct rc_fabric {
	struct rv_fabric base;
};

struct rc_mr {
	struct rv_mr base;
	struct ibv_mr *mr;
};

#define RC_ID(p) ((struct rdma_cm_id *)(p))
#define RC_CH(p) ((struct rdma_event_channel *)(p))
#define RC_PD(p) ((struct ibv_pd *)(p))
#define RC_CQ(p) ((struct ibv_cq *)(p))
#define RC_CC(p) ((struct ibv_comp_channel *)(p))
#define RC_QP(p) ((struct rdma_cm_id *)(p))

static int rc_errno(int ret)
{
	return ret ? (errno ? -errno : -EIO) : 0;
}

static int rc_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void rc_destroy(struct rv_fabric *fab)
{
	free(fab);
}

static struct rv_event_channel *rc_create_event_channel(struct rv_fabric *f,
							int *err)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();

	if (!ch) {
		*err = errno ? errno : ENODEV;
		return NULL;
	}
	if (rc_set_nonblock(ch->fd)) {
		*err = errno;
		rdma_destroy_event_channel(ch);
		return NULL;
	}
	return (struct rv_event_channel *)ch;
}

static int rc_destroy_event_channel(struct rv_event_channel *ch)
{
	rdma_destroy_event_channel(RC_CH(ch));
	return 0;
}

static int rc_event_channel_fd(struct rv_event_channel *ch)
{
	return RC_CH(ch)->fd;
}

static enum rv_cm_event_type rc_event_type(enum rdma_cm_event_type t)
{
	switch (t) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		return RV_CM_ADDR_RESOLVED;
	case RDMA_CM_EVENT_ADDR_ERROR:
		return RV_CM_ADDR_ERROR;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		return RV_CM_ROUTE_RESOLVED;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		return RV_CM_ROUTE_ERROR;
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		return RV_CM_CONNECT_REQUEST;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		return RV_CM_CONNECT_ERROR;
	case RDMA_CM_EVENT_UNREACHABLE:
		return RV_CM_UNREACHABLE;
	case RDMA_CM_EVENT_REJECTED:
		return RV_CM_REJECTED;
	case RDMA_CM_EVENT_ESTABLISHED:
		return RV_CM_ESTABLISHED;
	case RDMA_CM_EVENT_DISCONNECTED:
		return RV_CM_DISCONNECTED;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		return RV_CM_DEVICE_REMOVAL;
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		return RV_CM_TIMEWAIT_EXIT;
	default:
		return RV_CM_OTHER;
	}
}

/* Copies the event out and acknowledges it at once. */
static int rc_get_cm_event(struct rv_event_channel *ch, struct rv_cm_event *ev)
{
	struct rdma_cm_event *e;
	size_t len;

	if (rdma_get_cm_event(RC_CH(ch), &e))
		return errno ? -errno : -EIO;
	memset(ev, 0, sizeof(*ev));
	ev->type = rc_event_type(e->event);
	ev->status = e->status;
	ev->id = (struct rv_cm_id *)e->id;
	ev->listen_id = (struct rv_cm_id *)e->listen_id;
	len = e->param.conn.private_data_len;
	if (len > RV_PRIVATE_DATA_MAX)
		len = RV_PRIVATE_DATA_MAX;
	if (e->param.conn.private_data && len) {
		memcpy(ev->private_data, e->param.conn.private_data, len);
		ev->private_data_len = (uint8_t)len;
	}
	rdma_ack_cm_event(e);
	return 0;
}

static struct rv_cm_id *rc_create_id(struct rv_event_channel *ch, void *context,
				     int *err)
{
	struct rdma_cm_id *id;

	if (rdma_create_id(RC_CH(ch), &id, context, RDMA_PS_TCP)) {
		*err = errno ? errno : EIO;
		return NULL;
	}
	return (struct rv_cm_id *)id;
}

static int rc_destroy_id(struct rv_cm_id *id)
{
	return rc_errno(rdma_destroy_id(RC_ID(id)));
}

static void *rc_id_context(struct rv_cm_id *id)
{
	return RC_ID(id)->context;
}

static void rc_set_id_context(struct rv_cm_id *id, void *context)
{
	RC_ID(id)->context = context;
}

/* rdma_getaddrinfo() for host:port; passive for listeners. */
static int rc_getaddrinfo(const char *host, uint16_t port, bool passive,
			  struct rdma_addrinfo **res)
{
	struct rdma_addrinfo hints = {.ai_port_space = RDMA_PS_TCP};
	char service[8];

	if (passive)
		hints.ai_flags = RAI_PASSIVE;
	snprintf(service, sizeof(service), "%u", (unsigned int)port);
	if (rdma_getaddrinfo(host && *host ? host : NULL, service, &hints, res))
		return errno ? -errno : -EHOSTUNREACH;
	return 0;
}

static int rc_listen(struct rv_cm_id *id, const char *host, uint16_t port,
		     int backlog)
{
	struct rdma_addrinfo *res;
	int ret = rc_getaddrinfo(host, port, true, &res);

	if (ret)
		return ret;
	ret = rc_errno(rdma_bind_addr(RC_ID(id), res->ai_src_addr));
	rdma_freeaddrinfo(res);
	if (ret)
		return ret;
	return rc_errno(rdma_listen(RC_ID(id), backlog));
}

static int rc_resolve_addr(struct rv_cm_id *id, const char *host, uint16_t port,
			   int timeout_ms)
{
	struct rdma_addrinfo *res, *e;
	int ret = rc_getaddrinfo(host, port, false, &res);

	if (ret)
		return ret;
	ret = -EHOSTUNREACH;
	for (e = res; e && ret; e = e->ai_next)
		ret = rc_errno(rdma_resolve_addr(RC_ID(id), NULL,
						 e->ai_dst_addr, timeout_ms));
	rdma_freeaddrinfo(res);
	return ret;
}

static int rc_resolve_route(struct rv_cm_id *id, int timeout_ms)
{
	return rc_errno(rdma_resolve_route(RC_ID(id), timeout_ms));
}

static void rc_conn_param(const struct rv_conn_param *p,
			  struct rdma_conn_param *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->private_data = p->private_data;
	cp->private_data_len = p->private_data_len;
	cp->responder_resources = p->responder_resources;
	cp->initiator_depth = p->initiator_depth;
	cp->retry_count = p->retry_count;
	cp->rnr_retry_count = p->rnr_retry_count;
}

static int rc_connect(struct rv_cm_id *id, const struct rv_conn_param *p)
{
	struct rdma_conn_param cp;

	if (p->private_data_len > RV_CONNECT_PRIVATE_MAX)
		return -EINVAL;
	rc_conn_param(p, &cp);
	return rc_errno(rdma_connect(RC_ID(id), &cp));
}

static int rc_accept(struct rv_cm_id *id, const struct rv_conn_param *p)
{
	struct rdma_conn_param cp;

	if (p->private_data_len > RV_ACCEPT_PRIVATE_MAX)
		return -EINVAL;
	rc_conn_param(p, &cp);
	return rc_errno(rdma_accept(RC_ID(id), &cp));
}

static int rc_reject(struct rv_cm_id *id, const void *data, uint8_t len)
{
	if (len > RV_REJECT_PRIVATE_MAX)
		return -EINVAL;
	return rc_errno(rdma_reject(RC_ID(id), data, len));
}

static int rc_disconnect(struct rv_cm_id *id)
{
	return rc_errno(rdma_disconnect(RC_ID(id)));
}

static struct rv_pd *rc_alloc_pd(struct rv_cm_id *id, int *err)
{
	struct ibv_pd *pd;

	if (!RC_ID(id)->verbs) {
		*err = ENODEV;
		return NULL;
	}
	pd = ibv_alloc_pd(RC_ID(id)->verbs);
	if (!pd)
		*err = errno ? errno : ENOMEM;
	return (struct rv_pd *)pd;
}

static int rc_dealloc_pd(struct rv_pd *pd)
{
	return -ibv_dealloc_pd(RC_PD(pd));
}

static struct rv_mr *rc_reg_mr(struct rv_pd *pd, void *addr, size_t len,
			       int access, int *err)
{
	struct rc_mr *m = calloc(1, sizeof(*m));

	if (!m) {
		*err = ENOMEM;
		return NULL;
	}
	m->mr = ibv_reg_mr(RC_PD(pd), addr, len, access);
	if (!m->mr) {
		*err = errno ? errno : ENOMEM;
		free(m);
		return NULL;
	}
	m->base = (struct rv_mr){.addr = addr,
				 .length = len,
				 .lkey = m->mr->lkey,
				 .rkey = m->mr->rkey,
				 .access = access};
	return &m->base;
}

static int rc_dereg_mr(struct rv_mr *mr)
{
	struct rc_mr *m = (struct rc_mr *)mr;
	int ret = -ibv_dereg_mr(m->mr);

	if (!ret)
		free(m);
	return ret;
}

static struct rv_comp_channel *rc_create_comp_channel(struct rv_cm_id *id,
						      int *err)
{
	struct ibv_comp_channel *cc;

	if (!RC_ID(id)->verbs) {
		*err = ENODEV;
		return NULL;
	}
	cc = ibv_create_comp_channel(RC_ID(id)->verbs);
	if (!cc) {
		*err = errno ? errno : ENOMEM;
		return NULL;
	}
	if (rc_set_nonblock(cc->fd)) {
		*err = errno;
		ibv_destroy_comp_channel(cc);
		return NULL;
	}
	return (struct rv_comp_channel *)cc;
}

static int rc_destroy_comp_channel(struct rv_comp_channel *cc)
{
	return -ibv_destroy_comp_channel(RC_CC(cc));
}

static int rc_comp_channel_fd(struct rv_comp_channel *cc)
{
	return RC_CC(cc)->fd;
}

static struct rv_cq *rc_create_cq(struct rv_cm_id *id, int cqe,
				  struct rv_comp_channel *cc, int *err)
{
	struct ibv_cq *cq;

	if (!RC_ID(id)->verbs) {
		*err = ENODEV;
		return NULL;
	}
	cq = ibv_create_cq(RC_ID(id)->verbs, cqe, NULL, RC_CC(cc), 0);
	if (!cq)
		*err = errno ? errno : ENOMEM;
	return (struct rv_cq *)cq;
}

static int rc_destroy_cq(struct rv_cq *cq)
{
	return -ibv_destroy_cq(RC_CQ(cq));
}

static int rc_req_notify_cq(struct rv_cq *cq)
{
	return -ibv_req_notify_cq(RC_CQ(cq), 0);
}

static int rc_get_cq_event(struct rv_comp_channel *cc, struct rv_cq **cq)
{
	struct ibv_cq *ev_cq;
	void *ctx;

	if (ibv_get_cq_event(RC_CC(cc), &ev_cq, &ctx))
		return errno ? -errno : -EIO;
	*cq = (struct rv_cq *)ev_cq;
	return 0;
}

static void rc_ack_cq_events(struct rv_cq *cq, unsigned int n)
{
	ibv_ack_cq_events(RC_CQ(cq), n);
}

/* The seam's QP handle is the cm id that owns it (rdma_create_qp). */
static struct rv_qp *rc_create_qp(struct rv_cm_id *id, struct rv_pd *pd,
				  const struct rv_qp_init_attr *a, int *err)
{
	struct ibv_qp_init_attr attr = {
		.send_cq = RC_CQ(a->send_cq),
		.recv_cq = RC_CQ(a->recv_cq),
		.qp_type = IBV_QPT_RC,
		.cap = {.max_send_wr = a->max_send_wr,
			.max_recv_wr = a->max_recv_wr,
			.max_send_sge = a->max_send_sge,
			.max_recv_sge = a->max_recv_sge},
	};

	if (rdma_create_qp(RC_ID(id), RC_PD(pd), &attr)) {
		*err = errno ? errno : EIO;
		return NULL;
	}
	return (struct rv_qp *)id;
}

static int rc_destroy_qp(struct rv_qp *qp)
{
	rdma_destroy_qp(RC_QP(qp));
	return 0;
}

static int rc_modify_qp_state(struct rv_qp *qp, enum rv_qp_state state)
{
	struct ibv_qp_attr attr = {.qp_state = IBV_QPS_ERR};

	if (state != RV_QPS_ERR)
		return -EINVAL;
	return -ibv_modify_qp(RC_QP(qp)->qp, &attr, IBV_QP_STATE);
}

static void rc_sges(const struct rv_sge *in, int n, struct ibv_sge *out)
{
	for (int i = 0; i < n; i++)
		out[i] = (struct ibv_sge){.addr = in[i].addr,
					  .length = in[i].length,
					  .lkey = in[i].lkey};
}

static int rc_post_send(struct rv_qp *qp, const struct rv_send_wr *wr)
{
	struct ibv_sge sge[RV_MAX_SGE];
	struct ibv_send_wr w = {.wr_id = wr->wr_id,
				.sg_list = sge,
				.num_sge = wr->num_sge},
			   *bad;

	if (wr->num_sge < 0 || wr->num_sge > RV_MAX_SGE)
		return -EINVAL;
	rc_sges(wr->sg_list, wr->num_sge, sge);
	w.send_flags = wr->signaled ? IBV_SEND_SIGNALED : 0;
	if (wr->opcode == RV_WR_SEND) {
		w.opcode = IBV_WR_SEND;
	} else {
		w.opcode = wr->opcode == RV_WR_RDMA_WRITE
				   ? IBV_WR_RDMA_WRITE
				   : IBV_WR_RDMA_WRITE_WITH_IMM;
		w.imm_data = htobe32(wr->imm_data);
		w.wr.rdma.remote_addr = wr->remote_addr;
		w.wr.rdma.rkey = wr->rkey;
	}
	return -ibv_post_send(RC_QP(qp)->qp, &w, &bad);
}

static int rc_post_recv(struct rv_qp *qp, const struct rv_recv_wr *wr)
{
	struct ibv_sge sge[RV_MAX_SGE];
	struct ibv_recv_wr w = {.wr_id = wr->wr_id,
				.sg_list = sge,
				.num_sge = wr->num_sge},
			   *bad;

	if (wr->num_sge < 0 || wr->num_sge > RV_MAX_SGE)
		return -EINVAL;
	rc_sges(wr->sg_list, wr->num_sge, sge);
	return -ibv_post_recv(RC_QP(qp)->qp, &w, &bad);
}

static enum rv_wc_opcode rc_wc_opcode(enum ibv_wc_opcode op)
{
	switch (op) {
	case IBV_WC_RDMA_WRITE:
		return RV_WC_RDMA_WRITE;
	case IBV_WC_RECV:
		return RV_WC_RECV;
	case IBV_WC_RECV_RDMA_WITH_IMM:
		return RV_WC_RECV_RDMA_WITH_IMM;
	default:
		return RV_WC_SEND;
	}
}

/* QPs are reported as NULL: the transport tells QPs apart by wr_id. */
static int rc_poll_cq(struct rv_cq *cq, int n, struct rv_wc *wc)
{
	struct ibv_wc w[16];
	int got, i;

	if (n > 16)
		n = 16;
	got = ibv_poll_cq(RC_CQ(cq), n, w);
	if (got < 0)
		return -EIO;
	for (i = 0; i < got; i++) {
		wc[i] = (struct rv_wc){
			.wr_id = w[i].wr_id,
			.status = (enum rv_wc_status)w[i].status,
			.opcode = rc_wc_opcode(w[i].opcode),
			.byte_len = w[i].byte_len,
			.has_imm = !!(w[i].wc_flags & IBV_WC_WITH_IMM),
			.imm_data = be32toh(w[i].imm_data),
		};
	}
	return got;
}

static const struct rv_ops rc_ops = {
	.name = "rdma-core",
	.destroy = rc_destroy,
	.create_event_channel = rc_create_event_channel,
	.destroy_event_channel = rc_destroy_event_channel,
	.event_channel_fd = rc_event_channel_fd,
	.get_cm_event = rc_get_cm_event,
	.create_id = rc_create_id,
	.destroy_id = rc_destroy_id,
	.id_context = rc_id_context,
	.set_id_context = rc_set_id_context,
	.listen = rc_listen,
	.resolve_addr = rc_resolve_addr,
	.resolve_route = rc_resolve_route,
	.connect = rc_connect,
	.accept = rc_accept,
	.reject = rc_reject,
	.disconnect = rc_disconnect,
	.alloc_pd = rc_alloc_pd,
	.dealloc_pd = rc_dealloc_pd,
	.reg_mr = rc_reg_mr,
	.dereg_mr = rc_dereg_mr,
	.create_comp_channel = rc_create_comp_channel,
	.destroy_comp_channel = rc_destroy_comp_channel,
	.comp_channel_fd = rc_comp_channel_fd,
	.create_cq = rc_create_cq,
	.destroy_cq = rc_destroy_cq,
	.req_notify_cq = rc_req_notify_cq,
	.get_cq_event = rc_get_cq_event,
	.ack_cq_events = rc_ack_cq_events,
	.create_qp = rc_create_qp,
	.destroy_qp = rc_destroy_qp,
	.modify_qp_state = rc_modify_qp_state,
	.post_send = rc_post_send,
	.post_recv = rc_post_recv,
	.poll_cq = rc_poll_cq,
};

struct rv_fabric *rv_rdmacore_create(void)
{
	struct rc_fabric *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->base.ops = &rc_ops;
	return &f->base;
}
