/* test_ram_save_postcopy.c — the source's postcopy RAM pieces
 * (multifd/ram_save_postcopy.c): the discard bitmap as QEMU's DISCARD
 * commands (runs, <= 12 per command), requested pages sent once, the
 * received bitmap of a recovery (size and bits), release-ram. The stream
 * goes to a memfd through an fd channel and is parsed back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/byteorder.h"
#include "multifd/migstats.h"
#include "multifd/postcopy_proto.h"
#include "multifd/postcopy_req.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save.h"
#include "multifd/ram_save_postcopy.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"
#include "socket/fdchan.h"

#define NPAGES 256

struct fixture {
	struct guest *g;
	struct ram_block *b;
	int fd;
	struct channel *ch;
	struct qfile *f;
	struct ram_save *rs;
	struct mig_counters ctr;
	struct vms_opts vms;
};

static int setup(void **state)
{
	struct ram_block_config cfg = {.name = "ram",
				       .size = NPAGES * 4096ull,
				       .backing = RAM_BACKING_ANON};
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct ram_save_opts o = {.zero = RAM_ZERO_LEGACY};

	fx->g = guest_new(1, GUEST_RUNSTATE_RUNNING);
	fx->b = ram_block_new(&cfg, NULL);
	assert_non_null(fx->b);
	assert_int_equal(guest_add_block(fx->g, fx->b), 0);
	assert_int_equal(dirty_log_init(fx->g), 0);
	for (unsigned p = 0; p < NPAGES; p++)
		memset(fx->b->host + p * 4096ull, (int)(p + 1), 4096);
	fx->fd = memfd_create("stream", 0);
	assert_true(fx->fd >= 0);
	fx->ch = fdchan_new(-1, dup(fx->fd), 0, "memfd", NULL);
	assert_non_null(fx->ch);
	fx->f = qfile_writer_new(fx->ch);
	o.vms = &fx->vms;
	fx->vms.send_section_footer = true;
	fx->rs = ram_save_new(fx->g, fx->f, &o, &fx->ctr);
	assert_non_null(fx->rs);
	assert_int_equal(ram_save_setup(fx->rs, NULL), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	ram_save_free(fx->rs);
	qfile_free(fx->f);
	chan_close(fx->ch);
	close(fx->fd);
	guest_free(fx->g);
	free(fx);
	return 0;
}

/* Everything written so far, from offset from. */
static uint8_t *stream(struct fixture *fx, size_t from, size_t *len)
{
	off_t end;
	uint8_t *buf;

	assert_int_equal(qfile_flush(fx->f), 0);
	end = lseek(fx->fd, 0, SEEK_END);
	*len = (size_t)end - from;
	buf = malloc(*len + 1);
	assert_int_equal(pread(fx->fd, buf, *len, (off_t)from), (ssize_t)*len);
	return buf;
}

static bool never(void *opaque)
{
	(void)opaque;
	return false;
}

static void send_all(struct fixture *fx)
{
	while (ram_save_iterate(fx->rs, never, NULL, NULL) == 0)
		;
}

