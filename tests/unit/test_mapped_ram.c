/* test_mapped_ram.c — the mapped-ram layout (file/mapped_ram.c): the
 * header bytes and regions against QEMU 10.0's observed file (reference
 * §3), bitmap words, pwritev run splitting (a recording channel), the
 * restore plan over sparse bitmaps, a save/restore round trip through a
 * real sparse file, and every hostile header or truncated file. */
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file/filechan.h"
#include "file/mapped_ram.h"
#include "socket/channel.h"

#define PS 4096u
#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)

static void expect_error(struct mig_error **err, const char *desc)
{
	assert_non_null(*err);
	assert_string_equal((*err)->desc, desc);
	mig_error_free(*err);
	*err = NULL;
}

/* --- header and regions -------------------------------------------------- */

/* QEMU 10.0, -m 1G, multifd + mapped-ram: header at file offset 101,
 * bitmap at 129 (32 KiB), pages at 1 MiB, stream resumes at 1 MiB + 1 GiB. */
static void test_layout_matches_qemu(void **state)
{
	static const uint8_t want[MAPPED_RAM_HDR_SIZE] = {
		0x00, 0x00, 0x00, 0x01,				/* version */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, /* page */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x81, /* bitmap */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, /* pages */
	};
	struct mapped_ram_block blk;
	struct mapped_ram_hdr hdr, back;
	uint8_t bytes[MAPPED_RAM_HDR_SIZE];

	assert_int_equal(mapped_ram_layout("ram", 101, GiB, &blk, &hdr, NULL),
			 0);
	assert_int_equal(blk.bitmap_offset, 129);
	assert_int_equal(blk.bitmap_size, 32768);
	assert_int_equal(blk.pages_offset, 1048576);
	assert_int_equal(blk.end, 1074790400ull);
	assert_int_equal(blk.npages, 262144);
	mapped_ram_hdr_encode(&hdr, bytes);
	assert_memory_equal(bytes, want, sizeof(want));
	mapped_ram_hdr_decode(bytes, &back);
	assert_int_equal(back.version, 1);
	assert_int_equal(back.page_size, 4096);
	assert_int_equal(back.bitmap_offset, 129);
	assert_int_equal(back.pages_offset, 1048576);
}

static void test_layout_alignment(void **state)
{
	struct mapped_ram_block blk;
	struct mapped_ram_hdr hdr;
	struct mig_error *err = NULL;

	/* bitmap ends exactly on 1 MiB: no extra MiB */
	assert_int_equal(
		mapped_ram_layout("a", MiB - 28 - 8, 64 * PS, &blk, &hdr, NULL),
		0);
	assert_int_equal(blk.bitmap_size, 8);
	assert_int_equal(blk.pages_offset, MiB);
	/* one byte past: the next MiB */
	assert_int_equal(
		mapped_ram_layout("a", MiB - 28 - 7, 64 * PS, &blk, &hdr, NULL),
		0);
	assert_int_equal(blk.pages_offset, 2 * MiB);
	/* 65 pages need two words; an empty block has no bitmap at all */
	assert_int_equal(mapped_ram_layout("a", 0, 65 * PS, &blk, &hdr, NULL),
			 0);
	assert_int_equal(blk.bitmap_size, 16);
	assert_int_equal(mapped_ram_layout("a", 0, 0, &blk, &hdr, NULL), 0);
	assert_int_equal(blk.bitmap_size, 0);
	assert_int_equal(blk.pages_offset, MiB);
	assert_int_equal(blk.end, MiB);
	/* off_t overflow anywhere in the arithmetic */
	assert_int_equal(
		mapped_ram_layout("big", INT64_MAX - 100, PS, &blk, &hdr, &err),
		-EOVERFLOW);
	expect_error(&err, "Ramblock big: mapped-ram file offsets overflow "
			   "(header at 0x7fffffffffffff9b, 0x1000 bytes of "
			   "RAM)");
	assert_int_equal(mapped_ram_layout("big", 0, UINT64_MAX & ~4095ull,
					   &blk, &hdr, &err),
			 -EOVERFLOW);
	mig_error_free(err);
}

/* --- bitmap
 * ------------------------------------------------------------------- */

