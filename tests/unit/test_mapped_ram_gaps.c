/* test_mapped_ram_gaps.c — gap filling in file/mapped_ram.c: a batch's
 * own zero pages between two runs are written as zeros in the same
 * pwritev (and nothing else is: a page the batch does not own keeps its
 * bytes), restore chunks span short gaps whose pages are read into a
 * scratch buffer, never into RAM (poisoned file slots), iovec limits,
 * page alignment of every buffer, offset and length, and a real O_DIRECT
 * round trip when the test directory's filesystem allows it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "file/filechan.h"
#include "file/mapped_ram.h"
#include "socket/channel.h"

#define PS 4096u
#define MiB (1024ull * 1024)
#define NPAGES 2048u /* the block: pages at 1 MiB in a 16 MiB image */
#define G MAPPED_RAM_GAP_PAGES
#define POISON 0xa5
#define UNTOUCHED 0xee

/* --- a memory "file" that records every positioned call ----------------- */

struct call {
	off_t offset;
	int iovcnt;
	size_t len;
	bool aligned; /* every base, length and the offset page multiples */
};

struct mem {
	struct channel ch;
	struct call calls[64];
	int ncalls;
	uint8_t *image;
	size_t image_len;
};

static bool is_aligned(uintptr_t v)
{
	return v % PS == 0;
}

static ssize_t mem_xfer(struct channel *ch, const struct iovec *iov, int iovcnt,
			off_t offset, bool write)
{
	struct mem *m = (struct mem *)ch;
	struct call c = {offset, iovcnt, 0, is_aligned((uintptr_t)offset)};

	assert_true(m->ncalls < 64);
	assert_true(iovcnt > 0 && iovcnt <= IOV_MAX);
	for (int i = 0; i < iovcnt; i++) {
		uint8_t *at = m->image + offset + c.len;

		assert_true(offset + c.len + iov[i].iov_len <= m->image_len);
		if (write)
			memcpy(at, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, at, iov[i].iov_len);
		c.aligned &= is_aligned((uintptr_t)iov[i].iov_base) &&
			     is_aligned(iov[i].iov_len);
		c.len += iov[i].iov_len;
	}
	m->calls[m->ncalls++] = c;
	return (ssize_t)c.len;
}

static ssize_t mem_pwritev(struct channel *ch, const struct iovec *iov,
			   int iovcnt, off_t offset)
{
	return mem_xfer(ch, iov, iovcnt, offset, true);
}

static ssize_t mem_preadv(struct channel *ch, const struct iovec *iov,
			  int iovcnt, off_t offset)
{
	return mem_xfer(ch, iov, iovcnt, offset, false);
}

static const struct channel_ops mem_ops = {
	.name = "mem",
	.pwritev = mem_pwritev,
	.preadv = mem_preadv,
};

static void mem_init(struct mem *m)
{
	memset(m, 0, sizeof(*m));
	m->ch.ops = &mem_ops;
	m->ch.fd = -1;
	m->image_len = 16 * MiB;
	m->image = malloc(m->image_len);
	assert_non_null(m->image);
	memset(m->image, POISON, m->image_len); /* stale bytes everywhere */
}

static void block(struct mapped_ram_block *blk)
{
	struct mapped_ram_hdr hdr;

	assert_int_equal(
		mapped_ram_layout("ram", 100, NPAGES * PS, blk, &hdr, NULL), 0);
	assert_int_equal(blk->pages_offset, MiB);
}

/* Page-aligned RAM, page i filled with i % 200 + 1. */
static uint8_t *ram_new(void)
{
	uint8_t *ram = aligned_alloc(PS, NPAGES * PS);

	assert_non_null(ram);
	for (unsigned i = 0; i < NPAGES; i++)
		memset(ram + (size_t)i * PS, i % 200 + 1, PS);
	return ram;
}

