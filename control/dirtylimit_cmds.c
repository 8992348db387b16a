/* dirtylimit_cmds.c — QMP dirty page rate limit commands (see
 * dirtylimit_cmds.h), with QEMU 9.0's arguments, checks and messages.
 * migd's guest logs every page each vCPU dirties, which is what KVM's
 * dirty ring gives QEMU, so the commands always work here (QEMU refuses
 * them without "dirty-ring-size"). Control thread only. */
#include "control/dirtylimit_cmds.h"

#include <errno.h>
#include <stdbool.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/migration_priv.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "guest/dirtylimit.h"
#include "guest/guest.h"
#include "guest/vcpu.h"

static struct vcpus *guest_vcpus(struct migd *md)
{
	return md->guest ? md->guest->vcpus : NULL;
}

/* Starts the service on first use (QEMU's dirtylimit_init). */
static struct dirtylimit *service(struct migd *md, struct mig_error **errp)
{
	if (!md->dirtylimit)
		md->dirtylimit = dirtylimit_new(guest_vcpus(md), errp);
	return md->dirtylimit;
}

/* The last limit lifted stops the service (QEMU's dirtylimit_cleanup). */
static void clear(struct migd *md, int cpu)
{
	if (!md->dirtylimit)
		return;
	dirtylimit_clear(md->dirtylimit, cpu);
	if (!dirtylimit_limited(md->dirtylimit)) {
		dirtylimit_free(md->dirtylimit);
		md->dirtylimit = NULL;
	}
}

int dirtylimit_cmds_apply_all(struct migd *md, uint64_t quota_mb,
			      uint64_t period_ms)
{
	struct mig_error *err = NULL;
	struct dirtylimit *dl = service(md, &err);

	mig_error_free(err);
	if (!dl)
		return -ENOMEM;
	dirtylimit_set(dl, -1, quota_mb);
	dirtylimit_set_period(dl, period_ms);
	return 0;
}

void dirtylimit_cmds_cancel_all(struct migd *md)
{
	clear(md, -1);
}

void dirtylimit_cmds_shutdown(struct migd *md)
{
	dirtylimit_free(md->dirtylimit);
	md->dirtylimit = NULL;
}

/* QEMU's dirtylimit_is_allowed(): a migration with dirty-limit owns the
 * limits while it runs. */
static bool is_allowed(struct migd *md)
{
	return !(md->migration &&
		 mig_status_is_running(migration_status(md->migration)) &&
		 mig_config_cap(md->config, MIG_CAP_DIRTY_LIMIT) &&
		 md->dirtylimit);
}

/* The optional cpu-index: *cpu = -1 when absent (every vCPU). Its range
 * is checked after every argument was read, as QEMU's handler does. */
static bool read_cpu_index(struct qapi_in *in, int64_t *cpu,
			   struct mig_error **errp)
{
	*cpu = -1;
	return !qapi_has(in, "cpu-index") ||
	       qapi_read_int(in, "cpu-index", cpu, errp);
}

static bool cpu_index_valid(struct migd *md, int64_t cpu, bool has,
			    struct mig_error **errp)
{
	if (has && (cpu < 0 || cpu >= (int64_t)vcpus_count(guest_vcpus(md)))) {
		mig_error_setg(errp, "incorrect cpu index specified");
		return false;
	}
	return true;
}

static json_t *cmd_set_limit(struct migd *md, struct qmp_monitor *mon,
			     json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	uint64_t rate = 0;
	int64_t cpu;
	bool ok, has;

	qapi_in_init(&in, args);
	has = qapi_has(&in, "cpu-index");
	ok = read_cpu_index(&in, &cpu, errp) &&
	     qapi_read_uint64(&in, "dirty-rate", &rate, errp) &&
	     qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok || !cpu_index_valid(md, cpu, has, errp))
		return NULL;
	if (!is_allowed(md)) {
		mig_error_setg(errp, "can't set dirty page rate limit while "
				     "migration is running");
		return NULL;
	}
	if (!rate) {
		clear(md, (int)cpu); /* 0 cancels, as QEMU */
		return json_object();
	}
	if (!service(md, errp))
		return NULL;
	dirtylimit_set(md->dirtylimit, (int)cpu, rate);
	return json_object();
}

static json_t *cmd_cancel_limit(struct migd *md, struct qmp_monitor *mon,
				json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	int64_t cpu;
	bool ok, has;

	qapi_in_init(&in, args);
	has = qapi_has(&in, "cpu-index");
	ok = read_cpu_index(&in, &cpu, errp) && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok || !cpu_index_valid(md, cpu, has, errp))
		return NULL;
	if (!is_allowed(md)) {
		mig_error_setg(errp, "can't cancel dirty page rate limit while "
				     "migration is running");
		return NULL;
	}
	clear(md, (int)cpu);
	return json_object();
}

/* Only the limited vCPUs, by index; [] when no limit is set. */
static json_t *cmd_query_limit(struct migd *md, struct qmp_monitor *mon,
			       json_t *args, struct mig_error **errp)
{
	json_t *list;

	if (!qapi_no_args(args, errp))
		return NULL;
	list = json_array();
	for (unsigned i = 0;
	     list && md->dirtylimit && i < vcpus_count(guest_vcpus(md)); i++) {
		struct dirtylimit_info di;

		if (!dirtylimit_get(md->dirtylimit, i, &di) || !di.enabled)
			continue;
		json_array_append_new(
			list,
			json_pack("{s:i,s:I,s:I}", "cpu-index", (int)i,
				  "limit-rate", (json_int_t)di.quota_mb,
				  "current-rate", (json_int_t)di.current_mb));
	}
	return list;
}

static const struct qmp_command dirtylimit_commands[] = {
	{"set-vcpu-dirty-limit", cmd_set_limit, 0},
	{"cancel-vcpu-dirty-limit", cmd_cancel_limit, 0},
	{"query-vcpu-dirty-limit", cmd_query_limit, 0},
};

void dirtylimit_cmds_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, dirtylimit_commands,
		     sizeof(dirtylimit_commands) /
			     sizeof(dirtylimit_commands[0]));
}