static void test_bitmap_words(void **state)
{
	struct mapped_ram_bitmap bm;

	assert_int_equal(mapped_ram_bitmap_init(&bm, 131), 0);
	assert_int_equal(bm.nwords, 3);
	mapped_ram_bitmap_set(&bm, 0);
	mapped_ram_bitmap_set(&bm, 63);
	mapped_ram_bitmap_set(&bm, 64);
	mapped_ram_bitmap_set(&bm, 130);
	mapped_ram_bitmap_set(&bm, 5);
	mapped_ram_bitmap_clear(&bm, 5);
	mapped_ram_bitmap_set(&bm, 131); /* past the end: ignored */
	assert_int_equal(bm.words[0], 1ul | 1ul << 63);
	assert_int_equal(bm.words[1], 1ul);
	assert_int_equal(bm.words[2], 1ul << 2);
	assert_true(mapped_ram_bitmap_test(&bm, 63));
	assert_false(mapped_ram_bitmap_test(&bm, 5));
	assert_false(mapped_ram_bitmap_test(&bm, 131));
	assert_int_equal(mapped_ram_bitmap_count(&bm), 4);
	mapped_ram_bitmap_destroy(&bm);
	assert_null(bm.words);

	assert_int_equal(mapped_ram_bitmap_init(&bm, 0), 0);
	assert_int_equal(mapped_ram_bitmap_count(&bm), 0);
	mapped_ram_bitmap_destroy(&bm);
}

/* --- a recording channel: what pwritev calls a batch makes ---------------- */

struct call {
	off_t offset;
	int iovcnt;
	size_t len;
};

struct rec {
	struct channel ch;
	struct call calls[16];
	int ncalls;
	uint8_t *image; /* writes land here */
	size_t image_len;
};

static ssize_t rec_pwritev(struct channel *ch, const struct iovec *iov,
			   int iovcnt, off_t offset)
{
	struct rec *r = (struct rec *)ch;
	size_t len = 0;

	assert_true(r->ncalls < 16);
	assert_true(iovcnt <= IOV_MAX);
	for (int i = 0; i < iovcnt; i++) {
		assert_true(offset + len + iov[i].iov_len <= r->image_len);
		memcpy(r->image + offset + len, iov[i].iov_base,
		       iov[i].iov_len);
		len += iov[i].iov_len;
	}
	r->calls[r->ncalls++] = (struct call){offset, iovcnt, len};
	return (ssize_t)len;
}

static const struct channel_ops rec_ops = {
	.name = "rec",
	.pwritev = rec_pwritev,
};

static void rec_init(struct rec *r, size_t image_len)
{
	memset(r, 0, sizeof(*r));
	r->ch.ops = &rec_ops;
	r->ch.fd = -1;
	r->image = calloc(1, image_len);
	r->image_len = image_len;
	assert_non_null(r->image);
}

/* A 2048-page block whose pages start at 1 MiB in a 16 MiB image. */
static void small_block(struct mapped_ram_block *blk)
{
	struct mapped_ram_hdr hdr;

	assert_int_equal(
		mapped_ram_layout("ram", 100, 2048 * PS, blk, &hdr, NULL), 0);
	assert_int_equal(blk->pages_offset, MiB);
}

static void test_write_runs(void **state)
{
	uint8_t *ram = malloc(2048 * PS);
	struct mapped_ram_block blk;
	struct rec r;
	/* 0,1,2 adjacent in RAM; 5,6; then 3 alone */
	struct mapped_ram_page pages[] = {
		{0, ram},
		{PS, ram + PS},
		{2 * PS, ram + 2 * PS},
		{5 * PS, ram + 5 * PS},
		{6 * PS, ram + 6 * PS},
		{3 * PS, ram + 3 * PS},
	};

	for (size_t i = 0; i < 2048 * PS; i++)
		ram[i] = (uint8_t)(i / PS * 7 + i);
	small_block(&blk);
	rec_init(&r, 16 * MiB);
	assert_int_equal(mapped_ram_write_pages(&r.ch, &blk, pages, 6, 0, NULL),
			 0);
	assert_int_equal(r.ncalls, 3);
	assert_int_equal(r.calls[0].offset, MiB);
	assert_int_equal(r.calls[0].iovcnt, 1); /* adjacent buffers merged */
	assert_int_equal(r.calls[0].len, 3 * PS);
	assert_int_equal(r.calls[1].offset, MiB + 5 * PS);
	assert_int_equal(r.calls[1].len, 2 * PS);
	assert_int_equal(r.calls[2].offset, MiB + 3 * PS);
	assert_int_equal(r.calls[2].len, PS);
	assert_memory_equal(r.image + MiB, ram, 4 * PS);
	assert_memory_equal(r.image + MiB + 5 * PS, ram + 5 * PS, 2 * PS);
	assert_int_equal(r.image[MiB + 4 * PS], 0); /* page 4: never sent */
	free(r.image);
	free(ram);
}

