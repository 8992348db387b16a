/* test_uffd.c — guest/uffd.c against the real kernel: a reader thread
 * touches a missing page and blocks, the fault callback sees its offset and
 * thread id, placement (copy, zero page) wakes it with the right content,
 * pages are placed once (EEXIST included), blocktime is counted, the fault
 * thread stops while a fault is pending, and bad registrations/placements
 * are refused. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/uffd.h"

#define PS 4096u
#define NPAGES 16u

struct faults {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n;
	unsigned range[8];
	uint64_t offset[8];
	uint32_t tid[8];
};

struct reader {
	pthread_t thread;
	volatile uint8_t *addr;
	uint8_t value;
	atomic_int tid;
	atomic_bool go; /* touch the page only once set */
	atomic_bool done;
};

static void on_fault(void *opaque, unsigned range, uint64_t offset,
		     uint32_t tid)
{
	struct faults *f = opaque;

	pthread_mutex_lock(&f->lock);
	if (f->n < 8) {
		f->range[f->n] = range;
		f->offset[f->n] = offset;
		f->tid[f->n] = tid;
	}
	f->n++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Waits until at least n faults were reported (5 s at most). */
static bool wait_faults(struct faults *f, unsigned n)
{
	struct timespec until;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&f->lock);
	while (f->n < n && ok)
		ok = pthread_cond_timedwait(&f->cond, &f->lock, &until) == 0;
	ok = f->n >= n;
	pthread_mutex_unlock(&f->lock);
	return ok;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	atomic_store(&r->tid, gettid());
	while (!atomic_load(&r->go))
		usleep(100);
	r->value = *r->addr;
	atomic_store(&r->done, true);
	return NULL;
}

/* Starts a thread that reads *addr; held until reader_go() if !go. */
static void reader_start_held(struct reader *r, uint8_t *addr, bool go)
{
	memset(r, 0, sizeof(*r));
	r->addr = addr;
	atomic_store(&r->go, go);
	assert_int_equal(pthread_create(&r->thread, NULL, reader_main, r), 0);
	while (!atomic_load(&r->tid))
		usleep(100);
}

static void reader_start(struct reader *r, uint8_t *addr)
{
	reader_start_held(r, addr, true);
}

static void reader_go(struct reader *r)
{
	atomic_store(&r->go, true);
}

static bool reader_join(struct reader *r)
{
	for (int i = 0; i < 5000 && !atomic_load(&r->done); i++)
		usleep(1000);
	if (!atomic_load(&r->done))
		return false;
	pthread_join(r->thread, NULL);
	return true;
}

struct fixture {
	struct faults f;
	struct uffd *u;
	uint8_t *mem;
	int range;
};

static uint8_t *map_pages(void)
{
	uint8_t *m = mmap(NULL, NPAGES * PS, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	madvise(m, NPAGES * PS, MADV_NOHUGEPAGE);
	return m;
}

static struct fixture *fixture_new(bool blocktime, unsigned nr_vcpus)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct uffd_config cfg = {
		.blocktime = blocktime,
		.nr_vcpus = nr_vcpus,
		.on_fault = on_fault,
	};
	struct mig_error *err = NULL;

	pthread_mutex_init(&fx->f.lock, NULL);
	pthread_cond_init(&fx->f.cond, NULL);
	cfg.opaque = &fx->f;
	fx->u = uffd_open(&cfg, &err);
	assert_null(err);
	assert_non_null(fx->u);
	fx->mem = map_pages();
	fx->range = uffd_register(fx->u, fx->mem, NPAGES * PS, PS, &err);
	assert_null(err);
	assert_int_equal(fx->range, 0);
	assert_int_equal(uffd_start(fx->u, &err), 0);
	return fx;
}

static void fixture_free(struct fixture *fx)
{
	uffd_free(fx->u);
	munmap(fx->mem, NPAGES * PS);
	free(fx);
}

static void test_open_methods(void **state)
{
	static const enum uffd_open_method m[] = {
		UFFD_OPEN_AUTO, UFFD_OPEN_SYSCALL, UFFD_OPEN_DEV,
		UFFD_OPEN_USER_ONLY};
	struct faults f = {0};
	struct uffd_config cfg = {.on_fault = on_fault, .opaque = &f};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct mig_error *err = NULL;
		struct uffd *u;

		cfg.method = m[i];
		u = uffd_open(&cfg, &err);
		if (!u && m[i] == UFFD_OPEN_DEV &&
		    access("/dev/userfaultfd", 0))
			continue;
		assert_null(err);
		assert_non_null(u);
		uffd_free(u);
	}
	cfg.on_fault = NULL;
	struct mig_error *err = NULL;
	assert_null(uffd_open(&cfg, &err));
	assert_string_equal(err->desc, "userfaultfd: invalid configuration");
	mig_error_free(err);
}

