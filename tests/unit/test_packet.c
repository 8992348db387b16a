/* test_packet.c — multifd init and page packets (multifd/packet.c):
 * encoding compared with bytes captured from QEMU 10.0 (reference §2.9),
 * round trips, every malformed case with QEMU 10.0's message, and the
 * stale 7.2 SYNC packet that must still decode. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "multifd/packet.h"

static void expect_error(struct mig_error **err, const char *desc)
{
	assert_non_null(*err);
	assert_int_equal((*err)->cls, MIG_ERR_GENERIC);
	assert_string_equal((*err)->desc, desc);
	mig_error_free(*err);
	*err = NULL;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* ---- init packet ---- */

static void test_init_encode_capture(void **state)
{
	/* 10.0 channel 1: magic, version, zero UUID, id 01, 39 zeros. */
	uint8_t want[MFD_INIT_SIZE] = {
		0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x01,
	};
	struct mfd_init in = {.id = 1};
	uint8_t out[MFD_INIT_SIZE];

	want[24] = 0x01;
	memset(out, 0xaa, sizeof(out));
	mfd_init_encode(&in, out);
	assert_memory_equal(out, want, MFD_INIT_SIZE);
}

static void test_init_roundtrip_and_check(void **state)
{
	struct mfd_init in = {.id = 3}, got;
	struct mig_error *err = NULL;
	uint8_t wire[MFD_INIT_SIZE];

	for (int i = 0; i < 16; i++)
		in.uuid[i] = (uint8_t)(0x10 + i);
	mfd_init_encode(&in, wire);
	assert_memory_equal(wire + 8, in.uuid, 16);
	assert_int_equal(mfd_init_decode(wire, &got, &err), 0);
	assert_null(err);
	assert_memory_equal(got.uuid, in.uuid, 16);
	assert_int_equal(got.id, 3);
	assert_int_equal(mfd_init_check(&got, in.uuid, 4, &err), 0);
	assert_int_equal(mfd_init_check(&got, in.uuid, 3, &err), -EINVAL);
	expect_error(&err, "multifd: received channel id 3 is greater than "
			   "number of channels 3");
	got.uuid[15] = 0xff;
	assert_int_equal(mfd_init_check(&got, in.uuid, 4, &err), -EINVAL);
	expect_error(&err,
		     "multifd: received uuid '10111213-1415-1617-1819-"
		     "1a1b1c1d1eff' and expected uuid '10111213-1415-1617-"
		     "1819-1a1b1c1d1e1f' for channel 3");
}

static void test_init_decode_malformed(void **state)
{
	struct mfd_init in = {.id = 0}, got;
	struct mig_error *err = NULL;
	uint8_t wire[MFD_INIT_SIZE];

	mfd_init_encode(&in, wire);
	wire[0] = 0x51; /* "QEVM" where a multifd channel was expected */
	assert_int_equal(mfd_init_decode(wire, &got, &err), -EINVAL);
	expect_error(&err, "multifd: received packet magic 51223344 expected "
			   "11223344");
	mfd_init_encode(&in, wire);
	wire[7] = 2;
	assert_int_equal(mfd_init_decode(wire, &got, &err), -EINVAL);
	expect_error(&err, "multifd: received packet version 2 expected 1");
}

/* ---- page packet: literal bytes ---- */

/* The 10.0 setup SYNC packet at channel offset 64: flags=1, all else 0. */
static void test_encode_sync_capture(void **state)
{
	static uint8_t want[MFD_PACKET_SIZE];
	struct mfd_packet p = {.flags = MFD_FLAG_SYNC};
	uint8_t out[MFD_PACKET_SIZE];

	memset(want, 0, sizeof(want));
	memcpy(want, "\x11\x22\x33\x44\x00\x00\x00\x01\x00\x00\x00\x01", 12);
	memset(out, 0xaa, sizeof(out));
	mfd_packet_encode(&p, out);
	assert_memory_equal(out, want, MFD_PACKET_SIZE);
}

/* The 10.0 data packet at channel offset 1408. */
static void test_encode_data_capture(void **state)
{
	static const uint8_t head[40] = {
		0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x01, /* magic ver */
		0x00, 0x00, 0x00, 0x00,				/* flags */
		0x00, 0x00, 0x00, 0x80,				/* alloc */
		0x00, 0x00, 0x00, 0x80,				/* normal */
		0x00, 0x08, 0x00, 0x00,				/* next */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, /* num */
		0x00, 0x00, 0x00, 0x00,				/* zero */
	};
	static const uint8_t off2[8] = {0, 0, 0, 0, 0, 0, 0x20, 0x00};
	struct mfd_packet p = {
		.pages_alloc = 128,
		.normal_pages = 128,
		.next_packet_size = 524288,
		.packet_num = 3,
		.ramblock = "ram",
	};
	uint8_t out[MFD_PACKET_SIZE];
	uint8_t zeros[256] = {0};

	for (int i = 0; i < 128; i++)
		p.offset[i] = (uint64_t)i * 0x1000;
	mfd_packet_encode(&p, out);
	assert_memory_equal(out, head, sizeof(head));
	assert_memory_equal(out + 40, zeros, 24);
	assert_memory_equal(out + 64, "ram\0", 4);
	assert_memory_equal(out + 68, zeros, 252);
	assert_memory_equal(out + 320, zeros, 8);
	assert_memory_equal(out + 320 + 16, off2, 8);
	assert_int_equal(out[320 + 127 * 8 + 5], 0x07); /* 0x7f000 */
	assert_int_equal(out[320 + 127 * 8 + 6], 0xf0);
	assert_int_equal(out[MFD_PACKET_SIZE - 1], 0);
}

