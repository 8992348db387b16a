/* migration_qmp.c — the QMP side of the outgoing migration: migrate (and
 * its postcopy resume), migrate_cancel, migrate-continue,
 * migrate-start-postcopy, migrate-pause, query-migrate (with the incoming
 * side's part) and query-migrationthreads, the live-parameter hook, and
 * the migration's lifetime (create, free, shutdown). Control thread only.
 * The state machine and the thread are in migration.c. */
#include "control/migration.h"
#include "control/migration_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "control/incoming.h"
#include "control/jobs.h"
#include "control/migd.h"
#include "control/postcopy_dst.h"
#include "control/postcopy_src.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "control/transport.h"
#include "guest/guest.h"
#include "multifd/mfd_send.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save.h"
#include "socket/channel.h"

/* ---- QMP
 * ----------------------------------------------------------------------- */

static void migration_free(struct migration *m)
{
	if (!m)
		return;
	migration_join(m);
	chan_close(m->opened_ch);
	chan_close(m->resume_ch);
	mig_addr_clear(&m->resume_addr);
	mig_config_free(m->cfg);
	mig_addr_clear(&m->addr);
	mig_error_free(m->error);
	if (m->connect_cancel_fd >= 0)
		close(m->connect_cancel_fd);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

/* QEMU's migrate_prepare() checks, in its order. */
static bool can_migrate(struct migd *md, struct mig_error **errp)
{
	enum guest_runstate st = guest_get_runstate(md->guest);

	/* A snapshot job is a migration to a file in QEMU (it sets the
	 * migration state), so QEMU refuses with the same message. */
	if ((md->migration &&
	     mig_status_is_running(migration_status(md->migration))) ||
	    jobs_any_active(md->jobs, NULL)) {
		mig_error_setg(errp, "There's a migration process in progress");
		return false;
	}
	if (st == GUEST_RUNSTATE_INMIGRATE) {
		mig_error_setg(errp,
			       "Guest is waiting for an incoming migration");
		return false;
	}
	if (st == GUEST_RUNSTATE_POSTMIGRATE) {
		mig_error_setg(errp,
			       "Can't migrate the vm that was paused due to "
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
	static const char *const types[] = {"main", NULL};
	struct qapi_in list;
	bool ok = qapi_start_list(in, "channels", &list, errp);

	*count = 0;
	while (ok && qapi_has(&list, NULL)) {
		struct mig_addr a = {0};
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
		mig_error_setg(errp,
			       "'uri' and 'channels' arguments are mutually "
			       "exclusive; exactly one of the two should be "
			       "present in 'migrate' qmp command ");
		return false;
	}
	if (nchannels > 1) {
		mig_error_setg(errp, "Channel list has more than one entries");
		return false;
	}
	if (!nchannels && !uri) {
		mig_error_setg(errp,
			       "need either 'uri' or 'channels' argument");
		return false;
	}
	if (uri && mig_addr_parse_uri(uri, addr, errp) < 0)
		return false;
	if (blk || inc) {
		mig_error_setg(errp,
			       "Block migration is not supported by migd: "
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

	if (a->kind == MIG_ADDR_TCP || a->kind == MIG_ADDR_UNIX ||
	    a->kind == MIG_ADDR_VSOCK || a->kind == MIG_ADDR_RDMA ||
	    transport_is_stream(a))
		return true;
	mig_error_setg(errp, "migd does not support the '%s' transport yet",
		       names[a->kind]);
	return false;
}

void migration_vms_opts(const struct migd *md, const struct mig_config *cfg,
			struct vms_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->send_configuration =
		mig_config_knob(cfg, MIG_KNOB_SEND_CONFIGURATION);
	o->send_section_footer =
		mig_config_knob(cfg, MIG_KNOB_SEND_SECTION_FOOTER);
	o->store_global_state =
		mig_config_knob(cfg, MIG_KNOB_STORE_GLOBAL_STATE);
	o->cap_mapped_ram = mig_config_cap(cfg, MIG_CAP_MAPPED_RAM);
	o->cap_x_ignore_shared = mig_config_cap(cfg, MIG_CAP_X_IGNORE_SHARED);
	o->send_uuid =
		md->has_uuid && mig_config_cap(cfg, MIG_CAP_VALIDATE_UUID);
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
	m->connect_cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->addr = *a;
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	atomic_store(&m->status, MIG_STATUS_NONE);
	atomic_store(&m->max_bandwidth, mig_config_max_bandwidth(m->cfg));
	atomic_store(&m->downtime_limit, mig_config_downtime_limit(m->cfg));
	atomic_store(
		&m->avail_switchover_bw,
		mig_config_param(m->cfg, MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH));
	atomic_store(
		&m->max_postcopy_bw,
		mig_config_param(m->cfg, MIG_PARAM_MAX_POSTCOPY_BANDWIDTH));
	migration_vms_opts(md, m->cfg, &m->vms);
	m->start_ms = migration_wall_ms();
	return m;
}

/* fd: and exec: open their stream now, as QEMU's qmp_migrate() does; a
 * failure fails the migration (setup -> failed, error-desc) and the
 * command. */
static int open_stream(struct migd *md, struct qmp_monitor *mon,
		       struct migration *m, struct mig_error **errp)
{
	struct mig_error *err = NULL;
	int ret = transport_open_stream(md, mon, &m->addr, false, &m->opened_ch,
					&err);

	if (!ret)
		return 0;
	mig_error_setg(errp, "%s", err ? err->desc : "migration failed");
	migration_set_error(m, err);
	migration_set_status(m, MIG_STATUS_SETUP, MIG_STATUS_FAILED);
	return ret;
}

/* migrate resume:true (QEMU's migrate_prepare resume branch). */
static json_t *migrate_resume(struct migd *md, struct qmp_monitor *mon,
			      struct mig_addr *addr, struct mig_error **errp)
{
	struct migration *m = md->migration;
	struct channel *ch = NULL;
	json_t *ret = NULL;

	if (!m || migration_status(m) != MIG_STATUS_POSTCOPY_PAUSED) {
		mig_error_setg(errp, "Cannot resume if there is no paused "
				     "migration");
		goto out;
	}
	if (!transport_supported(addr, errp))
		goto out;
	if (transport_is_stream(addr) &&
	    transport_open_stream(md, mon, addr, false, &ch, errp))
		goto out;
	if (!pcs_request_resume(m, addr, ch, errp))
		ret = json_object();
	else
		chan_close(ch);
out:
	mig_addr_clear(addr);
	return ret;
}

static json_t *qmp_migrate(struct migd *md, struct qmp_monitor *mon,
			   json_t *args, struct mig_error **errp)
{
	struct mig_addr addr = {0};
	struct migration *m;
	bool resume = false;

	if (!read_target(args, &addr, &resume, errp))
		goto err;
	if (transport_check_compatible(md->config, &addr, errp))
		goto err;
	if (resume)
		return migrate_resume(md, mon, &addr, errp);
	/* Postcopy over TLS: the return-path thread reads the main channel's
	 * session while this migration's thread writes it (socket/tls.c). */
	if (!can_migrate(md, errp) || !transport_supported(&addr, errp))
		goto err;
	m = migration_new(md, &addr);
	if (!m) {
		mig_error_setg(errp, "out of memory");
		goto err;
	}
	migration_free(md->migration);
	md->migration = m;
	migration_set_status(m, MIG_STATUS_NONE, MIG_STATUS_SETUP);
	if (open_stream(md, mon, m, errp))
		return NULL;
	if (pthread_create(&m->thread, NULL, migration_thread_main, m)) {
		migration_set_error(m, NULL);
		mig_error_setg(errp, "cannot start the migration thread");
		migration_set_status(m, MIG_STATUS_SETUP, MIG_STATUS_FAILED);
		return NULL;
	}
	m->thread_started = true;
	return json_object();
err:
	mig_addr_clear(&addr);
	return NULL;
}

/* QEMU's migration_in_postcopy(). */
static bool mig_status_in_postcopy(int st)
{
	return st == MIG_STATUS_POSTCOPY_ACTIVE ||
	       st == MIG_STATUS_POSTCOPY_PAUSED ||
	       st == MIG_STATUS_POSTCOPY_RECOVER_SETUP ||
	       st == MIG_STATUS_POSTCOPY_RECOVER;
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
	/* QEMU 10.0: once postcopy started the source cannot take over */
	if (mig_status_in_postcopy(migration_status(m))) {
		json_decref(ret);
		mig_error_setg(errp, "Postcopy migration in progress, cannot "
				     "cancel.");
		return NULL;
	}
	do {
		st = migration_status(m);
		if (!mig_status_is_running(st) || st == MIG_STATUS_CANCELLING)
			return ret;
	} while (!migration_set_status(m, st, MIG_STATUS_CANCELLING));
	migration_kick(m);
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
	if (!m || (int)migration_status(m) != state) {
		mig_error_setg(errp, "Migration not in expected state: %s",
			       mig_status_names[m ? migration_status(m)
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
	json_object_set_new(info, "setup-time",
			    json_integer((json_int_t)m->setup_time));
	json_object_set_new(
		info, "total-time",
		json_integer((json_int_t)(st == MIG_STATUS_COMPLETED
						  ? m->total_time
						  : migration_wall_ms() -
							    m->start_ms)));
	/* QEMU shows the switchover's downtime from postcopy-active on */
	if (st == MIG_STATUS_COMPLETED || mig_status_in_postcopy(st))
		json_object_set_new(info, "downtime",
				    json_integer((json_int_t)m->downtime));
	else
		json_object_set_new(
			info, "expected-downtime",
			json_integer((json_int_t)m->expected_downtime));
	pthread_mutex_unlock(&m->lock);
}

static json_t *ram_info(struct migration *m, enum mig_status st)
{
	uint64_t remaining, rate, pc_bytes = 0;
	struct mig_counters *c = &m->ctr;
	uint64_t normal = mig_read(&c->normal_pages);
	json_t *ram;

	pthread_mutex_lock(&m->lock);
	if (mig_read(&c->postcopy_base))
		pc_bytes = mig_transferred(c) - mig_read(&c->postcopy_base);
	ram = json_pack(
		"{s:I,s:I,s:I,s:i,s:I,s:I,s:f,s:I,s:i,s:i,s:I,s:I,s:I,s:I,s:i,"
		"s:I}",
		"transferred", (json_int_t)mig_transferred(c), "total",
		(json_int_t)guest_ram_size(m->md->guest), "duplicate",
		(json_int_t)mig_read(&c->zero_pages), "skipped", 0, "normal",
		(json_int_t)normal, "normal-bytes",
		(json_int_t)(normal * RAM_TARGET_PAGE_SIZE), "mbps", m->mbps,
		"dirty-sync-count", (json_int_t)mig_read(&c->dirty_sync_count),
		"postcopy-requests",
		(json_int_t)mig_read(&c->postcopy_requests), "page-size",
		RAM_TARGET_PAGE_SIZE, "multifd-bytes",
		(json_int_t)mig_read(&c->multifd_bytes), "pages-per-second",
		(json_int_t)m->pages_per_second, "precopy-bytes",
		(json_int_t)mig_read(&c->precopy_bytes), "downtime-bytes",
		(json_int_t)mig_read(&c->downtime_bytes), "postcopy-bytes",
		(json_int_t)pc_bytes, "dirty-sync-missed-zero-copy",
		(json_int_t)mig_read(&c->dirty_sync_missed_zero_copy));
	pthread_mutex_unlock(&m->lock);
	/* QEMU fills these only before completion, but they are mandatory
	 * members, so its output shows 0 afterwards. */
	remaining = mig_read(&c->remaining_pages) * RAM_TARGET_PAGE_SIZE;
	rate = mig_read(&c->dirty_pages_rate);
	if (st == MIG_STATUS_COMPLETED)
		remaining = rate = 0;
	json_object_set_new(ram, "remaining",
			    json_integer((json_int_t)remaining));
	json_object_set_new(ram, "dirty-pages-rate",
			    json_integer((json_int_t)rate));
	return ram;
}

/* QEMU's fill_source_migration_info(). */
static void fill_source_info(struct migration *m, json_t *info)
{
	enum mig_status st = migration_status(m);

	if (st == MIG_STATUS_NONE)
		return;
	json_object_set_new(info, "status", json_string(mig_status_names[st]));
	switch (st) {
	case MIG_STATUS_ACTIVE:
	case MIG_STATUS_CANCELLING:
	case MIG_STATUS_POSTCOPY_ACTIVE:
	case MIG_STATUS_PRE_SWITCHOVER:
	case MIG_STATUS_DEVICE:
	case MIG_STATUS_POSTCOPY_PAUSED:
	case MIG_STATUS_POSTCOPY_RECOVER_SETUP:
	case MIG_STATUS_POSTCOPY_RECOVER:
	case MIG_STATUS_COMPLETED:
		fill_time_info(m, st, info);
		json_object_set_new(info, "ram", ram_info(m, st));
		converge_fill_info(m, info); /* throttle, dirty-limit */
		break;
	default:
		break;
	}
	pthread_mutex_lock(&m->lock);
	if (m->error)
		json_object_set_new(info, "error-desc",
				    json_string(m->error->desc));
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
	json_array_append_new(
		list, json_pack("{s:s,s:i}", "name", name, "thread-id", tid));
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
	if (!m || !mig_status_is_running(migration_status(m)))
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
	atomic_store(
		&m->avail_switchover_bw,
		mig_config_param(cfg, MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH));
	atomic_store(&m->max_postcopy_bw,
		     mig_config_param(cfg, MIG_PARAM_MAX_POSTCOPY_BANDWIDTH));
	converge_params_changed(m, cfg);
}

/* QEMU's qmp_migrate_start_postcopy(): a flag the migration thread looks
 * at; no error once the migration finished (that would be racy). */
static json_t *qmp_migrate_start_postcopy(struct migd *md,
					  struct qmp_monitor *mon, json_t *args,
					  struct mig_error **errp)
{
	struct migration *m = md->migration;

	if (!qapi_no_args(args, errp))
		return NULL;
	if (!mig_config_cap(md->config, MIG_CAP_POSTCOPY_RAM) &&
	    !mig_config_cap(md->config, MIG_CAP_DIRTY_BITMAPS)) {
		mig_error_setg(errp, "Enable postcopy with "
				     "migrate_set_capability before the start "
				     "of migration");
		return NULL;
	}
	if (!m || migration_status(m) == MIG_STATUS_NONE) {
		mig_error_setg(errp, "Postcopy must be started after migration "
				     "has been started");
		return NULL;
	}
	atomic_store(&m->start_postcopy, true);
	return json_object();
}

/* QEMU's qmp_migrate_pause(): the source in postcopy-active/-recover
 * first, then the destination (control/postcopy_dst.c). */
static json_t *qmp_migrate_pause(struct migd *md, struct qmp_monitor *mon,
				 json_t *args, struct mig_error **errp)
{
	int ret;

	if (!qapi_no_args(args, errp))
		return NULL;
	ret = pcs_pause(md->migration, errp);
	if (ret == -ENOENT)
		ret = incoming_postcopy_pause(md, errp);
	if (ret == -ENOENT) {
		mig_error_setg(errp, "migrate-pause is currently only "
				     "supported during postcopy-active or "
				     "postcopy-recover state");
	}
	return ret ? NULL : json_object();
}

static const struct qmp_command migration_cmds[] = {
	{"migrate", qmp_migrate, 0},
	{"migrate_cancel", qmp_migrate_cancel, 0},
	{"migrate-continue", qmp_migrate_continue, 0},
	{"migrate-start-postcopy", qmp_migrate_start_postcopy, 0},
	{"migrate-pause", qmp_migrate_pause, QMP_CMD_ALLOW_OOB},
	{"query-migrate", qmp_query_migrate, 0},
	{"query-migrationthreads", qmp_query_migrationthreads, 0},
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
		st = migration_status(m);
		if (!mig_status_is_running(st) || st == MIG_STATUS_CANCELLING)
			break;
	} while (!migration_set_status(m, st, MIG_STATUS_CANCELLING));
	migration_kick(m);
	migration_join(m);
}

/* After the loop ran its last posts (they reference m). */
void migration_free_last(struct migd *md)
{
	migration_free(md->migration);
	md->migration = NULL;
}
