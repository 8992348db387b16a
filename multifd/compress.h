/* compress.h — multifd payload compression (zlib, zstd) with QEMU's framing:
 * one continuous compression stream per channel for the whole migration,
 * flushed (Z_SYNC_FLUSH / ZSTD_e_flush) at the end of each packet's
 * payload, so payloads decode only in order on the same channel.
 * A compressor belongs to one send thread, a decompressor to one receive
 * thread; neither is shared. The methods sit behind one ops table
 * (compress_priv.h): compress_zlib.c, compress_zstd.c. */
#ifndef MIGD_MULTIFD_COMPRESS_H
#define MIGD_MULTIFD_COMPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"

struct mfd_compressor;
struct mfd_decompressor;

/* Per-channel figures (owner thread only; read after the thread ends). */
struct mfd_compress_stats {
	uint64_t packets;    /* payloads produced or consumed */
	uint64_t raw_bytes;  /* page bytes before compression */
	uint64_t wire_bytes; /* payload bytes on the wire */
	uint64_t raw_pages;  /* pages sent stored (did not look compressible) */
};

/* "zlib", "zstd", or NULL for a method flag migd does not know. */
const char *mfd_compress_name(uint32_t method);
/* The largest payload one packet (MFD_PAGE_COUNT pages) may compress to:
 * the library's compressBound() of 512 KiB. 0 for an unknown method.
 * A receiver refuses a longer next_packet_size. */
size_t mfd_compress_bound(uint32_t method);

/* method is MFD_FLAG_ZLIB or MFD_FLAG_ZSTD; level as the parameters
 * multifd-zlib-level (0-9) / multifd-zstd-level (0-20) give it.
 * chan_id only names the channel in messages. NULL with *errp. */
struct mfd_compressor *mfd_compressor_new(uint32_t method, int level,
					  unsigned chan_id,
					  struct mig_error **errp);
void mfd_compressor_free(struct mfd_compressor *c);
/* Compresses pages[0..n) (MFD_PAGE_SIZE each, 1 <= n <= MFD_PAGE_COUNT;
 * they may change under us: the guest may be running) as the next payload
 * of the stream. On success *out points at the payload, valid until the
 * next call. 0 or -EINVAL/-ENOSPC with *errp (the stream is then dead). */
int mfd_compressor_run(struct mfd_compressor *c, uint8_t *const pages[],
		       uint32_t n, struct iovec *out, struct mig_error **errp);
const struct mfd_compress_stats *
mfd_compressor_stats(const struct mfd_compressor *c);

struct mfd_decompressor *mfd_decompressor_new(uint32_t method, unsigned chan_id,
					      struct mig_error **errp);
void mfd_decompressor_free(struct mfd_decompressor *d);
/* Where to read a payload of len bytes (next_packet_size, untrusted).
 * NULL with *errp when len exceeds mfd_compress_bound(). */
uint8_t *mfd_decompressor_buffer(struct mfd_decompressor *d, uint32_t len,
				 struct mig_error **errp);
/* Decompresses the len bytes just read into the buffer, into pages[0..n)
 * (MFD_PAGE_SIZE each, never more), and checks the payload made exactly
 * n pages. 0 or -EINVAL with QEMU's messages in *errp. */
int mfd_decompressor_run(struct mfd_decompressor *d, uint32_t len,
			 uint8_t *const pages[], uint32_t n,
			 struct mig_error **errp);
const struct mfd_compress_stats *
mfd_decompressor_stats(const struct mfd_decompressor *d);

#endif
