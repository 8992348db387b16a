/* vm.c — runstate transitions, their QMP events, and the runstate QMP
 * commands (see vm.h). Follows QEMU 9.0's system/cpus.c and
 * monitor/qmp-cmds.c semantics: stop only acts on a running VM, cont in
 * inmigrate only sets autostart, quit replies before SHUTDOWN.
 * Control thread only. */
#include "control/vm.h"

#include <jansson.h>
#include <stdio.h>

#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "guest/vcpu.h"
#include "util/evloop.h"
#include "util/log.h"

static void set_state(struct migd *md, enum guest_runstate st)
{
	enum guest_runstate old = guest_get_runstate(md->guest);

	if (old == st)
		return;
	log_debug("runstate %s -> %s", guest_runstate_name(old),
		  guest_runstate_name(st));
	/* vCPUs stop before any other state is visible (so finish-migrate
	 * means no more writes) and start only once running is. */
	if (st != GUEST_RUNSTATE_RUNNING)
		vcpus_pause(md->guest->vcpus);
	guest_set_runstate(md->guest, st);
	if (st == GUEST_RUNSTATE_RUNNING)
		vcpus_resume(md->guest->vcpus);
}

void vm_start(struct migd *md)
{
	if (guest_is_running(md->guest))
		return;
	/* QEMU sends RESUME before the vCPUs actually resume. */
	qmp_event(md->qmp, "RESUME", NULL);
	set_state(md, GUEST_RUNSTATE_RUNNING);
}

void vm_stop(struct migd *md, enum guest_runstate st)
{
	if (!guest_is_running(md->guest))
		return;
	set_state(md, st);
	qmp_event(md->qmp, "STOP", NULL);
}

void vm_stop_force_state(struct migd *md, enum guest_runstate st)
{
	if (guest_is_running(md->guest))
		vm_stop(md, st);
	else
		set_state(md, st);
}

void vm_incoming_done(struct migd *md, int src_state)
{
	if (src_state < 0 || src_state == GUEST_RUNSTATE_RUNNING) {
		if (md->guest->autostart)
			vm_start(md);
		else
			set_state(md, GUEST_RUNSTATE_PAUSED);
		return;
	}
	if (src_state < GUEST_RUNSTATE__MAX)
		set_state(md, (enum guest_runstate)src_state);
	else
		set_state(md, GUEST_RUNSTATE_PAUSED);
}

void vm_shutdown(struct migd *md, const char *reason)
{
	if (md->quit_requested)
		return;
	qmp_event(md->qmp, "SHUTDOWN",
		  json_pack("{s:b,s:s}", "guest", 0, "reason", reason));
	/* QEMU's vm_shutdown(): no STOP event on the way out. */
	set_state(md, GUEST_RUNSTATE_SHUTDOWN);
	migd_request_quit(md);
}

/* ---- QMP commands -------------------------------------------------------- */

/* None of these commands takes arguments. */
static bool no_args(json_t *args, struct mig_error **errp)
{
	return qapi_no_args(args, errp);
}

static json_t *cmd_query_status(struct migd *md, struct qmp_monitor *mon,
				json_t *args, struct mig_error **errp)
{
	enum guest_runstate st;

	if (!no_args(args, errp))
		return NULL;
	st = guest_get_runstate(md->guest);
	/* 9.0 still reports the deprecated singlestep (removed in 9.1). */
	return json_pack("{s:s,s:b,s:b}", "status", guest_runstate_name(st),
			 "singlestep", 0, "running",
			 st == GUEST_RUNSTATE_RUNNING);
}

static json_t *cmd_stop(struct migd *md, struct qmp_monitor *mon, json_t *args,
			struct mig_error **errp)
{
	if (!no_args(args, errp))
		return NULL;
	if (guest_get_runstate(md->guest) == GUEST_RUNSTATE_INMIGRATE)
		md->guest->autostart = false;
	else
		vm_stop(md, GUEST_RUNSTATE_PAUSED);
	return json_object();
}

static json_t *cmd_cont(struct migd *md, struct qmp_monitor *mon, json_t *args,
			struct mig_error **errp)
{
	enum guest_runstate st;

	if (!no_args(args, errp))
		return NULL;
	st = guest_get_runstate(md->guest);
	if (st == GUEST_RUNSTATE_SHUTDOWN) {
		mig_error_setg(errp,
			       "Resetting the Virtual Machine is required");
		return NULL;
	}
	if (st == GUEST_RUNSTATE_FINISH_MIGRATE) {
		mig_error_setg(errp, "Migration is not finalized yet");
		return NULL;
	}
	if (st == GUEST_RUNSTATE_INMIGRATE)
		md->guest->autostart = true;
	else
		vm_start(md);
	return json_object();
}

/* Runs after the quit reply has been queued on the monitor. */
static void quit_after_reply(struct ev_loop *loop, void *opaque)
{
	vm_shutdown(opaque, "host-qmp-quit");
}

static json_t *cmd_quit(struct migd *md, struct qmp_monitor *mon, json_t *args,
			struct mig_error **errp)
{
	if (!no_args(args, errp))
		return NULL;
	if (!md->loop || ev_loop_post(md->loop, quit_after_reply, md) < 0) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	return json_object();
}

static json_t *cmd_query_name(struct migd *md, struct qmp_monitor *mon,
			      json_t *args, struct mig_error **errp)
{
	if (!no_args(args, errp))
		return NULL;
	if (!md->name)
		return json_object();
	return json_pack("{s:s}", "name", md->name);
}

static json_t *cmd_query_uuid(struct migd *md, struct qmp_monitor *mon,
			      json_t *args, struct mig_error **errp)
{
	const uint8_t *u = md->uuid;
	char text[37];

	if (!no_args(args, errp))
		return NULL;
	snprintf(text, sizeof(text),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
	return json_pack("{s:s}", "UUID", text);
}

static const struct qmp_command vm_commands[] = {
	{"query-status", cmd_query_status, 0},
	{"stop", cmd_stop, 0},
	{"cont", cmd_cont, 0},
	{"quit", cmd_quit, 0},
	{"query-name", cmd_query_name, 0},
	{"query-uuid", cmd_query_uuid, 0},
};

void vm_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, vm_commands,
		     sizeof(vm_commands) / sizeof(vm_commands[0]));
}
