/* tls_creds.c — credentials for the TLS channel (see tls.h): QEMU's
 * directory layout read into an OpenSSL SSL_CTX (x509 certificates or a
 * keys.psk table), the PSK callbacks and the certificate verify callback
 * that turns OpenSSL's verdicts into QEMU's messages. TLS 1.2 with AES-GCM
 * first (see docs/architecture.md, "TLS"). Any thread: a tls_ctx is
 * read-only once built. */
#include "socket/tls_priv.h"
#include "util/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define CA_CERT "ca-cert.pem"
#define SERVER_CERT "server-cert.pem"
#define SERVER_KEY "server-key.pem"
#define CLIENT_CERT "client-cert.pem"
#define CLIENT_KEY "client-key.pem"
#define PSK_FILE "keys.psk"
#define PSK_FILE_MAX (1u << 20)

/* ECDHE for forward secrecy, AES-GCM first (AES-NI), ChaCha20 last. */
#define X509_CIPHERS                                                           \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define PSK_CIPHERS                                                            \
	"DHE-PSK-AES128-GCM-SHA256:DHE-PSK-AES256-GCM-SHA384:"                 \
	"ECDHE-PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256:"                   \
	"PSK-AES256-GCM-SHA384"

/* ---- files ----------------------------------------------------------------
 */

/* QEMU's qcrypto_tls_creds_get_path(): *path = dir/name; a missing optional
 * file leaves *path empty. 0 or -errno. */
static int creds_path(const struct tls_creds_spec *s, const char *name,
		      bool required, char *path, size_t len,
		      struct mig_error **errp)
{
	struct stat st;

