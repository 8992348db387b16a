/* incoming_tls.h — TLS handshakes of the incoming migration's connections
 * (see incoming_tls.c), off the control loop. Control thread. */
#ifndef MIGD_CONTROL_INCOMING_TLS_H
#define MIGD_CONTROL_INCOMING_TLS_H

#include "control/incoming_priv.h"

/* Loads the server credentials named by tls-creds and the tls-authz
 * identity (inc->cfg). NULL with *errp (QEMU's "No TLS credentials with id
 * '%s'", "Expected TLS credentials for a server endpoint", "Cannot find
 * QAuthZ object ID %s", credential file errors). */
struct incoming_tls *incoming_tls_new(struct incoming *inc,
				      struct mig_error **errp);
/* Kicks and joins every handshake thread, then frees. NULL is fine. */
void incoming_tls_free(struct incoming_tls *t);

/* Takes ch (a just-accepted connection): the handshake runs on its own
 * thread; on success incoming_tls_connected() gets the TLS channel, on
 * failure the migration fails with the handshake's error. */
void incoming_tls_accept(struct incoming_tls *t, struct channel *ch);
/* Kicks handshakes (and first reads) older than timeout_s: those
 * connections are dropped. NULL is fine. */
void incoming_tls_expire(struct incoming_tls *t, unsigned timeout_s);

#endif
