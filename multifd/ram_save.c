/* ram_save.c — the source side of the 'ram' section (see ram_save.h).
 * The migration bitmap has one bit per 4 KiB page per block; the scan
 * cursor walks it round after round, each set bit is cleared and its page
 * sent, and dirty syncs OR the guest's dirty log back in.
 * Migration thread only; in postcopy the return-path thread may also send
 * requested pages (ram_save_postcopy.c), so the bitmap and the pending
 * count are then taken under rs->lock. */
#include "multifd/ram_save.h"
#include "multifd/ram_save_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest/dirty.h"
#include "guest/guest.h"
#include "multifd/mfd_send.h"
#include "multifd/migstats.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save_file.h"
#include "multifd/vmstate.h"
#include "rdma/rdma_ram.h"
#include "socket/channel.h"

struct ram_save *ram_save_new(struct guest *g, struct qfile *f,
			      const struct ram_save_opts *o,
			      struct mig_counters *ctr)
{
	struct ram_save *rs = calloc(1, sizeof(*rs));
	struct ram_block *b;
	size_t i = 0;

	if (!rs)
		return NULL;
	pthread_mutex_init(&rs->lock, NULL);
	rs->g = g;
	rs->f = f;
	rs->main.f = f;
	rs->o = *o;
	rs->ctr = ctr;
	rs->nblocks = g->nblocks;
	rs->blocks = calloc(rs->nblocks ? rs->nblocks : 1, sizeof(*rs->blocks));
	rs->batch = calloc(1, sizeof(*rs->batch));
	if (!rs->blocks || !rs->batch)
		goto err;
	guest_for_each_block(g, b)
	{
		struct rs_block *rb = &rs->blocks[i++];
		uint64_t words;

		rb->b = b;
		rb->npages = b->used_length >> RAM_TARGET_PAGE_BITS;
		words = (rb->npages + BITS_PER_LONG - 1) / BITS_PER_LONG;
		rb->bmap = calloc(words ? words : 1, sizeof(unsigned long));
		if (!rb->bmap)
			goto err;
	}
	return rs;
err:
	ram_save_free(rs);
	return NULL;
}

void ram_save_cleanup(struct ram_save *rs)
{
	if (rs && rs->logging) {
		dirty_log_stop(rs->g);
		rs->logging = false;
	}
}

void ram_save_drop_residency(struct ram_save *rs)
{
	for (size_t i = 0; rs->blocks && i < rs->nblocks; i++) {
		free(rs->blocks[i].resident);
		rs->blocks[i].resident = NULL;
	}
	rs->first_round = false;
}

/* Without swap, an anonymous or memfd page that is not resident has never
 * been written: it reads as zero. (With swap it may be swapped out.) */
static bool host_has_swap(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long kb = 1;

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SwapTotal: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb != 0;
}

/* A shared file block: holes of the file (SEEK_HOLE) read as zero, and a
 * guest write fills the hole. 0 marks a hole page, 1 possible data. */
static int file_holes(struct rs_block *rb)
{
	off_t len = (off_t)(rb->npages << RAM_TARGET_PAGE_BITS), off = 0;
	int fd = rb->b->fd;

	memset(rb->resident, 1, rb->npages);
	while (off < len) {
		off_t data = lseek(fd, off, SEEK_DATA), end;

		if (data < 0 && errno != ENXIO)
			return -errno;
		end = data < 0 || data > len ? len : data;
		for (off_t p = (off + RAM_TARGET_PAGE_SIZE - 1) >>
			       RAM_TARGET_PAGE_BITS;
		     (p + 1) << RAM_TARGET_PAGE_BITS <= end; p++)
			rb->resident[p] = 0;
		if (data < 0 || data >= len)
			break;
		off = lseek(fd, data, SEEK_HOLE);
		if (off < 0)
			return -errno;
	}
	return 0;
}

