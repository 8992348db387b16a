/* zerocopy.h — Linux MSG_ZEROCOPY on one connected socket fd: turning it
 * on (SO_ZEROCOPY), sending with it, and waiting for the kernel's
 * completion notifications on the socket's error queue. Private to
 * socket/ (socket.c wraps these as channel ops). The thread that owns the
 * socket's I/O only; *shut may be set by any thread. */
#ifndef MIGD_SOCKET_ZEROCOPY_H
#define MIGD_SOCKET_ZEROCOPY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/error.h"

/* Counts of sendmsg() calls, each of which the kernel reports complete
 * once (notifications carry ranges of these 32-bit call numbers).
 * Invariant: copied <= completed <= queued. Owner thread only. */
struct sock_zc {
	bool enabled;
	uint64_t queued;    /* calls that went out with MSG_ZEROCOPY */
	uint64_t completed; /* of those, reported done by the kernel */
	uint64_t copied;    /* of those, done with the kernel copying anyway */
};

/* SO_ZEROCOPY on fd: 0, or -errno (-EOPNOTSUPP: this kind of socket or
 * this kernel cannot). */
int sock_zc_enable(int fd, struct sock_zc *zc);
/* One sendmsg(MSG_ZEROCOPY|MSG_NOSIGNAL): bytes sent (> 0), or -errno
 * (-EAGAIN on a non-blocking fd, -ENOBUFS when the kernel cannot pin or
 * account the pages: RLIMIT_MEMLOCK or optmem_max). The buffers must stay
 * valid and should stay unchanged until sock_zc_flush() returns. */
ssize_t sock_zc_send(int fd, struct sock_zc *zc, const struct iovec *iov,
		     int iovcnt);
/* Blocks until every queued send has completed. 0 when nothing was
 * outstanding or at least one of them went without a copy; 1 when the
 * kernel copied all of them (QEMU's qio_channel_flush() result); -errno
 * with *errp on a socket error, -ECANCELED once *shut is set. */
int sock_zc_flush(int fd, struct sock_zc *zc, const atomic_bool *shut,
		  struct mig_error **errp);

#endif
