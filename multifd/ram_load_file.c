/* ram_load_file.c — mapped-ram on the destination (see ram_load_file.h).
 * The incoming thread walks each block's restore plan and hands chunks to
 * idle workers by pointer swap; it waits for all of them before the main
 * stream moves on, so a block is complete (or the load failed) when the
 * next record is read. With direct-io, a chunk may span short gaps of
 * absent pages, read into the item's scratch buffer, never into RAM.
 * The incoming thread, except the workers' job. */
#include "multifd/ram_load_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "file/filechan.h"
#include "file/mapped_ram.h"
#include "guest/ram.h"
#include "multifd/mfd_file.h"
#include "multifd/mfd_send.h"
#include "multifd/qemufile.h"

/* Runs of present pages per hand-over: a fragmented file (zero pages
 * skipped) has runs of a page or two, and one hand-over per run cost a
 * worker wake-up per ~8 KiB. */
#define RLF_RUNS 64

struct rlf_chunk {
	struct mapped_ram_chunk c[RLF_RUNS];
	unsigned n;
	const struct mapped_ram_block *blk;
	const struct mapped_ram_bitmap *bm;
	struct ram_block *b;
	uint8_t *host;
	_Atomic uint64_t *progress;
	/* Where the absent pages inside a chunk are read to, discarded: one
	 * per item, and an item belongs to one worker at a time. Aligned by
	 * scratch_of() (calloc'd items are not page-aligned). */
	uint8_t scratch_raw[MAPPED_RAM_SCRATCH_SIZE + MAPPED_RAM_PAGE_SIZE];
};

struct ram_load_file {
	struct channel *main;
	struct mfd_file *pool;
	struct rlf_chunk *item; /* being filled (swapped with the pool's) */
	_Atomic uint64_t *progress;
	bool zero_absent; /* also for blocks that are not file-backed */
	unsigned max_gap; /* absent pages a chunk may span (the plan's) */
};

static uint8_t *scratch_of(struct rlf_chunk *it)
{
	uintptr_t p = (uintptr_t)it->scratch_raw;

	return (uint8_t *)((p + MAPPED_RAM_PAGE_SIZE - 1) &
			   ~(uintptr_t)(MAPPED_RAM_PAGE_SIZE - 1));
}

static int read_chunk(struct channel *ch, void *item, struct mig_error **errp)
{
	struct rlf_chunk *it = item;
	uint64_t done = 0;
	int ret = 0;

	for (unsigned i = 0; i < it->n && !ret; i++) {
		/* the first-touch policy clamps what lies outside the block */
		ram_block_prepare_write(it->b, it->c[i].block_offset,
					it->c[i].len);
		ret = mapped_ram_read_chunk(ch, it->blk, it->bm, it->host,
					    &it->c[i], scratch_of(it), errp);
		if (!ret)
			done += it->c[i].len;
	}
	if (done && it->progress)
		atomic_fetch_add_explicit(it->progress, done,
					  memory_order_relaxed);
	return ret;
}

/* The readers' channels are all opened alike (direct-io or not). */
static unsigned load_max_gap(struct channel *main, struct channel **chans,
			     unsigned nchans)
{
	struct channel *r = nchans ? chans[0] : main;

	return filechan_is_direct(r) ? MAPPED_RAM_GAP_PAGES : 0;
}

struct ram_load_file *ram_load_file_new(struct channel *main,
					struct channel **chans, unsigned nchans,
					_Atomic uint64_t *progress,
					struct mig_error **errp)
{
	struct ram_load_file *rlf = calloc(1, sizeof(*rlf));

	if (!rlf || !(rlf->item = calloc(1, sizeof(*rlf->item)))) {
		ram_load_file_free(rlf);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	rlf->main = main;
	rlf->progress = progress;
	rlf->max_gap = load_max_gap(main, chans, nchans);
	rlf->pool = mfd_file_start(chans, nchans, main, sizeof(*rlf->item),
				   read_chunk, errp);
	if (!rlf->pool) {
		ram_load_file_free(rlf);
		return NULL;
	}
	return rlf;
}

void ram_load_file_free(struct ram_load_file *rlf)
{
	if (!rlf)
		return;
	mfd_file_free(rlf->pool);
	free(rlf->item);
	free(rlf);
}

void ram_load_file_kick(struct ram_load_file *rlf)
{
	if (rlf)
		mfd_file_kick(rlf->pool);
}

/* The header and its checks; fills *blk. */
static int read_header(struct ram_load_file *rlf, struct qfile *f,
		       struct ram_block *b, uint64_t length,
		       struct mapped_ram_block *blk, struct mig_error **errp)
{
	uint8_t raw[MAPPED_RAM_HDR_SIZE];
	struct mapped_ram_hdr h;
	uint64_t pos = 0, size = 0, at;
	int ret = filechan_tell(rlf->main, &pos);

