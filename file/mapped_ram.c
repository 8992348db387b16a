/* mapped_ram.c — the mapped-ram layout of one RAM block (see mapped_ram.h):
 * header codec, region arithmetic with every hostile value checked, the
 * bitmap of present pages, positioned page writes and the restore plan.
 * Does not own the main stream or threads; any thread, one per object
 * (bitmap set/clear/test are atomic). */
#include "file/mapped_ram.h"
#include "file/filechan.h"
#include "multifd/byteorder.h"
#include "multifd/ram_flags.h"
#include "socket/channel.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

_Static_assert(MAPPED_RAM_PAGE_SIZE == RAM_TARGET_PAGE_SIZE,
	       "mapped-ram pages are target pages");
_Static_assert(MAPPED_RAM_LOAD_CHUNK / MAPPED_RAM_PAGE_SIZE <= IOV_MAX,
	       "a chunk is read with one preadv of one iovec per page at most");
_Static_assert(MAPPED_RAM_GAP_PAGES > 0, "a scratch buffer holds a page");
_Static_assert((MAPPED_RAM_FILE_ALIGN & (MAPPED_RAM_FILE_ALIGN - 1)) == 0,
	       "alignment is a power of two");

#define BITS_PER_WORD (sizeof(unsigned long) * CHAR_BIT)
#define OFF_MAX ((uint64_t)INT64_MAX)

/* --- header ------------------------------------------------------------- */

void mapped_ram_hdr_encode(const struct mapped_ram_hdr *h,
			   uint8_t out[MAPPED_RAM_HDR_SIZE])
{
	mfd_store_be32(out, h->version);
	mfd_store_be64(out + 4, h->page_size);
	mfd_store_be64(out + 12, h->bitmap_offset);
	mfd_store_be64(out + 20, h->pages_offset);
}

void mapped_ram_hdr_decode(const uint8_t in[MAPPED_RAM_HDR_SIZE],
			   struct mapped_ram_hdr *h)
{
	h->version = mfd_load_be32(in);
	h->page_size = mfd_load_be64(in + 4);
	h->bitmap_offset = mfd_load_be64(in + 12);
	h->pages_offset = mfd_load_be64(in + 20);
}

/* --- regions ------------------------------------------------------------ */

static uint64_t words_for(uint64_t npages)
{
	return npages / BITS_PER_WORD + (npages % BITS_PER_WORD != 0);
}

uint64_t mapped_ram_bitmap_size(uint64_t npages)
{
	return words_for(npages) * sizeof(unsigned long);
}

/* a + b into *sum unless it passes off_t's range. */
static bool add_off(uint64_t a, uint64_t b, uint64_t *sum)
{
	if (a > OFF_MAX || b > OFF_MAX - a)
		return false;
	*sum = a + b;
	return true;
}

int mapped_ram_layout(const char *name, uint64_t hdr_pos, uint64_t length,
		      struct mapped_ram_block *blk, struct mapped_ram_hdr *hdr,
		      struct mig_error **errp)
{
	uint64_t npages = length / MAPPED_RAM_PAGE_SIZE, bm_end, pages;

	memset(blk, 0, sizeof(*blk));
	blk->name = name;
	blk->length = length;
	blk->npages = npages;
	blk->bitmap_size = mapped_ram_bitmap_size(npages);
	if (!add_off(hdr_pos, MAPPED_RAM_HDR_SIZE, &blk->bitmap_offset) ||
	    !add_off(blk->bitmap_offset, blk->bitmap_size, &bm_end) ||
	    !add_off(bm_end, MAPPED_RAM_FILE_ALIGN - 1, &pages) ||
	    !add_off(pages & ~(MAPPED_RAM_FILE_ALIGN - 1), length, &blk->end)) {
		mig_error_setg(errp,
			       "Ramblock %s: mapped-ram file offsets overflow "
			       "(header at 0x%" PRIx64 ", 0x%" PRIx64
			       " bytes of RAM)",
			       name, hdr_pos, length);
		return -EOVERFLOW;
	}
	blk->pages_offset = pages & ~(MAPPED_RAM_FILE_ALIGN - 1);
	hdr->version = MAPPED_RAM_HDR_VERSION;
	hdr->page_size = MAPPED_RAM_PAGE_SIZE;
	hdr->bitmap_offset = blk->bitmap_offset;
	hdr->pages_offset = blk->pages_offset;
	return 0;
}

