/* test_rdma_proto.c — QEMU's RDMA control protocol codec (rdma/rdma_proto.h):
 * byte-exact encodings, round trips, and hostile inputs rejected with
 * QEMU's messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rdma/rdma_proto.h"
#include "util/error.h"

static const struct rproto_block blocks[2] = {
	{"pc.ram", 0, 64ull << 20, true},
	{"vga.vram", 64ull << 20, 3ull << 19, false}, /* 1.5 MiB */
};

/* errp is read after ret was computed (argument order is unspecified). */
static void expect_err(int ret, int want, struct mig_error **errp,
		       const char *msg)
{
	assert_int_equal(ret, want);
	assert_non_null(*errp);
	assert_string_equal((*errp)->desc, msg);
	mig_error_free(*errp);
	*errp = NULL;
}

static void test_header(void **state)
{
	struct rproto_header h = {.len = 5,
				  .type = RPROTO_QEMU_FILE,
				  .repeat = 1},
			     d;
	static const uint8_t want[16] = {0, 0, 0, 5, 0, 0, 0, 3,
					 0, 0, 0, 1, 0, 0, 0, 0};
	uint8_t buf[16];
	struct mig_error *err = NULL;

	rproto_header_encode(&h, buf);
	assert_memory_equal(buf, want, 16);
	assert_int_equal(rproto_header_decode(buf, 21, &d, &err), 0);
	assert_int_equal(d.len, 5);
	assert_int_equal(d.type, RPROTO_QEMU_FILE);
	assert_int_equal(rproto_expect(&d, RPROTO_QEMU_FILE, NULL, &err), 0);
	expect_err(rproto_header_decode(buf, 20, &d, &err), -EINVAL, &err,
		   "Malformed length: 5 byte_len 20");
	expect_err(rproto_header_decode(buf, 3, &d, &err), -EINVAL, &err,
		   "Malformed length: control message of 3 bytes has no "
		   "header");
	h.len = RPROTO_MAX_DATA + 1;
	rproto_header_encode(&h, buf);
	expect_err(rproto_header_decode(buf, 16, &d, &err), -EINVAL, &err,
		   "too long length: 524273");
	h = (struct rproto_header){.len = 0, .type = 12, .repeat = 1};
	rproto_header_encode(&h, buf);
	expect_err(rproto_header_decode(buf, 16, &d, &err), -EIO, &err,
		   "Unknown control message ??BAD CONTROL VALUE?? (12)");
	h = (struct rproto_header){.type = RPROTO_COMPRESS, .repeat = 4097};
	rproto_header_encode(&h, buf);
	expect_err(rproto_header_decode(buf, 16, &d, &err), -EIO, &err,
		   "rdma: Too many requests in this message (4097).Bailing.");
}

static void test_expect(void **state)
{
	struct rproto_header h = {.len = 7, .type = RPROTO_QEMU_FILE};
	struct mig_error *err = NULL;
	bool got_error;

	expect_err(rproto_expect(&h, RPROTO_READY, &got_error, &err), -EIO,
		   &err,
		   "Was expecting a READY (2) control message, but got: "
		   "QEMU FILE (3), length: 7");
	assert_false(got_error);
	h = (struct rproto_header){.type = RPROTO_ERROR};
	expect_err(rproto_expect(&h, RPROTO_NONE, &got_error, &err), -EIO, &err,
		   "Was expecting a NONE (0) control message, but got: "
		   "ERROR (1), length: 0");
	assert_true(got_error);
}

static void test_caps(void **state)
{
	struct rproto_caps c = {1, RPROTO_CAP_PIN_ALL}, d;
	static const uint8_t want[8] = {0, 0, 0, 1, 0, 0, 0, 1};
	uint8_t buf[8];
	struct mig_error *err = NULL;

	rproto_caps_encode(&c, buf);
	assert_memory_equal(buf, want, 8);
	buf[4] = 0x80; /* unknown bit: dropped */
	assert_int_equal(rproto_caps_decode(buf, 56, &d, &err), 0);
	assert_int_equal(d.flags, RPROTO_CAP_PIN_ALL);
	buf[3] = 2;
	expect_err(rproto_caps_decode(buf, 8, &d, &err), -EINVAL, &err,
		   "Unknown source RDMA version: 2, bailing...");
	expect_err(rproto_caps_decode(buf, 4, &d, &err), -EINVAL, &err,
		   "RDMA ERROR: connection request carries 4 bytes of "
		   "capabilities, need 8");
}

