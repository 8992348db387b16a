/* test_rdma_transport.c — the rdma: transport's control-layer part
 * (control/transport_rdma.c): the capabilities QEMU refuses with RDMA,
 * port parsing, the refusals migd adds (return path, TLS), and the source's
 * connect through the migd context's fabric (the loopback fabric here),
 * and that connect's cancel: prompt whether it comes before or during
 * the connection phase (a listener that never accepts). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/transport.h"
#include "rdma/rdma_chan.h"
#include "rdma/verbs_loopback.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"

static void parse(const char *uri, struct mig_addr *a)
{
	assert_int_equal(mig_addr_parse_uri(uri, a, NULL), 0);
}

static void expect_compat(struct mig_config *cfg, const char *uri,
			  const char *desc)
{
	struct mig_error *err = NULL;
	struct mig_addr a;
	int ret;

	parse(uri, &a);
	ret = transport_check_compatible(cfg, &a, &err);
	mig_addr_clear(&a);
	if (!desc) {
		assert_int_equal(ret, 0);
		assert_null(err);
		return;
	}
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

static void cap(struct mig_config *cfg, enum mig_cap c, bool on)
{
	assert_int_equal(mig_config_set_cap(cfg, c, on, NULL), 0);
}

static void test_refused_capabilities(void **state)
{
	struct mig_config *cfg = mig_config_new();

	expect_compat(cfg, "rdma:192.0.2.1:4444", NULL);
	cap(cfg, MIG_CAP_MULTIFD, true);
	/* multifd over RDMA: migd <-> migd (a QEMU peer is refused when it
	 * answers the connection: test_rdma_mfd.c) */
	expect_compat(cfg, "rdma:192.0.2.1:4444", NULL);
	cap(cfg, MIG_CAP_ZERO_COPY_SEND, true);
	expect_compat(cfg, "rdma:192.0.2.1:4444",
		      "migd does not support multifd-compression or "
		      "zero-copy-send with multifd over rdma");
	cap(cfg, MIG_CAP_ZERO_COPY_SEND, false);
	expect_compat(cfg, "tcp:192.0.2.1:4444", NULL);
	cap(cfg, MIG_CAP_MULTIFD, false);
	cap(cfg, MIG_CAP_XBZRLE, true);
	expect_compat(cfg, "rdma:192.0.2.1:4444",
		      "RDMA and XBZRLE can't be used together");
	cap(cfg, MIG_CAP_XBZRLE, false);
	cap(cfg, MIG_CAP_POSTCOPY_RAM, true);
	expect_compat(cfg, "rdma:[fe80::1]:4444",
		      "RDMA and postcopy-ram can't be used together");
	mig_config_free(cfg);
}

static void test_port(void **state)
{
	struct mig_error *err = NULL;
	struct mig_addr a;
	uint16_t port = 0;

	parse("rdma:192.0.2.1:4444", &a);
	assert_int_equal(transport_rdma_port(&a, &port, NULL), 0);
	assert_int_equal(port, 4444);
	mig_addr_clear(&a);
	parse("rdma:192.0.2.1:http", &a);
	assert_int_equal(transport_rdma_port(&a, &port, &err), -EINVAL);
	assert_string_equal(err->desc, "RDMA ERROR: bad RDMA migration "
				       "address '192.0.2.1:http'");
	mig_error_free(err);
	mig_addr_clear(&a);
}

static void connect_fails(struct migd *md, struct mig_config *cfg,
			  const char *uri, const char *desc)
{
	struct mig_error *err = NULL;
	struct mig_addr a;

	parse(uri, &a);
	assert_null(transport_rdma_connect(md, cfg, &a, -1, &err));
	assert_non_null(err);
	if (!strstr(err->desc, desc))
		fail_msg("\"%s\" lacks \"%s\"", err->desc, desc);
	mig_error_free(err);
	mig_addr_clear(&a);
}

static void test_connect(void **state)
{
	struct migd md = {.rdma_fabric = rv_loop_create()};
	struct mig_config *cfg = mig_config_new();

	connect_fails(&md, cfg, "rdma:192.0.2.1:4444",
		      "RDMA ERROR: connecting to destination!: "
		      "RDMA_CM_EVENT_REJECTED (status 8)");
	cap(cfg, MIG_CAP_RETURN_PATH, true);
	connect_fails(&md, cfg, "rdma:192.0.2.1:4444",
		      "migd does not support the return path over rdma yet");
	cap(cfg, MIG_CAP_RETURN_PATH, false);
	connect_fails(&md, cfg, "rdma:192.0.2.1:x", "bad RDMA migration");
	assert_int_equal(rv_loop_live_objects(md.rdma_fabric), 0);
	rv_fabric_destroy(md.rdma_fabric);
	md.rdma_fabric = NULL;
	connect_fails(&md, cfg, "rdma:192.0.2.1:4444", "no RDMA backend");
	mig_config_free(cfg);
}

struct cancel_run {
	struct migd md;
	struct mig_config *cfg;
	int efd;
	struct channel *ch;
	struct mig_error *err;
	int64_t ms; /* how long the connect took */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *connect_thread(void *opaque)
{
	struct cancel_run *c = opaque;
	struct mig_addr a;
	int64_t t0 = mono_ms();

	parse("rdma:192.0.2.1:4555", &a);
	c->ch = transport_rdma_connect(&c->md, c->cfg, &a, c->efd, &c->err);
	c->ms = mono_ms() - t0;
	mig_addr_clear(&a);
	return NULL;
}

static void kick(int efd)
{
	uint64_t one = 1;

	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
}

static void cancel_run_init(struct cancel_run *c)
{
	memset(c, 0, sizeof(*c));
	c->md.rdma_fabric = rv_loop_create();
	c->cfg = mig_config_new();
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(c->efd >= 0);
}

static void cancel_run_end(struct cancel_run *c, const char *desc)
{
	assert_null(c->ch);
	assert_non_null(c->err);
	assert_string_equal(c->err->desc, desc);
	assert_true(c->ms < 2000); /* a step's bound is 10 s */
	mig_error_free(c->err);
	close(c->efd);
	mig_config_free(c->cfg);
	assert_int_equal(rv_loop_live_objects(c->md.rdma_fabric), 0);
	rv_fabric_destroy(c->md.rdma_fabric);
}

/* migrate_cancel before the migration thread reached the connect. */
static void test_connect_cancelled_before(void **state)
{
	struct cancel_run c;

	cancel_run_init(&c);
	kick(c.efd);
	connect_thread(&c);
	cancel_run_end(&c, "RDMA ERROR: cancelled while resolving the "
			   "address");
}

/* The destination listens but never accepts: the source waits for
 * ESTABLISHED (up to 10 s) until the cancel ends the wait at once. */
static void test_connect_cancelled_while_waiting(void **state)
{
	struct mig_error *err = NULL;
	struct cancel_run c;
	struct rdma_listener *l;
	pthread_t t;

	cancel_run_init(&c);
	l = rdma_listener_open(c.md.rdma_fabric, "192.0.2.1", 4555, &err);
	assert_non_null(l);
	assert_int_equal(pthread_create(&t, NULL, connect_thread, &c), 0);
	usleep(300 * 1000);
	kick(c.efd);
	pthread_join(t, NULL);
	assert_true(c.ms >= 250);
	rdma_listener_free(l);
	cancel_run_end(&c, "RDMA ERROR: cancelled while connecting");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_capabilities),
		cmocka_unit_test(test_port),
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_connect_cancelled_before),
		cmocka_unit_test(test_connect_cancelled_while_waiting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
