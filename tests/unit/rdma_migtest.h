/* rdma_migtest.h — a whole rdma: migration in one process over the
 * loopback fabric: a source thread running the real ram_save path on an
 * rdma channel and a destination thread running the real loadvm/ram_load
 * path, with real guests, plus hooks for fault injection. Test thread
 * starts and joins both; each side's thread owns its channel. */
#ifndef MIGD_TESTS_RDMA_MIGTEST_H
#define MIGD_TESTS_RDMA_MIGTEST_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/loadvm.h"
#include "multifd/migstats.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "multifd/ram_save.h"
#include "multifd/vmstate.h"
#include "rdma/rdma_chan.h"
#include "rdma/rdma_ram.h"
#include "rdma/verbs_loopback.h"
#include "socket/channel.h"

#define MT_HOST "192.0.2.1"
#define MT_MIB (1024ull * 1024)

struct mt_run {
	struct rv_fabric *fab;
	struct guest *src, *dst;
	uint16_t port;	    /* where the destination listens */
	uint16_t dial_port; /* where the source connects (0: port) */
	bool pin_all;	    /* requested by the source */
	int redirty_rounds; /* live rounds with re-dirtied pages */
	bool no_dst;	    /* nobody listens */
	/* Called on the source thread after setup (fault injection). */
	void (*after_setup)(struct mt_run *r);
	_Atomic(struct channel *) src_ch;
	pthread_mutex_t src_lock; /* src_ch's shutdown vs. close */
	_Atomic(struct channel *) dst_ch;
	pthread_mutex_t dst_lock; /* dst_ch's readers vs. close */
	bool locks_ready;	  /* both locks set up before mt_migrate() */
	struct rdma_ram_stats src_st, dst_st;
	/* results */
	int src_ret, dst_ret;
	char src_err[512], dst_err[512];
	struct rdma_listener *l;
};

static inline struct ram_block *mt_block(struct guest *g, const char *name,
					 uint64_t size)
{
	struct ram_block_config cfg = {
		.name = name, .size = size, .backing = RAM_BACKING_ANON};
	struct mig_error *err = NULL;
	struct ram_block *b = ram_block_new(&cfg, &err);

	if (!b || guest_add_block(g, b))
		abort();
	return b;
}

/* Two guests with the same blocks: 8 MiB "pc.ram", 1.5 MiB "vga",
 * 64 KiB "rom". */
static inline void mt_guests(struct mt_run *r)
{
	r->src = guest_new(1, GUEST_RUNSTATE_RUNNING);
	r->dst = guest_new(1, GUEST_RUNSTATE_INMIGRATE);
	mt_block(r->src, "pc.ram", 8 * MT_MIB);
	mt_block(r->src, "vga", 3 * MT_MIB / 2);
	mt_block(r->src, "rom", 64 * 1024);
	mt_block(r->dst, "pc.ram", 8 * MT_MIB);
	mt_block(r->dst, "vga", 3 * MT_MIB / 2);
	mt_block(r->dst, "rom", 64 * 1024);
	if (dirty_log_init(r->src))
		abort();
}

static inline const struct vms_opts *mt_vo(void)
{
	static const struct vms_opts vo = {.send_configuration = true,
					   .send_section_footer = true,
					   .store_global_state = true};
	return &vo;
}

static inline void mt_keep_err(char *buf, size_t len, struct mig_error *err)
{
	snprintf(buf, len, "%s", err ? err->desc : "");
	mig_error_free(err);
}

static inline bool mt_never_stop(void *opaque)
{
	return false;
}

/* Fills pages: kind 0 random, 1 zero, 2 mixed (every third page zero,
 * and whole zero chunks). */
