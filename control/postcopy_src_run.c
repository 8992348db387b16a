/* postcopy_src_run.c — the migration thread's postcopy (QEMU's
 * postcopy_start, the postcopy iterations, postcopy_pause and
 * postcopy_do_resume, migration_completion_postcopy): the switch with its
 * discard bitmap and PACKAGED device state, the background stream with
 * requested pages first and max-postcopy-bandwidth, completion, and the
 * pause/recover loop. Migration thread only. */
#include "control/postcopy_src.h"
#include "control/postcopy_src_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/migration_priv.h"
#include "control/migration_tls.h"
#include "control/switchover.h"
#include "control/transport.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/byteorder.h"
#include "multifd/postcopy_proto.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save.h"
#include "multifd/ram_save_postcopy.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"
#include "util/evloop.h"
#include "util/log.h"

#define WINDOW_MS 100
#define SHUT_WAIT_MS 10000

static bool cancelling(struct migration *m)
{
	return migration_status(m) == MIG_STATUS_CANCELLING;
}

static void ping(struct qfile *f, uint32_t v)
{
	uint8_t b[4];

	mfd_store_be32(b, v);
	vms_put_command(f, MIG_CMD_PING, 4, b);
}

static int write_fail(struct migration *m, int ret, struct mig_error **errp)
{
	if (!*errp)
		mig_error_setg(errp, "Unable to write to %s: %s",
			       chan_noun(m->main_ch), strerror(-ret));
	return ret;
}

/* Waits on p->cond until done(p) or the deadline (ms, 0: none); false on
 * cancel or a dead return path. Called with p->lock held. */
