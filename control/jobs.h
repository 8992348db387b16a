/* jobs.h — QEMU's job framework as QMP sees it: job ids, the JobStatus
 * state machine with its JOB_STATUS_CHANGE events, the verbs a state
 * accepts, query-jobs and job-dismiss. Jobs are created with QEMU's
 * JOB_MANUAL_DISMISS (auto-finalize on, auto-dismiss off), as
 * snapshot-save/-load/-delete are:
 *   success: created -> running -> waiting -> pending -> concluded
 *   failure: created -> running -> aborting -> concluded (with "error")
 *   job-dismiss: concluded -> null (the job is gone).
 * What a job does is its driver's (control/snapshot.c); a driver reports
 * the end with job_completed(). Control thread only. */
#ifndef MIGD_CONTROL_JOBS_H
#define MIGD_CONTROL_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct jobs;
struct job;
struct qmp_server;

/* QEMU's JobStatus, in its order. */
enum job_status {
	JOB_STATUS_UNDEFINED,
	JOB_STATUS_CREATED,
	JOB_STATUS_RUNNING,
	JOB_STATUS_PAUSED,
	JOB_STATUS_READY,
	JOB_STATUS_STANDBY,
	JOB_STATUS_WAITING,
	JOB_STATUS_PENDING,
	JOB_STATUS_ABORTING,
	JOB_STATUS_CONCLUDED,
	JOB_STATUS_NULL,
	JOB_STATUS__MAX,
};

/* QEMU's JobVerb, in its order. */
enum job_verb {
	JOB_VERB_CANCEL,
	JOB_VERB_PAUSE,
	JOB_VERB_RESUME,
	JOB_VERB_SET_SPEED,
	JOB_VERB_COMPLETE,
	JOB_VERB_DISMISS,
	JOB_VERB_FINALIZE,
	JOB_VERB_CHANGE,
	JOB_VERB__MAX,
};

/* The JobType values migd runs. */
enum job_type {
	JOB_TYPE_SNAPSHOT_LOAD,
	JOB_TYPE_SNAPSHOT_SAVE,
	JOB_TYPE_SNAPSHOT_DELETE,
	JOB_TYPE__MAX,
};

struct job_driver {
	enum job_type type;
	/* Starts the work (the job is running); the driver calls
	 * job_completed() later, from the control thread, exactly once. */
	void (*run)(struct job *job);
	/* Progress while running: *cur of *total (optional). */
	void (*progress)(struct job *job, uint64_t *cur, uint64_t *total);
	/* At daemon exit while the job still runs: stop and wait for any
	 * thread (job_completed() may still be called from inside). */
	void (*shutdown)(struct job *job);
	/* Frees the driver's state (the job is being freed). */
	void (*free)(struct job *job);
};

/* Sends a JOB_STATUS_CHANGE; data is stolen. Tests pass their own. */
typedef void (*jobs_event_fn)(void *opaque, const char *name, json_t *data);

struct jobs *jobs_new(jobs_event_fn emit, void *opaque);
/* Shuts running jobs down (driver->shutdown) and frees every job. */
void jobs_free(struct jobs *js);

/* QEMU's job_create(): the id must be well formed ("Invalid job ID '%s'")
 * and unused ("Job ID '%s' already in use"). The job enters created (an
 * event). opaque is the driver's; job_opaque() returns it. */
struct job *job_create(struct jobs *js, const char *id,
		       const struct job_driver *drv, void *opaque,
		       struct mig_error **errp);
/* created -> running, then driver->run(). */
void job_start(struct job *job);
/* The driver's end: ret 0 concludes through waiting and pending; an error
 * (err's message becomes query-jobs' "error") through aborting. Progress
 * is then reported as 1 of 1, as QEMU's snapshot jobs do. */
void job_completed(struct job *job, int ret, const struct mig_error *err);

void *job_opaque(const struct job *job);
const char *job_id(const struct job *job);
enum job_status job_get_status(const struct job *job);
/* True while a job other than except is between created and concluded. */
bool jobs_any_active(const struct jobs *js, const struct job *except);

/* The verb check: 0, or -EPERM with "Job '%s' in state '%s' cannot
 * accept command verb '%s'". */
int job_apply_verb(const struct job *job, enum job_verb verb,
		   struct mig_error **errp);
/* job-dismiss: "Job not found", the verb check, then null (an event) and
 * the job is freed. */
int jobs_dismiss(struct jobs *js, const char *id, struct mig_error **errp);
/* query-jobs' list (a new reference), in creation order. */
json_t *jobs_query(const struct jobs *js);

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
bool jobs_id_is_wellformed(const char *id);
const char *job_status_name(enum job_status st);
const char *job_type_name(enum job_type t);
const char *job_verb_name(enum job_verb v);

/* Registers query-jobs and job-dismiss (md->jobs must exist). */
void jobs_register_qmp(struct qmp_server *srv);

#endif
