/* test_loadvm_postcopy.c — postcopy on the destination's loader
 * (multifd/loadvm_postcopy.c + ram_load.c's postcopy records) over
 * in-memory channels and real userfaultfd: ADVISE zaps, DISCARD, PACKAGED
 * with LISTEN/RUN, placement through UFFDIO_COPY/ZEROPAGE, the events, a
 * vCPU-like reader thread whose fault becomes REQ_PAGES_ID on the return
 * path, pause on a network error and recovery (RECV_BITMAP, RESUME ->
 * RESUME_ACK), the preempt channel's own CONTINUE state. Skipped where
 * userfaultfd is unavailable. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "guest/uffd.h"
#include "multifd/byteorder.h"
#include "multifd/loadvm.h"
#include "multifd/loadvm_priv.h"
#include "multifd/postcopy_proto.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "socket/channel.h"
#include "tests/unit/stream_testutil.h"

#define PG 4096u
#define BLK_SIZE (16 * PG)

/* ---- an in-memory channel (input fixed, output captured) ------------------
 */

struct mem_chan {
	struct channel ch;
	uint8_t *in;
	size_t in_len, rpos;
	pthread_mutex_t lock;
	uint8_t out[65536];
	size_t out_len;
};

static ssize_t mem_readv(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	struct mem_chan *m = (struct mem_chan *)ch;
	size_t total = 0;

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
	struct mem_chan *m = (struct mem_chan *)ch;
	size_t total = 0;

	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < iovcnt; i++) {
		assert_true(m->out_len + iov[i].iov_len <= sizeof(m->out));
		memcpy(m->out + m->out_len, iov[i].iov_base, iov[i].iov_len);
		m->out_len += iov[i].iov_len;
		total += iov[i].iov_len;
	}
	pthread_mutex_unlock(&m->lock);
	return (ssize_t)total;
}

/* What was written so far, read under the writer's lock. */
static size_t mem_out_len(struct mem_chan *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->out_len;
	pthread_mutex_unlock(&m->lock);
	return n;
}

static void mem_noop(struct channel *ch)
{
}

static const struct channel_ops mem_ops = {
	.name = "mem",
	.writev = mem_writev,
	.readv = mem_readv,
	.shutdown = mem_noop,
	.close = mem_noop,
};

static struct mem_chan *mem_new(const void *data, size_t len)
{
	struct mem_chan *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->ch.ops = &mem_ops;
	m->ch.fd = -1;
	m->in = malloc(len ? len : 1);
	memcpy(m->in, data, len);
	m->in_len = len;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void mem_free(struct mem_chan *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->in);
	free(m);
}

static void sb_cmd(struct sb *b, uint16_t cmd, const void *p, uint16_t len)
{
	sb_u8(b, VMS_COMMAND);
	sb_be16(b, cmd);
	sb_be16(b, len);
	sb_put(b, p, len);
}

/* ZERO records (CONTINUE) for pages first..last: what a source sends for
 * the pages it has not sent yet, so that the stream is complete. */
static void sb_zero_pages(struct sb *b, unsigned first, unsigned last)
{
	for (unsigned i = first; i <= last; i++)
		sb_zero(b, (uint64_t)i * PG, NULL);
}

static void sb_part(struct sb *b, uint8_t type)
{
	sb_u8(b, type);
	sb_be32(b, 1);
}

static void sb_close_ram(struct sb *b)
{
	sb_be64(b, 0x10);
	sb_u8(b, VMS_SECTION_FOOTER);
	sb_be32(b, 1);
}

