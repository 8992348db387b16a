/* mfd_recv.c — multifd receive threads and the SYNC barrier (see
 * mfd_recv.h). Follows QEMU 10.0's multifd_recv_thread(): pages that ride
 * on a SYNC packet (senders before 9.0) are landed before the channel
 * parks, normal_pages == 0 means no payload whatever next_packet_size says
 * (7.2's stale SYNC packets), offsets are checked before anything is read.
 * With a transport's recv op (mfd_recv_set_xport: multifd over RDMA) the
 * packet comes from it and its normal pages are already in RAM.
 *
 * Channel states (atomic, for the idle check):
 *   ABSENT -> WAIT (waiting for a packet's first byte) -> BUSY (inside a
 *   packet) -> WAIT ... ; BUSY -> PARKED (at a SYNC) -> WAIT ; WAIT -> DONE
 *   (end of stream or shutdown).
 * Barrier invariant: parked counts channels that reached a SYNC since the
 * last release; the incoming thread releases all of them at once by
 * bumping generation. broken (set once) wakes everyone for good. */
#include "multifd/mfd_recv.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "guest/ram.h"
#include "multifd/compress.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_load.h"
#include "socket/channel.h"
#include "util/log.h"

enum chan_state {
	CHAN_ABSENT,
	CHAN_WAIT,
	CHAN_BUSY,
	CHAN_PARKED,
	CHAN_DONE,
};

struct mfd_recv_chan {
	struct mfd_recv *r;
	unsigned id;
	bool claimed;	    /* init packet accepted (control thread) */
	struct channel *ch; /* under r->lock until free */
	pthread_t thread;
	bool thread_started;
	_Atomic int state; /* enum chan_state */
	uint8_t buf[MFD_PACKET_SIZE];
	struct mfd_packet pkt;
	struct iovec iov[MFD_PAGE_COUNT];
	/* The channel's decompression stream (compression on), created by
	 * and used on the channel's thread; freed by mfd_recv_free(). */
	struct mfd_decompressor *dec;
};

struct mfd_recv {
	struct mfd_recv_opts o;
	struct ram_load *rl;
	mfd_recv_fail_fn fail;
	void *fail_opaque;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned parked;
	uint64_t generation;
	bool broken;
	const struct mfd_recv_xport *xport; /* set before channels start */
	void *xport_opaque;
	struct mfd_recv_chan *chans;
};

static void set_state(struct mfd_recv_chan *c, enum chan_state s)
{
	atomic_store_explicit(&c->state, (int)s, memory_order_relaxed);
}

static enum chan_state get_state(struct mfd_recv_chan *c)
{
	return (enum chan_state)atomic_load_explicit(&c->state,
						     memory_order_relaxed);
}

/* ---- life cycle ---------------------------------------------------------- */

struct mfd_recv *mfd_recv_new(const struct mfd_recv_opts *o,
			      struct ram_load *rl, mfd_recv_fail_fn fail,
			      void *opaque)
{
	struct mfd_recv *r;

	if (o->channels < 1 || o->channels > 255)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->chans = calloc(o->channels, sizeof(*r->chans));
	if (!r->chans) {
		free(r);
		return NULL;
	}
	r->o = *o;
	r->rl = rl;
	r->fail = fail;
	r->fail_opaque = opaque;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	for (unsigned i = 0; i < o->channels; i++) {
		r->chans[i].r = r;
		r->chans[i].id = i;
		atomic_init(&r->chans[i].state, CHAN_ABSENT);
	}
	return r;
}

void mfd_recv_set_xport(struct mfd_recv *r, const struct mfd_recv_xport *x,
			void *opaque)
{
	r->xport = x;
	r->xport_opaque = opaque;
}

void mfd_recv_shutdown(struct mfd_recv *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->broken = true;
	pthread_cond_broadcast(&r->cond);
	for (unsigned i = 0; i < r->o.channels; i++)
		if (r->chans[i].ch)
			chan_shutdown(r->chans[i].ch);
	pthread_mutex_unlock(&r->lock);
}

static void log_decompress_summary(struct mfd_recv_chan *c)
{
	const struct mfd_compress_stats *st;

	if (!c->dec)
		return;
	st = mfd_decompressor_stats(c->dec);
	log_info("multifd %u: %s received %" PRIu64
		 " payload bytes for %" PRIu64 " page bytes in %" PRIu64
		 " packets",
		 c->id, mfd_compress_name(c->r->o.method), st->wire_bytes,
		 st->raw_bytes, st->packets);
}

