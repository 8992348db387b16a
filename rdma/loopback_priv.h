/* loopback_priv.h — the loopback fabric's objects, shared by its CM half
 * (verbs_loopback.c) and its data-path half (verbs_loopback_data.c).
 * Locking: one mutex per fabric (lb_fabric.lock) guards every field of
 * every object below; the eventfds are written and drained under it, and
 * waiters poll() them without it (rv_wait_fd). */
#ifndef MIGD_RDMA_LOOPBACK_PRIV_H
#define MIGD_RDMA_LOOPBACK_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rdma/verbs.h"
#include "rdma/verbs_loopback.h"

struct lb_qp;

struct lb_fabric {
	struct rv_fabric base;
	pthread_mutex_t lock;
	uint32_t next_key;
	unsigned int live; /* objects not yet destroyed */
	struct lb_id *ids; /* every id (listener lookup) */
	struct lb_qp *qps; /* every QP (progress) */
	struct lb_cq *cqs; /* every CQ (progress) */
	struct lb_mr *mrs; /* every MR (key lookup) */
	/* Fault injection (verbs_loopback.h). */
	unsigned int fail_post_in, fail_reg_in;
	int fail_post_err, fail_reg_err;
	uint16_t refused_port;
	enum rv_loop_resolve_fault resolve_fault;
	int reg_delay_ms; /* reg_mr takes this long (a large pin) */
	unsigned int accept_fault_in;
	enum rv_loop_accept_fault accept_fault;
	int delay_ms, rnr_delay_ms;
};

/* A FIFO behind a level-triggered eventfd: readable iff non-empty. */
struct lb_evq {
	int efd;
	struct lb_evnode *head, *tail;
};

struct lb_evnode {
	struct lb_evnode *next;
	struct rv_cm_event ev; /* CM channels */
	struct lb_cq *cq;      /* completion channels */
};

struct lb_event_channel {
	struct lb_fabric *fab;
	struct lb_evq q;
	unsigned int nids;
};

enum lb_id_state {
	LB_ID_IDLE,
	LB_ID_ADDR,
	LB_ID_ROUTE,
	LB_ID_LISTEN,
	LB_ID_CONNECTING,
	LB_ID_CONNECTED,
	LB_ID_DISCONNECTED,
	LB_ID_REJECTED,
};

struct lb_id {
	struct lb_fabric *fab;
	struct lb_event_channel *ch;
	struct lb_id *next; /* fab->ids */
	void *context;
	enum lb_id_state state;
	bool passive;		/* created by a CONNECT_REQUEST */
	struct lb_id *peer;	/* the other end while connecting/connected */
	struct lb_id *listener; /* passive ids: who got the request */
	struct lb_qp *qp;
	char host[64];
	uint16_t port;
	int backlog, pending;
	uint8_t rnr_retry;
};

struct lb_pd {
	struct lb_fabric *fab;
	unsigned int users; /* MRs and QPs */
};

struct lb_mr {
	struct rv_mr base;
	struct lb_pd *pd;
	struct lb_mr *next;
};

struct lb_cc {
	struct lb_fabric *fab;
	struct lb_evq q;
	unsigned int ncq;
};

struct lb_cqe {
	struct rv_wc wc;
	int64_t visible_at; /* ms, monotonic */
	uint64_t seq;	    /* send completions: the WR's sequence */
	bool is_send;
};

struct lb_cq {
	struct lb_fabric *fab;
	struct lb_cq *next;
	struct lb_cc *cc;
	struct lb_cqe *ring;
	int cqe, head, count;
	bool armed, overflow;
	unsigned int nqp, events_got, events_acked;
};

struct lb_swr {
	struct rv_send_wr wr;
	struct rv_sge sge[RV_MAX_SGE];
	uint64_t seq;
	int64_t rnr_deadline; /* 0: not yet refused by the responder */
};

struct lb_rwr {
	struct rv_recv_wr wr;
	struct rv_sge sge[RV_MAX_SGE];
};

struct lb_qp {
	struct lb_fabric *fab;
	struct lb_qp *next;
	struct lb_id *id;
	struct lb_pd *pd;
	struct lb_cq *send_cq, *recv_cq;
	struct lb_qp *peer;
	enum rv_qp_state state;
	struct rv_qp_init_attr attr;
	/* Send queue: WRs not yet executed (blocked behind RNR). */
	struct lb_swr *sq;
	int sq_head, sq_count;
	/* Slots: posted minus freed by polled signaled completions. */
	uint64_t sq_seq, sq_freed;
	struct lb_rwr *rq;
	int rq_head, rq_count;
	uint8_t rnr_retry;
};

int64_t lb_now_ms(void);
int lb_evq_init(struct lb_evq *q);
void lb_evq_fini(struct lb_evq *q);
void lb_evq_push(struct lb_evq *q, struct lb_evnode *n);
struct lb_evnode *lb_evq_pop(struct lb_evq *q);

/* Data-path hooks the CM half calls (lock held). */
void lb_qp_flush(struct lb_qp *qp, enum rv_wc_status first);
void lb_qp_progress(struct lb_qp *qp);
void lb_progress_locked(struct lb_fabric *fab);

/* The data-path ops (verbs_loopback_data.c), as in struct rv_ops. */
struct rv_pd *lb_alloc_pd(struct rv_cm_id *id, int *err);
int lb_dealloc_pd(struct rv_pd *pd);
struct rv_mr *lb_reg_mr(struct rv_pd *pd, void *addr, size_t len, int access,
			int *err);
int lb_dereg_mr(struct rv_mr *mr);
struct rv_comp_channel *lb_create_comp_channel(struct rv_cm_id *id, int *err);
int lb_destroy_comp_channel(struct rv_comp_channel *cc);
int lb_comp_channel_fd(struct rv_comp_channel *cc);
struct rv_cq *lb_create_cq(struct rv_cm_id *id, int cqe,
			   struct rv_comp_channel *cc, int *err);
int lb_destroy_cq(struct rv_cq *cq);
int lb_req_notify_cq(struct rv_cq *cq);
int lb_get_cq_event(struct rv_comp_channel *cc, struct rv_cq **cq);
void lb_ack_cq_events(struct rv_cq *cq, unsigned int n);
struct rv_qp *lb_create_qp(struct rv_cm_id *id, struct rv_pd *pd,
			   const struct rv_qp_init_attr *attr, int *err);
int lb_destroy_qp(struct rv_qp *qp);
int lb_modify_qp_state(struct rv_qp *qp, enum rv_qp_state state);
int lb_post_send(struct rv_qp *qp, const struct rv_send_wr *wr);
int lb_post_recv(struct rv_qp *qp, const struct rv_recv_wr *wr);
int lb_poll_cq(struct rv_cq *cq, int n, struct rv_wc *wc);

#endif
