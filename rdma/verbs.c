/* verbs.c — the backend-independent half of the seam (verbs.h): bounded,
 * cancellable waits on the event and completion channels' fds, and names
 * for statuses and events. Any thread; a wait only touches the objects it
 * is given, which its caller owns. */
#include "rdma/verbs.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>

/* Slice between progress() calls for fabrics with timers. */
#define RV_PROGRESS_SLICE_MS 1

static int64_t rv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rv_poll_once(int fd, int cancel_fd, int ms)
{
	struct pollfd pfd[2] = {
		{.fd = fd, .events = POLLIN},
		{.fd = cancel_fd, .events = POLLIN},
	};
	int n = poll(pfd, cancel_fd >= 0 ? 2 : 1, ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (cancel_fd >= 0 && pfd[1].revents)
		return -ECANCELED;
	if (pfd[0].revents & POLLNVAL)
		return -EBADF;
	return pfd[0].revents ? 1 : 0;
}

int rv_wait_fd(struct rv_fabric *fab, int fd, int cancel_fd, int timeout_ms)
{
	int64_t deadline = rv_now_ms() + timeout_ms;
	bool timers = fab && fab->ops->progress;

	for (;;) {
		int64_t left = timeout_ms < 0 ? -1 : deadline - rv_now_ms();
		int slice, ret;

		if (timers)
			fab->ops->progress(fab);
		if (timeout_ms >= 0 && left < 0)
			left = 0;
		slice = (int)left;
		if (timers && (slice < 0 || slice > RV_PROGRESS_SLICE_MS))
			slice = RV_PROGRESS_SLICE_MS;
		ret = rv_poll_once(fd, cancel_fd, slice);
		if (ret)
			return ret < 0 ? ret : 0;
		if (timeout_ms >= 0 && rv_now_ms() >= deadline)
			return -ETIMEDOUT;
	}
}

int rv_wait_cm_event(struct rv_fabric *fab, struct rv_event_channel *ch,
		     struct rv_cm_event *ev, int cancel_fd, int timeout_ms)
{
	int64_t deadline = rv_now_ms() + timeout_ms;
	int fd = fab->ops->event_channel_fd(ch);

	for (;;) {
		int left = timeout_ms < 0 ? -1 : (int)(deadline - rv_now_ms());
		int ret = fab->ops->get_cm_event(ch, ev);

		if (ret != -EAGAIN)
			return ret;
		if (timeout_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		ret = rv_wait_fd(fab, fd, cancel_fd, left);
		if (ret)
			return ret;
	}
}

/* One poll; on empty, arm and poll again (closes the arm/poll race). */
static int rv_poll_armed(struct rv_fabric *fab, struct rv_cq *cq,
			 struct rv_wc *wc, bool *armed)
{
	int ret = fab->ops->poll_cq(cq, 1, wc);

	if (ret || *armed)
		return ret;
	ret = fab->ops->req_notify_cq(cq);
	if (ret)
		return ret;
	*armed = true;
	return fab->ops->poll_cq(cq, 1, wc);
}

int rv_wait_wc(struct rv_fabric *fab, struct rv_comp_channel *cc,
	       struct rv_cq *cq, struct rv_wc *wc, int cancel_fd,
	       int timeout_ms)
{
	int64_t deadline = rv_now_ms() + timeout_ms;
	int fd = fab->ops->comp_channel_fd(cc);
	bool armed = false;

	for (;;) {
		int left = timeout_ms < 0 ? -1 : (int)(deadline - rv_now_ms());
		struct rv_cq *ev_cq;
		int ret = rv_poll_armed(fab, cq, wc, &armed);

		if (ret)
			return ret;
		if (timeout_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		ret = rv_wait_fd(fab, fd, cancel_fd, left);
		if (ret)
			return ret;
		while (fab->ops->get_cq_event(cc, &ev_cq) == 0) {
			fab->ops->ack_cq_events(ev_cq, 1);
			if (ev_cq == cq)
				armed = false;
		}
	}
}

const char *rv_wc_status_str(enum rv_wc_status status)
{
	switch (status) {
	case RV_WC_SUCCESS:
		return "success";
	case RV_WC_LOC_LEN_ERR:
		return "local length error";
	case RV_WC_LOC_QP_OP_ERR:
		return "local QP operation error";
	case RV_WC_LOC_PROT_ERR:
		return "local protection error";
	case RV_WC_WR_FLUSH_ERR:
		return "Work Request Flushed Error";
	case RV_WC_REM_INV_REQ_ERR:
		return "remote invalid request error";
	case RV_WC_REM_ACCESS_ERR:
		return "remote access error";
	case RV_WC_REM_OP_ERR:
		return "remote operation error";
	case RV_WC_RETRY_EXC_ERR:
		return "transport retry counter exceeded";
	case RV_WC_RNR_RETRY_EXC_ERR:
		return "RNR retry counter exceeded";
	case RV_WC_GENERAL_ERR:
		return "general error";
	}
	return "unknown";
}

const char *rv_cm_event_str(enum rv_cm_event_type type)
{
	static const char *const names[] = {
		[RV_CM_NONE] = "RDMA_CM_EVENT_NONE",
		[RV_CM_ADDR_RESOLVED] = "RDMA_CM_EVENT_ADDR_RESOLVED",
		[RV_CM_ADDR_ERROR] = "RDMA_CM_EVENT_ADDR_ERROR",
		[RV_CM_ROUTE_RESOLVED] = "RDMA_CM_EVENT_ROUTE_RESOLVED",
		[RV_CM_ROUTE_ERROR] = "RDMA_CM_EVENT_ROUTE_ERROR",
		[RV_CM_CONNECT_REQUEST] = "RDMA_CM_EVENT_CONNECT_REQUEST",
		[RV_CM_CONNECT_ERROR] = "RDMA_CM_EVENT_CONNECT_ERROR",
		[RV_CM_UNREACHABLE] = "RDMA_CM_EVENT_UNREACHABLE",
		[RV_CM_REJECTED] = "RDMA_CM_EVENT_REJECTED",
		[RV_CM_ESTABLISHED] = "RDMA_CM_EVENT_ESTABLISHED",
		[RV_CM_DISCONNECTED] = "RDMA_CM_EVENT_DISCONNECTED",
		[RV_CM_DEVICE_REMOVAL] = "RDMA_CM_EVENT_DEVICE_REMOVAL",
		[RV_CM_TIMEWAIT_EXIT] = "RDMA_CM_EVENT_TIMEWAIT_EXIT",
		[RV_CM_OTHER] = "RDMA_CM_EVENT_OTHER",
	};

	if ((unsigned int)type >= sizeof(names) / sizeof(names[0]))
		return "RDMA_CM_EVENT_UNKNOWN";
	return names[type];
}
