/* test_file_mig.c — the mapped-ram data path of file: migration: the
 * mfd_file worker pool (items run once each, with 0 and several workers;
 * the first error sticks; kick), and ram_load_file_block() on real files
 * written with the mapped_ram codec: a good block lands byte for byte and
 * the main stream goes on after the pages region (also with direct-io
 * workers reading gaps into scratch, never into RAM); truncated files, bad
 * headers and random corruption (fuzz-ish, fixed seed) fail with an error
 * and never write outside the block (run under ASan in make asan). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "file/filechan.h"
#include "file/mapped_ram.h"
#include "guest/ram.h"
#include "multifd/mfd_file.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load_file.h"
#include "socket/channel.h"

#define NPAGES 700 /* > 2 chunks of 1 MiB */
#define LEN ((uint64_t)NPAGES * 4096)
#define PREFIX "prefix-of-the-stream"
#define TAIL "TAIL"

static char tmpdir[64];

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_file_mig.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- the pool ---------------------------------------------------------- */

struct item {
	unsigned value;
	_Atomic unsigned *sum;
	bool fail;
};

static int job(struct channel *ch, void *opaque, struct mig_error **errp)
{
	struct item *it = opaque;

	if (it->fail) {
		mig_error_setg(errp, "job %u failed", it->value);
		return -EIO;
	}
	atomic_fetch_add(it->sum, it->value);
	return 0;
}

static void run_pool(unsigned n)
{
	_Atomic unsigned sum = 0;
	struct channel *chans[8] = {0}; /* the job ignores its channel */
	struct mfd_file *p =
		mfd_file_start(chans, n, NULL, sizeof(struct item), job, NULL);
	struct item *it = calloc(1, sizeof(*it));
	struct mig_error *err = NULL;

	assert_non_null(p);
	assert_int_equal(mfd_file_nthreads(p), n);
	for (unsigned i = 1; i <= 1000; i++) {
		it->value = i;
		it->sum = &sum;
		it->fail = false;
		assert_int_equal(mfd_file_queue(p, (void **)&it), 0);
	}
	assert_int_equal(mfd_file_sync(p), 0);
	assert_int_equal(sum, 1000 * 1001 / 2);
	it->fail = true;
	it->value = 7;
	mfd_file_queue(p, (void **)&it);
	assert_int_equal(mfd_file_sync(p), -EIO);
	assert_int_equal(mfd_file_error(p, &err), -EIO);
	assert_string_equal(err->desc, "job 7 failed");
	mig_error_free(err);
	assert_int_equal(mfd_file_queue(p, (void **)&it), -EIO);
	mfd_file_kick(p);
	mfd_file_free(p);
	free(it);
}

static void test_pool_inline(void **state)
{
	run_pool(0);
}

static void test_pool_threads(void **state)
{
	run_pool(4);
}

/* ---- a mapped-ram block in a file -------------------------------------- */

struct saved {
	char path[PATH_MAX];
	uint64_t hdr_pos;
	struct mapped_ram_block blk;
	uint8_t *ram; /* what was saved */
};

static void fill_ram(uint8_t *ram)
{
	srand(6);
	for (uint64_t p = 0; p < NPAGES; p++)
		if (p % 5 != 3) /* some zero pages */
			for (int i = 0; i < 4096; i += 97)
				ram[p * 4096 + (uint64_t)i] =
					(uint8_t)rand() | 1;
}

