/* test_compress.c — multifd compression (multifd/compress*.c): round trips
 * over a continuous stream for zlib and zstd at several levels, zero /
 * text / random pages, QEMU's framing (stream header once, sync-flush
 * marker at each payload's end), payloads from a plain QEMU-style encoder,
 * and hostile input: corrupt bytes, truncation, oversized lengths, streams
 * that make more or fewer pages than announced (guards stay intact). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include <cmocka.h>

#include "multifd/compress.h"
#include "multifd/packet.h"

#define PG MFD_PAGE_SIZE
#define GUARD 64

static uint64_t prng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	prng ^= prng << 13;
	prng ^= prng >> 7;
	prng ^= prng << 17;
	return prng;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)next_rand();
}

static void fill_text(uint8_t *p, size_t len)
{
	static const char *const words[] = {"migration ", "page ",   "dirty ",
					    "qemu ",	  "stream ", "zlib\n"};
	size_t pos = 0;

	while (pos < len) {
		const char *w = words[next_rand() % 6];
		size_t l = strlen(w);

		if (l > len - pos)
			l = len - pos;
		memcpy(p + pos, w, l);
		pos += l;
	}
}

/* Pages of kind (i % 3): zero, text, random (kind -1: all random). */
static uint8_t *make_pages(uint32_t n, int kind, uint8_t **pages)
{
	uint8_t *mem = calloc(n, PG);

	assert_non_null(mem);
	for (uint32_t i = 0; i < n; i++) {
		int k = kind < 0 ? 2 : (int)(i + kind) % 3;

		pages[i] = mem + (size_t)i * PG;
		if (k == 1)
			fill_text(pages[i], PG);
		else if (k == 2)
			fill_random(pages[i], PG);
	}
	return mem;
}

/* Destination pages inside one buffer with a guard before and after each. */
struct dst {
	uint8_t *mem;
	uint8_t *pages[MFD_PAGE_COUNT];
};

static void dst_init(struct dst *d, uint32_t n)
{
	size_t slot = PG + 2 * GUARD;

	d->mem = malloc(slot * n);
	assert_non_null(d->mem);
	memset(d->mem, 0xA5, slot * n);
	for (uint32_t i = 0; i < n; i++)
		d->pages[i] = d->mem + slot * i + GUARD;
}

static void dst_check_guards(struct dst *d, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		for (int g = 1; g <= GUARD; g++) {
			assert_int_equal(d->pages[i][-g], 0xA5);
			assert_int_equal(d->pages[i][PG - 1 + g], 0xA5);
		}
}

static void expect_error_prefix(struct mig_error **err, const char *prefix)
{
	assert_non_null(*err);
	if (strncmp((*err)->desc, prefix, strlen(prefix)) != 0)
		fail_msg("error '%s' does not start with '%s'", (*err)->desc,
			 prefix);
	mig_error_free(*err);
	*err = NULL;
}

/* Sends rounds packets of n pages through one stream each way. */
static void round_trip(uint32_t method, int level, uint32_t n, int kind,
		       int rounds)
{
	struct mig_error *err = NULL;
	struct mfd_compressor *c = mfd_compressor_new(method, level, 0, &err);
	struct mfd_decompressor *d = mfd_decompressor_new(method, 0, &err);
	uint8_t *src[MFD_PAGE_COUNT];
	struct dst dst;

	assert_null(err);
	assert_non_null(c);
	assert_non_null(d);
	dst_init(&dst, n);
	for (int r = 0; r < rounds; r++) {
		uint8_t *mem = make_pages(n, kind < 0 ? kind : r, src);
		struct iovec out;
		uint8_t *buf;

		assert_int_equal(mfd_compressor_run(c, src, n, &out, &err), 0);
		assert_true(out.iov_len <= mfd_compress_bound(method));
		buf = mfd_decompressor_buffer(d, out.iov_len, &err);
		assert_non_null(buf);
		memcpy(buf, out.iov_base, out.iov_len);
		assert_int_equal(mfd_decompressor_run(d, out.iov_len, dst.pages,
						      n, &err),
				 0);
		for (uint32_t i = 0; i < n; i++)
			assert_memory_equal(dst.pages[i], src[i], PG);
		free(mem);
	}
	dst_check_guards(&dst, n);
	assert_int_equal(mfd_compressor_stats(c)->packets, rounds);
	assert_int_equal(mfd_decompressor_stats(d)->raw_bytes,
			 (uint64_t)rounds * n * PG);
	free(dst.mem);
	mfd_compressor_free(c);
	mfd_decompressor_free(d);
}