static void test_dest_blocks(void **state)
{
	struct rproto_dest_block b[2] =
		{
			{0x7f0000000000, 0, 64ull << 20, 0x1234},
			{0x7f1000000000, 64ull << 20, 3ull << 19, 0},
		},
				 d[2];
	uint8_t buf[64];
	struct rproto_header h = {.len = 64, .type = RPROTO_RAM_BLOCKS_RESULT};
	struct mig_error *err = NULL;

	rproto_dest_block_encode(&b[0], buf);
	rproto_dest_block_encode(&b[1], buf + 32);
	assert_int_equal(buf[27], 0x34);
	assert_int_equal(rproto_dest_blocks_decode(buf, &h, blocks, 2, d, &err),
			 0);
	assert_int_equal(d[0].remote_rkey, 0x1234);
	assert_int_equal(d[1].length, 3ull << 19);
	h.len = 32;
	expect_err(rproto_dest_blocks_decode(buf, &h, blocks, 2, d, &err),
		   -EINVAL, &err,
		   "RDMA ERROR: ram blocks mismatch (Number of blocks 2 vs 1) "
		   "Your QEMU command line parameters are probably not "
		   "identical on both the source and destination.");
	h.len = 64;
	buf[32 + 23] ^= 1;
	expect_err(rproto_dest_blocks_decode(buf, &h, blocks, 2, d, &err),
		   -EINVAL, &err,
		   "RDMA ERROR: Block vga.vram/1 has a different length "
		   "1572864vs 1572865");
}

static void test_compress(void **state)
{
	struct rproto_compress c = {0, 1, (64ull << 20) + 4096, 4096}, d;
	struct rproto_header h = {
		.len = 24, .type = RPROTO_COMPRESS, .repeat = 1};
	uint8_t buf[24];
	struct mig_error *err = NULL;

	rproto_compress_encode(&c, buf);
	assert_int_equal(rproto_compress_decode(buf, &h, blocks, 2, &d, &err),
			 0);
	assert_int_equal(d.offset, c.offset);
	c.block_idx = 2;
	rproto_compress_encode(&c, buf);
	expect_err(rproto_compress_decode(buf, &h, blocks, 2, &d, &err), -EIO,
		   &err, "rdma: 'compress' bad block index 2 (vs 2)");
	c = (struct rproto_compress){0, 0, (64ull << 20) - 4096, 8192};
	rproto_compress_encode(&c, buf);
	expect_err(rproto_compress_decode(buf, &h, blocks, 2, &d, &err),
		   -ERANGE, &err,
		   "rdma: 'compress' range offset: 3fff000 length: 2000 "
		   "outside block pc.ram");
	c = (struct rproto_compress){0, 0, UINT64_MAX, 2};
	rproto_compress_encode(&c, buf);
	assert_int_equal(rproto_compress_decode(buf, &h, blocks, 2, &d, &err),
			 -ERANGE);
	mig_error_free(err);
	err = NULL;
	h.len = 23;
	assert_int_equal(rproto_compress_decode(buf, &h, blocks, 2, &d, &err),
			 -EIO);
	mig_error_free(err);
	err = NULL;
}