static void write_block(struct saved *s)
{
	struct channel *ch = filechan_open(s->path, FILECHAN_SOURCE, 0, NULL);
	struct mapped_ram_page *pages = calloc(NPAGES, sizeof(*pages));
	struct mapped_ram_bitmap bm;
	uint8_t raw[MAPPED_RAM_HDR_SIZE];
	struct mapped_ram_hdr hdr;
	size_t n = 0;

	assert_non_null(ch);
	s->hdr_pos = strlen(PREFIX);
	assert_int_equal(chan_write_all(ch, PREFIX, strlen(PREFIX)), 0);
	assert_int_equal(
		mapped_ram_layout("ram", s->hdr_pos, LEN, &s->blk, &hdr, NULL),
		0);
	mapped_ram_hdr_encode(&hdr, raw);
	assert_int_equal(chan_write_all(ch, raw, sizeof(raw)), 0);
	assert_int_equal(mapped_ram_bitmap_init(&bm, NPAGES), 0);
	for (uint64_t p = 0; p < NPAGES; p++) {
		if (p % 5 == 3)
			continue;
		mapped_ram_bitmap_set(&bm, p);
		pages[n].offset = p * 4096;
		pages[n++].data = s->ram + p * 4096;
	}
	assert_int_equal(mapped_ram_write_pages(ch, &s->blk, pages, n, 0, NULL),
			 0);
	assert_int_equal(mapped_ram_bitmap_write(ch, &s->blk, &bm, NULL), 0);
	assert_int_equal(filechan_seek(ch, s->blk.end, NULL), 0);
	assert_int_equal(chan_write_all(ch, TAIL, strlen(TAIL)), 0);
	mapped_ram_bitmap_destroy(&bm);
	free(pages);
	chan_close(ch);
}

static struct saved *save_one(void)
{
	struct saved *s = calloc(1, sizeof(*s));

	s->ram = calloc(1, LEN);
	fill_ram(s->ram);
	snprintf(s->path, sizeof(s->path), "%s/good.sav", tmpdir);
	write_block(s);
	return s;
}

static void free_saved(struct saved *s)
{
	free(s->ram);
	free(s);
}

/* Loads path's block into ram with n workers (O_DIRECT ones when direct:
 * short gaps of absent pages joined into one read); 0 or -errno. */
static int load_ex(const char *path, unsigned n, bool direct, uint8_t *ram,
		   char *tail, struct mig_error **errp)
{
	struct channel *ch = filechan_open(path, FILECHAN_DEST, 0, NULL);
	struct channel *chans[4] = {0};
	struct ram_block b = {.name = "ram", .host = ram, .used_length = LEN};
	struct ram_load_file *rlf;
	struct qfile *f;
	uint64_t pages;
	int ret;

	assert_non_null(ch);
	for (unsigned i = 0; i < n; i++)
		chans[i] =
			filechan_open_extra(path, FILECHAN_DEST, direct, NULL);
	rlf = ram_load_file_new(ch, chans, n, NULL, NULL);
	assert_non_null(rlf);
	f = qfile_reader_new(ch);
	ret = qfile_skip(f, strlen(PREFIX));
	if (!ret)
		ret = ram_load_file_block(rlf, f, &b, LEN, &pages, errp);
	if (!ret)
		ret = qfile_get_buffer(f, tail, strlen(TAIL));
	qfile_free(f);
	ram_load_file_free(rlf);
	chan_close(ch);
	return ret;
}

static int load(const char *path, unsigned n, uint8_t *ram, char *tail,
		struct mig_error **errp)
{
	return load_ex(path, n, false, ram, tail, errp);
}

static void test_load_good(void **state)
{
	struct saved *s = save_one();

	for (unsigned n = 0; n <= 3; n += 3) {
		uint8_t *ram = calloc(1, LEN);
		char tail[8] = {0};

		assert_int_equal(load(s->path, n, ram, tail, NULL), 0);
		assert_memory_equal(ram, s->ram, LEN);
		assert_string_equal(tail, TAIL);
		free(ram);
	}
	free_saved(s);
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out;
	static char buf[1 << 20];
	ssize_t n;

	assert_true(in >= 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

static void patch(const char *path, uint64_t at, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, n, (off_t)at), (ssize_t)n);
	close(fd);
}

/* Absent pages' slots hold stale bytes: with direct-io workers the gaps
 * between runs are read in the same preadv, into a scratch buffer: RAM
 * keeps what it had there, every present page lands. */
