/* main.c — migd's entry point: parse the command line, build the one
 * struct migd (event loop, guest RAM, migration config, fd sets, QMP
 * server), run the control loop until 'quit' or a signal, then free
 * everything in reverse order. Owns signal handling (signalfd on the loop).
 * Main thread = the control thread. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "control/cmdline.h"
#include "control/daemon.h"
#include "control/dirtylimit_cmds.h"
#include "control/dirtyrate.h"
#include "control/fdset.h"
#include "control/guest_cmds.h"
#include "control/incoming.h"
#include "control/migcfg.h"
#include "control/migration.h"
#include "control/migd.h"
#include "control/objects.h"
#include "control/qmp.h"
#include "control/snapshot.h"
#include "control/switchover.h"
#include "control/vm.h"
#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/vcpu.h"
#include "rdma/verbs.h"
#include "util/evloop.h"
#include "util/log.h"

struct main_state {
	struct migd md;
	struct daemon_state daemon;
	int signal_fd;
};

static void __attribute__((format(printf, 1, 2))) report(const char *fmt, ...)
{
	va_list ap;

	fputs("migd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Prints and frees err; returns -1 for "exit 1". */
static int report_error(struct mig_error *err, const char *prefix)
{
	report("%s%s", prefix ? prefix : "", err ? err->desc : "failed");
	mig_error_free(err);
	return -1;
}

/* ---- signals ------------------------------------------------------------- */

/* The name QEMU prints for a signal's sender: its /proc cmdline. */
static void sender_name(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	if (!n)
		snprintf(buf, len, "unknown");
}

static void on_signal(struct ev_loop *loop, int fd, uint32_t events,
		      void *opaque)
{
	struct migd *md = opaque;
	struct signalfd_siginfo si;
	char name[256];

	if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (si.ssi_pid) {
		sender_name((pid_t)si.ssi_pid, name, sizeof(name));
		report("terminating on signal %u from pid %u (%s)",
		       si.ssi_signo, si.ssi_pid, name);
	} else {
		report("terminating on signal %u", si.ssi_signo);
	}
	log_info("terminating on signal %u", si.ssi_signo);
	vm_shutdown(md, "host-signal");
}

/* Blocks the termination signals (threads created later inherit the mask)
 * and returns a signalfd for them; SIGPIPE is ignored: a closed socket is
 * an EPIPE, never a death. */
static int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* ---- setup --------------------------------------------------------------- */

static int setup_config(struct migd *md, const struct cmdline *cl)
{
	struct mig_error *err = NULL;

	md->config = mig_config_new();
	md->fdsets = fdsets_new();
	md->rdma_fabric = rv_rdmacore_create(); /* rdma: the real backend */
	if (!md->config || !md->fdsets || !md->rdma_fabric) {
		report("out of memory");
		return -1;
	}
	for (size_t i = 0; i < cl->nglobals; i++) {
		const struct cmdline_global *g = &cl->globals[i];

		if (mig_config_set_global(md->config, g->prop, g->value, &err) <
		    0) {
			/* migcfg's message names the global, as QEMU's does:
			 * "can't apply global migration.x=y: ..." */
			report("%s", err ? err->desc : "invalid -global");
			mig_error_free(err);
			return -1;
		}
	}
	/* QEMU's migration_object_check(): the -global values as a whole. */
	if (mig_config_check(md->config, &err) < 0) {
		report("%s", err ? err->desc : "invalid migration properties");
		mig_error_free(err);
		return -1;
	}
	return 0;
}

static enum guest_runstate initial_runstate(const struct cmdline *cl)
{
	if (cl->incoming)
		return GUEST_RUNSTATE_INMIGRATE;
	/* Without -S QEMU starts the VM before any monitor can connect, so
	 * nobody sees that RESUME: start in running directly. */
	return cl->start_paused ? GUEST_RUNSTATE_PRELAUNCH
				: GUEST_RUNSTATE_RUNNING;
}

/* Dirty log, vCPU threads (parked) and the -workload; the vCPUs run at
 * once when the guest starts in running. */
static int setup_vcpus(struct migd *md, const struct cmdline *cl)
{
	struct guest *g = md->guest;
	struct mig_error *err = NULL;

	if (dirty_log_init(g) < 0) {
		report("out of memory");
		return -1;
	}
	g->vcpus = vcpus_new(g, &err);
	if (!g->vcpus)
		return report_error(err, NULL);
	if (cl->workload_arg &&
	    vcpus_set_workload(g->vcpus, &cl->workload, &err) < 0) {
		report("-workload %s: %s", cl->workload_arg, err->desc);
		mig_error_free(err);
		return -1;
	}
	if (guest_is_running(g))
		vcpus_resume(g->vcpus);
	return 0;
}