static void test_zlib_round_trip(void **state)
{
	round_trip(MFD_FLAG_ZLIB, 1, MFD_PAGE_COUNT, 0, 4);
	round_trip(MFD_FLAG_ZLIB, 1, 1, 0, 5);
	round_trip(MFD_FLAG_ZLIB, 1, 7, 0, 3);
}

static void test_zstd_round_trip(void **state)
{
	round_trip(MFD_FLAG_ZSTD, 1, MFD_PAGE_COUNT, 0, 4);
	round_trip(MFD_FLAG_ZSTD, 1, 1, 0, 5);
	round_trip(MFD_FLAG_ZSTD, 1, 7, 0, 3);
}

static void test_levels(void **state)
{
	round_trip(MFD_FLAG_ZLIB, 0, MFD_PAGE_COUNT, 0, 2);
	round_trip(MFD_FLAG_ZLIB, 9, MFD_PAGE_COUNT, 0, 2);
	round_trip(MFD_FLAG_ZSTD, 0, MFD_PAGE_COUNT, 0, 2);
	round_trip(MFD_FLAG_ZSTD, 20, 32, 0, 2);
}

/* Random pages: stored (zlib) or raw blocks (zstd), a few bytes over. */
static void incompressible(uint32_t method, int level)
{
	struct mig_error *err = NULL;
	struct mfd_compressor *c = mfd_compressor_new(method, level, 0, &err);
	uint8_t *src[MFD_PAGE_COUNT];
	uint8_t *mem = make_pages(MFD_PAGE_COUNT, -1, src);
	struct iovec out;

	assert_non_null(c);
	for (int r = 0; r < 3; r++) {
		assert_int_equal(
			mfd_compressor_run(c, src, MFD_PAGE_COUNT, &out, &err),
			0);
		assert_true(out.iov_len <= mfd_compress_bound(method));
		assert_true(out.iov_len >= MFD_PAGE_COUNT * PG);
		fill_random(mem, MFD_PAGE_COUNT * PG);
	}
	if (method == MFD_FLAG_ZLIB && level > 0)
		assert_int_equal(mfd_compressor_stats(c)->raw_pages,
				 3 * MFD_PAGE_COUNT);
	free(mem);
	mfd_compressor_free(c);
	round_trip(method, level, MFD_PAGE_COUNT, -1, 2);
}

static void test_incompressible(void **state)
{
	incompressible(MFD_FLAG_ZLIB, 1);
	incompressible(MFD_FLAG_ZLIB, 9);
	incompressible(MFD_FLAG_ZLIB, 0);
	incompressible(MFD_FLAG_ZSTD, 1);
	incompressible(MFD_FLAG_ZSTD, 20);
}

/* QEMU's framing: the zlib header (78 01) and zstd magic only in the
 * first payload; every zlib payload ends with the sync-flush marker. */
static void test_framing(void **state)
{
	static const uint8_t sync[4] = {0, 0, 0xff, 0xff};
	static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
	struct mig_error *err = NULL;
	struct mfd_compressor *z =
		mfd_compressor_new(MFD_FLAG_ZLIB, 1, 0, &err);
	struct mfd_compressor *s =
		mfd_compressor_new(MFD_FLAG_ZSTD, 1, 0, &err);
	uint8_t *src[4];
	uint8_t *mem = make_pages(4, 0, src);
	struct iovec out;
	const uint8_t *b;

	for (int r = 0; r < 2; r++) {
		assert_int_equal(mfd_compressor_run(z, src, 4, &out, &err), 0);
		b = out.iov_base;
		assert_true(out.iov_len > 6);
		assert_int_equal(b[0] == 0x78 && b[1] == 0x01, r == 0);
		assert_memory_equal(b + out.iov_len - 4, sync, 4);
		assert_int_equal(mfd_compressor_run(s, src, 4, &out, &err), 0);
		assert_int_equal(memcmp(out.iov_base, magic, 4) == 0, r == 0);
	}
	free(mem);
	mfd_compressor_free(z);
	mfd_compressor_free(s);
}

