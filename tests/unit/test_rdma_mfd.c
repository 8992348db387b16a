/* test_rdma_mfd.c — multifd over RDMA (rdma/rdma_mfd*.c) end to end in one
 * process over the loopback fabric: the test thread is the source's
 * migration thread driving the real mfd_send path on rdma multifd
 * channels; a listener thread accepts the channels into the real
 * mfd_recv path and a sync thread plays the incoming main thread's
 * mfd_recv_sync(); real guests, digests compared. Faults: a killed peer,
 * reg_mr ENOMEM (memlock), post failures, cancel, a QEMU-like peer, and
 * rv_loop_live_objects() == 0 after every test. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/mfd_recv.h"
#include "multifd/mfd_send.h"
#include "multifd/migstats.h"
#include "multifd/ram_load.h"
#include "rdma/rdma_conn.h"
#include "rdma/rdma_mfd.h"
#include "rdma/rdma_mfd_priv.h"
#include "rdma/verbs_loopback.h"
#include "socket/channel.h"

#define HOST "192.0.2.1"
#define PORT 4500
#define MIB (1024ull * 1024)
#define MAXCH 8

struct run {
	struct rv_fabric *fab;
	struct guest *src, *dst;
	unsigned n;
	int redirty;	/* live rounds after the first pass */
	int fill;	/* 0 random, 1 zero, 2 mixed */
	bool qemu_peer; /* the destination answers as QEMU would */
	/* destination */
	struct rdma_mfd_set *set;
	struct ram_load *rl;
	struct mfd_recv *r;
	struct rv_event_channel *lch;
	struct rv_cm_id *lid;
	pthread_t lthread, sthread;
	atomic_bool stop;
	_Atomic(struct rv_qp *) dst_qp[MAXCH];
	atomic_uint started;
	struct rdma_ep *qemu_ep;
	bool hold; /* accept channels but never start their threads */
	/* accepted, waiting for ESTABLISHED (listen thread only) */
	struct channel *pending[MAXCH];
	struct rv_cm_id *pending_id[MAXCH];
	_Atomic(struct channel *) held[MAXCH];
	pthread_mutex_t lock;
	char dst_err[512]; /* (lock) first destination failure */
	int syncs;
	char sync_err[512];
	/* source */
	struct mig_counters ctr;
	_Atomic(struct mfd_send *) s;
	struct channel *chans[MAXCH];
	char src_err[512];
	uint8_t uuid[16];
};

static void keep(struct run *m, char *buf, struct mig_error *err)
{
	pthread_mutex_lock(&m->lock);
	if (!buf[0] && err)
		snprintf(buf, 512, "%s", err->desc);
	pthread_mutex_unlock(&m->lock);
	mig_error_free(err);
}

/* The destination records its failure after the source saw it. */
static void wait_dst_err(struct run *m)
{
	for (int i = 0; i < 2000; i++) {
		bool set;

		pthread_mutex_lock(&m->lock);
		set = m->dst_err[0];
		pthread_mutex_unlock(&m->lock);
		if (set)
			return;
		usleep(1000);
	}
}

static void add_block(struct guest *g, const char *name, uint64_t size)
{
	struct ram_block_config cfg = {
		.name = name, .size = size, .backing = RAM_BACKING_ANON};
	struct mig_error *err = NULL;
	struct ram_block *b = ram_block_new(&cfg, &err);

	assert_non_null(b);
	assert_int_equal(guest_add_block(g, b), 0);
}

static void fill(struct guest *g, int kind, unsigned seed)
{
	struct ram_block *b;

	guest_for_each_block(g, b)
	{
		for (uint64_t p = 0; p < b->used_length / 4096; p++) {
			uint8_t *pg = b->host + p * 4096;

			if (kind == 1 ||
			    (kind == 2 && (p % 3 == 0 || (p >> 6) % 4 == 1))) {
				memset(pg, 0, 4096);
				continue;
			}
			for (int i = 0; i < 4096; i += 4) {
				seed = seed * 1103515245u + 12345u;
				memcpy(pg + i, &seed, 4);
			}
		}
	}
}

static const uint8_t *m_uuid(void)
{
	static const uint8_t u[16] = {0x42};

	return u;
}

/* ---- destination ----------------------------------------------------- */