/* The zero-only packet at 527,040: normal 0, zero 128, offsets 0x181000.. */
static void test_encode_zero_pages(void **state)
{
	static const uint8_t fields[] = {
		0x00, 0x00, 0x00, 0x80,
		0x00, 0x00, 0x00, 0x00, /* alloc normal */
		0x00, 0x00, 0x00, 0x00, /* next */
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x06, /* num */
		0x00, 0x00, 0x00, 0x80, /* zero_pages */
	};
	static const uint8_t off0[8] = {0, 0, 0, 0, 0, 0x18, 0x10, 0x00};
	struct mfd_packet p, got;
	struct mig_error *err = NULL;
	uint8_t out[MFD_PACKET_SIZE];

	memset(&p, 0, sizeof(p)); /* padding too: compared with memcmp */
	p.pages_alloc = 128;
	p.packet_num = 6;
	p.zero_pages = 128;
	strcpy(p.ramblock, "ram");
	for (int i = 0; i < 128; i++)
		p.offset[i] = 0x181000 + (uint64_t)i * 0x1000;
	mfd_packet_encode(&p, out);
	assert_memory_equal(out + 12, fields, sizeof(fields));
	assert_memory_equal(out + 320, off0, 8);
	assert_int_equal(mfd_packet_decode(out, &got, &err), 0);
	assert_null(err);
	assert_memory_equal(&got, &p, sizeof(p));
}

/* Unused offsets and name bytes are written as zeros; a 256-byte name
 * without NUL is cut to 255 so the wire name stays terminated. */
static void test_encode_clears_unused(void **state)
{
	struct mfd_packet p;
	uint8_t out[MFD_PACKET_SIZE], zeros[MFD_PACKET_SIZE] = {0};

	memset(&p, 0x5a, sizeof(p));
	p.pages_alloc = 128;
	p.normal_pages = 2;
	p.zero_pages = 1;
	mfd_packet_encode(&p, out);
	assert_memory_equal(out + 36, zeros, 28);
	assert_memory_equal(out + 64, p.ramblock, 255);
	assert_int_equal(out[319], 0);
	assert_int_equal(out[320 + 3 * 8 - 1], 0x5a);
	assert_memory_equal(out + 320 + 3 * 8, zeros, 125 * 8);
	/* A caller's bad counts never write past the packet. */
	p.normal_pages = 1000;
	mfd_packet_encode(&p, out);
	assert_int_equal(out[MFD_PACKET_SIZE - 1], 0x5a);
}

static void test_decode_roundtrip(void **state)
{
	struct mfd_packet p, got;
	struct mig_error *err = NULL;
	uint8_t wire[MFD_PACKET_SIZE];

	memset(&p, 0, sizeof(p));
	p.flags = MFD_FLAG_SYNC | MFD_FLAG_ZSTD;
	p.pages_alloc = 128;
	p.normal_pages = 100;
	p.zero_pages = 28;
	p.next_packet_size = 123456;
	p.packet_num = 0x0102030405060708ull;
	strcpy(p.ramblock, "pc.ram");
	for (int i = 0; i < 128; i++)
		p.offset[i] = 0xfffffffffffff000ull - (uint64_t)i * 4096;
	mfd_packet_encode(&p, wire);
	memset(&got, 0xee, sizeof(got));
	assert_int_equal(mfd_packet_decode(wire, &got, &err), 0);
	assert_null(err);
	assert_memory_equal(&got, &p, sizeof(p));
	assert_int_equal(mfd_packet_check_method(&got, 0, MFD_FLAG_ZSTD, &err),
			 0);
	assert_int_equal(mfd_packet_check_method(&got, 3, 0, &err), -EINVAL);
	expect_error(&err, "multifd 3: flags received 4 flags expected 0");
}

/* 7.2 reuses its packet: SYNC with normal 0 keeps next and the name. */
static void test_decode_stale_72_sync(void **state)
{
	uint8_t wire[MFD_PACKET_SIZE] = {0};
	struct mig_error *err = NULL;
	struct mfd_packet got;

	memcpy(wire, "\x11\x22\x33\x44\x00\x00\x00\x01\x00\x00\x00\x01", 12);
	put_be32(wire + 12, 128);
	put_be32(wire + 20, 0x40000);
	put_be32(wire + 28, 5);
	memcpy(wire + 64, "ram", 3);
	put_be32(wire + 320 + 4, 0x1000); /* leftover offsets */
	assert_int_equal(mfd_packet_decode(wire, &got, &err), 0);
	assert_null(err);
	assert_int_equal(got.flags, MFD_FLAG_SYNC);
	assert_int_equal(got.normal_pages, 0);
	assert_int_equal(got.next_packet_size, 0x40000);
	assert_int_equal(got.packet_num, 5);
	assert_string_equal(got.ramblock, "ram");
	assert_int_equal(got.offset[0], 0); /* beyond normal + zero */
}

