/* verbs.h — migd's own seam over rdma-core: every librdmacm/libibverbs call
 * the rdma: transport makes goes through one ops table (struct rv_ops) with
 * two backends: verbs_rdmacore.c (the real libraries) and verbs_loopback.c
 * (a deterministic in-process fabric with fault injection, for tests).
 * Nothing outside verbs_rdmacore.c includes rdma-core headers.
 * Threads: every op may be called from any thread; one QP (and its CQs) is
 * used by one thread at a time. rv_wait_fd() may be kicked from any thread
 * through the caller's cancel fd (an eventfd written by shutdown). */
#ifndef MIGD_RDMA_VERBS_H
#define MIGD_RDMA_VERBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Private-data limits of rdma_cm with RDMA_PS_TCP over IB/RoCE (IB CM REQ
 * 92 bytes and REP 196 bytes, minus rdma_cm's 36-byte header on connect;
 * rdma_connect(3), rdma_accept(3)). The receiver sees the data padded with
 * zeros to the full size. REJ carries 148 bytes. */
#define RV_CONNECT_PRIVATE_MAX 56
#define RV_ACCEPT_PRIVATE_MAX 196
#define RV_REJECT_PRIVATE_MAX 148
#define RV_PRIVATE_DATA_MAX 196
#define RV_MAX_SGE 4
/* rnr_retry_count 7 means "retry forever" (IB spec). */
#define RV_RNR_RETRY_INFINITE 7

struct rv_fabric;
struct rv_event_channel;
struct rv_cm_id;
struct rv_pd;
struct rv_cq;
struct rv_comp_channel;
struct rv_qp;

/* Access flags: the values of enum ibv_access_flags. */
enum {
	RV_ACCESS_LOCAL_WRITE = 1,
	RV_ACCESS_REMOTE_WRITE = 2,
	RV_ACCESS_REMOTE_READ = 4,
};

/* A registered memory region; backends embed it. Read-only for callers. */
struct rv_mr {
	void *addr;
	size_t length;
	uint32_t lkey;
	uint32_t rkey;
	int access;
};

enum rv_cm_event_type {
	RV_CM_NONE,
	RV_CM_ADDR_RESOLVED,
	RV_CM_ADDR_ERROR,
	RV_CM_ROUTE_RESOLVED,
	RV_CM_ROUTE_ERROR,
	RV_CM_CONNECT_REQUEST,
	RV_CM_CONNECT_ERROR,
	RV_CM_UNREACHABLE,
	RV_CM_REJECTED,
	RV_CM_ESTABLISHED,
	RV_CM_DISCONNECTED,
	RV_CM_DEVICE_REMOVAL,
	RV_CM_TIMEWAIT_EXIT,
	RV_CM_OTHER,
};

/* A connection-manager event, copied out and already acknowledged by the
 * backend (no event object crosses the seam, so none can leak). */
struct rv_cm_event {
	enum rv_cm_event_type type;
	int status;	     /* the event's status (reject reason, -errno) */
	struct rv_cm_id *id; /* the new id on CONNECT_REQUEST */
	struct rv_cm_id *listen_id; /* the listener, on CONNECT_REQUEST */
	uint8_t private_data[RV_PRIVATE_DATA_MAX];
	uint8_t private_data_len;
};

struct rv_conn_param {
	const void *private_data;
	uint8_t private_data_len;
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t retry_count;	 /* transport retries (0..7) */
	uint8_t rnr_retry_count; /* 0..6, or RV_RNR_RETRY_INFINITE */
};

enum rv_qp_state {
	RV_QPS_RESET,
	RV_QPS_INIT,
	RV_QPS_RTR,
	RV_QPS_RTS,
	RV_QPS_ERR
};

struct rv_qp_init_attr {
	struct rv_cq *send_cq;
	struct rv_cq *recv_cq;
	uint32_t max_send_wr;
	uint32_t max_recv_wr;
	uint32_t max_send_sge;
	uint32_t max_recv_sge;
};

enum rv_wr_opcode {
	RV_WR_SEND,
	RV_WR_RDMA_WRITE,
	RV_WR_RDMA_WRITE_WITH_IMM,
};

struct rv_sge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
};

/* One work request per post (no chains: the failing WR is always this
 * one). imm_data is in host order; backends convert. */
struct rv_send_wr {
	uint64_t wr_id;
	enum rv_wr_opcode opcode;
	const struct rv_sge *sg_list;
	int num_sge;
	bool signaled;
	uint32_t imm_data;
	uint64_t remote_addr;
	uint32_t rkey;
};

struct rv_recv_wr {
	uint64_t wr_id;
	const struct rv_sge *sg_list;
	int num_sge;
};

/* The values of enum ibv_wc_status. */
enum rv_wc_status {
	RV_WC_SUCCESS = 0,
	RV_WC_LOC_LEN_ERR = 1,
	RV_WC_LOC_QP_OP_ERR = 2,
	RV_WC_LOC_PROT_ERR = 4,
	RV_WC_WR_FLUSH_ERR = 5,
	RV_WC_REM_INV_REQ_ERR = 9,
	RV_WC_REM_ACCESS_ERR = 10,
	RV_WC_REM_OP_ERR = 11,
	RV_WC_RETRY_EXC_ERR = 12,
	RV_WC_RNR_RETRY_EXC_ERR = 13,
	RV_WC_GENERAL_ERR = 21,
};

enum rv_wc_opcode {
	RV_WC_SEND,
	RV_WC_RDMA_WRITE,
	RV_WC_RECV,
	RV_WC_RECV_RDMA_WITH_IMM,
};