static void dst_fail(void *opaque, struct mig_error *err)
{
	struct run *m = opaque;
	struct mfd_send *s;

	keep(m, m->dst_err, err);
	mfd_recv_shutdown(m->r);
	/* the source learns it through its main channel; under the lock:
	 * run_fini() may be freeing it (a failing receive thread outlives
	 * the source) */
	pthread_mutex_lock(&m->lock);
	s = atomic_load(&m->s);
	if (s)
		mfd_send_kick(s);
	pthread_mutex_unlock(&m->lock);
}

/* A QEMU destination drops the capability bits it does not know. */
static void qemu_accept(struct run *m, const struct rv_cm_event *ev)
{
	const struct rdma_ep_opts o = {
		.max_send_wr = 8, .max_recv_wr = 8, .cqe = 32};
	const uint8_t caps[8] = {0, 0, 0, 1, 0, 0, 0, 0};
	struct mig_error *err = NULL;

	m->qemu_ep = rdma_ep_from_request(m->fab, m->lch, ev->id, &o, &err);
	assert_non_null(m->qemu_ep);
	assert_int_equal(rdma_ep_accept(m->qemu_ep, caps, sizeof(caps), &err),
			 0);
}

/* An accepted channel is established: hold it or start its thread. */
static void on_established(struct run *m, struct channel *ch)
{
	uint8_t init[MFD_INIT_SIZE];
	struct mig_error *err = NULL;
	unsigned id;

	assert_true(rdma_mfd_chan_init(ch, init));
	if (m->hold) {
		atomic_store(&m->held[init[24] % MAXCH], ch);
		return;
	}
	if (mfd_recv_accept_init(m->r, init, &id, &err)) {
		chan_close(ch);
		keep(m, m->dst_err, err);
		return;
	}
	atomic_store(&m->dst_qp[id], rdma_mfd_qp(ch));
	if (mfd_recv_start(m->r, id, ch, &err))
		keep(m, m->dst_err, err);
	else
		atomic_fetch_add(&m->started, 1);
}

/* Accepts without waiting: the channel is pending until its event. */
static void on_request(struct run *m, const struct rv_cm_event *ev)
{
	struct mig_error *err = NULL;
	struct channel *ch;
	int ret = 0;

	if (m->qemu_peer) {
		qemu_accept(m, ev);
		return;
	}
	ch = rdma_mfd_accept(m->set, NULL, m->lch, ev, &err);
	while (ch && (ret = rdma_mfd_accept_resume(ch, &err)) == 0)
		usleep(1000); /* guest RAM being pinned: this test may wait */
	if (ch && ret < 0) {
		chan_close(ch);
		ch = NULL;
	}
	if (!ch) {
		keep(m, m->dst_err, err);
		return;
	}
	for (int i = 0; i < MAXCH; i++)
		if (!m->pending[i]) {
			m->pending[i] = ch;
			m->pending_id[i] = ev->id;
			return;
		}
	fail_msg("too many pending channels");
}

/* A pending channel's CM event (ESTABLISHED sends its table), else a
 * connection's event for the set. */
static void on_event(struct run *m, const struct rv_cm_event *ev)
{
	struct mig_error *err = NULL;

	for (int i = 0; i < MAXCH; i++) {
		struct channel *ch = m->pending[i];

		if (!ch || m->pending_id[i] != ev->id)
			continue;
		m->pending[i] = NULL;
		if (rdma_mfd_accept_event(ch, ev, &err)) {
			chan_close(ch);
			keep(m, m->dst_err, err);
			return;
		}
		on_established(m, ch);
		return;
	}
	rdma_mfd_cm_event(m->set, ev);
}

static void *listen_thread(void *opaque)
{
	struct run *m = opaque;
	struct rv_cm_event ev;

	while (!atomic_load(&m->stop)) {
		int ret = rv_wait_cm_event(m->fab, m->lch, &ev, -1, 20);

		if (ret == -ETIMEDOUT)
			continue;
		if (ret)
			break;
		if (ev.type == RV_CM_CONNECT_REQUEST)
			on_request(m, &ev);
		else
			on_event(m, &ev);
	}
	for (int i = 0; i < MAXCH; i++)
		if (m->pending[i])
			chan_close(m->pending[i]);
	return NULL;
}

