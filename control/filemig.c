/* filemig.c — internal mapped-ram save/restore for jobs (see filemig.h).
 * One worker thread ("mig/filemig") per operation runs what 'migrate' and
 * the incoming thread run for a paused guest — the same encoders
 * (vmstate, ram_save with the mapped-ram writer) and the same loader
 * (loadvm, ram_load with the mapped-ram reader) — without the migration
 * state machines, so no user-visible migration state changes.
 * Lock: fm->lock guards the I/O objects while the thread sets them up or
 * frees them, so filemig_cancel() can kick them from the control thread. */
#include "control/filemig.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/migd.h"
#include "control/migration.h"
#include "file/filechan.h"
#include "multifd/loadvm.h"
#include "multifd/migstats.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "multifd/ram_load_file.h"
#include "multifd/ram_save.h"
#include "multifd/ram_save_file.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"
#include "util/evloop.h"

#define FILEMIG_MAX_CHANNELS 255

struct filemig {
	struct migd *md;
	bool load;
	char *path;
	uint64_t offset;
	unsigned channels;
	bool direct;
	char runstate[32];
	struct vms_opts vms;
	filemig_done_fn done;
	void *opaque;
	pthread_t thread;
	bool started;
	int ret;
	struct mig_error *err;
	struct mig_counters ctr;
	_Atomic uint64_t loaded; /* bytes read into RAM (load) */
	atomic_bool cancelled;
	pthread_mutex_t lock;
	struct channel *main;	   /* (lock) */
	struct ram_save_file *rsf; /* (lock) */
	struct ram_load_file *rlf; /* (lock) */
};

/* ---- channels ---------------------------------------------------------- */

static void close_all(struct channel **chans, unsigned n)
{
	for (unsigned i = 0; chans && i < n; i++)
		chan_close(chans[i]);
	free(chans);
}

/* The main channel (fm->main) and the extra ones; NULL on failure. */
static struct channel **open_channels(struct filemig *fm,
				      struct mig_error **errp)
{
	enum filechan_role role = fm->load ? FILECHAN_DEST : FILECHAN_SOURCE;
	struct channel **chans =
		calloc(fm->channels ? fm->channels : 1, sizeof(*chans));
	struct channel *main;

	if (!chans) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	main = filechan_open(fm->path, role, fm->offset, errp);
	if (!main)
		goto err;
	pthread_mutex_lock(&fm->lock);
	fm->main = main;
	pthread_mutex_unlock(&fm->lock);
	for (unsigned i = 0; i < fm->channels; i++) {
		chans[i] =
			filechan_open_extra(fm->path, role, fm->direct, errp);
		if (!chans[i])
			goto err;
	}
	return chans;
err:
	close_all(chans, fm->channels);
	return NULL;
}

static int cancelled(struct filemig *fm, struct mig_error **errp)
{
	if (!atomic_load(&fm->cancelled))
		return 0;
	mig_error_setg(errp, "operation cancelled");
	return -ECANCELED;
}

/* ---- save ---------------------------------------------------------------- */

static int write_stream(struct filemig *fm, struct qfile *f,
			struct ram_save *rs, struct mig_error **errp)
{
	int ret;

	vms_put_header(f, &fm->vms);
	ret = ram_save_setup(rs, errp);
	if (!ret)
		ret = cancelled(fm, errp);
	if (!ret)
		ret = ram_save_complete(rs, errp);
	if (ret)
		return ret;
	vms_put_timer(f, &fm->vms);
	vms_put_globalstate(f, &fm->vms, fm->runstate);
	vms_put_eof(f);
	vms_put_vmdesc(f, &fm->vms);
	ret = qfile_flush(f);
	if (ret)
		filechan_set_io_error(errp, ret, true);
	return ret;
}

static int save_body(struct filemig *fm, struct channel **chans,
		     struct mig_error **errp)
{
	struct ram_save_opts ro = {.vms = &fm->vms, .zero = RAM_ZERO_MULTIFD};
	struct ram_save_file *rsf;
	struct ram_save *rs = NULL;
	struct qfile *f;
	int ret = -ENOMEM;

	rsf = ram_save_file_new(fm->md->guest, fm->main, chans, fm->channels,
				true, &fm->ctr, errp);
	if (!rsf)
		return -ENOMEM;
	pthread_mutex_lock(&fm->lock);
	fm->rsf = rsf;
	pthread_mutex_unlock(&fm->lock);
	ro.file = rsf;
	f = qfile_writer_new(fm->main);
	if (f)
		rs = ram_save_new(fm->md->guest, f, &ro, &fm->ctr);
	if (rs)
		ret = write_stream(fm, f, rs, errp);
	else
		mig_error_setg(errp, "Out of memory");
	if (ret && ram_save_file_error(rsf, NULL)) {
		mig_error_free(*errp); /* the worker's error is the cause */
		*errp = NULL;
		ram_save_file_error(rsf, errp);
	}
	ram_save_free(rs);
	qfile_free(f);
	return ret;
}

/* ---- load ---------------------------------------------------------------- */

static int load_body(struct filemig *fm, struct channel **chans,
		     struct mig_error **errp)
{
	struct ram_load_opts ro = {0};
	struct ram_load_file *rlf;
	struct ram_load *rl = NULL;
	struct qfile *f = NULL;
	struct loadvm ld;
	int ret = -ENOMEM;