/* The checks QEMU makes, with its messages, in its order. */
static int check_qemu_rules(const struct mapped_ram_hdr *h, const char *name,
			    struct mig_error **errp)
{
	if (h->version > MAPPED_RAM_HDR_VERSION) {
		mig_error_setg(errp,
			       "Migration mapped-ram capability version not "
			       "supported (expected <= %d, got %d)",
			       MAPPED_RAM_HDR_VERSION, (int)h->version);
		return -EINVAL;
	}
	if (h->pages_offset % MAPPED_RAM_PAGE_SIZE) {
		mig_error_setg(errp,
			       "Error reading ramblock %s pages, region has "
			       "bad alignment",
			       name);
		return -EINVAL;
	}
	return 0;
}

/* QEMU would divide by a page size of 0 and mis-size everything for any
 * other value than its target page size. */
static int check_page_size(const struct mapped_ram_hdr *h, const char *name,
			   struct mig_error **errp)
{
	if (h->page_size == MAPPED_RAM_PAGE_SIZE)
		return 0;
	mig_error_setg(errp,
		       "Ramblock %s: mapped-ram page size 0x%" PRIx64
		       " is not supported (expected 0x%llx)",
		       name, h->page_size, MAPPED_RAM_PAGE_SIZE);
	return -EINVAL;
}

/* Header, bitmap, pages, in that order and all forward of the header: a
 * pages region ending before the header would rewind the main stream to
 * data it already parsed (a loop a crafted file could make endless). */
static int check_order(const struct mapped_ram_block *b, uint64_t hdr_end,
		       uint64_t bm_end, struct mig_error **errp)
{
	if (b->bitmap_offset >= hdr_end && bm_end <= b->pages_offset)
		return 0;
	mig_error_setg(errp,
		       "Ramblock %s: mapped-ram regions out of order (header "
		       "ends at 0x%" PRIx64 ", bitmap at 0x%" PRIx64
		       ", pages at 0x%" PRIx64 ")",
		       b->name, hdr_end, b->bitmap_offset, b->pages_offset);
	return -EINVAL;
}

static int check_in_file(const struct mapped_ram_block *b, uint64_t bm_end,
			 uint64_t file_size, struct mig_error **errp)
{
	if (bm_end > file_size) {
		mig_error_setg(
			errp,
			"Error reading dirty bitmap of ramblock %s: "
			"0x%" PRIx64 " bytes at offset 0x%" PRIx64
			" pass the end of the file (0x%" PRIx64 " bytes)",
			b->name, b->bitmap_size, b->bitmap_offset, file_size);
		return -EINVAL;
	}
	if (b->end > file_size) {
		mig_error_setg(errp,
			       "Error reading ramblock %s pages: 0x%" PRIx64
			       " bytes at offset 0x%" PRIx64
			       " pass the end of the file (0x%" PRIx64
			       " bytes)",
			       b->name, b->length, b->pages_offset, file_size);
		return -EINVAL;
	}
	return 0;
}

int mapped_ram_check(const struct mapped_ram_hdr *h, const char *name,
		     uint64_t length, uint64_t hdr_end, uint64_t file_size,
		     struct mapped_ram_block *blk, struct mig_error **errp)
{
	uint64_t bm_end;
	int ret = check_qemu_rules(h, name, errp);

