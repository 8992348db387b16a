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
#include "control/qapi.h"
#include "control/qmp.h"
#include "control/vm.h"
#include "guest/guest.h"
#include "multifd/mfd_send.h"
#include "multifd/migstats.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "util/evloop.h"
#include "util/log.h"

#define WINDOW_MS 100       /* rate-limit and statistics window */
#define ITER_MAX_MS 50      /* longest PART section (QEMU's MAX_WAIT) */
#define DEST_DONE_WAIT_MS 10000 /* wait for the destination to finish */

struct migration {
	struct migd *md;
	struct mig_config *cfg; /* snapshot taken by 'migrate' */
	struct mig_addr addr;
	pthread_t thread;
	bool thread_started;
	_Atomic int tid;
	_Atomic int status;
	_Atomic uint64_t max_bandwidth;    /* live: bytes/s, 0 = unlimited */
	_Atomic uint64_t downtime_limit;   /* live: ms */
	_Atomic uint64_t avail_switchover_bw; /* live: bytes/s */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mig_error *error;  /* first error: error-desc */
	bool continue_requested;  /* migrate-continue in pre-switchover */
	bool vm_stop_done;        /* control thread ran the stop */
	bool vm_was_running;
	char runstate_at_stop[32];
	/* statistics, under lock */
	uint64_t start_ms, setup_time, total_time, downtime;
	uint64_t expected_downtime;
	double mbps;
	uint64_t pages_per_second;

	struct mig_counters ctr;
	struct channel *main_ch;  /* under lock while it may be kicked */
	struct mfd_send *mfd;
	struct qfile *f;
	struct ram_save *rs;
	struct vms_opts vms;

	/* migration thread only */
	uint64_t win_start_ms, win_start_bytes, win_start_pages;
	uint64_t iter_start_ms;
	uint64_t threshold_bytes;
	double bw_hist[3];     /* bytes/ms of the last windows */
	unsigned bw_n;
	uint64_t rate_period_start_ms, rate_period_pages;
};

static uint64_t now_ms(void)
{
	return ev_now_ms();
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- events posted to the control thread ----------------------------------- */

enum post_kind { POST_STATUS, POST_PASS, POST_STOP_VM, POST_RESTART_VM,
		 POST_POSTMIGRATE, POST_DONE };

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
	*p = (struct post){ m, kind, value };
	if (ev_loop_post(m->md->loop, on_post, p) < 0)
		free(p);
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

		guest_set_runstate(md->guest, st >= 0 ? st : GUEST_RUNSTATE_PAUSED);
	}
}

static void thread_done(struct migration *m)
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
		thread_done(m);
		break;
	}
	free(p);
}

/* ---- state ------------------------------------------------------------------ */

static enum mig_status get_status(struct migration *m)
{
	return atomic_load(&m->status);
}

static bool set_status(struct migration *m, enum mig_status from,
		       enum mig_status to)
{
	int expected = from;

	if (!atomic_compare_exchange_strong(&m->status, &expected, (int)to))
		return false;
	post(m, POST_STATUS, to);
	return true;
}

static void kick(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->main_ch)
		chan_shutdown(m->main_ch);
	if (m->mfd)
		mfd_send_kick(m->mfd);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* Records the first error; the thread turns it into 'failed'. */
static void set_error(struct migration *m, struct mig_error *err)
{
	pthread_mutex_lock(&m->lock);
	mig_error_propagate(&m->error, err);
	pthread_mutex_unlock(&m->lock);
}

static bool is_cancelling(struct migration *m)
{
	return get_status(m) == MIG_STATUS_CANCELLING;
}

/* ---- statistics and rate limiting (migration thread) ------------------------- */

static uint64_t pages_done(struct migration *m)
{
	return mig_read(&m->ctr.normal_pages) + mig_read(&m->ctr.zero_pages);
}

static void window_reset(struct migration *m, uint64_t now)
{
	m->win_start_ms = now;
	m->win_start_bytes = mig_transferred(&m->ctr);
	m->win_start_pages = pages_done(m);
}

/* QEMU's migration_update_counters(): bandwidth of the last window gives
 * mbps, the switchover threshold and the expected downtime. */