static void test_load_direct_gaps(void **state)
{
	struct saved *s = save_one();
	uint8_t *ram = aligned_alloc(4096, LEN), stale[4096];
	struct mig_error *err = NULL;
	struct channel *probe;
	char tail[8] = {0};

	probe = filechan_open_extra(s->path, FILECHAN_DEST, true, &err);
	mig_error_free(err);
	if (!probe) {
		free(ram);
		free_saved(s);
		skip(); /* no O_DIRECT here */
	}
	chan_close(probe);
	memset(stale, 0x5a, sizeof(stale));
	for (uint64_t p = 3; p < NPAGES; p += 5)
		patch(s->path, s->blk.pages_offset + p * 4096, stale, 4096);
	for (unsigned n = 0; n <= 3; n += 3) {
		memset(ram, 0xee, LEN);
		assert_int_equal(load_ex(s->path, n, true, ram, tail, NULL), 0);
		assert_string_equal(tail, TAIL);
		for (uint64_t p = 0; p < NPAGES; p++) {
			const uint8_t *pg = ram + p * 4096;

			if (p % 5 == 3)
				assert_int_equal(pg[p % 4096], 0xee);
			else
				assert_memory_equal(pg, s->ram + p * 4096,
						    4096);
		}
	}
	free(ram);
	free_saved(s);
}

static void expect_fail(const char *path, const char *msg)
{
	uint8_t *ram = calloc(1, LEN);
	struct mig_error *err = NULL;
	char tail[8] = {0};

	assert_true(load(path, 2, ram, tail, &err) < 0);
	assert_non_null(err);
	if (msg)
		assert_non_null(strstr(err->desc, msg));
	mig_error_free(err);
	free(ram);
}

static void test_load_corrupt(void **state)
{
	struct saved *s = save_one();
	char bad[PATH_MAX];
	uint8_t v2[4] = {0, 0, 0, 2};

	snprintf(bad, sizeof(bad), "%s/bad.sav", tmpdir);
	copy_file(s->path, bad);
	assert_int_equal(truncate(bad, (off_t)(s->blk.pages_offset + LEN / 2)),
			 0);
	expect_fail(bad, NULL);
	copy_file(s->path, bad);
	assert_int_equal(truncate(bad, (off_t)s->hdr_pos + 10), 0);
	expect_fail(bad, "Could not read whole mapped-ram migration header "
			 "(expected 28, got 10 bytes)");
	copy_file(s->path, bad);
	patch(bad, s->hdr_pos, v2, sizeof(v2));
	expect_fail(bad, "Migration mapped-ram capability version not "
			 "supported (expected <= 1, got 2)");
	free_saved(s);
}

static void test_load_fuzz(void **state)
{
	struct saved *s = save_one();
	char bad[PATH_MAX];

	snprintf(bad, sizeof(bad), "%s/fuzz.sav", tmpdir);
	srand(42);
	for (int i = 0; i < 200; i++) {
		uint8_t *ram = calloc(1, LEN), byte = (uint8_t)rand();
		uint64_t at =
			s->hdr_pos + (uint64_t)rand() % (MAPPED_RAM_HDR_SIZE +
							 s->blk.bitmap_size);
		struct mig_error *err = NULL;
		char tail[8] = {0};
		int ret;

		copy_file(s->path, bad);
		patch(bad, at, &byte, 1);
		if (i % 4 == 0)
			assert_int_equal(
				truncate(bad, rand() % (int)(s->blk.end + 8)),
				0);
		ret = load(bad, (unsigned)i % 3, ram, tail, &err);
		assert_true(ret == 0 || err != NULL);
		mig_error_free(err);
		free(ram);
	}
	free_saved(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_inline),
		cmocka_unit_test(test_pool_threads),
		cmocka_unit_test(test_load_good),
		cmocka_unit_test(test_load_direct_gaps),
		cmocka_unit_test(test_load_corrupt),
		cmocka_unit_test(test_load_fuzz),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
