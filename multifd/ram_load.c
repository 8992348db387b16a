/* ram_load.c — the 'ram' section loader and the shared page landing (see
 * ram_load.h). Follows QEMU 9.0's ram_load_precopy(): the same record
 * forms, checks in the same order and the same messages; migd's blocks are
 * fixed, so a length mismatch is refused where QEMU would try to resize.
 * Threads: as in ram_load.h. */
#include "multifd/ram_load.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "guest/uffd.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_load_file.h"
#include "rdma/rdma_ram.h"
#include "multifd/vmstate.h"

#define BITS_PER_WORD (sizeof(unsigned long) * CHAR_BIT)
/* Flags live below the page size: everything a record's be64 can carry. */
#define RECORD_FLAGS_MASK ((uint64_t)RAM_TARGET_PAGE_SIZE - 1)
/* Records a mapped-ram stream never carries (QEMU 9.0's list). */
#define MAPPED_RAM_INVALID_FLAGS                                               \
	(RAM_SAVE_FLAG_HOOK | RAM_SAVE_FLAG_MULTIFD_FLUSH |                    \
	 RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE | RAM_SAVE_FLAG_ZERO |      \
	 RAM_SAVE_FLAG_COMPRESS_PAGE)

struct ram_load_block {
	struct ram_block *b;
	/* Bit set: the page may hold data (written by us, or unknown content
	 * of an existing backing file). Clear: still zero. */
	unsigned long *maybe_data;
	/* Bit set: the page arrived before postcopy (precopy record or
	 * multifd) and was not discarded since: what a postcopy recovery
	 * reports as received, with the pages placed through uffd. */
	unsigned long *received;
	uint64_t pages;
	bool skipped; /* x-ignore-shared and the block is shared */
};

struct ram_load {
	struct ram_load_opts opts;
	struct ram_load_block *blocks;
	int nblocks;
	int last_block; /* CONTINUE state of the main stream, -1: none yet */
	/* postcopy: set at LISTEN, before any record is placed */
	struct uffd *uffd;
	int *uffd_range; /* per block: uffd range id, -1: not registered */
	atomic_bool postcopy;
	atomic_bool landing_closed; /* multifd pages refused (postcopy) */
	atomic_bool populate_zero;  /* postcopy advised: map zero pages */
	ram_load_sync_fn sync;
	void *sync_opaque;
	_Atomic uint64_t normal_pages;
	_Atomic uint64_t zero_pages;
};

/* ---- setup --------------------------------------------------------------- */

static int block_init(struct ram_load_block *lb, struct ram_block *b,
		      const struct ram_load_opts *o)
{
	uint64_t pages = (b->used_length + RAM_TARGET_PAGE_SIZE - 1) /
			 RAM_TARGET_PAGE_SIZE;
	size_t words = (size_t)((pages + BITS_PER_WORD - 1) / BITS_PER_WORD);

	lb->b = b;
	lb->skipped = o->x_ignore_shared && ram_block_is_shared(b);
	lb->maybe_data = calloc(words ? words : 1, sizeof(unsigned long));
	lb->received = calloc(words ? words : 1, sizeof(unsigned long));
	lb->pages = pages;
	if (!lb->maybe_data || !lb->received) {
		free(lb->maybe_data);
		free(lb->received);
		return -ENOMEM;
	}
	/* Fresh anonymous and memfd RAM reads as zero; a backing file may
	 * hold anything, so its pages are checked before being skipped. */
	if (b->backing == RAM_BACKING_FILE)
		memset(lb->maybe_data, 0xff, words * sizeof(unsigned long));
	return 0;
}

struct ram_load *ram_load_new(const struct guest *g,
			      const struct ram_load_opts *o)
{
	struct ram_load *rl = calloc(1, sizeof(*rl));
	struct ram_block *b;
	int n = 0;

	if (!rl)
		return NULL;
	rl->opts = *o;
	rl->last_block = -1;
	guest_for_each_block(g, b) n++;
	rl->blocks = calloc(n ? (size_t)n : 1, sizeof(*rl->blocks));
	if (!rl->blocks)
		goto err_free;
	guest_for_each_block(g, b)
	{
		if (block_init(&rl->blocks[rl->nblocks], b, o) < 0)
			goto err_free;
		rl->nblocks++;
	}
	return rl;
err_free:
	ram_load_free(rl);
	return NULL;
}

void ram_load_free(struct ram_load *rl)
{
	if (!rl)
		return;
	for (int i = 0; i < rl->nblocks; i++) {
		free(rl->blocks[i].maybe_data);
		free(rl->blocks[i].received);
	}
	free(rl->blocks);
	free(rl->uffd_range);
	free(rl);
}

