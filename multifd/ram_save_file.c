/* ram_save_file.c — mapped-ram on the source (see ram_save_file.h). The
 * batch being filled holds page offsets of one block; a worker detects
 * zero pages, marks the bitmap (set: written, clear: zero) and writes the
 * rest with positioned vectored writes straight from guest RAM (with
 * direct-io, short runs of the batch's own zero pages are written as
 * zeros to join runs into one write; their bits stay clear). A page is
 * in at most one batch at a time (a round's pages are distinct and rounds
 * are separated by a sync), so a re-dirtied page simply overwrites its
 * slot. The migration thread, except what runs in the workers. */
#include "multifd/ram_save_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "file/filechan.h"
#include "file/mapped_ram.h"
#include "guest/guest.h"
#include "multifd/mfd_file.h"
#include "multifd/mfd_send.h"
#include "multifd/migstats.h"
#include "multifd/qemufile.h"
#include "socket/channel.h"

#define RSF_BATCH_PAGES 256 /* 1 MiB per batch */

struct rsf_block {
	struct ram_block *b;
	struct mapped_ram_block mr; /* set when its header is put */
	struct mapped_ram_bitmap bm;
	bool laid_out;
};

struct rsf_batch {
	struct ram_save_file *rsf;
	struct rsf_block *blk;
	uint32_t n;
	uint64_t offset[RSF_BATCH_PAGES];
	uint64_t known_zero[RSF_BATCH_PAGES / 64];
};

struct ram_save_file {
	struct channel *main;
	struct mfd_file *pool;
	struct rsf_batch *batch; /* being filled (swapped with the pool's) */
	bool zero_detect;
	/* Zero pages written between runs (mapped_ram_write_pages): only
	 * with direct-io, where a write costs far more than its bytes; a
	 * buffered file stays sparse. Set before the workers start. */
	unsigned max_gap;
	struct mig_counters *ctr;
	struct rsf_block *blocks;
	size_t nblocks;
};

/* ---- the workers' job ------------------------------------------------ */

static bool batch_known_zero(const struct rsf_batch *bt, uint32_t i)
{
	return bt->known_zero[i / 64] & (1ull << (i % 64));
}

static int write_batch(struct channel *ch, void *item, struct mig_error **errp)
{
	struct rsf_batch *bt = item;
	struct rsf_block *blk = bt->blk;
	struct mapped_ram_page pages[RSF_BATCH_PAGES];
	size_t nzero = 0;
	int ret;

	for (uint32_t i = 0; i < bt->n; i++) {
		uint64_t off = bt->offset[i], page = off / MAPPED_RAM_PAGE_SIZE;
		const uint8_t *p = blk->b->host + off;

		pages[i].offset = off;
		pages[i].data = p;
		if (bt->rsf->zero_detect &&
		    (batch_known_zero(bt, i) || mfd_page_is_zero(p))) {
			/* this batch's own: a gap it may fill with zeros */
			mapped_ram_bitmap_clear(&blk->bm, page);
			pages[i].data = NULL;
			nzero++;
			continue;
		}
		mapped_ram_bitmap_set(&blk->bm, page);
	}
	ret = mapped_ram_write_pages(ch, &blk->mr, pages, bt->n,
				     bt->rsf->max_gap, errp);
	if (ret)
		return ret;
	mig_count(&bt->rsf->ctr->normal_pages, bt->n - nzero);
	mig_count(&bt->rsf->ctr->zero_pages, nzero);
	mig_count(&bt->rsf->ctr->multifd_bytes,
		  (bt->n - nzero) * MAPPED_RAM_PAGE_SIZE);
	return 0;
}

/* ---- setup ------------------------------------------------------------ */

static int blocks_init(struct ram_save_file *rsf, struct guest *g)
{
	struct ram_block *b;
	size_t i = 0;

	guest_for_each_block(g, b) rsf->nblocks++;
	rsf->blocks =
		calloc(rsf->nblocks ? rsf->nblocks : 1, sizeof(*rsf->blocks));
	if (!rsf->blocks)
		return -ENOMEM;
	guest_for_each_block(g, b)
	{
		rsf->blocks[i].b = b;
		if (mapped_ram_bitmap_init(&rsf->blocks[i].bm,
					   b->used_length /
						   MAPPED_RAM_PAGE_SIZE))
			return -ENOMEM;
		i++;
	}
	return 0;
}

/* The writers' channels are all opened alike (direct-io or not). */
static unsigned save_max_gap(struct channel *main, struct channel **chans,
			     unsigned nchans)
{
	struct channel *w = nchans ? chans[0] : main;

	return filechan_is_direct(w) ? MAPPED_RAM_GAP_PAGES : 0;
}

