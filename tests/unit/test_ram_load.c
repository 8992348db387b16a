/* test_ram_load.c — the destination's loaders over in-memory channels:
 * multifd/loadvm.c + multifd/ram_load.c (valid streams land the right bytes
 * at the right offsets; every malformed stream fails with QEMU's exact
 * message; return-path replies; sync points) and multifd/mfd_recv.c
 * (init checks, packet checks, page landing, the SYNC barrier). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/byteorder.h"
#include "multifd/loadvm.h"
#include "multifd/mfd_recv.h"
#include "multifd/packet.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "socket/channel.h"
#include "tests/unit/stream_testutil.h"

#define PG 4096u
#define BLK_SIZE (16 * PG) /* block "ram" */
#define BLK2_SIZE (4 * PG) /* block "vga" */

/* ---- an in-memory channel ------------------------------------------------ */

struct mem_chan {
	struct channel ch; /* first: the ops get &ch */
	uint8_t *in;
	size_t in_len, rpos;
	uint8_t out[256]; /* what the loader wrote (return path) */
	size_t out_len;
	bool shut;
	bool owned; /* close() frees it (channels given to mfd_recv) */
};

static struct mem_chan *mem_of(struct channel *ch)
{
	return (struct mem_chan *)ch;
}

static ssize_t mem_readv(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	struct mem_chan *m = mem_of(ch);
	size_t total = 0;

	if (m->shut)
		return -ECANCELED;
	for (int i = 0; i < iovcnt && m->rpos < m->in_len; i++) {
		size_t n = iov[i].iov_len;

		if (n > m->in_len - m->rpos)
			n = m->in_len - m->rpos;
		memcpy(iov[i].iov_base, m->in + m->rpos, n);
		m->rpos += n;
		total += n;
	}
	return (ssize_t)total;
}

static ssize_t mem_writev(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	struct mem_chan *m = mem_of(ch);
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++) {
		assert_true(m->out_len + iov[i].iov_len <= sizeof(m->out));
		memcpy(m->out + m->out_len, iov[i].iov_base, iov[i].iov_len);
		m->out_len += iov[i].iov_len;
		total += iov[i].iov_len;
	}
	return (ssize_t)total;
}

static void mem_shutdown(struct channel *ch)
{
	mem_of(ch)->shut = true;
}

static void mem_close(struct channel *ch)
{
	struct mem_chan *m = mem_of(ch);

	if (m->owned) {
		free(m->in);
		free(m);
	}
}

static const struct channel_ops mem_ops = {
	.name = "mem",
	.writev = mem_writev,
	.readv = mem_readv,
	.shutdown = mem_shutdown,
	.close = mem_close,
};

static struct mem_chan *mem_new(const void *data, size_t len)
{
	struct mem_chan *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->ch.ops = &mem_ops;
	m->ch.fd = -1;
	m->in = malloc(len ? len : 1);
	assert_non_null(m->in);
	memcpy(m->in, data, len);
	m->in_len = len;
	return m;
}

static void mem_free(struct mem_chan *m)
{
	free(m->in);
	free(m);
}

static void sb_header(struct sb *b)
{
	sb_be32(b, QEVM_MAGIC);
	sb_be32(b, QEVM_VERSION);
	sb_u8(b, VMS_CONFIGURATION);
	sb_be32(b, 4);
	sb_put(b, "none", 4);
}

static void sb_start(struct sb *b, uint8_t type, uint32_t id, const char *idstr,
		     uint32_t instance, uint32_t version)
{
	sb_u8(b, type);
	sb_be32(b, id);
	sb_str8(b, idstr);
	sb_be32(b, instance);
	sb_be32(b, version);
}

static void sb_short(struct sb *b, uint8_t type, uint32_t id)
{
	sb_u8(b, type);
	sb_be32(b, id);
}

static void sb_footer(struct sb *b, uint32_t id)
{
	sb_u8(b, VMS_SECTION_FOOTER);
	sb_be32(b, id);
}

/* START ram with both blocks, EOS, footer. */
static void sb_ram_start(struct sb *b)
{
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, (uint64_t)(BLK_SIZE + BLK2_SIZE) | 0x04);
	sb_str8(b, "ram");
	sb_be64(b, BLK_SIZE);
	sb_str8(b, "vga");
	sb_be64(b, BLK2_SIZE);
	sb_be64(b, 0x10);
	sb_footer(b, 1);
}

static void sb_close_ram(struct sb *b)
{
	sb_be64(b, 0x10);
	sb_footer(b, 1);
}

static void sb_globalstate(struct sb *b, const char *runstate)
{
	uint8_t body[100] = {0};

	sb_start(b, VMS_SECTION_FULL, 3, "globalstate", 0, 1);
	sb_be32(b, (uint32_t)strlen(runstate) + 1);
	memcpy(body, runstate, strlen(runstate));
	sb_put(b, body, sizeof(body));
	sb_footer(b, 3);
}