	rlf = ram_load_file_new(fm->main, chans, fm->channels, &fm->loaded,
				errp);
	if (!rlf)
		return -ENOMEM;
	ram_load_file_set_zero_absent(rlf, true);
	pthread_mutex_lock(&fm->lock);
	fm->rlf = rlf;
	pthread_mutex_unlock(&fm->lock);
	ro.file = rlf;
	rl = ram_load_new(fm->md->guest, &ro);
	f = rl ? qfile_reader_new(fm->main) : NULL;
	if (f) {
		loadvm_init(&ld, f, rl, &fm->vms, false);
		ret = loadvm_run(&ld, errp);
	} else {
		mig_error_setg(errp, "Out of memory");
	}
	qfile_free(f);
	ram_load_free(rl);
	return ret;
}

/* ---- the thread ---------------------------------------------------------- */

static void on_done(struct ev_loop *loop, void *opaque)
{
	struct filemig *fm = opaque;

	fm->done(fm->opaque, fm, fm->ret, fm->err);
}

static void release_io(struct filemig *fm)
{
	struct ram_save_file *rsf;
	struct ram_load_file *rlf;
	struct channel *main;

	pthread_mutex_lock(&fm->lock);
	rsf = fm->rsf;
	rlf = fm->rlf;
	main = fm->main;
	fm->rsf = NULL;
	fm->rlf = NULL;
	fm->main = NULL;
	pthread_mutex_unlock(&fm->lock);
	ram_save_file_free(rsf);
	ram_load_file_free(rlf);
	chan_close(main);
}

static void *filemig_thread(void *opaque)
{
	struct filemig *fm = opaque;
	struct channel **chans;

	pthread_setname_np(pthread_self(), "mig/filemig");
	chans = open_channels(fm, &fm->err);
	fm->ret = chans ? 0 : -EIO;
	if (chans && !(fm->ret = cancelled(fm, &fm->err)))
		fm->ret = fm->load ? load_body(fm, chans, &fm->err)
				   : save_body(fm, chans, &fm->err);
	close_all(chans, fm->channels); /* those not taken */
	if (fm->ret && !fm->err)
		mig_error_setg(&fm->err, "%s failed: %s",
			       fm->load ? "load" : "save", strerror(-fm->ret));
	release_io(fm);
	if (ev_loop_post(fm->md->loop, on_done, fm) < 0)
		fm->done = NULL; /* the loop is gone: nobody to tell */
	return NULL;
}

/* ---- API ------------------------------------------------------------------
 */

static struct filemig *start(struct migd *md, const struct filemig_opts *o,
			     bool load, filemig_done_fn done, void *opaque,
			     struct mig_error **errp)
{
	struct filemig *fm;
	int ret;

	if (!o->path || o->channels > FILEMIG_MAX_CHANNELS) {
		mig_error_setg(errp, "Invalid file migration options");
		return NULL;
	}
	fm = calloc(1, sizeof(*fm));
	if (!fm || !(fm->path = strdup(o->path))) {
		free(fm);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	fm->md = md;
	fm->load = load;
	fm->offset = o->offset;
	fm->channels = o->channels;
	fm->direct = o->direct_io && o->channels;
	snprintf(fm->runstate, sizeof(fm->runstate), "%s",
		 o->runstate ? o->runstate : "paused");
	fm->done = done;
	fm->opaque = opaque;
	pthread_mutex_init(&fm->lock, NULL);
	/* What both ends agree on: the daemon's knobs, with mapped-ram. */
	migration_vms_opts(md, md->config, &fm->vms);
	fm->vms.cap_mapped_ram = true;
	ret = pthread_create(&fm->thread, NULL, filemig_thread, fm);
	if (ret) {
		mig_error_setg(errp, "Unable to start a thread: %s",
			       strerror(ret));
		filemig_free(fm);
		return NULL;
	}
	fm->started = true;
	return fm;
}

struct filemig *filemig_save(struct migd *md, const struct filemig_opts *o,
			     filemig_done_fn done, void *opaque,
			     struct mig_error **errp)
{
	return start(md, o, false, done, opaque, errp);
}

struct filemig *filemig_load(struct migd *md, const struct filemig_opts *o,
			     filemig_done_fn done, void *opaque,
			     struct mig_error **errp)
{
	return start(md, o, true, done, opaque, errp);
}

void filemig_cancel(struct filemig *fm)
{
	atomic_store(&fm->cancelled, true);
	pthread_mutex_lock(&fm->lock);
	if (fm->main)
		chan_shutdown(fm->main);
	ram_save_file_kick(fm->rsf);
	ram_load_file_kick(fm->rlf);
	pthread_mutex_unlock(&fm->lock);
}

void filemig_free(struct filemig *fm)
{
	if (!fm)
		return;
	if (fm->started)
		pthread_join(fm->thread, NULL);
	mig_error_free(fm->err);
	pthread_mutex_destroy(&fm->lock);
	free(fm->path);
	free(fm);
}

uint64_t filemig_progress(struct filemig *fm)
{
	return fm->load ? atomic_load(&fm->loaded)
			: mig_read(&fm->ctr.multifd_bytes);
}
