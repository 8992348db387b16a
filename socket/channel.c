/* channel.c — the transport-independent "everything or an error" loops
 * over a channel's readv/writev ops (see channel.h): partial transfers,
 * EINTR, end of stream. The channel's owner thread only. */
#include "socket/channel.h"

#include <errno.h>

/* Drops the first done bytes (and any empty entries) from the front of
 * *iovp[0..*cnt), trimming the entry where they end. */
static void iov_advance(struct iovec **iovp, int *cnt, size_t done)
{
	struct iovec *iov = *iovp;

	while (*cnt > 0 && done >= iov->iov_len) {
		done -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		iov->iov_base = (char *)iov->iov_base + done;
		iov->iov_len -= done;
	}
	*iovp = iov;
}

typedef ssize_t chan_writev_fn(struct channel *ch, const struct iovec *iov,
			       int iovcnt);

static int writev_all(struct channel *ch, chan_writev_fn *writev,
		      struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0)
		return -EINVAL;
	iov_advance(&iov, &iovcnt, 0);
	while (iovcnt > 0) {
		ssize_t n = writev(ch, iov, iovcnt);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0) /* no progress and no error: the peer is gone */
			return -EPIPE;
		iov_advance(&iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int chan_writev_all(struct channel *ch, struct iovec *iov, int iovcnt)
{
	return writev_all(ch, ch->ops->writev, iov, iovcnt);
}

int chan_zerocopy_enable(struct channel *ch)
{
	return ch->ops->zerocopy_enable ? ch->ops->zerocopy_enable(ch)
					: -EOPNOTSUPP;
}

int chan_writev_zerocopy_all(struct channel *ch, struct iovec *iov, int iovcnt)
{
	if (!ch->ops->writev_zerocopy)
		return -EOPNOTSUPP;
	return writev_all(ch, ch->ops->writev_zerocopy, iov, iovcnt);
}

int chan_flush(struct channel *ch, struct mig_error **errp)
{
	return ch->ops->flush ? ch->ops->flush(ch, errp) : 0;
}

int chan_write_all(struct channel *ch, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return chan_writev_all(ch, &iov, 1);
}

int chan_readv_all(struct channel *ch, struct iovec *iov, int iovcnt)
{
	bool got_some = false;

	if (iovcnt < 0)
		return -EINVAL;
	iov_advance(&iov, &iovcnt, 0);
	while (iovcnt > 0) {
		ssize_t n = ch->ops->readv(ch, iov, iovcnt);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0) /* end of stream: clean only on a boundary */
			return got_some ? -EPROTO : -EPIPE;
		got_some = true;
		iov_advance(&iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int chan_read_all(struct channel *ch, void *buf, size_t len)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	return chan_readv_all(ch, &iov, 1);
}