static void sb_tail(struct sb *b, const char *runstate)
{
	uint8_t zeros[24] = {0};

	sb_start(b, VMS_SECTION_FULL, 0, "timer", 0, 2);
	sb_put(b, zeros, sizeof(zeros));
	sb_footer(b, 0);
	sb_globalstate(b, runstate);
	sb_u8(b, VMS_EOF);
	sb_u8(b, VMS_VMDESCRIPTION);
	sb_be32(b, 2);
	sb_put(b, "{}", 2);
}

/* ---- the fixture --------------------------------------------------------- */

struct fixture {
	struct guest *g;
	struct ram_block *ram, *vga;
	struct ram_load_opts ro;
	bool switchover_ack;
	int syncs;    /* sync callback calls */
	int sync_ret; /* what the callback returns */
	struct loadvm ld;
	struct mem_chan *m;
	struct sb b;
};

static struct ram_block *add_block(struct guest *g, const char *name,
				   uint64_t size)
{
	struct ram_block_config cfg = {
		.name = name,
		.size = size,
		.backing = RAM_BACKING_ANON,
	};
	struct mig_error *err = NULL;
	struct ram_block *b = ram_block_new(&cfg, &err);

	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
	return b;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->g = guest_new(1, GUEST_RUNSTATE_INMIGRATE);
	fx->ram = add_block(fx->g, "ram", BLK_SIZE);
	fx->vga = add_block(fx->g, "vga", BLK2_SIZE);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	guest_free(fx->g);
	free(fx->b.p);
	if (fx->m)
		mem_free(fx->m);
	free(fx);
	return 0;
}

static int count_sync(void *opaque, struct mig_error **errp)
{
	struct fixture *fx = opaque;

	fx->syncs++;
	if (fx->sync_ret)
		mig_error_setg(errp, "sync failed");
	return fx->sync_ret;
}

/* Loads fx->b; returns loadvm_run()'s result with *errp. */
static int run(struct fixture *fx, struct mig_error **errp)
{
	struct vms_opts vo = {
		.send_configuration = true,
		.send_section_footer = true,
		.store_global_state = true,
	};
	struct ram_load *rl = ram_load_new(fx->g, &fx->ro);
	struct qfile *f;
	int ret;

	assert_non_null(rl);
	ram_load_set_sync(rl, count_sync, fx);
	if (fx->m)
		mem_free(fx->m);
	fx->m = mem_new(fx->b.p, fx->b.len);
	f = qfile_reader_new(&fx->m->ch);
	assert_non_null(f);
	loadvm_init(&fx->ld, f, rl, &vo, fx->switchover_ack);
	ret = loadvm_run(&fx->ld, errp);
	qfile_free(f);
	ram_load_free(rl);
	return ret;
}

static void expect_ok(struct fixture *fx)
{
	struct mig_error *err = NULL;
	int ret = run(fx, &err);

	if (ret)
		fail_msg("unexpected error: %s", err ? err->desc : "?");
}