static void *sync_thread(void *opaque)
{
	struct run *m = opaque;

	for (int i = 0; i < m->syncs; i++) {
		struct mig_error *err = NULL;

		if (mfd_recv_sync(m->r, &err)) {
			keep(m, m->sync_err, err);
			break;
		}
	}
	return NULL;
}

static void dst_start(struct run *m)
{
	const struct rv_ops *o = m->fab->ops;
	struct ram_load_opts ro = {.multifd = true};
	struct mfd_recv_opts mo = {.channels = m->n};
	int err = 0;

	memcpy(mo.uuid, m->uuid, 16);
	m->set = rdma_mfd_set_new(m->fab, m->dst);
	if (m->set)
		rdma_mfd_set_expect(m->set, m->uuid, m->n);
	m->rl = ram_load_new(m->dst, &ro);
	m->r = mfd_recv_new(&mo, m->rl, dst_fail, m);
	assert_non_null(m->set);
	assert_non_null(m->rl);
	assert_non_null(m->r);
	mfd_recv_set_xport(m->r, &rdma_mfd_recv_xport, m->set);
	m->lch = o->create_event_channel(m->fab, &err);
	assert_non_null(m->lch);
	m->lid = o->create_id(m->lch, NULL, &err);
	assert_non_null(m->lid);
	assert_int_equal(o->listen(m->lid, HOST, PORT, 8), 0);
	assert_int_equal(pthread_create(&m->lthread, NULL, listen_thread, m),
			 0);
	assert_int_equal(pthread_create(&m->sthread, NULL, sync_thread, m), 0);
}

/* ---- source ---------------------------------------------------------- */

static int src_connect(struct run *m)
{
	struct mfd_send_opts o = {.nchannels = m->n,
				  .zero_detect = true,
				  .xport = &rdma_mfd_send_xport};
	struct mig_error *err = NULL;

	memcpy(o.uuid, m->uuid, 16);
	for (unsigned i = 0; i < m->n; i++) {
		m->chans[i] =
			rdma_mfd_connect(m->fab, HOST, PORT, m->src, m->uuid, i,
					 i ? m->chans[0] : NULL, -1, &err);
		if (!m->chans[i]) {
			keep(m, m->src_err, err);
			return -EIO;
		}
	}
	atomic_store(&m->s, mfd_send_start(m->chans, &o, &m->ctr, &err));
	if (!atomic_load(&m->s)) {
		keep(m, m->src_err, err);
		return -EIO;
	}
	return 0;
}

/* Queues the pages of b whose bit says so (all when pick is NULL). */
static int queue_block(struct run *m, struct ram_block *b,
		       bool (*pick)(uint64_t page, int round), int round)
{
	struct mfd_batch *batch = calloc(1, sizeof(*batch));
	int ret = 0;

	assert_non_null(batch);
	batch->block = b;
	for (uint64_t p = 0; p < b->used_length / 4096 && !ret; p++) {
		if (pick && !pick(p, round))
			continue;
		mfd_batch_add(batch, p * 4096, false);
		if (batch->npages == MFD_PAGE_COUNT)
			ret = mfd_send_queue(m->s, &batch);
		batch->block = b;
	}
	if (!ret)
		ret = mfd_send_queue(m->s, &batch);
	free(batch);
	return ret;
}

static bool redirtied(uint64_t p, int round)
{
	return (p + (uint64_t)round) % 7 == 0 || (p >= 40 && p < 72);
}

/* The source's vCPU: page p of pc.ram changes (some become zero). */
static void redirty(struct guest *g, int round)
{
	struct ram_block *b = guest_find_block(g, "pc.ram");

	for (uint64_t p = 0; p < b->used_length / 4096; p++)
		if (redirtied(p, round))
			memset(b->host + p * 4096, p % 2 ? 0 : 0x40 + round,
			       4096);
}

static int src_migrate(struct run *m)
{
	struct ram_block *b;
	int ret = 0;

	guest_for_each_block(m->src, b)
	{
		ret = queue_block(m, b, NULL, 0);
		if (ret)
			return ret;
	}
	ret = mfd_send_sync(m->s);
	for (int r = 1; r <= m->redirty && !ret; r++) {
		redirty(m->src, r);
		ret = queue_block(m, guest_find_block(m->src, "pc.ram"),
				  redirtied, r);
		if (!ret)
			ret = mfd_send_sync(m->s);
	}
	return ret;
}

