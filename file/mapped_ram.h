/* mapped_ram.h — QEMU's mapped-ram file layout (reference §3) for one RAM
 * block: the 28-byte header that follows the block's MEM_SIZE entry, the
 * bitmap of present pages, the 1 MiB-aligned pages region where the page
 * at block offset X lives at pages_offset + X, and the two data paths over
 * it: batches of pages written with pwritev at their fixed offsets, and a
 * restore plan of <= 1 MiB chunks of present pages read straight into RAM
 * (short gaps of zero pages joined into the same I/O, never into RAM).
 * Does not own the main stream (MEM_SIZE, EOS) or threads. Pure functions
 * and per-object state: any thread, one thread per object, except the
 * bitmap's set/clear/test, which are atomic (multifd workers share it). */
#ifndef MIGD_FILE_MAPPED_RAM_H
#define MIGD_FILE_MAPPED_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct channel;

#define MAPPED_RAM_HDR_VERSION 1
#define MAPPED_RAM_HDR_SIZE 28 /* be32 version + 3 x be64 */
/* Where the pages region starts: QEMU rounds up to this on save but only
 * requires page alignment on load (it may change). */
#define MAPPED_RAM_FILE_ALIGN 0x100000ull
/* Largest single read of the restore (QEMU's MAPPED_RAM_LOAD_BUF_SIZE). */
#define MAPPED_RAM_LOAD_CHUNK 0x100000ull
/* The only page size migd reads or writes (x86 TARGET_PAGE_SIZE). */
#define MAPPED_RAM_PAGE_SIZE 4096ull

/* The header as on the wire, decoded but not validated. */
struct mapped_ram_hdr {
	uint32_t version;
	uint64_t page_size;
	uint64_t bitmap_offset; /* absolute file offsets */
	uint64_t pages_offset;
};

void mapped_ram_hdr_encode(const struct mapped_ram_hdr *h,
			   uint8_t out[MAPPED_RAM_HDR_SIZE]);
void mapped_ram_hdr_decode(const uint8_t in[MAPPED_RAM_HDR_SIZE],
			   struct mapped_ram_hdr *h);

/* One block's regions in the file. Once made by mapped_ram_layout() or
 * mapped_ram_check(), every offset + size below fits in an off_t. */
struct mapped_ram_block {
	const char *name;	/* for messages; not owned */
	uint64_t length;	/* used_length in bytes */
	uint64_t npages;	/* length / MAPPED_RAM_PAGE_SIZE */
	uint64_t bitmap_offset; /* file offset of the bitmap */
	uint64_t bitmap_size;	/* bytes: whole unsigned longs */
	uint64_t pages_offset;	/* file offset of page 0 */
	uint64_t end; /* pages_offset + length: the main stream goes on here */
};

/* Bitmap bytes for npages: whole host unsigned longs, as QEMU writes. */
uint64_t mapped_ram_bitmap_size(uint64_t npages);

/* Source side: the regions of a block whose header starts at file offset
 * hdr_pos (the main stream's position when the header is put), and the
 * header to put. The bitmap follows the header; the pages start at the
 * next 1 MiB boundary after the bitmap. After putting the header the main
 * stream must seek to blk->end. 0, or -EOVERFLOW with *errp. */
int mapped_ram_layout(const char *name, uint64_t hdr_pos, uint64_t length,
		      struct mapped_ram_block *blk, struct mapped_ram_hdr *hdr,
		      struct mig_error **errp);

/* Destination side: validates a decoded header of block name (length from
 * its MEM_SIZE entry) read from a file of file_size bytes, the header's
 * last byte being just before hdr_end. Fills *blk. 0 or -EINVAL with
 * *errp: QEMU's "Migration mapped-ram capability version not supported
 * (expected <= 1, got N)" and "Error reading ramblock NAME pages, region
 * has bad alignment", then migd's own for a page size other than 4096,
 * offsets that overflow, regions out of order (which could send the
 * stream backwards), and a bitmap or pages region past the end of the
 * file (a truncated file). */
int mapped_ram_check(const struct mapped_ram_hdr *h, const char *name,
		     uint64_t length, uint64_t hdr_end, uint64_t file_size,
		     struct mapped_ram_block *blk, struct mig_error **errp);

/* --- the bitmap: bit i set = page i is in the file ------------------- */

/* Host-native unsigned long words, written and read as raw bytes (the
 * format is the host's: little-endian 64-bit on x86_64, as QEMU). */
struct mapped_ram_bitmap {
	unsigned long *words;
	uint64_t npages;
	size_t nwords;
};

/* All clear. 0, -ENOMEM or -EOVERFLOW. */
int mapped_ram_bitmap_init(struct mapped_ram_bitmap *bm, uint64_t npages);
void mapped_ram_bitmap_destroy(struct mapped_ram_bitmap *bm);
/* Atomic (relaxed): multifd workers mark the pages they write (set) and
 * the zero pages they skip (clear) concurrently. page < npages or no-op. */
void mapped_ram_bitmap_set(struct mapped_ram_bitmap *bm, uint64_t page);
void mapped_ram_bitmap_clear(struct mapped_ram_bitmap *bm, uint64_t page);
bool mapped_ram_bitmap_test(const struct mapped_ram_bitmap *bm, uint64_t page);
uint64_t mapped_ram_bitmap_count(const struct mapped_ram_bitmap *bm);

