/* test_rdma_fail.c — rdma: failures over the loopback fabric: refused port,
 * address and route errors, unreachable peer, a rejected capabilities
 * version, memory registration failing with ENOMEM (the memlock message),
 * the destination killed mid-transfer (completion errors), cancel mid-
 * transfer from another thread. Each fails with a clear error and leaves no
 * verbs object behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "rdma/rdma_chan_priv.h"
#include "rdma/rdma_conn.h"
#include "rdma/rdma_proto.h"
#include "rdma_migtest.h"

static void mt_new(struct mt_run *r, uint16_t port)
{
	memset(r, 0, sizeof(*r));
	r->port = port;
	r->fab = rv_loop_create();
	assert_non_null(r->fab);
	mt_guests(r);
	mt_fill(r->src, 2, 77);
}

static void mt_end(struct mt_run *r)
{
	if (getenv("MT_VERBOSE"))
		print_message("src: %s\ndst: %s\n", r->src_err, r->dst_err);
	assert_int_equal(rv_loop_live_objects(r->fab), 0);
	rv_fabric_destroy(r->fab);
	mt_free(r);
}

static void expect_src_error(struct mt_run *r, const char *part)
{
	assert_int_not_equal(r->src_ret, 0);
	if (!strstr(r->src_err, part))
		fail_msg("source error \"%s\" lacks \"%s\"", r->src_err, part);
}

static void test_refused_port(void **state)
{
	struct mt_run r;

	mt_new(&r, 5101);
	r.no_dst = true;
	mt_migrate(&r);
	expect_src_error(&r, "RDMA ERROR: connecting to destination!: "
			     "RDMA_CM_EVENT_REJECTED (status 8)");
	mt_end(&r);
}

static void test_refused_by_fabric(void **state)
{
	struct mt_run r;
	struct mig_error *err = NULL;

	mt_new(&r, 5102);
	r.l = rdma_listener_open(r.fab, MT_HOST, r.port, &err);
	assert_non_null(r.l);
	rv_loop_refuse_port(r.fab, r.port);
	r.no_dst = true;
	mt_migrate(&r);
	rdma_listener_free(r.l);
	expect_src_error(&r, "refused or rejected by the destination");
	mt_end(&r);
}

static void resolve_fault(enum rv_loop_resolve_fault fault, const char *msg)
{
	struct mt_run r;

	mt_new(&r, 5103);
	r.no_dst = true;
	rv_loop_set_resolve_fault(r.fab, fault);
	mt_migrate(&r);
	expect_src_error(&r, msg);
	mt_end(&r);
}

static void test_addr_error(void **state)
{
	resolve_fault(RV_LOOP_ADDR_ERROR,
		      "RDMA ERROR: result not equal to event_addr_resolved "
		      "RDMA_CM_EVENT_ADDR_ERROR");
}

static void test_route_error(void **state)
{
	resolve_fault(RV_LOOP_ROUTE_ERROR,
		      "RDMA ERROR: result not equal to event_route_resolved: "
		      "RDMA_CM_EVENT_ROUTE_ERROR");
}

static void test_unreachable(void **state)
{
	resolve_fault(RV_LOOP_UNREACHABLE, "RDMA_CM_EVENT_UNREACHABLE");
}

/* A source speaking version 2: refused with QEMU's message, and the
 * source sees the rejection. */
static void test_bad_caps_version(void **state)
{
	const struct rdma_ep_opts o = {
		.max_send_wr = 4, .max_recv_wr = 4, .cqe = 16};
	struct rproto_caps caps = {.version = 2, .flags = 0};
	struct rv_fabric *fab = rv_loop_create();
	struct mig_error *err = NULL, *lerr = NULL;
	struct rdma_listener *l = rdma_listener_open(fab, MT_HOST, 5104, &err);
	struct rdma_ep *ep = rdma_ep_resolve(fab, MT_HOST, 5104, &o, &err);
	struct channel *ch = NULL;
	struct rv_cm_event est;
	uint8_t pdata[RPROTO_CAPS_SIZE];

	assert_non_null(l);
	assert_non_null(ep);
	rproto_caps_encode(&caps, pdata);
	assert_int_equal(
		fab->ops->connect(ep->id,
				  &(struct rv_conn_param){
					  .private_data = pdata,
					  .private_data_len = sizeof(pdata)}),
		0);
	assert_true(rdma_listener_handle(l, &ch, &lerr) < 0);
	assert_null(ch);
	assert_string_equal(lerr->desc,
			    "Unknown source RDMA version: 2, bailing...");
	assert_int_equal(rv_wait_cm_event(fab, ep->ech, &est, -1, 1000), 0);
	assert_int_equal(est.type, RV_CM_REJECTED);
	mig_error_free(lerr);
	rdma_ep_free(ep);
	rdma_listener_free(l);
	assert_int_equal(rv_loop_live_objects(fab), 0);
	rv_fabric_destroy(fab);
}

