/* postcopy_dst.c — postcopy on the destination, control side (see
 * postcopy_dst.h and incoming_priv.h): the loader's hooks (events, pause,
 * recovery), statuses active -> postcopy-active -> completed, RUN starting
 * the vCPUs, the preempt channel and its thread ("mig/dst/preempt"), the
 * pause (postcopy-paused: the guest stays blocked on missing pages),
 * migrate-recover and the new main channel (postcopy-recover), migrate-pause
 * on a destination, and postcopy-blocktime in query-migrate.
 * Control thread, except the hooks the loading thread calls (notify,
 * pause, recovering), the preempt thread and incoming_pc_kick(). */
#include "control/postcopy_dst.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/incoming_priv.h"
#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "control/vm.h"
#include "guest/guest.h"
#include "guest/vcpu.h"
#include "multifd/mfd_recv.h"
#include "multifd/postcopy_proto.h"
#include "multifd/qemufile.h"
#include "socket/channel.h"
#include "util/log.h"

void incoming_pc_init(struct incoming *inc)
{
	pthread_cond_init(&inc->pc.cond, NULL);
}

void incoming_pc_free(struct incoming *inc)
{
	free(inc->pc.vcpu_blocktime);
	pthread_cond_destroy(&inc->pc.cond);
}

/* ---- the loader's hooks (loading thread) -------------------------------- */

static void on_loader_event(void *opaque, enum loadvm_event ev)
{
	static const unsigned bits[] = {
		[LOADVM_EV_LISTEN] = INCOMING_EV_PC_LISTEN,
		[LOADVM_EV_RUN] = INCOMING_EV_PC_RUN,
		[LOADVM_EV_RESUMED] = INCOMING_EV_PC_RESUMED,
	};
	struct incoming *inc = opaque;

	if (ev == LOADVM_EV_RESUMED)
		atomic_store(&inc->pc.recovering, false);
	incoming_post(inc, bits[ev]);
}

static bool is_recovering(void *opaque)
{
	struct incoming *inc = opaque;

	return atomic_load(&inc->pc.recovering);
}

static bool is_ending(void *opaque)
{
	struct incoming *inc = opaque;

	return atomic_load(&inc->ending);
}

/* QEMU's postcopy_pause_incoming(): the load thread waits for the new main
 * channel of a recovery, or for the end of the migration. */
static struct qfile *on_pause(void *opaque, struct mig_error *err)
{
	struct incoming *inc = opaque;
	struct qfile *f = NULL;

	log_warn("incoming migration: postcopy paused: %s",
		 err ? err->desc : "connection lost");
	mig_error_free(err);
	pthread_mutex_lock(&inc->lock);
	inc->pc.paused = true;
	pthread_mutex_unlock(&inc->lock);
	incoming_post(inc, INCOMING_EV_PC_PAUSED);
	pthread_mutex_lock(&inc->lock);
	while (!inc->pc.new_main_f && !atomic_load(&inc->ending))
		pthread_cond_wait(&inc->pc.cond, &inc->lock);
	if (!atomic_load(&inc->ending)) {
		f = inc->pc.new_main_f;
		inc->pc.new_main_f = NULL;
	}
	inc->pc.paused = false;
	pthread_mutex_unlock(&inc->lock);
	return f;
}

/* Right after the sync the source made before LISTEN, receivers released
 * from their SYNC may not have gone back to waiting yet: give them a
 * moment (loading thread). */
static bool multifd_idle(void *opaque)
{
	struct incoming *inc = opaque;

	for (int i = 0; i < 2000 && !atomic_load(&inc->ending); i++) {
		if (mfd_recv_idle(inc->mfd))
			return true;
		usleep(1000);
	}
	return mfd_recv_idle(inc->mfd);
}

void incoming_pc_setup_loader(struct incoming *inc)
{
	struct migd *md = inc->md;
	struct loadvm_postcopy_opts o = {
		.postcopy_ram = inc->pc.enabled,
		.blocktime =
			mig_config_cap(inc->cfg, MIG_CAP_POSTCOPY_BLOCKTIME),
		.nr_vcpus = vcpus_count(md->guest->vcpus),
		.notify = on_loader_event,
		.pause = on_pause,
		.recovering = is_recovering,
		.preempt = inc->pc.preempt,
		.stopping = is_ending,
		.opaque = inc,
	};

	if (inc->mfd)
		o.multifd_idle = multifd_idle;
	loadvm_set_postcopy(&inc->ld, &o);
}