static void test_discard_runs(void **state)
{
	struct fixture *fx = *state;
	/* 14 runs: two commands (12 + 2); runs 3-5 and 250-255 */
	unsigned dirty[] = {3,	4,   5,	  10,  20,  30,	 40,  50,  60,	70, 80,
			    90, 100, 110, 120, 250, 251, 252, 253, 254, 255};
	size_t len, pos0;
	uint8_t *s;
	struct pc_discard d;
	struct pc_range r;

	send_all(fx);
	for (unsigned i = 0; i < sizeof(dirty) / sizeof(dirty[0]); i++)
		dirty_log_mark(fx->b, dirty[i] * 4096ull, 4096);
	assert_int_equal(qfile_flush(fx->f), 0);
	pos0 = (size_t)lseek(fx->fd, 0, SEEK_END);
	assert_int_equal(
		ram_save_postcopy_discard(fx->rs, false, NULL, NULL, NULL), 0);
	assert_int_equal(ram_save_pending_pages(fx->rs), 21);
	s = stream(fx, pos0, &len);
	/* 0x08, be16 cmd 6, be16 len, payload */
	assert_int_equal(s[0], VMS_COMMAND);
	assert_int_equal(mfd_load_be16(s + 1), MIG_CMD_POSTCOPY_RAM_DISCARD);
	assert_int_equal(
		pc_discard_decode(s + 5, mfd_load_be16(s + 3), &d, NULL), 0);
	assert_string_equal(d.name, "ram");
	assert_int_equal(d.count, 12);
	pc_discard_get(&d, 0, &r);
	assert_int_equal(r.start, 3 * 4096);
	assert_int_equal(r.length, 3 * 4096);
	{
		size_t second = 5 + mfd_load_be16(s + 3);

		assert_int_equal(s[second], VMS_COMMAND);
		assert_int_equal(
			pc_discard_decode(s + second + 5,
					  mfd_load_be16(s + second + 3), &d,
					  NULL),
			0);
		assert_int_equal(d.count, 2);
		pc_discard_get(&d, 1, &r);
		assert_int_equal(r.start, 250 * 4096);
		assert_int_equal(r.length, 6 * 4096);
		assert_int_equal(second + 5 + mfd_load_be16(s + second + 3),
				 len);
	}
	free(s);
}

static void test_requests_sent_once(void **state)
{
	struct fixture *fx = *state;
	struct pc_req r = {.block = 0, .start = 10 * 4096, .len = 2 * 4096};
	uint8_t *s;
	size_t len, pos0;
	int pf_fd = memfd_create("preempt", 0);
	struct channel *pch = fdchan_new(-1, dup(pf_fd), 0, "memfd", NULL);
	struct qfile *pf = qfile_writer_new(pch);

	assert_int_equal(
		ram_save_postcopy_discard(fx->rs, false, NULL, NULL, NULL), 0);
	assert_int_equal(ram_save_pending_pages(fx->rs), NPAGES);
	ram_save_postcopy_set_preempt(fx->rs, pf);
	assert_int_equal(ram_save_postcopy_send_req(fx->rs, &r), 2);
	assert_int_equal(ram_save_postcopy_send_req(fx->rs, &r), 0);
	assert_int_equal(ram_save_pending_pages(fx->rs), NPAGES - 2);
	/* first record names the block, the second continues it */
	pos0 = 0;
	len = (size_t)lseek(pf_fd, 0, SEEK_END);
	s = malloc(len);
	assert_int_equal(pread(pf_fd, s, len, 0), (ssize_t)len);
	assert_int_equal(mfd_load_be64(s), 10 * 4096 | RAM_SAVE_FLAG_PAGE);
	assert_int_equal(s[8], 3);
	assert_memory_equal(s + 9, "ram", 3);
	assert_int_equal(s[12], 11); /* page 10 holds byte 11 */
	assert_int_equal(mfd_load_be64(s + 12 + 4096),
			 11 * 4096 | RAM_SAVE_FLAG_PAGE |
				 RAM_SAVE_FLAG_CONTINUE);
	assert_int_equal(len, 12 + 4096 + 8 + 4096);
	(void)pos0;
	free(s);
	ram_save_postcopy_set_preempt(fx->rs, NULL);
	qfile_free(pf);
	chan_close(pch);
	close(pf_fd);
	/* the background stream skips them */
	send_all(fx);
	assert_int_equal(ram_save_pending_pages(fx->rs), 0);
}

static bool one_req(void *opaque, struct pc_req *out)
{
	int *left = opaque;

	if (!*left)
		return false;
	(*left)--;
	*out = (struct pc_req){.block = 0, .start = 200 * 4096, .len = 4096};
	return true;
}

static bool stop_soon(void *opaque)
{
	(void)opaque;
	return true;
}