static void src_error(struct run *m)
{
	struct mig_error *err = NULL;

	if (m->s && mfd_send_error(m->s, &err) && err)
		keep(m, m->src_err, err);
	else
		mig_error_free(err);
}

/* ---- set up and tear down ------------------------------------------- */

static void run_init(struct run *m, unsigned n, int syncs)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->fab = rv_loop_create();
	assert_non_null(m->fab);
	m->n = n;
	m->syncs = syncs;
	m->uuid[0] = 0x42;
	m->src = guest_new(1, GUEST_RUNSTATE_RUNNING);
	m->dst = guest_new(1, GUEST_RUNSTATE_INMIGRATE);
	add_block(m->src, "pc.ram", 8 * MIB);
	add_block(m->src, "vga", MIB);
	add_block(m->src, "rom", 64 * 1024);
	add_block(m->dst, "pc.ram", 8 * MIB);
	add_block(m->dst, "vga", MIB);
	add_block(m->dst, "rom", 64 * 1024);
}

static void run_fini(struct run *m)
{
	const struct rv_ops *o = m->fab->ops;
	struct mfd_send *s;

	pthread_mutex_lock(&m->lock); /* dst_fail() kicks it under the lock */
	s = atomic_exchange(&m->s, NULL);
	pthread_mutex_unlock(&m->lock);
	if (s) /* as the migration does when it ends */
		mfd_send_kick(s);
	mfd_send_free(s); /* closes the channels */
	for (unsigned i = 0; !s && i < m->n; i++)
		chan_close(m->chans[i]);
	mfd_recv_shutdown(m->r);
	pthread_join(m->sthread, NULL);
	mfd_recv_free(m->r);
	atomic_store(&m->stop, true);
	pthread_join(m->lthread, NULL);
	rdma_ep_free(m->qemu_ep);
	assert_int_equal(o->destroy_id(m->lid), 0);
	assert_int_equal(o->destroy_event_channel(m->lch), 0);
	rdma_mfd_set_unref(m->set);
	ram_load_free(m->rl);
	assert_int_equal(rv_loop_live_objects(m->fab), 0);
	rv_fabric_destroy(m->fab);
	guest_free(m->src);
	guest_free(m->dst);
	pthread_mutex_destroy(&m->lock);
}

static void assert_same_ram(struct run *m)
{
	struct ram_block *b;

	guest_for_each_block(m->src, b)
	{
		struct ram_block *d = guest_find_block(m->dst, b->name);

		assert_non_null(d);
		assert_int_equal(memcmp(b->host, d->host, b->used_length), 0);
	}
}

/* ---- tests ----------------------------------------------------------- */

static void migrate_ok(unsigned n, int kind, int redirty)
{
	struct run m;

	run_init(&m, n, 1 + redirty);
	m.redirty = redirty;
	fill(m.src, kind, 7 + n);
	dst_start(&m);
	assert_int_equal(src_connect(&m), 0);
	assert_int_equal(src_migrate(&m), 0);
	pthread_join(m.sthread, NULL); /* every sync went through */
	m.syncs = 0;
	assert_string_equal(m.sync_err, "");
	assert_string_equal(m.dst_err, "");
	assert_int_equal(atomic_load(&m.started), n);
	assert_same_ram(&m);
	assert_true(atomic_load(&m.ctr.normal_pages) > 0 || kind == 1);
	if (kind)
		assert_true(atomic_load(&m.ctr.zero_pages) > 0);
	pthread_create(&m.sthread, NULL, sync_thread, &m); /* joined by fini */
	run_fini(&m);
}

static void test_one_random(void **state)
{
	migrate_ok(1, 0, 0);
}

static void test_two_zero(void **state)
{
	migrate_ok(2, 1, 0);
}

static void test_four_mixed(void **state)
{
	migrate_ok(4, 2, 0);
}

static void test_live_rounds(void **state)
{
	migrate_ok(4, 2, 3);
}

static void test_live_one_channel(void **state)
{
	migrate_ok(1, 0, 2);
}

static bool even_page(uint64_t p, int round)
{
	return p % 2 == 0;
}

static bool odd_page(uint64_t p, int round)
{
	return p % 2 == 1;
}

/* Scattered pages (one WRITE each, 128 per packet: the send queue fills
 * and waits for completions) with completions that come late (credits
 * run out): no RNR, no overrun, same RAM. */