void incoming_pc_kick(struct incoming *inc)
{
	pthread_mutex_lock(&inc->lock);
	pthread_cond_broadcast(&inc->pc.cond);
	if (inc->pc.preempt_ch)
		chan_shutdown(inc->pc.preempt_ch);
	pthread_mutex_unlock(&inc->lock);
}

/* ---- the preempt channel ------------------------------------------------- */

static bool network_error(int ret)
{
	return ret == -EPIPE || ret == -EPROTO || ret == -ECANCELED ||
	       ret == -ECONNRESET || ret == -EIO || ret == -ETIMEDOUT;
}

/* QEMU's postcopy_preempt_thread: page records until EOS. A broken
 * channel only ends the thread: the source pauses on it and the main
 * channel then breaks too (QEMU's destination waits the same way); a
 * recovery brings a new preempt channel. */
static void *preempt_thread(void *opaque)
{
	struct incoming *inc = opaque;
	struct mig_error *err = NULL;
	int ret;

	pthread_setname_np(pthread_self(), "mig/dst/preempt");
	ret = loadvm_load_preempt(&inc->ld, inc->pc.preempt_f, &err);
	if (!ret || atomic_load(&inc->ending)) {
		mig_error_free(err);
	} else if (network_error(ret)) {
		log_info("incoming migration: preempt channel: %s", err->desc);
		mig_error_free(err);
	} else {
		incoming_fail(inc, err);
	}
	return NULL;
}

static void stop_preempt(struct incoming *inc)
{
	struct channel *ch;

	pthread_mutex_lock(&inc->lock);
	ch = inc->pc.preempt_ch;
	inc->pc.preempt_ch = NULL;
	if (ch)
		chan_shutdown(ch);
	pthread_mutex_unlock(&inc->lock);
	if (inc->pc.preempt_started)
		pthread_join(inc->pc.preempt_thread, NULL);
	inc->pc.preempt_started = false;
	qfile_free(inc->pc.preempt_f);
	inc->pc.preempt_f = NULL;
	chan_close(ch);
}

/* Its records wait for LISTEN (QEMU creates the thread there). */
static void maybe_start_preempt(struct incoming *inc)
{
	int ret;

	if (!inc->pc.preempt_f || inc->pc.preempt_started || !inc->pc.listened)
		return;
	ret = pthread_create(&inc->pc.preempt_thread, NULL, preempt_thread,
			     inc);
	if (ret) {
		struct mig_error *err = NULL;

		mig_error_setg(&err, "Unable to start the preempt thread: %s",
			       strerror(ret));
		incoming_fail(inc, err);
		return;
	}
	inc->pc.preempt_started = true;
}

static bool accept_preempt(struct incoming *inc, struct channel *ch)
{
	if (!inc->pc.enabled || !inc->pc.preempt || inc->pc.preempt_f)
		return false;
	inc->pc.preempt_f = qfile_reader_new(ch);
	if (!inc->pc.preempt_f)
		return false;
	pthread_mutex_lock(&inc->lock);
	inc->pc.preempt_ch = ch;
	pthread_mutex_unlock(&inc->lock);
	log_info("incoming migration: postcopy preempt channel from %s",
		 ch->desc);
	maybe_start_preempt(inc);
	return true;
}

/* ---- recovery: the new main channel -------------------------------------- */

static bool accept_new_main(struct incoming *inc, struct channel *ch)
{
	struct qfile *f;
	bool waiting;

	pthread_mutex_lock(&inc->lock);
	waiting = inc->pc.paused && !inc->pc.new_main_f;
	pthread_mutex_unlock(&inc->lock);
	if (!waiting || inc->status != MIG_STATUS_POSTCOPY_PAUSED)
		return false;
	f = qfile_reader_new(ch);
	if (!f)
		return false;
	qfile_free(inc->main_f); /* the load thread waits: unused now */
	inc->main_f = f;
	incoming_set_status(inc, MIG_STATUS_POSTCOPY_RECOVER);
	atomic_store(&inc->pc.recovering, true);
	pthread_mutex_lock(&inc->lock);
	chan_close(inc->main_ch);
	inc->main_ch = ch;
	inc->pc.new_main_f = f;
	pthread_cond_broadcast(&inc->pc.cond);
	pthread_mutex_unlock(&inc->lock);
	log_info("incoming migration: postcopy recovery channel from %s",
		 ch->desc);
	return true;
}