	if (!ret)
		ret = check_page_size(h, name, errp);
	if (ret)
		return ret;
	memset(blk, 0, sizeof(*blk));
	blk->name = name;
	blk->length = length;
	blk->npages = length / MAPPED_RAM_PAGE_SIZE;
	blk->bitmap_size = mapped_ram_bitmap_size(blk->npages);
	blk->bitmap_offset = h->bitmap_offset;
	blk->pages_offset = h->pages_offset;
	if (!add_off(blk->bitmap_offset, blk->bitmap_size, &bm_end) ||
	    !add_off(blk->pages_offset, length, &blk->end)) {
		mig_error_setg(errp,
			       "Ramblock %s: mapped-ram file offsets overflow "
			       "(bitmap at 0x%" PRIx64 ", pages at 0x%" PRIx64
			       ", 0x%" PRIx64 " bytes)",
			       name, h->bitmap_offset, h->pages_offset, length);
		return -EINVAL;
	}
	ret = check_order(blk, hdr_end, bm_end, errp);
	return ret ? ret : check_in_file(blk, bm_end, file_size, errp);
}

/* --- bitmap --------------------------------------------------------------- */

int mapped_ram_bitmap_init(struct mapped_ram_bitmap *bm, uint64_t npages)
{
	uint64_t nwords = words_for(npages);

	memset(bm, 0, sizeof(*bm));
	if (nwords > SIZE_MAX / sizeof(unsigned long))
		return -EOVERFLOW;
	/* one word at least: calloc(0) may return NULL */
	bm->words = calloc(nwords ? nwords : 1, sizeof(unsigned long));
	if (!bm->words)
		return -ENOMEM;
	bm->npages = npages;
	bm->nwords = (size_t)nwords;
	return 0;
}

void mapped_ram_bitmap_destroy(struct mapped_ram_bitmap *bm)
{
	free(bm->words);
	memset(bm, 0, sizeof(*bm));
}

static unsigned long bit_of(uint64_t page)
{
	return 1ul << (page % BITS_PER_WORD);
}

void mapped_ram_bitmap_set(struct mapped_ram_bitmap *bm, uint64_t page)
{
	if (page < bm->npages)
		__atomic_fetch_or(&bm->words[page / BITS_PER_WORD],
				  bit_of(page), __ATOMIC_RELAXED);
}

void mapped_ram_bitmap_clear(struct mapped_ram_bitmap *bm, uint64_t page)
{
	if (page < bm->npages)
		__atomic_fetch_and(&bm->words[page / BITS_PER_WORD],
				   ~bit_of(page), __ATOMIC_RELAXED);
}

bool mapped_ram_bitmap_test(const struct mapped_ram_bitmap *bm, uint64_t page)
{
	if (page >= bm->npages)
		return false;
	return __atomic_load_n(&bm->words[page / BITS_PER_WORD],
			       __ATOMIC_RELAXED) &
	       bit_of(page);
}

uint64_t mapped_ram_bitmap_count(const struct mapped_ram_bitmap *bm)
{
	uint64_t n = 0;

	for (size_t i = 0; i < bm->nwords; i++)
		n += (uint64_t)__builtin_popcountl(
			__atomic_load_n(&bm->words[i], __ATOMIC_RELAXED));
	return n;
}

int mapped_ram_bitmap_write(struct channel *ch,
			    const struct mapped_ram_block *blk,
			    const struct mapped_ram_bitmap *bm,
			    struct mig_error **errp)
{
	struct iovec iov = {.iov_base = bm->words,
			    .iov_len = bm->nwords * sizeof(unsigned long)};
	int ret;

	if (iov.iov_len != blk->bitmap_size) {
		mig_error_setg(errp,
			       "Ramblock %s: bitmap of %" PRIu64
			       " pages does not match the block",
			       blk->name, bm->npages);
		return -EINVAL;
	}
	ret = filechan_pwritev_all(ch, &iov, 1, blk->bitmap_offset);
	if (ret)
		filechan_set_io_error(errp, ret, true);
	return ret;
}