/* Registration n (1-3 source control buffers, 4-6 destination's, 7 the
 * destination's first chunk, 8 the source's) fails with ENOMEM. */
static void reg_enomem(unsigned nth, bool src_side)
{
	struct mt_run r;

	mt_new(&r, (uint16_t)(5110 + nth));
	rv_loop_fail_reg(r.fab, nth, ENOMEM);
	mt_migrate(&r);
	assert_int_not_equal(r.src_ret, 0);
	assert_int_not_equal(r.dst_ret, 0);
	if (!strstr(src_side ? r.src_err : r.dst_err, "RLIMIT_MEMLOCK"))
		fail_msg("no memlock message: src \"%s\" dst \"%s\"", r.src_err,
			 r.dst_err);
	assert_non_null(strstr(src_side ? r.src_err : r.dst_err,
			       "raise it (ulimit -l"));
	mt_end(&r);
}

static void test_reg_enomem_dst_chunk(void **state)
{
	reg_enomem(7, false);
}

static void test_reg_enomem_src_chunk(void **state)
{
	reg_enomem(8, true);
}

static void test_reg_enomem_src_control(void **state)
{
	struct mt_run r;

	mt_new(&r, 5120);
	r.no_dst = true;
	rv_loop_fail_reg(r.fab, 2, ENOMEM);
	mt_migrate(&r);
	expect_src_error(&r, "control buffer");
	expect_src_error(&r, "RLIMIT_MEMLOCK");
	mt_end(&r);
}

/* Pin-all on the destination: its whole-block registration fails. */
static void test_reg_enomem_pin_all(void **state)
{
	struct mt_run r;

	mt_new(&r, 5121);
	r.pin_all = true;
	/* 1-6 control buffers; then the two sides' block registrations
	 * race: fail every later one. */
	rv_loop_fail_reg(r.fab, 7, ENOMEM);
	mt_migrate(&r);
	assert_int_not_equal(r.src_ret, 0);
	assert_int_not_equal(r.dst_ret, 0);
	if (!strstr(r.src_err, "RLIMIT_MEMLOCK") &&
	    !strstr(r.dst_err, "RLIMIT_MEMLOCK"))
		fail_msg("no memlock message: src \"%s\" dst \"%s\"", r.src_err,
			 r.dst_err);
	mt_end(&r);
}

static void kill_dst(struct mt_run *r)
{
	struct channel *d;

	while (!(d = atomic_load(&r->dst_ch)))
		usleep(1000);
	assert_int_equal(rv_loop_kill(r->fab, rdma_chan_qp(d)), 0);
}

static void test_peer_killed(void **state)
{
	struct mt_run r;

	mt_new(&r, 5130);
	mt_fill(r.src, 0, 5); /* RDMA WRITEs from the first page on */
	r.after_setup = kill_dst;
	mt_migrate(&r);
	expect_src_error(&r, "RDMA ERROR: the destination disconnected");
	assert_int_not_equal(r.dst_ret, 0);
	assert_non_null(strstr(r.dst_err, "RDMA ERROR:"));
	mt_end(&r);
}

static void kill_src(struct mt_run *r)
{
	assert_int_equal(
		rv_loop_kill(r->fab, rdma_chan_qp(atomic_load(&r->src_ch))), 0);
}

static void test_source_killed(void **state)
{
	struct mt_run r;

	mt_new(&r, 5131);
	r.after_setup = kill_src;
	mt_migrate(&r);
	assert_int_not_equal(r.dst_ret, 0);
	assert_non_null(strstr(r.dst_err, "completion failed"));
	assert_int_not_equal(r.src_ret, 0);
	mt_end(&r);
}

