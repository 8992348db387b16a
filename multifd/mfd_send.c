/* mfd_send.c — multifd send threads (see mfd_send.h). One mutex guards the
 * hand-over state of all channels; each channel has its own condition
 * variable, the migration thread waits on 'idle'. With a transport's ops
 * (opts.xport: multifd over RDMA) the handshake, packets and SYNCs go
 * through them instead of chan_writev. Lock order: s->lock only
 * (no other lock is taken while holding it; I/O happens outside it). */
#include "multifd/mfd_send.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guest/ram.h"
#include "multifd/compress.h"
#include "multifd/mfd_zerocopy.h"
#include "multifd/migstats.h"
#include "socket/channel.h"
#include "util/log.h"

struct mfd_chan {
	struct mfd_send *s;
	unsigned id;
	struct channel *ch;
	pthread_t thread;
	bool started;
	_Atomic int tid;
	pthread_cond_t cond;   /* work for this channel */
	struct mfd_batch *job; /* owned by the thread while has_job */
	bool has_job, want_sync;
	uint8_t hdr[MFD_PACKET_SIZE];
	struct iovec iov[MFD_PAGE_COUNT + 1];
	struct mfd_compressor *comp; /* multifd-compression; the thread's */
};

struct mfd_send {
	struct mfd_send_opts o;
	struct mig_counters *ctr;
	pthread_mutex_t lock;
	pthread_cond_t idle; /* a channel finished a job or a sync */
	unsigned next;	     /* round-robin start */
	unsigned syncs_pending;
	bool quit;
	int err; /* first failure (-errno), under lock */
	struct mig_error *error;
	_Atomic uint64_t packet_num;
	struct mfd_chan *chans;
};

bool mfd_page_is_zero(const void *p)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < MFD_PAGE_SIZE / 8; i += 8) {
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] |
		    w[i + 5] | w[i + 6] | w[i + 7])
			return false;
	}
	return true;
}

