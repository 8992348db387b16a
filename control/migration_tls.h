/* migration_tls.h — TLS on the outgoing migration's channels (see
 * migration_tls.c). Migration thread. */
#ifndef MIGD_CONTROL_MIGRATION_TLS_H
#define MIGD_CONTROL_MIGRATION_TLS_H

#include "util/error.h"

struct channel;
struct migration;

/* Takes ch. Without tls-creds returns ch as it is; otherwise runs the TLS
 * client handshake over it and returns the TLS channel, or NULL with *errp
 * (ch closed) — QEMU's messages: "No TLS credentials with id '%s'",
 * "Expected TLS credentials for a client endpoint", "Certificate does not
 * match the hostname %s", "TLS handshake failed: ...". NULL ch: NULL. */
struct channel *migration_tls_wrap(struct migration *m, struct channel *ch,
				   struct mig_error **errp);

#endif