/* A crafted file may set bits past the block's last page. */
static void drop_tail_bits(struct mapped_ram_bitmap *bm)
{
	uint64_t used = bm->npages % BITS_PER_WORD;

	if (used)
		bm->words[bm->nwords - 1] &= (1ul << used) - 1;
}

int mapped_ram_bitmap_read(struct channel *ch,
			   const struct mapped_ram_block *blk,
			   struct mapped_ram_bitmap *bm,
			   struct mig_error **errp)
{
	struct mig_error *cause = NULL;
	struct iovec iov;
	int ret = mapped_ram_bitmap_init(bm, blk->npages);

	if (ret) {
		mig_error_setg(errp, "Error reading dirty bitmap: %s",
			       strerror(-ret));
		return ret;
	}
	iov.iov_base = bm->words;
	iov.iov_len = blk->bitmap_size;
	ret = filechan_preadv_all(ch, &iov, 1, blk->bitmap_offset);
	if (ret) {
		filechan_set_io_error(&cause, ret, false);
		mig_error_setg(errp, "Error reading dirty bitmap: %s",
			       cause ? cause->desc : strerror(-ret));
		mig_error_free(cause);
		mapped_ram_bitmap_destroy(bm);
		return ret;
	}
	drop_tail_bits(bm);
	return 0;
}

/* --- writing pages ---------------------------------------------------- */

/* What gaps are written from: read-only, so shared by every worker. */
static const uint8_t zero_page[MAPPED_RAM_PAGE_SIZE]
	__attribute__((aligned(MAPPED_RAM_PAGE_SIZE)));

static int check_page(const struct mapped_ram_block *blk, uint64_t offset,
		      struct mig_error **errp)
{
	if (offset % MAPPED_RAM_PAGE_SIZE == 0 && offset < blk->length &&
	    blk->length - offset >= MAPPED_RAM_PAGE_SIZE)
		return 0;
	mig_error_setg(errp,
		       "offset 0x%" PRIx64 " outside of ramblock %s range",
		       offset, blk->name);
	return -EINVAL;
}

/* Zero entries from pages[i] on whose offsets continue from next. */
static size_t zero_stretch(const struct mapped_ram_page *pages, size_t n,
			   size_t i, uint64_t next)
{
	size_t k = 0;

	while (i + k < n && !pages[i + k].data &&
	       pages[i + k].offset == next + k * MAPPED_RAM_PAGE_SIZE)
		k++;
	return k;
}

/* Whether the k zero entries at pages[i] join the run to a data entry
 * right after them, with room for their iovecs and that entry's. */
static bool gap_joins(const struct mapped_ram_page *pages, size_t n, size_t i,
		      size_t k, uint64_t next, int cnt, unsigned max_gap)
{
	return k && k <= max_gap && i + k < n &&
	       pages[i + k].offset == next + k * MAPPED_RAM_PAGE_SIZE &&
	       (size_t)cnt + k < IOV_MAX;
}

/* Appends one page's buffer to iov[0..*cnt), merged into the last iovec
 * when adjacent. False when a new iovec is needed and none is left. */
static bool iov_append(struct iovec *iov, int *cnt, const void *data)
{
	struct iovec *last = *cnt ? &iov[*cnt - 1] : NULL;

	if (last && (const uint8_t *)last->iov_base + last->iov_len == data) {
		last->iov_len += MAPPED_RAM_PAGE_SIZE;
		return true;
	}
	if (*cnt == IOV_MAX)
		return false;
	iov[*cnt].iov_base = (void *)data;
	iov[(*cnt)++].iov_len = MAPPED_RAM_PAGE_SIZE;
	return true;
}

/* Gathers the run starting at the data entry pages[*i] into iov, with
 * the gaps it may fill; advances *i. Returns the iovec count. */
