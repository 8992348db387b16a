/* filechan.c — the file channel (see filechan.h): channel_ops over a
 * regular file, QEMU's open/truncate/seek sequence for file: migration and
 * the positioned transfer loops that mapped-ram uses. Does not parse URIs
 * or look up fdsets. I/O: the owner thread; shutdown: any thread until
 * close. The open functions: any thread. */
#include "file/filechan.h"
#include "socket/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_chan {
	struct channel ch; /* first, so the ops can convert back */
	/* Set by file_shutdown() (any thread), read by the owner before and
	 * after every transfer. A regular file never blocks for long, so
	 * there is nothing to wake: the next call fails instead. */
	atomic_bool shut;
};

static struct file_chan *to_fc(struct channel *ch)
{
	return (struct file_chan *)ch;
}

static ssize_t file_fail(struct file_chan *fc, int err)
{
	return atomic_load(&fc->shut) ? -ECANCELED : -err;
}

static int iov_clamp(int iovcnt)
{
	return iovcnt < IOV_MAX ? iovcnt : IOV_MAX;
}

/* offset < 0: sequential at the fd's position; else positioned. */
static ssize_t file_xfer(struct channel *ch, const struct iovec *iov,
			 int iovcnt, off_t offset, bool write)
{
	struct file_chan *fc = to_fc(ch);
	int cnt = iov_clamp(iovcnt);
	ssize_t n;

	if (iovcnt < 0)
		return -EINVAL;
	do {
		if (atomic_load(&fc->shut))
			return -ECANCELED;
		if (offset < 0)
			n = write ? writev(ch->fd, iov, cnt)
				  : readv(ch->fd, iov, cnt);
		else
			n = write ? pwritev(ch->fd, iov, cnt, offset)
				  : preadv(ch->fd, iov, cnt, offset);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return file_fail(fc, errno);
	if (n == 0 && atomic_load(&fc->shut))
		return -ECANCELED;
	return n;
}

static ssize_t file_writev(struct channel *ch, const struct iovec *iov,
			   int iovcnt)
{
	return file_xfer(ch, iov, iovcnt, -1, true);
}

static ssize_t file_readv(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	return file_xfer(ch, iov, iovcnt, -1, false);
}

static ssize_t file_pwritev(struct channel *ch, const struct iovec *iov,
			    int iovcnt, off_t offset)
{
	if (offset < 0)
		return -EINVAL;
	return file_xfer(ch, iov, iovcnt, offset, true);
}

static ssize_t file_preadv(struct channel *ch, const struct iovec *iov,
			   int iovcnt, off_t offset)
{
	if (offset < 0)
		return -EINVAL;
	return file_xfer(ch, iov, iovcnt, offset, false);
}

static void file_shutdown(struct channel *ch)
{
	atomic_store(&to_fc(ch)->shut, true);
}

static void file_close(struct channel *ch)
{
	close(ch->fd);
	free(to_fc(ch));
}

static const char *file_noun(const struct channel *ch)
{
	return "file";
}

static const struct channel_ops file_ops = {
	.name = "file",
	.noun = file_noun,
	.writev = file_writev,
	.readv = file_readv,
	.pwritev = file_pwritev,
	.preadv = file_preadv,
	.shutdown = file_shutdown,
	.close = file_close,
};

/* --- opening ------------------------------------------------------------ */

/* Wraps an open fd (taken over: closed on failure). */
static struct channel *file_wrap(int fd, const char *desc,
				 struct mig_error **errp)
{
	struct file_chan *fc = calloc(1, sizeof(*fc));

	if (!fc) {
		close(fd);
		mig_error_setg_errno(errp, ENOMEM,
				     "Could not create a file channel");
		return NULL;
	}
	fc->ch.ops = &file_ops;
	fc->ch.fd = fd;
	fc->ch.priv = fc;
	snprintf(fc->ch.desc, sizeof(fc->ch.desc), "%s", desc ? desc : "file");
	atomic_init(&fc->shut, false);
	return &fc->ch;
}

static int seek_to(int fd, uint64_t offset, struct mig_error **errp)
{
	if (offset > INT64_MAX || lseek(fd, (off_t)offset, SEEK_SET) < 0)
		return mig_error_setg_errno(
			errp, offset > INT64_MAX ? EINVAL : errno,
			"Unable to seek to offset %lld whence %d in "
			"file",
			(long long)offset, SEEK_SET);
	return 0;
}

/* QEMU's file: sequence once the file is open: the source truncates to
 * the offset (the bytes before it belong to the user) and both sides
 * start there. */
static int position_fd(int fd, enum filechan_role role, uint64_t offset,
		       struct mig_error **errp)
{
	if (role == FILECHAN_SOURCE &&
	    (offset > INT64_MAX || ftruncate(fd, (off_t)offset) < 0))
		return mig_error_setg_errno(
			errp, offset > INT64_MAX ? EINVAL : errno,
			"failed to truncate migration file to offset "
			"%" PRIx64,
			offset);
	return offset ? seek_to(fd, offset, errp) : 0;
}

static void path_desc(char *buf, size_t n, const char *path)
{
	snprintf(buf, n, "file:%s", path);
}

struct channel *filechan_open(const char *path, enum filechan_role role,
			      uint64_t offset, struct mig_error **errp)
{
	bool src = role == FILECHAN_SOURCE;
	int fd = src ? open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)
		     : open(path, O_RDONLY | O_CLOEXEC);
	char desc[sizeof(((struct channel *)0)->desc)];

	if (fd < 0) {
		mig_error_setg_errno(errp, errno, "Could not %s '%s'",
				     src ? "create" : "open", path);
		return NULL;
	}
	if (position_fd(fd, role, offset, errp)) {
		close(fd);
		return NULL;
	}
	path_desc(desc, sizeof(desc), path);
	return file_wrap(fd, desc, errp);
}