void mfd_recv_free(struct mfd_recv *r)
{
	if (!r)
		return;
	mfd_recv_shutdown(r);
	for (unsigned i = 0; i < r->o.channels; i++) {
		struct mfd_recv_chan *c = &r->chans[i];

		if (c->thread_started)
			pthread_join(c->thread, NULL);
		chan_close(c->ch);
		log_decompress_summary(c);
		mfd_decompressor_free(c->dec);
	}
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->chans);
	free(r);
}

/* ---- channel setup (control thread) -------------------------------------- */

int mfd_recv_accept_init(struct mfd_recv *r, const uint8_t in[MFD_INIT_SIZE],
			 unsigned *id, struct mig_error **errp)
{
	struct mfd_init init;
	int ret = mfd_init_decode(in, &init, errp);

	if (!ret)
		ret = mfd_init_check(&init, r->o.uuid, r->o.channels, errp);
	if (ret)
		return ret;
	if (r->chans[init.id].claimed) {
		/* QEMU's message, stray quote included */
		mig_error_setg(errp,
			       "multifd: received id '%d' already "
			       "setup'",
			       init.id);
		return -EINVAL;
	}
	r->chans[init.id].claimed = true;
	*id = init.id;
	return 0;
}

static void *recv_thread(void *opaque);

int mfd_recv_start(struct mfd_recv *r, unsigned id, struct channel *ch,
		   struct mig_error **errp)
{
	struct mfd_recv_chan *c = &r->chans[id];
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->broken) {
		ret = -ECANCELED;
		mig_error_setg(errp, "multifd: the migration is ending");
	} else {
		c->ch = ch;
		set_state(c, CHAN_WAIT);
		ret = -pthread_create(&c->thread, NULL, recv_thread, c);
		if (ret) {
			c->ch = NULL;
			mig_error_setg(errp,
				       "Unable to start multifd receive "
				       "thread: %s",
				       strerror(-ret));
		}
		c->thread_started = !ret;
	}
	pthread_mutex_unlock(&r->lock);
	if (ret)
		chan_close(ch);
	return ret;
}

bool mfd_recv_all_connected(struct mfd_recv *r)
{
	for (unsigned i = 0; i < r->o.channels; i++)
		if (get_state(&r->chans[i]) == CHAN_ABSENT)
			return false;
	return true;
}

bool mfd_recv_idle(struct mfd_recv *r)
{
	for (unsigned i = 0; i < r->o.channels; i++) {
		enum chan_state s = get_state(&r->chans[i]);

		if (s == CHAN_BUSY || s == CHAN_PARKED)
			return false;
	}
	return true;
}

bool mfd_recv_any_parked(struct mfd_recv *r)
{
	for (unsigned i = 0; i < r->o.channels; i++)
		if (get_state(&r->chans[i]) == CHAN_PARKED)
			return true;
	return false;
}

/* ---- the barrier --------------------------------------------------------- */

/* A channel that ended (or never will park) before a sync completes. */
static int ended_before_sync(struct mfd_recv *r, struct mig_error **errp)
{
	for (unsigned i = 0; i < r->o.channels; i++) {
		if (get_state(&r->chans[i]) == CHAN_DONE) {
			mig_error_setg(errp,
				       "multifd: channel %u was closed "
				       "before its SYNC packet",
				       i);
			return -EPIPE;
		}
	}
	return 0;
}