struct rv_wc {
	uint64_t wr_id;
	enum rv_wc_status status;
	enum rv_wc_opcode opcode;
	uint32_t byte_len;
	uint32_t imm_data; /* host order; valid when has_imm */
	bool has_imm;
	struct rv_qp *qp;
};

/* All int-returning ops return 0 or -errno; constructors return NULL and
 * set *err to a positive errno. */
struct rv_ops {
	const char *name;
	void (*destroy)(struct rv_fabric *fab);

	/* Connection manager: the channel's fd is non-blocking and readable
	 * while events are pending; get_cm_event is -EAGAIN when none. */
	struct rv_event_channel *(*create_event_channel)(struct rv_fabric *fab,
							 int *err);
	int (*destroy_event_channel)(struct rv_event_channel *ch);
	int (*event_channel_fd)(struct rv_event_channel *ch);
	int (*get_cm_event)(struct rv_event_channel *ch,
			    struct rv_cm_event *ev);
	struct rv_cm_id *(*create_id)(struct rv_event_channel *ch,
				      void *context, int *err);
	int (*destroy_id)(struct rv_cm_id *id);
	void *(*id_context)(struct rv_cm_id *id);
	void (*set_id_context)(struct rv_cm_id *id, void *context);
	/* host NULL or "" listens on every address. */
	int (*listen)(struct rv_cm_id *id, const char *host, uint16_t port,
		      int backlog);
	int (*resolve_addr)(struct rv_cm_id *id, const char *host,
			    uint16_t port, int timeout_ms);
	int (*resolve_route)(struct rv_cm_id *id, int timeout_ms);
	int (*connect)(struct rv_cm_id *id, const struct rv_conn_param *p);
	int (*accept)(struct rv_cm_id *id, const struct rv_conn_param *p);
	int (*reject)(struct rv_cm_id *id, const void *data, uint8_t len);
	int (*disconnect)(struct rv_cm_id *id);

	/* Verbs objects; PDs come from the device a cm id resolved to. */
	struct rv_pd *(*alloc_pd)(struct rv_cm_id *id, int *err);
	int (*dealloc_pd)(struct rv_pd *pd);
	struct rv_mr *(*reg_mr)(struct rv_pd *pd, void *addr, size_t len,
				int access, int *err);
	int (*dereg_mr)(struct rv_mr *mr);
	struct rv_comp_channel *(*create_comp_channel)(struct rv_cm_id *id,
						       int *err);
	int (*destroy_comp_channel)(struct rv_comp_channel *cc);
	int (*comp_channel_fd)(struct rv_comp_channel *cc);
	struct rv_cq *(*create_cq)(struct rv_cm_id *id, int cqe,
				   struct rv_comp_channel *cc, int *err);
	int (*destroy_cq)(struct rv_cq *cq);
	int (*req_notify_cq)(struct rv_cq *cq);
	/* -EAGAIN when no event is pending. */
	int (*get_cq_event)(struct rv_comp_channel *cc, struct rv_cq **cq);
	void (*ack_cq_events)(struct rv_cq *cq, unsigned int n);
	/* An RC QP bound to the id (rdma_create_qp). */
	struct rv_qp *(*create_qp)(struct rv_cm_id *id, struct rv_pd *pd,
				   const struct rv_qp_init_attr *attr,
				   int *err);
	int (*destroy_qp)(struct rv_qp *qp);
	/* Only the move to RV_QPS_ERR is needed (flush on teardown). */
	int (*modify_qp_state)(struct rv_qp *qp, enum rv_qp_state state);
	int (*post_send)(struct rv_qp *qp, const struct rv_send_wr *wr);
	int (*post_recv)(struct rv_qp *qp, const struct rv_recv_wr *wr);
	/* Completions taken (0..n), or -errno (-EOVERFLOW: the CQ overran). */
	int (*poll_cq)(struct rv_cq *cq, int n, struct rv_wc *wc);

	/* Optional: drives timers (RNR retries, delayed completions) of
	 * fabrics that have them; rv_wait_fd() calls it between slices. */
	void (*progress)(struct rv_fabric *fab);
};

struct rv_fabric {
	const struct rv_ops *ops;
};

/* The real backend (verbs_rdmacore.c). Always succeeds; the libraries
 * report missing devices when used (-ENODEV). */
struct rv_fabric *rv_rdmacore_create(void);

static inline void rv_fabric_destroy(struct rv_fabric *fab)
{
	if (fab)
		fab->ops->destroy(fab);
}

/* Waits until fd is readable: 0, -ETIMEDOUT after timeout_ms (< 0: no
 * limit), -ECANCELED when cancel_fd (>= 0) is readable, or -errno. */
int rv_wait_fd(struct rv_fabric *fab, int fd, int cancel_fd, int timeout_ms);
/* Next CM event within timeout_ms (same returns as rv_wait_fd). */
int rv_wait_cm_event(struct rv_fabric *fab, struct rv_event_channel *ch,
		     struct rv_cm_event *ev, int cancel_fd, int timeout_ms);
/* Polls cq for one completion, sleeping on its completion channel between
 * polls (req_notify + get_cq_event + ack): 1 with *wc, or as rv_wait_fd. */
int rv_wait_wc(struct rv_fabric *fab, struct rv_comp_channel *cc,
	       struct rv_cq *cq, struct rv_wc *wc, int cancel_fd,
	       int timeout_ms);

const char *rv_wc_status_str(enum rv_wc_status status);
const char *rv_cm_event_str(enum rv_cm_event_type type);

#endif
