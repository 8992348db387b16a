/* qemufile.c — QEMU's buffered stream over one channel: a writer that
 * gathers small puts in a 32 KiB buffer and guest pages by reference in up
 * to 64 iovecs, and a reader that refills a 32 KiB buffer and reads large
 * buffers straight into their destination. Owns buffering only: framing
 * is the codecs'. One thread per qfile (its channel's owner). */
#include "multifd/qemufile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "multifd/byteorder.h"
#include "socket/channel.h"

/*
 * Writer invariants:
 *   1. head <= used <= QFILE_BUF_SIZE; buf[head..used) is not yet in iov.
 *   2. iovcnt < QFILE_MAX_IOV between calls, so a flush always has the
 *      slot it needs for buf[head..used).
 *   3. iov[] holds, in stream order, segments of buf[0..head) and
 *      caller memory from qfile_put_ram().
 * Reader: buf[head..used) are received bytes not yet consumed; iov unused.
 */
struct qfile {
	size_t used;
	size_t head;
	uint64_t pos; /* bytes put (writer) or consumed (reader) */
	int iovcnt;
	int err; /* writer: first error, sticky; 0 if none */
	bool is_writer;
	struct channel *ch;
	struct iovec iov[QFILE_MAX_IOV];
	uint8_t buf[QFILE_BUF_SIZE];
};

static struct qfile *qfile_new(struct channel *ch, bool is_writer)
{
	struct qfile *f;

	if (!ch)
		return NULL;
	f = malloc(sizeof(*f));
	if (!f)
		return NULL;
	f->used = 0;
	f->head = 0;
	f->pos = 0;
	f->iovcnt = 0;
	f->err = 0;
	f->is_writer = is_writer;
	f->ch = ch;
	return f;
}

struct qfile *qfile_writer_new(struct channel *ch)
{
	return qfile_new(ch, true);
}

struct qfile *qfile_reader_new(struct channel *ch)
{
	return qfile_new(ch, false);
}

void qfile_free(struct qfile *f)
{
	free(f);
}

struct channel *qfile_channel(struct qfile *f)
{
	return f->ch;
}

uint64_t qfile_pos(const struct qfile *f)
{
	return f->pos;
}

/* ---- writer ---- */

int qfile_error(const struct qfile *f)
{
	return f->err;
}

static void set_error(struct qfile *f, int err)
{
	if (!f->err)
		f->err = err;
}

/* Appends one iovec, or extends the last one when base continues it. */
static inline void add_iov(struct qfile *f, const void *base, size_t len)
{
	if (f->iovcnt > 0) {
		struct iovec *last = &f->iov[f->iovcnt - 1];

		if ((const uint8_t *)last->iov_base + last->iov_len == base) {
			last->iov_len += len;
			return;
		}
	}
	f->iov[f->iovcnt].iov_base = (void *)base;
	f->iov[f->iovcnt].iov_len = len;
	f->iovcnt++;
}

int qfile_flush(struct qfile *f)
{
	int ret;

	if (!f->is_writer)
		return -EINVAL;
	if (f->used > f->head)
		add_iov(f, f->buf + f->head, f->used - f->head);
	/* After an error the data is dropped: the stream is already broken
	 * and callers only need the first error. */
	if (f->iovcnt > 0 && !f->err) {
		ret = chan_writev_all(f->ch, f->iov, f->iovcnt);
		if (ret < 0)
			set_error(f, ret);
	}
	f->iovcnt = 0;
	f->used = 0;
	f->head = 0;
	return f->err;
}

/* The put_* fast paths store in place; a full buffer costs one flush. */
void qfile_put_u8(struct qfile *f, uint8_t v)
{
	if (f->used == QFILE_BUF_SIZE)
		qfile_flush(f);
	f->buf[f->used++] = v;
	f->pos++;
}

void qfile_put_be16(struct qfile *f, uint16_t v)
{
	if (QFILE_BUF_SIZE - f->used < 2)
		qfile_flush(f);
	mfd_store_be16(f->buf + f->used, v);
	f->used += 2;
	f->pos += 2;
}

void qfile_put_be32(struct qfile *f, uint32_t v)
{
	if (QFILE_BUF_SIZE - f->used < 4)
		qfile_flush(f);
	mfd_store_be32(f->buf + f->used, v);
	f->used += 4;
	f->pos += 4;
}

void qfile_put_be64(struct qfile *f, uint64_t v)
{
	if (QFILE_BUF_SIZE - f->used < 8)
		qfile_flush(f);
	mfd_store_be64(f->buf + f->used, v);
	f->used += 8;
	f->pos += 8;
}

void qfile_put_buffer(struct qfile *f, const void *buf, size_t len)
{
	const uint8_t *src = buf;

	f->pos += len;
	while (len > 0) {
		size_t room = QFILE_BUF_SIZE - f->used;
		size_t n;

		if (room == 0) {
			qfile_flush(f);
			room = QFILE_BUF_SIZE;
		}
		n = len < room ? len : room;
		memcpy(f->buf + f->used, src, n);
		f->used += n;
		src += n;
		len -= n;
	}
}

void qfile_put_str8(struct qfile *f, const char *s)
{
	size_t len = s ? strnlen(s, 256) : 256;

	if (len > 255) {
		set_error(f, -EINVAL);
		return;
	}
	qfile_put_u8(f, (uint8_t)len);
	qfile_put_buffer(f, s, len);
}

void qfile_put_ram(struct qfile *f, const void *buf, size_t len)
{
	if (len == 0)
		return;
	f->pos += len;
	/* Bytes put since the last iovec go first, as their own iovec. */
	if (f->used > f->head) {
		add_iov(f, f->buf + f->head, f->used - f->head);
		f->head = f->used;
		if (f->iovcnt == QFILE_MAX_IOV)
			qfile_flush(f);
	}
	add_iov(f, buf, len);
	if (f->iovcnt == QFILE_MAX_IOV)
		qfile_flush(f);
}