static void expect_error(struct fixture *fx, const char *desc)
{
	struct mig_error *err = NULL;

	assert_true(run(fx, &err) < 0);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void assert_filled(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			fail_msg("byte %zu is 0x%02x, expected 0x%02x", i, p[i],
				 v);
}

/* header + ram START, the prefix of most malformed cases */
static void prefix(struct fixture *fx)
{
	sb_header(&fx->b);
	sb_ram_start(&fx->b);
}

/* ---- valid streams ------------------------------------------------------- */

static void test_valid_stream(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	memset(fx->ram->host + 3 * PG, 0x55, PG); /* to be zeroed */
	prefix(fx);
	sb_short(b, VMS_SECTION_PART, 1);
	sb_page(b, 0, "ram", 0xa1);
	sb_page(b, 2 * PG, NULL, 0xa2);
	sb_page(b, 3 * PG, NULL, 0xa3);
	sb_zero(b, 3 * PG, NULL); /* written, then zero: cleared */
	sb_page(b, 15 * PG, NULL, 0xaf);
	sb_close_ram(b);
	sb_short(b, VMS_SECTION_END, 1);
	sb_page(b, PG, "vga", 0xb1);
	sb_zero(b, 2 * PG, NULL);
	sb_close_ram(b);
	sb_tail(b, "running");
	expect_ok(fx);
	assert_filled(fx->ram->host, PG, 0xa1);
	assert_filled(fx->ram->host + PG, PG, 0);
	assert_filled(fx->ram->host + 2 * PG, PG, 0xa2);
	assert_filled(fx->ram->host + 3 * PG, PG, 0);
	assert_filled(fx->ram->host + 15 * PG, PG, 0xaf);
	assert_filled(fx->vga->host, PG, 0);
	assert_filled(fx->vga->host + PG, PG, 0xb1);
	assert_int_equal(fx->ld.src_runstate, GUEST_RUNSTATE_RUNNING);
	assert_int_equal(loadvm_get_stage(&fx->ld), LOADVM_STAGE_DONE);
	assert_int_equal(fx->syncs, 0);
	assert_int_equal(fx->m->out_len, 0); /* no return path */
}

/* CONTINUE refers to the last block of the stream, across sections. */
static void test_continue_across_sections(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	prefix(fx);
	sb_short(b, VMS_SECTION_PART, 1);
	sb_page(b, 0, "vga", 0x11);
	sb_close_ram(b);
	sb_short(b, VMS_SECTION_PART, 1);
	sb_page(b, 3 * PG, NULL, 0x33);
	sb_close_ram(b);
	sb_tail(b, "paused");
	expect_ok(fx);
	assert_filled(fx->vga->host, PG, 0x11);
	assert_filled(fx->vga->host + 3 * PG, PG, 0x33);
	assert_filled(fx->ram->host + 3 * PG, PG, 0);
	assert_int_equal(fx->ld.src_runstate, GUEST_RUNSTATE_PAUSED);
}

/* A zero page for RAM that never received data does not touch it. */
static void test_zero_page_untouched(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;
	unsigned char vec[BLK_SIZE / PG];

	prefix(fx);
	sb_short(b, VMS_SECTION_PART, 1);
	for (unsigned i = 0; i < BLK_SIZE / PG; i++)
		sb_zero(b, i * PG, i ? NULL : "ram");
	sb_close_ram(b);
	sb_tail(b, "running");
	expect_ok(fx);
	assert_int_equal(mincore(fx->ram->host, BLK_SIZE, vec), 0);
	for (unsigned i = 0; i < BLK_SIZE / PG; i++)
		assert_int_equal(vec[i] & 1, 0);
}

static void test_no_globalstate_no_vmdesc(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	prefix(fx);
	sb_u8(b, VMS_EOF);
	expect_ok(fx);
	assert_int_equal(fx->ld.src_runstate, -1);
}

static void test_truncated_vmdesc_is_not_fatal(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	prefix(fx);
	sb_u8(b, VMS_EOF);
	sb_u8(b, VMS_VMDESCRIPTION);
	sb_be32(b, 1000);
	sb_put(b, "{", 1);
	expect_ok(fx);
}

static void test_other_qemu_runstate(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_tail(&fx->b, "suspended");
	expect_ok(fx);
	assert_int_equal(fx->ld.src_runstate, GUEST_RUNSTATE__MAX);
}

static void test_switchover_start_and_flush(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	fx->ro.multifd = true;
	prefix(fx);
	sb_u8(b, VMS_COMMAND);
	sb_be16(b, MIG_CMD_SWITCHOVER_START);
	sb_be16(b, 0);
	sb_short(b, VMS_SECTION_END, 1);
	sb_be64(b, 0x200);
	sb_close_ram(b);
	sb_tail(b, "running");
	expect_ok(fx);
	assert_int_equal(fx->syncs, 1); /* 0x200 only: EOS does not sync */
}

static void test_legacy_sync_at_eos(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	fx->ro.multifd = true;
	fx->ro.flush_after_each_section = true;
	prefix(fx); /* 1 EOS */
	sb_short(b, VMS_SECTION_END, 1);
	sb_close_ram(b); /* 2 */
	sb_tail(b, "running");
	expect_ok(fx);
	assert_int_equal(fx->syncs, 2);
}

static void test_flush_without_multifd_is_noop(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	prefix(fx);
	sb_short(b, VMS_SECTION_END, 1);
	sb_be64(b, 0x200);
	sb_close_ram(b);
	sb_tail(b, "running");
	expect_ok(fx);
	assert_int_equal(fx->syncs, 0);
}

static void test_sync_failure(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	fx->ro.multifd = true;
	fx->sync_ret = -EPIPE;
	prefix(fx);
	sb_short(b, VMS_SECTION_END, 1);
	sb_be64(b, 0x200);
	expect_error(fx, "sync failed");
}

static void test_x_ignore_shared_gpa(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	fx->ro.x_ignore_shared = true;
	sb_header(b);
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, (uint64_t)BLK_SIZE | 0x04);
	sb_str8(b, "ram");
	sb_be64(b, BLK_SIZE);
	sb_be64(b, 0); /* GPA */
	sb_close_ram(b);
	sb_u8(b, VMS_EOF);
	expect_ok(fx);
}

/* ---- return path --------------------------------------------------------- */

