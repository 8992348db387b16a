/* test_rdma_mfd_mig.c — a whole migd -> migd migration with multifd over
 * RDMA in one process over the loopback fabric: the source runs the real
 * ram_save path (main stream on the rdma: main channel with migd's
 * capability bit, pages through mfd_send on rdma multifd channels); the
 * destination's "control thread" runs the real listener (multifd
 * enabled: main + channel connections) and its load thread the real
 * loadvm/ram_load path with the mfd_recv SYNC barrier. Also the two
 * refusals of a QEMU peer on the main connection. Leak check after each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "multifd/mfd_recv.h"
#include "multifd/mfd_send.h"
#include "rdma/rdma_mfd.h"
#include "rdma_migtest.h"

struct fm_run {
	struct mt_run mt; /* guests, fabric, port, redirty rounds */
	unsigned n;
	/* destination */
	struct channel *main_ch;
	struct ram_load *rl;
	struct mfd_recv *r;
	struct qfile *f;
	struct loadvm ld;
	pthread_t load;
	bool load_started;
	atomic_bool load_done;
	pthread_mutex_t lock;
	char dst_err[512]; /* (lock) */
	int dst_ret;
	/* source */
	int src_ret;
	char src_err[512];
	struct mig_counters ctr;
	_Atomic uint64_t dst_bytes; /* the destination's multifd bytes */
};

static void fm_keep(struct fm_run *m, struct mig_error *err)
{
	pthread_mutex_lock(&m->lock);
	if (!m->dst_err[0] && err)
		snprintf(m->dst_err, sizeof(m->dst_err), "%s", err->desc);
	pthread_mutex_unlock(&m->lock);
	mig_error_free(err);
}

/* ---- destination ----------------------------------------------------- */

static void fm_mfd_failed(void *opaque, struct mig_error *err)
{
	struct fm_run *m = opaque;

	fm_keep(m, err);
	mfd_recv_shutdown(m->r);
	if (m->main_ch)
		chan_shutdown(m->main_ch);
}

static int fm_sync(void *opaque, struct mig_error **errp)
{
	return mfd_recv_sync(((struct fm_run *)opaque)->r, errp);
}

static void *fm_load(void *opaque)
{
	struct fm_run *m = opaque;
	struct mig_error *err = NULL;

	m->dst_ret = loadvm_run(&m->ld, &err);
	fm_keep(m, err);
	if (m->dst_ret)
		mfd_recv_shutdown(m->r);
	atomic_store(&m->load_done, true);
	return NULL;
}

static void fm_main(struct fm_run *m, struct channel *ch)
{
	struct ram_load_opts ro = {.multifd = true, .rdma = rdma_chan_ram(ch)};
	struct mfd_recv_opts mo = {.channels = m->n};

	m->main_ch = ch;
	m->rl = ram_load_new(m->mt.dst, &ro);
	m->r = mfd_recv_new(&mo, m->rl, fm_mfd_failed, m);
	assert_non_null(m->rl);
	assert_non_null(m->r);
	mfd_recv_set_xport(m->r, &rdma_mfd_recv_xport,
			   rdma_listener_mfd(m->mt.l));
	ram_load_set_sync(m->rl, fm_sync, m);
	m->f = qfile_reader_new(ch);
	loadvm_init(&m->ld, m->f, m->rl, mt_vo(), false);
	assert_int_equal(pthread_create(&m->load, NULL, fm_load, m), 0);
	m->load_started = true;
}

static void fm_channel(struct fm_run *m, struct channel *ch)
{
	uint8_t init[MFD_INIT_SIZE];
	struct mig_error *err = NULL;
	unsigned id;

	if (!rdma_mfd_chan_init(ch, init)) {
		fm_main(m, ch);
		return;
	}
	if (!m->r || mfd_recv_accept_init(m->r, init, &id, &err)) {
		chan_close(ch);
		fm_keep(m, err);
		return;
	}
	if (mfd_recv_start(m->r, id, ch, &err))
		fm_keep(m, err);
}

