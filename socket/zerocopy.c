/* zerocopy.c — MSG_ZEROCOPY sends and their completion notifications (see
 * zerocopy.h). Owns the per-socket send/completion counts; does not own the
 * fd, cancellation (the shut flag is the channel's) or the pages sent.
 * Error messages are QEMU's (io/channel-socket.c) so error-desc matches.
 * The socket's owner thread only. */
#include "socket/zerocopy.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/errqueue.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>

#include "socket/socket_priv.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

int sock_zc_enable(int fd, struct sock_zc *zc)
{
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0) {
		/* EOPNOTSUPP: not TCP/UDP/RDS/vsock; ENOPROTOOPT: no
		 * SO_ZEROCOPY in this kernel */
		if (errno == ENOPROTOOPT || errno == EINVAL)
			return -EOPNOTSUPP;
		return -errno;
	}
	zc->enabled = true;
	return 0;
}

ssize_t sock_zc_send(int fd, struct sock_zc *zc, const struct iovec *iov,
		     int iovcnt)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = iovcnt < IOV_MAX ? (size_t)iovcnt : IOV_MAX,
	};
	ssize_t n;

	/* Without SO_ZEROCOPY, TCP ignores the flag and sends no
	 * notification: a later flush would wait for ever. */
	if (!zc->enabled)
		return -EOPNOTSUPP;
	do
		n = sendmsg(fd, &msg, MSG_ZEROCOPY | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* A call that sent something took one notification number; one
	 * that failed having sent nothing gave its number back. */
	if (n > 0)
		zc->queued++;
	return n;
}

/* The error-queue message kinds that carry a sock_extended_err. */
static bool is_recverr(const struct cmsghdr *cm)
{
	return (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
	       (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR) ||
	       (cm->cmsg_level == SOL_VSOCK && cm->cmsg_type == VSOCK_RECVERR);
}

/* Accounts one notification: the inclusive range [ee_info, ee_data] of
 * 32-bit call numbers (they wrap). */
static int account(struct sock_zc *zc, const struct sock_extended_err *ee,
		   bool *any_zero_copy, struct mig_error **errp)
{
	uint64_t n = (uint64_t)(uint32_t)(ee->ee_data - ee->ee_info) + 1;

	if (ee->ee_errno)
		return mig_error_setg_errno(errp, (int)ee->ee_errno,
					    "Error on socket");
	if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
		mig_error_setg(errp, "Error not from zero copy");
		return -EPROTO;
	}
	if (n > zc->queued - zc->completed) {
		mig_error_setg(errp, "Wrong notification bounds");
		return -EPROTO;
	}
	zc->completed += n;
	if (ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
		zc->copied += n;
	else
		*any_zero_copy = true;
	return 0;
}

/* Reads one notification without blocking: 1 when one was accounted, 0
 * when the queue is empty, -errno. */
static int read_notification(int fd, struct sock_zc *zc, bool *any_zero_copy,
			     struct mig_error **errp)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
				    sizeof(struct sockaddr_in6))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = {.msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *cm;
	int ret;

	while (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR)
			return mig_error_setg_errno(errp, errno,
						    "Unable to read errqueue");
	}
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || !is_recverr(cm) ||
	    cm->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err)))
		return mig_error_setg_errno(errp, EPROTOTYPE,
					    "Wrong cmsg in errqueue");
	ret = account(zc, (const struct sock_extended_err *)CMSG_DATA(cm),
		      any_zero_copy, errp);
	return ret ? ret : 1;
}

/* Waits for the error queue (poll reports it as POLLERR). *revents says
 * what woke us. */
static int wait_errqueue(int fd, const atomic_bool *shut, short *revents,
			 struct mig_error **errp)
{
	struct pollfd p = {.fd = fd, .events = 0};

	if (atomic_load(shut))
		return -ECANCELED;
	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return mig_error_setg_errno(errp, errno,
						    "Unable to read errqueue");
	*revents = p.revents;
	return atomic_load(shut) ? -ECANCELED : 0;
}

/* Woken, yet the queue is empty: a socket error or a hang-up (both make
 * poll return at once, so waiting again would spin). 0 if neither. */
static int check_dead(int fd, short revents, struct mig_error **errp)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err && (revents & (POLLHUP | POLLNVAL)))
		err = revents & POLLNVAL ? EBADF : EPIPE;
	return err ? mig_error_setg_errno(errp, err, "Error on socket") : 0;
}

int sock_zc_flush(int fd, struct sock_zc *zc, const atomic_bool *shut,
		  struct mig_error **errp)
{
	bool outstanding = zc->completed < zc->queued;
	bool any_zero_copy = false, woken = false;
	short revents = 0;
	int ret;

	while (zc->completed < zc->queued) {
		ret = read_notification(fd, zc, &any_zero_copy, errp);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			woken = false;
			continue;
		}
		if (woken && (ret = check_dead(fd, revents, errp)))
			return ret;
		ret = wait_errqueue(fd, shut, &revents, errp);
		if (ret)
			return ret;
		woken = true;
	}
	return outstanding && !any_zero_copy ? 1 : 0;
}
