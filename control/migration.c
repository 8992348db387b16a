/* migration.c — the outgoing migration (see migration.h).
 *
 * State machine (QEMU's MigrationStatus), owned by 'status' (atomic; every
 * change is a compare-and-swap so cancel and failure cannot both win):
 *
 *   none -> setup -> active -> [pre-switchover -> device] -> completed
 *             |         |              |
 *             +---------+--------------+--> failed      (I/O or peer error)
 *             +---------+--------------+--> cancelling -> cancelled
 *
 * With postcopy (control/postcopy_src.c): active -> [pre-switchover] ->
 * postcopy-active -> completed; an I/O error there pauses instead of
 * failing: postcopy-paused -> (migrate resume) postcopy-recover-setup ->
 * postcopy-recover -> postcopy-active. Once the destination may run the
 * guest, the source guest is never restarted.
 *
 * Invariants: (1) only the migration thread moves to completed, failed or
 * cancelled, and it does so last, after it stopped using the guest's
 * RAM; (2) the control thread learns every change through a posted
 * callback, in order, which emits the MIGRATION event and updates
 * md->mig_status; (3) if the thread stopped the VM, it asks the control
 * thread to restart it on failure or cancel, so the source guest keeps
 * running with its RAM intact.
 * Lock: m->lock protects error, the stop/continue handshakes and the
 * statistics snapshot (times, mbps); counters are atomics. */
#include "control/migration.h"
#include "control/migration_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "control/incoming.h"
#include "control/migcfg.h"
#include "control/migd.h"
#include "control/migration_file.h"
#include "control/migration_tls.h"
#include "control/postcopy_src.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "control/switchover.h"
#include "control/transport.h"
#include "control/vm.h"
#include "guest/guest.h"
#include "multifd/mfd_send.h"
#include "multifd/migstats.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save.h"
#include "multifd/ram_save_file.h"
#include "multifd/vmstate.h"
#include "rdma/rdma_chan.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "util/evloop.h"
#include "util/log.h"

#define WINDOW_MS 100		/* rate-limit and statistics window */
#define ITER_MAX_MS 50		/* longest PART section (QEMU's MAX_WAIT) */
#define DEST_DONE_WAIT_MS 10000 /* wait for the destination to finish */

static uint64_t now_ms(void)
{
	return ev_now_ms();
}

uint64_t migration_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- events posted to the control thread -----------------------------------
 */

enum post_kind {
	POST_STATUS,
	POST_PASS,
	POST_STOP_VM,
	POST_RESTART_VM,
	POST_POSTMIGRATE,
	POST_DONE
};

struct post {
	struct migration *m;
	enum post_kind kind;
	int value;
};

static void on_post(struct ev_loop *loop, void *opaque);

static void post(struct migration *m, enum post_kind kind, int value)
{
	struct post *p = malloc(sizeof(*p));

	if (!p)
		return; /* an event lost under OOM; state stays consistent */
	*p = (struct post){m, kind, value};
	if (ev_loop_post(m->md->loop, on_post, p) < 0)
		free(p);
}

void migration_post_pass(struct migration *m)
{
	post(m, POST_PASS, (int)mig_read(&m->ctr.dirty_sync_count));
}

static bool events_on(struct migd *md)
{
	return mig_config_cap(md->config, MIG_CAP_EVENTS);
}