	if (!ret)
		ret = filechan_size(rlf->main, &size);
	if (ret) {
		filechan_set_io_error(errp, ret, false);
		return ret;
	}
	at = pos - qfile_readahead(f); /* the header's file offset */
	ret = qfile_get_buffer(f, raw, sizeof(raw));
	if (ret) {
		uint64_t got = size > at ? size - at : 0;

		mig_error_setg(errp,
			       "Could not read whole mapped-ram migration "
			       "header (expected %d, got %d bytes)",
			       MAPPED_RAM_HDR_SIZE,
			       (int)(got < MAPPED_RAM_HDR_SIZE ? got : 0));
		return ret;
	}
	mapped_ram_hdr_decode(raw, &h);
	return mapped_ram_check(&h, b->name, length, at + sizeof(raw), size,
				blk, errp);
}

/* Hands every chunk of the plan out, then waits for the workers. */
static int load_pages(struct ram_load_file *rlf, struct ram_block *b,
		      const struct mapped_ram_block *blk,
		      const struct mapped_ram_bitmap *bm,
		      struct mig_error **errp)
{
	struct mapped_ram_plan plan;
	struct mapped_ram_chunk c;
	int ret = 0, sync_ret;
	bool more;

	mapped_ram_plan_init(&plan, blk, bm, rlf->max_gap);
	more = mapped_ram_plan_next(&plan, &c);
	while (!ret && more) {
		struct rlf_chunk *it = rlf->item;
		uint64_t bytes = 0;

		it->n = 0;
		it->blk = blk;
		it->bm = bm;
		it->b = b;
		it->host = b->host;
		it->progress = rlf->progress;
		/* up to RLF_RUNS runs, about one plan chunk of data */
		while (more && it->n < RLF_RUNS &&
		       bytes < MAPPED_RAM_LOAD_CHUNK) {
			it->c[it->n++] = c;
			bytes += c.len;
			more = mapped_ram_plan_next(&plan, &c);
		}
		ret = mfd_file_queue(rlf->pool, (void **)&rlf->item);
	}
	/* Always: the queued items point at blk, on the caller's stack. */
	sync_ret = mfd_file_sync(rlf->pool);
	if (!ret)
		ret = sync_ret;
	if (ret && !mfd_file_error(rlf->pool, errp))
		filechan_set_io_error(errp, ret, false);
	return ret;
}

/* Pages the file does not hold were zero when saved: clear those that
 * hold something here (old content of a backing file, or of a guest that
 * ran before the load). Zero pages are only read, never written. */
static void zero_absent(struct ram_block *b, const struct mapped_ram_bitmap *bm)
{
	for (uint64_t p = 0; p < bm->npages; p++) {
		uint8_t *host = b->host + p * MAPPED_RAM_PAGE_SIZE;

		if (!mapped_ram_bitmap_test(bm, p) && !mfd_page_is_zero(host))
			memset(host, 0, MAPPED_RAM_PAGE_SIZE);
	}
}

void ram_load_file_set_zero_absent(struct ram_load_file *rlf, bool on)
{
	rlf->zero_absent = on;
}

int ram_load_file_block(struct ram_load_file *rlf, struct qfile *f,
			struct ram_block *b, uint64_t length, uint64_t *pages,
			struct mig_error **errp)
{
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	int ret;

	*pages = 0;
	if (length != b->used_length) {
		mig_error_setg(errp, "mapped-ram: block %s length mismatch",
			       b->name);
		return -EINVAL;
	}
	ret = read_header(rlf, f, b, length, &blk, errp);
	if (!ret)
		ret = mapped_ram_bitmap_read(rlf->main, &blk, &bm, errp);
	if (ret)
		return ret;
	ret = load_pages(rlf, b, &blk, &bm, errp);
	if (!ret && (rlf->zero_absent || b->backing == RAM_BACKING_FILE))
		zero_absent(b, &bm);
	*pages = mapped_ram_bitmap_count(&bm);
	mapped_ram_bitmap_destroy(&bm);
	if (ret)
		return ret;
	qfile_drop_readahead(f);
	return filechan_seek(rlf->main, blk.end, errp);
}