static void test_return_path(void **state)
{
	static const uint8_t want[] = {
		0, 7, 0, 0,			    /* SWITCHOVER_ACK */
		0, 2, 0, 4, 0x12, 0x34, 0x56, 0x78, /* PONG */
		0, 1, 0, 4, 0,	  0,	0,    0,    /* SHUT(0) */
	};
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	fx->switchover_ack = true;
	prefix(fx);
	sb_u8(b, VMS_COMMAND);
	sb_be16(b, MIG_CMD_OPEN_RETURN_PATH);
	sb_be16(b, 0);
	sb_u8(b, VMS_COMMAND);
	sb_be16(b, MIG_CMD_PING);
	sb_be16(b, 4);
	sb_be32(b, 0x12345678);
	sb_tail(b, "running");
	expect_ok(fx);
	assert_int_equal(fx->m->out_len, sizeof(want));
	assert_memory_equal(fx->m->out, want, sizeof(want));
}

/* ---- malformed main streams ---------------------------------------------- */

static void test_bad_magic(void **state)
{
	struct fixture *fx = *state;

	sb_be32(&fx->b, 0x11223344);
	sb_be32(&fx->b, 3);
	expect_error(fx, "Not a migration stream");
}

static void test_unknown_section(void **state)
{
	struct fixture *fx = *state;

	sb_header(&fx->b);
	sb_start(&fx->b, VMS_SECTION_FULL, 7, "virtio-net", 0, 1);
	expect_error(fx, "Unknown savevm section or instance 'virtio-net' 0. "
			 "Make sure that your current VM setup matches your "
			 "saved VM setup, including any hotplugged devices");
}

static void test_unknown_instance(void **state)
{
	struct fixture *fx = *state;

	sb_header(&fx->b);
	sb_start(&fx->b, VMS_SECTION_START, 1, "ram", 1, 4);
	expect_error(fx, "Unknown savevm section or instance 'ram' 1. Make "
			 "sure that your current VM setup matches your saved "
			 "VM setup, including any hotplugged devices");
}

static void test_ram_version(void **state)
{
	struct fixture *fx = *state;

	sb_header(&fx->b);
	sb_start(&fx->b, VMS_SECTION_START, 1, "ram", 0, 5);
	expect_error(fx, "savevm: unsupported version 5 for 'ram' v4");
}

static void test_ram_old_version(void **state)
{
	struct fixture *fx = *state;

	sb_header(&fx->b);
	sb_start(&fx->b, VMS_SECTION_START, 1, "ram", 0, 3);
	expect_error(fx, "savevm: unsupported version 3 for 'ram' v4");
}

static void test_unknown_part_section(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 9);
	expect_error(fx, "Unknown savevm section 9");
}

static void test_unknown_section_type(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_u8(&fx->b, 0x09);
	expect_error(fx, "Unknown savevm section type 9");
}

static void test_missing_footer(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	sb_header(b);
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, 0x04);
	sb_be64(b, 0x10);
	sb_footer(b, 2);
	expect_error(fx, "Missing section footer for section 1");
}

static void test_mem_size_unknown_block(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	sb_header(b);
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, (uint64_t)BLK_SIZE | 0x04);
	sb_str8(b, "pc.ram");
	sb_be64(b, BLK_SIZE);
	expect_error(fx, "Unknown ramblock \"pc.ram\", cannot accept "
			 "migration");
}

static void test_mem_size_length_mismatch(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	sb_header(b);
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, (uint64_t)2 * BLK_SIZE | 0x04);
	sb_str8(b, "ram");
	sb_be64(b, 2 * BLK_SIZE);
	expect_error(fx, "Size mismatch: ram: 0x20000 != 0x10000: "
			 "Invalid argument");
}

/* QEMU compares host-page-aligned lengths. */
static void test_mem_size_aligned_compare(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	sb_header(b);
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, (uint64_t)BLK_SIZE | 0x04);
	sb_str8(b, "ram");
	sb_be64(b, BLK_SIZE - 100);
	sb_str8(b, "vga");
	sb_be64(b, 100);
	expect_error(fx, "Size mismatch: vga: 0x1000 != 0x4000: "
			 "Invalid argument");
}

static void test_mem_size_sum(void **state)
{
	struct fixture *fx = *state;
	struct sb *b = &fx->b;

	sb_header(b);
	sb_start(b, VMS_SECTION_START, 1, "ram", 0, 4);
	sb_be64(b, (uint64_t)BLK2_SIZE | 0x04);
	sb_str8(b, "ram");
	sb_be64(b, BLK_SIZE);
	expect_error(fx, "RAM block lengths do not add up to the announced "
			 "RAM size 0x4000");
}