static int setup_guest(struct migd *md, const struct cmdline *cl)
{
	struct ram_block_config cfg;
	struct mig_error *err = NULL;
	struct ram_block *b;
	const char *arg;

	md->guest = guest_new(cl->smp_cpus, initial_runstate(cl));
	if (!md->guest) {
		report("out of memory");
		return -1;
	}
	md->guest->autostart = !cl->start_paused;
	if (cmdline_ram_config(cl, &cfg, &arg, &err) < 0)
		return report_error(err, NULL);
	b = ram_block_new(&cfg, &err);
	if (!b) {
		if (arg)
			report("-object %s: %s", arg, err->desc);
		else
			report("%s", err->desc);
		mig_error_free(err);
		return -1;
	}
	guest_add_block(md->guest, b); /* the first block: cannot clash */
	log_info("guest RAM block '%s': %llu bytes, %s%s", b->name,
		 (unsigned long long)b->used_length,
		 ram_backing_name(b->backing), b->shared ? ", shared" : "");
	return setup_vcpus(md, cl);
}

/* A daemon runs in "/": a relative unix socket path is made absolute so
 * that the socket lands where asked and is unlinked at exit. */
static char *absolute_unix_spec(const char *spec)
{
	char cwd[4096], *abs;

	if (strncmp(spec, "unix:", 5) != 0 || spec[5] == '/' ||
	    spec[5] == '@' || !getcwd(cwd, sizeof(cwd)))
		return strdup(spec);
	if (asprintf(&abs, "unix:%s/%s", cwd, spec + 5) < 0)
		return NULL;
	return abs;
}

static int listen_qmp(struct migd *md, const char *spec, bool daemonize)
{
	char *real = daemonize ? absolute_unix_spec(spec) : strdup(spec);
	struct mig_error *err = NULL;
	int ret;

	if (!real) {
		report("out of memory");
		return -1;
	}
	ret = qmp_server_listen(md->qmp, real, &err);
	if (ret < 0)
		report("-qmp %s: %s", spec, err ? err->desc : "cannot listen");
	mig_error_free(err);
	free(real);
	return ret < 0 ? -1 : 0;
}

