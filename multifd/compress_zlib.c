/* compress_zlib.c — multifd zlib method (QEMU's MULTIFD_FLAG_ZLIB): one
 * z_stream per channel for the whole migration, each page deflated from a
 * private copy (the guest may write it meanwhile), Z_SYNC_FLUSH after the
 * last page of a packet. A page that does not look compressible is sent
 * at level 0 (a stored block: a copy) by switching the stream's level with
 * deflateParams(); any inflater reads that. Owner thread only. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "multifd/compress_priv.h"
#include "multifd/packet.h"

struct zlib_tx {
	z_stream zs;
	int level;   /* configured */
	int current; /* the stream's level now */
	uint8_t page[MFD_PAGE_SIZE];
};

/* Samples 256 bytes, one every 16: random data shows ~162 distinct values,
 * text and code far fewer. Costs well under a microsecond a page. */
#define SAMPLE_STRIDE 16
#define DISTINCT_RANDOM 144

static bool page_looks_random(const uint8_t *p)
{
	uint64_t seen[4] = {0};
	unsigned distinct = 0;

	for (size_t i = 0; i < MFD_PAGE_SIZE; i += SAMPLE_STRIDE) {
		uint64_t bit = 1ull << (p[i] & 63);

		distinct += !(seen[p[i] >> 6] & bit);
		seen[p[i] >> 6] |= bit;
	}
	return distinct >= DISTINCT_RANDOM;
}

static size_t zlib_bound(size_t len)
{
	return compressBound(len);
}

static int zlib_tx_init(struct mfd_compressor *c, int level,
			struct mig_error **errp)
{
	struct zlib_tx *z = calloc(1, sizeof(*z));

	if (!z) {
		mig_error_setg(errp, "multifd %u: out of memory for zbuff",
			       c->id);
		return -ENOMEM;
	}
	if (deflateInit(&z->zs, level) != Z_OK) {
		free(z);
		mig_error_setg(errp, "multifd %u: deflate init failed", c->id);
		return -EINVAL;
	}
	z->level = level;
	z->current = level;
	c->priv = z;
	return 0;
}

static void zlib_tx_fini(struct mfd_compressor *c)
{
	struct zlib_tx *z = c->priv;

	deflateEnd(&z->zs);
	free(z);
}

/* Level 0 for a page that looks random, the configured level otherwise.
 * deflateParams() ends the current block first: next_out must be set. */
static int pick_level(struct mfd_compressor *c, struct zlib_tx *z, bool raw,
		      struct mig_error **errp)
{
	int want = raw ? 0 : z->level;
	int ret;

	if (z->level == 0 || want == z->current)
		return 0;
	ret = deflateParams(&z->zs, want, Z_DEFAULT_STRATEGY);
	if (ret != Z_OK) {
		mig_error_setg(errp,
			       "multifd %u: deflateParams returned %d instead "
			       "of Z_OK",
			       c->id, ret);
		return -EINVAL;
	}
	z->current = want;
	return 0;
}

static int deflate_page(struct mfd_compressor *c, struct zlib_tx *z, bool last,
			struct mig_error **errp)
{
	int flush = last ? Z_SYNC_FLUSH : Z_NO_FLUSH;
	int ret;

	z->zs.next_in = z->page;
	z->zs.avail_in = MFD_PAGE_SIZE;
	do {
		ret = deflate(&z->zs, flush);
	} while (ret == Z_OK && z->zs.avail_in && z->zs.avail_out);
	/* A flush that filled the buffer may have more to write. */
	if (ret == Z_OK && (z->zs.avail_in || !z->zs.avail_out)) {
		mig_error_setg(errp,
			       "multifd %u: deflate failed to compress all "
			       "input",
			       c->id);
		return -ENOSPC;
	}
	if (ret != Z_OK) {
		mig_error_setg(
			errp, "multifd %u: deflate returned %d instead of Z_OK",
			c->id, ret);
		return -EINVAL;
	}
	return 0;
}