/* The control thread: connections and CM events until the load ends. */
static void *fm_dst(void *opaque)
{
	struct fm_run *m = opaque;
	struct pollfd pfd = {.fd = rdma_listener_fd(m->mt.l), .events = POLLIN};

	for (int i = 0; i < 3000 && !atomic_load(&m->load_done); i++) {
		struct mig_error *err = NULL;
		struct channel *ch = NULL;
		int ret = rdma_listener_handle(m->mt.l, &ch, &err);

		if (ret < 0) {
			fm_keep(m, err);
			break;
		}
		if (ret == 1)
			fm_channel(m, ch);
		else
			poll(&pfd, 1, 10);
	}
	return NULL;
}

static void fm_dst_fini(struct fm_run *m)
{
	if (m->load_started)
		pthread_join(m->load, NULL);
	mfd_recv_free(m->r);
	qfile_free(m->f);
	chan_close(m->main_ch);
	ram_load_free(m->rl);
}

/* ---- source ---------------------------------------------------------- */

static struct mfd_send *fm_src_channels(struct fm_run *m,
					struct mig_error **err)
{
	struct mfd_send_opts o = {.nchannels = m->n,
				  .zero_detect = true,
				  .xport = &rdma_mfd_send_xport};
	struct channel *chans[8] = {0};
	struct mfd_send *s = NULL;

	for (unsigned i = 0; i < m->n; i++) {
		chans[i] = rdma_mfd_connect(m->mt.fab, MT_HOST, m->mt.port,
					    m->mt.src, o.uuid, i,
					    i ? chans[0] : NULL, -1, err);
		if (!chans[i])
			break;
	}
	if (chans[m->n - 1])
		s = mfd_send_start(chans, &o, &m->ctr, err);
	for (unsigned i = 0; i < m->n; i++)
		chan_close(chans[i]); /* those not taken */
	return s;
}

static void *fm_src(void *opaque)
{
	struct fm_run *m = opaque;
	struct ram_save_opts ro = {.vms = mt_vo(), .zero = RAM_ZERO_MULTIFD};
	struct mig_error *err = NULL;
	uint32_t accepted = 0;
	struct ram_save *rs;
	struct channel *ch;
	struct qfile *f;

	ch = rdma_chan_connect_flags(m->mt.fab, MT_HOST, m->mt.port, false,
				     RMFD_CAP_MAIN, -1, &accepted, &err);
	if (ch && !(accepted & RMFD_CAP_MAIN))
		mig_error_setg(&err, RMFD_QEMU_REFUSAL);
	if (ch && !err)
		ro.mfd = fm_src_channels(m, &err);
	if (!ro.mfd) {
		m->src_ret = -ECONNREFUSED;
		mt_keep_err(m->src_err, sizeof(m->src_err), err);
		chan_close(ch);
		return NULL;
	}
	f = qfile_writer_new(ch);
	rs = ram_save_new(m->mt.src, f, &ro, &m->ctr);
	vms_put_header(f, mt_vo());
	m->src_ret = mt_src_stream(&m->mt, f, rs, &err);
	if (m->src_ret && mfd_send_error(ro.mfd, NULL)) {
		mig_error_free(err);
		err = NULL;
		mfd_send_error(ro.mfd, &err);
	}
	mt_keep_err(m->src_err, sizeof(m->src_err), err);
	ram_save_free(rs);
	qfile_free(f);
	if (m->src_ret)
		mfd_send_kick(ro.mfd);
	mfd_send_free(ro.mfd);
	chan_close(ch);
	return NULL;
}

/* ---- runs ------------------------------------------------------------ */

static void fm_run(struct fm_run *m, bool dst_mfd)
{
	struct mig_error *err = NULL;
	pthread_t s, d;

	pthread_mutex_init(&m->lock, NULL);
	m->mt.l = rdma_listener_open(m->mt.fab, MT_HOST, m->mt.port, &err);
	assert_non_null(m->mt.l);
	if (dst_mfd) {
		static const uint8_t zero_uuid[16];

		assert_int_equal(rdma_listener_enable_mfd(m->mt.l, m->mt.dst),
				 0);
		rdma_mfd_set_expect(rdma_listener_mfd(m->mt.l), zero_uuid,
				    m->n);
		rdma_mfd_set_counter(rdma_listener_mfd(m->mt.l), &m->dst_bytes);
	}
	pthread_create(&d, NULL, fm_dst, m);
	pthread_create(&s, NULL, fm_src, m);
	pthread_join(s, NULL);
	pthread_join(d, NULL);
	fm_dst_fini(m);
	rdma_listener_free(m->mt.l);
	pthread_mutex_destroy(&m->lock);
}

