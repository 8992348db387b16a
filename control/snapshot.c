/* snapshot.c — snapshot-save, snapshot-load and snapshot-delete (see
 * snapshot.h). Each command validates its arguments' types and the tag,
 * creates a job (created, running) and replies; the work starts from a
 * zero-delay timer, like QEMU's bottom half, so every check that QEMU
 * makes inside the job is reported as the job's error, in QEMU's order
 * and words. Saves and loads run one at a time (a second one fails), and
 * never while a migration is active.
 * Control thread only; the filemig worker reports back by ev_loop_post. */
#include "control/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/cmdline.h"
#include "control/filemig.h"
#include "control/jobs.h"
#include "control/migcfg.h"
#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "control/snapstore.h"
#include "control/vm.h"
#include "guest/guest.h"
#include "util/evloop.h"

#define SNAP_MAX_DEVICES 256
#define SNAP_MAX_CHANNELS 4

struct snap_job {
	struct migd *md;
	struct job *job;
	enum job_type type;
	char *tag;
	char *vmstate; /* NULL for delete */
	char **devices;
	size_t ndevices;
	int64_t timer;	    /* the pending start, 0 once it ran */
	struct filemig *fm; /* save/load in flight */
	char *part, *final; /* save: the file being written, its tag name */
	bool was_running;
	bool shutting_down;
};

/* ---- checks QEMU makes inside the job ------------------------------------ */

static const struct snapstore_node *node(struct snap_job *sj, size_t i)
{
	return snapstore_find(sj->md->snapstore, sj->devices[i]);
}

/* bdrv_all_get_snapshot_devices(): at least one, each a known node. */
static int check_devices(struct snap_job *sj, struct mig_error **errp)
{
	if (!sj->ndevices) {
		mig_error_setg(errp,
			       "At least one device is required for snapshot");
		return -EINVAL;
	}
	for (size_t i = 0; i < sj->ndevices; i++) {
		if (!node(sj, i)) {
			mig_error_setg(errp, "No block device node '%s'",
				       sj->devices[i]);
			return -ENODEV;
		}
	}
	return 0;
}

/* The vmstate node must be one of the devices. */
static const struct snapstore_node *vmstate_node(struct snap_job *sj,
						 struct mig_error **errp)
{
	for (size_t i = 0; i < sj->ndevices; i++)
		if (strcmp(sj->devices[i], sj->vmstate) == 0)
			return node(sj, i);
	mig_error_setg(errp, "vmstate block device '%s' does not exist",
		       sj->vmstate);
	return NULL;
}

static int check_no_migration(struct snap_job *sj, struct mig_error **errp)
{
	struct migd *md = sj->md;

	if (mig_status_is_running(md->mig_status) ||
	    guest_get_runstate(md->guest) == GUEST_RUNSTATE_INMIGRATE) {
		mig_error_setg(errp, "There's a migration process in progress");
		return -EBUSY;
	}
	if (jobs_any_active(md->jobs, sj->job)) {
		mig_error_setg(errp, "Another snapshot job is in progress");
		return -EBUSY;
	}
	return 0;
}

/* Count of devices holding the tag. */
static size_t count_tag(struct snap_job *sj)
{
	size_t n = 0;

	for (size_t i = 0; i < sj->ndevices; i++)
		n += snapstore_has(node(sj, i), sj->tag);
	return n;
}

static unsigned io_channels(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > SNAP_MAX_CHANNELS ? SNAP_MAX_CHANNELS : (unsigned)n;
}

static void fail(struct snap_job *sj, int ret, struct mig_error *err)
{
	job_completed(sj->job, ret ? ret : -EINVAL, err);
	mig_error_free(err);
}

/* ---- save ------------------------------------------------------------------
 */

/* The other devices get an empty marker; undone on failure. */
static int mark_devices(struct snap_job *sj, struct mig_error **errp)
{
	for (size_t i = 0; i < sj->ndevices; i++) {
		const struct snapstore_node *n = node(sj, i);
		int ret;

		if (strcmp(n->name, sj->vmstate) == 0 ||
		    snapstore_has(n, sj->tag))
			continue; /* listed twice */
		ret = snapstore_mark(n, sj->tag, errp);
		if (ret) {
			for (size_t j = 0; j < i; j++)
				if (strcmp(node(sj, j)->name, sj->vmstate))
					snapstore_remove(node(sj, j), sj->tag,
							 NULL);
			return ret;
		}
	}
	return 0;
}