static void stop_vm_now(struct migration *m)
{
	struct migd *md = m->md;
	enum guest_runstate st = guest_get_runstate(md->guest);

	pthread_mutex_lock(&m->lock);
	m->vm_was_running = st == GUEST_RUNSTATE_RUNNING;
	snprintf(m->runstate_at_stop, sizeof(m->runstate_at_stop), "%s",
		 guest_runstate_name(st));
	pthread_mutex_unlock(&m->lock);
	/* vm_stop_force_state pauses the vCPUs synchronously */
	vm_stop_force_state(md, GUEST_RUNSTATE_FINISH_MIGRATE);
	pthread_mutex_lock(&m->lock);
	m->vm_stop_done = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static void restart_vm(struct migration *m)
{
	struct migd *md = m->md;

	if (m->vm_was_running) {
		vm_start(md);
	} else if (guest_get_runstate(md->guest) ==
		   GUEST_RUNSTATE_FINISH_MIGRATE) {
		int st = guest_runstate_lookup(m->runstate_at_stop);

		guest_set_runstate(md->guest,
				   st >= 0 ? st : GUEST_RUNSTATE_PAUSED);
	}
}

void migration_join(struct migration *m)
{
	if (m->thread_started) {
		pthread_join(m->thread, NULL);
		m->thread_started = false;
	}
}

static void on_post(struct ev_loop *loop, void *opaque)
{
	struct post *p = opaque;
	struct migration *m = p->m;
	struct migd *md = m->md;

	switch (p->kind) {
	case POST_STATUS:
		md->mig_status = p->value;
		if (events_on(md))
			qmp_event(md->qmp, "MIGRATION",
				  json_pack("{s:s}", "status",
					    mig_status_names[p->value]));
		break;
	case POST_PASS:
		if (events_on(md))
			qmp_event(md->qmp, "MIGRATION_PASS",
				  json_pack("{s:i}", "pass", p->value));
		break;
	case POST_STOP_VM:
		stop_vm_now(m);
		break;
	case POST_RESTART_VM:
		restart_vm(m);
		break;
	case POST_POSTMIGRATE:
		guest_set_runstate(md->guest, GUEST_RUNSTATE_POSTMIGRATE);
		break;
	case POST_DONE:
		migration_join(m);
		break;
	}
	free(p);
}

/* ---- state ------------------------------------------------------------------
 */

enum mig_status migration_status(struct migration *m)
{
	return atomic_load(&m->status);
}

bool migration_set_status(struct migration *m, enum mig_status from,
			  enum mig_status to)
{
	int expected = from;

	if (!atomic_compare_exchange_strong(&m->status, &expected, (int)to))
		return false;
	post(m, POST_STATUS, to);
	return true;
}

void migration_kick(struct migration *m)
{
	uint64_t one = 1;

	pthread_mutex_lock(&m->lock);
	if (m->connect_cancel_fd >= 0 &&
	    write(m->connect_cancel_fd, &one, sizeof(one)) < 0) {
		/* full counter: already readable */
	}
	if (m->main_ch)
		chan_shutdown(m->main_ch);
	if (m->mfd)
		mfd_send_kick(m->mfd);
	ram_save_file_kick(m->file);
	pcs_kick(m->pcs);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* Records the first error; the thread turns it into 'failed'. */
void migration_set_error(struct migration *m, struct mig_error *err)
{
	pthread_mutex_lock(&m->lock);
	mig_error_propagate(&m->error, err);
	pthread_mutex_unlock(&m->lock);
}

static bool is_cancelling(struct migration *m)
{
	return migration_status(m) == MIG_STATUS_CANCELLING;
}

/* ---- statistics and rate limiting (migration thread)
 * ------------------------- */

uint64_t migration_pages_done(struct migration *m)
{
	return mig_read(&m->ctr.normal_pages) + mig_read(&m->ctr.zero_pages);
}

void migration_window_reset(struct migration *m, uint64_t now)
{
	m->win_start_ms = now;
	m->win_start_bytes = mig_transferred(&m->ctr);
	m->win_start_pages = migration_pages_done(m);
}

/* What a switchover now would send: the pages pending, plus those the
 * guest dirtied since the last sync (at the measured dirty rate; at most
 * all of RAM). */
static uint64_t switchover_bytes(struct migration *m, uint64_t now)
{
	uint64_t pages = ram_save_pending_pages(m->rs);
	uint64_t ram = guest_ram_size(m->md->guest) / RAM_TARGET_PAGE_SIZE;

	if (now > m->last_sync_ms)
		pages += mig_read(&m->ctr.dirty_pages_rate) *
			 (now - m->last_sync_ms) / 1000;
	return (pages < ram ? pages : ram) * RAM_TARGET_PAGE_SIZE;
}

/* QEMU's migration_update_counters(): bandwidth of the last window gives
 * mbps, the switchover threshold and the expected downtime. */
void migration_update_counters(struct migration *m, uint64_t now)
{
	uint64_t ms = now - m->win_start_ms;
	uint64_t bytes = mig_transferred(&m->ctr) - m->win_start_bytes;
	uint64_t avail = atomic_load(&m->avail_switchover_bw);
	double bw, expected_bw, fixed;

	if (ms < WINDOW_MS)
		return;
	bw = (double)bytes / (double)ms; /* bytes per ms */
	/* QEMU trusts the last window alone; a burst into socket buffers
	 * then overstates what the switchover will achieve. The slowest of
	 * the last three windows keeps downtime under the limit. */
	m->bw_hist[m->bw_n++ % 3] = bw;
	for (unsigned i = 0; i < 3 && i < m->bw_n; i++)
		if (m->bw_hist[i] < bw)
			bw = m->bw_hist[i];
	expected_bw = avail ? (double)avail / 1000.0 : bw;
	/* The switchover's fixed cost comes off the downtime budget. */
	fixed = swo_fixed_cost_ms(m->swo);
	m->threshold_bytes = swo_threshold(
		expected_bw, atomic_load(&m->downtime_limit), fixed);
	pthread_mutex_lock(&m->lock);
	m->mbps = (double)bytes * 8.0 / (double)ms / 1000.0;
	m->pages_per_second =
		(migration_pages_done(m) - m->win_start_pages) * 1000 / ms;
	/* QEMU also waits for a first dirty-rate period (1 s); migd predicts
	 * from the first window on, so short migrations report it too. */
	if (bytes > 10000 && expected_bw > 0)
		m->expected_downtime = swo_expected_downtime(
			switchover_bytes(m, now), expected_bw, fixed);
	pthread_mutex_unlock(&m->lock);
	migration_window_reset(m, now);
}

/* In postcopy the background stream has its own limit. */
bool migration_rate_exceeded(struct migration *m)
{
	uint64_t limit = m->postcopy ? atomic_load(&m->max_postcopy_bw)
				     : atomic_load(&m->max_bandwidth);

	if (!limit)
		return false;
	return mig_transferred(&m->ctr) - m->win_start_bytes >=
	       limit / (1000 / WINDOW_MS);
}

bool migration_iterate_should_stop(void *opaque)
{
	struct migration *m = opaque;

	return migration_rate_exceeded(m) ||
	       now_ms() - m->iter_start_ms >= ITER_MAX_MS || is_cancelling(m);
}

/* Between syncs: once a rate period is over, QEMU's formula (pages newly
 * dirty since the period began, per second) with the pages the next sync
 * would find counted in the log without consuming it. Syncs happen only
 * when little is pending, so without this a long round (a big guest, a
 * slow link: exactly the non-converging case) shows a rate of 0. */
static void peek_dirty_rate(struct migration *m, uint64_t now)
{
	uint64_t ms = now - m->rate_period_start_ms;

	if (ms < 1000 || now - m->rate_peek_ms < 1000)
		return;
	m->rate_peek_ms = now;
	atomic_store(&m->ctr.dirty_pages_rate,
		     (m->rate_period_pages + ram_save_peek_fresh(m->rs)) *
			     1000 / ms);
}

/* Sleeps out the rest of the window when its budget is spent. */
static void rate_limit(struct migration *m)
{
	uint64_t now = now_ms();

	if (migration_rate_exceeded(m) && now < m->win_start_ms + WINDOW_MS) {
		struct timespec ts = {
			0,
			(long)(m->win_start_ms + WINDOW_MS - now) * 1000000L};

		nanosleep(&ts, NULL);
		now = now_ms();
	}
	migration_update_counters(m, now);
	peek_dirty_rate(m, now);
}

/* A dirty sync with QEMU's bookkeeping: pass event, dirty rate (over
 * periods of at least one second). */
static void bitmap_sync(struct migration *m)
{
	uint64_t t0 = now_ms(), now, fresh = ram_save_sync(m->rs);

	converge_after_sync(m, fresh);
	m->rate_period_pages += fresh;
	now = now_ms();
	swo_note_sync(m->swo, (double)(now - t0));
	m->last_sync_ms = now;
	if (now - m->rate_period_start_ms >= 1000) {
		atomic_store(&m->ctr.dirty_pages_rate,
			     m->rate_period_pages * 1000 /
				     (now - m->rate_period_start_ms));
		m->rate_period_pages = 0;
		m->rate_period_start_ms = now;
	}
	migration_post_pass(m);
}

/* ---- the migration thread
 * ------------------------------------------------------ */

/* multifd-compression and its level for the send threads. */
static void set_compression(struct mfd_send_opts *o,
			    const struct mig_config *cfg)
{
	switch (mig_config_multifd_compression(cfg)) {
	case MIG_MULTIFD_COMPRESSION_ZLIB:
		o->compression = MFD_FLAG_ZLIB;
		o->compress_level = (int)mig_config_param(
			cfg, MIG_PARAM_MULTIFD_ZLIB_LEVEL);
		break;
	case MIG_MULTIFD_COMPRESSION_ZSTD:
		o->compression = MFD_FLAG_ZSTD;
		o->compress_level = (int)mig_config_param(
			cfg, MIG_PARAM_MULTIFD_ZSTD_LEVEL);
		break;
	default:
		break;
	}
}

/* The main channel (TLS-wrapped when tls-creds is set), published in
 * m->main_ch so a kick reaches it. 0 or -errno with *errp. */
static int connect_main(struct migration *m, struct mig_error **errp)
{
	struct channel *ch;

	if (m->addr.kind == MIG_ADDR_RDMA)
		ch = transport_rdma_connect(m->md, m->cfg, &m->addr,
					    m->connect_cancel_fd, errp);
	else
		ch = transport_connect(&m->addr, &m->opened_ch, errp);
	if (!ch)
		return -ECONNREFUSED;
	ch = migration_tls_wrap(m, ch, errp); /* as it is without TLS */
	if (!ch)
		return -EPROTO;
	pthread_mutex_lock(&m->lock);
	m->main_ch = ch;
	if (is_cancelling(m)) /* the kick came while it connected */
		chan_shutdown(ch);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Connects the n multifd channels into chans[]. 0 or -errno. */
static int connect_multifd(struct migration *m, struct channel **chans,
			   unsigned n, struct mig_error **errp)
{
	for (unsigned i = 0; i < n; i++) {
		if (is_cancelling(m))
			return -ECANCELED;
		chans[i] = m->addr.kind == MIG_ADDR_RDMA /* rdma_mfd.h */
				   ? transport_rdma_mfd_connect(
					     m->md, &m->addr, chans, i,
					     m->connect_cancel_fd, errp)
				   : transport_connect(&m->addr, NULL, errp);
		if (chans[i])
			chans[i] = migration_tls_wrap(m, chans[i], errp);
		if (!chans[i])
			return -ECONNREFUSED;
	}
	return is_cancelling(m) ? -ECANCELED : 0;
}

static int connect_channels(struct migration *m, struct mig_error **errp)
{
	/* file: opens its multifd channels itself (migration_file.c) */
	unsigned n = mig_config_cap(m->cfg, MIG_CAP_MULTIFD) &&
				     m->addr.kind != MIG_ADDR_FILE
			     ? mig_config_multifd_channels(m->cfg)
			     : 0;
	struct mfd_send_opts o = {.nchannels = n};
	struct channel **chans;
	int ret = connect_main(m, errp);

	if (ret || !n)
		return ret;
	chans = calloc(n, sizeof(*chans));
	if (!chans)
		return -ENOMEM;
	ret = connect_multifd(m, chans, n, errp);
	if (!ret) {
		o.zero_detect = mig_config_zero_page_detection(m->cfg) ==
				MIG_ZERO_PAGE_DETECTION_MULTIFD;
		o.zero_copy = mig_config_cap(m->cfg, MIG_CAP_ZERO_COPY_SEND);
		set_compression(&o, m->cfg);
		memcpy(o.uuid, m->md->uuid, sizeof(o.uuid));
		o.xport = transport_mfd_xport(&m->addr);
		pthread_mutex_lock(&m->lock);
		m->mfd = mfd_send_start(chans, &o, &m->ctr, errp);
		pthread_mutex_unlock(&m->lock);
		ret = m->mfd ? 0 : -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		chan_close(chans[i]); /* the ones mfd_send_start did not take */
	free(chans);
	return ret;
}

static enum ram_zero_detect zero_mode(const struct mig_config *cfg)
{
	switch (mig_config_zero_page_detection(cfg)) {
	case MIG_ZERO_PAGE_DETECTION_NONE:
		return RAM_ZERO_NONE;
	case MIG_ZERO_PAGE_DETECTION_LEGACY:
		return RAM_ZERO_LEGACY;
	default:
		return RAM_ZERO_MULTIFD;
	}
}

static int setup_stream(struct migration *m, struct mig_error **errp)
{
	struct ram_save_opts ro = {
		.vms = &m->vms,
		.mfd = m->mfd,
		.flush_each_section = mig_config_knob(
			m->cfg, MIG_KNOB_MULTIFD_FLUSH_AFTER_EACH_SECTION),
		.zero = zero_mode(m->cfg),
	};
	int ret = migration_file_setup(m, errp);

	if (ret)
		return ret;
	ro.file = m->file;
	m->f = qfile_writer_new(m->main_ch);
	m->rs = m->f ? ram_save_new(m->md->guest, m->f, &ro, &m->ctr) : NULL;
	if (!m->rs) {
		mig_error_setg(errp, "out of memory setting up migration");
		return -ENOMEM;
	}
	vms_put_header(m->f, &m->vms);
	swo_open_return_path(m->swo, m->f);
	pcs_put_advise(m); /* postcopy-ram: right after, as QEMU */
	ret = ram_save_setup(m->rs, errp);
	post(m, POST_PASS, (int)mig_read(&m->ctr.dirty_sync_count));
	if (!ret)
		ret = qfile_flush(m->f);
	if (ret)
		mig_error_setg(errp, "Unable to write to %s: %s",
			       chan_noun(m->main_ch), strerror(-ret));
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	return ret;
}

/* One step of QEMU's migration_iteration_run(): returns 1 when it is time
 * to switch over, 2 to start postcopy, 0 to go on, -errno. */
static int iterate_once(struct migration *m, struct mig_error **errp)
{
	uint64_t pending = ram_save_pending_pages(m->rs) * RAM_TARGET_PAGE_SIZE;
	int ret = swo_poll(m->swo, m->main_ch, 0, errp);

	if (ret)
		return ret;
	/* Nothing pending (waiting for the ack, or a zero threshold): only a
	 * sync can tell what the guest dirtied since. */
	if (!pending || pending < m->threshold_bytes) {
		bitmap_sync(m);
		pending = ram_save_pending_pages(m->rs) * RAM_TARGET_PAGE_SIZE;
	}
	if ((!pending || pending < m->threshold_bytes) &&
	    swo_can_switchover(m->swo, guest_is_running(m->md->guest)))
		return 1;
	/* RAM is all postcopiable: nothing must go before the switch */
	if (pcs_wanted(m) &&
	    swo_can_switchover(m->swo, guest_is_running(m->md->guest)))
		return 2;
	if (!pending) /* converged, waiting for the switchover ack */
		return swo_poll(m->swo, m->main_ch, WINDOW_MS, errp);
	m->iter_start_ms = now_ms();
	ret = ram_save_iterate(m->rs, migration_iterate_should_stop, m, errp);
	if (ret >= 0)
		ret = qfile_flush(m->f);
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	if (ret < 0) {
		if (!*errp)
			mig_error_setg(errp, "Unable to write to %s: %s",
				       chan_noun(m->main_ch), strerror(-ret));
		return ret;
	}
	rate_limit(m);
	return 0;
}

/* pause-before-switchover: wait in pre-switchover for migrate-continue,
 * then go on in state 'to'. */
int migration_maybe_pause(struct migration *m, enum mig_status to)
{
	if (!mig_config_cap(m->cfg, MIG_CAP_PAUSE_BEFORE_SWITCHOVER))
		return 0;
	if (!migration_set_status(m, MIG_STATUS_ACTIVE,
				  MIG_STATUS_PRE_SWITCHOVER))
		return -ECANCELED;
	pthread_mutex_lock(&m->lock);
	while (!m->continue_requested && !is_cancelling(m))
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	if (!migration_set_status(m, MIG_STATUS_PRE_SWITCHOVER, to))
		return -ECANCELED;
	return 0;
}

int migration_stop_vm(struct migration *m)
{
	post(m, POST_STOP_VM, 0);
	pthread_mutex_lock(&m->lock);
	while (!m->vm_stop_done && !is_cancelling(m))
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	return m->vm_stop_done ? 0 : -ECANCELED;
}

void migration_record_totals(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	m->total_time = migration_wall_ms() - m->start_ms;
	if (m->total_time > m->setup_time) {
		double ms = (double)(m->total_time - m->setup_time);

		m->mbps = (double)mig_transferred(&m->ctr) * 8.0 / ms / 1000.0;
		m->pages_per_second =
			(uint64_t)((double)migration_pages_done(m) * 1000.0 /
				   ms);
	}
	pthread_mutex_unlock(&m->lock);
}

static int complete(struct migration *m, struct mig_error **errp)
{
	uint64_t t0, t_stopped, t_sent, precopy;
	int ret = migration_maybe_pause(m, MIG_STATUS_DEVICE);

	t0 = now_ms();
	if (!ret)
		ret = migration_stop_vm(m);
	if (ret)
		return ret;
	t_stopped = now_ms();
	precopy = mig_transferred(&m->ctr);
	atomic_store(&m->ctr.precopy_bytes, precopy);
	if (mig_config_knob(m->cfg, MIG_KNOB_SEND_SWITCHOVER_START))
		vms_put_command(m->f, MIG_CMD_SWITCHOVER_START, 0, NULL);
	ret = ram_save_complete(m->rs, errp);
	/* QEMU announces every dirty sync, the final one too. */
	post(m, POST_PASS, (int)mig_read(&m->ctr.dirty_sync_count));
	if (ret)
		return ret;
	vms_put_timer(m->f, &m->vms);
	vms_put_globalstate(m->f, &m->vms, m->runstate_at_stop);
	vms_put_eof(m->f);
	vms_put_vmdesc(m->f, &m->vms);
	ret = qfile_flush(m->f);
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	if (ret) {
		mig_error_setg(errp, "Unable to write to %s: %s",
			       chan_noun(m->main_ch), strerror(-ret));
		return ret;
	}
	atomic_store(&m->ctr.downtime_bytes,
		     mig_transferred(&m->ctr) - precopy);
	t_sent = now_ms();
	ret = swo_wait_destination(m->swo, m->main_ch, DEST_DONE_WAIT_MS, errp);
	if (ret)
		return ret;
	swo_record(m->swo, (double)(t_stopped - t0),
		   (double)(now_ms() - t_sent));
	log_info("migration: switchover: stop %" PRIu64 " ms, final %" PRIu64
		 " bytes in %" PRIu64 " ms, destination done after %" PRIu64
		 " ms; threshold %" PRIu64 " bytes",
		 t_stopped - t0, mig_transferred(&m->ctr) - precopy,
		 t_sent - t_stopped, now_ms() - t_sent, m->threshold_bytes);
	pthread_mutex_lock(&m->lock);
	m->downtime = now_ms() - t0;
	pthread_mutex_unlock(&m->lock);
	migration_record_totals(m);
	return 0;
}

static int run(struct migration *m, struct mig_error **errp)
{
	int ret = connect_channels(m, errp);

	/* postcopy always opens the return path (QEMU) */
	m->swo = swo_new(m->md,
			 mig_config_cap(m->cfg, MIG_CAP_RETURN_PATH) ||
				 mig_config_cap(m->cfg, MIG_CAP_POSTCOPY_RAM),
			 mig_config_cap(m->cfg, MIG_CAP_SWITCHOVER_ACK));
	if (!ret && !m->swo)
		ret = -ENOMEM;
	if (!ret)
		ret = pcs_new(m, errp);
	if (!ret)
		ret = setup_stream(m, errp);
	if (ret)
		return ret;
	pthread_mutex_lock(&m->lock);
	m->setup_time = migration_wall_ms() - m->start_ms;
	pthread_mutex_unlock(&m->lock);
	if (!migration_set_status(m, MIG_STATUS_SETUP, MIG_STATUS_ACTIVE))
		return -ECANCELED;
	migration_window_reset(m, now_ms());
	m->rate_period_start_ms = now_ms();
	m->last_sync_ms = m->rate_period_start_ms;
	while (!(ret = iterate_once(m, errp)))
		if (is_cancelling(m))
			return -ECANCELED;
	if (ret == 2)
		return pcs_run(m, errp);
	return ret < 0 ? ret : complete(m, errp);
}

static void finish(struct migration *m, int ret, struct mig_error *err)
{
	enum mig_status st = migration_status(m);

	ram_save_cleanup(m->rs);
	if (!ret) {
		/* Everything reached the destination: a cancel that raced with
		 * the last bytes is too late (the destination may already run
		 * the guest), so completion wins. */
		while (!migration_set_status(m, st, MIG_STATUS_COMPLETED))
			st = migration_status(m);
		post(m, POST_POSTMIGRATE, 0);
		mig_error_free(err);
		return;
	}
	migration_kick(m);
	if (st == MIG_STATUS_CANCELLING) {
		mig_error_free(err);
		migration_set_status(m, st, MIG_STATUS_CANCELLED);
	} else {
		if (!err)
			mig_error_setg(&err, "migration failed: %s",
				       strerror(-ret));
		migration_set_error(m, err);
		migration_set_status(m, st, MIG_STATUS_FAILED);
	}
	/* After the postcopy package the destination may run the guest:
	 * two running copies would corrupt it, so the source stays stopped
	 * (QEMU restarts it; migd does not). */
	if (!m->package_sent)
		post(m, POST_RESTART_VM, 0);
}

static void release_io(struct migration *m)
{
	struct mfd_send *mfd;
	struct channel *ch;

	pcs_free(m); /* the return-path thread reads main_ch: first */
	pthread_mutex_lock(&m->lock);
	mfd = m->mfd;
	ch = m->main_ch;
	m->mfd = NULL;
	m->main_ch = NULL;
	pthread_mutex_unlock(&m->lock);
	mfd_send_free(mfd);
	migration_file_release(m);
	qfile_free(m->f);
	m->f = NULL;
	chan_close(ch);
	ram_save_free(m->rs);
	m->rs = NULL;
	swo_free(m->swo);
	m->swo = NULL;
}

void *migration_thread_main(void *opaque)
{
	struct migration *m = opaque;
	struct mig_error *err = NULL;
	int ret;

	pthread_setname_np(pthread_self(), "live_migration");
	m->tid = (int)syscall(SYS_gettid);
	ret = run(m, &err);
	if (ret && m->mfd && mfd_send_error(m->mfd, NULL)) {
		/* a send thread's error is the root cause of ours */
		mig_error_free(err);
		err = NULL;
		mfd_send_error(m->mfd, &err);
	}
	if (ret && ram_save_file_error(m->file, NULL)) {
		mig_error_free(err); /* a file worker's error is the cause */
		err = NULL;
		ram_save_file_error(m->file, &err);
	}
	if (ret && rdma_chan_error(m->main_ch, NULL)) {
		mig_error_free(err); /* the rdma: channel's failure is */
		err = NULL;
		rdma_chan_error(m->main_ch, &err);
	}
	converge_finish(m); /* no throttle left once the status is final */
	finish(m, ret, err);
	release_io(m);
	post(m, POST_DONE, 0);
	return NULL;
}
