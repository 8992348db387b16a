/* incoming.c — the incoming migration's command, status and end (see
 * incoming.h; shared state in incoming_priv.h; channels and threads in
 * incoming_conn.c). QEMU 9.0's qmp_migrate_incoming() and
 * qemu_start_incoming_migration() checks, in their order and words.
 *
 * Status (control thread): none -> setup (listening) -> active (the
 * incoming thread runs) -> completed | failed. Unlike QEMU 9.0, whose
 * destination exits(1) on failure, migd stays up: status failed with
 * error-desc (QEMU 9.1+'s exit-on-error=false behaviour), runstate stays
 * inmigrate, and the RAM keeps what had arrived. A second
 * migrate-incoming is refused, as QEMU's 'once'. Control thread only,
 * except incoming_fail() and incoming_post(). */
#include "control/incoming.h"
#include "control/jobs.h"
#include "control/incoming_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "control/transport.h"
#include "control/vm.h"
#include "guest/guest.h"
#include "guest/vcpu.h"
#include "multifd/mfd_recv.h"
#include "multifd/ram_load.h"
#include "multifd/ram_load_file.h"
#include "socket/channel.h"
#include "util/evloop.h"
#include "util/log.h"

/* ---- status -------------------------------------------------------------- */

void incoming_set_status(struct incoming *inc, enum mig_status st)
{
	struct migd *md = inc->md;

	if (inc->status == st)
		return;
	log_info("incoming migration: %s -> %s", mig_status_names[inc->status],
		 mig_status_names[st]);
	inc->status = st;
	if (mig_config_cap(md->config, MIG_CAP_EVENTS))
		qmp_event(md->qmp, "MIGRATION",
			  json_pack("{s:s}", "status", mig_status_names[st]));
}

static void log_totals(struct incoming *inc)
{
	log_info("incoming migration: %llu bytes on the main channel, %llu "
		 "on multifd channels, %llu pages, %llu zero pages",
		 (unsigned long long)atomic_load(&inc->main_bytes),
		 (unsigned long long)atomic_load(&inc->multifd_bytes),
		 (unsigned long long)(inc->rl ? ram_load_normal_pages(inc->rl)
					      : 0),
		 (unsigned long long)(inc->rl ? ram_load_zero_pages(inc->rl)
					      : 0));
}

static void set_status(struct incoming *inc, enum mig_status st)
{
	incoming_set_status(inc, st);
}

/* QEMU's process_incoming_migration_bh(): the runstate first (RESUME when
 * the guest starts), then 'completed', so an observer of the event finds
 * the guest ready. */
static void complete(struct incoming *inc)
{
	int src_state = inc->ld.src_runstate;

	if (atomic_exchange(&inc->ending, true))
		return; /* a failure won the race: incoming_fail() posted */
	log_totals(inc);
	if (inc->pc.listened) {
		/* postcopy: the guest runs since RUN; only the state ends
		 * (QEMU's postcopy_ram_listen_thread) */
		incoming_pc_completed(inc);
		incoming_teardown(inc);
		set_status(inc, MIG_STATUS_COMPLETED);
		return;
	}
	incoming_teardown(inc);
	vm_incoming_done(inc->md, src_state);
	set_status(inc, MIG_STATUS_COMPLETED);
}

static void fail_now(struct incoming *inc)
{
	const char *desc;

	pthread_mutex_lock(&inc->lock);
	desc = inc->error ? inc->error->desc : "unknown error";
	log_error("incoming migration failed: %s", desc);
	pthread_mutex_unlock(&inc->lock);
	log_totals(inc);
	/* After LISTEN the guest's missing pages must never read as zeros:
	 * its vCPUs stay blocked (QEMU's destination exits instead). */
	inc->pc.keep_uffd = inc->pc.listened;
	incoming_teardown(inc);
	set_status(inc, MIG_STATUS_FAILED);
}

static void on_events(struct ev_loop *loop, void *opaque)
{
	struct incoming *inc = opaque;
	unsigned ev;

	pthread_mutex_lock(&inc->lock);
	ev = inc->events;
	inc->events = 0;
	pthread_mutex_unlock(&inc->lock);
	if (inc->finished)
		return;
	if ((ev & INCOMING_EV_ACTIVE) && inc->status == MIG_STATUS_SETUP)
		set_status(inc, MIG_STATUS_ACTIVE);
	incoming_pc_events(inc, ev);
	if (ev & INCOMING_EV_FAILED)
		fail_now(inc);
	else if (ev & INCOMING_EV_LOADED)
		complete(inc);
}

void incoming_post(struct incoming *inc, unsigned ev)
{
	bool first;

	pthread_mutex_lock(&inc->lock);
	first = !inc->events;
	inc->events |= ev;
	pthread_mutex_unlock(&inc->lock);
	/* One queued call handles every event set before it runs (and the
	 * post carries no allocation that a stopping loop could leak). */
	if (first && ev_loop_post(inc->md->loop, on_events, inc) < 0)
		log_error("incoming migration: cannot reach the control "
			  "thread");
}