static int finish_save(struct snap_job *sj, struct mig_error **errp)
{
	if (rename(sj->part, sj->final) < 0) {
		mig_error_setg(errp, "Could not rename '%s' to '%s': %s",
			       sj->part, sj->final, strerror(errno));
		return -errno;
	}
	if (mark_devices(sj, errp)) {
		unlink(sj->final);
		return -EIO;
	}
	return 0;
}

static void save_done(void *opaque, struct filemig *fm, int ret,
		      const struct mig_error *err)
{
	struct snap_job *sj = opaque;
	struct mig_error *local = NULL;

	/* err belongs to fm: copy it before fm goes. */
	if (ret)
		mig_error_setg(&local, "%s",
			       err && err->desc ? err->desc : "save failed");
	filemig_free(fm);
	sj->fm = NULL;
	if (!ret && sj->shutting_down) {
		ret = -ECANCELED;
		mig_error_setg(&local, "operation cancelled");
	} else if (!ret) {
		ret = finish_save(sj, &local);
	}
	if (ret)
		unlink(sj->part);
	/* QEMU resumes the VM before the job leaves running. */
	if (sj->was_running && !sj->shutting_down)
		vm_start(sj->md);
	job_completed(sj->job, ret, local);
	mig_error_free(local);
}

static int save_checks(struct snap_job *sj, struct mig_error **errp)
{
	const struct snapstore_node *vn;

	if (check_no_migration(sj, errp) || check_devices(sj, errp))
		return -EINVAL;
	if (count_tag(sj)) {
		mig_error_setg(errp,
			       "Snapshot '%s' already exists in one or more "
			       "devices",
			       sj->tag);
		return -EEXIST;
	}
	vn = vmstate_node(sj, errp);
	if (!vn)
		return -ENODEV;
	sj->part = snapstore_part_path(vn, sj->tag);
	sj->final = snapstore_path(vn, sj->tag);
	if (!sj->part || !sj->final) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void run_save(struct snap_job *sj)
{
	struct migd *md = sj->md;
	struct mig_error *err = NULL;
	struct filemig_opts o = {.channels = io_channels()};
	enum guest_runstate st = guest_get_runstate(md->guest);
	int ret = save_checks(sj, &err);

	if (ret)
		return fail(sj, ret, err);
	/* The file records the state before the stop, as QEMU's
	 * global_state_store() does. */
	sj->was_running = st == GUEST_RUNSTATE_RUNNING;
	o.runstate = guest_runstate_name(st);
	o.path = sj->part;
	/* A stale part file (or a symlink planted there) is removed, never
	 * opened: the save must not write through it. */
	if (unlink(sj->part) < 0 && errno != ENOENT) {
		ret = -errno;
		mig_error_setg(&err, "Could not remove '%s': %s", sj->part,
			       strerror(-ret));
		return fail(sj, ret, err);
	}
	vm_stop(md, GUEST_RUNSTATE_PAUSED);
	sj->fm = filemig_save(md, &o, save_done, sj, &err);
	if (!sj->fm) {
		if (sj->was_running)
			vm_start(md);
		fail(sj, -EIO, err);
	}
}

/* ---- load ------------------------------------------------------------------
 */

static void load_done(void *opaque, struct filemig *fm, int ret,
		      const struct mig_error *err)
{
	struct snap_job *sj = opaque;
	struct mig_error *local = NULL;

	/* err belongs to fm: copy it before fm goes. */
	if (ret)
		mig_error_setg(&local, "Error %d while loading VM state: %s",
			       ret, err && err->desc ? err->desc : "failed");
	filemig_free(fm);
	sj->fm = NULL;
	/* On failure the RAM is partial: the guest stays stopped. */
	if (!ret && sj->was_running && !sj->shutting_down)
		vm_start(sj->md);
	job_completed(sj->job, ret, local);
	mig_error_free(local);
}

static int load_checks(struct snap_job *sj, char **path,
		       struct mig_error **errp)
{
	const struct snapstore_node *vn;
	struct stat st;

	if (check_devices(sj, errp))
		return -EINVAL;
	if (count_tag(sj) != sj->ndevices) {
		mig_error_setg(errp,
			       "Snapshot '%s' does not exist in one or more "
			       "devices",
			       sj->tag);
		return -ENOENT;
	}
	vn = vmstate_node(sj, errp);
	if (!vn)
		return -ENODEV;
	*path = snapstore_path(vn, sj->tag);
	if (!*path) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	if (stat(*path, &st) == 0 && st.st_size == 0) {
		mig_error_setg(errp, "This is a disk-only snapshot. Revert to "
				     "it offline using qemu-img.");
		return -EINVAL;
	}
	return 0;
}

static void run_load(struct snap_job *sj)
{
	struct migd *md = sj->md;
	struct mig_error *err = NULL;
	struct filemig_opts o = {.channels = io_channels()};
	char *path = NULL;
	int ret = check_no_migration(sj, &err);

	if (ret)
		return fail(sj, ret, err);
	/* QEMU stops the VM first: a load that fails leaves it stopped. */
	sj->was_running = guest_is_running(md->guest);
	vm_stop(md, GUEST_RUNSTATE_PAUSED);
	ret = load_checks(sj, &path, &err);
	if (!ret) {
		o.path = path;
		sj->fm = filemig_load(md, &o, load_done, sj, &err);
		ret = sj->fm ? 0 : -EIO;
	}
	free(path);
	if (ret)
		fail(sj, ret, err);
}

/* ---- delete ---------------------------------------------------------------
 */

static void run_delete(struct snap_job *sj)
{
	struct mig_error *err = NULL;
	int ret = check_devices(sj, &err);

	for (size_t i = 0; !ret && i < sj->ndevices; i++)
		ret = snapstore_remove(node(sj, i), sj->tag, &err);
	if (ret)
		return fail(sj, ret, err);
	job_completed(sj->job, 0, NULL);
}

/* ---- the job driver --------------------------------------------------------
 */

static void on_start(struct ev_loop *loop, void *opaque)
{
	struct snap_job *sj = opaque;

	sj->timer = 0;
	switch (sj->type) {
	case JOB_TYPE_SNAPSHOT_SAVE:
		run_save(sj);
		break;
	case JOB_TYPE_SNAPSHOT_LOAD:
		run_load(sj);
		break;
	default:
		run_delete(sj);
		break;
	}
}

static void drv_run(struct job *job)
{
	struct snap_job *sj = job_opaque(job);
	int64_t id = ev_loop_add_timer(sj->md->loop, 0, on_start, sj);

	if (id < 0)
		on_start(sj->md->loop, sj);
	else
		sj->timer = id;
}

static void drv_progress(struct job *job, uint64_t *cur, uint64_t *total)
{
	struct snap_job *sj = job_opaque(job);
	const struct guest *g = sj->md->guest;

	*cur = sj->fm ? filemig_progress(sj->fm) : 0;
	*total = 0;
	for (size_t i = 0; i < g->nblocks; i++)
		*total += g->blocks[i].used_length;
	if (*cur > *total)
		*cur = *total;
}

static void drv_shutdown(struct job *job)
{
	struct snap_job *sj = job_opaque(job);

	sj->shutting_down = true;
	if (sj->timer > 0) {
		ev_loop_cancel_timer(sj->md->loop, sj->timer);
		sj->timer = 0;
	}
	if (!sj->fm)
		return;
	filemig_cancel(sj->fm);
	/* The worker posts its end; run the posted calls until it came. */
	while (sj->fm) {
		ev_loop_run_posted(sj->md->loop);
		if (sj->fm)
			usleep(1000);
	}
}

static void sj_free(struct snap_job *sj)
{
	for (size_t i = 0; i < sj->ndevices; i++)
		free(sj->devices[i]);
	free(sj->devices);
	free(sj->tag);
	free(sj->vmstate);
	free(sj->part);
	free(sj->final);
	free(sj);
}

static void drv_free(struct job *job)
{
	sj_free(job_opaque(job));
}

static const struct job_driver drivers[JOB_TYPE__MAX] = {
	[JOB_TYPE_SNAPSHOT_LOAD] = {JOB_TYPE_SNAPSHOT_LOAD, drv_run,
				    drv_progress, drv_shutdown, drv_free},
	[JOB_TYPE_SNAPSHOT_SAVE] = {JOB_TYPE_SNAPSHOT_SAVE, drv_run,
				    drv_progress, drv_shutdown, drv_free},
	[JOB_TYPE_SNAPSHOT_DELETE] = {JOB_TYPE_SNAPSHOT_DELETE, drv_run,
				      drv_progress, drv_shutdown, drv_free},
};

/* ---- QMP ------------------------------------------------------------------
 */

static int read_devices(struct qapi_in *in, struct snap_job *sj,
			struct mig_error **errp)
{
	struct qapi_in list = {0};
	const char *name;
	int ret = -EINVAL;

	if (!qapi_start_list(in, "devices", &list, errp))
		goto out;
	while (qapi_has(&list, NULL)) {
		if (sj->ndevices == SNAP_MAX_DEVICES) {
			mig_error_setg(errp, "Too many devices (at most %d)",
				       SNAP_MAX_DEVICES);
			goto out;
		}
		if (!qapi_read_str(&list, NULL, &name, errp))
			goto out;
		sj->devices[sj->ndevices] = strdup(name);
		if (!sj->devices[sj->ndevices++]) {
			mig_error_setg(errp, "Out of memory");
			goto out;
		}
	}
	ret = 0;
out:
	qapi_in_fini(&list);
	return ret;
}

/* Reads and checks the arguments into sj; *id gets the job-id. */
static int read_args(json_t *args, bool with_vmstate, struct snap_job *sj,
		     const char **id, struct mig_error **errp)
{
	struct qapi_in in;
	const char *tag, *vmstate = NULL;
	int ret = -EINVAL;

	qapi_in_init(&in, args);
	if (!qapi_read_str(&in, "job-id", id, errp) ||
	    !qapi_read_str(&in, "tag", &tag, errp) ||
	    (with_vmstate && !qapi_read_str(&in, "vmstate", &vmstate, errp)) ||
	    read_devices(&in, sj, errp) || !qapi_check_struct(&in, errp))
		goto out;
	if (snapstore_check_tag(
		    tag, json_string_length(json_object_get(args, "tag")),
		    errp))
		goto out;
	sj->tag = strdup(tag);
	sj->vmstate = vmstate ? strdup(vmstate) : NULL;
	if (!sj->tag || (vmstate && !sj->vmstate)) {
		mig_error_setg(errp, "Out of memory");
		goto out;
	}
	ret = 0;
out:
	qapi_in_fini(&in);
	return ret;
}

static json_t *snapshot_cmd(struct migd *md, json_t *args, enum job_type t,
			    struct mig_error **errp)
{
	struct job_driver const *drv = &drivers[t];
	struct snap_job *sj = calloc(1, sizeof(*sj));
	const char *id;

	if (sj)
		sj->devices = calloc(SNAP_MAX_DEVICES, sizeof(char *));
	if (!sj || !sj->devices) {
		free(sj);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	sj->md = md;
	sj->type = t;
	if (read_args(args, t != JOB_TYPE_SNAPSHOT_DELETE, sj, &id, errp))
		goto err;
	sj->job = job_create(md->jobs, id, drv, sj, errp);
	if (!sj->job)
		goto err;
	job_start(sj->job);
	return json_object();
err:
	sj_free(sj);
	return NULL;
}

static json_t *qmp_snapshot_save(struct migd *md, struct qmp_monitor *mon,
				 json_t *args, struct mig_error **errp)
{
	return snapshot_cmd(md, args, JOB_TYPE_SNAPSHOT_SAVE, errp);
}

static json_t *qmp_snapshot_load(struct migd *md, struct qmp_monitor *mon,
				 json_t *args, struct mig_error **errp)
{
	return snapshot_cmd(md, args, JOB_TYPE_SNAPSHOT_LOAD, errp);
}

static json_t *qmp_snapshot_delete(struct migd *md, struct qmp_monitor *mon,
				   json_t *args, struct mig_error **errp)
{
	return snapshot_cmd(md, args, JOB_TYPE_SNAPSHOT_DELETE, errp);
}

static const struct qmp_command snapshot_cmds[] = {
	{"snapshot-save", qmp_snapshot_save, 0},
	{"snapshot-load", qmp_snapshot_load, 0},
	{"snapshot-delete", qmp_snapshot_delete, 0},
};

void snapshot_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, snapshot_cmds,
		     sizeof(snapshot_cmds) / sizeof(snapshot_cmds[0]));
	jobs_register_qmp(srv);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void emit_event(void *opaque, const char *name, json_t *data)
{
	struct migd *md = opaque;

	qmp_event(md->qmp, name, data);
}

int snapshot_init(struct migd *md, const struct cmdline *cl,
		  struct mig_error **errp)
{
	md->snapstore = snapstore_new();
	md->jobs = jobs_new(emit_event, md);
	if (!md->snapstore || !md->jobs) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < cl->nblockdevs; i++) {
		const struct cmdline_blockdev *b = &cl->blockdevs[i];
		int ret = snapstore_add(md->snapstore, b->node_name,
					b->filename, errp);

		if (ret) {
			mig_error_prepend(errp, "-blockdev %s: ", b->arg);
			return ret;
		}
	}
	return 0;
}

void snapshot_shutdown(struct migd *md)
{
	jobs_free(md->jobs);
	md->jobs = NULL;
}

void snapshot_free(struct migd *md)
{
	snapstore_free(md->snapstore);
	md->snapstore = NULL;
}