static void fail(struct mfd_send *s, struct mfd_chan *c, int err,
		 const char *what)
{
	pthread_mutex_lock(&s->lock);
	if (!s->err) {
		s->err = err;
		/* QEMU's wording, plus where it happened. */
		if (!(s->o.zero_copy && mfd_zc_error(&s->error, err)))
			mig_error_setg(&s->error,
				       "Unable to write to socket: %s "
				       "(multifd channel %u, %s)",
				       strerror(-err), c->id, what);
	}
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* Moves zero pages to the tail, keeping normal pages in order. Returns the
 * number of normal pages. */
static uint32_t split_zero_pages(struct mfd_batch *b)
{
	uint64_t zeros[MFD_PAGE_COUNT];
	uint32_t nnormal = 0, nzero = 0;

	for (uint32_t i = 0; i < b->npages; i++) {
		uint64_t off = b->offset[i];
		bool known = b->known_zero[i / 64] >> (i % 64) & 1;

		if (known || mfd_page_is_zero(b->block->host + off))
			zeros[nzero++] = off;
		else
			b->offset[nnormal++] = off;
	}
	memcpy(b->offset + nnormal, zeros, nzero * sizeof(zeros[0]));
	return nnormal;
}

/* iovecs over the normal pages, merging pages adjacent in host memory. */
static int build_page_iov(struct mfd_chan *c, struct mfd_batch *b,
			  uint32_t nnormal)
{
	int n = 1;

	for (uint32_t i = 0; i < nnormal; i++) {
		uint8_t *p = b->block->host + b->offset[i];
		struct iovec *last = &c->iov[n - 1];

		if (n > 1 && (uint8_t *)last->iov_base + last->iov_len == p) {
			last->iov_len += MFD_PAGE_SIZE;
			continue;
		}
		c->iov[n].iov_base = p;
		c->iov[n].iov_len = MFD_PAGE_SIZE;
		n++;
	}
	return n;
}

/* Keeps err as the set's first error (fail() then keeps it). Takes err. */
static void keep_error(struct mfd_send *s, int ret, struct mig_error *err)
{
	pthread_mutex_lock(&s->lock);
	if (!s->err) {
		s->err = ret;
		s->error = err;
		err = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	mig_error_free(err);
}

/* multifd-compression: the normal pages as the next payload of the
 * channel's stream, in c->iov[1]. Every page packet carries the method's
 * flag, as QEMU's do (its SYNC packets do not). */
static int compress_batch(struct mfd_chan *c, struct mfd_batch *b,
			  struct mfd_packet *pkt)
{
	uint8_t *pages[MFD_PAGE_COUNT];
	struct mig_error *err = NULL;
	int ret;

	pkt->flags |= c->s->o.compression;
	pkt->next_packet_size = 0;
	if (!pkt->normal_pages)
		return 0;
	for (uint32_t i = 0; i < pkt->normal_pages; i++)
		pages[i] = b->block->host + b->offset[i];
	ret = mfd_compressor_run(c->comp, pages, pkt->normal_pages, &c->iov[1],
				 &err);
	if (ret) {
		keep_error(c->s, ret, err);
		return ret;
	}
	pkt->next_packet_size = (uint32_t)c->iov[1].iov_len;
	return 0;
}

/* The packet through the transport's ops (mfd_send_opts.xport). */
static int xport_packet(struct mfd_chan *c, struct mfd_batch *b,
			const struct mfd_packet *pkt)
{
	struct mfd_send *s = c->s;
	struct mig_error *err = NULL;
	int ret = s->o.xport->packet(c->ch, c->hdr, b, pkt->normal_pages,
				     &err);

	if (ret) {
		keep_error(s, ret, err);
		return ret;
	}
	mig_count(&s->ctr->multifd_bytes,
		  MFD_PACKET_SIZE + (uint64_t)pkt->next_packet_size);
	mig_count(&s->ctr->normal_pages, pkt->normal_pages);
	mig_count(&s->ctr->zero_pages, pkt->zero_pages);
	return 0;
}

static int send_batch(struct mfd_chan *c, struct mfd_batch *b)
{
	struct mfd_send *s = c->s;
	struct mfd_packet pkt = {0};
	uint32_t nnormal = b->npages;
	int niov, ret;

	if (s->o.zero_detect)
		nnormal = split_zero_pages(b);
	pkt.pages_alloc = MFD_PAGE_COUNT;
	pkt.normal_pages = nnormal;
	pkt.zero_pages = b->npages - nnormal;
	pkt.next_packet_size = nnormal * MFD_PAGE_SIZE;
	pkt.packet_num = atomic_fetch_add(&s->packet_num, 1);
	snprintf(pkt.ramblock, sizeof(pkt.ramblock), "%s", b->block->name);
	memcpy(pkt.offset, b->offset, b->npages * sizeof(b->offset[0]));
	if (c->comp && (ret = compress_batch(c, b, &pkt)))
		return ret;
	mfd_packet_encode(&pkt, c->hdr);
	c->iov[0].iov_base = c->hdr;
	c->iov[0].iov_len = MFD_PACKET_SIZE;
	if (s->o.xport)
		return xport_packet(c, b, &pkt);
	niov = c->comp ? 1 + !!nnormal : build_page_iov(c, b, nnormal);
	ret = s->o.zero_copy ? mfd_zc_send_packet(c->ch, c->iov, niov)
			     : chan_writev_all(c->ch, c->iov, niov);
	if (ret)
		return ret;
	mig_count(&s->ctr->multifd_bytes,
		  MFD_PACKET_SIZE + (uint64_t)pkt.next_packet_size);
	mig_count(&s->ctr->normal_pages, nnormal);
	mig_count(&s->ctr->zero_pages, b->npages - nnormal);
	return 0;
}

static int send_sync_packet(struct mfd_chan *c)
{
	struct mfd_packet pkt = {.flags = MFD_FLAG_SYNC};
	int ret;

	pkt.packet_num = atomic_fetch_add(&c->s->packet_num, 1);
	mfd_packet_encode(&pkt, c->hdr);
	if (c->s->o.xport) {
		struct mig_error *err = NULL;

		ret = c->s->o.xport->sync(c->ch, c->hdr, &err);
		if (ret)
			keep_error(c->s, ret, err);
	} else {
		ret = chan_write_all(c->ch, c->hdr, MFD_PACKET_SIZE);
	}
	if (!ret)
		mig_count(&c->s->ctr->multifd_bytes, MFD_PACKET_SIZE);
	if (!ret && c->s->o.zero_copy)
		ret = mfd_zc_flush(c->ch, c->s->ctr);
	return ret;
}

static int send_init(struct mfd_chan *c)
{
	struct mfd_init init = {.id = (uint8_t)c->id};
	uint8_t buf[MFD_INIT_SIZE];
	int ret;

	memcpy(init.uuid, c->s->o.uuid, sizeof(init.uuid));
	mfd_init_encode(&init, buf);
	if (c->s->o.xport) {
		struct mig_error *err = NULL;

		ret = c->s->o.xport->init(c->ch, buf, &err);
		if (ret)
			keep_error(c->s, ret, err);
	} else {
		ret = chan_write_all(c->ch, buf, sizeof(buf));
	}
	if (!ret)
		mig_count(&c->s->ctr->multifd_bytes, sizeof(buf));
	return ret;
}

/* Waits for work; returns false when told to quit. Called with lock. */
static bool wait_work(struct mfd_chan *c)
{
	struct mfd_send *s = c->s;

	while (!s->quit && !s->err && !c->has_job && !c->want_sync)
		pthread_cond_wait(&c->cond, &s->lock);
	return !s->quit && !s->err;
}

static void *send_thread(void *opaque)
{
	struct mfd_chan *c = opaque;
	struct mfd_send *s = c->s;
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "mig/src/send_%u", c->id);
	pthread_setname_np(pthread_self(), name);
	c->tid = (int)syscall(SYS_gettid);
	ret = send_init(c);
	if (ret) {
		fail(s, c, ret, "sending the handshake");
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	while (wait_work(c)) {
		bool job = c->has_job;

		pthread_mutex_unlock(&s->lock);
		ret = job ? send_batch(c, c->job) : send_sync_packet(c);
		if (ret) {
			fail(s, c, ret, job ? "sending pages" : "sending SYNC");
			return NULL;
		}
		pthread_mutex_lock(&s->lock);
		if (job) {
			c->has_job = false;
		} else {
			c->want_sync = false;
			s->syncs_pending--;
		}
		pthread_cond_broadcast(&s->idle);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int chan_init(struct mfd_send *s, unsigned i, struct channel *ch)
{
	struct mfd_chan *c = &s->chans[i];

	c->s = s;
	c->id = i;
	c->ch = ch;
	pthread_cond_init(&c->cond, NULL);
	c->job = calloc(1, sizeof(*c->job));
	return c->job ? 0 : -ENOMEM;
}

/* One compression stream per channel, before any thread runs. */
static int start_compression(struct mfd_send *s, struct mig_error **errp)
{
	for (unsigned i = 0; i < s->o.nchannels; i++) {
		s->chans[i].comp = mfd_compressor_new(
			s->o.compression, s->o.compress_level, i, errp);
		if (!s->chans[i].comp)
			return -ENOMEM;
	}
	return 0;
}

/* After the thread ended: raw vs wire bytes of the channel, at info. */
static void stop_compression(struct mfd_chan *c)
{
	const struct mfd_compress_stats *st;

	if (!c->comp)
		return;
	st = mfd_compressor_stats(c->comp);
	log_info("multifd %u: %s sent %llu page bytes as %llu payload bytes "
		 "(%.1f%%) in %llu packets, %llu pages stored raw",
		 c->id, mfd_compress_name(c->s->o.compression),
		 (unsigned long long)st->raw_bytes,
		 (unsigned long long)st->wire_bytes,
		 st->raw_bytes ? 100.0 * st->wire_bytes / st->raw_bytes : 0.0,
		 (unsigned long long)st->packets,
		 (unsigned long long)st->raw_pages);
	mfd_compressor_free(c->comp);
	c->comp = NULL;
}

struct mfd_send *mfd_send_start(struct channel **chans,
				const struct mfd_send_opts *o,
				struct mig_counters *ctr,
				struct mig_error **errp)
{
	struct mfd_send *s = calloc(1, sizeof(*s));

	if (!s || !(s->chans = calloc(o->nchannels, sizeof(*s->chans))))
		goto err_oom;
	s->o = *o;
	s->ctr = ctr;
	if (o->xport && (o->compression || o->zero_copy)) {
		free(s->chans);
		free(s);
		mig_error_setg(errp, "multifd over rdma supports neither "
				     "multifd-compression nor zero-copy-send");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	if (o->zero_copy && mfd_zc_enable(chans, o->nchannels, errp)) {
		mfd_send_free(s); /* the caller still owns chans */
		return NULL;
	}
	for (unsigned i = 0; i < o->nchannels; i++) {
		if (chan_init(s, i, chans[i]))
			goto err_oom_free;
		chans[i] = NULL;
	}
	if (o->compression && start_compression(s, errp)) {
		mfd_send_free(s);
		return NULL;
	}
	for (unsigned i = 0; i < o->nchannels; i++) {
		if (pthread_create(&s->chans[i].thread, NULL, send_thread,
				   &s->chans[i])) {
			mig_error_setg(errp,
				       "cannot start multifd send thread");
			mfd_send_free(s);
			return NULL;
		}
		s->chans[i].started = true;
	}
	return s;

err_oom_free:
	mfd_send_free(s);
	s = NULL;
err_oom:
	free(s);
	mig_error_setg(errp, "out of memory starting multifd");
	return NULL;
}

/* Called with lock: an idle channel, or NULL. */
static struct mfd_chan *find_idle(struct mfd_send *s)
{
	for (unsigned k = 0; k < s->o.nchannels; k++) {
		struct mfd_chan *c = &s->chans[(s->next + k) % s->o.nchannels];

		if (!c->has_job && !c->want_sync) {
			s->next = (c->id + 1) % s->o.nchannels;
			return c;
		}
	}
	return NULL;
}

int mfd_send_queue(struct mfd_send *s, struct mfd_batch **batch)
{
	struct mfd_batch *tmp;
	struct mfd_chan *c = NULL;
	int ret = 0;

	if (!(*batch)->npages)
		return 0;
	pthread_mutex_lock(&s->lock);
	while (!s->err && !s->quit && !(c = find_idle(s)))
		pthread_cond_wait(&s->idle, &s->lock);
	if (s->err || s->quit) {
		ret = s->err ? s->err : -ECANCELED;
	} else {
		tmp = c->job;
		c->job = *batch;
		*batch = tmp;
		(*batch)->npages = 0;
		c->has_job = true;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int mfd_send_sync(struct mfd_send *s)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->o.nchannels; i++) {
		s->chans[i].want_sync = true;
		pthread_cond_signal(&s->chans[i].cond);
	}
	s->syncs_pending = s->o.nchannels;
	while (!s->err && !s->quit && s->syncs_pending)
		pthread_cond_wait(&s->idle, &s->lock);
	if (s->err || s->quit)
		ret = s->err ? s->err : -ECANCELED;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void mfd_send_kick(struct mfd_send *s)
{
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	for (unsigned i = 0; i < s->o.nchannels; i++) {
		if (s->chans[i].ch)
			chan_shutdown(s->chans[i].ch);
		pthread_cond_signal(&s->chans[i].cond);
	}
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

int mfd_send_error(struct mfd_send *s, struct mig_error **errp)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = s->err;
	if (s->error && errp && !*errp)
		mig_error_setg(errp, "%s", s->error->desc);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void mfd_send_free(struct mfd_send *s)
{
	if (!s)
		return;
	if (s->chans) {
		pthread_mutex_lock(&s->lock);
		s->quit = true;
		for (unsigned i = 0; i < s->o.nchannels; i++) {
			/* A transport's op may wait for its peer (credits):
			 * wake it. Everything it sent was acknowledged. */
			if (s->o.xport && s->chans[i].ch)
				chan_shutdown(s->chans[i].ch);
			pthread_cond_signal(&s->chans[i].cond);
		}
		pthread_mutex_unlock(&s->lock);
		for (unsigned i = 0; i < s->o.nchannels; i++) {
			struct mfd_chan *c = &s->chans[i];

			if (c->started)
				pthread_join(c->thread, NULL);
			chan_close(c->ch);
			free(c->job);
			stop_compression(c);
			if (c->s)
				pthread_cond_destroy(&c->cond);
		}
	}
	mig_error_free(s->error);
	free(s->chans);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}

unsigned mfd_send_nthreads(const struct mfd_send *s)
{
	return s->o.nchannels;
}

int mfd_send_thread_tid(const struct mfd_send *s, unsigned i)
{
	return i < s->o.nchannels ? s->chans[i].tid : -1;
}