static void test_fault_then_copy(void **state)
{
	struct fixture *fx = fixture_new(true, 1);
	struct mig_error *err = NULL;
	uint8_t page[PS];
	struct reader r;

	reader_start(&r, fx->mem + 3 * PS + 100);
	assert_true(wait_faults(&fx->f, 1));
	assert_int_equal(fx->f.range[0], 0);
	assert_int_equal(fx->f.offset[0], 3 * PS);
	if (uffd_has_blocktime(fx->u))
		assert_int_equal(fx->f.tid[0], atomic_load(&r.tid));
	usleep(20000);
	assert_false(atomic_load(&r.done)); /* still blocked */
	memset(page, 0x5a, sizeof(page));
	page[100] = 0xa7;
	assert_int_equal(uffd_place_page(fx->u, 0, 3 * PS, page, &err), 0);
	assert_null(err);
	assert_true(reader_join(&r));
	assert_int_equal(r.value, 0xa7);
	assert_int_equal(fx->mem[3 * PS], 0x5a);
	assert_true(uffd_is_received(fx->u, 0, 3 * PS + 5));
	assert_false(uffd_is_received(fx->u, 0, 4 * PS));
	assert_int_equal(uffd_received_pages(fx->u, 0), 1);
	assert_int_equal(uffd_fault_thread_error(fx->u), 0);
	fixture_free(fx);
}

static void test_zeropage(void **state)
{
	struct fixture *fx = fixture_new(false, 0);
	struct mig_error *err = NULL;
	struct reader r;

	reader_start(&r, fx->mem + 5 * PS + 7);
	assert_true(wait_faults(&fx->f, 1));
	assert_int_equal(fx->f.offset[0], 5 * PS);
	assert_int_equal(fx->f.tid[0], 0); /* no THREAD_ID asked */
	assert_int_equal(uffd_place_zero(fx->u, 0, 5 * PS, &err), 0);
	assert_true(reader_join(&r));
	assert_int_equal(r.value, 0);
	/* placed once: a later copy does not overwrite it */
	uint8_t page[PS];
	memset(page, 0xff, sizeof(page));
	assert_int_equal(uffd_place_page(fx->u, 0, 5 * PS, page, &err), 1);
	assert_int_equal(fx->mem[5 * PS], 0);
	fixture_free(fx);
}

static void test_place_before_fault_and_eexist(void **state)
{
	struct faults f = {0};
	struct uffd_config cfg = {.on_fault = on_fault, .opaque = &f};
	struct mig_error *err = NULL;
	uint8_t *mem = map_pages();
	uint8_t page[PS];
	struct uffd *u;

	pthread_mutex_init(&f.lock, NULL);
	pthread_cond_init(&f.cond, NULL);
	mem[4 * PS] = 0x11; /* populated before registration */
	u = uffd_open(&cfg, &err);
	assert_non_null(u);
	assert_int_equal(uffd_register(u, mem, NPAGES * PS, PS, &err), 0);
	memset(page, 0x22, sizeof(page));
	/* EEXIST from the kernel counts as placed; content stays */
	assert_int_equal(uffd_place_page(u, 0, 4 * PS, page, &err), 1);
	assert_null(err);
	assert_int_equal(mem[4 * PS], 0x11);
	assert_true(uffd_is_received(u, 0, 4 * PS));
	/* placed before anyone faults: no fault, the data is there */
	assert_int_equal(uffd_place_page(u, 0, 2 * PS, page, &err), 0);
	assert_int_equal(uffd_place_page(u, 0, 2 * PS, page, &err), 1);
	assert_int_equal(mem[2 * PS + 9], 0x22);
	assert_int_equal(f.n, 0);
	assert_int_equal(uffd_received_pages(u, 0), 2);
	uffd_free(u);
	munmap(mem, NPAGES * PS);
}

static void test_blocktime_one_vcpu(void **state)
{
	struct fixture *fx = fixture_new(true, 1);
	struct mig_error *err = NULL;
	uint32_t vcpu[2] = {0, 0};
	struct reader r;

	if (!uffd_has_blocktime(fx->u)) {
		fixture_free(fx);
		skip();
	}
	reader_start_held(&r, fx->mem + 7 * PS, false);
	assert_int_equal(uffd_blocktime_set_vcpu(fx->u, 0, atomic_load(&r.tid)),
			 0);
	assert_int_equal(uffd_blocktime_set_vcpu(fx->u, 1, 1), -EINVAL);
	reader_go(&r);
	assert_true(wait_faults(&fx->f, 1));
	usleep(50000);
	assert_int_equal(uffd_place_zero(fx->u, 0, 7 * PS, &err), 0);
	assert_true(reader_join(&r));
	int64_t total = uffd_blocktime_read(fx->u, vcpu, 2);
	assert_true(vcpu[0] >= 45 && vcpu[0] < 5000);
	/* the only vCPU was blocked: all vCPUs were down */
	assert_true(total >= 45 && total <= vcpu[0]);
	assert_int_equal(vcpu[1], 0);
	fixture_free(fx);
}