static void fm_init(struct fm_run *m, unsigned n, int fill, int redirty)
{
	memset(m, 0, sizeof(*m));
	m->n = n;
	m->mt.fab = rv_loop_create();
	assert_non_null(m->mt.fab);
	m->mt.port = 4600;
	m->mt.redirty_rounds = redirty;
	mt_guests(&m->mt);
	mt_fill(m->mt.src, fill, 5 + n);
}

static void fm_fini(struct fm_run *m)
{
	assert_int_equal(rv_loop_live_objects(m->mt.fab), 0);
	rv_fabric_destroy(m->mt.fab);
	mt_free(&m->mt);
}

static void migrate(unsigned n, int fill, int redirty)
{
	struct fm_run m;

	fm_init(&m, n, fill, redirty);
	fm_run(&m, true);
	assert_string_equal(m.src_err, "");
	assert_string_equal(m.dst_err, "");
	assert_int_equal(m.src_ret, 0);
	assert_int_equal(m.dst_ret, 0);
	assert_true(mt_same_ram(&m.mt));
	/* the pages went by multifd, not the main channel's RDMA WRITEs */
	assert_int_equal(atomic_load(&m.ctr.rdma_bytes), 0);
	assert_true(atomic_load(&m.ctr.multifd_bytes) > 0);
	/* the destination counts what the source did, its init packets
	 * aside (they rode in the connection requests) */
	assert_int_equal(atomic_load(&m.dst_bytes) + n * MFD_INIT_SIZE,
			 atomic_load(&m.ctr.multifd_bytes));
	fm_fini(&m);
}

static void test_one_channel(void **state)
{
	migrate(1, 0, 0);
}

static void test_four_channels_mixed(void **state)
{
	migrate(4, 2, 0);
}

static void test_four_channels_live(void **state)
{
	migrate(4, 2, 3);
}

static void test_two_channels_zero(void **state)
{
	migrate(2, 1, 1);
}

/* migd source with multifd, destination without (as QEMU: the bit is
 * dropped): the source refuses with QEMU's words. */
static void test_destination_without_multifd(void **state)
{
	struct fm_run m;

	fm_init(&m, 2, 0, 0);
	fm_run(&m, false);
	assert_string_equal(m.src_err,
			    "RDMA and multifd can't be used together");
	fm_fini(&m);
}

/* A source without migd's bit (QEMU) and a destination with multifd:
 * the destination refuses the connection with QEMU's words. */
static void test_source_without_bit(void **state)
{
	struct fm_run m;
	struct mig_error *err = NULL;
	struct channel *ch = NULL;
	int ret = 0;

	fm_init(&m, 2, 0, 0);
	m.mt.l = rdma_listener_open(m.mt.fab, MT_HOST, m.mt.port, &err);
	assert_non_null(m.mt.l);
	assert_int_equal(rdma_listener_enable_mfd(m.mt.l, m.mt.dst), 0);
	m.mt.pin_all = false;
	{
		pthread_t s;

		pthread_create(&s, NULL, mt_src_main, &m.mt);
		for (int i = 0; i < 500 && !ret; i++) {
			ret = rdma_listener_handle(m.mt.l, &ch, &err);
			if (!ret)
				usleep(2000);
		}
		pthread_join(s, NULL);
	}
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err->desc,
			    "RDMA and multifd can't be used together");
	mig_error_free(err);
	assert_non_null(strstr(m.mt.src_err, "REJECTED"));
	rdma_listener_free(m.mt.l);
	fm_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_channel),
		cmocka_unit_test(test_four_channels_mixed),
		cmocka_unit_test(test_four_channels_live),
		cmocka_unit_test(test_two_channels_zero),
		cmocka_unit_test(test_destination_without_multifd),
		cmocka_unit_test(test_source_without_bit),
	};

	alarm(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
