/* test_postcopy_proto.c — multifd/postcopy_proto.c and postcopy_req.c:
 * every payload against the bytes postcopy_proto.h documents (QEMU 9.0/
 * 10.0 layouts), round trips, and the hostile cases with QEMU's messages:
 * truncation, oversized lengths, unknown commands, long names, bitmap size
 * mismatch, wrong end mark, bad page requests and request floods. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "multifd/postcopy_proto.h"
#include "multifd/postcopy_req.h"

static void expect_error(struct mig_error **err, const char *desc)
{
	assert_non_null(*err);
	assert_int_equal((*err)->cls, MIG_ERR_GENERIC);
	assert_string_equal((*err)->desc, desc);
	mig_error_free(*err);
	*err = NULL;
}

static void test_cmd_check(void **state)
{
	struct mig_error *err = NULL;

	assert_int_equal(pc_cmd_check(MIG_CMD_POSTCOPY_LISTEN, 0, &err), 0);
	assert_int_equal(pc_cmd_check(MIG_CMD_POSTCOPY_RUN, 1, &err), -ERANGE);
	expect_error(&err, "POSTCOPY_RUN received with bad length - "
			   "expecting 0, got 1");
	assert_int_equal(pc_cmd_check(MIG_CMD_POSTCOPY_RESUME, 4, &err),
			 -ERANGE);
	expect_error(&err, "POSTCOPY_RESUME received with bad length - "
			   "expecting 0, got 4");
	assert_int_equal(pc_cmd_check(MIG_CMD_PACKAGED, 8, &err), -ERANGE);
	expect_error(&err, "PACKAGED received with bad length - expecting "
			   "4, got 8");
	assert_int_equal(pc_cmd_check(0, 3, &err), -EINVAL);
	expect_error(&err, "MIG_CMD 0x0 unknown (len 0x3)");
	assert_int_equal(pc_cmd_check(12, 0, &err), -EINVAL);
	expect_error(&err, "MIG_CMD 0xc unknown (len 0x0)");
	assert_int_equal(pc_cmd_check(0xffff, 0xffff, &err), -EINVAL);
	expect_error(&err, "MIG_CMD 0xffff unknown (len 0xffff)");
	assert_int_equal(
		pc_cmd_check(MIG_CMD_POSTCOPY_RAM_DISCARD, 65535, &err), 0);
	assert_string_equal(pc_cmd_name(MIG_CMD_RECV_BITMAP), "RECV_BITMAP");
	assert_string_equal(pc_cmd_name(99), "?");
}

static void test_advise(void **state)
{
	const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0x10, 0,
				  0, 0, 0, 0, 0, 0, 0x10, 0};
	uint64_t sizes[2] = {0x1000, 0x200000};
	struct pc_advise a = {.ram = true, .target_page_size = 0x1000};
	struct mig_error *err = NULL;
	uint8_t buf[16];

	a.pagesize_summary = pc_pagesize_summary(sizes, 1);
	assert_int_equal(pc_advise_encode(&a, buf), 16);
	assert_memory_equal(buf, want, 16);
	assert_int_equal(pc_pagesize_summary(sizes, 2), 0x201000);
	assert_int_equal(
		pc_advise_decode(buf, 16, true, 0x1000, 0x1000, &a, &err), 0);
	assert_true(a.ram);
	assert_int_equal(a.pagesize_summary, 0x1000);

	a.ram = false;
	assert_int_equal(pc_advise_encode(&a, buf), 0);
	assert_int_equal(pc_advise_decode(buf, 0, false, 0, 0, &a, &err), 0);
	assert_false(a.ram);
	assert_int_equal(pc_advise_decode(buf, 0, true, 0, 0, &a, &err),
			 -EINVAL);
	expect_error(&err, "RAM postcopy is enabled but have 0 byte advise");
	assert_int_equal(pc_advise_decode(want, 16, false, 0, 0, &a, &err),
			 -EINVAL);
	expect_error(&err, "RAM postcopy is disabled but have 16 byte advise");
	assert_int_equal(pc_advise_decode(want, 8, true, 0, 0, &a, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_ADVISE invalid length (8)");
	assert_int_equal(
		pc_advise_decode(want, 16, true, 0x201000, 0x1000, &a, &err),
		-EINVAL);
	expect_error(&err, "Postcopy needs matching RAM page sizes "
			   "(s=1000 d=201000)");
	assert_int_equal(
		pc_advise_decode(want, 16, true, 0x1000, 0x10000, &a, &err),
		-EINVAL);
	expect_error(&err, "Postcopy needs matching target page sizes "
			   "(s=4096 d=65536)");
}

static void test_discard(void **state)
{
	/* version 0, "ram", NUL, (0x2000, 0x1000), (0x10000, 0x3000) */
	const uint8_t want[] = {0,    3, 'r',  'a', 'm', 0, 0,	  0, 0, 0,
				0,    0, 0x20, 0,   0,	 0, 0,	  0, 0, 0,
				0x10, 0, 0,    0,   0,	 0, 0,	  1, 0, 0,
				0,    0, 0,    0,   0,	 0, 0x30, 0};
	const struct pc_range r[2] = {{0x2000, 0x1000}, {0x10000, 0x3000}};
	struct pc_range many[13] = {{0}}, got;
	uint8_t buf[PC_DISCARD_PAYLOAD_MAX], bad[64];
	struct mig_error *err = NULL;
	struct pc_discard d;
	char name[300];

	assert_int_equal(pc_discard_encode("ram", r, 2, buf, sizeof(buf)),
			 sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(pc_discard_decode(buf, sizeof(want), &d, &err), 0);
	assert_string_equal(d.name, "ram");
	assert_int_equal(d.count, 2);
	pc_discard_get(&d, 1, &got);
	assert_int_equal(got.start, 0x10000);
	assert_int_equal(got.length, 0x3000);
	/* 12 pairs per command at most, at least one */
	assert_int_equal(pc_discard_encode("ram", many, 12, buf, sizeof(buf)),
			 6 + 12 * 16);
	assert_int_equal(pc_discard_encode("ram", many, 13, buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(pc_discard_encode("ram", many, 0, buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(pc_discard_encode("ram", r, 2, buf, 20), -ENOBUFS);
	memset(name, 'x', 256);
	name[256] = '\0';
	assert_int_equal(pc_discard_encode(name, r, 1, buf, sizeof(buf)),
			 -EINVAL);

	assert_int_equal(pc_discard_decode(want, 19, &d, &err), -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD invalid length (19)");
	memcpy(bad, want, sizeof(want));
	bad[0] = 1;
	assert_int_equal(pc_discard_decode(bad, sizeof(want), &d, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD invalid version (1)");
	memcpy(bad, want, sizeof(want));
	bad[5] = 7;
	assert_int_equal(pc_discard_decode(bad, sizeof(want), &d, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD missing nil (7)");
	assert_int_equal(pc_discard_decode(want, sizeof(want) - 1, &d, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD invalid length (31)");
	memcpy(bad, want, sizeof(want));
	bad[1] = 0;
	assert_int_equal(pc_discard_decode(bad, sizeof(want), &d, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD Failed to read RAMBlock "
			   "ID");
	bad[1] = 200; /* name runs past the command */
	assert_int_equal(pc_discard_decode(bad, sizeof(want), &d, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD invalid length (38)");
	memcpy(bad, want, sizeof(want));
	bad[3] = 0; /* "r\0m" */
	assert_int_equal(pc_discard_decode(bad, sizeof(want), &d, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD Failed to read RAMBlock "
			   "ID");
}

static void test_discard_range_check(void **state)
{
	struct mig_error *err = NULL;
	struct pc_range r = {0x1000, 0x2000};

	assert_int_equal(
		pc_discard_range_check("ram", &r, 0x4000, 0x1000, &err), 0);
	r.start = 0x800;
	assert_int_equal(
		pc_discard_range_check("ram", &r, 0x4000, 0x1000, &err),
		-EINVAL);
	expect_error(&err, "ram_block_discard_range: Unaligned start "
			   "address: 0x800");
	r = (struct pc_range){0x3000, 0x2000};
	assert_int_equal(
		pc_discard_range_check("ram", &r, 0x4000, 0x1000, &err),
		-EINVAL);
	expect_error(&err, "ram_block_discard_range: Overrun block 'ram' "
			   "(12288/2000/4000)");
	r = (struct pc_range){0x1000, UINT64_MAX - 0x800};
	assert_int_equal(
		pc_discard_range_check("ram", &r, 0x4000, 0x1000, &err),
		-EINVAL);
	mig_error_free(err);
	err = NULL;
	r = (struct pc_range){0x1000, 0x800};
	assert_int_equal(
		pc_discard_range_check("ram", &r, 0x4000, 0x1000, &err),
		-EINVAL);
	expect_error(&err, "ram_block_discard_range: Unaligned length: 800");
}

static void test_packaged(void **state)
{
	const uint8_t want[4] = {0x00, 0x01, 0x02, 0x03};
	struct mig_error *err = NULL;
	uint8_t buf[4];
	uint32_t len;

	pc_packaged_encode(0x10203, buf);
	assert_memory_equal(buf, want, 4);
	assert_int_equal(
		pc_packaged_decode(buf, 4, PC_PACKAGED_MAX, &len, &err), 0);
	assert_int_equal(len, 0x10203);
	pc_packaged_encode(PC_PACKAGED_MAX + 1, buf);
	assert_int_equal(
		pc_packaged_decode(buf, 4, PC_PACKAGED_MAX, &len, &err),
		-EINVAL);
	expect_error(&err, "Unreasonably large packaged state: 16777217");
	pc_packaged_encode(UINT32_MAX, buf);
	assert_int_equal(
		pc_packaged_decode(buf, 4, PC_PACKAGED_MAX, &len, &err),
		-EINVAL);
	expect_error(&err, "Unreasonably large packaged state: 4294967295");
	assert_int_equal(
		pc_packaged_decode(buf, 3, PC_PACKAGED_MAX, &len, &err),
		-ERANGE);
	expect_error(&err, "PACKAGED received with bad length - expecting "
			   "4, got 3");
}

static void test_recv_bitmap_cmd(void **state)
{
	const uint8_t want[] = {3, 'r', 'a', 'm'};
	struct mig_error *err = NULL;
	char name[PC_NAME_MAX + 1], big[300];
	uint8_t buf[300];

	assert_int_equal(pc_recv_bitmap_cmd_encode("ram", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, want, 4);
	assert_int_equal(pc_recv_bitmap_cmd_decode(buf, 4, name, &err), 0);
	assert_string_equal(name, "ram");
	memset(big, 'b', 255);
	big[255] = '\0';
	assert_int_equal(pc_recv_bitmap_cmd_encode(big, buf, sizeof(buf)), 256);
	assert_int_equal(pc_recv_bitmap_cmd_decode(buf, 256, name, &err), 0);
	assert_int_equal(strlen(name), 255);
	big[255] = 'b';
	big[256] = '\0';
	assert_int_equal(pc_recv_bitmap_cmd_encode(big, buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(pc_recv_bitmap_cmd_encode("ram", buf, 3), -ENOBUFS);

	assert_int_equal(pc_recv_bitmap_cmd_decode(want, 0, name, &err),
			 -EINVAL);
	expect_error(&err, "loadvm_handle_recv_bitmap: failed to read block "
			   "name");
	assert_int_equal(pc_recv_bitmap_cmd_decode(want, 3, name, &err),
			 -EINVAL);
	expect_error(&err, "loadvm_handle_recv_bitmap: failed to read block "
			   "name");
	memcpy(buf, want, 4);
	buf[4] = 'x';
	assert_int_equal(pc_recv_bitmap_cmd_decode(buf, 5, name, &err),
			 -EINVAL);
	expect_error(&err, "loadvm_handle_recv_bitmap: invalid payload "
			   "length (5)");
}

static void test_incoming_states(void **state)
{
	enum pc_incoming_state ps = PC_INCOMING_NONE;
	struct mig_error *err = NULL;

	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_RUN, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RUN in wrong postcopy state (0)");
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_LISTEN, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_LISTEN in wrong postcopy state (0)");
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_ADVISE, &err),
			 0);
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_ADVISE, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_ADVISE in wrong postcopy state (1)");
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_PING, &err), 0);
	assert_int_equal(ps, PC_INCOMING_ADVISE);
	assert_int_equal(
		pc_incoming_step(&ps, MIG_CMD_POSTCOPY_RAM_DISCARD, &err), 0);
	assert_int_equal(
		pc_incoming_step(&ps, MIG_CMD_POSTCOPY_RAM_DISCARD, &err), 0);
	assert_int_equal(ps, PC_INCOMING_DISCARD);
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_RUN, &err),
			 -EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RUN in wrong postcopy state (2)");
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_LISTEN, &err),
			 0);
	assert_int_equal(
		pc_incoming_step(&ps, MIG_CMD_POSTCOPY_RAM_DISCARD, &err),
		-EINVAL);
	expect_error(&err, "CMD_POSTCOPY_RAM_DISCARD in wrong postcopy state "
			   "(3)");
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_RUN, &err), 0);
	assert_int_equal(ps, PC_INCOMING_RUNNING);
	/* ADVISE straight to LISTEN is fine (no discards needed) */
	ps = PC_INCOMING_ADVISE;
	assert_int_equal(pc_incoming_step(&ps, MIG_CMD_POSTCOPY_LISTEN, &err),
			 0);
}

/* Encodes m, checks the bytes, decodes them back through the header. */
static void rp_roundtrip(const struct pc_rp_msg *m, const uint8_t *want,
			 size_t want_len)
{
	struct mig_error *err = NULL;
	uint8_t buf[PC_RP_HEADER + PC_RP_PAYLOAD_MAX];
	struct pc_rp_msg got;
	uint16_t type, len;

	assert_int_equal(pc_rp_encode(m, buf, sizeof(buf)), want_len);
	assert_memory_equal(buf, want, want_len);
	assert_int_equal(pc_rp_header_decode(buf, &type, &len, &err), 0);
	assert_int_equal(len, want_len - PC_RP_HEADER);
	assert_int_equal(pc_rp_decode(type, buf + 4, len, &got, &err), 0);
	assert_null(err);
	assert_int_equal(got.type, m->type);
	assert_int_equal(got.value, m->value);
	assert_int_equal(got.start, m->start);
	assert_int_equal(got.len, m->len);
	if (m->type == PC_RP_REQ_PAGES_ID || m->type == PC_RP_RECV_BITMAP)
		assert_string_equal(got.name, m->name);
}

static void test_rp_roundtrips(void **state)
{
	const uint8_t shut[] = {0, 1, 0, 4, 0, 0, 0, 0};
	const uint8_t pong[] = {0, 2, 0, 4, 0, 0, 0, 3};
	const uint8_t req[] = {0, 4,	0,    12, 0, 0, 0,    0,
			       0, 0x12, 0x30, 0,  0, 0, 0x10, 0};
	const uint8_t req_id[] = {0, 3, 0, 16,	 0, 0, 0, 1,   0,   0,
				  0, 0, 0, 0x20, 0, 0, 3, 'r', 'a', 'm'};
	const uint8_t bitmap[] = {0, 5, 0, 4, 3, 'r', 'a', 'm'};
	const uint8_t ack[] = {0, 6, 0, 4, 0, 0, 0, 1};
	const uint8_t sw[] = {0, 7, 0, 0};
	struct pc_rp_msg m = {.type = PC_RP_SHUT};

	rp_roundtrip(&m, shut, sizeof(shut));
	m = (struct pc_rp_msg){.type = PC_RP_PONG, .value = 3};
	rp_roundtrip(&m, pong, sizeof(pong));
	m = (struct pc_rp_msg){
		.type = PC_RP_REQ_PAGES, .start = 0x123000, .len = 0x1000};
	rp_roundtrip(&m, req, sizeof(req));
	m = (struct pc_rp_msg){.type = PC_RP_REQ_PAGES_ID,
			       .start = 0x100000000ull,
			       .len = 0x200000,
			       .name = "ram"};
	rp_roundtrip(&m, req_id, sizeof(req_id));
	m = (struct pc_rp_msg){.type = PC_RP_RECV_BITMAP, .name = "ram"};
	rp_roundtrip(&m, bitmap, sizeof(bitmap));
	m = (struct pc_rp_msg){.type = PC_RP_RESUME_ACK, .value = 1};
	rp_roundtrip(&m, ack, sizeof(ack));
	m = (struct pc_rp_msg){.type = PC_RP_SWITCHOVER_ACK};
	rp_roundtrip(&m, sw, sizeof(sw));
	/* a 255-byte name still fits QEMU's 512-byte buffer */
	m = (struct pc_rp_msg){.type = PC_RP_REQ_PAGES_ID, .len = 4096};
	memset(m.name, 'n', 255);
	uint8_t buf[600];
	assert_int_equal(pc_rp_encode(&m, buf, sizeof(buf)), 4 + 13 + 255);
	m.type = PC_RP_INVALID;
	assert_int_equal(pc_rp_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = PC_RP_PONG;
	assert_int_equal(pc_rp_encode(&m, buf, 7), -ENOBUFS);
}

static void rp_header_error(uint16_t type, uint16_t len, const char *desc)
{
	struct mig_error *err = NULL;
	uint8_t hdr[4] = {type >> 8, type & 0xff, len >> 8, len & 0xff};
	uint16_t t, l;

	assert_int_equal(pc_rp_header_decode(hdr, &t, &l, &err), -EINVAL);
	expect_error(&err, desc);
}

static void test_rp_hostile(void **state)
{
	struct mig_error *err = NULL;
	struct pc_rp_msg m;
	uint8_t p[300] = {0};

	rp_header_error(0, 4, "Received invalid message 0x0000 length 0x0004");
	rp_header_error(8, 0, "Received invalid message 0x0008 length 0x0000");
	rp_header_error(0xffff, 0xffff,
			"Received invalid message 0xffff length 0xffff");
	rp_header_error(PC_RP_SHUT, 5,
			"Received 'SHUT' message (0x0001) withincorrect "
			"length 5 expecting 4");
	rp_header_error(PC_RP_REQ_PAGES, 13,
			"Received 'REQ_PAGES' message (0x0004) withincorrect "
			"length 13 expecting 12");
	rp_header_error(PC_RP_SWITCHOVER_ACK, 1,
			"Received 'SWITCHOVER_ACK' message (0x0007) "
			"withincorrect length 1 expecting 0");
	rp_header_error(PC_RP_REQ_PAGES_ID, 513,
			"Received 'REQ_PAGES_ID' message (0x0003) "
			"withincorrect length 513 expecting "
			"18446744073709551615");

	/* REQ_PAGES_ID: truncated, name longer or shorter than the message */
	assert_int_equal(pc_rp_decode(PC_RP_REQ_PAGES_ID, p, 12, &m, &err),
			 -EINVAL);
	expect_error(&err, "Req_Page_id with length 12 expecting 13");
	p[12] = 3;
	assert_int_equal(pc_rp_decode(PC_RP_REQ_PAGES_ID, p, 15, &m, &err),
			 -EINVAL);
	expect_error(&err, "Req_Page_id with length 15 expecting 16");
	p[12] = 255;
	assert_int_equal(pc_rp_decode(PC_RP_REQ_PAGES_ID, p, 20, &m, &err),
			 -EINVAL);
	expect_error(&err, "Req_Page_id with length 20 expecting 268");
	p[12] = 2;
	memcpy(p + 13, "a\0", 2);
	assert_int_equal(pc_rp_decode(PC_RP_REQ_PAGES_ID, p, 15, &m, &err),
			 -EINVAL);
	mig_error_free(err);
	err = NULL;
	/* RECV_BITMAP */
	assert_int_equal(pc_rp_decode(PC_RP_RECV_BITMAP, p, 0, &m, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_RECV_BITMAP missing block name");
	p[0] = 10;
	assert_int_equal(pc_rp_decode(PC_RP_RECV_BITMAP, p, 4, &m, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_RECV_BITMAP with length 4 expecting "
			   "11");
	/* RESUME_ACK must carry 1 */
	memset(p, 0, 4);
	p[3] = 2;
	assert_int_equal(pc_rp_decode(PC_RP_RESUME_ACK, p, 4, &m, &err),
			 -EINVAL);
	expect_error(&err, "illegal resume_ack value 2");
	/* SHUT with an error decodes; the caller reports it */
	assert_int_equal(pc_rp_decode(PC_RP_SHUT, p, 4, &m, &err), 0);
	assert_int_equal(m.value, 2);
	assert_int_equal(pc_rp_decode(PC_RP_INVALID, p, 0, &m, &err), -EINVAL);
	expect_error(&err, "Received invalid message 0x0000 length 0x0000");
}

static void test_recv_bitmap_body(void **state)
{
	struct mig_error *err = NULL;
	uint8_t bits[8] = {0x41, 0, 0, 0, 0, 0, 0, 0x80};
	uint8_t buf[64];

	/* 1 GiB of 4 KiB pages: 262144 bits = 32 KiB */
	assert_int_equal(pc_recv_bitmap_size(1ull << 30, 4096), 32768);
	/* 9 pages: 2 bytes, padded to 8 */
	assert_int_equal(pc_recv_bitmap_size(9 * 4096, 4096), 8);
	assert_int_equal(pc_recv_bitmap_size(65 * 4096, 4096), 16);
	assert_int_equal(pc_recv_bitmap_body_encode(bits, 8, buf, sizeof(buf)),
			 24);
	const uint8_t want[24] = {
		0, 0, 0, 0,    0,    0,	   0,	 8,    0x41, 0,	   0,	 0,
		0, 0, 0, 0x80, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
	assert_memory_equal(buf, want, 24);
	assert_int_equal(pc_recv_bitmap_body_encode(bits, 8, buf, 23),
			 -ENOBUFS);
	assert_int_equal(pc_recv_bitmap_body_encode(bits, UINT64_MAX - 4, buf,
						    sizeof(buf)),
			 -ENOBUFS);
	assert_int_equal(pc_recv_bitmap_check_size("ram", 8, 8, &err), 0);
	assert_int_equal(pc_recv_bitmap_check_size("ram", 0x10, 8, &err),
			 -EINVAL);
	expect_error(&err, "ramblock 'ram' bitmap size mismatch (0x10 != 0x8)");
	assert_int_equal(
		pc_recv_bitmap_check_end("ram", PC_RECV_BITMAP_ENDING, &err),
		0);
	assert_int_equal(
		pc_recv_bitmap_check_end("ram", 0xefcdab8967452301, &err),
		-EINVAL);
	expect_error(&err, "ramblock 'ram' end mark incorrect: "
			   "0xefcdab8967452301");
}

static const struct pc_req_block blocks[] = {
	{"ram", 0x100000, 0x1000},
	{"huge", 0x800000, 0x200000},
};

static void test_req_validate(void **state)
{
	struct mig_error *err = NULL;
	struct pc_req_queue q;
	struct pc_req r;

	assert_int_equal(pc_req_queue_init(&q, blocks, 2, 0x1000, 8), 0);
	assert_int_equal(pc_req_validate(&q, NULL, 0, 0x1000, &r, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES has no previous block");
	assert_int_equal(pc_req_validate(&q, "rom", 0, 0x1000, &r, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES has no block 'rom'");
	assert_int_equal(pc_req_validate(&q, "ram", 0x800, 0x1000, &r, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES: Misaligned page request, "
			   "start:800 len: 4096");
	assert_int_equal(pc_req_validate(&q, "ram", 0xff000, 0x2000, &r, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES request overrun, "
			   "start=ff000 len=2000 blocklen=100000");
	/* the named block became the previous one, as in QEMU */
	assert_int_equal(pc_req_validate(&q, NULL, 0xff000, 0x1000, &r, &err),
			 0);
	assert_int_equal(r.block, 0);
	assert_int_equal(r.start, 0xff000);
	/* zero length and wrap-around are overruns */
	assert_int_equal(pc_req_validate(&q, NULL, 0, 0, &r, &err), -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES request overrun, "
			   "start=0 len=0 blocklen=100000");
	assert_int_equal(pc_req_validate(&q, NULL, 0xfffffffffffff000ull,
					 0x2000, &r, &err),
			 -EINVAL);
	mig_error_free(err);
	err = NULL;
	/* hugepage block: whole huge pages only, and not endless */
	assert_int_equal(pc_req_validate(&q, "huge", 0x1000, 0x1000, &r, &err),
			 -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES: bad request for block "
			   "'huge', start=1000 len=1000 (page size 200000, at "
			   "most 200000)");
	assert_int_equal(
		pc_req_validate(&q, "huge", 0x200000, 0x200000, &r, &err), 0);
	assert_int_equal(r.block, 1);
	assert_int_equal(pc_req_validate(&q, "ram", 0, 0x100000, &r, &err), 0);
	q.max_len = 0x10000;
	assert_int_equal(pc_req_validate(&q, "ram", 0, 0x20000, &r, &err),
			 -EINVAL);
	mig_error_free(err);
	pc_req_queue_destroy(&q);
	assert_int_equal(pc_req_queue_init(&q, blocks, 2, 3000, 8), -EINVAL);
}

static void test_req_queue_flood(void **state)
{
	struct mig_error *err = NULL;
	struct pc_req_queue q;
	struct pc_req r;

	assert_int_equal(pc_req_queue_init(&q, blocks, 2, 0x1000, 4), 0);
	assert_false(pc_req_pending(&q));
	assert_int_equal(pc_req_push(&q, "ram", 0x1000, 0x1000, &err), 0);
	/* the same page asked again and again is coalesced */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(pc_req_push(&q, NULL, 0x1000, 0x1000, &err),
				 1);
	assert_int_equal(q.coalesced, 1000);
	assert_int_equal(pc_req_push(&q, NULL, 0x2000, 0x1000, &err), 0);
	assert_int_equal(pc_req_push(&q, NULL, 0x3000, 0x1000, &err), 0);
	assert_int_equal(pc_req_push(&q, "huge", 0, 0x200000, &err), 0);
	assert_int_equal(pc_req_push(&q, NULL, 0x200000, 0x200000, &err),
			 -ENOBUFS);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES: too many outstanding page "
			   "requests (4)");
	assert_true(pc_req_pop(&q, &r));
	assert_int_equal(r.block, 0);
	assert_int_equal(r.start, 0x1000);
	/* popped: the same page may be asked for again */
	assert_int_equal(pc_req_push(&q, "ram", 0x1000, 0x1000, &err), 0);
	assert_int_equal(q.requests, 5);
	unsigned n = 0;
	while (pc_req_pop(&q, &r))
		n++;
	assert_int_equal(n, 4);
	assert_int_equal(r.start, 0x1000); /* FIFO, through the wrap */
	pc_req_forget_last(&q);
	assert_int_equal(pc_req_push(&q, NULL, 0x1000, 0x1000, &err), -EINVAL);
	expect_error(&err, "MIG_RP_MSG_REQ_PAGES has no previous block");
	pc_req_queue_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_check),
		cmocka_unit_test(test_advise),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_discard_range_check),
		cmocka_unit_test(test_packaged),
		cmocka_unit_test(test_recv_bitmap_cmd),
		cmocka_unit_test(test_incoming_states),
		cmocka_unit_test(test_rp_roundtrips),
		cmocka_unit_test(test_rp_hostile),
		cmocka_unit_test(test_recv_bitmap_body),
		cmocka_unit_test(test_req_validate),
		cmocka_unit_test(test_req_queue_flood),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
