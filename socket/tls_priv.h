/* tls_priv.h — what tls_creds.c (loading credentials into an SSL_CTX) and
 * tls.c (the TLS channel) share. Not for use outside socket/. A tls_ctx is
 * immutable once built except its refcount, so any thread may read it. */
#ifndef MIGD_SOCKET_TLS_PRIV_H
#define MIGD_SOCKET_TLS_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "socket/tls.h"

#define TLS_PSK_MAX_KEY 256   /* bytes of one key */
#define TLS_PSK_MAX_USER 128  /* bytes of one username */
#define TLS_PSK_MAX_USERS 256 /* entries of a server's keys.psk */

struct tls_psk_entry {
	char user[TLS_PSK_MAX_USER + 1];
	uint8_t key[TLS_PSK_MAX_KEY];
	size_t key_len;
};

struct tls_ctx {
	atomic_int refs;
	enum tls_creds_kind kind;
	bool server;
	bool verify_peer;
	SSL_CTX *ssl;
	BIO_METHOD *bio_meth; /* our BIO over a struct channel */
	/* psk: the client's one entry, or the server's table */
	struct tls_psk_entry *psk;
	size_t npsk;
	char psk_file[512]; /* for messages */
};

/* Index of the struct tls_chan in an SSL's ex-data (SSL_set_app_data). */
struct tls_chan;
/* Called by the PSK/verify callbacks (tls_creds.c) to record why a
 * handshake fails, in QEMU's words; the first reason wins. */
void tls_chan_set_reason(SSL *ssl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The session's authz identity (server), or NULL. */
const char *tls_chan_authz(SSL *ssl);

/* Installs the channel BIO's callbacks (tls.c) into a new method. */
void tls_bio_setup(BIO_METHOD *m);

/* The certificate verify callback (x509 sessions). */
int tls_verify_cb(int preverify_ok, X509_STORE_CTX *xs);

#endif