static void update_counters(struct migration *m, uint64_t now)
{
	uint64_t ms = now - m->win_start_ms;
	uint64_t bytes = mig_transferred(&m->ctr) - m->win_start_bytes;
	uint64_t avail = atomic_load(&m->avail_switchover_bw);
	double bw, expected_bw;

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
	m->threshold_bytes = (uint64_t)(expected_bw *
					(double)atomic_load(&m->downtime_limit));
	pthread_mutex_lock(&m->lock);
	m->mbps = (double)bytes * 8.0 / (double)ms / 1000.0;
	m->pages_per_second = (pages_done(m) - m->win_start_pages) * 1000 / ms;
	/* QEMU also waits for a first dirty-rate period (1 s); migd predicts
	 * from the first window on, so short migrations report it too. */
	if (bytes > 10000 && expected_bw > 0)
		m->expected_downtime = (uint64_t)(
			(double)(ram_save_pending_pages(m->rs) *
				 RAM_TARGET_PAGE_SIZE) / expected_bw);
	pthread_mutex_unlock(&m->lock);
	window_reset(m, now);
}

static bool rate_exceeded(struct migration *m)
{
	uint64_t limit = atomic_load(&m->max_bandwidth);

	if (!limit)
		return false;
	return mig_transferred(&m->ctr) - m->win_start_bytes >=
	       limit / (1000 / WINDOW_MS);
}

static bool iterate_should_stop(void *opaque)
{
	struct migration *m = opaque;

	return rate_exceeded(m) || now_ms() - m->iter_start_ms >= ITER_MAX_MS ||
	       is_cancelling(m);
}

/* Sleeps out the rest of the window when its budget is spent. */
static void rate_limit(struct migration *m)
{
	uint64_t now = now_ms();

	if (rate_exceeded(m) && now < m->win_start_ms + WINDOW_MS) {
		struct timespec ts = { 0, (long)(m->win_start_ms + WINDOW_MS -
						 now) * 1000000L };

		nanosleep(&ts, NULL);
		now = now_ms();
	}
	update_counters(m, now);
}

/* A dirty sync with QEMU's bookkeeping: pass event, dirty rate (over
 * periods of at least one second). */
static void bitmap_sync(struct migration *m)
{
	uint64_t now, fresh = ram_save_sync(m->rs);

	m->rate_period_pages += fresh;
	now = now_ms();
	if (now - m->rate_period_start_ms >= 1000) {
		atomic_store(&m->ctr.dirty_pages_rate,
			     m->rate_period_pages * 1000 /
				     (now - m->rate_period_start_ms));
		m->rate_period_pages = 0;
		m->rate_period_start_ms = now;
	}
	post(m, POST_PASS, (int)mig_read(&m->ctr.dirty_sync_count));
}

/* ---- the migration thread ------------------------------------------------------ */

static int connect_channels(struct migration *m, struct mig_error **errp)
{
	unsigned n = mig_config_cap(m->cfg, MIG_CAP_MULTIFD)
			     ? mig_config_multifd_channels(m->cfg)
			     : 0;
	struct channel *ch = sock_connect(&m->addr, errp), **chans;
	struct mfd_send_opts o = { .nchannels = n };

	if (!ch)
		return -ECONNREFUSED;
	pthread_mutex_lock(&m->lock);
	m->main_ch = ch;
	pthread_mutex_unlock(&m->lock);
	if (!n)
		return 0;
	chans = calloc(n, sizeof(*chans));
	if (!chans)
		return -ENOMEM;
	for (unsigned i = 0; i < n && !is_cancelling(m); i++) {
		chans[i] = sock_connect(&m->addr, errp);
		if (!chans[i])
			goto err;
	}
	if (is_cancelling(m))
		goto err;
	o.zero_detect = mig_config_zero_page_detection(m->cfg) ==
			MIG_ZERO_PAGE_DETECTION_MULTIFD;
	memcpy(o.uuid, m->md->uuid, sizeof(o.uuid));
	pthread_mutex_lock(&m->lock);
	m->mfd = mfd_send_start(chans, &o, &m->ctr, errp);
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; i < n; i++)
		chan_close(chans[i]); /* the ones mfd_send_start did not take */
	free(chans);
	return m->mfd ? 0 : -ENOMEM;