static void test_page_offset_outside(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_page(&fx->b, BLK2_SIZE, "vga", 1);
	expect_error(fx, "Illegal RAM offset 4000");
	assert_filled(fx->vga->host, BLK2_SIZE, 0);
}

static void test_page_huge_offset(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_be64(&fx->b, 0xfffffffffffff000ull | 0x08);
	sb_str8(&fx->b, "ram");
	expect_error(fx, "Illegal RAM offset fffffffffffff000");
}

static void test_zero_offset_outside(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_zero(&fx->b, BLK_SIZE, "ram");
	expect_error(fx, "Illegal RAM offset 10000");
}

static void test_page_unknown_block(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_page(&fx->b, 0, "nope", 1);
	expect_error(fx, "Can't find block nope");
}

static void test_continue_without_block(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_page(&fx->b, 0, NULL, 1);
	expect_error(fx, "Ack, bad migration stream!");
}

static void test_zero_fill_byte(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_be64(&fx->b, 0x02);
	sb_str8(&fx->b, "ram");
	sb_u8(&fx->b, 7);
	expect_error(fx, "Found a zero page with value 7");
}

static void check_flags(struct fixture *fx, uint64_t flags, const char *desc)
{
	free(fx->b.p);
	memset(&fx->b, 0, sizeof(fx->b));
	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_be64(&fx->b, flags);
	sb_str8(&fx->b, "ram");
	sb_u8(&fx->b, 0);
	expect_error(fx, desc);
}

static void test_unknown_flags(void **state)
{
	struct fixture *fx = *state;

	check_flags(fx, 0x40, "Unknown combination of migration flags: 0x40");
	check_flags(fx, 0x80, "Unknown combination of migration flags: 0x80");
	check_flags(fx, 0x100, "Unknown combination of migration flags: 0x100");
	check_flags(fx, 0x800, "Unknown combination of migration flags: 0x800");
	check_flags(fx, 0x01, "Unknown combination of migration flags: 0x1");
	check_flags(fx, 0x00, "Unknown combination of migration flags: 0x0");
	check_flags(fx, 0x0a, "Unknown combination of migration flags: 0xa");
	check_flags(fx, 0x14, "Unknown combination of migration flags: 0x14");
}

static void test_truncated_page(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_short(&fx->b, VMS_SECTION_PART, 1);
	sb_page(&fx->b, 0, "ram", 1);
	fx->b.len -= 10;
	expect_error(fx, "migration stream ended while reading a RAM record");
}

static void test_stream_ends_at_boundary(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	expect_error(fx, "migration stream ended while reading the next "
			 "section");
}

static void test_unknown_command(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_u8(&fx->b, VMS_COMMAND);
	sb_be16(&fx->b, 12);
	sb_be16(&fx->b, 0);
	expect_error(fx, "MIG_CMD 0xc unknown (len 0x0)");
}

static void test_invalid_command(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_u8(&fx->b, VMS_COMMAND);
	sb_be16(&fx->b, 0);
	sb_be16(&fx->b, 3);
	expect_error(fx, "MIG_CMD 0x0 unknown (len 0x3)");
}

static void test_command_bad_length(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_u8(&fx->b, VMS_COMMAND);
	sb_be16(&fx->b, MIG_CMD_PING);
	sb_be16(&fx->b, 8);
	expect_error(fx, "PING received with bad length - expecting 4, got 8");
}

static void test_ping_without_return_path(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_u8(&fx->b, VMS_COMMAND);
	sb_be16(&fx->b, MIG_CMD_PING);
	sb_be16(&fx->b, 4);
	sb_be32(&fx->b, 42);
	expect_error(fx, "CMD_PING (0x2a) received with no return path");
}

static void test_postcopy_command(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_u8(&fx->b, VMS_COMMAND);
	sb_be16(&fx->b, MIG_CMD_POSTCOPY_ADVISE);
	sb_be16(&fx->b, 16);
	sb_be64(&fx->b, PG);
	sb_be64(&fx->b, PG);
	/* postcopy-ram is off here (multifd/loadvm_postcopy.c) */
	expect_error(fx, "RAM postcopy is disabled but have 16 byte advise");
}

static void test_bad_runstate(void **state)
{
	struct fixture *fx = *state;

	prefix(fx);
	sb_globalstate(&fx->b, "bogus");
	expect_error(fx, "invalid parameter value: bogus");
}

static void test_too_many_sections(void **state)
{
	struct fixture *fx = *state;
	uint8_t zeros[24] = {0};

	sb_header(&fx->b);
	for (uint32_t id = 100; id < 120; id++) {
		sb_start(&fx->b, VMS_SECTION_FULL, id, "timer", 0, 2);
		sb_put(&fx->b, zeros, sizeof(zeros));
		sb_footer(&fx->b, id);
	}
	expect_error(fx, "Too many sections in the migration stream");
}