/* Contiguous file offsets from scattered buffers (copies): one call per
 * IOV_MAX iovecs. */
static void test_write_iov_max(void **state)
{
	const size_t n = IOV_MAX + 76;
	uint8_t *copies = malloc(n * PS);
	struct mapped_ram_page *pages = calloc(n, sizeof(*pages));
	struct mapped_ram_block blk;
	struct rec r;

	small_block(&blk);
	for (size_t i = 0; i < n; i++) {
		/* page i's bytes sit at slot n-1-i: never adjacent in order */
		pages[i].offset = i * PS;
		pages[i].data = copies + (n - 1 - i) * PS;
		memset(copies + (n - 1 - i) * PS, (int)(i & 0xff), PS);
	}
	rec_init(&r, 16 * MiB);
	assert_int_equal(mapped_ram_write_pages(&r.ch, &blk, pages, n, 0, NULL),
			 0);
	assert_int_equal(r.ncalls, 2);
	assert_int_equal(r.calls[0].iovcnt, IOV_MAX);
	assert_int_equal(r.calls[0].offset, MiB);
	assert_int_equal(r.calls[1].iovcnt, 76);
	assert_int_equal(r.calls[1].offset, MiB + (uint64_t)IOV_MAX * PS);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r.image[MiB + i * PS + 17], i & 0xff);
	free(r.image);
	free(pages);
	free(copies);
}

static void test_write_rejects_bad_pages(void **state)
{
	static uint8_t page[PS];
	struct mapped_ram_block blk;
	struct mig_error *err = NULL;
	struct rec r;
	struct mapped_ram_page bad[] = {{100, page}};
	struct mapped_ram_page past[] = {{2047 * PS, page}, {2048 * PS, page}};

	small_block(&blk);
	rec_init(&r, 16 * MiB);
	assert_int_equal(mapped_ram_write_pages(&r.ch, &blk, bad, 1, 0, &err),
			 -EINVAL);
	expect_error(&err, "offset 0x64 outside of ramblock ram range");
	assert_int_equal(mapped_ram_write_pages(&r.ch, &blk, past, 2, 0, &err),
			 -EINVAL);
	expect_error(&err, "offset 0x800000 outside of ramblock ram range");
	assert_int_equal(r.ncalls, 0); /* nothing half-written */
	free(r.image);
}

/* --- restore plan --------------------------------------------------------- */

static void expect_chunk(struct mapped_ram_plan *p, uint64_t page,
			 uint64_t npages)
{
	struct mapped_ram_chunk c;

	assert_true(mapped_ram_plan_next(p, &c));
	assert_int_equal(c.block_offset, page * PS);
	assert_int_equal(c.file_offset, p->blk->pages_offset + page * PS);
	assert_int_equal(c.len, npages * PS);
}