err:
	for (unsigned i = 0; i < n; i++)
		chan_close(chans[i]);
	free(chans);
	return -ECONNREFUSED;
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
	int ret;

	m->f = qfile_writer_new(m->main_ch);
	m->rs = m->f ? ram_save_new(m->md->guest, m->f, &ro, &m->ctr) : NULL;
	if (!m->rs) {
		mig_error_setg(errp, "out of memory setting up migration");
		return -ENOMEM;
	}
	vms_put_header(m->f, &m->vms);
	ret = ram_save_setup(m->rs, errp);
	post(m, POST_PASS, (int)mig_read(&m->ctr.dirty_sync_count));
	if (!ret)
		ret = qfile_flush(m->f);
	if (ret)
		mig_error_setg(errp, "error writing the migration stream: %s",
			       strerror(-ret));
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	return ret;
}

/* One step of QEMU's migration_iteration_run(): returns 1 when it is time
 * to switch over, 0 to go on, -errno. */
static int iterate_once(struct migration *m, struct mig_error **errp)
{
	uint64_t pending = ram_save_pending_pages(m->rs) * RAM_TARGET_PAGE_SIZE;
	int ret;

	if (pending < m->threshold_bytes) {
		bitmap_sync(m);
		pending = ram_save_pending_pages(m->rs) * RAM_TARGET_PAGE_SIZE;
	}
	if (!pending || pending < m->threshold_bytes)
		return 1;
	m->iter_start_ms = now_ms();
	ret = ram_save_iterate(m->rs, iterate_should_stop, m, errp);
	if (ret >= 0)
		ret = qfile_flush(m->f);
	atomic_store(&m->ctr.main_bytes, qfile_pos(m->f));
	if (ret < 0) {
		if (!*errp)
			mig_error_setg(errp, "error writing the migration stream: %s",
				       strerror(-ret));
		return ret;
	}
	rate_limit(m);
	return 0;
}

/* pause-before-switchover: wait in pre-switchover for migrate-continue. */
static int maybe_pause(struct migration *m)
{
	if (!mig_config_cap(m->cfg, MIG_CAP_PAUSE_BEFORE_SWITCHOVER))
		return 0;
	if (!set_status(m, MIG_STATUS_ACTIVE, MIG_STATUS_PRE_SWITCHOVER))
		return -ECANCELED;
	pthread_mutex_lock(&m->lock);
	while (!m->continue_requested && !is_cancelling(m))
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	if (!set_status(m, MIG_STATUS_PRE_SWITCHOVER, MIG_STATUS_DEVICE))
		return -ECANCELED;
	return 0;
}

static int stop_vm(struct migration *m)
{
	post(m, POST_STOP_VM, 0);
	pthread_mutex_lock(&m->lock);
	while (!m->vm_stop_done && !is_cancelling(m))
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	return m->vm_stop_done ? 0 : -ECANCELED;
}

/* The destination closes the main channel once it has loaded everything:
 * that is when the guest is ready there. */
static void wait_destination_done(struct migration *m)
{
	struct pollfd pfd = { .fd = m->main_ch->fd, .events = POLLIN };

	if (pfd.fd >= 0)
		poll(&pfd, 1, DEST_DONE_WAIT_MS);
}

static int complete(struct migration *m, struct mig_error **errp)
{
	uint64_t t0, t_stopped, t_sent, precopy;
	int ret = maybe_pause(m);

	t0 = now_ms();
	if (!ret)
		ret = stop_vm(m);
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
		mig_error_setg(errp, "error writing the migration stream: %s",
			       strerror(-ret));
		return ret;
	}
	atomic_store(&m->ctr.downtime_bytes, mig_transferred(&m->ctr) - precopy);
	t_sent = now_ms();
	wait_destination_done(m);
	log_info("migration: switchover: stop %" PRIu64 " ms, final %" PRIu64
		 " bytes in %" PRIu64 " ms, destination done after %" PRIu64
		 " ms; threshold %" PRIu64 " bytes",
		 t_stopped - t0, mig_transferred(&m->ctr) - precopy,
		 t_sent - t_stopped, now_ms() - t_sent, m->threshold_bytes);
	pthread_mutex_lock(&m->lock);
	m->downtime = now_ms() - t0;
	m->total_time = wall_ms() - m->start_ms;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int run(struct migration *m, struct mig_error **errp)
{
	int ret = connect_channels(m, errp);

	if (!ret)
		ret = setup_stream(m, errp);
	if (ret)
		return ret;
	pthread_mutex_lock(&m->lock);
	m->setup_time = wall_ms() - m->start_ms;
	pthread_mutex_unlock(&m->lock);
	if (!set_status(m, MIG_STATUS_SETUP, MIG_STATUS_ACTIVE))
		return -ECANCELED;
	window_reset(m, now_ms());
	m->rate_period_start_ms = now_ms();
	while (!(ret = iterate_once(m, errp)))
		if (is_cancelling(m))
			return -ECANCELED;
	return ret < 0 ? ret : complete(m, errp);
}