/* ---- multifd channels ---------------------------------------------------- */

struct mfd_fixture {
	struct ram_load *rl;
	struct mfd_recv *r;
	struct mig_error *failed; /* what the fail callback got */
	int nfail;
	struct sb b;
};

static void on_fail(void *opaque, struct mig_error *err)
{
	struct mfd_fixture *mf = opaque;

	mf->nfail++;
	mig_error_propagate(&mf->failed, err);
}

static void mfd_setup(struct fixture *fx, struct mfd_fixture *mf,
		      unsigned channels, bool noop)
{
	struct ram_load_opts ro = {.multifd = true};
	struct mfd_recv_opts mo = {.channels = channels, .sync_noop = noop};

	memset(mf, 0, sizeof(*mf));
	memset(mo.uuid, 0xab, sizeof(mo.uuid));
	mf->rl = ram_load_new(fx->g, &ro);
	assert_non_null(mf->rl);
	mf->r = mfd_recv_new(&mo, mf->rl, on_fail, mf);
	assert_non_null(mf->r);
}

static void mfd_teardown(struct mfd_fixture *mf)
{
	mfd_recv_free(mf->r);
	ram_load_free(mf->rl);
	mig_error_free(mf->failed);
	free(mf->b.p);
}

static void sb_packet(struct sb *b, uint32_t flags, const char *block,
		      uint32_t normal, uint32_t zero, const uint64_t *offs,
		      uint32_t next)
{
	struct mfd_packet p = {0};
	uint8_t buf[MFD_PACKET_SIZE];

	p.flags = flags;
	p.pages_alloc = normal + zero ? MFD_PAGE_COUNT : 0;
	p.normal_pages = normal;
	p.zero_pages = zero;
	p.next_packet_size = next;
	snprintf(p.ramblock, sizeof(p.ramblock), "%s", block);
	for (uint32_t i = 0; i < normal + zero; i++)
		p.offset[i] = offs[i];
	mfd_packet_encode(&p, buf);
	sb_put(b, buf, sizeof(buf));
}

static int run_channel(struct mfd_fixture *mf, struct mig_error **errp)
{
	struct mem_chan *m = mem_new(mf->b.p, mf->b.len);
	int ret = mfd_recv_run_channel(mf->r, 0, &m->ch, errp);

	mem_free(m);
	return ret;
}