static void test_plan_sparse(void **state)
{
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;

	small_block(&blk);
	assert_int_equal(mapped_ram_bitmap_init(&bm, blk.npages), 0);
	mapped_ram_plan_init(&p, &blk, &bm, 0);
	assert_false(mapped_ram_plan_next(&p, &c)); /* all zero: nothing */

	mapped_ram_bitmap_set(&bm, 0);
	for (uint64_t i = 2; i <= 5; i++)
		mapped_ram_bitmap_set(&bm, i);
	for (uint64_t i = 63; i <= 65; i++) /* across a word boundary */
		mapped_ram_bitmap_set(&bm, i);
	for (uint64_t i = 1000; i < 1600; i++) /* 600 pages > 1 MiB */
		mapped_ram_bitmap_set(&bm, i);
	mapped_ram_bitmap_set(&bm, 2047); /* the last page */
	mapped_ram_plan_init(&p, &blk, &bm, 0);
	expect_chunk(&p, 0, 1);
	expect_chunk(&p, 2, 4);
	expect_chunk(&p, 63, 3);
	expect_chunk(&p, 1000, 256);
	expect_chunk(&p, 1256, 256);
	expect_chunk(&p, 1512, 88);
	expect_chunk(&p, 2047, 1);
	assert_false(mapped_ram_plan_next(&p, &c));
	mapped_ram_bitmap_destroy(&bm);
}

static void test_plan_full_odd_size(void **state)
{
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_hdr hdr;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	uint64_t total = 0;

	/* 300 pages: the last word is partly used */
	assert_int_equal(mapped_ram_layout("r", 0, 300 * PS, &blk, &hdr, NULL),
			 0);
	assert_int_equal(mapped_ram_bitmap_init(&bm, 300), 0);
	memset(bm.words, 0xff, bm.nwords * sizeof(unsigned long));
	bm.words[bm.nwords - 1] &= (1ul << (300 % 64)) - 1;
	mapped_ram_plan_init(&p, &blk, &bm, 0);
	while (mapped_ram_plan_next(&p, &c)) {
		assert_true(c.len <= MAPPED_RAM_LOAD_CHUNK);
		assert_int_equal(c.block_offset, total);
		total += c.len;
	}
	assert_int_equal(total, 300 * PS);
	mapped_ram_bitmap_destroy(&bm);
}

/* --- a real file: save, then restore -----------------------------------------
 */

static char tmpdir[64];

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_mapped_ram.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

#define HDR_POS 101
#define NPAGES 1500 /* ~6 MiB block */

/* What a source does for one block: header at HDR_POS in the main
 * stream, pages by a multifd channel, bitmap at the end, then the tail
 * of the stream after the pages. The RAM has every third page non-zero. */
static void save_file(const char *path, uint8_t *ram,
		      struct mapped_ram_block *blk)
{
	struct mapped_ram_hdr hdr;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_page *pages = calloc(NPAGES, sizeof(*pages));
	uint8_t bytes[MAPPED_RAM_HDR_SIZE], filler[HDR_POS];
	struct channel *main_ch, *mfd;
	size_t n = 0;

	main_ch = filechan_open(path, FILECHAN_SOURCE, 0, NULL);
	mfd = filechan_open_extra(path, FILECHAN_SOURCE, false, NULL);
	assert_non_null(main_ch);
	assert_non_null(mfd);
	memset(filler, 'S', sizeof(filler));
	assert_int_equal(chan_write_all(main_ch, filler, HDR_POS), 0);
	assert_int_equal(
		mapped_ram_layout("ram", HDR_POS, NPAGES * PS, blk, &hdr, NULL),
		0);
	mapped_ram_hdr_encode(&hdr, bytes);
	assert_int_equal(chan_write_all(main_ch, bytes, sizeof(bytes)), 0);
	assert_int_equal(filechan_seek(main_ch, blk->end, NULL), 0);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	for (uint64_t i = 0; i < NPAGES; i++) {
		if (i % 3)
			continue; /* zero page: skipped, bit clear */
		memset(ram + i * PS, (int)(i % 251) + 1, PS);
		pages[n++] = (struct mapped_ram_page){i * PS, ram + i * PS};
		mapped_ram_bitmap_set(&bm, i);
	}
	assert_int_equal(mapped_ram_write_pages(mfd, blk, pages, n, 0, NULL),
			 0);
	assert_int_equal(mapped_ram_bitmap_write(main_ch, blk, &bm, NULL), 0);
	assert_int_equal(chan_write_all(main_ch, "\x00TAIL", 5), 0);
	mapped_ram_bitmap_destroy(&bm);
	chan_close(mfd);
	chan_close(main_ch);
	free(pages);
}