static void finish(struct migration *m, int ret, struct mig_error *err)
{
	enum mig_status st = get_status(m);

	ram_save_cleanup(m->rs);
	if (!ret) {
		/* Everything reached the destination: a cancel that raced with
		 * the last bytes is too late (the destination may already run
		 * the guest), so completion wins. */
		while (!set_status(m, st, MIG_STATUS_COMPLETED))
			st = get_status(m);
		post(m, POST_POSTMIGRATE, 0);
		mig_error_free(err);
		return;
	}
	kick(m);
	if (st == MIG_STATUS_CANCELLING) {
		mig_error_free(err);
		set_status(m, st, MIG_STATUS_CANCELLED);
	} else {
		if (!err)
			mig_error_setg(&err, "migration failed: %s",
				       strerror(-ret));
		set_error(m, err);
		set_status(m, st, MIG_STATUS_FAILED);
	}
	post(m, POST_RESTART_VM, 0);
}

static void release_io(struct migration *m)
{
	struct mfd_send *mfd;
	struct channel *ch;

	pthread_mutex_lock(&m->lock);
	mfd = m->mfd;
	ch = m->main_ch;
	m->mfd = NULL;
	m->main_ch = NULL;
	pthread_mutex_unlock(&m->lock);
	mfd_send_free(mfd);
	qfile_free(m->f);
	m->f = NULL;
	chan_close(ch);
	ram_save_free(m->rs);
	m->rs = NULL;
}

static void *migration_thread(void *opaque)
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
	finish(m, ret, err);
	release_io(m);
	post(m, POST_DONE, 0);
	return NULL;
}

/* ---- QMP ----------------------------------------------------------------------- */