static void test_scattered_slow(void **state)
{
	struct run m;
	struct ram_block *b;

	run_init(&m, 2, 1);
	fill(m.src, 0, 99);
	dst_start(&m);
	assert_int_equal(src_connect(&m), 0);
	rv_loop_set_delay(m.fab, 2);
	guest_for_each_block(m.src, b)
	{
		assert_int_equal(queue_block(&m, b, even_page, 0), 0);
		assert_int_equal(queue_block(&m, b, odd_page, 0), 0);
	}
	assert_int_equal(mfd_send_sync(m.s), 0);
	pthread_join(m.sthread, NULL);
	m.syncs = 0;
	assert_string_equal(m.sync_err, "");
	assert_string_equal(m.dst_err, "");
	assert_same_ram(&m);
	pthread_create(&m.sthread, NULL, sync_thread, &m);
	run_fini(&m);
}

/* The destination's host dies under channel 1 after the first round. */
static void test_peer_killed(void **state)
{
	struct run m;
	int ret;

	run_init(&m, 4, 2);
	fill(m.src, 0, 3);
	dst_start(&m);
	assert_int_equal(src_connect(&m), 0);
	m.redirty = 0;
	assert_int_equal(src_migrate(&m), 0);
	assert_int_equal(rv_loop_kill(m.fab, atomic_load(&m.dst_qp[1])), 0);
	ret = queue_block(&m, guest_find_block(m.src, "pc.ram"), NULL, 0);
	if (!ret)
		ret = mfd_send_sync(m.s);
	assert_true(ret < 0);
	src_error(&m);
	assert_non_null(strstr(m.src_err, "RDMA ERROR: multifd channel 1"));
	pthread_join(m.sthread, NULL);
	m.syncs = 0;
	assert_non_null(strstr(m.sync_err, "channel 1"));
	pthread_create(&m.sthread, NULL, sync_thread, &m);
	run_fini(&m);
}

static void test_reg_enomem_source(void **state)
{
	struct run m;

	run_init(&m, 2, 1);
	dst_start(&m);
	rv_loop_fail_reg(m.fab, 1, ENOMEM);
	assert_int_equal(src_connect(&m), -EIO);
	assert_non_null(strstr(m.src_err, "RLIMIT_MEMLOCK"));
	assert_non_null(strstr(m.src_err, "'pc.ram'"));
	run_fini(&m);
}

static void test_reg_enomem_destination(void **state)
{
	struct run m;

	run_init(&m, 2, 1);
	dst_start(&m);
	/* source: 3 blocks + 3 buffers; then the destination's first */
	rv_loop_fail_reg(m.fab, 7, ENOMEM);
	assert_int_equal(src_connect(&m), -EIO);
	assert_non_null(strstr(m.src_err, "REJECTED"));
	wait_dst_err(&m);
	pthread_mutex_lock(&m.lock);
	assert_non_null(strstr(m.dst_err, "RLIMIT_MEMLOCK"));
	pthread_mutex_unlock(&m.lock);
	run_fini(&m);
}

/* Some post fails mid-transfer (either side): the migration fails with
 * a message, nothing hangs, nothing leaks. */
static void post_fault(unsigned nth)
{
	struct run m;
	int ret;

	run_init(&m, 2, 2);
	fill(m.src, 0, nth);
	dst_start(&m);
	assert_int_equal(src_connect(&m), 0);
	rv_loop_fail_post(m.fab, nth, EIO);
	m.redirty = 1;
	ret = src_migrate(&m);
	src_error(&m);
	if (!strstr(m.src_err, "cannot post"))
		wait_dst_err(&m);
	pthread_mutex_lock(&m.lock);
	assert_true(ret < 0 || m.dst_err[0]);
	assert_true(strstr(m.src_err, "cannot post") ||
		    strstr(m.dst_err, "cannot post"));
	pthread_mutex_unlock(&m.lock);
	run_fini(&m);
}

static void test_post_fail(void **state)
{
	post_fault(3);
	post_fault(40);
	post_fault(200);
}

static void *closer(void *opaque)
{
	struct run *m = opaque;
	struct channel *ch;

	while (!(ch = atomic_load(&m->held[0])))
		usleep(1000);
	usleep(50000);
	atomic_store(&m->held[0], NULL);
	chan_close(ch);
	return NULL;
}