/* Header, return path, ADVISE, ram START. */
static void sb_prefix(struct sb *b)
{
	uint8_t adv[16];

	sb_be32(b, QEVM_MAGIC);
	sb_be32(b, QEVM_VERSION);
	sb_u8(b, VMS_CONFIGURATION);
	sb_be32(b, 4);
	sb_put(b, "none", 4);
	sb_cmd(b, MIG_CMD_OPEN_RETURN_PATH, NULL, 0);
	mfd_store_be64(adv, PG);
	mfd_store_be64(adv + 8, PG);
	sb_cmd(b, MIG_CMD_POSTCOPY_ADVISE, adv, 16);
	sb_u8(b, VMS_SECTION_START);
	sb_be32(b, 1);
	sb_str8(b, "ram");
	sb_be32(b, 0);
	sb_be32(b, 4);
	sb_be64(b, (uint64_t)BLK_SIZE | 0x04);
	sb_str8(b, "ram");
	sb_be64(b, BLK_SIZE);
	sb_close_ram(b);
}

/* PACKAGED { LISTEN, [RUN] } */
static void sb_package(struct sb *b, bool run)
{
	struct sb in = {0};
	uint8_t len[4];

	sb_cmd(&in, MIG_CMD_POSTCOPY_LISTEN, NULL, 0);
	if (run)
		sb_cmd(&in, MIG_CMD_POSTCOPY_RUN, NULL, 0);
	else
		sb_u8(&in, VMS_EOF);
	mfd_store_be32(len, (uint32_t)in.len);
	sb_cmd(b, MIG_CMD_PACKAGED, len, 4);
	sb_put(b, in.p, in.len);
	free(in.p);
}

/* ---- the fixture --------------------------------------------------------- */

struct fixture {
	struct guest *g;
	struct ram_block *ram;
	struct ram_load *rl;
	struct loadvm ld;
	struct mem_chan *m, *m2;
	struct qfile *f, *f2;
	struct sb b, b2; /* main stream; the one after a pause */
	int events[8];
	int nevents;
	bool recovering;
	int pauses;
};

static void no_fault(void *opaque, unsigned range, uint64_t offset,
		     uint32_t tid)
{
}