/* A plain encoder as QEMU writes it: one deflate stream, sync flush at the
 * end of each packet, no level switches. */
static void test_qemu_style_zlib_stream(void **state)
{
	struct mig_error *err = NULL;
	struct mfd_decompressor *d =
		mfd_decompressor_new(MFD_FLAG_ZLIB, 3, &err);
	uint8_t *src[16], *buf;
	uint8_t *mem = make_pages(16, 0, src);
	size_t cap = compressBound(16 * PG);
	uint8_t *zbuf = malloc(cap);
	z_stream zs = {0};
	struct dst dst;

	dst_init(&dst, 16);
	assert_int_equal(deflateInit(&zs, 1), Z_OK);
	for (int r = 0; r < 3; r++) {
		zs.next_out = zbuf;
		zs.avail_out = cap;
		for (int i = 0; i < 16; i++) {
			zs.next_in = src[i];
			zs.avail_in = PG;
			assert_int_equal(deflate(&zs, i == 15 ? Z_SYNC_FLUSH
							      : Z_NO_FLUSH),
					 Z_OK);
		}
		buf = mfd_decompressor_buffer(d, cap - zs.avail_out, &err);
		memcpy(buf, zbuf, cap - zs.avail_out);
		assert_int_equal(mfd_decompressor_run(d, cap - zs.avail_out,
						      dst.pages, 16, &err),
				 0);
		for (int i = 0; i < 16; i++)
			assert_memory_equal(dst.pages[i], src[i], PG);
	}
	deflateEnd(&zs);
	free(zbuf);
	free(mem);
	free(dst.mem);
	mfd_decompressor_free(d);
}

static void test_oversized_length(void **state)
{
	uint32_t methods[] = {MFD_FLAG_ZLIB, MFD_FLAG_ZSTD};

	for (int m = 0; m < 2; m++) {
		struct mig_error *err = NULL;
		struct mfd_decompressor *d =
			mfd_decompressor_new(methods[m], 2, &err);
		size_t bound = mfd_compress_bound(methods[m]);
		struct dst dst;

		assert_true(bound >= MFD_PAGE_COUNT * PG);
		assert_non_null(mfd_decompressor_buffer(d, bound, &err));
		assert_null(mfd_decompressor_buffer(d, bound + 1, &err));
		expect_error_prefix(&err, "multifd 2: received ");
		assert_null(mfd_decompressor_buffer(d, UINT32_MAX, &err));
		expect_error_prefix(&err, "multifd 2: received ");
		dst_init(&dst, 1);
		assert_int_equal(
			mfd_decompressor_run(d, UINT32_MAX, dst.pages, 1, &err),
			-EINVAL);
		expect_error_prefix(&err, "multifd 2: bad payload");
		assert_int_equal(mfd_decompressor_run(d, 0, dst.pages,
						      MFD_PAGE_COUNT + 1, &err),
				 -EINVAL);
		expect_error_prefix(&err, "multifd 2: bad payload");
		free(dst.mem);
		mfd_decompressor_free(d);
	}
}

/* Compresses n pages; the caller owns *mem and frees c. */
static struct iovec compress_once(uint32_t method, uint32_t n,
				  struct mfd_compressor **c, uint8_t **mem)
{
	struct mig_error *err = NULL;
	uint8_t *src[MFD_PAGE_COUNT];
	struct iovec out;

	*c = mfd_compressor_new(method, 1, 0, &err);
	*mem = make_pages(n, 0, src);
	assert_int_equal(mfd_compressor_run(*c, src, n, &out, &err), 0);
	return out;
}

/* Feeds payload (possibly altered) to a fresh decompressor for n pages:
 * returns the result; guards must hold whatever happens. */