int mfd_recv_sync(struct mfd_recv *r, struct mig_error **errp)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->broken && r->parked < r->o.channels) {
		ret = ended_before_sync(r, errp);
		if (ret)
			break;
		pthread_cond_wait(&r->cond, &r->lock);
	}
	if (!ret && r->broken) {
		ret = -ECANCELED;
		mig_error_setg(errp, "multifd: receive channels stopped");
	}
	if (!ret) {
		r->parked = 0;
		r->generation++;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* The channel's side: park until released. -ECANCELED when broken. */
static int park(struct mfd_recv_chan *c)
{
	struct mfd_recv *r = c->r;
	uint64_t gen;
	int ret = 0;

	if (r->o.sync_noop)
		return 0;
	pthread_mutex_lock(&r->lock);
	set_state(c, CHAN_PARKED);
	r->parked++;
	pthread_cond_broadcast(&r->cond);
	gen = r->generation;
	while (!r->broken && r->generation == gen)
		pthread_cond_wait(&r->cond, &r->lock);
	if (r->generation == gen)
		ret = -ECANCELED;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static void mark_done(struct mfd_recv_chan *c)
{
	struct mfd_recv *r = c->r;

	pthread_mutex_lock(&r->lock);
	set_state(c, CHAN_DONE);
	pthread_cond_broadcast(&r->cond); /* a waiting sync must see it */
	pthread_mutex_unlock(&r->lock);
}

/* ---- packets ------------------------------------------------------------- */

/* QEMU's wording for a failed read (qio_channel_read_all()). */
static int read_error(int ret, const char *eof_msg, struct mig_error **errp)
{
	if (ret == -ECANCELED)
		mig_error_setg(errp, "multifd: channel shut down");
	else if (ret == -EPIPE || ret == -EPROTO)
		mig_error_setg(errp, "%s", eof_msg);
	else
		mig_error_setg(errp, "Unable to read from socket: %s",
			       strerror(-ret));
	return ret;
}

#define EOF_MSG "Unexpected end-of-file before all data were read"

/* Reads one packet header into c->pkt. 1 at a clean end of stream. */
static int read_packet(struct mfd_recv_chan *c, struct channel *ch,
		       struct mig_error **errp)
{
	uint32_t flags;
	int ret;

	set_state(c, CHAN_WAIT);
	if (c->r->xport) {
		ret = c->r->xport->packet(c->r->xport_opaque, c->id, c->buf,
					  errp);
		if (ret)
			return ret;
		set_state(c, CHAN_BUSY);
		return mfd_packet_decode(c->buf, &c->pkt, errp);
	}
	ret = chan_read_all(ch, c->buf, 1);
	if (ret == -EPIPE)
		return 1;
	set_state(c, CHAN_BUSY);
	if (!ret)
		ret = chan_read_all(ch, c->buf + 1, MFD_COMMON_SIZE - 1);
	if (ret)
		return read_error(ret, EOF_MSG, errp);
	ret = mfd_packet_decode_common(c->buf, &flags, errp);
	if (ret)
		return ret;
	ret = chan_read_all(ch, c->buf + MFD_COMMON_SIZE,
			    MFD_PACKET_SIZE - MFD_COMMON_SIZE);
	if (ret)
		return read_error(ret,
				  "multifd: unexpected EOF after packet "
				  "header",
				  errp);
	return mfd_packet_decode(c->buf, &c->pkt, errp);
}

/* Every offset the packet names: page aligned and inside the block. */
static int check_offsets(const struct mfd_packet *p, const struct ram_block *b,
			 struct mig_error **errp)
{
	uint32_t n = p->normal_pages + p->zero_pages;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = p->offset[i];

		if (!ram_block_contains(b, off, RAM_TARGET_PAGE_SIZE)) {
			mig_error_setg(errp,
				       "multifd: offset too long %" PRIu64
				       " (max %" PRIx64 ")",
				       off, b->used_length);
			return -EINVAL;
		}
		if (off % RAM_TARGET_PAGE_SIZE) {
			mig_error_setg(errp,
				       "multifd: offset %" PRIu64
				       " is not page aligned",
				       off);
			return -EINVAL;
		}
	}
	return 0;
}

/* The packet's block, checked; -1 with *errp on failure. */
static int packet_block(struct mfd_recv_chan *c, struct mig_error **errp)
{
	struct ram_load *rl = c->r->rl;
	int idx = ram_load_lookup(rl, c->pkt.ramblock);

	/* BUSY (stored earlier) before the check: pairs with LISTEN's fence */
	atomic_thread_fence(memory_order_seq_cst);
	if (ram_load_landing_closed(rl)) { /* postcopy's RAM is uffd's */
		mig_error_setg(errp, RAM_LOAD_LANDING_CLOSED_MSG);
		return -1;
	}
	if (idx < 0) {
		mig_error_setg(errp, "multifd: unknown ram block %s",
			       c->pkt.ramblock);
		return -1;
	}
	if (ram_load_block_skipped(rl, idx)) {
		mig_error_setg(errp, "block %s should not be migrated !",
			       c->pkt.ramblock);
		return -1;
	}
	if (check_offsets(&c->pkt, ram_load_block(rl, idx), errp))
		return -1;
	return idx;
}

/* Normal pages: one readv straight into guest RAM, adjacent pages merged
 * into one iovec. */
static int land_normal(struct mfd_recv_chan *c, struct channel *ch, int idx,
		       struct mig_error **errp)
{
	struct ram_load *rl = c->r->rl;
	struct ram_block *b = ram_load_block(rl, idx);
	uint8_t *host = b->host;
	int n = 0, ret;

	for (uint32_t i = 0; i < c->pkt.normal_pages; i++) {
		uint8_t *page = host + c->pkt.offset[i];

		ram_load_mark_page(rl, idx, c->pkt.offset[i]);
		if (n &&
		    (uint8_t *)c->iov[n - 1].iov_base + c->iov[n - 1].iov_len ==
			    page) {
			c->iov[n - 1].iov_len += RAM_TARGET_PAGE_SIZE;
			continue;
		}
		c->iov[n].iov_base = page;
		c->iov[n].iov_len = RAM_TARGET_PAGE_SIZE;
		n++;
	}
	for (int i = 0; i < n; i++)
		ram_block_prepare_write(b, (uint8_t *)c->iov[i].iov_base - host,
					c->iov[i].iov_len);
	ret = chan_readv_all(ch, c->iov, n);
	return ret ? read_error(ret, EOF_MSG, errp) : 0;
}

/* Compressed normal pages: the payload (next_packet_size bytes, bounded)
 * into the channel's buffer, then decompressed page by page into guest
 * RAM; never more than the packet's pages are written. */
static int land_compressed(struct mfd_recv_chan *c, struct channel *ch, int idx,
			   struct mig_error **errp)
{
	struct ram_load *rl = c->r->rl;
	uint8_t *host = ram_load_block(rl, idx)->host;
	uint32_t len = c->pkt.next_packet_size;
	uint8_t *pages[MFD_PAGE_COUNT], *buf;
	int ret;

	buf = mfd_decompressor_buffer(c->dec, len, errp);
	if (!buf)
		return -EINVAL;
	ret = chan_read_all(ch, buf, len);
	if (ret)
		return read_error(ret, EOF_MSG, errp);
	for (uint32_t i = 0; i < c->pkt.normal_pages; i++) {
		pages[i] = host + c->pkt.offset[i];
		ram_load_mark_page(rl, idx, c->pkt.offset[i]);
		ram_block_prepare_write(ram_load_block(rl, idx),
					c->pkt.offset[i], RAM_TARGET_PAGE_SIZE);
	}
	return mfd_decompressor_run(c->dec, len, pages, c->pkt.normal_pages,
				    errp);
}

static int land_pages(struct mfd_recv_chan *c, struct channel *ch,
		      struct mig_error **errp)
{
	const struct mfd_packet *p = &c->pkt;
	struct ram_load *rl = c->r->rl;
	int idx, ret = 0;

	if (!p->normal_pages && !p->zero_pages)
		return 0; /* no payload, whatever next_packet_size says */
	/* QEMU checks the method only on packets with pages: its SYNC
	 * packets carry no compression flag. */
	if (mfd_packet_check_method(p, c->id, c->r->o.method, errp))
		return -EINVAL;
	idx = packet_block(c, errp);
	if (idx < 0)
		return -EINVAL;
	if (p->normal_pages && c->r->xport)
		for (uint32_t i = 0; i < p->normal_pages; i++)
			ram_load_mark_page(rl, idx, p->offset[i]);
	else if (p->normal_pages && c->dec)
		ret = land_compressed(c, ch, idx, errp);
	else if (p->normal_pages)
		ret = land_normal(c, ch, idx, errp);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < p->zero_pages; i++)
		ram_load_zero_page(rl, idx, p->offset[p->normal_pages + i]);
	ram_load_count(rl, p->normal_pages, p->zero_pages);
	return 0;
}

