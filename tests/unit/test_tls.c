/* test_tls.c — the TLS channel (socket/tls.c, tls_creds.c) over a
 * socketpair: x509 and PSK handshakes with credentials made by
 * tests/tls/gen-certs.sh (openssl CLI), data both ways, close_notify and
 * truncation, pushback, input buffered inside the session, a reader and a
 * writer thread on one session, shutdown kicking a blocked reader, QEMU's
 * messages for a wrong CA, expired certificate, wrong hostname, wrong PSK,
 * denied identity and missing files. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "socket/tls.h"
#include "tests/unit/chan_testutil.h"

#define CLIENT_DN "CN=client,O=migd test,C=GB"

static char certs[256];

struct side {
	struct tls_creds_spec spec;
	struct tls_session_opts opts;
	char dir[512];
	struct channel *ch;
	char *err;
};

static void side_x509(struct side *s, const char *sub, bool server)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/%s", certs, sub);
	s->spec = (struct tls_creds_spec){TLS_CREDS_X509, server, true, s->dir,
					  NULL};
	if (!server)
		s->opts.hostname = "localhost";
}

static void side_psk(struct side *s, const char *sub, bool server)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "%s/%s", certs, sub);
	s->spec = (struct tls_creds_spec){TLS_CREDS_PSK, server, true, s->dir,
					  NULL};
}

struct hs {
	struct side *s;
	int fd;
};

static void *run_side(void *arg)
{
	struct hs *h = arg;
	struct mig_error *err = NULL;
	struct tls_ctx *c = tls_ctx_new(&h->s->spec, &err);
	struct channel *inner = sock_channel_new(h->fd, "pair");

	if (c)
		h->s->ch = tls_channel_new(c, inner, &h->s->opts, &err);
	else
		chan_close(inner);
	tls_ctx_unref(c);
	h->s->err = err ? strdup(err->desc) : NULL;
	mig_error_free(err);
	return NULL;
}

/* Both handshakes at once; each side's channel or error is in it. */
static void handshake(struct side *srv, struct side *cli)
{
	int sv[2];
	struct hs a, b;
	pthread_t t;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a = (struct hs){srv, sv[0]};
	b = (struct hs){cli, sv[1]};
	assert_int_equal(pthread_create(&t, NULL, run_side, &a), 0);
	run_side(&b);
	pthread_join(t, NULL);
}

static void side_fini(struct side *s)
{
	chan_close(s->ch);
	free(s->err);
}

static void expect_fail(struct side *s, const char *msg)
{
	assert_null(s->ch);
	assert_non_null(s->err);
	if (msg && strcmp(s->err, msg) != 0)
		fail_msg("expected \"%s\", got \"%s\"", msg, s->err);
}