static bool slot_is(const struct mem *m, const struct mapped_ram_block *blk,
		    unsigned page, uint8_t v)
{
	const uint8_t *p = m->image + blk->pages_offset + (size_t)page * PS;

	for (unsigned i = 0; i < PS; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Entry i of a batch: page pg, data from ram or NULL (zero). */
static struct mapped_ram_page entry(uint8_t *ram, unsigned pg, bool zero)
{
	return (struct mapped_ram_page){(uint64_t)pg * PS,
					zero ? NULL : ram + (size_t)pg * PS};
}

/* --- writing ----------------------------------------------------------- */

/* Pages 10..13 in the batch, 11 and 12 zero: one call of 4 pages, the
 * gap written as zeros over stale bytes. */
static void test_gap_owned_filled(void **state)
{
	uint8_t *ram = ram_new();
	struct mapped_ram_block blk;
	struct mapped_ram_page pages[] = {
		entry(ram, 10, false), entry(ram, 11, true),
		entry(ram, 12, true), entry(ram, 13, false)};
	struct mem m;

	block(&blk);
	mem_init(&m);
	assert_int_equal(mapped_ram_write_pages(&m.ch, &blk, pages, 4, G, NULL),
			 0);
	assert_int_equal(m.ncalls, 1);
	assert_int_equal(m.calls[0].offset, MiB + 10 * PS);
	assert_int_equal(m.calls[0].len, 4 * PS);
	assert_int_equal(m.calls[0].iovcnt, 4); /* data, zero, zero, data */
	assert_true(m.calls[0].aligned);
	assert_true(slot_is(&m, &blk, 10, 11));
	assert_true(slot_is(&m, &blk, 11, 0));
	assert_true(slot_is(&m, &blk, 12, 0));
	assert_true(slot_is(&m, &blk, 13, 14));
	assert_true(slot_is(&m, &blk, 9, POISON));
	assert_true(slot_is(&m, &blk, 14, POISON));
	/* without max_gap: two calls, the zero slots untouched */
	free(m.image);
	mem_init(&m);
	assert_int_equal(mapped_ram_write_pages(&m.ch, &blk, pages, 4, 0, NULL),
			 0);
	assert_int_equal(m.ncalls, 2);
	assert_true(slot_is(&m, &blk, 11, POISON));
	assert_true(slot_is(&m, &blk, 12, POISON));
	free(m.image);
	free(ram);
}

/* A page inside the gap that is not in the batch (page 21: another
 * channel may be writing it) is never written, even with a big max_gap;
 * neither are leading and trailing zero pages of a run. */
static void test_gap_not_owned_untouched(void **state)
{
	uint8_t *ram = ram_new();
	struct mapped_ram_block blk;
	struct mapped_ram_page pages[] = {
		entry(ram, 19, true),  entry(ram, 20, false),
		entry(ram, 22, true),  entry(ram, 23, false),
		entry(ram, 24, true),  entry(ram, 25, true),
		entry(ram, 30, false), entry(ram, 31, true),
		entry(ram, 40, false),
	};
	struct mem m;

	block(&blk);
	mem_init(&m);
	assert_int_equal(
		mapped_ram_write_pages(&m.ch, &blk, pages, 9, 1000, NULL), 0);
	assert_int_equal(m.ncalls, 4);
	assert_int_equal(m.calls[0].offset, MiB + 20 * PS);
	assert_int_equal(m.calls[0].len, PS);
	assert_int_equal(m.calls[1].offset, MiB + 23 * PS);
	assert_int_equal(m.calls[1].len, PS);
	assert_true(slot_is(&m, &blk, 19, POISON));
	assert_true(slot_is(&m, &blk, 21, POISON)); /* not the batch's */
	assert_true(slot_is(&m, &blk, 22, POISON)); /* starts no call */
	assert_true(slot_is(&m, &blk, 24, POISON)); /* ends no call */
	assert_true(slot_is(&m, &blk, 25, POISON));
	assert_int_equal(m.calls[2].len, PS); /* 31: 40 does not follow */
	assert_true(slot_is(&m, &blk, 31, POISON));
	free(m.image);
	free(ram);
}

/* A gap of exactly max_gap pages is filled, one more is not; entries out
 * of order (30, then 29) never join. */
static void test_gap_limit(void **state)
{
	uint8_t *ram = ram_new();
	struct mapped_ram_page pages[2 * G + 4];
	struct mapped_ram_block blk;
	unsigned n = 0;
	struct mem m;

	block(&blk);
	pages[n++] = entry(ram, 100, false);
	for (unsigned i = 1; i <= G; i++)
		pages[n++] = entry(ram, 100 + i, true);
	pages[n++] = entry(ram, 101 + G, false);
	for (unsigned i = 2; i <= G + 2; i++) /* G + 1 zero pages */
		pages[n++] = entry(ram, 100 + G + i, true);
	pages[n++] = entry(ram, 103 + 2 * G, false);
	mem_init(&m);
	assert_int_equal(mapped_ram_write_pages(&m.ch, &blk, pages, n, G, NULL),
			 0);
	assert_int_equal(m.ncalls, 2);
	assert_int_equal(m.calls[0].len, (G + 2) * PS);
	assert_int_equal(m.calls[1].offset, MiB + (103 + 2 * G) * PS);
	assert_true(slot_is(&m, &blk, 100 + G, 0));
	assert_true(slot_is(&m, &blk, 102 + G, POISON));
	free(m.image);
	free(ram);
}

/* Alternating data and zero pages from scattered copies: every call stays
 * within IOV_MAX iovecs and ends on a data page, all pages land, no call
 * is unaligned. */
static void test_gap_iov_max(void **state)
{
	const unsigned n = 2000; /* > IOV_MAX iovecs in one run */
	uint8_t *copies = aligned_alloc(PS, (size_t)n * PS);
	struct mapped_ram_page *pages = calloc(n, sizeof(*pages));
	struct mapped_ram_block blk;
	struct mem m;

	assert_non_null(copies);
	block(&blk);
	for (unsigned i = 0; i < n; i++) {
		pages[i].offset = (uint64_t)i * PS;
		/* never adjacent: each data page is its own iovec */
		pages[i].data =
			i % 2 ? NULL : copies + (size_t)(n - 1 - i) * PS;
		memset(copies + (size_t)(n - 1 - i) * PS, i % 200 + 1, PS);
	}
	pages[n - 1].data = copies; /* the last one: data */
	memset(copies, 77, PS);
	mem_init(&m);
	assert_int_equal(mapped_ram_write_pages(&m.ch, &blk, pages, n, G, NULL),
			 0);
	assert_int_equal(m.ncalls, 2);
	for (int c = 0; c < m.ncalls; c++) {
		uint64_t last = (m.calls[c].offset - MiB + m.calls[c].len) / PS;

		assert_true(m.calls[c].iovcnt <= IOV_MAX);
		assert_true(m.calls[c].aligned);
		assert_non_null(pages[last - 1].data); /* ends on data */
	}
	/* page, (zero, page) x 511: the next pair would not fit */
	assert_int_equal(m.calls[0].iovcnt, IOV_MAX - 1);
	assert_int_equal(m.calls[1].offset, MiB + 1024 * PS);
	assert_true(slot_is(&m, &blk, 1023, POISON)); /* between the calls */
	for (unsigned i = 0; i < n - 1; i++)
		if (i != 1023)
			assert_true(
				slot_is(&m, &blk, i, i % 2 ? 0 : i % 200 + 1));
	assert_true(slot_is(&m, &blk, n - 1, 77));
	free(m.image);
	free(pages);
	free(copies);
}

/* A bad entry anywhere (even a zero one) fails before anything is
 * written. */
static void test_gap_bad_entry(void **state)
{
	uint8_t *ram = ram_new();
	struct mapped_ram_block blk;
	struct mapped_ram_page pages[] = {entry(ram, 1, false),
					  entry(ram, 2, true),
					  entry(ram, 3, false),
					  {NPAGES * PS, NULL}};
	struct mig_error *err = NULL;
	struct mem m;

	block(&blk);
	mem_init(&m);
	assert_int_equal(mapped_ram_write_pages(&m.ch, &blk, pages, 4, G, &err),
			 -EINVAL);
	assert_string_equal(err->desc,
			    "offset 0x800000 outside of ramblock ram range");
	mig_error_free(err);
	assert_int_equal(m.ncalls, 0);
	free(m.image);
	free(ram);
}

/* --- restoring --------------------------------------------------------- */

static void set_pages(struct mapped_ram_bitmap *bm, unsigned from, unsigned to)
{
	for (unsigned p = from; p < to; p++)
		mapped_ram_bitmap_set(bm, p);
}

static void expect_chunk(struct mapped_ram_plan *p, unsigned page,
			 unsigned npages)
{
	struct mapped_ram_chunk c;

	assert_true(mapped_ram_plan_next(p, &c));
	assert_int_equal(c.block_offset, (uint64_t)page * PS);
	assert_int_equal(c.file_offset, MiB + (uint64_t)page * PS);
	assert_int_equal(c.len, (uint64_t)npages * PS);
}

/* Runs 10..12, 14..15 (gap 1), 15+G+1.. (gap G) join; a gap of G + 1
 * splits; the 1 MiB limit cuts; a chunk never starts or ends on a clear
 * bit; the last page of the block ends the walk. */
static void test_plan_gaps(void **state)
{
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	unsigned a = 16 + G, b = a + 2 + G + 1;

	block(&blk);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	set_pages(&bm, 10, 13);
	set_pages(&bm, 14, 16);
	set_pages(&bm, a, a + 2); /* after a gap of G */
	set_pages(&bm, b, b + 1); /* after a gap of G + 1 */
	set_pages(&bm, 1000, 1200);
	set_pages(&bm, 1202, 1400); /* 400 pages with a gap: cut at 256 */
	set_pages(&bm, NPAGES - 1, NPAGES);
	mapped_ram_plan_init(&p, &blk, &bm, G);
	expect_chunk(&p, 10, a + 2 - 10);
	expect_chunk(&p, b, 1);
	expect_chunk(&p, 1000, 256);
	expect_chunk(&p, 1256, 1400 - 1256);
	expect_chunk(&p, NPAGES - 1, 1);
	assert_false(mapped_ram_plan_next(&p, &c));
	/* the next run past the 1 MiB limit is not joined */
	mapped_ram_bitmap_destroy(&bm);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	set_pages(&bm, 0, 255);
	set_pages(&bm, 257, 260);
	mapped_ram_plan_init(&p, &blk, &bm, G);
	expect_chunk(&p, 0, 255);
	expect_chunk(&p, 257, 3);
	assert_false(mapped_ram_plan_next(&p, &c));
	mapped_ram_bitmap_destroy(&bm);
}

/* Every page's bit in a 1-in-3 pattern of clear pages: the chunks cover
 * every set page once and no chunk's ends are clear. */
static void test_plan_gaps_cover(void **state)
{
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	uint64_t seen = 0, next = 0;

	block(&blk);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	srand(3);
	for (unsigned i = 0; i < NPAGES; i++)
		if (rand() % 3)
			mapped_ram_bitmap_set(&bm, i);
	mapped_ram_plan_init(&p, &blk, &bm, G);
	while (mapped_ram_plan_next(&p, &c)) {
		uint64_t first = c.block_offset / PS, n = c.len / PS;

		assert_true(first >= next && n &&
			    c.len <= MAPPED_RAM_LOAD_CHUNK);
		assert_true(mapped_ram_bitmap_test(&bm, first));
		assert_true(mapped_ram_bitmap_test(&bm, first + n - 1));
		for (uint64_t i = next; i < first; i++)
			assert_false(mapped_ram_bitmap_test(&bm, i));
		for (uint64_t i = first; i < first + n; i++)
			seen += mapped_ram_bitmap_test(&bm, i);
		next = first + n;
	}
	assert_int_equal(seen, mapped_ram_bitmap_count(&bm));
	mapped_ram_bitmap_destroy(&bm);
}

/* The file holds poison in every slot whose bit is clear: a restore with
 * gaps reads the present pages into RAM in one preadv per chunk and never
 * writes a clear-bit page of RAM. */
static void test_read_gaps_never_reach_ram(void **state)
{
	uint8_t *src = ram_new(), *ram = aligned_alloc(PS, NPAGES * PS);
	uint8_t *scratch = aligned_alloc(PS, MAPPED_RAM_SCRATCH_SIZE);
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	struct mem m;
	int nchunks = 0;

	block(&blk);
	mem_init(&m);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	for (unsigned i = 0; i < 300; i++) {
		if (i % 4 == 1 || i % 4 == 2 || (i >= 100 && i < 100 + G + 1))
			continue; /* absent: slot keeps POISON */
		mapped_ram_bitmap_set(&bm, i);
		memcpy(m.image + MiB + (size_t)i * PS, src + (size_t)i * PS,
		       PS);
	}
	memset(ram, UNTOUCHED, NPAGES * PS);
	mapped_ram_plan_init(&p, &blk, &bm, G);
	while (mapped_ram_plan_next(&p, &c)) {
		assert_int_equal(mapped_ram_read_chunk(&m.ch, &blk, &bm, ram,
						       &c, scratch, NULL),
				 0);
		nchunks++;
	}
	/* 0..99, then 119..299 after a gap of G + 3 */
	assert_int_equal(m.ncalls, nchunks);
	assert_int_equal(nchunks, 2);
	for (int i = 0; i < m.ncalls; i++)
		assert_true(m.calls[i].aligned);
	for (unsigned i = 0; i < NPAGES; i++) {
		const uint8_t *pg = ram + (size_t)i * PS;

		if (mapped_ram_bitmap_test(&bm, i))
			assert_memory_equal(pg, src + (size_t)i * PS, PS);
		else
			for (unsigned j = 0; j < PS; j += 511)
				assert_int_equal(pg[j], UNTOUCHED);
	}
	mapped_ram_bitmap_destroy(&bm);
	free(m.image);
	free(scratch);
	free(ram);
	free(src);
}

/* A chunk holding a clear page needs a scratch buffer; gaps longer than
 * it wrap around it (a hand-made chunk, not the plan's); chunks over
 * 1 MiB or unaligned are refused. */
static void test_read_chunk_checks(void **state)
{
	uint8_t *ram = aligned_alloc(PS, NPAGES * PS);
	uint8_t *scratch = aligned_alloc(PS, MAPPED_RAM_SCRATCH_SIZE);
	struct mapped_ram_chunk c = {0, MiB, (3 * G + 2) * PS};
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mig_error *err = NULL;
	struct mem m;

	block(&blk);
	mem_init(&m);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	mapped_ram_bitmap_set(&bm, 0);
	mapped_ram_bitmap_set(&bm, 3 * G + 1);
	memset(ram, UNTOUCHED, NPAGES * PS);
	assert_int_equal(
		mapped_ram_read_chunk(&m.ch, &blk, &bm, ram, &c, NULL, &err),
		-EINVAL);
	assert_string_equal(err->desc, "Ramblock ram: no scratch buffer for "
				       "a gap");
	mig_error_free(err);
	err = NULL;
	assert_int_equal(m.ncalls, 0);
	assert_int_equal(
		mapped_ram_read_chunk(&m.ch, &blk, &bm, ram, &c, scratch, NULL),
		0);
	assert_int_equal(m.ncalls, 1);
	assert_int_equal(m.calls[0].iovcnt, 5); /* page, 3 x G, page */
	assert_int_equal(ram[PS], UNTOUCHED);
	assert_int_equal(ram[3 * G * PS], UNTOUCHED);
	assert_int_equal(ram[0], POISON); /* set bits: the file's bytes */
	c.len = MAPPED_RAM_LOAD_CHUNK + PS;
	assert_int_equal(
		mapped_ram_read_chunk(&m.ch, &blk, &bm, ram, &c, scratch, &err),
		-EINVAL);
	assert_string_equal(err->desc,
			    "Ramblock ram: bad chunk of 0x101000 bytes at 0x0");
	mig_error_free(err);
	err = NULL;
	c.len = PS;
	c.block_offset = 100;
	assert_int_equal(
		mapped_ram_read_chunk(&m.ch, &blk, &bm, ram, &c, scratch, &err),
		-EINVAL);
	mig_error_free(err);
	mapped_ram_bitmap_destroy(&bm);
	free(m.image);
	free(scratch);
	free(ram);
}

/* --- a real file with O_DIRECT ------------------------------------------ */

static char tmpdir[64];

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_mr_gaps.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Whether path's filesystem takes O_DIRECT (tmpfs does not). */
static bool direct_ok(const char *path)
{
	struct mig_error *err = NULL;
	struct channel *ch =
		filechan_open_extra(path, FILECHAN_SOURCE, true, &err);

	mig_error_free(err);
	if (ch)
		chan_close(ch);
	return ch != NULL;
}

/* Saves pages 0..NPAGES of src (every page with i % 3 == 1 zero) through
 * an O_DIRECT channel with gaps filled, poisoned slots elsewhere; then
 * restores through another O_DIRECT channel. */
static void test_direct_round_trip(void **state)
{
	uint8_t *src = ram_new(), *dst = aligned_alloc(PS, NPAGES * PS);
	uint8_t *scratch = aligned_alloc(PS, MAPPED_RAM_SCRATCH_SIZE);
	struct mapped_ram_page *pages = calloc(NPAGES, sizeof(*pages));
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	struct channel *ch;
	char path[128];
	unsigned k = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/direct", tmpdir);
	block(&blk);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0);
	memset(dst, POISON, NPAGES * PS); /* stale bytes in every slot */
	assert_int_equal(pwrite(fd, dst, NPAGES * PS, (off_t)MiB), NPAGES * PS);
	close(fd);
	if (!direct_ok(path)) {
		free(pages);
		free(scratch);
		free(dst);
		free(src);
		skip();
	}
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	for (unsigned i = 0; i < NPAGES; i++) {
		pages[i] = entry(src, i, i % 3 == 1);
		if (i % 3 != 1)
			mapped_ram_bitmap_set(&bm, i);
		else
			memset(src + (size_t)i * PS, 0, PS);
	}
	ch = filechan_open_extra(path, FILECHAN_SOURCE, true, NULL);
	assert_true(filechan_is_direct(ch));
	/* a batch without the zero pages 1, 7, 13...: not its own */
	for (unsigned i = 0; i < NPAGES; i++)
		if (i % 6 != 1)
			pages[k++] = pages[i];
	assert_int_equal(mapped_ram_write_pages(ch, &blk, pages, k, G, NULL),
			 0);
	chan_close(ch);
	ch = filechan_open_extra(path, FILECHAN_DEST, true, NULL);
	memset(dst, UNTOUCHED, NPAGES * PS);
	mapped_ram_plan_init(&p, &blk, &bm, G);
	while (mapped_ram_plan_next(&p, &c))
		assert_int_equal(mapped_ram_read_chunk(ch, &blk, &bm, dst, &c,
						       scratch, NULL),
				 0);
	chan_close(ch);
	for (unsigned i = 0; i < NPAGES; i++)
		assert_int_equal(dst[(size_t)i * PS + 7],
				 i % 3 == 1 ? UNTOUCHED : i % 200 + 1);
	/* the slots the batch did not own kept their stale bytes */
	fd = open(path, O_RDONLY);
	for (unsigned i = 1; i < NPAGES; i += 3) {
		uint8_t b;

		assert_int_equal(pread(fd, &b, 1, (off_t)(MiB + i * PS)), 1);
		assert_int_equal(b, i % 6 == 1 ? POISON : 0);
	}
	close(fd);
	mapped_ram_bitmap_destroy(&bm);
	free(pages);
	free(scratch);
	free(dst);
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gap_owned_filled),
		cmocka_unit_test(test_gap_not_owned_untouched),
		cmocka_unit_test(test_gap_limit),
		cmocka_unit_test(test_gap_iov_max),
		cmocka_unit_test(test_gap_bad_entry),
		cmocka_unit_test(test_plan_gaps),
		cmocka_unit_test(test_plan_gaps_cover),
		cmocka_unit_test(test_read_gaps_never_reach_ram),
		cmocka_unit_test(test_read_chunk_checks),
		cmocka_unit_test(test_direct_round_trip),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