void ram_load_set_sync(struct ram_load *rl, ram_load_sync_fn fn, void *opaque)
{
	rl->sync = fn;
	rl->sync_opaque = opaque;
}

/* ---- landing ------------------------------------------------------------- */

int ram_load_lookup(const struct ram_load *rl, const char *name)
{
	for (int i = 0; i < rl->nblocks; i++)
		if (!strcmp(rl->blocks[i].b->name, name))
			return i;
	return -1;
}

struct ram_block *ram_load_block(const struct ram_load *rl, int idx)
{
	return rl->blocks[idx].b;
}

bool ram_load_block_skipped(const struct ram_load *rl, int idx)
{
	return rl->blocks[idx].skipped;
}

static unsigned long *page_word(struct ram_load *rl, int idx, uint64_t offset,
				unsigned long *mask)
{
	uint64_t page = offset / RAM_TARGET_PAGE_SIZE;

	*mask = 1ul << (page % BITS_PER_WORD);
	return &rl->blocks[idx].maybe_data[page / BITS_PER_WORD];
}

static void set_received(struct ram_load *rl, int idx, uint64_t offset)
{
	uint64_t page = offset / RAM_TARGET_PAGE_SIZE;
	unsigned long mask = 1ul << (page % BITS_PER_WORD);
	unsigned long *w = &rl->blocks[idx].received[page / BITS_PER_WORD];

	if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & mask))
		__atomic_fetch_or(w, mask, __ATOMIC_RELAXED);
}

void ram_load_mark_page(struct ram_load *rl, int idx, uint64_t offset)
{
	unsigned long mask;
	unsigned long *w = page_word(rl, idx, offset, &mask);

	if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & mask))
		__atomic_fetch_or(w, mask, __ATOMIC_RELAXED);
	set_received(rl, idx, offset);
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t acc = 0;

	for (size_t i = 0; i < RAM_TARGET_PAGE_SIZE / sizeof(*w); i++)
		acc |= w[i];
	return acc == 0;
}

void ram_load_zero_page(struct ram_load *rl, int idx, uint64_t offset)
{
	unsigned long mask;
	unsigned long *w = page_word(rl, idx, offset, &mask);
	uint8_t *host = rl->blocks[idx].b->host + offset;

	set_received(rl, idx, offset);
	if (atomic_load_explicit(&rl->populate_zero, memory_order_relaxed))
		(void)*(volatile uint8_t *)host; /* present from now on */
	/* Reading before writing keeps untouched file pages (holes) and
	 * pages that are already zero out of the page cache's dirty set. */
	if ((__atomic_load_n(w, __ATOMIC_RELAXED) & mask) &&
	    !page_is_zero(host))
		memset(host, 0, RAM_TARGET_PAGE_SIZE);
}

void ram_load_count(struct ram_load *rl, uint64_t normal, uint64_t zero)
{
	if (normal)
		atomic_fetch_add_explicit(&rl->normal_pages, normal,
					  memory_order_relaxed);
	if (zero)
		atomic_fetch_add_explicit(&rl->zero_pages, zero,
					  memory_order_relaxed);
}

uint64_t ram_load_normal_pages(const struct ram_load *rl)
{
	return atomic_load_explicit(&rl->normal_pages, memory_order_relaxed);
}

uint64_t ram_load_zero_pages(const struct ram_load *rl)
{
	return atomic_load_explicit(&rl->zero_pages, memory_order_relaxed);
}

/* ---- the section's records ----------------------------------------------- */

static int read_fail(int ret, struct mig_error **errp)
{
	if (ret == -EPIPE || ret == -EPROTO)
		mig_error_setg(errp, "migration stream ended while reading "
				     "a RAM record");
	else
		mig_error_setg(errp,
			       "error reading a RAM record from the "
			       "migration stream: %s",
			       strerror(-ret));
	return ret;
}

static int do_sync(struct ram_load *rl, struct mig_error **errp)
{
	if (!rl->opts.multifd || !rl->sync)
		return 0;
	return rl->sync(rl->sync_opaque, errp);
}

/* mapped-ram: the block's header and its pages from the file. */
static int load_file_block(struct ram_load *rl, struct qfile *f, int idx,
			   uint64_t length, struct mig_error **errp)
{
	uint64_t pages = 0;
	int ret = ram_load_file_block(rl->opts.file, f, rl->blocks[idx].b,
				      length, &pages, errp);

	ram_load_count(rl, pages, 0);
	return ret;
}