bool incoming_pc_connection(struct incoming *inc, struct channel *ch)
{
	if (!inc->pc.enabled || !inc->pc.listened)
		return accept_preempt(inc, ch);
	if (accept_new_main(inc, ch))
		return true;
	return accept_preempt(inc, ch);
}

/* ---- events (control thread) --------------------------------------------- */

static void on_listen(struct incoming *inc)
{
	struct vcpus *v = inc->md->guest->vcpus;

	inc->pc.listened = true;
	vcpus_set_faults_block(v, true);
	for (unsigned i = 0; i < vcpus_count(v); i++)
		loadvm_blocktime_vcpu(&inc->ld, i, vcpus_thread_id(v, i));
	incoming_set_status(inc, MIG_STATUS_POSTCOPY_ACTIVE);
	maybe_start_preempt(inc);
}

/* The old channels are dead: the load thread and the fault thread no
 * longer use them (the return path is detached). */
static void on_paused(struct incoming *inc)
{
	atomic_store(&inc->pc.recovering, false);
	incoming_set_status(inc, MIG_STATUS_POSTCOPY_PAUSED);
	stop_preempt(inc);
	pthread_mutex_lock(&inc->lock);
	if (inc->main_ch)
		chan_shutdown(inc->main_ch);
	pthread_mutex_unlock(&inc->lock);
}

void incoming_pc_events(struct incoming *inc, unsigned ev)
{
	if (ev & INCOMING_EV_PC_LISTEN)
		on_listen(inc);
	if (ev & INCOMING_EV_PC_RUN) /* QEMU's loadvm_postcopy_handle_run_bh */
		vm_incoming_done(inc->md, -1);
	/* A resume followed at once by a new break can share one batch;
	 * the reverse cannot (a recovery needs postcopy-paused first). */
	if (ev & INCOMING_EV_PC_RESUMED)
		incoming_set_status(inc, MIG_STATUS_POSTCOPY_ACTIVE);
	if (ev & INCOMING_EV_PC_PAUSED)
		on_paused(inc);
}

/* ---- end ----------------------------------------------------------------- */

void incoming_pc_teardown(struct incoming *inc)
{
	stop_preempt(inc);
	if (!inc->main_f && !inc->ld.f)
		return; /* the loader was never set up */
	loadvm_set_return_path(&inc->ld, NULL);
	if (inc->pc.keep_uffd) {
		/* After LISTEN a failed migration leaves the vCPUs blocked on
		 * their missing pages: never zero-filled. The fds go at
		 * daemon exit (incoming_shutdown). */
		loadvm_stop_faults(&inc->ld);
		return;
	}
	loadvm_fini(&inc->ld);
	inc->ld.f = NULL;
	vcpus_set_faults_block(inc->md->guest->vcpus, false);
}

void incoming_pc_completed(struct incoming *inc)
{
	unsigned n = vcpus_count(inc->md->guest->vcpus);
	int64_t total;

	if (!n)
		n = 1;
	free(inc->pc.vcpu_blocktime);
	inc->pc.vcpu_blocktime = calloc(n, sizeof(uint32_t));
	if (!inc->pc.vcpu_blocktime)
		return;
	total = loadvm_blocktime(&inc->ld, inc->pc.vcpu_blocktime, n);
	if (total < 0)
		return;
	inc->pc.has_blocktime = true;
	inc->pc.blocktime = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
	inc->pc.nvcpu_blocktime = n;
}