/* ---- page packet: malformed ---- */

static void sync_wire(uint8_t wire[MFD_PACKET_SIZE], uint32_t alloc,
		      uint32_t normal, uint32_t zero)
{
	struct mfd_packet p = {.pages_alloc = alloc};

	mfd_packet_encode(&p, wire);
	put_be32(wire + 16, normal);
	put_be32(wire + 32, zero);
}

static void expect_decode_error(const uint8_t *wire, const char *desc)
{
	struct mig_error *err = NULL;
	struct mfd_packet got;

	assert_int_equal(mfd_packet_decode(wire, &got, &err), -EINVAL);
	expect_error(&err, desc);
}

static void test_decode_bad_magic_version(void **state)
{
	uint8_t wire[MFD_PACKET_SIZE];

	sync_wire(wire, 128, 0, 0);
	wire[3] = 0x45;
	expect_decode_error(wire, "multifd: received packet magic 11223345, "
				  "expected 11223344");
	sync_wire(wire, 128, 0, 0);
	put_be32(wire + 4, 0xffffffff);
	expect_decode_error(wire, "multifd: received packet version "
				  "4294967295, expected 1");
}

static void test_decode_bad_counts(void **state)
{
	uint8_t wire[MFD_PACKET_SIZE];

	sync_wire(wire, 129, 0, 0);
	expect_decode_error(wire, "multifd: received packet with 129 pages, "
				  "expected 128");
	sync_wire(wire, 0xffffffff, 0, 0);
	expect_decode_error(wire, "multifd: received packet with 4294967295 "
				  "pages, expected 128");
	sync_wire(wire, 64, 65, 0);
	expect_decode_error(wire, "multifd: received packet with 65 non-zero "
				  "pages, which exceeds maximum expected "
				  "pages 64");
	sync_wire(wire, 128, 100, 29);
	expect_decode_error(wire, "multifd: received packet with 29 zero "
				  "pages, expected maximum 28");
	/* No wrap-around: zero huge with normal == alloc. */
	sync_wire(wire, 128, 128, 0x80000000);
	expect_decode_error(wire, "multifd: received packet with 2147483648 "
				  "zero pages, expected maximum 0");
	sync_wire(wire, 0, 0, 1);
	expect_decode_error(wire, "multifd: received packet with 1 zero "
				  "pages, expected maximum 0");
}

/* QEMU forces byte 255 of the name to NUL rather than failing. */
static void test_decode_unterminated_name(void **state)
{
	uint8_t wire[MFD_PACKET_SIZE];
	struct mig_error *err = NULL;
	struct mfd_packet got;

	sync_wire(wire, 128, 1, 0);
	memset(wire + 64, 'b', MFD_NAME_SIZE);
	assert_int_equal(mfd_packet_decode(wire, &got, &err), 0);
	assert_null(err);
	assert_int_equal(strlen(got.ramblock), 255);
	assert_int_equal(got.ramblock[0], 'b');
	/* Bytes after the NUL are not carried over. */
	sync_wire(wire, 128, 1, 0);
	memcpy(wire + 64, "ram\0junk", 8);
	assert_int_equal(mfd_packet_decode(wire, &got, &err), 0);
	assert_string_equal(got.ramblock, "ram");
	assert_int_equal(got.ramblock[5], 0);
}

static void test_decode_device_state(void **state)
{
	uint8_t wire[MFD_PACKET_SIZE];
	struct mig_error *err = NULL;
	uint32_t flags = 0;

	sync_wire(wire, 0, 0, 0);
	put_be32(wire + 8, MFD_FLAG_DEVICE_STATE);
	expect_decode_error(wire, "multifd: received device state packet "
				  "(flags 40), which is not supported");
	assert_int_equal(mfd_packet_decode_common(wire, &flags, &err), -EINVAL);
	expect_error(&err, "multifd: received device state packet (flags "
			   "40), which is not supported");
	put_be32(wire + 8, MFD_FLAG_SYNC);
	assert_int_equal(mfd_packet_decode_common(wire, &flags, &err), 0);
	assert_int_equal(flags, MFD_FLAG_SYNC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_encode_capture),
		cmocka_unit_test(test_init_roundtrip_and_check),
		cmocka_unit_test(test_init_decode_malformed),
		cmocka_unit_test(test_encode_sync_capture),
		cmocka_unit_test(test_encode_data_capture),
		cmocka_unit_test(test_encode_zero_pages),
		cmocka_unit_test(test_encode_clears_unused),
		cmocka_unit_test(test_decode_roundtrip),
		cmocka_unit_test(test_decode_stale_72_sync),
		cmocka_unit_test(test_decode_bad_magic_version),
		cmocka_unit_test(test_decode_bad_counts),
		cmocka_unit_test(test_decode_unterminated_name),
		cmocka_unit_test(test_decode_device_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
