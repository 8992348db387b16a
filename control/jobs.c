/* jobs.c — job ids, the JobStatus machine and its events, query-jobs and
 * job-dismiss (see jobs.h). The tables below are QEMU's documented job
 * semantics (qapi/job.json), written out for the statuses and verbs migd
 * uses. Control thread only. */
#include "control/jobs.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "util/log.h"

struct job {
	struct jobs *owner;
	struct job *next;
	char *id;
	const struct job_driver *drv;
	void *opaque;
	enum job_status status;
	uint64_t cur, total; /* progress once concluded */
	char *error;	     /* concluded with an error, else NULL */
};

struct jobs {
	struct job *head; /* creation order */
	jobs_event_fn emit;
	void *opaque;
};

static const char *const status_names[JOB_STATUS__MAX] = {
	"undefined", "created", "running",  "paused",	 "ready", "standby",
	"waiting",   "pending", "aborting", "concluded", "null",
};

static const char *const verb_names[JOB_VERB__MAX] = {
	"cancel",   "pause",   "resume",   "set-speed",
	"complete", "dismiss", "finalize", "change",
};

static const char *const type_names[JOB_TYPE__MAX] = {
	"snapshot-load",
	"snapshot-save",
	"snapshot-delete",
};

#define ST(s) (1u << JOB_STATUS_##s)
#define ACTIVE                                                                 \
	(ST(CREATED) | ST(RUNNING) | ST(PAUSED) | ST(READY) | ST(STANDBY))

/* Which statuses accept each verb. */
static const unsigned verb_table[JOB_VERB__MAX] = {
	[JOB_VERB_CANCEL] = ACTIVE | ST(WAITING) | ST(PENDING),
	[JOB_VERB_PAUSE] = ACTIVE,
	[JOB_VERB_RESUME] = ACTIVE,
	[JOB_VERB_SET_SPEED] = ACTIVE,
	[JOB_VERB_COMPLETE] = ST(READY),
	[JOB_VERB_DISMISS] = ST(CONCLUDED),
	[JOB_VERB_FINALIZE] = ST(PENDING),
	[JOB_VERB_CHANGE] = ST(RUNNING) | ST(PAUSED) | ST(READY) | ST(STANDBY),
};

/* Which statuses each status may move to (the subset migd drives). */
static const unsigned next_table[JOB_STATUS__MAX] = {
	[JOB_STATUS_UNDEFINED] = ST(CREATED),
	[JOB_STATUS_CREATED] = ST(RUNNING) | ST(ABORTING),
	[JOB_STATUS_RUNNING] = ST(WAITING) | ST(ABORTING),
	[JOB_STATUS_WAITING] = ST(PENDING) | ST(ABORTING),
	[JOB_STATUS_PENDING] = ST(CONCLUDED) | ST(ABORTING),
	[JOB_STATUS_ABORTING] = ST(CONCLUDED),
	[JOB_STATUS_CONCLUDED] = ST(NULL),
};

const char *job_status_name(enum job_status st)
{
	return (unsigned)st < JOB_STATUS__MAX ? status_names[st] : "undefined";
}

const char *job_type_name(enum job_type t)
{
	return (unsigned)t < JOB_TYPE__MAX ? type_names[t] : "";
}

const char *job_verb_name(enum job_verb v)
{
	return (unsigned)v < JOB_VERB__MAX ? verb_names[v] : "";
}