static void migration_free(struct migration *m)
{
	if (!m)
		return;
	thread_done(m);
	mig_config_free(m->cfg);
	mig_addr_clear(&m->addr);
	mig_error_free(m->error);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

/* QEMU's migrate_prepare() checks, in its order. */
static bool can_migrate(struct migd *md, struct mig_error **errp)
{
	enum guest_runstate st = guest_get_runstate(md->guest);

	if (md->migration && mig_status_is_running(get_status(md->migration))) {
		mig_error_setg(errp, "There's a migration process in progress");
		return false;
	}
	if (st == GUEST_RUNSTATE_INMIGRATE) {
		mig_error_setg(errp, "Guest is waiting for an incoming migration");
		return false;
	}
	if (st == GUEST_RUNSTATE_POSTMIGRATE) {
		mig_error_setg(errp, "Can't migrate the vm that was paused due to "
				     "previous migration");
		return false;
	}
	return true;
}

/* Reads a MigrationChannel list: every element is validated (QEMU visits
 * them all); the first one's address is kept. */
static bool read_channels(struct qapi_in *in, struct mig_addr *addr,
			  unsigned *count, struct mig_error **errp)
{
	static const char *const types[] = { "main", NULL };
	struct qapi_in list;
	bool ok = qapi_start_list(in, "channels", &list, errp);

	*count = 0;
	while (ok && qapi_has(&list, NULL)) {
		struct mig_addr a = { 0 };
		struct qapi_in ch;
		int type;

		ok = qapi_start_struct(&list, NULL, &ch, errp) &&
		     qapi_read_enum(&ch, "channel-type", types, &type, errp) &&
		     mig_addr_read_qapi(&ch, "addr", &a, errp) == 0 &&
		     qapi_check_struct(&ch, errp);
		qapi_in_fini(&ch);
		if (ok && (*count)++ == 0)
			*addr = a;
		else
			mig_addr_clear(&a);
	}
	qapi_in_fini(&list);
	return ok;
}

/* Reads migrate's arguments in the schema's order, then applies QEMU's
 * rules: uri xor channels, one channel, no block migration. */
static bool read_target(json_t *args, struct mig_addr *addr, bool *resume,
			struct mig_error **errp)
{
	struct qapi_in in;
	const char *uri = NULL;
	bool blk = false, inc = false, detach = false, has_channels, ok = true;
	unsigned nchannels = 0;

	qapi_in_init(&in, args);
	if (qapi_has(&in, "uri"))
		ok = qapi_read_str(&in, "uri", &uri, errp);
	has_channels = qapi_has(&in, "channels");
	if (ok && has_channels)
		ok = read_channels(&in, addr, &nchannels, errp);
	if (ok && qapi_has(&in, "blk"))
		ok = qapi_read_bool(&in, "blk", &blk, errp);
	if (ok && qapi_has(&in, "inc"))
		ok = qapi_read_bool(&in, "inc", &inc, errp);
	if (ok && qapi_has(&in, "detach"))
		ok = qapi_read_bool(&in, "detach", &detach, errp);
	if (ok && qapi_has(&in, "resume"))
		ok = qapi_read_bool(&in, "resume", resume, errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok)
		return false;
	if (uri && has_channels) {
		mig_error_setg(errp, "'uri' and 'channels' arguments are mutually "
				     "exclusive; exactly one of the two should be "
				     "present in 'migrate' qmp command ");
		return false;
	}
	if (nchannels > 1) {
		mig_error_setg(errp, "Channel list has more than one entries");
		return false;
	}
	if (!nchannels && !uri) {
		mig_error_setg(errp, "need either 'uri' or 'channels' argument");
		return false;
	}
	if (uri && mig_addr_parse_uri(uri, addr, errp) < 0)
		return false;
	if (blk || inc) {
		mig_error_setg(errp, "Block migration is not supported by migd: "
				     "use blockdev-mirror with NBD instead");
		return false;
	}
	return true;
}

static bool transport_supported(const struct mig_addr *a,
				struct mig_error **errp)
{
	static const char *const names[] = {
		[MIG_ADDR_VSOCK] = "vsock", [MIG_ADDR_FD] = "fd",
		[MIG_ADDR_EXEC] = "exec",   [MIG_ADDR_RDMA] = "rdma",
		[MIG_ADDR_FILE] = "file",
	};

	if (a->kind == MIG_ADDR_TCP || a->kind == MIG_ADDR_UNIX)
		return true;
	mig_error_setg(errp, "migd does not support the '%s' transport yet",
		       names[a->kind]);
	return false;
}

static void vms_opts_from(struct migd *md, const struct mig_config *cfg,
			  struct vms_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->send_configuration = mig_config_knob(cfg, MIG_KNOB_SEND_CONFIGURATION);
	o->send_section_footer = mig_config_knob(cfg, MIG_KNOB_SEND_SECTION_FOOTER);
	o->store_global_state = mig_config_knob(cfg, MIG_KNOB_STORE_GLOBAL_STATE);
	o->cap_mapped_ram = mig_config_cap(cfg, MIG_CAP_MAPPED_RAM);
	o->cap_x_ignore_shared = mig_config_cap(cfg, MIG_CAP_X_IGNORE_SHARED);
	o->send_uuid = md->has_uuid && mig_config_cap(cfg, MIG_CAP_VALIDATE_UUID);
	memcpy(o->uuid, md->uuid, sizeof(o->uuid));
}

static struct migration *migration_new(struct migd *md, struct mig_addr *a)
{
	struct migration *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cfg = mig_config_snapshot(md->config);
	if (!m->cfg) {
		free(m);
		return NULL;
	}
	m->md = md;
	m->addr = *a;
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	atomic_store(&m->status, MIG_STATUS_NONE);
	atomic_store(&m->max_bandwidth, mig_config_max_bandwidth(m->cfg));
	atomic_store(&m->downtime_limit, mig_config_downtime_limit(m->cfg));
	atomic_store(&m->avail_switchover_bw,
		     mig_config_param(m->cfg, MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH));
	vms_opts_from(md, m->cfg, &m->vms);
	m->start_ms = wall_ms();
	return m;
}

static json_t *qmp_migrate(struct migd *md, struct qmp_monitor *mon,
			   json_t *args, struct mig_error **errp)
{
	struct mig_addr addr = { 0 };
	struct migration *m;
	bool resume = false;

	if (!read_target(args, &addr, &resume, errp))
		goto err;
	if (resume) {
		mig_error_setg(errp, "Cannot resume if there is no paused "
				     "migration");
		goto err;
	}
	if (!can_migrate(md, errp) || !transport_supported(&addr, errp))
		goto err;
	m = migration_new(md, &addr);
	if (!m) {
		mig_error_setg(errp, "out of memory");
		goto err;
	}
	migration_free(md->migration);
	md->migration = m;
	set_status(m, MIG_STATUS_NONE, MIG_STATUS_SETUP);
	if (pthread_create(&m->thread, NULL, migration_thread, m)) {
		set_error(m, NULL);
		mig_error_setg(errp, "cannot start the migration thread");
		set_status(m, MIG_STATUS_SETUP, MIG_STATUS_FAILED);
		return NULL;
	}
	m->thread_started = true;
	return json_object();
err:
	mig_addr_clear(&addr);
	return NULL;
}

static json_t *no_args(json_t *args, struct mig_error **errp)
{
	return qapi_no_args(args, errp) ? json_object() : NULL;
}

/* QEMU's migrate_fd_cancel(): a running migration goes to cancelling and
 * its I/O is shut down; anything else is left alone. */
static json_t *qmp_migrate_cancel(struct migd *md, struct qmp_monitor *mon,
				  json_t *args, struct mig_error **errp)
{
	struct migration *m = md->migration;
	json_t *ret = no_args(args, errp);
	int st;

	if (!ret || !m)
		return ret;
	do {
		st = get_status(m);
		if (!mig_status_is_running(st) || st == MIG_STATUS_CANCELLING)
			return ret;
	} while (!set_status(m, st, MIG_STATUS_CANCELLING));
	kick(m);
	return ret;
}

static json_t *qmp_migrate_continue(struct migd *md, struct qmp_monitor *mon,
				    json_t *args, struct mig_error **errp)
{
	struct migration *m = md->migration;
	struct qapi_in in;
	int state = 0;
	bool ok;

	qapi_in_init(&in, args);
	ok = qapi_read_enum(&in, "state", mig_status_names, &state, errp) &&
	     qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok)
		return NULL;
	if (!m || (int)get_status(m) != state) {
		mig_error_setg(errp, "Migration not in expected state: %s",
			       mig_status_names[m ? get_status(m)
						  : MIG_STATUS_NONE]);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	m->continue_requested = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return json_object();
}

static void fill_time_info(struct migration *m, enum mig_status st,
			   json_t *info)
{
	pthread_mutex_lock(&m->lock);
	json_object_set_new(info, "setup-time", json_integer((json_int_t)m->setup_time));
	json_object_set_new(info, "total-time",
			    json_integer((json_int_t)(st == MIG_STATUS_COMPLETED
							? m->total_time
							: wall_ms() - m->start_ms)));
	if (st == MIG_STATUS_COMPLETED)
		json_object_set_new(info, "downtime", json_integer((json_int_t)m->downtime));
	else
		json_object_set_new(info, "expected-downtime",
				    json_integer((json_int_t)m->expected_downtime));
	pthread_mutex_unlock(&m->lock);
}

static json_t *ram_info(struct migration *m, enum mig_status st)
{
	struct mig_counters *c = &m->ctr;
	uint64_t normal = mig_read(&c->normal_pages);
	json_t *ram;

	pthread_mutex_lock(&m->lock);
	ram = json_pack("{s:I,s:I,s:I,s:i,s:I,s:I,s:f,s:I,s:i,s:i,s:I,s:I,s:I,s:I,s:i,s:i}",
			"transferred", (json_int_t)mig_transferred(c),
			"total", (json_int_t)guest_ram_size(m->md->guest),
			"duplicate", (json_int_t)mig_read(&c->zero_pages),
			"skipped", 0,
			"normal", (json_int_t)normal,
			"normal-bytes", (json_int_t)(normal * RAM_TARGET_PAGE_SIZE),
			"mbps", m->mbps,
			"dirty-sync-count", (json_int_t)mig_read(&c->dirty_sync_count),
			"postcopy-requests", 0,
			"page-size", RAM_TARGET_PAGE_SIZE,
			"multifd-bytes", (json_int_t)mig_read(&c->multifd_bytes),
			"pages-per-second", (json_int_t)m->pages_per_second,
			"precopy-bytes", (json_int_t)mig_read(&c->precopy_bytes),
			"downtime-bytes", (json_int_t)mig_read(&c->downtime_bytes),
			"postcopy-bytes", 0,
			"dirty-sync-missed-zero-copy", 0);
	pthread_mutex_unlock(&m->lock);
	if (st != MIG_STATUS_COMPLETED) {
		json_object_set_new(ram, "remaining",
				    json_integer((json_int_t)(mig_read(&c->remaining_pages) *
							      RAM_TARGET_PAGE_SIZE)));
		json_object_set_new(ram, "dirty-pages-rate",
				    json_integer((json_int_t)mig_read(&c->dirty_pages_rate)));
	}
	return ram;
}

/* QEMU's fill_source_migration_info(). */
static void fill_source_info(struct migration *m, json_t *info)
{
	enum mig_status st = get_status(m);

	if (st == MIG_STATUS_NONE)
		return;
	json_object_set_new(info, "status", json_string(mig_status_names[st]));
	switch (st) {
	case MIG_STATUS_ACTIVE:
	case MIG_STATUS_CANCELLING:
	case MIG_STATUS_PRE_SWITCHOVER:
	case MIG_STATUS_DEVICE:
	case MIG_STATUS_COMPLETED:
		fill_time_info(m, st, info);
		json_object_set_new(info, "ram", ram_info(m, st));
		break;
	default:
		break;
	}
	pthread_mutex_lock(&m->lock);
	if (m->error)
		json_object_set_new(info, "error-desc", json_string(m->error->desc));
	pthread_mutex_unlock(&m->lock);
}

static json_t *qmp_query_migrate(struct migd *md, struct qmp_monitor *mon,
				 json_t *args, struct mig_error **errp)
{
	json_t *info = no_args(args, errp);

	if (info)
		incoming_fill_query_info(md, info); /* destination first */
	if (info && md->migration)
		fill_source_info(md->migration, info);
	return info;
}

static void add_thread(json_t *list, const char *name, int tid)
{
	json_array_append_new(list, json_pack("{s:s,s:i}", "name", name,
					      "thread-id", tid));
}

static json_t *qmp_query_migrationthreads(struct migd *md,
					  struct qmp_monitor *mon, json_t *args,
					  struct mig_error **errp)
{
	struct migration *m = md->migration;
	json_t *list;
	char name[32];

	if (!qapi_no_args(args, errp))
		return NULL;
	list = json_array();
	if (!m || !mig_status_is_running(get_status(m)))
		return list;
	if (m->tid)
		add_thread(list, "live_migration", m->tid);
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; m->mfd && i < mfd_send_nthreads(m->mfd); i++) {
		int tid = mfd_send_thread_tid(m->mfd, i);

		snprintf(name, sizeof(name), "mig/src/send_%u", i);
		if (tid > 0)
			add_thread(list, name, tid);
	}
	pthread_mutex_unlock(&m->lock);
	return list;
}