static int feed(uint32_t method, const uint8_t *p, size_t len, uint32_t n,
		struct mig_error **err)
{
	struct mfd_decompressor *d = mfd_decompressor_new(method, 0, err);
	struct dst dst;
	int ret;

	dst_init(&dst, n);
	memcpy(mfd_decompressor_buffer(d, len, err), p, len);
	ret = mfd_decompressor_run(d, len, dst.pages, n, err);
	dst_check_guards(&dst, n);
	free(dst.mem);
	mfd_decompressor_free(d);
	return ret;
}

static void test_more_or_fewer_pages(void **state)
{
	uint32_t methods[] = {MFD_FLAG_ZLIB, MFD_FLAG_ZSTD};

	for (int m = 0; m < 2; m++) {
		struct mig_error *err = NULL;
		struct mfd_compressor *c;
		uint8_t *mem;
		struct iovec out = compress_once(methods[m], 8, &c, &mem);

		/* 8 pages of data announced as 4: the rest is refused. */
		assert_int_equal(
			feed(methods[m], out.iov_base, out.iov_len, 4, &err),
			-EINVAL);
		expect_error_prefix(&err, "multifd 0: ");
		/* announced as 16: too few */
		assert_int_equal(
			feed(methods[m], out.iov_base, out.iov_len, 16, &err),
			-EINVAL);
		expect_error_prefix(&err, "multifd 0: ");
		/* empty payload */
		assert_int_equal(feed(methods[m], out.iov_base, 0, 1, &err),
				 -EINVAL);
		expect_error_prefix(&err, "multifd 0: ");
		assert_int_equal(
			feed(methods[m], out.iov_base, out.iov_len, 8, &err),
			0);
		free(mem);
		mfd_compressor_free(c);
	}
}

static void test_corrupt_payloads(void **state)
{
	uint32_t methods[] = {MFD_FLAG_ZLIB, MFD_FLAG_ZSTD};

	for (int m = 0; m < 2; m++) {
		struct mfd_compressor *c;
		uint8_t *mem;
		struct iovec out = compress_once(methods[m], 32, &c, &mem);
		uint8_t *bad = malloc(out.iov_len);
		int failures = 0;

		for (int t = 0; t < 300; t++) {
			struct mig_error *err = NULL;
			size_t len = out.iov_len;

			memcpy(bad, out.iov_base, len);
			if (t % 3 == 0)
				len = next_rand() % len; /* truncated */
			for (int k = 0; k < 1 + t % 4; k++)
				bad[next_rand() % out.iov_len] ^=
					(uint8_t)(1 + next_rand() % 255);
			if (feed(methods[m], bad, len, 32, &err)) {
				expect_error_prefix(&err, "multifd 0: ");
				failures++;
			}
			mig_error_free(err);
		}
		/* Flips in literal bytes may decode; most must not. */
		assert_true(failures > 150);
		/* garbage from the first byte */
		{
			struct mig_error *err = NULL;

			fill_random(bad, out.iov_len);
			assert_int_equal(
				feed(methods[m], bad, out.iov_len, 32, &err),
				-EINVAL);
			expect_error_prefix(&err, "multifd 0: ");
		}
		free(bad);
		free(mem);
		mfd_compressor_free(c);
	}
}

static void test_bad_method(void **state)
{
	struct mig_error *err = NULL;

	assert_null(mfd_compressor_new(MFD_FLAG_SYNC, 1, 1, &err));
	expect_error_prefix(&err, "multifd 1: unknown compression");
	assert_null(mfd_decompressor_new(0, 1, &err));
	expect_error_prefix(&err, "multifd 1: unknown compression");
	assert_int_equal(mfd_compress_bound(0), 0);
	assert_string_equal(mfd_compress_name(MFD_FLAG_ZSTD), "zstd");
	assert_null(mfd_compress_name(0x8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zlib_round_trip),
		cmocka_unit_test(test_zstd_round_trip),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_qemu_style_zlib_stream),
		cmocka_unit_test(test_oversized_length),
		cmocka_unit_test(test_more_or_fewer_pages),
		cmocka_unit_test(test_corrupt_payloads),
		cmocka_unit_test(test_bad_method),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