static void test_register(void **state)
{
	struct rproto_register r[2] = {{5ull << 20, 0, 1}, {1, 1, 0}};
	struct rproto_register d[4];
	struct rproto_header h = {
		.len = 48, .type = RPROTO_REGISTER_REQUEST, .repeat = 2};
	struct rproto_register_result res = {0xbeef, 0x7f00}, rd;
	uint8_t buf[48], rbuf[32];
	struct mig_error *err = NULL;

	rproto_register_encode(&r[0], buf);
	rproto_register_encode(&r[1], buf + 24);
	assert_int_equal(rproto_register_decode(buf, &h, blocks, 2, d, 4, &err),
			 0);
	assert_int_equal(d[1].key, 1);
	/* repeat larger than the data: refused before reading */
	h.repeat = 3;
	assert_int_equal(rproto_register_decode(buf, &h, blocks, 2, d, 4, &err),
			 -EIO);
	mig_error_free(err);
	err = NULL;
	h.repeat = 1;
	r[0].current_index = 9;
	rproto_register_encode(&r[0], buf);
	expect_err(rproto_register_decode(buf, &h, blocks, 2, d, 4, &err),
		   -ENOENT, &err, "rdma: 'register' bad block index 9 (vs 2)");
	r[0] = (struct rproto_register){64ull << 20, 0, 0};
	rproto_register_encode(&r[0], buf);
	expect_err(rproto_register_decode(buf, &h, blocks, 2, d, 4, &err),
		   -ERANGE, &err,
		   "rdma: bad register address for block pc.ram "
		   "offset: 0 current_addr: 4000000");
	r[0] = (struct rproto_register){2, 1, 0};
	rproto_register_encode(&r[0], buf);
	expect_err(rproto_register_decode(buf, &h, blocks, 2, d, 4, &err),
		   -ERANGE, &err,
		   "rdma: bad chunk for block vga.vram chunk: 2");
	r[0] = (struct rproto_register){63ull << 20, 0, 2};
	rproto_register_encode(&r[0], buf);
	assert_int_equal(rproto_register_decode(buf, &h, blocks, 2, d, 4, &err),
			 -ERANGE);
	mig_error_free(err);
	err = NULL;
	rproto_register_result_encode(&res, rbuf);
	h = (struct rproto_header){.len = 16, .repeat = 1};
	assert_int_equal(rproto_register_result_decode(rbuf, &h, 0, &rd, &err),
			 0);
	assert_int_equal(rd.rkey, 0xbeef);
	assert_int_equal(rd.host_addr, 0x7f00);
	assert_int_equal(rproto_register_result_decode(rbuf, &h, 1, &rd, &err),
			 -EIO);
	mig_error_free(err);
	err = NULL;
}

static void test_chunks_and_wrid(void **state)
{
	uint64_t s, e;
	uint32_t type, block;
	uint64_t chunk;

	assert_int_equal(rproto_extra_chunks(4096), 0);
	assert_int_equal(rproto_extra_chunks(1 << 20), 0);
	assert_int_equal(rproto_extra_chunks((1 << 20) + 1), 1);
	assert_int_equal(rproto_extra_chunks(2 << 20), 1);
	assert_int_equal(rproto_nb_chunks(3ull << 19), 2);
	rproto_chunk_range(3ull << 19, 1, 5, &s, &e);
	assert_int_equal(s, 1 << 20);
	assert_int_equal(e, 3ull << 19);
	rproto_chunk_range(3ull << 19, 7, 0, &s, &e);
	assert_int_equal(s, e);
	rproto_chunk_range(UINT64_MAX, (UINT64_MAX >> 20), 3, &s, &e);
	assert_int_equal(e, UINT64_MAX);
	/* merging stays inside the current chunk and block */
	assert_true(rproto_can_merge(0, 0, 4096, 0, 4096, 4096, 64 << 20));
	assert_false(rproto_can_merge(0, 0, 4096, 0, 8192, 4096, 64 << 20));
	assert_false(rproto_can_merge(0, 0, 4096, 1, 4096, 4096, 64 << 20));
	assert_false(rproto_can_merge(0, (1 << 20) - 4096, 4096, 0, 1 << 20,
				      4096, 64 << 20));
	assert_false(rproto_can_merge(-1, 0, 0, 0, 0, 4096, 64 << 20));
	assert_int_equal(rproto_wrid(1, 3, 77), 1 | 3 << 16 | 77ull << 30);
	rproto_wrid_split(rproto_wrid(4001, 0x3fff, 1ull << 33), &type, &block,
			  &chunk);
	assert_int_equal(type, 4001);
	assert_int_equal(block, 0x3fff);
	assert_int_equal(chunk, 1ull << 33);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_dest_blocks),
		cmocka_unit_test(test_compress),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_chunks_and_wrid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