/* ---- reader ---- */

/* One transport read: bytes (> 0), 0 at end of stream, or -errno. */
static ssize_t read_some(struct qfile *f, struct iovec *iov, int iovcnt)
{
	size_t want = 0;
	ssize_t n;

	for (int i = 0; i < iovcnt; i++)
		want += iov[i].iov_len;
	do {
		n = f->ch->ops->readv(f->ch, iov, iovcnt);
	} while (n == -EINTR);
	if (n > 0 && (size_t)n > want)
		return -EIO; /* a transport bug must not move us past buf */
	return n;
}

/* Makes buf[head..] hold at least need (<= QFILE_BUF_SIZE) bytes, moving
 * what is left to the front first. At the end of the stream: -EPIPE if no
 * byte of the item had arrived, -EPROTO if some had. */
static int fill(struct qfile *f, size_t need)
{
	size_t left = f->used - f->head;

	if (left > 0 && f->head > 0)
		memmove(f->buf, f->buf + f->head, left);
	f->used = left;
	f->head = 0;
	while (f->used < need) {
		struct iovec iov = {
			.iov_base = f->buf + f->used,
			.iov_len = QFILE_BUF_SIZE - f->used,
		};
		ssize_t n = read_some(f, &iov, 1);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return f->used > 0 ? -EPROTO : -EPIPE;
		f->used += (size_t)n;
	}
	return 0;
}

int qfile_get_u8(struct qfile *f, uint8_t *v)
{
	int ret;

	if (f->used == f->head) {
		ret = fill(f, 1);
		if (ret < 0)
			return ret;
	}
	*v = f->buf[f->head++];
	f->pos++;
	return 0;
}

int qfile_peek_u8(struct qfile *f, uint8_t *v)
{
	int ret;

	if (f->used == f->head) {
		ret = fill(f, 1);
		if (ret < 0)
			return ret;
	}
	*v = f->buf[f->head];
	return 0;
}

int qfile_get_be16(struct qfile *f, uint16_t *v)
{
	int ret;

	if (f->used - f->head < 2) {
		ret = fill(f, 2);
		if (ret < 0)
			return ret;
	}
	*v = mfd_load_be16(f->buf + f->head);
	f->head += 2;
	f->pos += 2;
	return 0;
}

int qfile_get_be32(struct qfile *f, uint32_t *v)
{
	int ret;

	if (f->used - f->head < 4) {
		ret = fill(f, 4);
		if (ret < 0)
			return ret;
	}
	*v = mfd_load_be32(f->buf + f->head);
	f->head += 4;
	f->pos += 4;
	return 0;
}

int qfile_get_be64(struct qfile *f, uint64_t *v)
{
	int ret;

	if (f->used - f->head < 8) {
		ret = fill(f, 8);
		if (ret < 0)
			return ret;
	}
	*v = mfd_load_be64(f->buf + f->head);
	f->head += 8;
	f->pos += 8;
	return 0;
}

/*
 * The buffer is empty and dst still needs len bytes. Each read asks for
 * the rest of dst and then a whole buffer: the data lands in dst without a
 * copy, and what follows it refills the buffer in the same system call.
 */
static int read_through(struct qfile *f, uint8_t *dst, size_t len, bool partial)
{
	f->used = 0;
	f->head = 0;
	while (len > 0) {
		struct iovec iov[2] = {
			{.iov_base = dst, .iov_len = len},
			{.iov_base = f->buf, .iov_len = QFILE_BUF_SIZE},
		};
		ssize_t n = read_some(f, iov, 2);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return partial ? -EPROTO : -EPIPE;
		partial = true;
		if ((size_t)n >= len) {
			f->used = (size_t)n - len;
			f->pos += len;
			return 0;
		}
		dst += n;
		len -= (size_t)n;
		f->pos += (size_t)n;
	}
	return 0;
}

int qfile_get_buffer(struct qfile *f, void *buf, size_t len)
{
	size_t left = f->used - f->head;
	size_t n = len < left ? len : left;

	if (len == 0)
		return 0;
	memcpy(buf, f->buf + f->head, n);
	f->head += n;
	f->pos += n;
	if (n == len)
		return 0;
	return read_through(f, (uint8_t *)buf + n, len - n, n > 0);
}

int qfile_skip(struct qfile *f, size_t len)
{
	bool partial = false;
	int ret;

	while (len > 0) {
		size_t n;

		if (f->used == f->head) {
			ret = fill(f, 1);
			if (ret < 0)
				return ret == -EPIPE && partial ? -EPROTO : ret;
		}
		n = f->used - f->head;
		n = len < n ? len : n;
		f->head += n;
		f->pos += n;
		len -= n;
		partial = true;
	}
	return 0;
}

int qfile_get_str8(struct qfile *f, char buf[256])
{
	uint8_t len;
	int ret;

	buf[0] = '\0';
	ret = qfile_get_u8(f, &len);
	if (ret < 0)
		return ret;
	ret = qfile_get_buffer(f, buf, len);
	if (ret < 0) {
		buf[0] = '\0';
		return ret == -EPIPE ? -EPROTO : ret; /* length without text */
	}
	buf[len] = '\0';
	return 0;
}

size_t qfile_readahead(const struct qfile *f)
{
	return f->is_writer ? 0 : f->used - f->head;
}

void qfile_drop_readahead(struct qfile *f)
{
	if (!f->is_writer)
		f->used = f->head = 0;
}