/* The destination stops returning credits, then closes: the source,
 * waiting for a credit, fails at once instead of at its timeout. */
static void test_dst_closes_while_waiting(void **state)
{
	struct run m;
	struct timespec t0, t1;
	pthread_t t;
	int ret;

	run_init(&m, 1, 0);
	m.hold = true;
	fill(m.src, 0, 5);
	dst_start(&m);
	assert_int_equal(src_connect(&m), 0);
	pthread_create(&t, NULL, closer, &m);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = queue_block(&m, guest_find_block(m.src, "pc.ram"), NULL, 0);
	if (!ret)
		ret = mfd_send_sync(m.s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	assert_true(ret < 0);
	assert_true(t1.tv_sec - t0.tv_sec < 10);
	src_error(&m);
	assert_non_null(strstr(m.src_err, "RDMA ERROR: multifd channel 0"));
	run_fini(&m);
}

static void *kicker(void *opaque)
{
	struct run *m = opaque;

	usleep(3000);
	mfd_send_kick(atomic_load(&m->s));
	return NULL;
}

static void test_cancel(void **state)
{
	struct run m;
	pthread_t t;
	int ret = 0;

	run_init(&m, 4, 1000);
	fill(m.src, 0, 11);
	dst_start(&m);
	assert_int_equal(src_connect(&m), 0);
	pthread_create(&t, NULL, kicker, &m);
	for (int i = 0; i < 1000 && !ret; i++) {
		ret = queue_block(&m, guest_find_block(m.src, "pc.ram"), NULL,
				  0);
		if (!ret)
			ret = mfd_send_sync(m.s);
	}
	pthread_join(t, NULL);
	assert_int_equal(ret, -ECANCELED);
	run_fini(&m);
}

static void test_qemu_peer(void **state)
{
	struct run m;

	run_init(&m, 2, 1);
	m.qemu_peer = true;
	dst_start(&m);
	assert_int_equal(src_connect(&m), -EIO);
	assert_string_equal(m.src_err,
			    "RDMA and multifd can't be used together");
	run_fini(&m);
}

/* A request that is not a multifd channel, and a duplicate id. */
static void test_bad_requests(void **state)
{
	struct run m;
	struct mig_error *err = NULL;
	struct channel *dup;

	run_init(&m, 2, 1);
	dst_start(&m);
	m.chans[0] = rdma_mfd_connect(m.fab, HOST, PORT, m.src, m.uuid, 0, NULL,
				      -1, &err);
	assert_non_null(m.chans[0]);
	dup = rdma_mfd_connect(m.fab, HOST, PORT, m.src, m.uuid, 0, m.chans[0],
			       -1, &err);
	assert_null(dup);
	assert_non_null(err);
	mig_error_free(err);
	wait_dst_err(&m);
	pthread_mutex_lock(&m.lock);
	assert_string_equal(m.dst_err,
			    "multifd: received id '0' already setup'");
	pthread_mutex_unlock(&m.lock);
	chan_close(m.chans[0]);
	m.chans[0] = NULL;
	run_fini(&m);
}

/* A channel whose identification is wrong (another UUID, an id out of
 * range) is refused at its request, with QEMU's messages. */
static void test_bad_identity(void **state)
{
	struct run m;
	struct mig_error *err = NULL;
	uint8_t other[16] = {0x43};
	struct channel *ch;

	run_init(&m, 2, 0);
	dst_start(&m);
	ch = rdma_mfd_connect(m.fab, HOST, PORT, m.src, other, 0, NULL, -1,
			      &err);
	assert_null(ch);
	assert_non_null(strstr(err->desc, "REJECTED"));
	mig_error_free(err);
	err = NULL;
	wait_dst_err(&m);
	pthread_mutex_lock(&m.lock);
	assert_non_null(strstr(m.dst_err, "multifd: received uuid '"));
	m.dst_err[0] = 0;
	pthread_mutex_unlock(&m.lock);
	ch = rdma_mfd_connect(m.fab, HOST, PORT, m.src, m.uuid, 2, NULL, -1,
			      &err);
	assert_null(ch);
	mig_error_free(err);
	wait_dst_err(&m);
	pthread_mutex_lock(&m.lock);
	assert_non_null(strstr(m.dst_err, "id"));
	pthread_mutex_unlock(&m.lock);
	run_fini(&m);
}

/* The block table and connect codecs against hostile bytes. */
static void test_codecs(void **state)
{
	struct guest *g = guest_new(1, GUEST_RUNSTATE_RUNNING);
	struct rv_mr mr[2] = {{.rkey = 7}, {.rkey = 9}};
	struct rmfd_remote remote[3];
	struct mig_error *err = NULL;
	struct rdma_mfd_set *set;
	uint8_t buf[RMFD_TABLE_MAX], init[MFD_INIT_SIZE], pd[56] = {0};
	unsigned credits, id;
	int len;

	add_block(g, "pc.ram", MIB);
	add_block(g, "vga", 64 * 1024);
	set = rdma_mfd_set_new(NULL, g);
	set->mrs[0] = &mr[0];
	set->mrs[1] = &mr[1];
	len = rmfd_table_encode(set, buf, &err);
	assert_true(len > RMFD_TABLE_HDR);
	memset(remote, 0, sizeof(remote));
	assert_int_equal(rmfd_table_decode(buf, (uint32_t)len, set, remote,
					   &credits, &err),
			 0);
	assert_int_equal(credits, RMFD_CREDITS);
	assert_int_equal(remote[0].rkey, 7);
	assert_int_equal(remote[1].length, 64 * 1024);
	/* every truncation fails cleanly */
	for (int cut = 0; cut < len; cut++) {
		memset(remote, 0, sizeof(remote));
		assert_true(rmfd_table_decode(buf, (uint32_t)cut, set, remote,
					      &credits, &err) < 0);
		mig_error_free(err);
		err = NULL;
	}
	buf[4 + 3] = RMFD_CREDITS + 1; /* more credits than receives */
	assert_int_equal(rmfd_table_decode(buf, (uint32_t)len, set, remote,
					   &credits, &err),
			 -EINVAL);
	mig_error_free(err);
	err = NULL;
	buf[4 + 3] = RMFD_CREDITS;
	buf[RMFD_TABLE_HDR + 8 + 7] ^= 1; /* pc.ram's length */
	memset(remote, 0, sizeof(remote));
	assert_int_equal(rmfd_table_decode(buf, (uint32_t)len, set, remote,
					   &credits, &err),
			 -EINVAL);
	assert_non_null(strstr(err->desc, "'pc.ram' is"));
	mig_error_free(err);
	err = NULL;
	buf[RMFD_TABLE_HDR + 8 + 7] ^= 1;
	buf[RMFD_TABLE_HDR + 20 + 3] = 200; /* name past the message */
	assert_int_equal(rmfd_table_decode(buf, (uint32_t)len, set, remote,
					   &credits, &err),
			 -EINVAL);
	mig_error_free(err);
	err = NULL;
	/* connect data: only migd's channel bit passes */
	assert_int_equal(rdma_mfd_connect_flags(pd, 56), 0);
	assert_true(rmfd_connect_decode(pd, 56, init, &id, &err) < 0);
	mig_error_free(err);
	err = NULL;
	rmfd_connect_encode(m_uuid(), 3, pd);
	assert_int_equal(rdma_mfd_connect_flags(pd, 56), RMFD_CAP_CHANNEL);
	assert_true(rmfd_connect_decode(pd, 32, init, &id, &err) < 0);
	mig_error_free(err);
	err = NULL;
	assert_int_equal(rmfd_connect_decode(pd, 56, init, &id, &err), 0);
	assert_int_equal(id, 3);
	assert_int_equal(init[0], 0x11);
	assert_int_equal(init[8], 0x42);
	assert_int_equal(init[24], 3);
	set->mrs[0] = set->mrs[1] = NULL;
	rdma_mfd_set_unref(set);
	guest_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_random),
		cmocka_unit_test(test_two_zero),
		cmocka_unit_test(test_four_mixed),
		cmocka_unit_test(test_live_rounds),
		cmocka_unit_test(test_live_one_channel),
		cmocka_unit_test(test_scattered_slow),
		cmocka_unit_test(test_peer_killed),
		cmocka_unit_test(test_reg_enomem_source),
		cmocka_unit_test(test_reg_enomem_destination),
		cmocka_unit_test(test_post_fail),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_dst_closes_while_waiting),
		cmocka_unit_test(test_qemu_peer),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_bad_identity),
		cmocka_unit_test(test_codecs),
	};

	alarm(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