/* What a destination does: header from the main stream, check, bitmap,
 * chunks read by a multifd channel into RAM, then on with the stream. */
static int restore_file(const char *path, uint8_t *ram, struct mig_error **errp)
{
	struct mapped_ram_block blk;
	struct mapped_ram_hdr hdr;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	uint8_t bytes[MAPPED_RAM_HDR_SIZE], tail[5];
	struct channel *main_ch =
		filechan_open(path, FILECHAN_DEST, HDR_POS, errp);
	struct channel *mfd =
		filechan_open_extra(path, FILECHAN_DEST, false, errp);
	uint64_t size;
	int ret;

	assert_non_null(main_ch);
	assert_non_null(mfd);
	assert_int_equal(chan_read_all(main_ch, bytes, sizeof(bytes)), 0);
	mapped_ram_hdr_decode(bytes, &hdr);
	assert_int_equal(filechan_size(main_ch, &size), 0);
	ret = mapped_ram_check(&hdr, "ram", NPAGES * PS,
			       HDR_POS + MAPPED_RAM_HDR_SIZE, size, &blk, errp);
	if (!ret)
		ret = mapped_ram_bitmap_read(main_ch, &blk, &bm, errp);
	if (ret)
		goto out;
	mapped_ram_plan_init(&p, &blk, &bm, 0);
	while (!ret && mapped_ram_plan_next(&p, &c))
		ret = mapped_ram_read_chunk(mfd, &blk, &bm, ram, &c, NULL,
					    errp);
	mapped_ram_bitmap_destroy(&bm);
	if (!ret)
		ret = filechan_seek(main_ch, blk.end, errp);
	if (!ret) {
		assert_int_equal(chan_read_all(main_ch, tail, 5), 0);
		assert_memory_equal(tail, "\x00TAIL", 5);
	}
out:
	chan_close(mfd);
	chan_close(main_ch);
	return ret;
}

static void test_save_restore_file(void **state)
{
	char path[128];
	uint8_t *src = calloc(NPAGES, PS), *dst = calloc(NPAGES, PS);
	struct mapped_ram_block blk;
	struct stat st;

	snprintf(path, sizeof(path), "%s/save", tmpdir);
	save_file(path, src, &blk);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, blk.end + 5);
	/* sparse: the zero pages were never written */
	assert_true((uint64_t)st.st_blocks * 512 < blk.end);
	assert_int_equal(restore_file(path, dst, NULL), 0);
	assert_memory_equal(src, dst, NPAGES * PS);
	free(src);
	free(dst);
}

/* The bitmap on disk is host unsigned longs: bit i of the file's bytes
 * (little-endian x86_64) is page i. */
static void test_bitmap_bytes_on_disk(void **state)
{
	char path[128];
	uint8_t *ram = calloc(NPAGES, PS), bits[8];
	struct mapped_ram_block blk;
	int fd;

	snprintf(path, sizeof(path), "%s/bits", tmpdir);
	save_file(path, ram, &blk);
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, bits, 8, (off_t)blk.bitmap_offset), 8);
	close(fd);
	/* pages 0, 3, 6, ...: 0b01001001 = 0x49, then 0x92, 0x24, ... */
	assert_int_equal(bits[0], 0x49);
	assert_int_equal(bits[1], 0x92);
	assert_int_equal(bits[2], 0x24);
	free(ram);
}

/* --- hostile headers and files ------------------------------------------- */

static struct mapped_ram_hdr good_hdr(void)
{
	/* 1 GiB block, header at 101: QEMU's own layout */
	return (struct mapped_ram_hdr){1, PS, 129, MiB};
}

static void expect_rejected(struct mapped_ram_hdr h, uint64_t file_size,
			    const char *desc)
{
	struct mapped_ram_block blk;
	struct mig_error *err = NULL;

	assert_int_equal(
		mapped_ram_check(&h, "pc.ram", GiB, 129, file_size, &blk, &err),
		-EINVAL);
	expect_error(&err, desc);
}