/* One entry of the MEM_SIZE block list. *length gets the sent length. */
static int parse_block_entry(struct ram_load *rl, struct qfile *f,
			     uint64_t *length, struct mig_error **errp)
{
	char id[256];
	uint64_t gpa, aligned;
	int idx, ret = qfile_get_str8(f, id);

	if (!ret)
		ret = qfile_get_be64(f, length);
	if (!ret && rl->opts.x_ignore_shared)
		ret = qfile_get_be64(f, &gpa); /* machine none: not checked */
	if (ret)
		return read_fail(ret, errp);
	idx = ram_load_lookup(rl, id);
	if (idx < 0) {
		mig_error_setg(errp,
			       "Unknown ramblock \"%s\", cannot accept "
			       "migration",
			       id);
		return -EINVAL;
	}
	/* QEMU compares the host-page-aligned length; migd's blocks cannot
	 * be resized, so a real difference ends the migration with QEMU's
	 * message for a non-resizable block (qemu_ram_resize). */
	aligned = *length > UINT64_MAX - (RAM_TARGET_PAGE_SIZE - 1)
			  ? 0
			  : (*length + RAM_TARGET_PAGE_SIZE - 1) &
				    RAM_TARGET_PAGE_MASK;
	if (aligned != rl->blocks[idx].b->used_length) {
		mig_error_setg(errp,
			       "Size mismatch: %s: 0x%" PRIx64 " != 0x%" PRIx64
			       ": Invalid argument",
			       id, aligned, rl->blocks[idx].b->used_length);
		return -EINVAL;
	}
	if (rl->opts.rdma && rdma_dst_block_seen(rl->opts.rdma, idx, errp))
		return -EINVAL;
	return rl->opts.file ? load_file_block(rl, f, idx, *length, errp) : 0;
}

static int parse_mem_size(struct ram_load *rl, struct qfile *f, uint64_t total,
			  struct mig_error **errp)
{
	uint64_t left = total, length;
	int ret;

	while (left) {
		ret = parse_block_entry(rl, f, &length, errp);
		if (ret)
			return ret;
		if (length > left) {
			mig_error_setg(errp,
				       "RAM block lengths do not add up "
				       "to the announced RAM size 0x%" PRIx64,
				       total);
			return -EINVAL;
		}
		left -= length;
	}
	return 0;
}

/* The block of a page record: the previous one (CONTINUE) or named. */
static int block_from_stream(struct ram_load *rl, struct qfile *f,
			     uint64_t flags, int *last, struct mig_error **errp)
{
	char id[256];
	int idx, ret;

	if (flags & RAM_SAVE_FLAG_CONTINUE) {
		if (*last < 0) {
			mig_error_setg(errp, "Ack, bad migration stream!");
			return -EINVAL;
		}
		return *last;
	}
	ret = qfile_get_str8(f, id);
	if (ret)
		return read_fail(ret, errp);
	idx = ram_load_lookup(rl, id);
	if (idx < 0) {
		mig_error_setg(errp, "Can't find block %s", id);
		return -EINVAL;
	}
	if (rl->blocks[idx].skipped) {
		mig_error_setg(errp, "block %s should not be migrated !", id);
		return -EINVAL;
	}
	*last = idx;
	return idx;
}

static int load_zero(struct ram_load *rl, struct qfile *f, int idx,
		     uint64_t addr, struct mig_error **errp)
{
	uint8_t ch;
	int ret = qfile_get_u8(f, &ch);

	if (ret)
		return read_fail(ret, errp);
	if (ch != 0) {
		mig_error_setg(errp, "Found a zero page with value %d", ch);
		return -EINVAL;
	}
	ram_load_zero_page(rl, idx, addr);
	ram_load_count(rl, 0, 1);
	return 0;
}

static int load_page(struct ram_load *rl, struct qfile *f, int idx,
		     uint64_t addr, struct mig_error **errp)
{
	int ret;

	ram_load_mark_page(rl, idx, addr);
	ram_block_prepare_write(rl->blocks[idx].b, addr, RAM_TARGET_PAGE_SIZE);
	ret = qfile_get_buffer(f, rl->blocks[idx].b->host + addr,
			       RAM_TARGET_PAGE_SIZE);
	if (ret)
		return read_fail(ret, errp);
	ram_load_count(rl, 1, 0);
	return 0;
}

/* The page's block and a bounds check, before anything else is read, as
 * QEMU does for every page-like record. */
