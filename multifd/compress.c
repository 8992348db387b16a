/* compress.c — the method-independent half of multifd compression (see
 * compress.h): picks the method's ops, owns the payload buffers, enforces
 * the payload bound both ways, and keeps the per-channel figures. The
 * streams themselves are in compress_zlib.c and compress_zstd.c.
 * Each object is used by its owner thread only. */
#include "multifd/compress.h"

#include <errno.h>
#include <stdlib.h>

#include "multifd/compress_priv.h"
#include "multifd/packet.h"

#define PAYLOAD_MAX ((size_t)MFD_PAGE_COUNT * MFD_PAGE_SIZE)
/* A sender's buffer is larger than the bound so that a block boundary more
 * than the library counted (zlib's per-page level switch) never makes
 * deflate stop half way; a payload past the bound is still refused. */
#define TX_SLACK 8192

static const struct mfd_compress_ops *ops_of(uint32_t method)
{
	switch (method) {
	case MFD_FLAG_ZLIB:
		return &mfd_compress_zlib_ops;
	case MFD_FLAG_ZSTD:
		return &mfd_compress_zstd_ops;
	default:
		return NULL;
	}
}

const char *mfd_compress_name(uint32_t method)
{
	const struct mfd_compress_ops *ops = ops_of(method);

	return ops ? ops->name : NULL;
}

size_t mfd_compress_bound(uint32_t method)
{
	const struct mfd_compress_ops *ops = ops_of(method);

	return ops ? ops->bound(PAYLOAD_MAX) : 0;
}

/* ---- sender -------------------------------------------------------------- */

struct mfd_compressor *mfd_compressor_new(uint32_t method, int level,
					  unsigned chan_id,
					  struct mig_error **errp)
{
	const struct mfd_compress_ops *ops = ops_of(method);
	struct mfd_compressor *c;

	if (!ops) {
		mig_error_setg(errp, "multifd %u: unknown compression %#x",
			       chan_id, method);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_oom;
	c->ops = ops;
	c->id = chan_id;
	c->cap = ops->bound(PAYLOAD_MAX) + TX_SLACK;
	c->buf = malloc(c->cap);
	if (!c->buf)
		goto err_free_c;
	if (ops->tx_init(c, level, errp))
		goto err_free_buf;
	return c;

err_free_buf:
	free(c->buf);
	free(c);
	return NULL;
err_free_c:
	free(c);
err_oom:
	mig_error_setg(errp, "multifd %u: out of memory for zbuff", chan_id);
	return NULL;
}

void mfd_compressor_free(struct mfd_compressor *c)
{
	if (!c)
		return;
	c->ops->tx_fini(c);
	free(c->buf);
	free(c);
}

int mfd_compressor_run(struct mfd_compressor *c, uint8_t *const pages[],
		       uint32_t n, struct iovec *out, struct mig_error **errp)
{
	size_t bound = c->ops->bound(PAYLOAD_MAX);
	int ret;

	if (n < 1 || n > MFD_PAGE_COUNT) {
		mig_error_setg(errp, "multifd %u: cannot compress %u pages",
			       c->id, n);
		return -EINVAL;
	}
	c->len = 0;
	ret = c->ops->tx_run(c, pages, n, errp);
	if (ret)
		return ret;
	if (c->len > bound) {
		mig_error_setg(errp,
			       "multifd %u: %s payload of %zu bytes exceeds "
			       "the limit of %zu",
			       c->id, c->ops->name, c->len, bound);
		return -ENOSPC;
	}
	c->st.packets++;
	c->st.raw_bytes += (uint64_t)n * MFD_PAGE_SIZE;
	c->st.wire_bytes += c->len;
	out->iov_base = c->buf;
	out->iov_len = c->len;
	return 0;
}

const struct mfd_compress_stats *
mfd_compressor_stats(const struct mfd_compressor *c)
{
	return &c->st;
}

/* ---- receiver ------------------------------------------------------------ */

struct mfd_decompressor *mfd_decompressor_new(uint32_t method, unsigned chan_id,
					      struct mig_error **errp)
{
	const struct mfd_compress_ops *ops = ops_of(method);
	struct mfd_decompressor *d;

	if (!ops) {
		mig_error_setg(errp, "multifd %u: unknown compression %#x",
			       chan_id, method);
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		goto err_oom;
	d->ops = ops;
	d->id = chan_id;
	d->cap = ops->bound(PAYLOAD_MAX);
	d->buf = malloc(d->cap);
	if (!d->buf)
		goto err_free_d;
	if (ops->rx_init(d, errp))
		goto err_free_buf;
	return d;

err_free_buf:
	free(d->buf);
	free(d);
	return NULL;
err_free_d:
	free(d);
err_oom:
	mig_error_setg(errp, "multifd %u: out of memory for zbuff", chan_id);
	return NULL;
}

void mfd_decompressor_free(struct mfd_decompressor *d)
{
	if (!d)
		return;
	d->ops->rx_fini(d);
	free(d->buf);
	free(d);
}

uint8_t *mfd_decompressor_buffer(struct mfd_decompressor *d, uint32_t len,
				 struct mig_error **errp)
{
	if (len > d->cap) {
		mig_error_setg(errp,
			       "multifd %u: received %s payload of %u bytes, "
			       "more than the maximum %zu",
			       d->id, d->ops->name, len, d->cap);
		return NULL;
	}
	return d->buf;
}

int mfd_decompressor_run(struct mfd_decompressor *d, uint32_t len,
			 uint8_t *const pages[], uint32_t n,
			 struct mig_error **errp)
{
	uint64_t expected = (uint64_t)n * MFD_PAGE_SIZE, got = 0;
	uint32_t used = 0;
	int ret;

	if (len > d->cap || n < 1 || n > MFD_PAGE_COUNT) {
		mig_error_setg(errp,
			       "multifd %u: bad payload (%u bytes, %u pages)",
			       d->id, len, n);
		return -EINVAL;
	}
	ret = d->ops->rx_run(d, len, pages, n, &got, &used, errp);
	if (ret)
		return ret;
	if (got != expected) {
		mig_error_setg(errp,
			       "multifd %u: packet size received %u size "
			       "expected %u",
			       d->id, (unsigned)got, (unsigned)expected);
		return -EINVAL;
	}
	/* A flushed payload is used up by its last page: input left over
	 * (QEMU would drop it) or output still pending (it would land in the
	 * next packet's pages) means the stream is out of step. */
	if (used != len) {
		mig_error_setg(errp,
			       "multifd %u: %s payload holds more than %u "
			       "pages",
			       d->id, d->ops->name, n);
		return -EINVAL;
	}
	d->st.packets++;
	d->st.raw_bytes += expected;
	d->st.wire_bytes += len;
	return 0;
}

const struct mfd_compress_stats *
mfd_decompressor_stats(const struct mfd_decompressor *d)
{
	return &d->st;
}
