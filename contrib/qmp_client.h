/* qmp_client.h — the client side of QMP for migctl: connect to a unix or TCP
 * monitor, read the greeting, negotiate, send commands and read replies with
 * a timeout, handing events met on the way to a callback.
 * Does not own argument parsing or output formatting. Single-threaded: one
 * connection is used by one thread. The server is not trusted: every line is
 * size-limited and checked to be a JSON object before it is used. */
#ifndef MIGD_CONTRIB_QMP_CLIENT_H
#define MIGD_CONTRIB_QMP_CLIENT_H

#include <jansson.h>

#include "util/error.h"

/* Longest line migctl accepts from a server (QEMU's own input limit). */
#define QMPC_MAX_LINE (64u << 20)

struct qmpc;

/* Called for each event ({"event": ...}) received while waiting for a
 * reply. line is the message as received, without the line end. */
typedef void (*qmpc_event_fn)(void *opaque, json_t *event, const char *line);

/* Connects to "PATH", "unix:PATH" or "tcp:HOST:PORT" ("tcp:[V6]:PORT"). Each
 * later wait for the server gives up after timeout_ms (< 0: never). Returns
 * NULL with *errp set on failure. */
struct qmpc *qmpc_connect(const char *addr, int timeout_ms,
			  struct mig_error **errp);
void qmpc_close(struct qmpc *c);
void qmpc_set_event_fn(struct qmpc *c, qmpc_event_fn fn, void *opaque);

/* Reads the greeting and runs qmp_capabilities. 0 or -errno with *errp. */
int qmpc_handshake(struct qmpc *c, struct mig_error **errp);

/* Sends {"execute": cmd, "arguments": args, "id": ...} (args may be NULL:
 * no "arguments") and waits for the matching reply. On success *reply is
 * the reply object (a new reference) and, when line is not NULL, *line the
 * reply as received (malloc'd). Returns 0, or -errno with *errp set:
 * -ECONNRESET the server closed the connection, -ETIMEDOUT no reply in
 * time, -EPROTO the server sent something that is not QMP. A QMP error
 * reply is a successful call: look at the reply's "error" member. */
int qmpc_execute(struct qmpc *c, const char *cmd, json_t *args, json_t **reply,
		 char **line, struct mig_error **errp);

/* Formats an {"error": {"class": ..., "desc": ...}} reply as
 * "CLASS: DESC" into a new string. Returns NULL if reply has no error. */
char *qmpc_error_string(const json_t *reply);

#endif