/* Live parameters: QEMU applies max-bandwidth, downtime-limit and
 * avail-switchover-bandwidth to a running migration at once. */
static void on_config_change(void *opaque, const struct mig_config *cfg)
{
	struct migd *md = opaque;
	struct migration *m = md->migration;

	if (!m)
		return;
	atomic_store(&m->max_bandwidth, mig_config_max_bandwidth(cfg));
	atomic_store(&m->downtime_limit, mig_config_downtime_limit(cfg));
	atomic_store(&m->avail_switchover_bw,
		     mig_config_param(cfg, MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH));
}

static const struct qmp_command migration_cmds[] = {
	{ "migrate", qmp_migrate, 0 },
	{ "migrate_cancel", qmp_migrate_cancel, 0 },
	{ "migrate-continue", qmp_migrate_continue, 0 },
	{ "query-migrate", qmp_query_migrate, 0 },
	{ "query-migrationthreads", qmp_query_migrationthreads, 0 },
};

void migration_register_qmp(struct migd *md, struct qmp_server *srv)
{
	qmp_register(srv, migration_cmds,
		     sizeof(migration_cmds) / sizeof(migration_cmds[0]));
	mig_config_set_notify(md->config, on_config_change, md);
}

void migration_shutdown(struct migd *md)
{
	struct migration *m = md->migration;
	int st;

	if (!m)
		return;
	do {
		st = get_status(m);
		if (!mig_status_is_running(st) || st == MIG_STATUS_CANCELLING)
			break;
	} while (!set_status(m, st, MIG_STATUS_CANCELLING));
	kick(m);
	thread_done(m);
}

/* After the loop ran its last posts (they reference m). */
void migration_free_last(struct migd *md)
{
	migration_free(md->migration);
	md->migration = NULL;
}