static inline void mt_fill(struct guest *g, int kind, unsigned seed)
{
	struct ram_block *b;

	guest_for_each_block(g, b)
	{
		for (uint64_t p = 0; p < b->used_length / 4096; p++) {
			uint8_t *pg = b->host + p * 4096;
			bool zero = kind == 1 ||
				    (kind == 2 &&
				     (p % 3 == 0 || (p >> 8) % 4 == 1));

			if (zero) {
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

/* The source writes pages while migrating (a "vCPU"). */
static inline void mt_redirty(struct guest *g, unsigned round)
{
	struct ram_block *b = guest_find_block(g, "pc.ram");

	for (uint64_t p = round; p < b->used_length / 4096; p += 37) {
		memset(b->host + p * 4096, 0x40 + (int)round, 4096);
		dirty_log_mark(b, p * 4096, 4096);
	}
}

static inline int mt_src_stream(struct mt_run *r, struct qfile *f,
				struct ram_save *rs, struct mig_error **err)
{
	int ret = ram_save_setup(rs, err);

	if (!ret)
		ret = qfile_flush(f);
	if (!ret && r->after_setup)
		r->after_setup(r);
	for (int round = 0; !ret; round++) {
		ret = ram_save_iterate(rs, mt_never_stop, NULL, err);
		if (ret < 0)
			break;
		ret = qfile_flush(f);
		if (ret || round >= r->redirty_rounds)
			break;
		mt_redirty(r->src, (unsigned)round);
		ram_save_sync(rs);
	}
	if (!ret)
		ret = ram_save_complete(rs, err);
	if (!ret) {
		vms_put_globalstate(f, mt_vo(), "running");
		vms_put_eof(f);
		vms_put_vmdesc(f, mt_vo());
		ret = qfile_flush(f);
	}
	return ret;
}

static inline void *mt_src_main(void *opaque)
{
	struct mt_run *r = opaque;
	struct mig_error *err = NULL;
	struct ram_save_opts ro = {.vms = mt_vo(), .zero = RAM_ZERO_LEGACY};
	struct mig_counters ctr;
	struct channel *ch;
	struct ram_save *rs;
	struct qfile *f;

	memset(&ctr, 0, sizeof(ctr));
	ch = rdma_chan_connect(r->fab, MT_HOST,
			       r->dial_port ? r->dial_port : r->port,
			       r->pin_all, &err);
	if (!ch) {
		r->src_ret = -ECONNREFUSED;
		mt_keep_err(r->src_err, sizeof(r->src_err), err);
		return NULL;
	}
	atomic_store(&r->src_ch, ch);
	f = qfile_writer_new(ch);
	rs = ram_save_new(r->src, f, &ro, &ctr);
	vms_put_header(f, mt_vo());
	r->src_ret = mt_src_stream(r, f, rs, &err);
	if (r->src_ret && rdma_chan_error(ch, NULL)) {
		mig_error_free(err);
		err = NULL;
		rdma_chan_error(ch, &err);
	}
	mt_keep_err(r->src_err, sizeof(r->src_err), err);
	rdma_ram_get_stats(rdma_chan_ram(ch), &r->src_st);
	ram_save_free(rs);
	qfile_free(f);
	pthread_mutex_lock(&r->src_lock);
	atomic_store(&r->src_ch, NULL);
	pthread_mutex_unlock(&r->src_lock);
	chan_close(ch);
	return NULL;
}

static inline int mt_accept(struct mt_run *r, struct channel **ch,
			    struct mig_error **err)
{
	struct pollfd pfd = {.fd = rdma_listener_fd(r->l), .events = POLLIN};

	for (int i = 0; i < 500; i++) {
		int ret = rdma_listener_handle(r->l, ch, err);

		if (ret)
			return ret < 0 ? ret : 0;
		poll(&pfd, 1, 10);
	}
	mig_error_setg(err, "no connection");
	return -ETIMEDOUT;
}

static inline void *mt_dst_main(void *opaque)
{
	struct mt_run *r = opaque;
	struct mig_error *err = NULL;
	struct ram_load_opts ro = {0};
	struct channel *ch = NULL;
	struct ram_load *rl;
	struct loadvm ld;
	struct qfile *f;

	r->dst_ret = mt_accept(r, &ch, &err);
	if (r->dst_ret) {
		mt_keep_err(r->dst_err, sizeof(r->dst_err), err);
		return NULL;
	}
	ro.rdma = rdma_chan_ram(ch);
	atomic_store(&r->dst_ch, ch);
	rl = ram_load_new(r->dst, &ro);
	f = qfile_reader_new(ch);
	loadvm_init(&ld, f, rl, mt_vo(), false);
	r->dst_ret = loadvm_run(&ld, &err);
	if (r->dst_ret && rdma_chan_error(ch, NULL)) {
		mig_error_free(err);
		err = NULL;
		rdma_chan_error(ch, &err);
	}
	mt_keep_err(r->dst_err, sizeof(r->dst_err), err);
	rdma_ram_get_stats(rdma_chan_ram(ch), &r->dst_st);
	pthread_mutex_lock(&r->dst_lock);
	atomic_store(&r->dst_ch, NULL);
	pthread_mutex_unlock(&r->dst_lock);
	qfile_free(f);
	chan_close(ch);
	ram_load_free(rl);
	return NULL;
}

/* Shuts the source's channel down from any thread (cancel). */
static inline bool mt_cancel(struct mt_run *r)
{
	struct channel *s;

	pthread_mutex_lock(&r->src_lock);
	s = atomic_load(&r->src_ch);
	if (s)
		chan_shutdown(s);
	pthread_mutex_unlock(&r->src_lock);
	return s != NULL;
}

/* Runs both sides to the end; the fabric must have no object left. */
static inline void mt_migrate(struct mt_run *r)
{
	struct mig_error *err = NULL;
	pthread_t s, d = 0;

	if (!r->locks_ready) {
		pthread_mutex_init(&r->src_lock, NULL);
		pthread_mutex_init(&r->dst_lock, NULL);
	}
	if (!r->no_dst) {
		r->l = rdma_listener_open(r->fab, MT_HOST, r->port, &err);
		if (!r->l)
			abort();
		pthread_create(&d, NULL, mt_dst_main, r);
	}
	pthread_create(&s, NULL, mt_src_main, r);
	pthread_join(s, NULL);
	if (!r->no_dst) {
		pthread_join(d, NULL);
		rdma_listener_free(r->l);
	}
}

static inline bool mt_same_ram(struct mt_run *r)
{
	struct ram_block *a, *b;

	guest_for_each_block(r->src, a)
	{
		b = guest_find_block(r->dst, a->name);
		if (!b || memcmp(a->host, b->host, a->used_length))
			return false;
	}
	return true;
}

static inline void mt_free(struct mt_run *r)
{
	dirty_log_fini(r->src);
	guest_free(r->src);
	guest_free(r->dst);
}

#endif