static int gather_run(const struct mapped_ram_page *pages, size_t n, size_t *i,
		      struct iovec *iov, unsigned max_gap)
{
	uint64_t next = pages[*i].offset;
	int cnt = 0;

	while (*i < n && pages[*i].offset == next) {
		if (!pages[*i].data) {
			size_t k = zero_stretch(pages, n, *i, next);

			if (!gap_joins(pages, n, *i, k, next, cnt, max_gap))
				break;
			for (size_t j = 0; j < k; j++)
				iov_append(iov, &cnt, zero_page);
			*i += k;
			next += k * MAPPED_RAM_PAGE_SIZE;
			continue;
		}
		if (!iov_append(iov, &cnt, pages[*i].data))
			break;
		(*i)++;
		next += MAPPED_RAM_PAGE_SIZE;
	}
	return cnt;
}

int mapped_ram_write_pages(struct channel *ch,
			   const struct mapped_ram_block *blk,
			   const struct mapped_ram_page *pages, size_t n,
			   unsigned max_gap, struct mig_error **errp)
{
	struct iovec iov[IOV_MAX]; /* 16 KiB: worker threads have 8 MiB */
	size_t i = 0;

	for (size_t j = 0; j < n; j++)
		if (check_page(blk, pages[j].offset, errp))
			return -EINVAL;
	while (i < n) {
		uint64_t start = pages[i].offset;
		int cnt, ret;

		if (!pages[i].data) {
			i++; /* zero pages start nothing */
			continue;
		}
		cnt = gather_run(pages, n, &i, iov, max_gap);
		ret = filechan_pwritev_all(ch, iov, cnt,
					   blk->pages_offset + start);
		if (ret) {
			filechan_set_io_error(errp, ret, true);
			return ret;
		}
	}
	return 0;
}

/* --- restoring ------------------------------------------------------------ */

/* The first page >= from whose bit equals set, or npages. */
static uint64_t find_bit(const struct mapped_ram_bitmap *bm, uint64_t from,
			 bool set)
{
	while (from < bm->npages) {
		uint64_t base = from - from % BITS_PER_WORD;
		unsigned long w = bm->words[from / BITS_PER_WORD];

		if (!set)
			w = ~w;
		w &= ~0ul << (from % BITS_PER_WORD);
		if (w) {
			from = base + (uint64_t)__builtin_ctzl(w);
			return from < bm->npages ? from : bm->npages;
		}
		from = base + BITS_PER_WORD;
	}
	return bm->npages;
}

void mapped_ram_plan_init(struct mapped_ram_plan *p,
			  const struct mapped_ram_block *blk,
			  const struct mapped_ram_bitmap *bm, unsigned max_gap)
{
	p->blk = blk;
	p->bm = bm;
	p->page = 0;
	p->run_end = 0;
	p->max_gap = max_gap;
}

/* Extends the chunk [start, p->run_end) over the runs that follow within
 * max_gap clear bits, as long as the next run starts inside the chunk's
 * size limit (lim, a page number). */
static void plan_join(struct mapped_ram_plan *p, uint64_t lim)
{
	while (p->max_gap && p->run_end < lim) {
		uint64_t next = find_bit(p->bm, p->run_end, true);

		if (next >= lim || next >= p->bm->npages ||
		    next - p->run_end > p->max_gap)
			return;
		p->run_end = find_bit(p->bm, next + 1, false);
	}
}