void incoming_fail(struct incoming *inc, struct mig_error *err)
{
	if (atomic_exchange(&inc->ending, true)) {
		mig_error_free(err); /* a consequence, or too late */
		return;
	}
	if (!err)
		mig_error_setg(&err, "incoming migration failed");
	/* Kick every thread out of blocked I/O and barriers now; the control
	 * thread joins them. */
	mfd_recv_shutdown(inc->mfd);
	ram_load_file_kick(inc->rlf);
	incoming_pc_kick(inc);
	pthread_mutex_lock(&inc->lock);
	inc->error = err;
	if (inc->main_ch)
		chan_shutdown(inc->main_ch);
	pthread_mutex_unlock(&inc->lock);
	incoming_post(inc, INCOMING_EV_FAILED);
}

/* ---- starting ------------------------------------------------------------ */

static struct incoming *incoming_get(struct migd *md)
{
	struct incoming *inc = md->incoming_state;

	if (inc)
		return inc;
	inc = calloc(1, sizeof(*inc));
	if (!inc)
		return NULL;
	inc->md = md;
	inc->status = MIG_STATUS_NONE;
	inc->timer = -1;
	pthread_mutex_init(&inc->lock, NULL);
	incoming_pc_init(inc);
	md->incoming_state = inc;
	return inc;
}

static const char *transport_name(enum mig_addr_kind kind)
{
	static const char *const names[] = {
		[MIG_ADDR_TCP] = "tcp",	    [MIG_ADDR_UNIX] = "unix",
		[MIG_ADDR_VSOCK] = "vsock", [MIG_ADDR_FD] = "fd",
		[MIG_ADDR_EXEC] = "exec",   [MIG_ADDR_RDMA] = "rdma",
		[MIG_ADDR_FILE] = "file",
	};

	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind]
								 : "?";
}

/* QEMU's migration_channels_and_transport_compatible(), then what migd's
 * destination can do today. */
static int check_transport(struct migd *md, const struct mig_addr *a,
			   struct mig_error **errp)
{
	bool sock = a->kind == MIG_ADDR_TCP || a->kind == MIG_ADDR_UNIX ||
		    a->kind == MIG_ADDR_VSOCK || a->kind == MIG_ADDR_RDMA ||
		    transport_is_stream(a);

	if (transport_check_compatible(md->config, a, errp))
		return -EINVAL;
	if (!sock) {
		mig_error_setg(errp,
			       "Incoming migration over '%s' is not "
			       "supported by migd yet",
			       transport_name(a->kind));
		return -ENOTSUP;
	}
	return 0;
}

/* Takes addr (cleared on return). mon: the monitor running the command
 * (fd: names), NULL for the command line. */
static int start(struct migd *md, struct qmp_monitor *mon,
		 struct mig_addr *addr, struct mig_error **errp)
{
	struct incoming *inc = incoming_get(md);
	int ret;

	if (!inc) {
		mig_addr_clear(addr);
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	if (jobs_any_active(md->jobs, NULL)) {
		mig_addr_clear(addr);
		mig_error_setg(errp, "There's a migration process in progress");
		return -EBUSY;
	}
	ret = check_transport(md, addr, errp);
	if (ret) {
		mig_addr_clear(addr);
		return ret;
	}
	mig_addr_clear(&inc->addr);
	inc->addr = *addr;
	memset(addr, 0, sizeof(*addr));
	ret = transport_open_stream(md, mon, &inc->addr, true, &inc->stream_ch,
				    errp);
	if (ret) {
		mig_addr_clear(&inc->addr);
		return ret;
	}
	/* QEMU enters setup (with its event) before listening and stays
	 * there when listening fails; migd stays in none so that the
	 * command can be retried cleanly. */
	ret = incoming_listen(inc, errp);
	if (ret) {
		mig_addr_clear(&inc->addr);
		return ret;
	}
	inc->started = true;
	mig_config_set_incoming_started(md->config, true);
	set_status(inc, MIG_STATUS_SETUP);
	return 0;
}

int incoming_start_cmdline(struct migd *md, struct mig_error **errp)
{
	struct mig_addr addr;
	int ret;

	if (!md->incoming || !strcmp(md->incoming, "defer"))
		return 0;
	ret = mig_addr_parse_uri(md->incoming, &addr, errp);
	return ret ? ret : start(md, NULL, &addr, errp);
}

/* ---- migrate-incoming ---------------------------------------------------- */

struct incoming_args {
	const char *uri;
	int nchannels;
	struct mig_addr addr; /* of the first channel */
};

/* The channels list, as QAPI visits it: every entry is type-checked; the
 * first one's address is kept. */
static bool read_channels(struct qapi_in *in, struct incoming_args *a,
			  struct mig_error **errp)
{
	static const char *const types[] = {"main", NULL};
	struct qapi_in list;
	bool ok = qapi_start_list(in, "channels", &list, errp);