static void expect_prefix(struct side *s, const char *prefix)
{
	assert_null(s->ch);
	assert_non_null(s->err);
	if (strncmp(s->err, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s...\", got \"%s\"", prefix, s->err);
}

static void expect_ok(struct side *s)
{
	if (!s->ch)
		fail_msg("handshake failed: %s", s->err ? s->err : "?");
}

/* ---- success ------------------------------------------------------------- */

static void round_trip(struct side *srv, struct side *cli)
{
	uint8_t buf[5];

	transfer_big(cli->ch, srv->ch);
	transfer_big(srv->ch, cli->ch);
	/* close_notify: the reader sees a clean end of stream */
	chan_close(cli->ch);
	cli->ch = NULL;
	assert_int_equal(chan_read_all(srv->ch, buf, sizeof(buf)), -EPIPE);
}

static void test_x509_ok(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client", false);
	handshake(&srv, &cli);
	expect_ok(&srv);
	expect_ok(&cli);
	assert_true(tls_channel_is_tls(cli.ch));
	assert_non_null(strstr(tls_channel_cipher(cli.ch), "TLSv1.2"));
	assert_non_null(strstr(tls_channel_cipher(cli.ch), "GCM"));
	round_trip(&srv, &cli);
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_ip_hostname(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client", false);
	cli.opts.hostname = "127.0.0.1";
	handshake(&srv, &cli);
	expect_ok(&srv);
	expect_ok(&cli);
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_authz_ok(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client", false);
	srv.opts.authz_identity = CLIENT_DN;
	handshake(&srv, &cli);
	expect_ok(&srv);
	expect_ok(&cli);
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_no_verify(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client-otherca", false);
	srv.spec.verify_peer = false;
	cli.spec.verify_peer = false;
	cli.opts.hostname = "wrong.example";
	handshake(&srv, &cli);
	expect_ok(&srv);
	expect_ok(&cli);
	side_fini(&srv);
	side_fini(&cli);
}

/* ---- certificate failures --------------------------------------------------
 */

static void test_x509_wrong_ca(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client-otherca", false);
	handshake(&srv, &cli);
	expect_fail(&cli, "The certificate hasn't got a known issuer");
	expect_prefix(&srv, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_server_rejects_client_ca(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server-otherca", true);
	side_x509(&cli, "client", false);
	srv.spec.verify_peer = true;
	cli.spec.verify_peer = false;
	handshake(&srv, &cli);
	expect_fail(&srv, "The certificate hasn't got a known issuer");
	expect_prefix(&cli, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_expired(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server-expired", true);
	side_x509(&cli, "client", false);
	handshake(&srv, &cli);
	expect_fail(&cli, "The certificate has expired");
	expect_prefix(&srv, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_client_expired(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client-expired", false);
	handshake(&srv, &cli);
	expect_fail(&srv, "The certificate has expired");
	expect_prefix(&cli, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_wrong_hostname(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client", false);
	cli.opts.hostname = "otherhost";
	handshake(&srv, &cli);
	expect_fail(&cli, "Certificate does not match the hostname otherhost");
	expect_prefix(&srv, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_authz_denied(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "client", false);
	srv.opts.authz_identity = "CN=bob,O=migd test,C=GB";
	handshake(&srv, &cli);
	expect_fail(&srv, "TLS x509 authz check for " CLIENT_DN " is denied");
	expect_prefix(&cli, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_x509_client_without_cert(void **state)
{
	struct side srv, cli;

	side_x509(&srv, "server", true);
	side_x509(&cli, "server", false); /* no client-cert.pem there */
	handshake(&srv, &cli);
	expect_fail(&srv, "No certificate peers");
	expect_prefix(&cli, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

/* ---- PSK --------------------------------------------------------------------
 */

static void test_psk_ok(void **state)
{
	struct side srv, cli;

	side_psk(&srv, "psk", true);
	side_psk(&cli, "psk", false);
	srv.opts.authz_identity = "qemu";
	handshake(&srv, &cli);
	expect_ok(&srv);
	expect_ok(&cli);
	assert_non_null(strstr(tls_channel_cipher(cli.ch), "PSK"));
	round_trip(&srv, &cli);
	side_fini(&srv);
	side_fini(&cli);
}

static void test_psk_wrong_key(void **state)
{
	struct side srv, cli;

	side_psk(&srv, "psk", true);
	side_psk(&cli, "psk-wrong", false);
	handshake(&srv, &cli);
	expect_prefix(&srv, "TLS handshake failed: ");
	expect_prefix(&cli, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_psk_authz_denied(void **state)
{
	struct side srv, cli;

	side_psk(&srv, "psk", true);
	side_psk(&cli, "psk", false);
	cli.spec.username = "alice";
	srv.opts.authz_identity = "qemu";
	handshake(&srv, &cli);
	expect_fail(&srv, "TLS PSK authz check for alice is denied");
	expect_prefix(&cli, "TLS handshake failed: ");
	side_fini(&srv);
	side_fini(&cli);
}

static void test_psk_unknown_user(void **state)
{
	struct side srv, cli;
	struct mig_error *err = NULL;

	side_psk(&cli, "psk", false);
	cli.spec.username = "mallory";
	assert_int_not_equal(tls_creds_check(&cli.spec, &err), 0);
	assert_non_null(strstr(err->desc, "Username mallory not found in "
					  "PSK file "));
	mig_error_free(err);
	side_psk(&srv, "psk", true);
	srv.spec.username = "qemu";
	err = NULL;
	assert_int_not_equal(tls_creds_check(&srv.spec, &err), 0);
	assert_string_equal(err->desc,
			    "username should not be set when endpoint=server");
	mig_error_free(err);
}

/* ---- files ------------------------------------------------------------------
 */

static void test_missing_files(void **state)
{
	struct tls_creds_spec s = {TLS_CREDS_X509, true, true, "/nonexistent",
				   NULL};
	struct mig_error *err = NULL;

	assert_null(tls_ctx_new(&s, &err));
	assert_string_equal(err->desc, "Unable to access credentials "
				       "/nonexistent/ca-cert.pem: No such "
				       "file or directory");
	mig_error_free(err);
	err = NULL;
	s.dir = NULL;
	assert_int_not_equal(tls_creds_check(&s, &err), 0);
	assert_string_equal(err->desc, "Missing 'dir' property value");
	mig_error_free(err);
	err = NULL;
	s.kind = TLS_CREDS_PSK;
	s.dir = "/nonexistent";
	assert_int_not_equal(tls_creds_check(&s, &err), 0);
	assert_string_equal(err->desc, "Unable to access credentials "
				       "/nonexistent/keys.psk: No such "
				       "file or directory");
	mig_error_free(err);
}

/* ---- channel behaviour ------------------------------------------------------
 */

static void pair_x509(struct side *srv, struct side *cli)
{
	side_x509(srv, "server", true);
	side_x509(cli, "client", false);
	handshake(srv, cli);
	expect_ok(srv);
	expect_ok(cli);
}

static void test_unread(void **state)
{
	struct side srv, cli;
	uint8_t buf[12];

	pair_x509(&srv, &cli);
	assert_int_equal(chan_write_all(cli.ch, "QEVMrest", 8), 0);
	assert_int_equal(chan_read_all(srv.ch, buf, 4), 0);
	assert_int_equal(tls_channel_unread(srv.ch, buf, 4), 0);
	assert_int_equal(tls_channel_unread(srv.ch, "ab", 2), 0);
	assert_int_equal(chan_read_all(srv.ch, buf, 10), 0);
	assert_memory_equal(buf, "abQEVMrest", 10);
	side_fini(&srv);
	side_fini(&cli);
}

static void test_truncation(void **state)
{
	struct side srv, cli;
	uint8_t buf[4];

	pair_x509(&srv, &cli);
	tls_channel_set_clean_close(cli.ch, false);
	chan_close(cli.ch);
	cli.ch = NULL;
	assert_int_equal(chan_read_all(srv.ch, buf, 4), -EPROTO);
	side_fini(&srv);

	pair_x509(&srv, &cli);
	tls_channel_set_clean_close(cli.ch, false);
	tls_channel_set_allow_truncation(srv.ch, true);
	chan_close(cli.ch);
	cli.ch = NULL;
	assert_int_equal(chan_read_all(srv.ch, buf, 4), -EPIPE);
	side_fini(&srv);
}

static void *kick_later(void *arg)
{
	usleep(50 * 1000);
	chan_shutdown(arg);
	return NULL;
}

static void test_shutdown_kicks_reader(void **state)
{
	struct side srv, cli;
	uint8_t buf[4];
	pthread_t t;

	pair_x509(&srv, &cli);
	assert_int_equal(pthread_create(&t, NULL, kick_later, srv.ch), 0);
	assert_int_equal(chan_read_all(srv.ch, buf, 4), -ECANCELED);
	pthread_join(t, NULL);
	assert_int_equal(chan_write_all(srv.ch, "x", 1), -ECANCELED);
	side_fini(&srv);
	side_fini(&cli);
}

static bool fd_readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Two messages in one record, then two records read in one go: after the
 * first read the rest is inside the session, unseen by poll(). */
static void test_buffered_input(void **state)
{
	struct side srv, cli;
	uint8_t buf[8];

	pair_x509(&srv, &cli);
	assert_false(tls_channel_has_buffered_input(srv.ch));
	assert_false(tls_channel_wait_input(srv.ch, 0));
	assert_int_equal(chan_write_all(cli.ch, "PONGACK!", 8), 0);
	assert_int_equal(chan_read_all(srv.ch, buf, 4), 0);
	assert_false(fd_readable(srv.ch->fd));
	assert_true(tls_channel_has_buffered_input(srv.ch));
	assert_true(tls_channel_wait_input(srv.ch, 0));
	assert_int_equal(chan_read_all(srv.ch, buf, 4), 0);
	assert_memory_equal(buf, "ACK!", 4);
	assert_false(tls_channel_wait_input(srv.ch, 0));

	assert_int_equal(chan_write_all(cli.ch, "AAAA", 4), 0);
	assert_int_equal(chan_write_all(cli.ch, "BBBB", 4), 0);
	assert_int_equal(chan_read_all(srv.ch, buf, 4), 0);
	assert_false(fd_readable(srv.ch->fd));
	assert_true(tls_channel_wait_input(srv.ch, 0));
	assert_int_equal(chan_read_all(srv.ch, buf, 4), 0);
	assert_memory_equal(buf, "BBBB", 4);
	assert_false(tls_channel_has_buffered_input(srv.ch));
	assert_int_equal(tls_channel_unread(srv.ch, "x", 1), 0);
	assert_true(tls_channel_has_buffered_input(srv.ch));
	side_fini(&srv);
	side_fini(&cli);
}

struct drain {
	struct channel *ch;
	size_t want, got;
};

static void *drain_thread(void *arg)
{
	struct drain *d = arg;
	uint8_t buf[4096];

	while (d->got < d->want) {
		size_t n = d->want - d->got < sizeof(buf) ? d->want - d->got
							  : sizeof(buf);

		if (chan_read_all(d->ch, buf, n))
			break;
		d->got += n;
	}
	return NULL;
}

/* A return path: one thread blocked reading a session while another
 * writes megabytes through it; the reader still gets its message. */
static void test_reader_and_writer_threads(void **state)
{
	static uint8_t big[1 << 20];
	struct side srv, cli;
	struct drain rd, dr;
	pthread_t r, d;

	pair_x509(&srv, &cli);
	rd = (struct drain){.ch = srv.ch, .want = 4};
	dr = (struct drain){.ch = cli.ch, .want = 8 * sizeof(big)};
	assert_int_equal(pthread_create(&r, NULL, drain_thread, &rd), 0);
	assert_int_equal(pthread_create(&d, NULL, drain_thread, &dr), 0);
	usleep(20 * 1000); /* the reader waits in poll, without the lock */
	for (int i = 0; i < 8; i++)
		assert_int_equal(chan_write_all(srv.ch, big, sizeof(big)), 0);
	pthread_join(d, NULL);
	assert_int_equal(dr.got, dr.want);
	assert_int_equal(chan_write_all(cli.ch, "SHUT", 4), 0);
	pthread_join(r, NULL);
	assert_int_equal(rd.got, 4);
	side_fini(&srv);
	side_fini(&cli);
}

static void test_nothing_in_clear(void **state)
{
	static const char secret[] = "QEVM-secret-page-content";
	struct side srv, cli;
	uint8_t wire[4096];
	int fd;
	ssize_t n;

	side_x509(&cli, "client", false);
	cli.spec.verify_peer = false;
	side_x509(&srv, "server", true);
	srv.spec.verify_peer = false;
	handshake(&srv, &cli);
	expect_ok(&cli);
	expect_ok(&srv);
	/* spy: write through TLS, read the ciphertext off the server fd */
	fd = srv.ch->fd;
	assert_int_equal(chan_write_all(cli.ch, secret, sizeof(secret)), 0);
	n = recv(fd, wire, sizeof(wire), 0);
	assert_true(n > (ssize_t)sizeof(secret));
	assert_null(memmem(wire, (size_t)n, "QEVM", 4));
	side_fini(&srv);
	side_fini(&cli);
}

static int setup_certs(void **state)
{
	const char *src = getenv("MIGD_SRCDIR");
	char cmd[1024];

	snprintf(certs, sizeof(certs), "/tmp/migd-test-tls-XXXXXX");
	if (!mkdtemp(certs))
		return -1;
	snprintf(cmd, sizeof(cmd), "%s/tests/tls/gen-certs.sh %s",
		 src ? src : ".", certs);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown_certs(void **state)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x509_ok),
		cmocka_unit_test(test_x509_ip_hostname),
		cmocka_unit_test(test_x509_authz_ok),
		cmocka_unit_test(test_x509_no_verify),
		cmocka_unit_test(test_x509_wrong_ca),
		cmocka_unit_test(test_x509_server_rejects_client_ca),
		cmocka_unit_test(test_x509_expired),
		cmocka_unit_test(test_x509_client_expired),
		cmocka_unit_test(test_x509_wrong_hostname),
		cmocka_unit_test(test_x509_authz_denied),
		cmocka_unit_test(test_x509_client_without_cert),
		cmocka_unit_test(test_psk_ok),
		cmocka_unit_test(test_psk_wrong_key),
		cmocka_unit_test(test_psk_authz_denied),
		cmocka_unit_test(test_psk_unknown_user),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_unread),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_shutdown_kicks_reader),
		cmocka_unit_test(test_nothing_in_clear),
		cmocka_unit_test(test_buffered_input),
		cmocka_unit_test(test_reader_and_writer_threads),
	};

	return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