/* Writes the bitmap at blk->bitmap_offset (positioned, so the main
 * stream's position is untouched). Call after every writer has synced.
 * 0 or -errno with *errp. */
int mapped_ram_bitmap_write(struct channel *ch,
			    const struct mapped_ram_block *blk,
			    const struct mapped_ram_bitmap *bm,
			    struct mig_error **errp);
/* Reads a checked block's bitmap into bm (initialised here; destroy it
 * after). Bits past npages are dropped. 0 or -errno with *errp ("Error
 * reading dirty bitmap: ..."). */
int mapped_ram_bitmap_read(struct channel *ch,
			   const struct mapped_ram_block *blk,
			   struct mapped_ram_bitmap *bm,
			   struct mig_error **errp);

/* --- writing pages --------------------------------------------------- */

/* Longest run of zero pages written as zeros to join two runs of written
 * pages into one I/O (a write on the source, a read on the destination):
 * up to 64 KiB of zeros per I/O saved. Fragmented RAM (zero pages in runs
 * of one or two) otherwise costs one small I/O per ~8 KiB, which bounds
 * direct-io on a disk by its IOPS. Overridable for measurements. */
#ifndef MAPPED_RAM_GAP_PAGES
#define MAPPED_RAM_GAP_PAGES 16u
#endif

/* One page of a batch: its offset in the block and its bytes (page size;
 * guest RAM or a copy), or data == NULL: a zero page of the batch (its
 * bit clear), not written for itself. */
struct mapped_ram_page {
	uint64_t offset;
	const void *data;
};

/* Writes the pages of a batch of n entries of blk: each run of
 * consecutive entries with contiguous block offsets and data becomes one
 * pwritev at pages_offset + offset (adjacent buffers merged into one
 * iovec, at most IOV_MAX iovecs per call). With max_gap > 0, a stretch of
 * at most max_gap zero entries between two such runs, contiguous with
 * both, is written as zeros (a shared read-only page-aligned zero page)
 * so that the runs go out in one call: only slots of pages the batch
 * itself owns are ever written (another writer may own every other slot
 * concurrently). Zero entries never start or end a call. Every entry must
 * be page-aligned and inside the block (checked first: -EINVAL, nothing
 * written). Buffers, offsets and lengths stay page multiples (direct-io).
 * Does not touch the bitmap. 0 or -errno with *errp. The caller owns ch
 * (one worker per channel). */
int mapped_ram_write_pages(struct channel *ch,
			   const struct mapped_ram_block *blk,
			   const struct mapped_ram_page *pages, size_t n,
			   unsigned max_gap, struct mig_error **errp);

/* --- restoring ------------------------------------------------------- */

/* A span of the pages region: len bytes at file_offset that hold the
 * block's bytes at block_offset. len <= MAPPED_RAM_LOAD_CHUNK, a whole
 * number of pages; the first and last pages are present (bit set), pages
 * between may be absent (see mapped_ram_plan_init's max_gap). */
struct mapped_ram_chunk {
	uint64_t block_offset;
	uint64_t file_offset;
	uint64_t len;
};

/* Walks a checked block's bitmap in order (one thread: the one handing
 * chunks out to readers). */
struct mapped_ram_plan {
	const struct mapped_ram_block *blk;
	const struct mapped_ram_bitmap *bm;
	uint64_t page;	  /* next page to hand out */
	uint64_t run_end; /* end of the current run of set bits */
	uint64_t max_gap; /* longest stretch of clear bits inside a chunk */
};

/* max_gap 0: every chunk is one run (or part of one) of present pages;
 * else runs separated by at most max_gap absent pages share a chunk. */
void mapped_ram_plan_init(struct mapped_ram_plan *p,
			  const struct mapped_ram_block *blk,
			  const struct mapped_ram_bitmap *bm, unsigned max_gap);
/* The next chunk, false when every present page was handed out. */
bool mapped_ram_plan_next(struct mapped_ram_plan *p,
			  struct mapped_ram_chunk *c);

/* Bytes of a scratch buffer for mapped_ram_read_chunk(): absent pages of
 * one gap land in it side by side (longer gaps wrap around). */
#define MAPPED_RAM_SCRATCH_SIZE (MAPPED_RAM_GAP_PAGES * MAPPED_RAM_PAGE_SIZE)

/* Reads chunk c of blk with one preadv (the bitmap bm decides, page by
 * page): present pages into host (the block's RAM, blk->length bytes),
 * absent ones into scratch (page-aligned, MAPPED_RAM_SCRATCH_SIZE bytes,
 * owned by the caller, its content discarded): a clear bit means zero
 * whatever the file holds there, so those pages never reach RAM. scratch
 * may be NULL when c holds no absent page. 0 or -errno with *errp in
 * QEMU's words: "(NAME) failed to read page <hex>from file offset <hex>:
 * Unable to read from file: ...", or -EINVAL for a chunk outside the
 * block, over MAPPED_RAM_LOAD_CHUNK or unaligned. */
int mapped_ram_read_chunk(struct channel *ch,
			  const struct mapped_ram_block *blk,
			  const struct mapped_ram_bitmap *bm, uint8_t *host,
			  const struct mapped_ram_chunk *c, uint8_t *scratch,
			  struct mig_error **errp);

#endif
