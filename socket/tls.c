/* tls.c — the TLS channel (see tls.h): an OpenSSL session whose records go
 * through the inner channel's ops by a small BIO with a read buffer and a
 * write buffer (a few large inner writes per SSL_write instead of one per
 * 16 KiB record), the blocking handshake and its error messages, a
 * pushback buffer for bytes read to classify a connection, and close_notify
 * at close. Owner thread for I/O and close; tls_shutdown any thread. One
 * other thread may write while the owner reads (postcopy's page requests on
 * either side's return path): SSL calls are serialised by io_lock and a
 * reader waits for the inner fd to turn readable without holding it.
 * Input already inside the session (read ahead, decrypted, pushed back) is
 * invisible to poll(): tls_channel_has_buffered_input() tells. */
#include "socket/tls_priv.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#define RBUF_SIZE (256u << 10) /* ciphertext read ahead from inner */
#define WBUF_SIZE (256u << 10) /* records gathered before an inner write */
#define STAGE_SIZE (64u << 10) /* small iovec entries gathered per write */
#define DIRECT_MAX (1u << 20)  /* largest single SSL_write */
#define UNREAD_MAX 4096

struct tls_chan {
	struct channel ch; /* first: the ops convert back */
	struct channel *inner;
	struct tls_ctx *ctx;
	SSL *ssl;
	pthread_mutex_t io_lock; /* around every SSL call after the handshake */
	atomic_bool reader_waits; /* a reader wants io_lock: writers yield */
	atomic_bool shut;
	bool established; /* handshake done, no fatal error since */
	bool allow_truncation;
	bool clean_close;
	int io_err;	   /* last inner failure (-errno), 0 if none */
	bool inner_eof;	   /* inner returned end of stream */
	const char *authz; /* borrowed during the handshake only */
	char reason[512];  /* why the handshake failed, QEMU's words */
	uint8_t *rbuf, *wbuf, *stage;
	size_t rpos, rlen, wlen;
	uint8_t unread[UNREAD_MAX];
	size_t upos, ulen;
	char cipher[96];
};

static struct tls_chan *to_tls(struct channel *ch)
{
	return (struct tls_chan *)ch;
}

void tls_chan_set_reason(SSL *ssl, const char *fmt, ...)
{
	struct tls_chan *t = SSL_get_app_data(ssl);
	va_list ap;

	if (!t || t->reason[0])
		return;
	va_start(ap, fmt);
	vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
	va_end(ap);
}

const char *tls_chan_authz(SSL *ssl)
{
	struct tls_chan *t = SSL_get_app_data(ssl);

	return t ? t->authz : NULL;
}

/* ---- the BIO over the inner channel ----------------------------------------
 */

static int wflush(struct tls_chan *t)
{
	int ret;

	if (!t->wlen)
		return 0;
	ret = chan_write_all(t->inner, t->wbuf, t->wlen);
	t->wlen = 0;
	if (ret)
		t->io_err = ret;
	return ret;
}