static void *canceller(void *opaque)
{
	struct mt_run *r = opaque;
	struct channel *s;

	while (!(s = atomic_load(&r->src_ch)))
		usleep(1000);
	usleep(30000);
	mt_cancel(r);
	return NULL;
}

/* Slow completions keep the source inside waits; shutdown from another
 * thread ends it there. */
static void test_cancel_mid_transfer(void **state)
{
	struct mt_run r;
	pthread_t t;

	mt_new(&r, 5140);
	mt_fill(r.src, 0, 9);
	rv_loop_set_delay(r.fab, 2);
	pthread_create(&t, NULL, canceller, &r);
	mt_migrate(&r);
	pthread_join(t, NULL);
	expect_src_error(&r, "RDMA ERROR: migration cancelled");
	assert_int_not_equal(r.dst_ret, 0);
	mt_end(&r);
}

static void *connect_and_close(void *opaque)
{
	struct rv_fabric *fab = opaque;
	struct channel *ch = rdma_chan_connect(fab, MT_HOST, 5150, false, NULL);

	assert_non_null(ch);
	chan_close(ch); /* disconnects */
	return NULL;
}

/* A hostile MEM_SIZE list naming blocks again and again: the table stops
 * at 16384 entries (block indices have 14 bits in the work request id)
 * with an error, and frees cleanly (it used to free a moved realloc). */
static void test_too_many_blocks(void **state)
{
	struct rdma_chan c;
	struct mig_error *err = NULL;
	struct rdma_ram *r;

	memset(&c, 0, sizeof(c));
	r = rdma_ram_new(&c);
	assert_non_null(r);
	for (int i = 0; i < 16384; i++)
		assert_int_equal(rdma_dst_block_seen(r, 0, NULL), 0);
	assert_int_equal(rdma_dst_block_seen(r, 0, &err), -E2BIG);
	assert_string_equal(err->desc, "RDMA ERROR: too many RAM blocks");
	mig_error_free(err);
	rdma_ram_free(r);
}

/* The listener sees the source's DISCONNECTED (control thread in migd)
 * and flushes the accepted channel: the reader fails with the reason. */
static void test_listener_sees_disconnect(void **state)
{
	struct mt_run r = {.fab = rv_loop_create(), .port = 5150};
	struct mig_error *err = NULL;
	struct channel *ch = NULL;
	struct pollfd pfd;
	uint8_t buf[16];
	pthread_t t;

	r.l = rdma_listener_open(r.fab, MT_HOST, r.port, &err);
	assert_non_null(r.l);
	pthread_create(&t, NULL, connect_and_close, r.fab);
	assert_int_equal(mt_accept(&r, &ch, &err), 0);
	pthread_join(t, NULL);
	pfd = (struct pollfd){.fd = rdma_listener_fd(r.l), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 1000), 1);
	assert_int_equal(
		rdma_listener_handle(r.l, &(struct channel *){NULL}, &err), 0);
	assert_true(ch->ops->readv(ch, &(struct iovec){buf, sizeof(buf)}, 1) <
		    0);
	assert_true(rdma_chan_error(ch, &err));
	assert_non_null(strstr(err->desc, "the peer disconnected"));
	mig_error_free(err);
	chan_close(ch);
	rdma_listener_free(r.l);
	assert_int_equal(rv_loop_live_objects(r.fab), 0);
	rv_fabric_destroy(r.fab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_port),
		cmocka_unit_test(test_refused_by_fabric),
		cmocka_unit_test(test_addr_error),
		cmocka_unit_test(test_route_error),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_bad_caps_version),
		cmocka_unit_test(test_reg_enomem_dst_chunk),
		cmocka_unit_test(test_reg_enomem_src_chunk),
		cmocka_unit_test(test_reg_enomem_src_control),
		cmocka_unit_test(test_reg_enomem_pin_all),
		cmocka_unit_test(test_peer_killed),
		cmocka_unit_test(test_source_killed),
		cmocka_unit_test(test_cancel_mid_transfer),
		cmocka_unit_test(test_listener_sees_disconnect),
		cmocka_unit_test(test_too_many_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