static void snapshot_residency(struct ram_save *rs)
{
	bool swap = host_has_swap();

	rs->first_round = true;
	for (size_t i = 0; i < rs->nblocks; i++) {
		struct rs_block *rb = &rs->blocks[i];
		bool file = rb->b->backing == RAM_BACKING_FILE;
		int ret;

		/* A private file mapping hides guest writes from the file;
		 * with swap, a non-resident anonymous page may hold data. */
		if (!rb->npages || (file && !rb->b->shared) || (!file && swap))
			continue;
		rb->resident = malloc(rb->npages);
		if (!rb->resident)
			continue;
		ret = file ? file_holes(rb)
			   : mincore(rb->b->host,
				     rb->npages << RAM_TARGET_PAGE_BITS,
				     rb->resident);
		if (ret < 0) {
			free(rb->resident);
			rb->resident = NULL;
		}
	}
}

static bool known_zero(const struct ram_save *rs, const struct rs_block *rb,
		       uint64_t page)
{
	return rs->first_round && rb->resident && !(rb->resident[page] & 1);
}

void ram_save_free(struct ram_save *rs)
{
	if (!rs)
		return;
	ram_save_cleanup(rs);
	ram_save_drop_residency(rs);
	for (size_t i = 0; rs->blocks && i < rs->nblocks; i++)
		free(rs->blocks[i].bmap);
	free(rs->blocks);
	free(rs->batch);
	free(rs->rel.r);
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

static void set_all_pending(struct ram_save *rs)
{
	rs->pending = 0;
	for (size_t i = 0; i < rs->nblocks; i++) {
		struct rs_block *rb = &rs->blocks[i];
		uint64_t full = rb->npages / BITS_PER_LONG;
		uint64_t rest = rb->npages % BITS_PER_LONG;

		memset(rb->bmap, 0xff, full * sizeof(unsigned long));
		if (rest)
			rb->bmap[full] = (1ul << rest) - 1;
		rs->pending += rb->npages;
	}
	atomic_store(&rs->ctr->remaining_pages, rs->pending);
}

/* A sync during the bulk round: pages written since the residency
 * snapshot lose their "known zero" status, or a page still ahead of the
 * scan would be sent as zero after its dirty bit was consumed here. */
static uint64_t sync_block_first_round(struct rs_block *rb)
{
	uint64_t words = (rb->npages + BITS_PER_LONG - 1) / BITS_PER_LONG;
	unsigned long *tmp = calloc(words ? words : 1, sizeof(*tmp));
	uint64_t fresh = 0;

	if (!tmp) { /* no memory: forget the snapshot instead */
		free(rb->resident);
		rb->resident = NULL;
		return dirty_log_sync_block(rb->b, rb->bmap);
	}
	dirty_log_sync_block(rb->b, tmp);
	for (uint64_t i = 0; i < words; i++) {
		unsigned long w = tmp[i];

		fresh += (uint64_t)__builtin_popcountl(w & ~rb->bmap[i]);
		rb->bmap[i] |= w;
		while (w) {
			uint64_t page =
				i * BITS_PER_LONG + (uint64_t)__builtin_ctzl(w);

			rb->resident[page] |= 1;
			w &= w - 1;
		}
	}
	free(tmp);
	return fresh;
}

uint64_t ram_save_sync(struct ram_save *rs)
{
	uint64_t fresh = 0;

	for (size_t i = 0; i < rs->nblocks; i++) {
		struct rs_block *rb = &rs->blocks[i];

		if (rs->first_round && rb->resident)
			fresh += sync_block_first_round(rb);
		else
			fresh += dirty_log_sync_block(rb->b, rb->bmap);
	}
	rs->pending += fresh;
	atomic_store(&rs->ctr->remaining_pages, rs->pending);
	mig_count(&rs->ctr->dirty_sync_count, 1);
	return fresh;
}

uint64_t ram_save_peek_fresh(const struct ram_save *rs)
{
	uint64_t n = 0;

	for (size_t i = 0; i < rs->nblocks; i++)
		n += dirty_log_peek_block(rs->blocks[i].b, rs->blocks[i].bmap);
	return n;
}

uint64_t ram_save_pending_pages(const struct ram_save *rs)
{
	return rs->pending;
}

static void put_eos(struct ram_save *rs)
{
	qfile_put_be64(rs->f, RAM_SAVE_FLAG_EOS);
}

/* Main-stream record header: offset|flags, then the block name unless
 * CONTINUE applies. */
static void put_record(struct rs_out *o, const struct ram_block *b,
		       uint64_t offset, uint64_t flags)
{
	if (b == o->last_block)
		flags |= RAM_SAVE_FLAG_CONTINUE;
	qfile_put_be64(o->f, offset | flags);
	if (b != o->last_block) {
		qfile_put_str8(o->f, b->name);
		o->last_block = b;
	}
}

static int flush_batch(struct ram_save *rs)
{
	if (rs->o.file)
		return ram_save_file_flush(rs->o.file);
	return rs->o.mfd ? mfd_send_queue(rs->o.mfd, &rs->batch) : 0;
}

/* A multifd sync point: the partial batch, SYNC on every channel, and in
 * the per-round mode the MULTIFD_FLUSH record telling the destination to
 * wait for them. */
int ram_save_multifd_sync(struct ram_save *rs, bool put_flush_record)
{
	int ret;

	if (rs->o.file) /* mapped-ram: no SYNC packets, no flush record */
		return ram_save_file_sync(rs->o.file);
	if (!rs->o.mfd)
		return 0;
	ret = flush_batch(rs);
	if (!ret)
		ret = mfd_send_sync(rs->o.mfd);
	if (!ret && put_flush_record) {
		qfile_put_be64(rs->f, RAM_SAVE_FLAG_MULTIFD_FLUSH);
		/* Send it now (as QEMU does): the destination's channels wait
		 * at their SYNC until it reads this record, so pages queued
		 * behind the SYNCs would otherwise fill the sockets while the
		 * record sits in our buffer, and both sides wait for ever. */
		ret = qfile_flush(rs->f);
	}
	return ret;
}

int ram_save_send_page(struct ram_save *rs, struct rs_out *out,
		       struct rs_block *rb, uint64_t page)
{
	struct ram_block *b = rb->b;
	uint64_t off = page << RAM_TARGET_PAGE_BITS;
	const uint8_t *p = b->host + off;
	bool zero_here = rs->o.zero == RAM_ZERO_LEGACY ||
			 (!rs->o.mfd && rs->o.zero != RAM_ZERO_NONE);
	bool known = rs->o.zero != RAM_ZERO_NONE && known_zero(rs, rb, page);

	if (rs->o.file)
		return ram_save_file_page(rs->o.file, (size_t)(rb - rs->blocks),
					  off, known);
	if (rdma_chan_ram(qfile_channel(out->f))) { /* rdma: RDMA WRITE */
		mig_count(&rs->ctr->normal_pages, 1);
		mig_count(&rs->ctr->rdma_bytes, RAM_TARGET_PAGE_SIZE);
		return rdma_src_save_page(rdma_chan_ram(qfile_channel(out->f)),
					  (uint32_t)(rb - rs->blocks), off,
					  NULL);
	}
	if (zero_here && (known || mfd_page_is_zero(p))) {
		put_record(out, b, off, RAM_SAVE_FLAG_ZERO);
		qfile_put_u8(out->f, 0);
		mig_count(&rs->ctr->zero_pages, 1);
		return 0;
	}
	if (rs->o.mfd) {
		if (rs->batch->npages &&
		    (rs->batch->block != b ||
		     rs->batch->npages == MFD_PAGE_COUNT)) {
			int ret = flush_batch(rs);

			if (ret)
				return ret;
		}
		rs->batch->block = b;
		mfd_batch_add(rs->batch, off, known);
		return 0;
	}
	put_record(out, b, off, RAM_SAVE_FLAG_PAGE);
	qfile_put_ram(out->f, p, RAM_TARGET_PAGE_SIZE);
	mig_count(&rs->ctr->normal_pages, 1);
	return qfile_error(out->f);
}

/* Finds and clears the next pending page at or after the cursor; sets
 * *wrapped when the scan went past the last block. false: none pending. */
static bool next_page(struct ram_save *rs, size_t *bi, uint64_t *page,
		      bool *wrapped)
{
	if (!rs->pending)
		return false;
	for (;;) {
		struct rs_block *rb = &rs->blocks[rs->cur_block];
		uint64_t p = rs->cur_page;

		while (p < rb->npages) {
			unsigned long w = rb->bmap[p / BITS_PER_LONG] >>
					  (p % BITS_PER_LONG);

			if (!w) {
				p = (p / BITS_PER_LONG + 1) * BITS_PER_LONG;
				continue;
			}
			p += (uint64_t)__builtin_ctzl(w);
			if (p >= rb->npages)
				break;
			rb->bmap[p / BITS_PER_LONG] &=
				~(1ul << (p % BITS_PER_LONG));
			rs->pending--;
			*bi = rs->cur_block;
			*page = p;
			rs->cur_page = p + 1;
			return true;
		}
		rs->cur_page = 0;
		if (++rs->cur_block == rs->nblocks) {
			rs->cur_block = 0;
			*wrapped = true;
		}
	}
}

bool ram_save_test_clear(struct ram_save *rs, struct rs_block *rb,
			 uint64_t page)
{
	unsigned long *w = &rb->bmap[page / BITS_PER_LONG];
	unsigned long bit = 1ul << (page % BITS_PER_LONG);

	if (page >= rb->npages || !(*w & bit))
		return false;
	*w &= ~bit;
	rs->pending--;
	return true;
}

/* Sends the next pending page; 1 sent, 0 nothing pending, -errno. */
int ram_save_one(struct ram_save *rs)
{
	bool wrapped = false, found;
	uint64_t page;
	size_t bi;
	int ret = 0;

	if (rs->postcopy) /* the return-path thread may send pages too */
		pthread_mutex_lock(&rs->lock);
	found = next_page(rs, &bi, &page, &wrapped);
	if (rs->postcopy)
		pthread_mutex_unlock(&rs->lock);
	/* A completed round: per-round multifd sync, as QEMU 8.1+ does when
	 * its scan wraps around (never in postcopy: no multifd then). */
	if (wrapped && rs->first_round)
		ram_save_drop_residency(rs);
	if (wrapped && !rs->o.flush_each_section)
		ret = ram_save_multifd_sync(rs, true);
	if (ret || !found)
		return ret;
	ret = ram_save_send_page(rs, &rs->main, &rs->blocks[bi], page);
	ram_save_note_release(rs, &rs->blocks[bi], page);
	atomic_store(&rs->ctr->remaining_pages, rs->pending);
	atomic_store(&rs->ctr->main_bytes, qfile_pos(rs->f));
	return ret ? ret : 1;
}

static int put_mem_size(struct ram_save *rs, struct mig_error **errp)
{
	int ret = 0;

	qfile_put_be64(rs->f, guest_ram_size(rs->g) | RAM_SAVE_FLAG_MEM_SIZE);
	for (size_t i = 0; i < rs->nblocks && !ret; i++) {
		qfile_put_str8(rs->f, rs->blocks[i].b->name);
		qfile_put_be64(rs->f, rs->blocks[i].b->used_length);
		if (rs->o.file)
			ret = ram_save_file_block_header(rs->o.file, rs->f, i,
							 errp);
	}
	return ret;
}

/* Ends a section: legacy mode syncs multifd before every EOS. */
int ram_save_end_section(struct ram_save *rs)
{
	int ret = 0;

	if (rs->o.flush_each_section)
		ret = ram_save_multifd_sync(rs, false);
	put_eos(rs);
	vms_put_footer(rs->f, rs->o.vms, VMS_ID_RAM);
	atomic_store(&rs->ctr->main_bytes, qfile_pos(rs->f));
	return ret ? ret : qfile_error(rs->f);
}

static int io_error(struct ram_save *rs, int ret, struct mig_error **errp)
{
	mig_error_setg(errp, "Unable to write to %s: %s",
		       chan_noun(qfile_channel(rs->f)), strerror(-ret));
	return ret;
}

int ram_save_setup(struct ram_save *rs, struct mig_error **errp)
{
	int ret = 0;

	set_all_pending(rs);
	/* Logging first: a page populated after the residency snapshot was
	 * written while logging, so it is dirty and will be sent again. */
	dirty_log_start(rs->g);
	rs->logging = true;
	snapshot_residency(rs);
	ram_save_sync(rs);
	vms_put_section_header(rs->f, VMS_SECTION_START, VMS_ID_RAM, "ram", 0,
			       VMS_RAM_VERSION);
	ret = put_mem_size(rs, errp);
	if (!ret && rdma_chan_ram(qfile_channel(rs->f)))
		ret = rdma_src_setup(rdma_chan_ram(qfile_channel(rs->f)), rs->g,
				     rs->f, errp);
	if (ret)
		return ret;
	if (!rs->o.flush_each_section)
		ret = ram_save_multifd_sync(rs, true);
	if (!ret)
		ret = ram_save_end_section(rs);
	return ret ? io_error(rs, ret, errp) : 0;
}

int ram_save_iterate(struct ram_save *rs, ram_save_stop_fn stop, void *opaque,
		     struct mig_error **errp)
{
	int ret, done = 0;

	vms_put_section_header(rs->f, VMS_SECTION_PART, VMS_ID_RAM, NULL, 0, 0);
	if (rdma_chan_ram(qfile_channel(rs->f)) &&
	    rdma_src_round_start(rdma_chan_ram(qfile_channel(rs->f)), rs->f,
				 errp))
		return -EIO;
	for (unsigned n = 0;; n++) {
		ret = ram_save_one(rs);
		if (ret < 0)
			return io_error(rs, ret, errp);
		if (ret == 0) {
			done = 1;
			break;
		}
		if ((n & 15) == 15 && stop(opaque))
			break;
	}
	ret = flush_batch(rs);
	if (!ret && rdma_chan_ram(qfile_channel(rs->f)) &&
	    rdma_src_round_stop(rdma_chan_ram(qfile_channel(rs->f)), rs->f,
				errp))
		return -EIO;
	if (!ret)
		ret = ram_save_end_section(rs);
	return ret ? io_error(rs, ret, errp) : done;
}

int ram_save_complete(struct ram_save *rs, struct mig_error **errp)
{
	int ret;

	if (!rs->postcopy) /* postcopy: the guest stopped at the switch */
		ram_save_sync(rs);
	vms_put_section_header(rs->f, VMS_SECTION_END, VMS_ID_RAM, NULL, 0, 0);
	if (rdma_chan_ram(qfile_channel(rs->f)) &&
	    rdma_src_round_start(rdma_chan_ram(qfile_channel(rs->f)), rs->f,
				 errp))
		return -EIO;
	while ((ret = ram_save_one(rs)) > 0)
		;
	if (!ret && rdma_chan_ram(qfile_channel(rs->f)) &&
	    rdma_src_round_stop(rdma_chan_ram(qfile_channel(rs->f)), rs->f,
				errp))
		return -EIO;
	if (!ret && !rs->o.flush_each_section)
		ret = ram_save_multifd_sync(rs, true);
	if (!ret && rs->o.file && ram_save_file_finish(rs->o.file, errp))
		return -EIO;
	if (!ret)
		ret = ram_save_end_section(rs);
	return ret ? io_error(rs, ret, errp) : 0;
}