bool jobs_id_is_wellformed(const char *id)
{
	if (!isalpha((unsigned char)id[0]))
		return false;
	for (const char *p = id + 1; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
			return false;
	return true;
}

/* ---- the state machine --------------------------------------------------- */

static void transition(struct job *job, enum job_status to)
{
	json_t *data;

	if (!(next_table[job->status] & (1u << to))) {
		/* A driver bug, never input: keep the status coherent. */
		log_warn("job '%s': refused transition %s -> %s", job->id,
			 job_status_name(job->status), job_status_name(to));
		return;
	}
	job->status = to;
	data = json_pack("{s:s, s:s}", "status", job_status_name(to), "id",
			 job->id);
	if (data && job->owner->emit)
		job->owner->emit(job->owner->opaque, "JOB_STATUS_CHANGE", data);
	else
		json_decref(data);
}

static struct job *find(const struct jobs *js, const char *id)
{
	for (struct job *j = js->head; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void job_free(struct job *job)
{
	if (job->drv->free)
		job->drv->free(job);
	free(job->error);
	free(job->id);
	free(job);
}

static void unlink_job(struct jobs *js, struct job *job)
{
	for (struct job **p = &js->head; *p; p = &(*p)->next) {
		if (*p == job) {
			*p = job->next;
			return;
		}
	}
}

/* ---- API ----------------------------------------------------------------- */

struct jobs *jobs_new(jobs_event_fn emit, void *opaque)
{
	struct jobs *js = calloc(1, sizeof(*js));

	if (js) {
		js->emit = emit;
		js->opaque = opaque;
	}
	return js;
}

void jobs_free(struct jobs *js)
{
	if (!js)
		return;
	js->emit = NULL; /* at exit: nobody listens any more */
	for (struct job *j = js->head; j; j = j->next)
		if (j->status < JOB_STATUS_CONCLUDED && j->drv->shutdown)
			j->drv->shutdown(j);
	while (js->head) {
		struct job *j = js->head;

		js->head = j->next;
		job_free(j);
	}
	free(js);
}

struct job *job_create(struct jobs *js, const char *id,
		       const struct job_driver *drv, void *opaque,
		       struct mig_error **errp)
{
	struct job *job, **tail;

	if (!jobs_id_is_wellformed(id)) {
		mig_error_setg(errp, "Invalid job ID '%s'", id);
		return NULL;
	}
	if (find(js, id)) {
		mig_error_setg(errp, "Job ID '%s' already in use", id);
		return NULL;
	}
	job = calloc(1, sizeof(*job));
	if (!job || !(job->id = strdup(id))) {
		free(job);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	job->owner = js;
	job->drv = drv;
	job->opaque = opaque;
	for (tail = &js->head; *tail; tail = &(*tail)->next)
		;
	*tail = job;
	transition(job, JOB_STATUS_CREATED);
	return job;
}

void job_start(struct job *job)
{
	transition(job, JOB_STATUS_RUNNING);
	job->drv->run(job);
}

void job_completed(struct job *job, int ret, const struct mig_error *err)
{
	job->cur = job->total = 1;
	if (ret == 0) {
		transition(job, JOB_STATUS_WAITING);
		transition(job, JOB_STATUS_PENDING);
	} else {
		job->error = strdup(err && err->desc
					    ? err->desc
					    : strerror(ret < 0 ? -ret : ret));
		transition(job, JOB_STATUS_ABORTING);
	}
	transition(job, JOB_STATUS_CONCLUDED);
}

void *job_opaque(const struct job *job)
{
	return job->opaque;
}

const char *job_id(const struct job *job)
{
	return job->id;
}

enum job_status job_get_status(const struct job *job)
{
	return job->status;
}

bool jobs_any_active(const struct jobs *js, const struct job *except)
{
	if (!js)
		return false;
	for (const struct job *j = js->head; j; j = j->next)
		if (j != except && j->status > JOB_STATUS_UNDEFINED &&
		    j->status < JOB_STATUS_CONCLUDED)
			return true;
	return false;
}

int job_apply_verb(const struct job *job, enum job_verb verb,
		   struct mig_error **errp)
{
	if ((unsigned)verb < JOB_VERB__MAX &&
	    (verb_table[verb] & (1u << job->status)))
		return 0;
	mig_error_setg(
		errp, "Job '%s' in state '%s' cannot accept command verb '%s'",
		job->id, job_status_name(job->status), job_verb_name(verb));
	return -EPERM;
}

int jobs_dismiss(struct jobs *js, const char *id, struct mig_error **errp)
{
	struct job *job = find(js, id);
	int ret;

	if (!job) {
		mig_error_setg(errp, "Job not found");
		return -ENOENT;
	}
	ret = job_apply_verb(job, JOB_VERB_DISMISS, errp);
	if (ret)
		return ret;
	transition(job, JOB_STATUS_NULL);
	unlink_job(js, job);
	job_free(job);
	return 0;
}

/* Messages may quote bytes from a file or a peer: never lose one to
 * invalid UTF-8 (jansson refuses it); '?' stands for such bytes. */
static json_t *error_string(const char *msg)
{
	json_t *s = json_string(msg);
	char *copy;

	if (s || !(copy = strdup(msg)))
		return s;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	s = json_string(copy);
	free(copy);
	return s;
}

static json_t *job_info(const struct job *job)
{
	uint64_t cur = job->cur, total = job->total;
	json_t *info;

	if (job->status < JOB_STATUS_CONCLUDED && job->drv->progress)
		job->drv->progress((struct job *)job, &cur, &total);
	info = json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", job->id, "type",
			 job_type_name(job->drv->type), "status",
			 job_status_name(job->status), "current-progress",
			 (json_int_t)cur, "total-progress", (json_int_t)total);
	if (info && job->error)
		json_object_set_new(info, "error", error_string(job->error));
	return info;
}

json_t *jobs_query(const struct jobs *js)
{
	json_t *list = json_array();

	for (const struct job *j = js->head; list && j; j = j->next)
		json_array_append_new(list, job_info(j));
	return list;
}

/* ---- QMP ----------------------------------------------------------------- */

static json_t *qmp_query_jobs(struct migd *md, struct qmp_monitor *mon,
			      json_t *args, struct mig_error **errp)
{
	if (!qapi_no_args(args, errp))
		return NULL;
	return jobs_query(md->jobs);
}

static json_t *qmp_job_dismiss(struct migd *md, struct qmp_monitor *mon,
			       json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	const char *id;
	bool ok;

	qapi_in_init(&in, args);
	ok = qapi_read_str(&in, "id", &id, errp) &&
	     qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok || jobs_dismiss(md->jobs, id, errp) < 0)
		return NULL;
	return json_object();
}

static const struct qmp_command job_cmds[] = {
	{"query-jobs", qmp_query_jobs, 0},
	{"job-dismiss", qmp_job_dismiss, 0},
};

void jobs_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, job_cmds, sizeof(job_cmds) / sizeof(job_cmds[0]));
}
