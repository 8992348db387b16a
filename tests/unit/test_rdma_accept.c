/* test_rdma_accept.c — the destination's listener accepts without
 * blocking (loopback fabric): the handler returns at once whatever the
 * source does, several requests queued together are all accepted (main
 * first, then the multifd channels), a connection that never completes
 * expires at its deadline, one that fails is reported, multifd accepts
 * wait for a slow guest-RAM registration without blocking (and are
 * rejected when it fails), and nothing leaks.
 * Single test thread; raw source endpoints. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest/guest.h"
#include "rdma/rdma_chan_priv.h"
#include "rdma/rdma_conn.h"
#include "rdma/rdma_mfd.h"
#include "rdma/rdma_mfd_priv.h"
#include "rdma/rdma_proto.h"
#include "rdma/verbs_loopback.h"
#include "rdma_migtest.h"
#include "util/evloop.h"

#define AT_PORT 5201
#define AT_MAX 8

struct at {
	struct rv_fabric *fab;
	struct guest *g;
	struct rdma_listener *l;
	struct rdma_ep *src[AT_MAX]; /* raw source endpoints */
	unsigned nsrc;
	struct channel *chan; /* a source rdma: channel */
};

static void at_init(struct at *t, bool mfd)
{
	struct mig_error *err = NULL;

	memset(t, 0, sizeof(*t));
	t->fab = rv_loop_create();
	t->l = rdma_listener_open(t->fab, MT_HOST, AT_PORT, &err);
	assert_non_null(t->l);
	if (!mfd)
		return;
	t->g = guest_new(1, GUEST_RUNSTATE_INMIGRATE);
	mt_block(t->g, "pc.ram", 2 * MT_MIB);
	assert_int_equal(rdma_listener_enable_mfd(t->l, t->g), 0);
}

/* A raw source connection request with private data pd (not waited). */
static struct rdma_ep *at_connect(struct at *t, const uint8_t *pd, uint8_t len)
{
	const struct rdma_ep_opts o = {
		.max_send_wr = 4, .max_recv_wr = 4, .cqe = 16};
	struct mig_error *err = NULL;
	struct rdma_ep *ep =
		rdma_ep_resolve(t->fab, MT_HOST, AT_PORT, &o, &err);
	struct rv_conn_param p = {.private_data = pd, .private_data_len = len};

	assert_non_null(ep);
	assert_int_equal(t->fab->ops->connect(ep->id, &p), 0);
	t->src[t->nsrc++] = ep;
	return ep;
}

static void at_connect_main(struct at *t, uint32_t flags)
{
	struct rproto_caps caps = {.version = RPROTO_VERSION, .flags = flags};
	uint8_t pd[RPROTO_CAPS_SIZE];

	rproto_caps_encode(&caps, pd);
	at_connect(t, pd, sizeof(pd));
}

static void at_connect_channel(struct at *t, unsigned id)
{
	static const uint8_t uuid[16] = {1, 2, 3};
	uint8_t pd[RMFD_CONNECT_SIZE];

	rmfd_connect_encode(uuid, id, pd);
	at_connect(t, pd, sizeof(pd));
}

/* One handler call, which must not wait. */
static int at_handle(struct at *t, struct channel **ch, struct mig_error **err)
{
	uint64_t t0 = ev_now_ms();
	int ret = rdma_listener_handle(t->l, ch, err);

	assert_true(ev_now_ms() - t0 < 200);
	return ret;
}

static void at_fini(struct at *t)
{
	while (t->nsrc)
		rdma_ep_free(t->src[--t->nsrc]);
	rdma_listener_free(t->l);
	assert_int_equal(rv_loop_live_objects(t->fab), 0);
	if (t->g)
		guest_free(t->g);
	rv_fabric_destroy(t->fab);
}

/* The source never completes the connection: the handler returns at once
 * with nothing, the deadline is armed, and expiry fails it. */