static void channel_error(struct mfd_fixture *mf, const char *desc)
{
	struct mig_error *err = NULL;

	assert_true(run_channel(mf, &err) < 0);
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void test_mfd_pages(void **state)
{
	struct fixture *fx = *state;
	struct mfd_fixture mf;
	uint64_t offs[] = {4 * PG, 5 * PG, 9 * PG, 3 * PG, 6 * PG};
	uint8_t data[3 * PG];
	struct mig_error *err = NULL;

	mfd_setup(fx, &mf, 2, true);
	/* page 3 gets data, then a zero page clears it */
	sb_packet(&mf.b, 0, "ram", 1, 0, &offs[3], PG);
	memset(data, 0x77, PG);
	sb_put(&mf.b, data, PG);
	memset(data, 0xc4, PG);
	memset(data + PG, 0xc5, PG);
	memset(data + 2 * PG, 0xc9, PG);
	sb_packet(&mf.b, 0, "ram", 3, 2, offs, 3 * PG);
	sb_put(&mf.b, data, sizeof(data));
	/* 7.2's stale SYNC: no pages, yet a next_packet_size: no payload */
	sb_packet(&mf.b, MFD_FLAG_SYNC, "ram", 0, 0, offs, 4 * PG);
	offs[0] = 0;
	sb_packet(&mf.b, MFD_FLAG_SYNC, "vga", 1, 0, offs, PG);
	memset(data, 0xd0, PG);
	sb_put(&mf.b, data, PG);
	assert_int_equal(run_channel(&mf, &err), 0);
	assert_null(err);
	assert_filled(fx->ram->host + 4 * PG, PG, 0xc4);
	assert_filled(fx->ram->host + 5 * PG, PG, 0xc5);
	assert_filled(fx->ram->host + 9 * PG, PG, 0xc9);
	assert_filled(fx->ram->host + 3 * PG, PG, 0);
	assert_filled(fx->vga->host, PG, 0xd0);
	assert_int_equal(ram_load_normal_pages(mf.rl), 5);
	assert_int_equal(ram_load_zero_pages(mf.rl), 2);
	mfd_teardown(&mf);
}

static void test_mfd_packet_errors(void **state)
{
	struct fixture *fx = *state;
	struct mfd_fixture mf;
	uint64_t offs[2] = {0, 0};
	uint8_t page[PG] = {0};

	mfd_setup(fx, &mf, 2, true);
	sb_packet(&mf.b, 0, "nope", 1, 0, offs, PG);
	channel_error(&mf, "multifd: unknown ram block nope");
	mf.b.len = 0;
	offs[0] = BLK_SIZE;
	sb_packet(&mf.b, 0, "ram", 1, 0, offs, PG);
	channel_error(&mf, "multifd: offset too long 65536 (max 10000)");
	mf.b.len = 0;
	offs[0] = 0;
	offs[1] = BLK2_SIZE;
	sb_packet(&mf.b, 0, "vga", 1, 1, offs, PG);
	channel_error(&mf, "multifd: offset too long 16384 (max 4000)");
	mf.b.len = 0;
	offs[0] = 100;
	sb_packet(&mf.b, 0, "ram", 1, 0, offs, PG);
	channel_error(&mf, "multifd: offset 100 is not page aligned");
	mf.b.len = 0;
	offs[0] = 0;
	sb_packet(&mf.b, MFD_FLAG_ZLIB, "ram", 1, 0, offs, PG);
	channel_error(&mf, "multifd 0: flags received 2 flags expected 0");
	mf.b.len = 0;
	sb_packet(&mf.b, 0, "ram", 2, 0, offs, 2 * PG);
	sb_put(&mf.b, page, PG); /* one of two pages */
	channel_error(&mf, "Unexpected end-of-file before all data were read");
	mf.b.len = 0;
	sb_packet(&mf.b, 0, "ram", 1, 0, offs, PG);
	mf.b.len = 100;
	channel_error(&mf, "multifd: unexpected EOF after packet header");
	mf.b.len = 5;
	channel_error(&mf, "Unexpected end-of-file before all data were read");
	assert_int_equal(mf.nfail, 0); /* run_channel reports to its caller */
	assert_filled(fx->ram->host, BLK_SIZE, 0);
	mfd_teardown(&mf);
}

static void test_mfd_init_checks(void **state)
{
	struct fixture *fx = *state;
	struct mfd_fixture mf;
	struct mfd_init in = {.id = 0};
	uint8_t buf[MFD_INIT_SIZE];
	struct mig_error *err = NULL;
	unsigned id;

	mfd_setup(fx, &mf, 2, true);
	memset(in.uuid, 0xab, sizeof(in.uuid));
	mfd_init_encode(&in, buf);
	assert_int_equal(mfd_recv_accept_init(mf.r, buf, &id, &err), 0);
	assert_int_equal(id, 0);
	assert_true(mfd_recv_accept_init(mf.r, buf, &id, &err) < 0);
	assert_string_equal(err->desc,
			    "multifd: received id '0' already setup'");
	mig_error_free(err);
	err = NULL;
	in.id = 2;
	mfd_init_encode(&in, buf);
	assert_true(mfd_recv_accept_init(mf.r, buf, &id, &err) < 0);
	assert_non_null(err);
	mig_error_free(err);
	err = NULL;
	in.id = 1;
	in.uuid[15] = 0;
	mfd_init_encode(&in, buf);
	assert_true(mfd_recv_accept_init(mf.r, buf, &id, &err) < 0);
	assert_non_null(strstr(err->desc, "multifd: received uuid"));
	mig_error_free(err);
	err = NULL;
	buf[0] = 0;
	assert_true(mfd_recv_accept_init(mf.r, buf, &id, &err) < 0);
	assert_non_null(strstr(err->desc, "magic"));
	mig_error_free(err);
	mfd_teardown(&mf);
}

/* Two threads each receive one SYNC; the sync releases them; at their
 * end of stream a second sync fails instead of hanging. */
static void test_mfd_barrier(void **state)
{
	struct fixture *fx = *state;
	struct mfd_fixture mf;
	struct mig_error *err = NULL;
	uint64_t offs[1] = {0};

	mfd_setup(fx, &mf, 2, false);
	sb_packet(&mf.b, MFD_FLAG_SYNC, "ram", 0, 0, offs, 0);
	for (unsigned i = 0; i < 2; i++) {
		struct mem_chan *m = mem_new(mf.b.p, mf.b.len);

		m->owned = true;
		assert_int_equal(mfd_recv_start(mf.r, i, &m->ch, &err), 0);
	}
	assert_true(mfd_recv_all_connected(mf.r));
	assert_int_equal(mfd_recv_sync(mf.r, &err), 0);
	assert_true(mfd_recv_sync(mf.r, &err) < 0);
	assert_non_null(strstr(err->desc, "was closed before its SYNC packet"));
	mig_error_free(err);
	assert_int_equal(mf.nfail, 0);
	mfd_teardown(&mf);
}

static void *shutdown_later(void *opaque)
{
	usleep(50 * 1000);
	mfd_recv_shutdown(opaque);
	return NULL;
}

/* A sync waiting for a channel that never connects is broken by a
 * shutdown (failure or daemon exit) instead of hanging. */
static void test_mfd_barrier_broken(void **state)
{
	struct fixture *fx = *state;
	struct mfd_fixture mf;
	struct mig_error *err = NULL;
	pthread_t t;

	mfd_setup(fx, &mf, 3, false);
	assert_false(mfd_recv_all_connected(mf.r));
	assert_true(mfd_recv_idle(mf.r));
	assert_int_equal(pthread_create(&t, NULL, shutdown_later, mf.r), 0);
	assert_int_equal(mfd_recv_sync(mf.r, &err), -ECANCELED);
	mig_error_free(err);
	pthread_join(t, NULL);
	mfd_teardown(&mf);
}

/* A channel thread that meets a bad packet reports through the callback
 * (the migration's failure path), once. */
static void test_mfd_thread_failure(void **state)
{
	struct fixture *fx = *state;
	struct mfd_fixture mf;
	struct mig_error *err = NULL;
	uint64_t offs[1] = {0};
	struct mem_chan *m;

	mfd_setup(fx, &mf, 1, false);
	sb_packet(&mf.b, 0, "nope", 1, 0, offs, PG);
	m = mem_new(mf.b.p, mf.b.len);
	m->owned = true;
	assert_int_equal(mfd_recv_start(mf.r, 0, &m->ch, &err), 0);
	for (int i = 0; i < 500 && !mf.nfail; i++)
		usleep(1000);
	mfd_recv_free(mf.r);
	mf.r = NULL;
	assert_int_equal(mf.nfail, 1);
	assert_string_equal(mf.failed->desc, "multifd: unknown ram block nope");
	mfd_teardown(&mf);
}

/* A file-backed block may hold old data: zero pages clear it. */
static void test_file_block_zero_page(void **state)
{
	char path[] = "/tmp/test_ram_load_XXXXXX";
	uint8_t fill[BLK2_SIZE];
	struct ram_block_config cfg = {
		.name = "ram",
		.size = BLK2_SIZE,
		.backing = RAM_BACKING_FILE,
		.share = true,
	};
	struct ram_load_opts ro = {0};
	struct mig_error *err = NULL;
	struct ram_load *rl;
	struct ram_block *b;
	struct guest *g;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	memset(fill, 0x5a, sizeof(fill));
	assert_int_equal(write(fd, fill, sizeof(fill)), (ssize_t)sizeof(fill));
	close(fd);
	cfg.mem_path = path;
	g = guest_new(1, GUEST_RUNSTATE_INMIGRATE);
	b = ram_block_new(&cfg, &err);
	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
	rl = ram_load_new(g, &ro);
	ram_load_zero_page(rl, 0, PG);
	assert_filled(b->host + PG, PG, 0);
	assert_filled(b->host, PG, 0x5a);
	ram_load_free(rl);
	guest_free(g);
	unlink(path);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_valid_stream),
		T(test_continue_across_sections),
		T(test_zero_page_untouched),
		T(test_no_globalstate_no_vmdesc),
		T(test_truncated_vmdesc_is_not_fatal),
		T(test_other_qemu_runstate),
		T(test_switchover_start_and_flush),
		T(test_legacy_sync_at_eos),
		T(test_flush_without_multifd_is_noop),
		T(test_sync_failure),
		T(test_x_ignore_shared_gpa),
		T(test_return_path),
		T(test_bad_magic),
		T(test_unknown_section),
		T(test_unknown_instance),
		T(test_ram_version),
		T(test_ram_old_version),
		T(test_unknown_part_section),
		T(test_unknown_section_type),
		T(test_missing_footer),
		T(test_mem_size_unknown_block),
		T(test_mem_size_length_mismatch),
		T(test_mem_size_aligned_compare),
		T(test_mem_size_sum),
		T(test_page_offset_outside),
		T(test_page_huge_offset),
		T(test_zero_offset_outside),
		T(test_page_unknown_block),
		T(test_continue_without_block),
		T(test_zero_fill_byte),
		T(test_unknown_flags),
		T(test_truncated_page),
		T(test_stream_ends_at_boundary),
		T(test_unknown_command),
		T(test_invalid_command),
		T(test_command_bad_length),
		T(test_ping_without_return_path),
		T(test_postcopy_command),
		T(test_bad_runstate),
		T(test_too_many_sections),
		T(test_mfd_pages),
		T(test_mfd_packet_errors),
		T(test_mfd_init_checks),
		T(test_mfd_barrier),
		T(test_mfd_barrier_broken),
		T(test_mfd_thread_failure),
		T(test_file_block_zero_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