	while (ok && qapi_has(&list, NULL)) {
		struct qapi_in ch = {0};
		struct mig_addr tmp = {0};
		int type;

		ok = qapi_start_struct(&list, NULL, &ch, errp) &&
		     qapi_read_enum(&ch, "channel-type", types, &type, errp) &&
		     mig_addr_read_qapi(&ch, "addr",
					a->nchannels ? &tmp : &a->addr,
					errp) == 0 &&
		     qapi_check_struct(&ch, errp);
		qapi_in_fini(&ch);
		mig_addr_clear(&tmp);
		a->nchannels++;
	}
	qapi_in_fini(&list);
	return ok;
}

static bool read_args(json_t *args, struct incoming_args *a,
		      struct mig_error **errp)
{
	struct qapi_in in;
	bool ok = true;

	qapi_in_init(&in, args);
	if (qapi_has(&in, "uri"))
		ok = qapi_read_str(&in, "uri", &a->uri, errp);
	if (ok && qapi_has(&in, "channels"))
		ok = read_channels(&in, a, errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	return ok;
}

/* QEMU's qemu_start_incoming_migration() argument rules. */
static int target_address(struct incoming_args *a, struct mig_addr *out,
			  struct mig_error **errp)
{
	if (!a->uri == !a->nchannels) {
		mig_error_setg(errp,
			       "need either 'uri' or 'channels' argument");
		return -EINVAL;
	}
	if (a->nchannels > 1) {
		mig_error_setg(errp, "Channel list has more than one entries");
		return -EINVAL;
	}
	if (a->uri)
		return mig_addr_parse_uri(a->uri, out, errp);
	*out = a->addr;
	memset(&a->addr, 0, sizeof(a->addr));
	return 0;
}

static json_t *cmd_migrate_incoming(struct migd *md, struct qmp_monitor *mon,
				    json_t *args, struct mig_error **errp)
{
	struct incoming_args a = {0};
	struct mig_addr addr = {0};
	json_t *ret = NULL;

	if (!read_args(args, &a, errp))
		goto out;
	if (md->incoming_state && md->incoming_state->started) {
		mig_error_setg(errp, "The incoming migration has already been "
				     "started");
		goto out;
	}
	if (guest_get_runstate(md->guest) != GUEST_RUNSTATE_INMIGRATE) {
		mig_error_setg(errp, "'-incoming' was not specified on the "
				     "command line");
		goto out;
	}
	if (target_address(&a, &addr, errp) || start(md, mon, &addr, errp))
		goto out;
	ret = json_object();
out:
	mig_addr_clear(&a.addr);
	mig_addr_clear(&addr);
	return ret;
}

static const struct qmp_command incoming_commands[] = {
	{"migrate-incoming", cmd_migrate_incoming, 0},
};

void incoming_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, incoming_commands,
		     sizeof(incoming_commands) / sizeof(incoming_commands[0]));
	incoming_pc_register_qmp(srv);
}

/* ---- query and exit ------------------------------------------------------ */

void incoming_fill_query_info(struct migd *md, json_t *out)
{
	struct incoming *inc = md->incoming_state;

	if (!inc)
		return;
	if (inc->status != MIG_STATUS_NONE)
		json_object_set_new(out, "status",
				    json_string(mig_status_names[inc->status]));
	pthread_mutex_lock(&inc->lock);
	if (inc->status != MIG_STATUS_NONE && inc->error)
		json_object_set_new(out, "error-desc",
				    json_string(inc->error->desc));
	pthread_mutex_unlock(&inc->lock);
	if (inc->socket_address)
		json_object_set(out, "socket-address", inc->socket_address);
	incoming_pc_fill_query(inc, out);
}

void incoming_shutdown(struct migd *md)
{
	struct incoming *inc = md->incoming_state;

	if (!inc)
		return;
	atomic_store(&inc->ending, true);
	incoming_teardown(inc);
	/* A guest left blocked by a failed postcopy: wake its vCPUs now so
	 * that the guest can be freed (it never runs again). */
	if (inc->pc.keep_uffd && inc->ld.uffd) {
		loadvm_fini(&inc->ld);
		inc->pc.keep_uffd = false;
		vcpus_set_faults_block(md->guest->vcpus, false);
	}
}

void incoming_free(struct migd *md)
{
	struct incoming *inc = md->incoming_state;

	if (!inc)
		return;
	mig_addr_clear(&inc->addr);
	mig_error_free(inc->error);
	incoming_pc_free(inc);
	pthread_mutex_destroy(&inc->lock);
	free(inc);
	md->incoming_state = NULL;
}