static bool wait_for(struct pcs *p, bool (*done)(struct pcs *),
		     uint64_t deadline)
{
	while (!done(p)) {
		struct timespec ts;

		if (cancelling(p->m) || p->rp_done)
			return done(p);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1; /* re-check cancel at least every second */
		if (deadline && ev_now_ms() >= deadline)
			return false;
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	return true;
}

/* ---- the package: device state in a buffer (QEMU's bioc) -------------- */

struct membuf {
	struct channel ch;
	uint8_t *buf;
	size_t len, cap;
};

static ssize_t mem_writev(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	struct membuf *mb = (struct membuf *)ch;
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	if (mb->len + n > PC_PACKAGED_MAX)
		return -EFBIG;
	if (mb->len + n > mb->cap) {
		size_t cap = (mb->len + n) * 2;
		uint8_t *nb = realloc(mb->buf, cap);

		if (!nb)
			return -ENOMEM;
		mb->buf = nb;
		mb->cap = cap;
	}
	for (int i = 0; i < iovcnt; i++) {
		memcpy(mb->buf + mb->len, iov[i].iov_base, iov[i].iov_len);
		mb->len += iov[i].iov_len;
	}
	return (ssize_t)n;
}

static void mem_shutdown(struct channel *ch)
{
	(void)ch;
}

static void mem_close(struct channel *ch)
{
	(void)ch; /* the membuf lives on the caller's stack */
}

static const struct channel_ops mem_ops = {
	.name = "buffer",
	.writev = mem_writev,
	.shutdown = mem_shutdown,
	.close = mem_close,
};

/* LISTEN, the device sections, PING 3, RUN — wrapped in PACKAGED. */
static int put_package(struct migration *m, struct mig_error **errp)
{
	struct membuf mb = {.ch = {.ops = &mem_ops, .fd = -1}};
	struct qfile *fb = qfile_writer_new(&mb.ch);
	uint8_t len[4];
	int ret;

	if (!fb) {
		mig_error_setg(errp, "out of memory building the package");
		return -ENOMEM;
	}
	vms_put_command(fb, MIG_CMD_POSTCOPY_LISTEN, 0, NULL);
	vms_put_timer(fb, &m->vms);
	vms_put_globalstate(fb, &m->vms, m->runstate_at_stop);
	ping(fb, 3);
	vms_put_command(fb, MIG_CMD_POSTCOPY_RUN, 0, NULL);
	ret = qfile_flush(fb);
	qfile_free(fb);
	if (!ret) {
		/* its first byte may leave with the next buffer flush: from
		 * here on the destination may come to run the guest */
		m->package_sent = true;
		pc_packaged_encode((uint32_t)mb.len, len);
		vms_put_command(m->f, MIG_CMD_PACKAGED, 4, len);
		qfile_put_buffer(m->f, mb.buf, mb.len);
	} else {
		mig_error_setg(errp, "postcopy_start: Failed to send packaged "
				     "data");
	}
	free(mb.buf);
	return ret;
}

/* ---- the switch (QEMU's postcopy_start) ------------------------------- */

static int wait_pong(struct migration *m, struct mig_error **errp)
{
	while (!swo_ponged(m->swo)) {
		int ret;

		if (cancelling(m))
			return -ECANCELED;
		ret = swo_poll(m->swo, m->main_ch, WINDOW_MS, errp);
		if (ret)
			return ret;
	}
	return 0;
}

static int open_preempt(struct migration *m, struct pcs *p,
			struct mig_error **errp)
{
	struct channel *ch = transport_connect(&m->addr, NULL, errp);

	if (ch)
		ch = migration_tls_wrap(m, ch, errp);
	if (!ch)
		return -ECONNREFUSED;
	p->pf = qfile_writer_new(ch);
	if (!p->pf) {
		chan_close(ch);
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&m->lock);
	p->pch = ch;
	pthread_mutex_unlock(&m->lock);
	ram_save_postcopy_set_preempt(m->rs, p->pf);
	return 0;
}

/* The migration thread's request source (without preempt). */
static bool pop_req(void *opaque, struct pc_req *out)
{
	struct pcs *p = opaque;
	bool got;

	pthread_mutex_lock(&p->lock);
	got = pc_req_pop(&p->q, out);
	pthread_mutex_unlock(&p->lock);
	return got;
}

/* Guest stopped: what precopy left, the discard bitmap, the package. */
static int switch_stopped(struct migration *m, struct pcs *p,
			  struct mig_error **errp)
{
	int ret = ram_save_postcopy_flush_multifd(m->rs, errp);

	if (ret)
		return ret;
	if (mig_config_knob(m->cfg, MIG_KNOB_SEND_SWITCHOVER_START))
		vms_put_command(m->f, MIG_CMD_SWITCHOVER_START, 0, NULL);
	ret = ram_save_postcopy_discard(m->rs, p->release_ram,
					p->preempt ? NULL : pop_req, p, errp);
	migration_post_pass(m); /* the discard's dirty sync */
	if (ret)
		return ret;
	m->postcopy = true;
	ping(m->f, 2);
	ret = put_package(m, errp); /* from here on: pause, never restart */
	if (ret)
		return ret;
	ret = qfile_flush(m->f);
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	return ret ? write_fail(m, ret, errp) : 0;
}

/* Before the stop: the preempt channel (after PONG 1, so the destination
 * has its main channel first) and the return-path thread. */
static int switch_prepare(struct migration *m, struct pcs *p,
			  struct mig_error **errp)
{
	int ret = 0;

	if (p->preempt) {
		ret = wait_pong(m, errp);
		if (!ret)
			ret = open_preempt(m, p, errp);
		if (ret)
			return ret;
	}
	if (pcs_rp_start(p, m->main_ch)) {
		mig_error_setg(errp, "cannot start the return-path thread");
		return -EAGAIN;
	}
	return 0;
}

static int pcs_switch(struct migration *m, struct mig_error **errp)
{
	struct pcs *p = m->pcs;
	uint64_t t0, precopy;
	int ret = switch_prepare(m, p, errp);

	if (ret)
		return ret;
	if (!mig_config_cap(m->cfg, MIG_CAP_PAUSE_BEFORE_SWITCHOVER) &&
	    !migration_set_status(m, MIG_STATUS_ACTIVE,
				  MIG_STATUS_POSTCOPY_ACTIVE))
		return -ECANCELED;
	t0 = ev_now_ms();
	ret = migration_stop_vm(m);
	if (!ret)
		ret = migration_maybe_pause(m, MIG_STATUS_POSTCOPY_ACTIVE);
	if (ret)
		return ret;
	precopy = mig_transferred(&m->ctr);
	atomic_store(&m->ctr.precopy_bytes, precopy);
	ret = switch_stopped(m, p, errp);
	pthread_mutex_lock(&m->lock);
	m->downtime = ev_now_ms() - t0;
	pthread_mutex_unlock(&m->lock);
	/* As QEMU counts them: the status was postcopy-active before the
	 * stop, so the switch's bytes are postcopy bytes, none downtime. */
	atomic_store(&m->ctr.postcopy_base, precopy ? precopy : 1);
	if (ret)
		return ret;
	ping(m->f, 4);
	if (p->release_ram)
		ram_save_postcopy_release_sent(m->rs);
	log_info("migration: postcopy started after %" PRIu64 " ms of downtime",
		 m->downtime);
	return 0;
}

/* ---- the background stream --------------------------------------------- */

static bool has_req(struct pcs *p)
{
	return pc_req_pending(&p->q);
}

/* Sleeps out a spent window, woken early by a page request. */
static void wait_window(struct migration *m, struct pcs *p)
{
	uint64_t end = m->win_start_ms + WINDOW_MS;

	if (!migration_rate_exceeded(m) || ev_now_ms() >= end)
		return;
	pthread_mutex_lock(&p->lock);
	while (!has_req(p) && !p->rp_done && !cancelling(m) &&
	       ev_now_ms() < end) {
		struct timespec ts;
		uint64_t left = end - ev_now_ms();

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(left % 1000) * 1000000L;
		ts.tv_sec += (time_t)(left / 1000) + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
}

static bool rp_dead(struct pcs *p)
{
	bool dead;

	pthread_mutex_lock(&p->lock);
	dead = p->rp_done;
	pthread_mutex_unlock(&p->lock);
	return dead;
}

/* Until everything was sent: 0, or -errno (a pause follows). */
static int pcs_stream(struct migration *m, struct mig_error **errp)
{
	struct pcs *p = m->pcs;

	migration_window_reset(m, ev_now_ms());
	for (;;) {
		int ret;
		bool more;

		if (cancelling(m))
			return -ECANCELED;
		if (rp_dead(p)) {
			mig_error_setg(errp, "return path closed");
			return -EPIPE;
		}
		m->iter_start_ms = ev_now_ms();
		ret = ram_save_postcopy_iterate(
			m->rs, migration_iterate_should_stop, m, errp);
		if (ret < 0)
			return ret;
		pthread_mutex_lock(&p->lock);
		more = has_req(p);
		pthread_mutex_unlock(&p->lock);
		if (ret == 1 && !more)
			return 0;
		wait_window(m, p);
		migration_update_counters(m, ev_now_ms());
	}
}

static bool shut_or_gone(struct pcs *p)
{
	return p->shut || p->rp_done;
}

/* END section, EOF (no vmdesc in postcopy), the destination's SHUT. */
static int pcs_complete(struct migration *m, struct mig_error **errp)
{
	struct pcs *p = m->pcs;
	uint32_t shut_err;
	bool shut, gone;
	int ret = ram_save_complete(m->rs, errp);

	if (ret)
		return ret;
	vms_put_eof(m->f);
	ret = qfile_flush(m->f);
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	if (ret)
		return write_fail(m, ret, errp);
	ram_save_postcopy_flushed(m->rs);
	pthread_mutex_lock(&p->lock);
	p->stopping = true; /* the destination may close without more */
	wait_for(p, shut_or_gone, ev_now_ms() + SHUT_WAIT_MS);
	shut = p->shut;
	gone = p->rp_done;
	shut_err = shut ? p->shut_err : 0;
	pthread_mutex_unlock(&p->lock);
	if (shut_err) {
		mig_error_setg(errp, "Sibling indicated error %d",
			       (int)shut_err);
		return -EREMOTEIO;
	}
	/* A destination that loaded everything says so (QEMU's and migd's
	 * send SHUT(0)); one that ends or goes silent first did not. */
	if (!shut) {
		mig_error_setg(errp, "%s",
			       gone ? "Unable to read from socket: the "
				      "destination closed the return path "
				      "before reporting completion"
				    : "The destination did not report "
				      "completion (no SHUT on the return "
				      "path)");
		return gone ? -EPIPE : -ETIMEDOUT;
	}
	migration_record_totals(m);
	return 0;
}

/* ---- pause and recovery (QEMU's postcopy_pause, postcopy_do_resume) --- */

/* Drops the broken channels; the guest's RAM and the bitmaps stay. */
static void pause_io(struct migration *m)
{
	struct pcs *p = m->pcs;
	struct channel *ch;

	pcs_rp_stop(p);
	pcs_preempt_close(p);
	pthread_mutex_lock(&m->lock);
	ch = m->main_ch;
	m->main_ch = NULL;
	pthread_mutex_unlock(&m->lock);
	if (m->f) {
		mig_count(&m->ctr.stream_base, qfile_pos(m->f));
		atomic_store(&m->ctr.main_bytes, 0);
		qfile_free(m->f);
		m->f = NULL;
	}
	chan_close(ch);
}

/* Waits for migrate resume:true; takes its address. -ECANCELED. */
static int wait_resume(struct migration *m, struct mig_addr *a,
		       struct channel **ch)
{
	pthread_mutex_lock(&m->lock);
	while (!m->resume_requested && !cancelling(m))
		pthread_cond_wait(&m->cond, &m->lock);
	if (m->resume_requested) {
		*a = m->resume_addr;
		memset(&m->resume_addr, 0, sizeof(m->resume_addr));
		*ch = m->resume_ch;
		m->resume_ch = NULL;
		m->resume_requested = false;
	}
	pthread_mutex_unlock(&m->lock);
	return cancelling(m) ? -ECANCELED : 0;
}

static int resume_connect(struct migration *m, struct mig_addr *a,
			  struct channel *opened, struct mig_error **errp)
{
	struct channel *ch = transport_connect(a, &opened, errp);

	chan_close(opened); /* not taken (a tcp/unix address) */
	if (ch)
		ch = migration_tls_wrap(m, ch, errp);
	if (!ch)
		return -ECONNREFUSED;
	mig_addr_clear(&m->addr); /* preempt reconnects to the new one */
	m->addr = *a;
	memset(a, 0, sizeof(*a));
	m->f = qfile_writer_new(ch);
	pthread_mutex_lock(&m->lock);
	m->main_ch = ch;
	pthread_mutex_unlock(&m->lock);
	if (!m->f) {
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	ram_save_postcopy_resume(m->rs, m->f);
	return 0;
}

static bool all_bitmaps(struct pcs *p)
{
	return p->bitmaps >= p->nblocks;
}

static bool acked(struct pcs *p)
{
	return p->resume_acked;
}

/* Asks for every block's received bitmap and waits for them all. */
static int sync_bitmaps(struct migration *m, struct pcs *p,
			struct mig_error **errp)
{
	uint8_t buf[1 + PC_NAME_MAX];
	bool ok;
	int ret;

	for (unsigned i = 0; i < p->nblocks; i++) {
		int len = pc_recv_bitmap_cmd_encode(p->blocks[i].name, buf,
						    sizeof(buf));

		if (len > 0)
			vms_put_command(m->f, MIG_CMD_RECV_BITMAP,
					(uint16_t)len, buf);
	}
	ret = qfile_flush(m->f);
	if (ret)
		return write_fail(m, ret, errp);
	pthread_mutex_lock(&p->lock);
	ok = wait_for(p, all_bitmaps, 0);
	pthread_mutex_unlock(&p->lock);
	if (!ok)
		mig_error_setg(errp, "postcopy recovery: no received bitmap");
	return ok ? 0 : -EPIPE;
}

/* POSTCOPY_RESUME, then the destination's RESUME_ACK. */
static int resume_handshake(struct migration *m, struct pcs *p,
			    struct mig_error **errp)
{
	bool ok;
	int ret;

	vms_put_command(m->f, MIG_CMD_POSTCOPY_RESUME, 0, NULL);
	ret = qfile_flush(m->f);
	if (ret)
		return write_fail(m, ret, errp);
	pthread_mutex_lock(&p->lock);
	ok = wait_for(p, acked, 0);
	pthread_mutex_unlock(&p->lock);
	if (!ok) {
		mig_error_setg(errp, "postcopy recovery: no RESUME_ACK");
		return -EPIPE;
	}
	return 0;
}

static int do_resume(struct migration *m, struct mig_addr *a,
		     struct channel *opened, struct mig_error **errp)
{
	struct pcs *p = m->pcs;
	int ret;

	pcs_set_error(m, NULL); /* a new attempt: its own error, if any */
	ret = resume_connect(m, a, opened, errp);

	if (ret)
		return ret;
	if (!migration_set_status(m, MIG_STATUS_POSTCOPY_RECOVER_SETUP,
				  MIG_STATUS_POSTCOPY_RECOVER))
		return -ECANCELED;
	if (pcs_rp_start(p, m->main_ch)) {
		mig_error_setg(errp, "cannot start the return-path thread");
		return -EAGAIN;
	}
	ret = sync_bitmaps(m, p, errp);
	if (!ret && p->preempt) /* after the main channel, as QEMU */
		ret = open_preempt(m, p, errp);
	if (!ret)
		ret = resume_handshake(m, p, errp);
	if (ret)
		return ret;
	if (!migration_set_status(m, MIG_STATUS_POSTCOPY_RECOVER,
				  MIG_STATUS_POSTCOPY_ACTIVE))
		return -ECANCELED;
	pcs_set_error(m, NULL);
	log_info("migration: postcopy recovered");
	return 0;
}

/* Paused until a resume works (0) or the migration is cancelled. */
static int pause_and_recover(struct migration *m)
{
	for (;;) {
		struct mig_error *err = NULL;
		struct channel *opened = NULL;
		struct mig_addr a = {0};
		int st, ret;

		pause_io(m);
		do {
			st = (int)migration_status(m);
			if (st == MIG_STATUS_CANCELLING)
				return -ECANCELED;
		} while (!migration_set_status(m, st,
					       MIG_STATUS_POSTCOPY_PAUSED));
		log_warn("Detected IO failure for postcopy. Migration paused.");
		if (wait_resume(m, &a, &opened))
			return -ECANCELED;
		ret = do_resume(m, &a, opened, &err);
		mig_addr_clear(&a);
		if (!ret)
			return 0;
		/* not ret == -ECANCELED: that is also what I/O on a channel
		 * returns after a shutdown */
		if (cancelling(m)) {
			mig_error_free(err);
			return -ECANCELED;
		}
		log_warn("migration: postcopy recovery failed: %s",
			 err ? err->desc : strerror(-ret));
		migration_set_error(m, err); /* the return path's comes first */
	}
}

int pcs_run(struct migration *m, struct mig_error **errp)
{
	int ret = pcs_switch(m, errp);

	for (;;) {
		if (cancelling(m))
			return -ECANCELED;
		if (ret && (!m->package_sent || ret == -EREMOTEIO))
			return ret; /* failed: the destination never ran */
		if (!ret) {
			ret = pcs_stream(m, errp);
			if (!ret)
				ret = pcs_complete(m, errp);
			if (!ret)
				return 0;
			continue;
		}
		migration_set_error(m, *errp); /* first error wins */
		*errp = NULL;
		ret = pause_and_recover(m);
	}
}