/* Two vCPUs: the total only counts the time both were blocked. */
static void test_blocktime_two_vcpus(void **state)
{
	struct fixture *fx = fixture_new(true, 2);
	struct mig_error *err = NULL;
	uint32_t vcpu[2];
	struct reader a, b;

	if (!uffd_has_blocktime(fx->u)) {
		fixture_free(fx);
		skip();
	}
	reader_start_held(&a, fx->mem + 8 * PS, false);
	reader_start_held(&b, fx->mem + 9 * PS, false);
	uffd_blocktime_set_vcpu(fx->u, 0, atomic_load(&a.tid));
	uffd_blocktime_set_vcpu(fx->u, 1, atomic_load(&b.tid));
	reader_go(&a);
	assert_true(wait_faults(&fx->f, 1));
	usleep(30000); /* only vCPU 0 blocked: no total */
	reader_go(&b);
	assert_true(wait_faults(&fx->f, 2));
	usleep(40000); /* both blocked: total grows */
	uint8_t page[PS] = {1};
	assert_int_equal(uffd_place_page(fx->u, 0, 8 * PS, page, &err), 0);
	usleep(20000); /* vCPU 1 alone again: no total */
	assert_int_equal(uffd_place_page(fx->u, 0, 9 * PS, page, &err), 0);
	assert_true(reader_join(&a));
	assert_true(reader_join(&b));
	int64_t total = uffd_blocktime_read(fx->u, vcpu, 2);
	assert_true(vcpu[0] >= 65);
	assert_true(vcpu[1] >= 55);
	assert_true(total >= 35 && total < vcpu[1] - 10);
	/* QMP's shape: total only while every vCPU was blocked */
	assert_true(total < vcpu[0] - 20);
	fixture_free(fx);
}

static void test_stop_with_blocked_fault(void **state)
{
	struct fixture *fx = fixture_new(false, 0);
	struct mig_error *err = NULL;
	uint8_t page[PS];
	struct reader r;

	reader_start(&r, fx->mem + 11 * PS);
	assert_true(wait_faults(&fx->f, 1));
	uffd_stop(fx->u); /* joins although a fault is pending */
	uffd_stop(fx->u);
	assert_false(atomic_load(&r.done));
	memset(page, 0x33, sizeof(page));
	assert_int_equal(uffd_place_page(fx->u, 0, 11 * PS, page, &err), 0);
	assert_true(reader_join(&r));
	assert_int_equal(r.value, 0x33);
	/* restart and fault again */
	assert_int_equal(uffd_start(fx->u, &err), 0);
	reader_start(&r, fx->mem + 12 * PS);
	assert_true(wait_faults(&fx->f, 2));
	assert_int_equal(fx->f.offset[1], 12 * PS);
	assert_int_equal(uffd_place_zero(fx->u, 0, 12 * PS, &err), 0);
	assert_true(reader_join(&r));
	fixture_free(fx);
}

static void collect(void *opaque, uint64_t offset)
{
	uint64_t *v = opaque;

	v[1 + v[0]++] = offset;
}

static void test_pending_and_le_bitmap(void **state)
{
	struct fixture *fx = fixture_new(false, 0);
	struct mig_error *err = NULL;
	uint64_t got[8] = {0};
	uint8_t bits[16];
	struct reader a, b;

	reader_start(&a, fx->mem + 1 * PS);
	assert_true(wait_faults(&fx->f, 1));
	reader_start(&b, fx->mem + 6 * PS);
	assert_true(wait_faults(&fx->f, 2));
	assert_int_equal(uffd_place_zero(fx->u, 0, 6 * PS, &err), 0);
	assert_int_equal(uffd_place_zero(fx->u, 0, 15 * PS, &err), 0);
	assert_int_equal(uffd_foreach_pending(fx->u, 0, collect, got), 1);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 1 * PS);
	/* 4 KiB target pages: one bit per page, LSB first */
	assert_int_equal(uffd_received_to_le(fx->u, 0, PS, bits, 16), 0);
	assert_int_equal(bits[0], 0x40);
	assert_int_equal(bits[1], 0x80);
	assert_int_equal(bits[2], 0);
	/* 1 KiB targets: four bits per page */
	assert_int_equal(uffd_received_to_le(fx->u, 0, 1024, bits, 8), 0);
	assert_int_equal(bits[3], 0x0f);
	assert_int_equal(bits[7], 0xf0);
	assert_int_equal(uffd_received_to_le(fx->u, 0, 1024, bits, 7),
			 -ENOBUFS);
	assert_int_equal(uffd_received_to_le(fx->u, 0, 3000, bits, 16),
			 -EINVAL);
	assert_int_equal(uffd_received_to_le(fx->u, 4, PS, bits, 16), -ENOENT);
	assert_int_equal(uffd_place_zero(fx->u, 0, 1 * PS, &err), 0);
	assert_true(reader_join(&a));
	assert_true(reader_join(&b));
	assert_int_equal(uffd_foreach_pending(fx->u, 0, collect, got), 0);
	fixture_free(fx);
}

