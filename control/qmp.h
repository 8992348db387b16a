/* qmp.h — the QMP server: listening sockets, monitors (one per client
 * connection), JSON framing, capabilities negotiation, command dispatch,
 * errors and events, SCM_RIGHTS fd passing.
 * Control thread only: other threads hand work to the control loop with
 * ev_loop_post() and call qmp_event() from there. */
#ifndef MIGD_CONTROL_QMP_H
#define MIGD_CONTROL_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

struct migd;
struct ev_loop;
struct qmp_server;
struct qmp_monitor;

/* A command handler. args is the "arguments" object ({} when absent; never
 * NULL). Returns a new reference to the "return" value (json_object() for
 * commands without data) or NULL with *errp set. mon is the monitor the
 * command came from (for fd passing); it stays valid during the call. */
typedef json_t *(*qmp_cmd_fn)(struct migd *md, struct qmp_monitor *mon,
			      json_t *args, struct mig_error **errp);

enum {
	QMP_CMD_ALLOW_OOB = 1u << 0, /* may be run with exec-oob */
};

struct qmp_command {
	const char *name;
	qmp_cmd_fn fn;
	unsigned flags;
};

struct qmp_server *qmp_server_new(struct migd *md, struct ev_loop *loop);
/* Closes every monitor and listener and unlinks unix socket paths. */
void qmp_server_free(struct qmp_server *srv);

/* Adds a listener from a QEMU -qmp/-chardev spec: "unix:PATH[,server=on,
 * wait=off]" or "tcp:HOST:PORT[,server=on,wait=off]". 0 or -errno with
 * *errp set. */
int qmp_server_listen(struct qmp_server *srv, const char *spec,
		      struct mig_error **errp);

/* Registers commands (the table must outlive the server). Names must be
 * unique; returns 0 or -EEXIST. */
int qmp_register(struct qmp_server *srv, const struct qmp_command *cmds,
		 size_t n);
/* Registers qmp_capabilities, query-version and query-commands. */
void qmp_core_register(struct qmp_server *srv);
/* Looks up a registered command by name. */
const struct qmp_command *qmp_find_command(struct qmp_server *srv,
					   const char *name);
/* Calls fn for every registered command, in registration order. */
void qmp_foreach_command(struct qmp_server *srv,
			 void (*fn)(const struct qmp_command *cmd,
				    void *opaque),
			 void *opaque);

/* Broadcasts an event to every monitor that finished negotiation. data is
 * stolen (may be NULL: no "data" member). */
void qmp_event(struct qmp_server *srv, const char *name, json_t *data);

/* fd passing on unix monitors. Takes ownership of the oldest fd received
 * with the current command (SCM_RIGHTS), or returns -1 if none came. */
int qmp_monitor_take_fd(struct qmp_monitor *mon);
/* Named fds (getfd/closefd) belong to their monitor. Returns a dup'ed
 * descriptor the caller owns ('fd:NAME' URIs), or -errno. */
int qmp_monitor_dup_named_fd(struct qmp_monitor *mon, const char *name);

/* Runs one complete request (a JSON text) as if it had arrived on a monitor
 * that completed negotiation, and returns the reply text (malloc'd; NULL if
 * the request produced no reply). For unit tests and the fuzzer. */
char *qmp_server_handle_text(struct qmp_server *srv, const char *text,
			     size_t len);

#endif