int mfd_recv_run_channel(struct mfd_recv *r, unsigned id, struct channel *ch,
			 struct mig_error **errp)
{
	struct mfd_recv_chan *c = &r->chans[id];
	int ret;

	if (r->o.method && !c->dec) {
		c->dec = mfd_decompressor_new(r->o.method, id, errp);
		if (!c->dec)
			return -ENOMEM;
	}
	for (;;) {
		ret = read_packet(c, ch, errp);
		if (ret == 1)
			return 0;
		if (!ret)
			ret = land_pages(c, ch, errp);
		if (!ret && (c->pkt.flags & MFD_FLAG_SYNC))
			ret = park(c);
		if (ret)
			return ret;
	}
}

static void *recv_thread(void *opaque)
{
	struct mfd_recv_chan *c = opaque;
	struct mfd_recv *r = c->r;
	struct mig_error *err = NULL;
	char name[16];
	bool stopping;
	int ret;

	snprintf(name, sizeof(name), "mig/dst/recv_%u", c->id);
	pthread_setname_np(pthread_self(), name);
	ret = mfd_recv_run_channel(r, c->id, c->ch, &err);
	mark_done(c);
	pthread_mutex_lock(&r->lock);
	stopping = r->broken;
	pthread_mutex_unlock(&r->lock);
	/* Once the migration is ending, a failed read is its consequence. */
	if (ret && !stopping && r->fail)
		r->fail(r->fail_opaque, err);
	else
		mig_error_free(err);
	return NULL;
}