/* QEMU shows blocktime once the destination completed. */
void incoming_pc_fill_query(struct incoming *inc, json_t *out)
{
	json_t *list;

	if (!inc->pc.has_blocktime || inc->status != MIG_STATUS_COMPLETED)
		return;
	list = json_array();
	for (unsigned i = 0; list && i < inc->pc.nvcpu_blocktime; i++)
		json_array_append_new(list,
				      json_integer(inc->pc.vcpu_blocktime[i]));
	json_object_set_new(out, "postcopy-blocktime",
			    json_integer(inc->pc.blocktime));
	if (list)
		json_object_set_new(out, "postcopy-vcpu-blocktime", list);
}

/* ---- QMP: migrate-recover, migrate-pause (destination) ------------------ */

bool incoming_postcopy_in_progress(struct migd *md)
{
	struct incoming *inc = md->incoming_state;

	return inc && !inc->finished &&
	       (inc->status == MIG_STATUS_POSTCOPY_ACTIVE ||
		inc->status == MIG_STATUS_POSTCOPY_PAUSED ||
		inc->status == MIG_STATUS_POSTCOPY_RECOVER);
}

bool incoming_postcopy_ram_missing(struct migd *md)
{
	struct incoming *inc = md->incoming_state;

	return inc && (inc->pc.keep_uffd || incoming_postcopy_in_progress(md));
}

/* The loader sees a network error and pauses (loadvm_pc_maybe_pause). */
static void shutdown_channels(struct incoming *inc)
{
	pthread_mutex_lock(&inc->lock);
	if (inc->main_ch)
		chan_shutdown(inc->main_ch);
	if (inc->pc.preempt_ch)
		chan_shutdown(inc->pc.preempt_ch);
	pthread_mutex_unlock(&inc->lock);
}

int incoming_postcopy_pause(struct migd *md, struct mig_error **errp)
{
	struct incoming *inc = md->incoming_state;

	if (!inc || inc->status == MIG_STATUS_NONE)
		return -ENOENT;
	if (inc->finished || (inc->status != MIG_STATUS_POSTCOPY_ACTIVE &&
			      inc->status != MIG_STATUS_POSTCOPY_RECOVER)) {
		mig_error_setg(errp, "migrate-pause is currently only "
				     "supported during postcopy-active or "
				     "postcopy-recover state");
		return -EINVAL;
	}
	shutdown_channels(inc);
	return 0;
}

bool incoming_pc_idle_pause(struct incoming *inc)
{
	if (inc->finished || inc->status != MIG_STATUS_POSTCOPY_ACTIVE ||
	    loadvm_postcopy_state(&inc->ld) != PC_INCOMING_RUNNING)
		return false;
	log_warn("incoming migration: no data from the source for %u "
		 "seconds in postcopy: pausing",
		 inc->idle_timeout_s);
	shutdown_channels(inc);
	return true;
}

static json_t *cmd_migrate_recover(struct migd *md, struct qmp_monitor *mon,
				   json_t *args, struct mig_error **errp)
{
	struct incoming *inc = md->incoming_state;
	struct mig_addr addr = {0};
	const char *uri = NULL;
	struct qapi_in in;
	bool ok;

	qapi_in_init(&in, args);
	ok = qapi_read_str(&in, "uri", &uri, errp) &&
	     qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok)
		return NULL;
	if (!inc || inc->finished ||
	    inc->status != MIG_STATUS_POSTCOPY_PAUSED) {
		mig_error_setg(errp, "Migrate recover can only be run when "
				     "postcopy is paused.");
		return NULL;
	}
	if (mig_addr_parse_uri(uri, &addr, errp))
		return NULL;
	if (addr.kind != MIG_ADDR_TCP && addr.kind != MIG_ADDR_UNIX &&
	    addr.kind != MIG_ADDR_VSOCK) {
		mig_addr_clear(&addr);
		mig_error_setg(errp, "Postcopy recovery is only supported by "
				     "migd over tcp:, unix: and vsock:");
		return NULL;
	}
	if (incoming_relisten(inc, &addr, errp))
		return NULL;
	return json_object();
}

static const struct qmp_command pc_commands[] = {
	{"migrate-recover", cmd_migrate_recover, QMP_CMD_ALLOW_OOB},
};

void incoming_pc_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, pc_commands,
		     sizeof(pc_commands) / sizeof(pc_commands[0]));
}
