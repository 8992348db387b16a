/* tls.h — TLS (OpenSSL) as a channel layered over any other channel:
 * credentials loaded from a QEMU-style directory (tls-creds-x509: ca-cert.pem,
 * server-cert.pem, server-key.pem, client-cert.pem, client-key.pem;
 * tls-creds-psk: keys.psk with "username:hexkey" lines), a blocking
 * handshake with QEMU's certificate, hostname and authz checks and messages,
 * and close_notify at close. Does not own which credentials a migration
 * uses (control/objects.c) nor when channels are made (control/).
 * A tls_ctx may be shared by any threads (refcounted). A TLS channel is used
 * by its owner thread, and one other thread may write while it reads (a
 * return path); chan_shutdown() may come from any thread. */
#ifndef MIGD_SOCKET_TLS_H
#define MIGD_SOCKET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "socket/channel.h"
#include "util/error.h"

struct tls_ctx;

enum tls_creds_kind {
	TLS_CREDS_X509,
	TLS_CREDS_PSK,
};

/* A credentials object's properties (borrowed strings). */
struct tls_creds_spec {
	enum tls_creds_kind kind;
	bool server;	      /* endpoint=server */
	bool verify_peer;     /* x509: check the peer's certificate */
	const char *dir;      /* NULL: not set */
	const char *username; /* psk client identity; NULL = "qemu" */
};

/* QEMU's checks when a credentials object is created: the files the
 * endpoint needs exist ("Unable to access credentials DIR/FILE: ..."), and
 * for a PSK client its username is in keys.psk. 0 or -errno with *errp. */
int tls_creds_check(const struct tls_creds_spec *s, struct mig_error **errp);

/* Loads the credentials (reads every file now). NULL with *errp. */
struct tls_ctx *tls_ctx_new(const struct tls_creds_spec *s,
			    struct mig_error **errp);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *c);
void tls_ctx_unref(struct tls_ctx *c); /* NULL is fine */
bool tls_ctx_is_server(const struct tls_ctx *c);

struct tls_session_opts {
	/* Client, x509 with verify-peer: the name the server's certificate
	 * must match (DNS name or IP address). */
	const char *hostname;
	/* Server: the only client allowed (x509: its certificate's
	 * distinguished name in RFC 4514 form, psk: its username); NULL lets
	 * every authenticated client in. */
	const char *authz_identity;
	/* A peer that closes without close_notify ends the stream (0) instead
	 * of failing with -EPROTO. */
	bool allow_truncation;
};

/* Runs the handshake over inner (blocking; chan_shutdown(inner) from
 * another thread aborts it) and returns the TLS channel, which owns inner.
 * On failure closes inner and returns NULL with *errp: QEMU's messages for
 * certificate checks ("Certificate does not match the hostname %s", "The
 * certificate hasn't got a known issuer", "TLS x509 authz check for %s is
 * denied", ...), else "TLS handshake failed: <reason>". */
struct channel *tls_channel_new(struct tls_ctx *c, struct channel *inner,
				const struct tls_session_opts *o,
				struct mig_error **errp);

/* Input that a poll() on ch->fd cannot see: bytes pushed back, plaintext
 * OpenSSL already decrypted, or records read ahead from the socket. A read
 * then returns without waiting for the socket (for a partial record, it
 * waits for the rest only). False for other channels and after shutdown.
 * The reading thread (one other thread may be writing). */
bool tls_channel_has_buffered_input(struct channel *ch);
/* Buffered input (above), else poll() for the socket to turn readable up
 * to timeout_ms (-1: no limit). True when a read would not wait for the
 * peer's next send. Reading thread; ch may be any channel. */
bool tls_channel_wait_input(struct channel *ch, int timeout_ms);
/* True when ch is a TLS channel. */
bool tls_channel_is_tls(const struct channel *ch);
/* Puts len bytes back in front of the stream: the next reads return them
 * first. Owner thread. 0 or -ENOMEM/-EINVAL. */
int tls_channel_unread(struct channel *ch, const void *buf, size_t len);
void tls_channel_set_allow_truncation(struct channel *ch, bool allow);
/* Whether close sends close_notify (default true). */
void tls_channel_set_clean_close(struct channel *ch, bool clean);
/* The negotiated "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256", for logs. */
const char *tls_channel_cipher(const struct channel *ch);

#endif