static void test_check_accepts(void **state)
{
	struct mapped_ram_hdr h = good_hdr();
	struct mapped_ram_block blk;

	assert_int_equal(
		mapped_ram_check(&h, "pc.ram", GiB, 129, MiB + GiB, &blk, NULL),
		0);
	assert_int_equal(blk.npages, 262144);
	assert_int_equal(blk.bitmap_size, 32768);
	assert_int_equal(blk.end, MiB + GiB);
	/* version 0 passes QEMU's check; pages only page-aligned is fine */
	h.version = 0;
	h.pages_offset = 40 * PS;
	assert_int_equal(
		mapped_ram_check(&h, "pc.ram", GiB, 129, 2 * GiB, &blk, NULL),
		0);
}

static void test_check_hostile(void **state)
{
	struct mapped_ram_hdr h;

	h = good_hdr();
	h.version = 2;
	expect_rejected(h, 2 * GiB,
			"Migration mapped-ram capability version not supported "
			"(expected <= 1, got 2)");
	h = good_hdr();
	h.pages_offset = MiB + 512;
	expect_rejected(h, 2 * GiB,
			"Error reading ramblock pc.ram pages, region has bad "
			"alignment");
	h = good_hdr();
	h.page_size = 0;
	expect_rejected(h, 2 * GiB,
			"Ramblock pc.ram: mapped-ram page size 0x0 is not "
			"supported (expected 0x1000)");
	h.page_size = 65536;
	expect_rejected(h, 2 * GiB,
			"Ramblock pc.ram: mapped-ram page size 0x10000 is not "
			"supported (expected 0x1000)");
	h = good_hdr();
	h.pages_offset = 0xfffffffffffff000ull;
	expect_rejected(h, 2 * GiB,
			"Ramblock pc.ram: mapped-ram file offsets overflow "
			"(bitmap at 0x81, pages at 0xfffffffffffff000, "
			"0x40000000 bytes)");
	h = good_hdr();
	h.bitmap_offset = UINT64_MAX - 10;
	expect_rejected(h, 2 * GiB,
			"Ramblock pc.ram: mapped-ram file offsets overflow "
			"(bitmap at 0xfffffffffffffff5, pages at 0x100000, "
			"0x40000000 bytes)");
}

static void test_check_out_of_order(void **state)
{
	struct mapped_ram_hdr h;

	/* pages before the header: the stream would go backwards */
	h = good_hdr();
	h.bitmap_offset = 0;
	h.pages_offset = 0;
	expect_rejected(h, 2 * GiB,
			"Ramblock pc.ram: mapped-ram regions out of order "
			"(header ends at 0x81, bitmap at 0x0, pages at 0x0)");
	/* bitmap overlapping the pages */
	h = good_hdr();
	h.bitmap_offset = MiB - 100;
	expect_rejected(h, 2 * GiB,
			"Ramblock pc.ram: mapped-ram regions out of order "
			"(header ends at 0x81, bitmap at 0xfff9c, pages at "
			"0x100000)");
}

static void test_check_past_end_of_file(void **state)
{
	struct mapped_ram_hdr h = good_hdr();

	/* a file cut inside the bitmap */
	expect_rejected(h, 1000,
			"Error reading dirty bitmap of ramblock pc.ram: 0x8000 "
			"bytes at offset 0x81 pass the end of the file (0x3e8 "
			"bytes)");
	/* a bitmap pointing far past the file */
	h.bitmap_offset = 5 * GiB;
	h.pages_offset = 6 * GiB;
	expect_rejected(h, 5 * GiB,
			"Error reading dirty bitmap of ramblock pc.ram: 0x8000 "
			"bytes at offset 0x140000000 pass the end of the file "
			"(0x140000000 bytes)");
	/* a file cut inside the pages region */
	h = good_hdr();
	expect_rejected(h, MiB + GiB - 1,
			"Error reading ramblock pc.ram pages: 0x40000000 bytes "
			"at offset 0x100000 pass the end of the file "
			"(0x400fffff bytes)");
}

/* A file truncated after the check (or under a running restore): the
 * bitmap read and the page reads fail with an error, never a crash. */
