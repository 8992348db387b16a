/* channel.h — a migration byte channel behind one ops table: what every
 * transport (tcp/unix sockets today; tls, file, rdma later) implements and
 * the only thing the data plane (multifd/) sees of a transport.
 * A channel is used by one thread at a time (its owner: the migration
 * thread or one multifd worker); chan_shutdown() may be called from any
 * thread to kick the owner out of blocked I/O (cancel, failure). */
#ifndef MIGD_SOCKET_CHANNEL_H
#define MIGD_SOCKET_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct channel;
struct mig_error;

struct channel_ops {
	const char *name; /* "socket", "tls", "file", ... */
	/* Blocking scatter/gather I/O: bytes moved (> 0), 0 at end of stream
	 * (readv only), or -errno. May be partial. */
	ssize_t (*writev)(struct channel *ch, const struct iovec *iov,
			  int iovcnt);
	ssize_t (*readv)(struct channel *ch, const struct iovec *iov,
			 int iovcnt);
	/* Positioned I/O for seekable channels (file:); NULL otherwise. */
	ssize_t (*pwritev)(struct channel *ch, const struct iovec *iov,
			   int iovcnt, off_t offset);
	ssize_t (*preadv)(struct channel *ch, const struct iovec *iov,
			  int iovcnt, off_t offset);
	/* Makes blocked and future I/O fail at once (-ECANCELED for
	 * sockets). Any thread, any time before close. */
	void (*shutdown)(struct channel *ch);
	/* Releases everything (the struct too). Owner thread, after the
	 * last I/O. */
	void (*close)(struct channel *ch);
	/* The word QEMU's I/O errors use for this kind of channel ("Unable
	 * to write to %s"): NULL means "socket". */
	const char *(*noun)(const struct channel *ch);
	/* Zero-copy sending (Linux MSG_ZEROCOPY); all three NULL where the
	 * transport has none. Owner thread.
	 * zerocopy_enable: once, before the first writev_zerocopy: 0, or
	 * -EOPNOTSUPP when this socket type or kernel cannot, or -errno.
	 * writev_zerocopy: as writev, but the kernel may read the buffers
	 * after it returns, until a later flush returns: they must stay
	 * mapped, and what changes in them meanwhile may or may not go out.
	 * -ENOBUFS: the kernel could not pin/account the pages (memlock).
	 * flush: blocks until every zero-copy send has completed: 0 (none
	 * outstanding, or at least one went without a copy), 1 (the kernel
	 * copied every one of them: a "missed" zero copy), or -errno with
	 * *errp. */
	int (*zerocopy_enable)(struct channel *ch);
	ssize_t (*writev_zerocopy)(struct channel *ch, const struct iovec *iov,
				   int iovcnt);
	int (*flush)(struct channel *ch, struct mig_error **errp);
};

struct channel {
	const struct channel_ops *ops;
	int fd;		/* the descriptor underneath, -1 if none */
	char desc[128]; /* for messages: "tcp:127.0.0.1:4444", "unix:/p" */
	void *priv;	/* the transport's state */
};

/* Writes/reads everything or fails: 0 or -errno. They retry after EINTR
 * and partial transfers. A read that meets the end of the stream returns
 * -EPIPE (nothing read by this call) or -EPROTO (part read); a write that
 * makes no progress returns -EPIPE. After chan_shutdown() both fail with
 * -ECANCELED (socket channels). chan_writev_all() and chan_readv_all()
 * may modify iov (they advance over partial transfers). */
int chan_writev_all(struct channel *ch, struct iovec *iov, int iovcnt);
int chan_write_all(struct channel *ch, const void *buf, size_t len);
int chan_readv_all(struct channel *ch, struct iovec *iov, int iovcnt);
int chan_read_all(struct channel *ch, void *buf, size_t len);

/* Zero-copy counterparts (see the ops): chan_zerocopy_enable() is
 * -EOPNOTSUPP and chan_writev_zerocopy_all() -EOPNOTSUPP for transports
 * without zero-copy; chan_flush() is 0 for them (nothing to wait for).
 * chan_writev_zerocopy_all() writes everything as chan_writev_all() does,
 * each partial sendmsg being one zero-copy send. */
int chan_zerocopy_enable(struct channel *ch);
int chan_writev_zerocopy_all(struct channel *ch, struct iovec *iov, int iovcnt);
int chan_flush(struct channel *ch, struct mig_error **errp);

static inline void chan_shutdown(struct channel *ch)
{
	ch->ops->shutdown(ch);
}

/* "socket", "command" (exec:), "file" (files, pipes): for QEMU's "Unable
 * to write to socket: ..." style messages. */
static inline const char *chan_noun(const struct channel *ch)
{
	return ch && ch->ops->noun ? ch->ops->noun(ch) : "socket";
}

static inline void chan_close(struct channel *ch)
{
	if (ch)
		ch->ops->close(ch);
}

#endif
