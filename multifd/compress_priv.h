/* compress_priv.h — the ops table behind compress.h, one per method
 * (compress_zlib.c, compress_zstd.c), and the objects they fill. A method
 * compresses/decompresses one packet's pages; compress.c owns buffers,
 * bounds and figures. Owner thread only, like the objects. */
#ifndef MIGD_MULTIFD_COMPRESS_PRIV_H
#define MIGD_MULTIFD_COMPRESS_PRIV_H

#include <stdbool.h>

#include "multifd/compress.h"

struct mfd_compress_ops {
	const char *name;
	uint32_t flag; /* MFD_FLAG_ZLIB, MFD_FLAG_ZSTD */
	size_t (*bound)(size_t len);
	int (*tx_init)(struct mfd_compressor *c, int level,
		       struct mig_error **errp);
	void (*tx_fini)(struct mfd_compressor *c);
	/* Appends the pages' compressed form to c->buf from c->len, flushed
	 * at the end. */
	int (*tx_run)(struct mfd_compressor *c, uint8_t *const pages[],
		      uint32_t n, struct mig_error **errp);
	int (*rx_init)(struct mfd_decompressor *d, struct mig_error **errp);
	void (*rx_fini)(struct mfd_decompressor *d);
	/* Decompresses d->buf[0..len) into the pages; adds the bytes
	 * produced (at most n pages) to *out and the input consumed to
	 * *used. */
	int (*rx_run)(struct mfd_decompressor *d, uint32_t len,
		      uint8_t *const pages[], uint32_t n, uint64_t *out,
		      uint32_t *used, struct mig_error **errp);
};

extern const struct mfd_compress_ops mfd_compress_zlib_ops;
extern const struct mfd_compress_ops mfd_compress_zstd_ops;

struct mfd_compressor {
	const struct mfd_compress_ops *ops;
	unsigned id;
	uint8_t *buf; /* payload being built */
	size_t cap;   /* allocated: bound plus slack (see compress.c) */
	size_t len;
	void *priv; /* the method's stream */
	struct mfd_compress_stats st;
};

struct mfd_decompressor {
	const struct mfd_compress_ops *ops;
	unsigned id;
	uint8_t *buf; /* payload as read */
	size_t cap;   /* the bound: longer payloads are refused */
	void *priv;
	struct mfd_compress_stats st;
};

#endif