static void test_truncated_during_restore(void **state)
{
	char path[128];
	uint8_t *ram = calloc(NPAGES, PS);
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_chunk c = {0, 0, PS};
	struct mig_error *err = NULL;
	struct channel *ch;

	snprintf(path, sizeof(path), "%s/cut", tmpdir);
	save_file(path, ram, &blk);
	/* cut through page 0 */
	assert_int_equal(truncate(path, (off_t)blk.pages_offset + 100), 0);
	assert_int_equal(restore_file(path, ram, &err), -EINVAL);
	expect_error(&err, "Error reading ramblock ram pages: 0x5dc000 bytes "
			   "at offset 0x100000 pass the end of the file "
			   "(0x100064 bytes)");
	ch = filechan_open(path, FILECHAN_DEST, 0, NULL);
	c.file_offset = blk.pages_offset;
	assert_int_equal(mapped_ram_bitmap_init(&bm, blk.npages), 0);
	mapped_ram_bitmap_set(&bm, 0);
	assert_int_equal(
		mapped_ram_read_chunk(ch, &blk, &bm, ram, &c, NULL, &err),
		-EPROTO);
	expect_error(&err, "(ram) failed to read page 0from file offset "
			   "100000: Unable to read from file: unexpected end "
			   "of file");
	c.block_offset = blk.length; /* a chunk outside the block */
	assert_int_equal(
		mapped_ram_read_chunk(ch, &blk, &bm, ram, &c, NULL, &err),
		-EINVAL);
	expect_error(&err, "page outside of ramblock ram range");
	mapped_ram_bitmap_destroy(&bm);
	/* cut inside the bitmap */
	assert_int_equal(truncate(path, (off_t)blk.bitmap_offset + 3), 0);
	assert_int_equal(mapped_ram_bitmap_read(ch, &blk, &bm, &err), -EPROTO);
	expect_error(&err, "Error reading dirty bitmap: Unable to read from "
			   "file: unexpected end of file");
	chan_close(ch);
	free(ram);
}

/* Bits past the block's last page in a crafted bitmap are dropped. */
static void test_bitmap_read_drops_tail(void **state)
{
	char path[128];
	struct mapped_ram_block blk;
	struct mapped_ram_bitmap bm;
	struct mapped_ram_hdr hdr;
	struct mapped_ram_plan p;
	struct mapped_ram_chunk c;
	uint8_t ones[16];
	struct channel *ch;
	int fd;

	snprintf(path, sizeof(path), "%s/tail", tmpdir);
	assert_int_equal(mapped_ram_layout("t", 0, 70 * PS, &blk, &hdr, NULL),
			 0);
	memset(ones, 0xff, sizeof(ones));
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_int_equal(pwrite(fd, ones, 16, (off_t)blk.bitmap_offset), 16);
	assert_int_equal(ftruncate(fd, (off_t)blk.end), 0);
	close(fd);
	ch = filechan_open(path, FILECHAN_DEST, 0, NULL);
	assert_int_equal(mapped_ram_bitmap_read(ch, &blk, &bm, NULL), 0);
	assert_int_equal(mapped_ram_bitmap_count(&bm), 70);
	mapped_ram_plan_init(&p, &blk, &bm, 0);
	assert_true(mapped_ram_plan_next(&p, &c));
	assert_int_equal(c.len, 70 * PS);
	assert_false(mapped_ram_plan_next(&p, &c));
	mapped_ram_bitmap_destroy(&bm);
	chan_close(ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_matches_qemu),
		cmocka_unit_test(test_layout_alignment),
		cmocka_unit_test(test_bitmap_words),
		cmocka_unit_test(test_write_runs),
		cmocka_unit_test(test_write_iov_max),
		cmocka_unit_test(test_write_rejects_bad_pages),
		cmocka_unit_test(test_plan_sparse),
		cmocka_unit_test(test_plan_full_odd_size),
		cmocka_unit_test(test_save_restore_file),
		cmocka_unit_test(test_bitmap_bytes_on_disk),
		cmocka_unit_test(test_check_accepts),
		cmocka_unit_test(test_check_hostile),
		cmocka_unit_test(test_check_out_of_order),
		cmocka_unit_test(test_check_past_end_of_file),
		cmocka_unit_test(test_truncated_during_restore),
		cmocka_unit_test(test_bitmap_read_drops_tail),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