static int zlib_tx_run(struct mfd_compressor *c, uint8_t *const pages[],
		       uint32_t n, struct mig_error **errp)
{
	struct zlib_tx *z = c->priv;
	int ret = 0;

	z->zs.next_out = c->buf;
	z->zs.avail_out = (uInt)c->cap;
	for (uint32_t i = 0; i < n && !ret; i++) {
		bool raw;

		memcpy(z->page, pages[i], MFD_PAGE_SIZE);
		raw = z->level && page_looks_random(z->page);
		c->st.raw_pages += raw;
		ret = pick_level(c, z, raw, errp);
		if (!ret)
			ret = deflate_page(c, z, i == n - 1, errp);
	}
	c->len = c->cap - z->zs.avail_out;
	return ret;
}

static int zlib_rx_init(struct mfd_decompressor *d, struct mig_error **errp)
{
	z_stream *zs = calloc(1, sizeof(*zs));

	if (!zs) {
		mig_error_setg(errp, "multifd %u: out of memory for zbuff",
			       d->id);
		return -ENOMEM;
	}
	if (inflateInit(zs) != Z_OK) {
		free(zs);
		mig_error_setg(errp, "multifd %u: inflate init failed", d->id);
		return -EINVAL;
	}
	d->priv = zs;
	return 0;
}

static void zlib_rx_fini(struct mfd_decompressor *d)
{
	inflateEnd(d->priv);
	free(d->priv);
}

/* One page: inflate writes at most MFD_PAGE_SIZE bytes into it. */
static int inflate_page(struct mfd_decompressor *d, z_stream *zs, uint8_t *page,
			bool last, struct mig_error **errp)
{
	int flush = last ? Z_SYNC_FLUSH : Z_NO_FLUSH;
	int ret;

	zs->next_out = page;
	zs->avail_out = MFD_PAGE_SIZE;
	do {
		ret = inflate(zs, flush);
	} while (ret == Z_OK && zs->avail_in && zs->avail_out);
	if (ret == Z_OK && zs->avail_out) {
		mig_error_setg(errp,
			       "multifd %u: inflate generated too few output",
			       d->id);
		return -EINVAL;
	}
	if (ret != Z_OK) {
		mig_error_setg(
			errp, "multifd %u: inflate returned %d instead of Z_OK",
			d->id, ret);
		return -EINVAL;
	}
	return 0;
}

/* True when the stream still holds output (a match running past the last
 * page) that would land in the next packet's first page. */
static bool zlib_rx_has_more(z_stream *zs)
{
	uint8_t probe;

	zs->next_out = &probe;
	zs->avail_out = 1;
	inflate(zs, Z_NO_FLUSH); /* no input: only pending output moves */
	zs->next_out = NULL;
	return zs->avail_out == 0;
}

static int zlib_rx_run(struct mfd_decompressor *d, uint32_t len,
		       uint8_t *const pages[], uint32_t n, uint64_t *out,
		       uint32_t *used, struct mig_error **errp)
{
	z_stream *zs = d->priv;
	int ret = 0;

	zs->next_in = d->buf;
	zs->avail_in = len;
	for (uint32_t i = 0; i < n && !ret; i++) {
		ret = inflate_page(d, zs, pages[i], i == n - 1, errp);
		if (!ret)
			*out += MFD_PAGE_SIZE;
	}
	*used = len - zs->avail_in;
	/* Never leave a pointer into a buffer the next read rewrites. */
	zs->next_in = NULL;
	zs->avail_in = 0;
	if (!ret && zlib_rx_has_more(zs))
		*used = len + 1; /* output beyond the pages: same verdict */
	return ret;
}

const struct mfd_compress_ops mfd_compress_zlib_ops = {
	.name = "zlib",
	.flag = MFD_FLAG_ZLIB,
	.bound = zlib_bound,
	.tx_init = zlib_tx_init,
	.tx_fini = zlib_tx_fini,
	.tx_run = zlib_tx_run,
	.rx_init = zlib_rx_init,
	.rx_fini = zlib_rx_fini,
	.rx_run = zlib_rx_run,
};