/* Requested pages go first, ahead of the background scan, named. */
static void test_urgent_first(void **state)
{
	struct fixture *fx = *state;
	int left = 1;
	size_t len, pos0;
	uint8_t *s;

	assert_int_equal(qfile_flush(fx->f), 0);
	pos0 = (size_t)lseek(fx->fd, 0, SEEK_END);
	assert_int_equal(ram_save_postcopy_discard(fx->rs, false, one_req,
						   &left, NULL),
			 0);
	assert_int_equal(ram_save_postcopy_iterate(fx->rs, stop_soon, NULL,
						   NULL),
			 0);
	s = stream(fx, pos0, &len);
	/* the DISCARD command for 0..255, then PART header (1 + 4), then
	 * the requested page with its block name */
	assert_int_equal(s[0], VMS_COMMAND);
	{
		size_t part = 5 + mfd_load_be16(s + 3);

		assert_int_equal(s[part], VMS_SECTION_PART);
		assert_int_equal(mfd_load_be64(s + part + 5),
				 200 * 4096 | RAM_SAVE_FLAG_PAGE);
		assert_int_equal(s[part + 13], 3);
		/* then the scan from page 0, continuing the block */
		assert_int_equal(mfd_load_be64(s + part + 17 + 4096),
				 0 | RAM_SAVE_FLAG_PAGE |
					 RAM_SAVE_FLAG_CONTINUE);
	}
	assert_int_equal(ram_save_pending_pages(fx->rs), NPAGES - 1 - 15);
	free(s);
}

static void test_recv_bitmap(void **state)
{
	struct fixture *fx = *state;
	uint64_t size = pc_recv_bitmap_size(NPAGES * 4096ull, 4096);
	uint8_t *bits = calloc(1, size);
	struct mig_error *err = NULL;

	assert_int_equal(size, NPAGES / 8);
	assert_int_equal(
		ram_save_postcopy_discard(fx->rs, false, NULL, NULL, NULL), 0);
	send_all(fx);
	assert_int_equal(ram_save_pending_pages(fx->rs), 0);
	/* the destination got all but pages 0 and 77 */
	memset(bits, 0xff, size);
	bits[0] &= (uint8_t)~1;
	bits[77 / 8] &= (uint8_t) ~(1u << (77 % 8));
	assert_int_equal(
		ram_save_postcopy_recv_bitmap(fx->rs, "ram", bits, size, NULL),
		0);
	assert_int_equal(ram_save_pending_pages(fx->rs), 2);
	assert_int_equal(ram_save_postcopy_recv_bitmap(fx->rs, "ram", bits,
						       size + 8, &err),
			 -EINVAL);
	assert_string_equal(err->desc, "ramblock 'ram' bitmap size mismatch "
				       "(0x28 != 0x20)");
	mig_error_free(err);
	err = NULL;
	assert_int_equal(
		ram_save_postcopy_recv_bitmap(fx->rs, "nope", bits, size, &err),
		-ENOENT);
	assert_string_equal(err->desc, "MIG_RP_MSG_RECV_BITMAP has invalid "
				       "block name 'nope'");
	mig_error_free(err);
	free(bits);
}

static void test_release_ram(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(
		ram_save_postcopy_discard(fx->rs, true, NULL, NULL, NULL), 0);
	while (ram_save_postcopy_iterate(fx->rs, never, NULL, NULL) == 0)
		;
	/* sent in postcopy: freed (anonymous memory reads as zero again) */
	for (unsigned p = 0; p < NPAGES; p++)
		assert_int_equal(fx->b->host[p * 4096ull + 5], 0);
}

static void test_release_sent_at_switch(void **state)
{
	struct fixture *fx = *state;

	send_all(fx);
	dirty_log_mark(fx->b, 7 * 4096ull, 4096);
	assert_int_equal(
		ram_save_postcopy_discard(fx->rs, true, NULL, NULL, NULL), 0);
	ram_save_postcopy_release_sent(fx->rs);
	assert_int_equal(fx->b->host[6 * 4096ull], 0);
	assert_int_equal(fx->b->host[7 * 4096ull], 8); /* still to send */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_discard_runs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_requests_sent_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_urgent_first, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_recv_bitmap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_release_ram, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_release_sent_at_switch,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
