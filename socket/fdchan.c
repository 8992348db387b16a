/* fdchan.c — the channel ops over non-socket descriptors (see fdchan.h):
 * non-blocking readv/writev that wait in poll() on the data fd and an
 * eventfd together, so that fdchan_shutdown() from any thread wakes a
 * blocked owner at once (-ECANCELED), as shutdown(2) does for sockets.
 * I/O: the owner thread; shutdown: any thread until close. */
#include "socket/fdchan.h"
#include "socket/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

struct fd_chan {
	struct channel ch; /* first, so the ops can convert back */
	int rfd, wfd;	   /* owned; wfd may equal rfd; -1 = unused */
	int kick_fd;	   /* eventfd, readable once shut down */
	pid_t child;	   /* exec: reaped after close; else 0 */
	atomic_bool shut;
};

static struct fd_chan *to_fdc(struct channel *ch)
{
	return (struct fd_chan *)ch;
}

/* Waits until fd is ready for events or the channel is shut down. */
static int wait_ready(struct fd_chan *c, int fd, short events)
{
	struct pollfd p[2] = {
		{.fd = fd, .events = events},
		{.fd = c->kick_fd, .events = POLLIN},
	};

	for (;;) {
		if (poll(p, 2, -1) >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}
	if (p[1].revents || atomic_load(&c->shut))
		return -ECANCELED;
	return 0;
}

static ssize_t fdc_xfer(struct channel *ch, const struct iovec *iov, int iovcnt,
			bool write)
{
	struct fd_chan *c = to_fdc(ch);
	int fd = write ? c->wfd : c->rfd,
	    cnt = iovcnt < IOV_MAX ? iovcnt : IOV_MAX;
	ssize_t n;

	if (fd < 0)
		return -EBADF;
	for (;;) {
		if (atomic_load(&c->shut))
			return -ECANCELED;
		n = write ? writev(fd, iov, cnt) : readv(fd, iov, cnt);
		if (n >= 0)
			return n == 0 && atomic_load(&c->shut) ? -ECANCELED : n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return atomic_load(&c->shut) ? -ECANCELED : -errno;
		n = wait_ready(c, fd, write ? POLLOUT : POLLIN);
		if (n < 0)
			return n;
	}
}

static ssize_t fdc_writev(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	return fdc_xfer(ch, iov, iovcnt, true);
}

static ssize_t fdc_readv(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	return fdc_xfer(ch, iov, iovcnt, false);
}

/* The eventfd stays readable once written: every later wait returns. */
static void fdc_shutdown(struct channel *ch)
{
	struct fd_chan *c = to_fdc(ch);
	uint64_t one = 1;

	atomic_store(&c->shut, true);
	if (write(c->kick_fd, &one, sizeof(one)) < 0) {
		/* only EAGAIN at a counter near 2^64: it is readable then */
	}
}

/* Closing the pipes first lets a command see end of input and exit on its
 * own; only then is it reaped. */
static void fdc_close(struct channel *ch)
{
	struct fd_chan *c = to_fdc(ch);

	if (c->rfd >= 0)
		close(c->rfd);
	if (c->wfd >= 0 && c->wfd != c->rfd)
		close(c->wfd);
	close(c->kick_fd);
	if (c->child > 0)
		exec_reap(c->child);
	free(c);
}

/* QEMU: an exec: stream is a command channel, any other fd a file one. */
static const char *fdc_noun(const struct channel *ch)
{
	return ((const struct fd_chan *)ch)->child > 0 ? "command" : "file";
}

static const struct channel_ops fdc_ops = {
	.name = "fd",
	.noun = fdc_noun,
	.writev = fdc_writev,
	.readv = fdc_readv,
	.shutdown = fdc_shutdown,
	.close = fdc_close,
};

int fdchan_read_fd(const struct channel *ch)
{
	if (ch->ops == &fdc_ops)
		return to_fdc((struct channel *)ch)->rfd;
	return ch->fd;
}

static int set_nonblock_cloexec(int fd)
{
	int fl;

	if (fd < 0)
		return 0;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static void close_pair(int rfd, int wfd)
{
	if (rfd >= 0)
		close(rfd);
	if (wfd >= 0 && wfd != rfd)
		close(wfd);
}

struct channel *fdchan_new(int rfd, int wfd, pid_t child, const char *desc,
			   struct mig_error **errp)
{
	struct fd_chan *c = calloc(1, sizeof(*c));
	int ret = c ? 0 : -ENOMEM;

	if (!ret)
		ret = set_nonblock_cloexec(rfd);
	if (!ret)
		ret = set_nonblock_cloexec(wfd);
	if (!ret) {
		c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->kick_fd < 0)
			ret = -errno;
	}
	if (ret) {
		mig_error_setg(errp, "Unable to set up the channel: %s",
			       strerror(-ret));
		close_pair(rfd, wfd);
		free(c);
		if (child > 0)
			exec_reap(child);
		return NULL;
	}
	c->ch.ops = &fdc_ops;
	/* A command has two pipes and nothing behind them to wait for (the
	 * source waits on ch->fd for the destination to close): none. */
	c->ch.fd = child > 0 ? -1 : wfd >= 0 ? wfd : rfd;
	c->ch.priv = c;
	snprintf(c->ch.desc, sizeof(c->ch.desc), "%s", desc ? desc : "");
	c->rfd = rfd;
	c->wfd = wfd;
	c->child = child;
	atomic_init(&c->shut, false);
	return &c->ch;
}
