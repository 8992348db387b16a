/* verbs_loopback.h — the seam's test backend: a deterministic in-process
 * RC fabric (verbs_loopback.c, verbs_loopback_data.c) that enforces the
 * verbs rules the transport must obey, plus fault injection.
 *
 * Rules it enforces (each is to be confirmed on rxe in tests/rdma_vm/):
 *  1. RDMA WRITE: rkey must name an MR in the responder QP's PD covering
 *     the range with REMOTE_WRITE, else REM_ACCESS_ERR on the requester,
 *     whose QP moves to error and flushes the rest (WR_FLUSH_ERR).
 *  2. Local SGEs: lkey in the QP's PD covering the range (receives also need
 *     LOCAL_WRITE), else LOC_PROT_ERR.
 *  3. SEND / WRITE_WITH_IMM consume receives in posted order; a message
 *     larger than the receive: LOC_LEN_ERR (responder), REM_INV_REQ_ERR
 *     (requester), both QPs to error.
 *  4. No receive posted: RNR. rnr_retry_count 0 fails at once with
 *     RNR_RETRY_EXC_ERR, 1..6 after that many RNR delays, 7 waits forever.
 *     Later WRs on that QP wait behind it (ordered execution).
 *  5. Send queue: post_send fails with -ENOMEM when max_send_wr WRs are
 *     outstanding; unsignaled WRs free their slots only when a later
 *     signaled (or error) completion of that QP is polled.
 *  6. Completions are in order per QP; a CQ that overruns its cqe reports
 *     -EOVERFLOW from poll_cq from then on.
 *  7. post_send needs RTS (after ESTABLISHED): -EINVAL before; post_recv
 *     works from creation. Posting to a QP in error completes the WR with
 *     WR_FLUSH_ERR.
 *  8. CM: ADDR_RESOLVED -> ROUTE_RESOLVED -> connect -> CONNECT_REQUEST
 *     (private data zero-padded to 56) -> accept -> ESTABLISHED on both
 *     (the active side gets accept's private data padded to 196);
 *     reject -> REJECTED status 28 with its data; nobody listening or a
 *     refused port -> REJECTED status 8; disconnect -> DISCONNECTED on both
 *     sides and both QPs flushed. Private data over 56 (connect), 196
 *     (accept), 148 (reject): -EINVAL.
 *  9. Teardown order: destroy_qp before destroy_id, MRs and QPs before
 *     dealloc_pd, QPs before destroy_cq, CQs before destroy_comp_channel,
 *     ids before destroy_event_channel; every get_cq_event acked before
 *     destroy_cq. Violations: -EBUSY (real rdma-core hangs or leaks).
 * Threads: any; one fabric mutex. */
#ifndef MIGD_RDMA_VERBS_LOOPBACK_H
#define MIGD_RDMA_VERBS_LOOPBACK_H

#include <stdint.h>

#include "rdma/verbs.h"

enum rv_loop_resolve_fault {
	RV_LOOP_RESOLVE_OK,
	RV_LOOP_ADDR_ERROR,  /* resolve_addr -> ADDR_ERROR */
	RV_LOOP_ROUTE_ERROR, /* resolve_route -> ROUTE_ERROR */
	RV_LOOP_UNREACHABLE, /* connect -> UNREACHABLE */
};

enum rv_loop_accept_fault {
	RV_LOOP_ACCEPT_OK,
	RV_LOOP_ACCEPT_SILENT, /* the active side never completes: no event */
	RV_LOOP_ACCEPT_LOST,   /* it vanished: CONNECT_ERROR to the passive */
};

struct rv_fabric *rv_loop_create(void);
/* Objects created and not yet destroyed (0 when everything was freed). */
unsigned int rv_loop_live_objects(struct rv_fabric *fab);

/* The nth post_send/post_recv from now (1 = the next) returns -err. */
void rv_loop_fail_post(struct rv_fabric *fab, unsigned int nth, int err);
/* The nth reg_mr from now fails with err (e.g. ENOMEM, as memlock does). */
void rv_loop_fail_reg(struct rv_fabric *fab, unsigned int nth, int err);
/* Connections to this port are refused (0: none). */
void rv_loop_refuse_port(struct rv_fabric *fab, uint16_t port);
void rv_loop_set_resolve_fault(struct rv_fabric *fab,
			       enum rv_loop_resolve_fault fault);
/* Every reg_mr of 1 MiB or more takes ms (pinning guest RAM), outside
 * the fabric lock. */
void rv_loop_set_reg_delay(struct rv_fabric *fab, int ms);
/* The nth accept from now (1 = the next) succeeds but meets fault. */
void rv_loop_set_accept_fault(struct rv_fabric *fab, unsigned int nth,
			      enum rv_loop_accept_fault fault);
/* Completions become visible delay_ms after the work completes. */
void rv_loop_set_delay(struct rv_fabric *fab, int delay_ms);
/* One RNR retry lasts ms (default 1). */
void rv_loop_set_rnr_delay(struct rv_fabric *fab, int ms);
/* The host owning qp dies: its peer's in-flight send fails with
 * RETRY_EXC_ERR, everything else on both QPs is flushed, both ids get
 * DISCONNECTED. 0, or -ENOTCONN when qp has no peer. */
int rv_loop_kill(struct rv_fabric *fab, struct rv_qp *qp);

#endif