static bool uffd_works(void)
{
	struct uffd_config c = {.on_fault = no_fault};
	struct mig_error *err = NULL;
	struct uffd *u = uffd_open(&c, &err);

	mig_error_free(err);
	uffd_free(u);
	return u != NULL;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct ram_block_config cfg = {
		.name = "ram", .size = BLK_SIZE, .backing = RAM_BACKING_ANON};
	struct mig_error *err = NULL;

	assert_non_null(fx);
	fx->g = guest_new(1, GUEST_RUNSTATE_INMIGRATE);
	fx->ram = ram_block_new(&cfg, &err);
	assert_non_null(fx->ram);
	assert_int_equal(guest_add_block(fx->g, fx->ram), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	loadvm_fini(&fx->ld);
	qfile_free(fx->f);
	qfile_free(fx->f2);
	mem_free(fx->m);
	mem_free(fx->m2);
	ram_load_free(fx->rl);
	guest_free(fx->g);
	free(fx->b.p);
	free(fx->b2.p);
	free(fx);
	return 0;
}

static void on_event(void *opaque, enum loadvm_event ev)
{
	struct fixture *fx = opaque;

	if (fx->nevents < 8)
		fx->events[fx->nevents++] = (int)ev;
	if (ev == LOADVM_EV_RESUMED)
		fx->recovering = false;
}

static struct qfile *on_pause(void *opaque, struct mig_error *err)
{
	struct fixture *fx = opaque;

	mig_error_free(err);
	fx->pauses++;
	if (!fx->b2.len)
		return NULL;
	fx->m2 = mem_new(fx->b2.p, fx->b2.len);
	fx->f2 = qfile_reader_new(&fx->m2->ch);
	fx->recovering = true;
	return fx->f2;
}

static bool is_recovering(void *opaque)
{
	return ((struct fixture *)opaque)->recovering;
}

static void prepare(struct fixture *fx)
{
	struct vms_opts vo = {
		.send_configuration = true,
		.send_section_footer = true,
		.store_global_state = true,
	};
	struct ram_load_opts ro = {0};
	struct loadvm_postcopy_opts po = {
		.postcopy_ram = true,
		.nr_vcpus = 1,
		.notify = on_event,
		.pause = on_pause,
		.recovering = is_recovering,
		.opaque = fx,
	};

	fx->rl = ram_load_new(fx->g, &ro);
	assert_non_null(fx->rl);
	fx->m = mem_new(fx->b.p, fx->b.len);
	fx->f = qfile_reader_new(&fx->m->ch);
	loadvm_init(&fx->ld, fx->f, fx->rl, &vo, false);
	loadvm_set_postcopy(&fx->ld, &po);
}

/* prepare() and the header, for tests that step item by item */
static void prepare_items(struct fixture *fx)
{
	struct mig_error *err = NULL;

	prepare(fx);
	assert_int_equal(vms_get_header(fx->f, &fx->ld.vms, &err), 0);
}

static int run(struct fixture *fx, struct mig_error **errp)
{
	prepare(fx);
	return loadvm_run(&fx->ld, errp);
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

#define SKIP_WITHOUT_UFFD()                                                    \
	do {                                                                   \
		if (!uffd_works())                                             \
			skip();                                                \
	} while (0)

/* ---- tests -----------------------------------------------------------------
 */

static void test_complete_stream(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;
	uint8_t disc[3 + 3 + 16];

	SKIP_WITHOUT_UFFD();
	memset(fx->ram->host + 9 * PG, 0x77, PG); /* stale: ADVISE zaps */
	sb_prefix(&fx->b);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_page(&fx->b, 0, "ram", 0xa0);
	sb_page(&fx->b, PG, NULL, 0xa1);
	sb_close_ram(&fx->b);
	disc[0] = 0;
	disc[1] = 3;
	memcpy(disc + 2, "ram", 3);
	disc[5] = 0;
	mfd_store_be64(disc + 6, 0);
	mfd_store_be64(disc + 14, PG);
	sb_cmd(&fx->b, MIG_CMD_POSTCOPY_RAM_DISCARD, disc, sizeof(disc));
	sb_package(&fx->b, true);
	sb_part(&fx->b, VMS_SECTION_END);
	sb_page(&fx->b, 0, NULL, 0xb0); /* CONTINUE from precopy */
	sb_zero(&fx->b, 2 * PG, NULL);
	sb_page(&fx->b, 15 * PG, NULL, 0xbf);
	sb_zero_pages(&fx->b, 3, 14); /* page 9 too: stale data zapped */
	sb_close_ram(&fx->b);
	sb_u8(&fx->b, VMS_EOF); /* no vmdesc after postcopy */
	if (run(fx, &err))
		fail_msg("unexpected error: %s", err->desc);
	assert_int_equal(loadvm_postcopy_state(&fx->ld), PC_INCOMING_END);
	assert_int_equal(fx->nevents, 2);
	assert_int_equal(fx->events[0], LOADVM_EV_LISTEN);
	assert_int_equal(fx->events[1], LOADVM_EV_RUN);
	assert_filled(fx->ram->host, PG, 0xb0);
	assert_filled(fx->ram->host + PG, PG, 0xa1);
	assert_filled(fx->ram->host + 2 * PG, PG, 0);
	assert_filled(fx->ram->host + 15 * PG, PG, 0xbf);
	assert_true(uffd_is_received(fx->ld.uffd, 0, 15 * PG));
	/* the return path ends with SHUT(0) */
	assert_int_equal(fx->m->out_len, 8);
	assert_memory_equal(fx->m->out, "\0\1\0\4\0\0\0\0", 8);
	assert_filled(fx->ram->host + 9 * PG, PG, 0);
}

struct reader {
	const volatile uint8_t *p;
	uint8_t seen;
};

static void *reader_thread(void *opaque)
{
	struct reader *r = opaque;

	r->seen = r->p[0];
	return NULL;
}

/* A thread faulting on a missing page: REQ_PAGES_ID on the return path;
 * the page placed later wakes it with the right content. */
static void test_fault_requests_page(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;
	struct reader r = {.p = NULL};
	pthread_t t;
	uint8_t want[4 + 16];
	bool eof = false;
	int ret;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_package(&fx->b, true);
	prepare_items(fx);
	/* load up to the end of the package by hand */
	while (loadvm_postcopy_state(&fx->ld) < PC_INCOMING_RUNNING) {
		ret = loadvm_load_item(&fx->ld, &eof, &err);
		assert_int_equal(ret, 0);
	}
	r.p = fx->ram->host + 5 * PG;
	pthread_create(&t, NULL, reader_thread, &r);
	for (int i = 0; i < 200 && mem_out_len(fx->m) < 20; i++)
		usleep(10000);
	mfd_store_be16(want, PC_RP_REQ_PAGES_ID);
	mfd_store_be16(want + 2, 16);
	mfd_store_be64(want + 4, 5 * PG);
	mfd_store_be32(want + 12, PG);
	want[16] = 3;
	memcpy(want + 17, "ram", 3);
	assert_int_equal(mem_out_len(fx->m), 20);
	assert_memory_equal(fx->m->out, want, 20);
	/* the page arrives on the "preempt channel" */
	struct sb pre = {0};
	sb_page(&pre, 5 * PG, "ram", 0x55);
	sb_be64(&pre, 0x10);
	struct mem_chan *pm = mem_new(pre.p, pre.len);
	struct qfile *pf = qfile_reader_new(&pm->ch);
	assert_int_equal(loadvm_load_preempt(&fx->ld, pf, &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(r.seen, 0x55);
	qfile_free(pf);
	mem_free(pm);
	free(pre.p);
}

/* A zero page of precopy counts as sent: it must be present after LISTEN
 * (a source does not answer requests for pages it sent), so reading it
 * neither faults nor requests anything. */
static void test_precopy_zero_page_present(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;
	struct reader r = {.p = NULL, .seen = 0xee};
	pthread_t t;
	bool eof = false;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_zero(&fx->b, 7 * PG, "ram");
	sb_close_ram(&fx->b);
	sb_package(&fx->b, true);
	prepare_items(fx);
	while (loadvm_postcopy_state(&fx->ld) < PC_INCOMING_RUNNING)
		assert_int_equal(loadvm_load_item(&fx->ld, &eof, &err), 0);
	r.p = fx->ram->host + 7 * PG;
	pthread_create(&t, NULL, reader_thread, &r);
	pthread_join(t, NULL); /* would hang if the page were missing */
	assert_int_equal(r.seen, 0);
	assert_int_equal(fx->m->out_len, 0); /* no request */
}

static void test_preempt_has_own_continue_state(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;
	bool eof = false;
	struct sb pre = {0};

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_page(&fx->b, 0, "ram", 1); /* main channel knows "ram" */
	sb_close_ram(&fx->b);
	sb_package(&fx->b, false);
	prepare_items(fx);
	while (loadvm_postcopy_state(&fx->ld) < PC_INCOMING_LISTENING)
		assert_int_equal(loadvm_load_item(&fx->ld, &eof, &err), 0);
	sb_page(&pre, 3 * PG, NULL, 2); /* CONTINUE on a fresh channel */
	struct mem_chan *pm = mem_new(pre.p, pre.len);
	struct qfile *pf = qfile_reader_new(&pm->ch);
	assert_int_equal(loadvm_load_preempt(&fx->ld, pf, &err), -EINVAL);
	assert_string_equal(err->desc, "Ack, bad migration stream!");
	mig_error_free(err);
	qfile_free(pf);
	mem_free(pm);
	free(pre.p);
}

/* The stream breaks after RUN: pause; the new stream asks for the
 * received bitmap, RESUMEs and finishes. */
static void test_pause_and_recover(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;
	uint64_t size = pc_recv_bitmap_size(BLK_SIZE, PG);
	const uint8_t *o;

	uint8_t disc[3 + 3 + 16] = {0, 3, 'r', 'a', 'm', 0};

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_part(&fx->b, VMS_SECTION_PART); /* precopy: pages 1, 2 */
	sb_page(&fx->b, PG, "ram", 1);
	sb_zero(&fx->b, 2 * PG, NULL);
	sb_close_ram(&fx->b);
	mfd_store_be64(disc + 6, 2 * PG); /* page 2 discarded again */
	mfd_store_be64(disc + 14, PG);
	sb_cmd(&fx->b, MIG_CMD_POSTCOPY_RAM_DISCARD, disc, sizeof(disc));
	sb_package(&fx->b, true);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_page(&fx->b, 3 * PG, "ram", 3);
	sb_close_ram(&fx->b);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_page(&fx->b, 4 * PG, NULL, 4); /* cut in the middle */
	fx->b.len -= 100;
	sb_cmd(&fx->b2, MIG_CMD_RECV_BITMAP, "\3ram", 4);
	sb_cmd(&fx->b2, MIG_CMD_POSTCOPY_RESUME, NULL, 0);
	sb_part(&fx->b2, VMS_SECTION_END);
	sb_page(&fx->b2, 4 * PG, "ram", 4);
	sb_zero(&fx->b2, 0, NULL); /* the rest, for a complete stream */
	sb_zero(&fx->b2, 2 * PG, NULL);
	sb_zero_pages(&fx->b2, 5, 15);
	sb_close_ram(&fx->b2);
	sb_u8(&fx->b2, VMS_EOF);
	if (run(fx, &err))
		fail_msg("unexpected error: %s", err->desc);
	assert_int_equal(fx->pauses, 1);
	assert_int_equal(fx->events[2], LOADVM_EV_RESUMED);
	assert_filled(fx->ram->host + 4 * PG, PG, 4);
	/* new return path: RECV_BITMAP + body, RESUME_ACK, SHUT */
	o = fx->m2->out;
	assert_int_equal(fx->m2->out_len, 8 + 8 + size + 8 + 8 + 8);
	assert_memory_equal(o, "\0\5\0\4\3ram", 8);
	assert_int_equal(mfd_load_be64(o + 8), size);
	/* page 1 (precopy) and 3 (placed); 2 was discarded */
	assert_int_equal(o[16], (1u << 1) | (1u << 3));
	assert_int_equal(mfd_load_be64(o + 16 + size), PC_RECV_BITMAP_ENDING);
	assert_memory_equal(o + 24 + size, "\0\6\0\4\0\0\0\1", 8);
	assert_memory_equal(o + 32 + size, "\0\1\0\4\0\0\0\0", 8);
}

static void test_break_before_run_fails(void **state)
{
	struct fixture *fx = *state;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_package(&fx->b, false); /* LISTEN only */
	sb_part(&fx->b, VMS_SECTION_PART);
	expect_error(fx, "migration stream ended while reading a RAM record");
	assert_int_equal(fx->pauses, 0);
}

static void test_bitmap_outside_recovery(void **state)
{
	struct fixture *fx = *state;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_package(&fx->b, true);
	sb_cmd(&fx->b, MIG_CMD_RECV_BITMAP, "\3ram", 4);
	expect_error(fx, "loadvm_handle_recv_bitmap: only possible to receive "
			 "bitmap during recover");
}

static void test_unregistered_offset(void **state)
{
	struct fixture *fx = *state;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_package(&fx->b, true);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_page(&fx->b, BLK_SIZE, "ram", 1);
	expect_error(fx, "Illegal RAM offset 10000");
}

/* A source that ends the stream while pages were never sent: unregistering
 * would let the guest read zeros there, so the migration fails and the
 * pages stay missing (the guest stays blocked). */
static void test_eof_with_missing_pages_fails(void **state)
{
	struct fixture *fx = *state;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_package(&fx->b, true);
	sb_part(&fx->b, VMS_SECTION_END);
	sb_page(&fx->b, 3 * PG, "ram", 3);
	sb_close_ram(&fx->b);
	sb_u8(&fx->b, VMS_EOF);
	expect_error(fx, "Postcopy ended with 15 pages of block ram never "
			 "received");
	assert_int_equal(loadvm_postcopy_state(&fx->ld), PC_INCOMING_RUNNING);
	assert_false(uffd_is_received(fx->ld.uffd, 0, 4 * PG));
	assert_int_equal(fx->m->out_len, 0); /* no SHUT */
}

/* A precopy page counts: only DISCARDed and never-sent pages are missing.
 * EOF straight after RUN, with precopy having sent everything. */
static void test_eof_after_full_precopy(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_part(&fx->b, VMS_SECTION_PART);
	sb_page(&fx->b, 0, "ram", 1);
	sb_zero_pages(&fx->b, 1, 15);
	sb_close_ram(&fx->b);
	sb_package(&fx->b, true);
	sb_u8(&fx->b, VMS_EOF);
	if (run(fx, &err))
		fail_msg("unexpected error: %s", err->desc);
	assert_int_equal(loadvm_postcopy_state(&fx->ld), PC_INCOMING_END);
}

/* With postcopy-preempt, a page still on the preempt channel when the
 * main stream ends is waited for (the preempt thread places it). */
struct late_page {
	struct fixture *fx;
	int ret;
};

static void *late_preempt(void *opaque)
{
	struct late_page *lp = opaque;
	struct mig_error *err = NULL;
	struct sb pre = {0};
	struct mem_chan *pm;
	struct qfile *pf;

	/* RAM is registered at LISTEN, before RUN; then the main stream's
	 * EOF comes first */
	while (loadvm_postcopy_state(&lp->fx->ld) < PC_INCOMING_RUNNING)
		usleep(1000);
	usleep(100000);
	sb_page(&pre, 7 * PG, "ram", 0x77);
	sb_be64(&pre, 0x10);
	pm = mem_new(pre.p, pre.len);
	pf = qfile_reader_new(&pm->ch);
	lp->ret = loadvm_load_preempt(&lp->fx->ld, pf, &err);
	mig_error_free(err);
	qfile_free(pf);
	mem_free(pm);
	free(pre.p);
	return NULL;
}

static void test_eof_waits_for_preempt_pages(void **state)
{
	struct fixture *fx = *state;
	struct mig_error *err = NULL;
	struct late_page lp = {fx, -1};
	pthread_t t;
	int ret;

	SKIP_WITHOUT_UFFD();
	sb_prefix(&fx->b);
	sb_package(&fx->b, true);
	sb_part(&fx->b, VMS_SECTION_END);
	sb_zero(&fx->b, 0, "ram");
	sb_zero_pages(&fx->b, 1, 6);
	sb_zero_pages(&fx->b, 8, 15);
	sb_close_ram(&fx->b);
	sb_u8(&fx->b, VMS_EOF);
	prepare(fx);
	fx->ld.pco.preempt = true;
	pthread_create(&t, NULL, late_preempt, &lp);
	ret = loadvm_run(&fx->ld, &err);
	pthread_join(t, NULL);
	if (ret)
		fail_msg("unexpected error: %s", err->desc);
	assert_int_equal(lp.ret, 0);
	assert_filled(fx->ram->host + 7 * PG, PG, 0x77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_complete_stream, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_requests_page, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_precopy_zero_page_present,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_preempt_has_own_continue_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_and_recover, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_break_before_run_fails,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bitmap_outside_recovery,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unregistered_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_eof_with_missing_pages_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_after_full_precopy,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_eof_waits_for_preempt_pages, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