static int page_target(struct ram_load *rl, struct qfile *f, uint64_t flags,
		       uint64_t addr, int *last, struct mig_error **errp)
{
	int idx = block_from_stream(rl, f, flags, last, errp);

	if (idx < 0)
		return idx;
	if (!ram_block_contains(rl->blocks[idx].b, addr,
				RAM_TARGET_PAGE_SIZE)) {
		mig_error_setg(errp, "Illegal RAM offset %" PRIx64, addr);
		return -EINVAL;
	}
	return idx;
}

/* One record; *eos is set at the section's end. */
static int load_record(struct ram_load *rl, struct qfile *f, bool *eos,
		       struct mig_error **errp)
{
	uint64_t v, flags, addr;
	int idx = -1, ret = qfile_get_be64(f, &v);

	if (ret)
		return read_fail(ret, errp);
	flags = v & RECORD_FLAGS_MASK;
	addr = v & RAM_TARGET_PAGE_MASK;
	if (rl->opts.file && (flags & MAPPED_RAM_INVALID_FLAGS)) {
		mig_error_setg(errp, "Unexpected RAM flags: %d",
			       (int)(flags & MAPPED_RAM_INVALID_FLAGS));
		return -EINVAL;
	}
	if (flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE)) {
		idx = page_target(rl, f, flags, addr, &rl->last_block, errp);
		if (idx < 0)
			return idx;
	}
	switch (flags & ~(uint64_t)RAM_SAVE_FLAG_CONTINUE) {
	case RAM_SAVE_FLAG_MEM_SIZE:
		return parse_mem_size(rl, f, addr, errp);
	case RAM_SAVE_FLAG_ZERO:
		return load_zero(rl, f, idx, addr, errp);
	case RAM_SAVE_FLAG_PAGE:
		return load_page(rl, f, idx, addr, errp);
	case RAM_SAVE_FLAG_MULTIFD_FLUSH:
		return do_sync(rl, errp);
	case RAM_SAVE_FLAG_EOS:
		*eos = true;
		return rl->opts.flush_after_each_section ? do_sync(rl, errp)
							 : 0;
	case RAM_SAVE_FLAG_HOOK:
		if (rl->opts.rdma) /* rdma: its control loop */
			return rdma_dst_hook(rl->opts.rdma, rl, errp);
		/* fall through */
	default:
		/* Also HOOK outside rdma:, XBZRLE and COMPRESS_PAGE (gone
		 * in 9.1): migd's destination supports none of them. */
		mig_error_setg(errp,
			       "Unknown combination of migration flags: "
			       "0x%x",
			       (unsigned)flags);
		return -EINVAL;
	}
}

int ram_load_section(struct ram_load *rl, struct qfile *f, uint32_t version,
		     struct mig_error **errp)
{
	bool eos = false;
	int ret = 0;

	if (version != VMS_RAM_VERSION) {
		mig_error_setg(errp,
			       "savevm: unsupported version %u for 'ram' "
			       "v%u",
			       version, VMS_RAM_VERSION);
		return -EINVAL;
	}
	if (atomic_load(&rl->postcopy))
		return ram_load_postcopy(rl, f, &rl->last_block, errp);
	while (!ret && !eos)
		ret = load_record(rl, f, &eos, errp);
	return ret;
}

/* ---- postcopy: records placed through userfaultfd ------------------------ */

int ram_load_set_postcopy(struct ram_load *rl, struct uffd *u,
			  const int *ranges)
{
	rl->uffd_range =
		calloc(rl->nblocks ? (size_t)rl->nblocks : 1, sizeof(int));
	if (!rl->uffd_range)
		return -ENOMEM;
	for (int i = 0; i < rl->nblocks; i++)
		rl->uffd_range[i] = ranges[i];
	rl->uffd = u;
	atomic_store(&rl->postcopy, true);
	return 0;
}

void ram_load_populate_zero_pages(struct ram_load *rl)
{
	atomic_store(&rl->populate_zero, true);
	for (int i = 0; i < rl->nblocks; i++)
		ram_block_no_huge_pages(rl->blocks[i].b);
}

void ram_load_close_landing(struct ram_load *rl)
{
	atomic_store(&rl->landing_closed, true);
}

bool ram_load_landing_closed(const struct ram_load *rl)
{
	return atomic_load(&rl->landing_closed);
}

void ram_load_forget(struct ram_load *rl, int idx, uint64_t start,
		     uint64_t length)
{
	struct ram_load_block *lb = &rl->blocks[idx];
	uint64_t first = start / RAM_TARGET_PAGE_SIZE;
	uint64_t end = first + length / RAM_TARGET_PAGE_SIZE;

	for (uint64_t p = first; p < end && p < lb->pages; p++)
		__atomic_fetch_and(&lb->received[p / BITS_PER_WORD],
				   ~(1ul << (p % BITS_PER_WORD)),
				   __ATOMIC_RELAXED);
}