	path[0] = '\0';
	if (!s->dir) {
		if (!required)
			return 0;
		mig_error_setg(errp, "Missing 'dir' property value");
		return -EINVAL;
	}
	if ((size_t)snprintf(path, len, "%s/%s", s->dir, name) >= len) {
		mig_error_setg(errp, "Unable to access credentials %s/%s: %s",
			       s->dir, name, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	if (stat(path, &st) == 0)
		return 0;
	if (errno == ENOENT && !required) {
		path[0] = '\0';
		return 0;
	}
	mig_error_setg(errp, "Unable to access credentials %s: %s", path,
		       strerror(errno));
	return -errno;
}

struct x509_paths {
	char ca[4096], cert[4096], key[4096];
};

static int x509_paths(const struct tls_creds_spec *s, struct x509_paths *p,
		      struct mig_error **errp)
{
	bool srv = s->server;

	if (creds_path(s, CA_CERT, true, p->ca, sizeof(p->ca), errp) ||
	    creds_path(s, srv ? SERVER_CERT : CLIENT_CERT, srv, p->cert,
		       sizeof(p->cert), errp) ||
	    creds_path(s, srv ? SERVER_KEY : CLIENT_KEY, srv, p->key,
		       sizeof(p->key), errp))
		return -EINVAL;
	return 0;
}

static const char *psk_username(const struct tls_creds_spec *s)
{
	return s->username ? s->username : "qemu";
}

/* Decodes one keys.psk line "user:hexkey" (no newline). false when the
 * line is not a well-formed entry. */
static bool psk_parse_line(const char *line, size_t len,
			   struct tls_psk_entry *e)
{
	const char *colon = memchr(line, ':', len);
	size_t ulen, hlen;

	if (!colon)
		return false;
	ulen = (size_t)(colon - line);
	hlen = len - ulen - 1;
	while (hlen && (colon[hlen] == '\r' || colon[hlen] == ' '))
		hlen--;
	if (!ulen || ulen > TLS_PSK_MAX_USER || !hlen || hlen % 2 ||
	    hlen / 2 > TLS_PSK_MAX_KEY)
		return false;
	memcpy(e->user, line, ulen);
	e->user[ulen] = '\0';
	for (size_t i = 0; i < hlen / 2; i++) {
		int hi = parse_hex_digit(colon[1 + 2 * i]),
		    lo = parse_hex_digit(colon[2 + 2 * i]);

		if (hi < 0 || lo < 0)
			return false;
		e->key[i] = (uint8_t)(hi << 4 | lo);
	}
	e->key_len = hlen / 2;
	return true;
}

static char *read_small_file(const char *path, size_t *len, int *err)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;

	*err = 0;
	if (!f) {
		*err = errno;
		return NULL;
	}
	buf = malloc(PSK_FILE_MAX + 1);
	if (!buf) {
		*err = ENOMEM;
	} else {
		*len = fread(buf, 1, PSK_FILE_MAX, f);
		if (ferror(f)) {
			*err = EIO;
			free(buf);
			buf = NULL;
		} else {
			buf[*len] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/* Reads keys.psk: every entry for a server, the username's for a client
 * (QEMU's "Username %s not found in PSK file %s"). */
static int psk_load(const struct tls_creds_spec *s, const char *path,
		    struct tls_psk_entry **out, size_t *n,
		    struct mig_error **errp)
{
	size_t len = 0, cap = s->server ? TLS_PSK_MAX_USERS : 1;
	int err;
	char *buf = read_small_file(path, &len, &err);
	struct tls_psk_entry *e = calloc(cap, sizeof(*e));

	*n = 0;
	if (!buf || !e) {
		mig_error_setg(errp, "Cannot read PSK file %s: %s", path,
			       strerror(err ? err : ENOMEM));
		goto err;
	}
	for (char *line = buf, *end; *line && *n < cap; line = end + !!*end) {
		end = strchrnul(line, '\n');
		if (!psk_parse_line(line, (size_t)(end - line), &e[*n]))
			continue;
		if (s->server || strcmp(e[*n].user, psk_username(s)) == 0)
			(*n)++;
	}
	if (!s->server && !*n) {
		mig_error_setg(errp, "Username %s not found in PSK file %s",
			       psk_username(s), path);
		goto err;
	}
	OPENSSL_cleanse(buf, len);
	free(buf);
	*out = e;
	return 0;
err:
	if (buf)
		OPENSSL_cleanse(buf, len);
	free(buf);
	free(e);
	return -EINVAL;
}

int tls_creds_check(const struct tls_creds_spec *s, struct mig_error **errp)
{
	struct x509_paths *p;
	struct tls_psk_entry *e = NULL;
	size_t n;
	int ret;

	if (s->kind == TLS_CREDS_PSK) {
		char path[4096];

		if (s->server && s->username) {
			mig_error_setg(errp, "username should not be set when "
					     "endpoint=server");
			return -EINVAL;
		}
		ret = creds_path(s, PSK_FILE, true, path, sizeof(path), errp);
		if (!ret && !s->server)
			ret = psk_load(s, path, &e, &n, errp);
		if (e)
			OPENSSL_cleanse(e, sizeof(*e));
		free(e);
		return ret;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	ret = x509_paths(s, p, errp);
	free(p);
	return ret;
}

/* ---- PSK callbacks ----------------------------------------------------------
 */

static struct tls_ctx *ctx_of(SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
				  unsigned int max_identity_len,
				  unsigned char *psk, unsigned int max_psk_len)
{
	struct tls_ctx *c = ctx_of(ssl);
	const struct tls_psk_entry *e = c->npsk ? &c->psk[0] : NULL;

	if (!e || strlen(e->user) + 1 > max_identity_len ||
	    e->key_len > max_psk_len)
		return 0;
	memcpy(identity, e->user, strlen(e->user) + 1);
	memcpy(psk, e->key, e->key_len);
	return (unsigned int)e->key_len;
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity,
				  unsigned char *psk, unsigned int max_psk_len)
{
	struct tls_ctx *c = ctx_of(ssl);
	const char *authz = tls_chan_authz(ssl);

	if (!identity)
		return 0;
	for (size_t i = 0; i < c->npsk; i++) {
		const struct tls_psk_entry *e = &c->psk[i];

		if (strcmp(e->user, identity) != 0)
			continue;
		if (authz && strcmp(authz, identity) != 0) {
			tls_chan_set_reason(ssl,
					    "TLS PSK authz check for %s is "
					    "denied",
					    identity);
			return 0;
		}
		if (e->key_len > max_psk_len)
			return 0;
		memcpy(psk, e->key, e->key_len);
		return (unsigned int)e->key_len;
	}
	tls_chan_set_reason(ssl,
			    "TLS handshake failed: Username %s not found in "
			    "PSK file %s",
			    identity, c->psk_file);
	return 0;
}

/* ---- certificate verification ---------------------------------------------
 */

/* QEMU's wording (crypto/tlssession.c) for OpenSSL's verify errors. */
static const char *verify_reason(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "The certificate has expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "The certificate is not yet activated";
	case X509_V_ERR_CERT_REVOKED:
		return "The certificate has been revoked";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return "The certificate hasn't got a known issuer";
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return "The certificate uses an insecure algorithm";
	default:
		return "The certificate is not trusted";
	}
}

/* RFC 4514 distinguished name, as GnuTLS's gnutls_x509_crt_get_dn(). */
static bool cert_dn(X509 *cert, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	if (!b)
		return false;
	X509_NAME_print_ex(b, X509_get_subject_name(cert), 0,
			   XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	n = BIO_read(b, buf, (int)len - 1);
	BIO_free(b);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

int tls_verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	int err = X509_STORE_CTX_get_error(xs);
	const char *authz = ssl ? tls_chan_authz(ssl) : NULL;
	char dn[1024];

	if (!ssl)
		return 0;
	if (!preverify_ok) {
		if (err == X509_V_ERR_HOSTNAME_MISMATCH ||
		    err == X509_V_ERR_IP_ADDRESS_MISMATCH) {
			X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
			const char *host = X509_VERIFY_PARAM_get0_host(p, 0);
			char *ip =
				host ? NULL : X509_VERIFY_PARAM_get1_ip_asc(p);

			tls_chan_set_reason(
				ssl,
				"Certificate does not match the hostname %s",
				host ? host
				: ip ? ip
				     : "");
			OPENSSL_free(ip);
		} else {
			tls_chan_set_reason(ssl, "%s", verify_reason(err));
		}
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) != 0 || !authz)
		return 1;
	if (!cert_dn(X509_STORE_CTX_get_current_cert(xs), dn, sizeof(dn)) ||
	    strcmp(dn, authz) != 0) {
		tls_chan_set_reason(
			ssl, "TLS x509 authz check for %s is denied", dn);
		X509_STORE_CTX_set_error(xs,
					 X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/* ---- the SSL_CTX ------------------------------------------------------------
 */

static void ssl_fail(struct mig_error **errp, const char *what,
		     const char *path)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	mig_error_setg(errp, "%s %s: %s", what, path, r ? r : "unknown error");
	ERR_clear_error();
}

static int load_x509(struct tls_ctx *c, const struct tls_creds_spec *s,
		     struct mig_error **errp)
{
	struct x509_paths *p = malloc(sizeof(*p));
	int ret = -EINVAL;

	if (!p) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	if (x509_paths(s, p, errp))
		goto out;
	if (SSL_CTX_load_verify_locations(c->ssl, p->ca, NULL) != 1) {
		ssl_fail(errp, "Unable to load CA certificate", p->ca);
		goto out;
	}
	if (p->cert[0] &&
	    SSL_CTX_use_certificate_chain_file(c->ssl, p->cert) != 1) {
		ssl_fail(errp, "Unable to load certificate", p->cert);
		goto out;
	}
	if (p->key[0] && (SSL_CTX_use_PrivateKey_file(c->ssl, p->key,
						      SSL_FILETYPE_PEM) != 1 ||
			  SSL_CTX_check_private_key(c->ssl) != 1)) {
		ssl_fail(errp, "Unable to load private key", p->key);
		goto out;
	}
	if (c->verify_peer)
		SSL_CTX_set_verify(
			c->ssl,
			SSL_VERIFY_PEER |
				(c->server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
					   : 0),
			tls_verify_cb);
	ret = SSL_CTX_set_cipher_list(c->ssl, X509_CIPHERS) == 1 ? 0 : -EINVAL;
	if (ret)
		ssl_fail(errp, "Unable to set TLS ciphers", X509_CIPHERS);
out:
	free(p);
	return ret;
}

static int load_psk(struct tls_ctx *c, const struct tls_creds_spec *s,
		    struct mig_error **errp)
{
	if (tls_creds_check(s, errp))
		return -EINVAL;
	snprintf(c->psk_file, sizeof(c->psk_file), "%s/%s", s->dir, PSK_FILE);
	if (psk_load(s, c->psk_file, &c->psk, &c->npsk, errp))
		return -EINVAL;
	if (c->server) {
		SSL_CTX_set_psk_server_callback(c->ssl, psk_server_cb);
		SSL_CTX_set_dh_auto(c->ssl, 1);
	} else {
		SSL_CTX_set_psk_client_callback(c->ssl, psk_client_cb);
	}
	if (SSL_CTX_set_cipher_list(c->ssl, PSK_CIPHERS) != 1) {
		ssl_fail(errp, "Unable to set TLS ciphers", PSK_CIPHERS);
		return -EINVAL;
	}
	return 0;
}

struct tls_ctx *tls_ctx_new(const struct tls_creds_spec *s,
			    struct mig_error **errp)
{
	struct tls_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		goto oom;
	atomic_init(&c->refs, 1);
	c->kind = s->kind;
	c->server = s->server;
	c->verify_peer = s->verify_peer;
	c->ssl = SSL_CTX_new(s->server ? TLS_server_method()
				       : TLS_client_method());
	c->bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				   "migd-channel");
	if (!c->ssl || !c->bio_meth)
		goto oom;
	tls_bio_setup(c->bio_meth);
	SSL_CTX_set_app_data(c->ssl, c);
	/* TLS 1.2 only: there every certificate, PSK and authz verdict is
	 * reached inside the handshake, so both sides fail at once with a
	 * reason (TLS 1.3 checks a client's certificate after the client
	 * already finished). */
	SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(c->ssl, TLS1_2_VERSION);
	SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION |
					    SSL_OP_NO_COMPRESSION |
					    SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
	if ((s->kind == TLS_CREDS_X509 ? load_x509(c, s, errp)
				       : load_psk(c, s, errp)) == 0)
		return c;
	tls_ctx_unref(c);
	return NULL;
oom:
	mig_error_setg(errp, "Out of memory");
	tls_ctx_unref(c);
	return NULL;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void tls_ctx_unref(struct tls_ctx *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	SSL_CTX_free(c->ssl);
	BIO_meth_free(c->bio_meth);
	if (c->psk)
		OPENSSL_cleanse(c->psk, c->npsk * sizeof(*c->psk));
	free(c->psk);
	free(c);
}

bool tls_ctx_is_server(const struct tls_ctx *c)
{
	return c->server;
}