static int setup_qmp(struct migd *md, const struct cmdline *cl)
{
	md->qmp = qmp_server_new(md, md->loop);
	if (!md->qmp) {
		report("out of memory");
		return -1;
	}
	qmp_core_register(md->qmp);
	fdset_register_qmp(md->qmp);
	objects_register_qmp(md->qmp);
	migcfg_register_qmp(md->qmp);
	vm_register_qmp(md->qmp);
	guest_cmds_register_qmp(md->qmp);
	migration_register_qmp(md, md->qmp);
	if (dirtyrate_register_qmp(md, md->qmp) < 0) {
		report("out of memory");
		return -1;
	}
	incoming_register_qmp(md->qmp);
	dirtylimit_cmds_register_qmp(md->qmp);
	snapshot_register_qmp(md->qmp);
	/* Unix sockets last: whoever waits for a socket file to appear then
	 * finds every TCP monitor listening too. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < cl->nqmp; i++) {
			bool is_unix = strncmp(cl->qmp[i], "unix:", 5) == 0;

			if (is_unix != (pass == 1))
				continue;
			if (listen_qmp(md, cl->qmp[i], cl->daemonize) < 0)
				return -1;
		}
	}
	return 0;
}

/* -object tls-creds-x509/tls-creds-psk/authz-simple, after the memory
 * backends' ids are taken (control/objects.h). */
static int setup_objects(struct migd *md, const struct cmdline *cl)
{
	struct mig_error *err = NULL;

	md->objects = mig_objects_new();
	if (!md->objects) {
		report("out of memory");
		return -1;
	}
	for (size_t i = 0; i < cl->nbackends; i++)
		if (mig_objects_reserve_id(md->objects, cl->backends[i].id,
					   &err) < 0)
			return report_error(err, NULL);
	for (size_t i = 0; i < cl->nobjects; i++) {
		if (mig_objects_add_opts(md->objects, cl->objects[i], &err) <
		    0) {
			report("-object %s: %s", cl->objects[i], err->desc);
			mig_error_free(err);
			return -1;
		}
	}
	return 0;
}

/* Moves the identity options into the context. */
static void take_identity(struct migd *md, struct cmdline *cl)
{
	md->name = cl->name;
	cl->name = NULL;
	md->incoming = cl->incoming;
	cl->incoming = NULL;
	md->has_uuid = cl->has_uuid;
	memcpy(md->uuid, cl->uuid, sizeof(md->uuid));
}

static int setup(struct main_state *ms, struct cmdline *cl)
{
	struct migd *md = &ms->md;
	struct mig_error *err = NULL;

	/* stderr gets warnings only, like QEMU's quiet default; a -D file
	 * gets the informational log too. */
	log_set_level(cl->logfile ? LOG_LEVEL_INFO : LOG_LEVEL_WARN);
	if (cl->logfile && log_open(cl->logfile, &err) < 0)
		return report_error(err, "-D: ");
	ms->signal_fd = setup_signals();
	md->loop = ev_loop_new();
	if (ms->signal_fd < 0 || !md->loop) {
		report("cannot set up the event loop: %s", strerror(errno));
		return -1;
	}
	if (ev_loop_add_fd(md->loop, ms->signal_fd, EPOLLIN, on_signal, md) <
	    0) {
		report("cannot watch signals");
		return -1;
	}
	if (setup_config(md, cl) < 0 || setup_guest(md, cl) < 0 ||
	    setup_objects(md, cl) < 0)
		return -1;
	take_identity(md, cl);
	if (snapshot_init(md, cl, &err) < 0)
		return report_error(err, NULL);
	if (setup_qmp(md, cl) < 0)
		return -1;
	/* QEMU starts -incoming URI once its monitors exist. */
	if (incoming_start_cmdline(md, &err) < 0) {
		report("-incoming %s: %s", md->incoming,
		       err ? err->desc : "failed");
		mig_error_free(err);
		return -1;
	}
	if (cl->pidfile &&
	    daemon_write_pidfile(&ms->daemon, cl->pidfile, &err) < 0)
		return report_error(err, NULL);
	return 0;
}

/* Frees in reverse order of setup; safe on a partly built state. */
static void teardown(struct main_state *ms)
{
	struct migd *md = &ms->md;

	/* A running migration is cancelled and its thread joined; the calls
	 * it posted run before anything they use is freed. */
	migration_shutdown(md);
	snapshot_shutdown(md);	/* its thread uses guest RAM */
	dirtyrate_shutdown(md); /* its thread reads guest RAM */
	incoming_shutdown(md);	/* its threads use guest RAM */
	if (md->loop)
		ev_loop_run_posted(md->loop);
	migration_free_last(md);
	swo_history_free(md->swo);
	qmp_server_free(md->qmp); /* flushes replies, unlinks unix sockets */
	if (md->loop && ms->signal_fd >= 0)
		ev_loop_del_fd(md->loop, ms->signal_fd);
	if (ms->signal_fd >= 0)
		close(ms->signal_fd);
	dirtylimit_cmds_shutdown(md); /* its thread reads the vCPUs */
	guest_free(md->guest);
	fdsets_free(md->fdsets);
	mig_objects_free(md->objects);
	snapshot_free(md);
	mig_config_free(md->config);
	ev_loop_free(md->loop);
	incoming_free(md);
	rv_fabric_destroy(md->rdma_fabric); /* after every rdma: channel */
	free(md->name);
	free(md->incoming);
	daemon_fini(&ms->daemon);
	log_close();
}

/* ---- main ---------------------------------------------------------------- */

static int run(struct cmdline *cl)
{
	struct main_state ms = {.signal_fd = -1};
	struct mig_error *err = NULL;
	int status = 1;

	daemon_state_init(&ms.daemon);
	if (cl->daemonize && daemon_start(&ms.daemon, &err) < 0) {
		report_error(err, NULL);
		return 1;
	}
	if (setup(&ms, cl) == 0) {
		daemon_ready(&ms.daemon, cl->logfile != NULL);
		if (cl->daemonize && !cl->logfile)
			log_discard();
		log_info("migd %s ready", MIGD_VERSION);
		if (ev_loop_run(ms.md.loop) < 0)
			report("event loop failed: %s", strerror(errno));
		else
			status = ms.md.exit_status;
	}
	teardown(&ms);
	return status;
}

int main(int argc, char **argv)
{
	struct mig_error *err = NULL;
	struct cmdline cl;
	int status = 0;

	if (cmdline_parse(&cl, argc, argv, &err) < 0) {
		report_error(err, NULL);
		status = 1;
	} else if (cl.show_help) {
		cmdline_print_help(stdout);
	} else if (cl.show_version) {
		cmdline_print_version(stdout);
	} else if (cl.show_machines) {
		cmdline_print_machines(stdout);
	} else {
		status = run(&cl);
	}
	cmdline_fini(&cl);
	return status;
}