bool mapped_ram_plan_next(struct mapped_ram_plan *p, struct mapped_ram_chunk *c)
{
	const uint64_t max = MAPPED_RAM_LOAD_CHUNK / MAPPED_RAM_PAGE_SIZE;
	uint64_t lim, end;

	if (p->bm->npages != p->blk->npages)
		return false;
	if (p->page >= p->run_end) {
		p->page = find_bit(p->bm, p->page, true);
		if (p->page >= p->bm->npages)
			return false;
		p->run_end = find_bit(p->bm, p->page + 1, false);
	}
	lim = p->page + max;
	plan_join(p, lim);
	/* cut at lim: [end, run_end) are all set, the next chunk's start */
	end = p->run_end < lim ? p->run_end : lim;
	c->block_offset = p->page * MAPPED_RAM_PAGE_SIZE;
	c->file_offset = p->blk->pages_offset + c->block_offset;
	c->len = (end - p->page) * MAPPED_RAM_PAGE_SIZE;
	p->page = end;
	return true;
}

static int check_chunk(const struct mapped_ram_block *blk,
		       const struct mapped_ram_bitmap *bm,
		       const struct mapped_ram_chunk *c,
		       struct mig_error **errp)
{
	if (c->block_offset > blk->length ||
	    c->len > blk->length - c->block_offset ||
	    bm->npages != blk->npages) {
		mig_error_setg(errp, "page outside of ramblock %s range",
			       blk->name);
		return -EINVAL;
	}
	if (c->len > MAPPED_RAM_LOAD_CHUNK ||
	    (c->block_offset | c->len) % MAPPED_RAM_PAGE_SIZE) {
		mig_error_setg(errp,
			       "Ramblock %s: bad chunk of 0x%" PRIx64
			       " bytes at 0x%" PRIx64,
			       blk->name, c->len, c->block_offset);
		return -EINVAL;
	}
	return 0;
}

/* The iovecs of chunk c: present pages into host, absent ones into
 * scratch. Returns the count, or -EINVAL for an absent page and no
 * scratch. At most one iovec per page: <= MAPPED_RAM_LOAD_CHUNK pages. */
static int chunk_iov(const struct mapped_ram_bitmap *bm, uint8_t *host,
		     const struct mapped_ram_chunk *c, uint8_t *scratch,
		     struct iovec *iov)
{
	uint64_t page = c->block_offset / MAPPED_RAM_PAGE_SIZE;
	uint64_t end = page + c->len / MAPPED_RAM_PAGE_SIZE, gap = 0;
	int cnt = 0;

	for (; page < end; page++) {
		uint8_t *to = host + page * MAPPED_RAM_PAGE_SIZE;

		if (!mapped_ram_bitmap_test(bm, page)) {
			if (!scratch)
				return -EINVAL;
			to = scratch + gap++ % MAPPED_RAM_GAP_PAGES *
					       MAPPED_RAM_PAGE_SIZE;
		} else {
			gap = 0;
		}
		iov_append(iov, &cnt, to);
	}
	return cnt;
}

int mapped_ram_read_chunk(struct channel *ch,
			  const struct mapped_ram_block *blk,
			  const struct mapped_ram_bitmap *bm, uint8_t *host,
			  const struct mapped_ram_chunk *c, uint8_t *scratch,
			  struct mig_error **errp)
{
	struct iovec iov[MAPPED_RAM_LOAD_CHUNK / MAPPED_RAM_PAGE_SIZE];
	struct mig_error *cause = NULL;
	int cnt, ret = check_chunk(blk, bm, c, errp);

	if (ret)
		return ret;
	cnt = chunk_iov(bm, host, c, scratch, iov);
	if (cnt < 0) {
		mig_error_setg(errp, "Ramblock %s: no scratch buffer for a gap",
			       blk->name);
		return cnt;
	}
	ret = filechan_preadv_all(ch, iov, cnt, c->file_offset);
	if (!ret)
		return 0;
	filechan_set_io_error(&cause, ret, false);
	/* QEMU's text, including the space it misses before "from". */
	mig_error_setg(errp,
		       "(%s) failed to read page %" PRIx64
		       "from file offset %" PRIx64 ": %s",
		       blk->name, c->block_offset, c->file_offset,
		       cause ? cause->desc : strerror(-ret));
	mig_error_free(cause);
	return ret;
}