static int bio_write(BIO *b, const char *buf, int len)
{
	struct tls_chan *t = BIO_get_data(b);
	int ret;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (t->wlen + (size_t)len > WBUF_SIZE && wflush(t))
		return -1;
	if ((size_t)len > WBUF_SIZE) {
		ret = chan_write_all(t->inner, buf, (size_t)len);
		if (ret) {
			t->io_err = ret;
			return -1;
		}
		return len;
	}
	memcpy(t->wbuf + t->wlen, buf, (size_t)len);
	t->wlen += (size_t)len;
	return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct tls_chan *t = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (t->rpos == t->rlen) {
		struct iovec iov = {t->rbuf, RBUF_SIZE};
		ssize_t got;

		if (wflush(t)) /* the peer may wait for what we wrote */
			return -1;
		do
			got = t->inner->ops->readv(t->inner, &iov, 1);
		while (got == -EINTR);
		if (got <= 0) {
			if (got == 0)
				t->inner_eof = true;
			else
				t->io_err = (int)got;
			return got == 0 ? 0 : -1;
		}
		t->rpos = 0;
		t->rlen = (size_t)got;
	}
	n = t->rlen - t->rpos < (size_t)len ? t->rlen - t->rpos : (size_t)len;
	memcpy(buf, t->rbuf + t->rpos, n);
	t->rpos += n;
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_chan *t = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return wflush(t) ? 0 : 1;
	case BIO_CTRL_PENDING:
		return (long)(t->rlen - t->rpos);
	case BIO_CTRL_WPENDING:
		return (long)t->wlen;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

void tls_bio_setup(BIO_METHOD *m)
{
	BIO_meth_set_write(m, bio_write);
	BIO_meth_set_read(m, bio_read);
	BIO_meth_set_ctrl(m, bio_ctrl);
	BIO_meth_set_create(m, bio_create);
}

/* ---- errors
 * ------------------------------------------------------------------ */

static bool is_unexpected_eof(unsigned long e)
{
	return ERR_GET_LIB(e) == ERR_LIB_SSL &&
	       ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* What a failed SSL_read/SSL_write means for the caller: 0 (a clean or
 * tolerated end of stream, reads only) or -errno. */
static ssize_t io_result(struct tls_chan *t, int rc, bool reading)
{
	int e = SSL_get_error(t->ssl, rc);
	unsigned long lib = ERR_peek_last_error();

	if (atomic_load(&t->shut))
		return -ECANCELED;
	if (e == SSL_ERROR_ZERO_RETURN && reading)
		return 0;
	t->established = false; /* no close_notify after a failure */
	if (t->io_err)
		return t->io_err;
	if (reading && (t->inner_eof || is_unexpected_eof(lib))) {
		ERR_clear_error();
		return t->allow_truncation ? 0 : -EPROTO;
	}
	ERR_clear_error();
	return reading ? -EPROTO : -EPIPE;
}

/* ---- channel ops -----------------------------------------------------------
 */

static ssize_t take_unread(struct tls_chan *t, const struct iovec *iov,
			   int iovcnt)
{
	size_t done = 0;

	for (int i = 0; i < iovcnt && t->upos < t->ulen; i++) {
		size_t n = t->ulen - t->upos;

		if (n > iov[i].iov_len)
			n = iov[i].iov_len;
		memcpy(iov[i].iov_base, t->unread + t->upos, n);
		t->upos += n;
		done += n;
	}
	return (ssize_t)done;
}

/* A reader takes io_lock before a writer that comes back for it: page
 * requests on a return path do not wait behind a stream of writes. */
static void reader_lock(struct tls_chan *t)
{
	atomic_store(&t->reader_waits, true);
	pthread_mutex_lock(&t->io_lock);
	atomic_store(&t->reader_waits, false);
}

static void writer_lock(struct tls_chan *t)
{
	while (atomic_load(&t->reader_waits))
		sched_yield();
	pthread_mutex_lock(&t->io_lock);
}

/* More plaintext is there without blocking. Under io_lock. */
static bool readable_now(struct tls_chan *t)
{
	return SSL_pending(t->ssl) > 0 || t->rpos < t->rlen;
}

/* Nothing buffered: waits for the inner fd without io_lock, so a writer on
 * another thread never waits behind a read that blocks. */
static void wait_readable(struct tls_chan *t)
{
	struct pollfd p = {.fd = t->inner->fd, .events = POLLIN};
	bool now;

	reader_lock(t);
	now = readable_now(t);
	pthread_mutex_unlock(&t->io_lock);
	while (!now && p.fd >= 0 && !atomic_load(&t->shut) &&
	       poll(&p, 1, 200) == 0)
		;
}

static int locked_read(struct tls_chan *t, void *buf, size_t len, size_t *got,
		       ssize_t *err)
{
	int rc;

	wait_readable(t);
	reader_lock(t);
	ERR_clear_error();
	rc = SSL_read_ex(t->ssl, buf, len, got);
	if (rc <= 0)
		*err = io_result(t, rc, true);
	pthread_mutex_unlock(&t->io_lock);
	return rc;
}

static bool readable_locked(struct tls_chan *t)
{
	bool r;

	reader_lock(t);
	r = readable_now(t);
	pthread_mutex_unlock(&t->io_lock);
	return r;
}

static ssize_t tls_readv(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	struct tls_chan *t = to_tls(ch);
	size_t done = 0;

	if (atomic_load(&t->shut))
		return -ECANCELED;
	if (t->upos < t->ulen)
		return take_unread(t, iov, iovcnt);
	for (int i = 0; i < iovcnt; i++) {
		size_t off = 0;

		while (off < iov[i].iov_len) {
			size_t got = 0;
			ssize_t r = 0;
			int rc;

			if (done && !readable_locked(t))
				return (ssize_t)done;
			rc = locked_read(t, (char *)iov[i].iov_base + off,
					 iov[i].iov_len - off, &got, &r);
			if (rc <= 0)
				return done && r <= 0 ? (ssize_t)done : r;
			off += got;
			done += got;
		}
	}
	return (ssize_t)done;
}

/* Small entries are gathered into one SSL_write (one record per 16 KiB,
 * not one per entry); a large first entry is written in place. */
static ssize_t tls_writev_locked(struct channel *ch, const struct iovec *iov,
				 int iovcnt);

static ssize_t tls_writev(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	struct tls_chan *t = to_tls(ch);
	ssize_t ret;

	writer_lock(t);
	ret = tls_writev_locked(ch, iov, iovcnt);
	pthread_mutex_unlock(&t->io_lock);
	return ret;
}

static ssize_t tls_writev_locked(struct channel *ch, const struct iovec *iov,
				 int iovcnt)
{
	struct tls_chan *t = to_tls(ch);
	const void *src = NULL;
	size_t len = 0, done = 0;
	int rc;

	if (atomic_load(&t->shut))
		return -ECANCELED;
	while (iovcnt > 0 && !iov->iov_len) {
		iov++;
		iovcnt--;
	}
	if (!iovcnt)
		return 0;
	if (iov->iov_len >= STAGE_SIZE / 4) {
		src = iov->iov_base;
		len = iov->iov_len < DIRECT_MAX ? iov->iov_len : DIRECT_MAX;
	} else {
		for (int i = 0; i < iovcnt && len < STAGE_SIZE; i++) {
			size_t n = iov[i].iov_len;

			if (n > STAGE_SIZE - len)
				n = STAGE_SIZE - len;
			memcpy(t->stage + len, iov[i].iov_base, n);
			len += n;
		}
		src = t->stage;
	}
	ERR_clear_error();
	rc = SSL_write_ex(t->ssl, src, len, &done);
	if (rc <= 0)
		return io_result(t, rc, false);
	if (wflush(t))
		return atomic_load(&t->shut) ? -ECANCELED : t->io_err;
	return (ssize_t)done;
}

static void tls_shutdown(struct channel *ch)
{
	struct tls_chan *t = to_tls(ch);

	atomic_store(&t->shut, true);
	chan_shutdown(t->inner);
}

static void tls_free(struct tls_chan *t)
{
	pthread_mutex_destroy(&t->io_lock);
	SSL_free(t->ssl);
	tls_ctx_unref(t->ctx);
	free(t->rbuf);
	free(t->wbuf);
	free(t->stage);
	free(t);
}

static void tls_close(struct channel *ch)
{
	struct tls_chan *t = to_tls(ch);

	/* close_notify tells the peer the stream ended here on purpose
	 * (QEMU 10.0 destinations insist on it for multifd channels). */
	if (t->established && t->clean_close && !atomic_load(&t->shut)) {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		wflush(t);
		ERR_clear_error();
	}
	chan_close(t->inner);
	tls_free(t);
}

static const char *tls_noun(const struct channel *ch)
{
	return chan_noun(((const struct tls_chan *)ch)->inner);
}

static const struct channel_ops tls_ops = {
	.name = "tls",
	.noun = tls_noun,
	.writev = tls_writev,
	.readv = tls_readv,
	.shutdown = tls_shutdown,
	.close = tls_close,
};

/* ---- handshake -------------------------------------------------------------
 */

static void handshake_error(struct tls_chan *t, int rc, struct mig_error **errp)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (atomic_load(&t->shut))
		mig_error_setg(errp, "TLS handshake failed: %s",
			       strerror(ECANCELED));
	else if (t->reason[0])
		mig_error_setg(errp, "%s", t->reason);
	else if (t->io_err)
		mig_error_setg(errp, "TLS handshake failed: %s",
			       strerror(-t->io_err));
	else if (t->inner_eof || (e && is_unexpected_eof(e)))
		/* GnuTLS's wording, which QEMU users know */
		mig_error_setg(errp, "TLS handshake failed: The TLS "
				     "connection was non-properly terminated.");
	else if (e &&
		 ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		mig_error_setg(errp, "No certificate peers");
	else
		mig_error_setg(errp, "TLS handshake failed: %s",
			       r ? r : "unknown error");
	ERR_clear_error();
}

static int set_peer_name(struct tls_chan *t, const char *host)
{
	X509_VERIFY_PARAM *p = SSL_get0_param(t->ssl);

	if (!host)
		return 0;
	/* an address is matched against IP SANs, a name against DNS ones */
	if (X509_VERIFY_PARAM_set1_ip_asc(p, host) == 1)
		return 0;
	return X509_VERIFY_PARAM_set1_host(p, host, 0) == 1 ? 0 : -EINVAL;
}

static struct tls_chan *tls_chan_alloc(struct tls_ctx *c, struct channel *inner)
{
	struct tls_chan *t = calloc(1, sizeof(*t));
	BIO *bio;

	if (!t)
		return NULL;
	pthread_mutex_init(&t->io_lock, NULL);
	t->rbuf = malloc(RBUF_SIZE);
	t->wbuf = malloc(WBUF_SIZE);
	t->stage = malloc(STAGE_SIZE);
	t->ssl = SSL_new(c->ssl);
	bio = t->ssl ? BIO_new(c->bio_meth) : NULL;
	if (!t->rbuf || !t->wbuf || !t->stage || !bio) {
		BIO_free(bio);
		tls_free(t);
		return NULL;
	}
	t->ctx = tls_ctx_ref(c);
	t->inner = inner;
	t->clean_close = true;
	atomic_init(&t->shut, false);
	atomic_init(&t->reader_waits, false);
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	SSL_set_app_data(t->ssl, t);
	t->ch.ops = &tls_ops;
	t->ch.fd = inner->fd;
	t->ch.priv = t;
	memcpy(t->ch.desc, inner->desc, sizeof(t->ch.desc));
	return t;
}

struct channel *tls_channel_new(struct tls_ctx *c, struct channel *inner,
				const struct tls_session_opts *o,
				struct mig_error **errp)
{
	struct tls_chan *t;
	int rc;

	t = tls_chan_alloc(c, inner);
	if (!t) {
		mig_error_setg(errp, "Out of memory");
		chan_close(inner);
		return NULL;
	}
	t->allow_truncation = o && o->allow_truncation;
	t->authz = o ? o->authz_identity : NULL;
	if (!c->server && c->kind == TLS_CREDS_X509 && c->verify_peer &&
	    !(o && o->hostname)) {
		mig_error_setg(errp, "No hostname for certificate validation");
		goto fail;
	}
	if (!c->server && c->kind == TLS_CREDS_X509 && c->verify_peer &&
	    set_peer_name(t, o->hostname)) {
		mig_error_setg(errp, "Out of memory");
		goto fail;
	}
	if (c->server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	ERR_clear_error();
	rc = SSL_do_handshake(t->ssl);
	if (rc != 1) {
		handshake_error(t, rc, errp);
		goto fail;
	}
	t->authz = NULL;
	t->established = true;
	snprintf(t->cipher, sizeof(t->cipher), "%s %s", SSL_get_version(t->ssl),
		 SSL_get_cipher_name(t->ssl));
	return &t->ch;
fail:
	wflush(t); /* the alert, so the peer learns why */
	chan_close(t->inner);
	tls_free(t);
	return NULL;
}

bool tls_channel_has_buffered_input(struct channel *ch)
{
	struct tls_chan *t = to_tls(ch);

	if (!tls_channel_is_tls(ch) || atomic_load(&t->shut))
		return false;
	return t->upos < t->ulen || readable_locked(t);
}

bool tls_channel_wait_input(struct channel *ch, int timeout_ms)
{
	struct pollfd p = {.fd = ch->fd, .events = POLLIN};
	int n;

	if (tls_channel_has_buffered_input(ch))
		return true;
	do
		n = ch->fd >= 0 ? poll(&p, 1, timeout_ms) : 0;
	while (n < 0 && errno == EINTR);
	return n > 0;
}

bool tls_channel_is_tls(const struct channel *ch)
{
	return ch && ch->ops == &tls_ops;
}

int tls_channel_unread(struct channel *ch, const void *buf, size_t len)
{
	struct tls_chan *t = to_tls(ch);
	size_t left;

	if (!tls_channel_is_tls(ch))
		return -EINVAL;
	left = t->ulen - t->upos;
	if (len > UNREAD_MAX - left)
		return -ENOMEM;
	memmove(t->unread + len, t->unread + t->upos, left);
	memcpy(t->unread, buf, len);
	t->upos = 0;
	t->ulen = left + len;
	return 0;
}

void tls_channel_set_allow_truncation(struct channel *ch, bool allow)
{
	if (tls_channel_is_tls(ch))
		to_tls(ch)->allow_truncation = allow;
}

void tls_channel_set_clean_close(struct channel *ch, bool clean)
{
	if (tls_channel_is_tls(ch))
		to_tls(ch)->clean_close = clean;
}

const char *tls_channel_cipher(const struct channel *ch)
{
	return tls_channel_is_tls(ch) ? to_tls((struct channel *)ch)->cipher
				      : "";
}