/* QEMU's hint for a filesystem (tmpfs, some FUSE) that refuses O_DIRECT:
 * open() says EINVAL, and the same open without O_DIRECT works. */
static bool direct_refused(const char *path, int flags)
{
	int fd;

	if (errno != EINVAL || !(flags & O_DIRECT))
		return false;
	fd = open(path, flags & ~O_DIRECT);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

struct channel *filechan_open_extra(const char *path, enum filechan_role role,
				    bool direct, struct mig_error **errp)
{
	int flags = (role == FILECHAN_SOURCE ? O_WRONLY : O_RDONLY) |
		    O_CLOEXEC | (direct ? O_DIRECT : 0);
	int fd = open(path, flags);
	char desc[sizeof(((struct channel *)0)->desc)];

	if (fd < 0) {
		int err = errno;

		if (direct_refused(path, flags)) {
			mig_error_setg(errp,
				       "Could not open '%s': filesystem does "
				       "not support O_DIRECT",
				       path);
			return NULL;
		}
		mig_error_setg_errno(errp, err, "Could not open '%s'", path);
		return NULL;
	}
	path_desc(desc, sizeof(desc), path);
	return file_wrap(fd, desc, errp);
}

struct channel *filechan_from_fd(int fd, const char *desc,
				 enum filechan_role role, bool set_offset,
				 uint64_t offset, struct mig_error **errp)
{
	if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		mig_error_setg_errno(errp, fd < 0 ? EBADF : errno,
				     "Could not use file descriptor %d", fd);
		goto err_fd;
	}
	if (set_offset && position_fd(fd, role, offset, errp))
		goto err_fd;
	return file_wrap(fd, desc, errp);
err_fd:
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* --- queries and positioning -------------------------------------------- */

bool filechan_is_file(const struct channel *ch)
{
	return ch && ch->ops == &file_ops;
}

bool filechan_is_direct(const struct channel *ch)
{
	int fl = ch ? fcntl(ch->fd, F_GETFL) : -1;

	return fl >= 0 && (fl & O_DIRECT);
}

bool filechan_is_seekable(const struct channel *ch)
{
	return ch && ch->fd >= 0 && lseek(ch->fd, 0, SEEK_CUR) >= 0;
}

int filechan_tell(struct channel *ch, uint64_t *pos)
{
	off_t off = lseek(ch->fd, 0, SEEK_CUR);

	if (off < 0)
		return -errno;
	*pos = (uint64_t)off;
	return 0;
}

int filechan_seek(struct channel *ch, uint64_t pos, struct mig_error **errp)
{
	if (!filechan_is_file(ch))
		return -ENOTSUP;
	if (atomic_load(&to_fc(ch)->shut))
		return -ECANCELED;
	return seek_to(ch->fd, pos, errp);
}

int filechan_size(struct channel *ch, uint64_t *size)
{
	struct stat st;

	if (fstat(ch->fd, &st) < 0)
		return -errno;
	*size = st.st_size < 0 ? 0 : (uint64_t)st.st_size;
	return 0;
}

/* --- positioned transfer loops ------------------------------------------ */

/* Drops done bytes from the front of *iovp[0..*cnt) (and empty entries). */
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

/* -EOVERFLOW unless [offset, offset + total) fits in off_t. */
static int check_range(const struct iovec *iov, int iovcnt, uint64_t offset)
{
	uint64_t end = offset;

	if (iovcnt < 0)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > INT64_MAX - end)
			return -EOVERFLOW;
		end += iov[i].iov_len;
	}
	return end > INT64_MAX ? -EOVERFLOW : 0;
}

static int pxfer_all(struct channel *ch, struct iovec *iov, int iovcnt,
		     uint64_t offset, bool write)
{
	bool got_some = false;
	int ret = check_range(iov, iovcnt, offset);

	if (ret)
		return ret;
	if (!(write ? ch->ops->pwritev : ch->ops->preadv))
		return -ENOTSUP;
	iov_advance(&iov, &iovcnt, 0);
	while (iovcnt > 0) {
		ssize_t n =
			write ? ch->ops->pwritev(ch, iov, iovcnt, (off_t)offset)
			      : ch->ops->preadv(ch, iov, iovcnt, (off_t)offset);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0) /* write: no progress; read: end of file */
			return write ? -EPIPE : got_some ? -EPROTO : -EPIPE;
		got_some = true;
		offset += (uint64_t)n;
		iov_advance(&iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int filechan_pwritev_all(struct channel *ch, struct iovec *iov, int iovcnt,
			 uint64_t offset)
{
	return pxfer_all(ch, iov, iovcnt, offset, true);
}

int filechan_preadv_all(struct channel *ch, struct iovec *iov, int iovcnt,
			uint64_t offset)
{
	return pxfer_all(ch, iov, iovcnt, offset, false);
}

void filechan_set_io_error(struct mig_error **errp, int err, bool write)
{
	const char *what =
		write ? "Unable to write to file" : "Unable to read from file";

	if (err == -EPIPE || err == -EPROTO)
		mig_error_setg(errp, "%s: %s", what,
			       write ? "no progress"
				     : "unexpected end of file");
	else
		mig_error_setg(errp, "%s: %s", what, strerror(-err));
}