void ram_load_received_or_le(const struct ram_load *rl, int idx, uint8_t *le,
			     size_t len)
{
	const struct ram_load_block *lb = &rl->blocks[idx];
	size_t words =
		(size_t)((lb->pages + BITS_PER_WORD - 1) / BITS_PER_WORD);

	for (size_t i = 0; i < words; i++) {
		unsigned long w =
			__atomic_load_n(&lb->received[i], __ATOMIC_RELAXED);

		for (unsigned b = 0; w && b < BITS_PER_WORD; b++, w >>= 1) {
			uint64_t page = (uint64_t)i * BITS_PER_WORD + b;

			if ((w & 1) && page / 8 < len)
				le[page / 8] |= (uint8_t)(1u << (page % 8));
		}
	}
}

bool ram_load_postcopy_running(const struct ram_load *rl)
{
	return atomic_load(&rl->postcopy);
}

int ram_load_nblocks(const struct ram_load *rl)
{
	return rl->nblocks;
}

/* One page (buf) or a zero page (buf NULL) at addr of block idx. Nothing
 * is ever written into registered RAM directly: placement is atomic and
 * wakes the vCPUs waiting for the page. */
static int place(struct ram_load *rl, int idx, uint64_t addr,
		 const uint8_t *buf, struct mig_error **errp)
{
	int range = rl->uffd_range[idx];
	int ret;

	if (range < 0) {
		mig_error_setg(errp, "postcopy: block %s is not registered",
			       rl->blocks[idx].b->name);
		return -EINVAL;
	}
	ret = buf ? uffd_place_page(rl->uffd, (unsigned)range, addr, buf, errp)
		  : uffd_place_zero(rl->uffd, (unsigned)range, addr, errp);
	if (ret < 0)
		return ret == -EIO ? -EFAULT : ret; /* not a network error */
	ram_load_count(rl, buf ? 1 : 0, buf ? 0 : 1);
	return 0;
}

static int postcopy_page(struct ram_load *rl, struct qfile *f, int idx,
			 uint64_t flags, uint64_t addr, struct mig_error **errp)
{
	uint8_t buf[RAM_TARGET_PAGE_SIZE] __attribute__((aligned(64)));
	uint8_t ch;
	int ret;

	if (flags & RAM_SAVE_FLAG_PAGE) {
		ret = qfile_get_buffer(f, buf, sizeof(buf));
		if (ret)
			return read_fail(ret, errp);
		return place(rl, idx, addr, buf, errp);
	}
	ret = qfile_get_u8(f, &ch);
	if (ret)
		return read_fail(ret, errp);
	if (ch != 0) {
		mig_error_setg(errp, "Found a zero page with value %d", ch);
		return -EINVAL;
	}
	return place(rl, idx, addr, NULL, errp);
}

/* One postcopy record; *eos is set at EOS. QEMU's ram_load_postcopy()
 * for blocks whose page size is the target page size (ADVISE refuses
 * others). */
static int postcopy_record(struct ram_load *rl, struct qfile *f, int *last,
			   bool *eos, struct mig_error **errp)
{
	uint64_t v, flags, addr;
	int idx, ret = qfile_get_be64(f, &v);

	if (ret)
		return read_fail(ret, errp);
	flags = v & RECORD_FLAGS_MASK;
	addr = v & RAM_TARGET_PAGE_MASK;
	switch (flags & ~(uint64_t)RAM_SAVE_FLAG_CONTINUE) {
	case RAM_SAVE_FLAG_ZERO:
	case RAM_SAVE_FLAG_PAGE:
		idx = page_target(rl, f, flags, addr, last, errp);
		if (idx < 0)
			return idx;
		return postcopy_page(rl, f, idx, flags, addr, errp);
	case RAM_SAVE_FLAG_EOS:
		*eos = true;
		return 0;
	default:
		mig_error_setg(errp,
			       "Unknown combination of migration flags: "
			       "0x%x (postcopy mode)",
			       (unsigned)flags);
		return -EINVAL;
	}
}

int ram_load_postcopy(struct ram_load *rl, struct qfile *f, int *last_block,
		      struct mig_error **errp)
{
	bool eos = false;
	int ret = 0;

	if (!atomic_load(&rl->postcopy)) {
		mig_error_setg(errp, "postcopy RAM records before LISTEN");
		return -EINVAL;
	}
	while (!ret && !eos)
		ret = postcopy_record(rl, f, last_block, &eos, errp);
	return ret;
}