struct ram_save_file *ram_save_file_new(struct guest *g, struct channel *main,
					struct channel **chans, unsigned nchans,
					bool zero_detect,
					struct mig_counters *ctr,
					struct mig_error **errp)
{
	struct ram_save_file *rsf = calloc(1, sizeof(*rsf));

	if (!rsf || !(rsf->batch = calloc(1, sizeof(*rsf->batch))) ||
	    blocks_init(rsf, g)) {
		ram_save_file_free(rsf);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	rsf->main = main;
	rsf->zero_detect = zero_detect;
	rsf->max_gap = save_max_gap(main, chans, nchans);
	rsf->ctr = ctr;
	rsf->pool = mfd_file_start(chans, nchans, main, sizeof(*rsf->batch),
				   write_batch, errp);
	if (!rsf->pool) {
		ram_save_file_free(rsf);
		return NULL;
	}
	return rsf;
}

void ram_save_file_free(struct ram_save_file *rsf)
{
	if (!rsf)
		return;
	mfd_file_free(rsf->pool);
	for (size_t i = 0; rsf->blocks && i < rsf->nblocks; i++)
		mapped_ram_bitmap_destroy(&rsf->blocks[i].bm);
	free(rsf->blocks);
	free(rsf->batch);
	free(rsf);
}

/* ---- the main stream --------------------------------------------------- */

int ram_save_file_block_header(struct ram_save_file *rsf, struct qfile *f,
			       size_t bi, struct mig_error **errp)
{
	struct rsf_block *blk = &rsf->blocks[bi];
	uint8_t raw[MAPPED_RAM_HDR_SIZE];
	struct mapped_ram_hdr hdr;
	uint64_t pos;
	int ret = qfile_flush(f);

	if (!ret)
		ret = filechan_tell(rsf->main, &pos);
	if (ret) {
		filechan_set_io_error(errp, ret, true);
		return ret;
	}
	ret = mapped_ram_layout(blk->b->name, pos, blk->b->used_length,
				&blk->mr, &hdr, errp);
	if (ret)
		return ret;
	blk->laid_out = true;
	mapped_ram_hdr_encode(&hdr, raw);
	qfile_put_buffer(f, raw, sizeof(raw));
	ret = qfile_flush(f);
	if (ret) {
		filechan_set_io_error(errp, ret, true);
		return ret;
	}
	return filechan_seek(rsf->main, blk->mr.end, errp);
}

int ram_save_file_flush(struct ram_save_file *rsf)
{
	int ret;

	if (!rsf->batch->n)
		return mfd_file_error(rsf->pool, NULL);
	ret = mfd_file_queue(rsf->pool, (void **)&rsf->batch);
	rsf->batch->n = 0;
	return ret;
}

int ram_save_file_page(struct ram_save_file *rsf, size_t bi, uint64_t offset,
		       bool known_zero)
{
	struct rsf_batch *bt = rsf->batch;
	struct rsf_block *blk = &rsf->blocks[bi];
	int ret;

	if (bi >= rsf->nblocks || !blk->laid_out)
		return -EINVAL;
	if (bt->n && (bt->blk != blk || bt->n == RSF_BATCH_PAGES)) {
		ret = ram_save_file_flush(rsf);
		if (ret)
			return ret;
		bt = rsf->batch;
	}
	bt->rsf = rsf;
	bt->blk = blk;
	bt->offset[bt->n] = offset;
	if (known_zero)
		bt->known_zero[bt->n / 64] |= 1ull << (bt->n % 64);
	else
		bt->known_zero[bt->n / 64] &= ~(1ull << (bt->n % 64));
	bt->n++;
	return 0;
}

int ram_save_file_sync(struct ram_save_file *rsf)
{
	int ret = ram_save_file_flush(rsf);

	return ret ? ret : mfd_file_sync(rsf->pool);
}

int ram_save_file_finish(struct ram_save_file *rsf, struct mig_error **errp)
{
	int ret = ram_save_file_sync(rsf);

	if (ret) {
		if (!mfd_file_error(rsf->pool, errp))
			filechan_set_io_error(errp, ret, true);
		return ret;
	}
	for (size_t i = 0; i < rsf->nblocks; i++) {
		struct rsf_block *blk = &rsf->blocks[i];

		if (!blk->laid_out)
			continue;
		ret = mapped_ram_bitmap_write(rsf->main, &blk->mr, &blk->bm,
					      errp);
		if (ret)
			return ret;
	}
	return 0;
}

void ram_save_file_kick(struct ram_save_file *rsf)
{
	if (rsf)
		mfd_file_kick(rsf->pool);
}

int ram_save_file_error(struct ram_save_file *rsf, struct mig_error **errp)
{
	return rsf ? mfd_file_error(rsf->pool, errp) : 0;
}

unsigned ram_save_file_nthreads(const struct ram_save_file *rsf)
{
	return rsf ? mfd_file_nthreads(rsf->pool) : 0;
}
