/* compress_zstd.c — multifd zstd method (QEMU's MULTIFD_FLAG_ZSTD): one
 * ZSTD_CCtx / ZSTD_DCtx per channel for the whole migration (one frame
 * that never ends), ZSTD_e_continue for each page and ZSTD_e_flush after
 * the last page of a packet. zstd copies its input into its own window
 * before compressing, so guest pages are read in place; a block that does
 * not shrink is sent raw by zstd itself. Owner thread only. */
#include <errno.h>
#include <stdbool.h>
#include <zstd.h>

#include "multifd/compress_priv.h"
#include "multifd/packet.h"

static size_t zstd_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

static int zstd_tx_init(struct mfd_compressor *c, int level,
			struct mig_error **errp)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t ret;

	if (!cctx) {
		mig_error_setg(errp, "multifd %u: zstd createCStream failed",
			       c->id);
		return -ENOMEM;
	}
	/* Level 0 is zstd's default level (3), as QEMU passes it. */
	ret = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (ZSTD_isError(ret)) {
		ZSTD_freeCCtx(cctx);
		mig_error_setg(errp,
			       "multifd %u: initCStream failed with error %s",
			       c->id, ZSTD_getErrorName(ret));
		return -EINVAL;
	}
	c->priv = cctx;
	return 0;
}

static void zstd_tx_fini(struct mfd_compressor *c)
{
	ZSTD_freeCCtx(c->priv);
}

static int zstd_tx_page(struct mfd_compressor *c, ZSTD_outBuffer *out,
			const uint8_t *page, bool last, struct mig_error **errp)
{
	ZSTD_EndDirective mode = last ? ZSTD_e_flush : ZSTD_e_continue;
	ZSTD_inBuffer in = {page, MFD_PAGE_SIZE, 0};
	size_t ret;

	/* Until the input is taken and, when flushing, nothing is left. */
	do {
		ret = ZSTD_compressStream2(c->priv, out, &in, mode);
	} while (!ZSTD_isError(ret) && (in.pos < in.size || (last && ret)) &&
		 out->pos < out->size);
	if (ZSTD_isError(ret)) {
		mig_error_setg(errp, "multifd %u: compressStream error %s",
			       c->id, ZSTD_getErrorName(ret));
		return -EINVAL;
	}
	if (in.pos < in.size || (last && ret)) {
		mig_error_setg(errp,
			       "multifd %u: compressStream buffer too small",
			       c->id);
		return -ENOSPC;
	}
	return 0;
}

static int zstd_tx_run(struct mfd_compressor *c, uint8_t *const pages[],
		       uint32_t n, struct mig_error **errp)
{
	ZSTD_outBuffer out = {c->buf, c->cap, 0};
	int ret = 0;

	for (uint32_t i = 0; i < n && !ret; i++)
		ret = zstd_tx_page(c, &out, pages[i], i == n - 1, errp);
	c->len = out.pos;
	return ret;
}

static int zstd_rx_init(struct mfd_decompressor *d, struct mig_error **errp)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();

	if (!dctx) {
		mig_error_setg(errp, "multifd %u: zstd createDStream failed",
			       d->id);
		return -ENOMEM;
	}
	/* A frame header chooses the window: cap it at what QEMU's highest
	 * level (20) uses, 2^25 (32 MiB), instead of zstd's default 2^27,
	 * so a hostile source cannot make every channel allocate 128 MiB. */
	ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 25);
	d->priv = dctx;
	return 0;
}

static void zstd_rx_fini(struct mfd_decompressor *d)
{
	ZSTD_freeDCtx(d->priv);
}

static int zstd_rx_page(struct mfd_decompressor *d, ZSTD_inBuffer *in,
			uint8_t *page, uint64_t *out_bytes,
			struct mig_error **errp)
{
	ZSTD_outBuffer out = {page, MFD_PAGE_SIZE, 0};
	size_t ret;

	do {
		ret = ZSTD_decompressStream(d->priv, &out, in);
	} while (!ZSTD_isError(ret) && ret > 0 && in->pos < in->size &&
		 out.pos < out.size);
	*out_bytes += out.pos;
	if (ZSTD_isError(ret)) {
		mig_error_setg(errp, "multifd %u: decompressStream returned %s",
			       d->id, ZSTD_getErrorName(ret));
		return -EINVAL;
	}
	if (ret > 0 && out.pos < out.size) {
		mig_error_setg(errp,
			       "multifd %u: decompressStream buffer too small",
			       d->id);
		return -EINVAL;
	}
	return 0;
}

/* True when the context still holds decoded bytes past the last page
 * (a block decodes whole), which would land in the next packet. */
static bool zstd_rx_has_more(struct mfd_decompressor *d)
{
	uint8_t probe;
	ZSTD_outBuffer out = {&probe, 1, 0};
	ZSTD_inBuffer in = {d->buf, 0, 0};

	ZSTD_decompressStream(d->priv, &out, &in);
	return out.pos != 0;
}

static int zstd_rx_run(struct mfd_decompressor *d, uint32_t len,
		       uint8_t *const pages[], uint32_t n, uint64_t *out,
		       uint32_t *used, struct mig_error **errp)
{
	ZSTD_inBuffer in = {d->buf, len, 0};
	int ret = 0;

	for (uint32_t i = 0; i < n && !ret; i++)
		ret = zstd_rx_page(d, &in, pages[i], out, errp);
	*used = (uint32_t)in.pos;
	if (!ret && zstd_rx_has_more(d))
		*used = len + 1; /* output beyond the pages: same verdict */
	return ret;
}

const struct mfd_compress_ops mfd_compress_zstd_ops = {
	.name = "zstd",
	.flag = MFD_FLAG_ZSTD,
	.bound = zstd_bound,
	.tx_init = zstd_tx_init,
	.tx_fini = zstd_tx_fini,
	.tx_run = zstd_tx_run,
	.rx_init = zstd_rx_init,
	.rx_fini = zstd_rx_fini,
	.rx_run = zstd_rx_run,
};