static void test_silent_source_expires(void **state)
{
	struct mig_error *err = NULL;
	struct channel *ch = NULL;
	struct at t;

	at_init(&t, false);
	rdma_listener_set_accept_timeout(t.l, 50);
	assert_int_equal(rdma_listener_next_timeout(t.l), -1);
	rv_loop_set_accept_fault(t.fab, 1, RV_LOOP_ACCEPT_SILENT);
	at_connect_main(&t, 0);
	assert_int_equal(at_handle(&t, &ch, &err), 0);
	assert_null(ch);
	assert_in_range(rdma_listener_next_timeout(t.l), 0, 50);
	assert_int_equal(rdma_listener_expire(t.l, &err), 0); /* not yet */
	usleep(60 * 1000);
	assert_int_equal(rdma_listener_next_timeout(t.l), 0);
	assert_int_equal(rdma_listener_expire(t.l, &err), -ETIMEDOUT);
	assert_string_equal(err->desc,
			    "RDMA ERROR: no event while accepting: the source "
			    "did not complete the connection within 50 ms");
	mig_error_free(err);
	assert_int_equal(rdma_listener_next_timeout(t.l), -1);
	at_fini(&t);
}

/* The source vanished after its request: the accept's event is an error,
 * reported with QEMU's words; the channel is gone. */
static void test_lost_source_fails(void **state)
{
	struct mig_error *err = NULL;
	struct channel *ch = NULL;
	struct at t;

	at_init(&t, false);
	rv_loop_set_accept_fault(t.fab, 1, RV_LOOP_ACCEPT_LOST);
	at_connect_main(&t, 0);
	assert_int_equal(at_handle(&t, &ch, &err), -ECONNABORTED);
	assert_null(ch);
	assert_string_equal(err->desc,
			    "RDMA ERROR: rdma_accept not event established "
			    "(RDMA_CM_EVENT_CONNECT_ERROR)");
	mig_error_free(err);
	assert_int_equal(rdma_listener_next_timeout(t.l), -1);
	at_fini(&t);
}

/* Collects what the handler hands out: want channels (within 5 s; guest
 * RAM is pinned by a worker meanwhile), then nothing more. */
static unsigned at_drain(struct at *t, struct channel **out, unsigned want)
{
	struct mig_error *err = NULL;
	unsigned n = 0;

	for (int i = 0; i < 2500 && n <= want; i++) {
		struct channel *ch = NULL;
		int ret = at_handle(t, &ch, &err);

		assert_true(ret >= 0);
		if (ret == 1) {
			assert_true(n < AT_MAX);
			out[n++] = ch;
		} else if (n == want && i > 20) {
			break;
		} else {
			usleep(2000);
		}
	}
	return n;
}

/* The main connection and three multifd channels request together (the
 * old blocking accept took the others' requests as its own event): all
 * are accepted, the main channel first. */
static void test_requests_together(void **state)
{
	uint8_t init[MFD_INIT_SIZE];
	struct channel *got[AT_MAX];
	unsigned n;
	struct at t;

	at_init(&t, true);
	at_connect_main(&t, RMFD_CAP_MAIN);
	for (unsigned i = 0; i < 3; i++)
		at_connect_channel(&t, i);
	n = at_drain(&t, got, 4);
	assert_int_equal(n, 4);
	assert_false(rdma_mfd_chan_init(got[0], init));
	for (unsigned i = 1; i < n; i++)
		assert_true(rdma_mfd_chan_init(got[i], init));
	assert_int_equal(rdma_listener_next_timeout(t.l), -1);
	while (n)
		chan_close(got[--n]);
	at_fini(&t);
}

/* One channel of several never completes: the others are handed out, the
 * silent one alone waits for its deadline; the listener's teardown frees
 * a connection still pending. */
static void test_one_silent_among_several(void **state)
{
	struct channel *got[AT_MAX];
	unsigned n;
	struct at t;

	at_init(&t, true);
	rv_loop_set_accept_fault(t.fab, 3, RV_LOOP_ACCEPT_SILENT);
	at_connect_main(&t, RMFD_CAP_MAIN);
	for (unsigned i = 0; i < 3; i++)
		at_connect_channel(&t, i);
	n = at_drain(&t, got, 3);
	assert_int_equal(n, 3);
	assert_in_range(rdma_listener_next_timeout(t.l), 1,
			RDMA_CONN_TIMEOUT_MS);
	while (n)
		chan_close(got[--n]);
	at_fini(&t); /* the pending one is closed by rdma_listener_free */
}