static void expect_err(struct mig_error **err, const char *prefix)
{
	assert_non_null(*err);
	assert_memory_equal((*err)->desc, prefix, strlen(prefix));
	mig_error_free(*err);
	*err = NULL;
}

static void test_registration_errors(void **state)
{
	struct fixture *fx = fixture_new(false, 0);
	struct mig_error *err = NULL;
	uint8_t *other = map_pages();
	uint8_t page[PS] = {0};

	assert_int_equal(uffd_register(fx->u, other + 1, PS, PS, &err),
			 -EINVAL);
	expect_err(&err, "userfaultfd: range ");
	assert_int_equal(uffd_register(fx->u, other, PS + 1, PS, &err),
			 -EINVAL);
	expect_err(&err, "userfaultfd: range ");
	assert_int_equal(uffd_register(fx->u, other, 3 * PS, 3 * PS, &err),
			 -EINVAL);
	expect_err(&err, "userfaultfd: invalid page size 0x3000");
	assert_int_equal(uffd_register(fx->u, other, PS, 512, &err), -EINVAL);
	expect_err(&err, "userfaultfd: invalid page size 0x200");
	assert_int_equal(uffd_register(fx->u, fx->mem + PS, PS, PS, &err),
			 -EEXIST);
	expect_err(&err, "userfaultfd: range ");

	assert_int_equal(uffd_place_page(fx->u, 0, NPAGES * PS, page, &err),
			 -EINVAL);
	expect_err(&err, "postcopy: refusing to place page at 0x10000 of "
			 "range 0: outside or unaligned");
	assert_int_equal(uffd_place_page(fx->u, 0, PS + 8, page, &err),
			 -EINVAL);
	expect_err(&err, "postcopy: refusing");
	assert_int_equal(uffd_place_page(fx->u, 0, UINT64_MAX & ~(PS - 1ull),
					 page, &err),
			 -EINVAL);
	expect_err(&err, "postcopy: refusing");
	assert_int_equal(uffd_place_zero(fx->u, 9, 0, &err), -ENOENT);
	expect_err(&err, "postcopy: refusing to place page at 0x0 of range "
			 "9: no such range");
	assert_int_equal(uffd_place_page(fx->u, 0, 0, NULL, &err), -EINVAL);
	expect_err(&err, "postcopy: no page to place");
	assert_int_equal(uffd_wake(fx->u, 0, 0, 3 * PS + 1), -EINVAL);
	assert_int_equal(uffd_wake(fx->u, 0, 0, PS), 0);
	assert_int_equal(uffd_unregister(fx->u, 7, NULL), -ENOENT);
	assert_int_equal(uffd_unregister(fx->u, 0, &err), 0);
	assert_int_equal(uffd_unregister(fx->u, 0, &err), -ENOENT);
	assert_int_equal(uffd_place_zero(fx->u, 0, 0, &err), -ENOENT);
	expect_err(&err, "postcopy: refusing");
	/* a fresh range gets a fresh id */
	assert_int_equal(uffd_register(fx->u, other, NPAGES * PS, PS, &err), 1);
	assert_null(err);
	munmap(other, NPAGES * PS);
	fixture_free(fx);
}

/* Unregistering wakes a blocked reader into an ordinary zero-fill fault:
 * why uffd.h says to unregister only once every page is in. */
static void test_unregister_wakes_blocked(void **state)
{
	struct fixture *fx = fixture_new(false, 0);
	struct reader r;

	reader_start(&r, fx->mem + 14 * PS);
	assert_true(wait_faults(&fx->f, 1));
	assert_int_equal(uffd_unregister(fx->u, 0, NULL), 0);
	assert_true(reader_join(&r));
	assert_int_equal(r.value, 0);
	fixture_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_methods),
		cmocka_unit_test(test_fault_then_copy),
		cmocka_unit_test(test_zeropage),
		cmocka_unit_test(test_place_before_fault_and_eexist),
		cmocka_unit_test(test_blocktime_one_vcpu),
		cmocka_unit_test(test_blocktime_two_vcpus),
		cmocka_unit_test(test_stop_with_blocked_fault),
		cmocka_unit_test(test_pending_and_le_bitmap),
		cmocka_unit_test(test_registration_errors),
		cmocka_unit_test(test_unregister_wakes_blocked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
