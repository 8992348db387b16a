/* mfd_send.h — the source half of multifd: N send threads, each owning one
 * connected channel. The migration thread hands over batches of up to 128
 * page offsets of one RAM block by swapping pointers (no copy) and asks for
 * SYNC points; each send thread detects zero pages (if asked), writes the
 * 1344-byte packet header and the pages straight from guest RAM.
 * mfd_send_queue/sync/free: the migration thread. mfd_send_kick: any
 * thread (cancel). */
#ifndef MIGD_MULTIFD_MFD_SEND_H
#define MIGD_MULTIFD_MFD_SEND_H

#include <stdbool.h>
#include <stdint.h>

#include "multifd/packet.h"
#include "util/error.h"

struct channel;
struct ram_block;
struct mig_counters;
struct mfd_send;

struct mfd_batch {
	struct ram_block *block;
	uint32_t npages;
	uint64_t offset[MFD_PAGE_COUNT];
	/* Bit i: page i is known to be zero (never populated), so zero
	 * detection need not read it. */
	uint64_t known_zero[MFD_PAGE_COUNT / 64];
};

static inline void mfd_batch_add(struct mfd_batch *b, uint64_t offset,
				 bool known_zero)
{
	uint32_t i = b->npages++;

	b->offset[i] = offset;
	if (known_zero)
		b->known_zero[i / 64] |= 1ull << (i % 64);
	else
		b->known_zero[i / 64] &= ~(1ull << (i % 64));
}

/* A transport that moves packets itself instead of writing bytes to the
 * channel (rdma: pages by RDMA WRITE, the packet as a message; see
 * rdma/rdma_mfd.h). NULL in the options: the byte stream, unchanged.
 * Each op runs on the channel's send thread: 0 or -errno with *errp.
 * init: the 64-byte handshake. packet: hdr is the encoded packet, the
 * batch's offsets hold its nnormal normal pages first. sync: a SYNC
 * packet; returns once the peer has handled everything before it. */
struct mfd_send_xport {
	int (*init)(struct channel *ch, const uint8_t init[MFD_INIT_SIZE],
		    struct mig_error **errp);
	int (*packet)(struct channel *ch, const uint8_t hdr[MFD_PACKET_SIZE],
		      const struct mfd_batch *b, uint32_t nnormal,
		      struct mig_error **errp);
	int (*sync)(struct channel *ch, const uint8_t hdr[MFD_PACKET_SIZE],
		    struct mig_error **errp);
};

struct mfd_send_opts {
	unsigned nchannels;
	bool zero_detect; /* zero-page-detection=multifd */
	bool zero_copy;	  /* zero-copy-send: pages with MSG_ZEROCOPY */
	/* multifd-compression: MFD_FLAG_ZLIB, MFD_FLAG_ZSTD or 0, and its
	 * level (multifd-zlib-level / multifd-zstd-level) */
	uint32_t compression;
	int compress_level;
	uint8_t uuid[16];
	/* Packets through a transport's own ops (not with compression or
	 * zero-copy); NULL: written to the channels as bytes. */
	const struct mfd_send_xport *xport;
};

/* Takes ownership of chans[0..n) (connected) and starts one thread per
 * channel; each first writes its init packet. NULL with *errp. */
struct mfd_send *mfd_send_start(struct channel **chans,
				const struct mfd_send_opts *o,
				struct mig_counters *ctr,
				struct mig_error **errp);
/* Hands *batch to an idle channel, giving back an empty batch in its place;
 * blocks while every channel is busy. A batch with no pages is a no-op.
 * 0, or -errno once a channel failed or the set was kicked. */
int mfd_send_queue(struct mfd_send *s, struct mfd_batch **batch);
/* Writes a SYNC packet on every channel after the work queued before it,
 * and waits until all are written (and zero-copy sends completed). */
int mfd_send_sync(struct mfd_send *s);
/* Shuts every channel down so blocked threads return. Any thread. */
void mfd_send_kick(struct mfd_send *s);
/* The first error of any send thread (copied), if there was one. */
int mfd_send_error(struct mfd_send *s, struct mig_error **errp);
/* Stops the threads, joins them, closes the channels. */
void mfd_send_free(struct mfd_send *s);
/* Thread ids (for query-migrationthreads): names "mig/src/send_%d". */
unsigned mfd_send_nthreads(const struct mfd_send *s);
int mfd_send_thread_tid(const struct mfd_send *s, unsigned i);

/* True when the 4 KiB page at p is all zero (vectorisable, early exit). */
bool mfd_page_is_zero(const void *p);

#endif