/* Guest RAM takes long to pin: the handler never waits for it (the main
 * connection goes on at once), polls while the channels' accepts are
 * owed, and hands them out once it is done. */
static void test_slow_registration(void **state)
{
	struct mig_error *err = NULL;
	struct channel *got[AT_MAX], *ch = NULL;
	unsigned n;
	struct at t;

	at_init(&t, true);
	rv_loop_set_reg_delay(t.fab, 300);
	at_connect_main(&t, RMFD_CAP_MAIN);
	at_connect_channel(&t, 0);
	at_connect_channel(&t, 1);
	assert_int_equal(at_handle(&t, &ch, &err), 1); /* the main one */
	got[0] = ch;
	assert_int_equal(at_handle(&t, &ch, &err), 0); /* still pinning */
	assert_in_range(rdma_listener_next_timeout(t.l), 0, 20);
	n = at_drain(&t, got + 1, 2);
	assert_int_equal(n, 2);
	assert_int_equal(rdma_listener_next_timeout(t.l), -1);
	for (n = 3; n;)
		chan_close(got[--n]);
	at_fini(&t);
}

/* Pinning fails (the locked-memory limit): the owed channel's request is
 * rejected and the memlock message is the listener's error. */
static void test_registration_fails(void **state)
{
	struct mig_error *err = NULL;
	struct channel *got[AT_MAX];
	struct rv_cm_event ev;
	int ret = 0;
	struct at t;

	at_init(&t, true);
	at_connect_main(&t, RMFD_CAP_MAIN);
	assert_int_equal(at_drain(&t, got, 1), 1);
	rv_loop_set_reg_delay(t.fab, 50);
	rv_loop_fail_reg(t.fab, 4, ENOMEM); /* after its 3 buffers */
	at_connect_channel(&t, 0);
	for (int i = 0; i < 500 && !ret; i++) {
		struct channel *ch = NULL;

		ret = at_handle(&t, &ch, &err);
		assert_true(ret <= 0);
		usleep(2000);
	}
	assert_int_equal(ret, -ENOMEM);
	assert_non_null(strstr(err->desc, "RLIMIT_MEMLOCK"));
	mig_error_free(err);
	assert_int_equal(rv_wait_cm_event(t.fab, t.src[1]->ech, &ev, -1, 1000),
			 0);
	assert_int_equal(ev.type, RV_CM_REJECTED);
	chan_close(got[0]);
	at_fini(&t);
}

static void *connect_main(void *opaque)
{
	struct at *t = opaque;
	struct mig_error *err = NULL;

	t->chan = rdma_chan_connect(t->fab, MT_HOST, AT_PORT, false, &err);
	mig_error_free(err);
	return NULL;
}

static void *close_later(void *opaque)
{
	usleep(200 * 1000);
	chan_close(opaque);
	return NULL;
}

/* The destination takes the source's last message and closes at once;
 * the source polls that send's (successful) completion only after the
 * DISCONNECTED (completions here come 500 ms late, the close at 200 ms):
 * the send succeeds, as the message was delivered. */
static void test_disconnect_after_delivery(void **state)
{
	struct mig_error *err = NULL;
	struct channel *dst;
	pthread_t th;
	struct at t;

	at_init(&t, false);
	assert_int_equal(pthread_create(&th, NULL, connect_main, &t), 0);
	assert_int_equal(at_drain(&t, &dst, 1), 1);
	pthread_join(th, NULL);
	assert_non_null(t.chan);
	rv_loop_set_delay(t.fab, 500);
	assert_int_equal(pthread_create(&th, NULL, close_later, dst), 0);
	assert_int_equal(
		rdma_chan_send(t.chan->priv, RPROTO_QEMU_FILE, "x", 1, 1, &err),
		0);
	pthread_join(th, NULL);
	chan_close(t.chan);
	at_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_source_expires),
		cmocka_unit_test(test_lost_source_fails),
		cmocka_unit_test(test_requests_together),
		cmocka_unit_test(test_one_silent_among_several),
		cmocka_unit_test(test_slow_registration),
		cmocka_unit_test(test_registration_fails),
		cmocka_unit_test(test_disconnect_after_delivery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
