/* ram_touch.c — first-touch policy for fresh anonymous destination RAM
 * (see ram_touch.h). The decision for one region is taken by the first
 * thread that wants to write into it; others sleep until it is decided
 * (two multifd channels usually write into the same region at the same
 * time; spinning there burnt the CPU the sender needed). The policy itself: probe
 * with a huge page; while huge-page populates are fast, keep using them;
 * after a slow one, use 4 KiB pages for a number of regions that grows 4x
 * with every further slow probe and halves with every fast one, so cold
 * memory (a huge page's first touch there costs ~8 ms against ~0.2 ms when
 * warm, docs/benchmarks.md) costs at most one slow probe per
 * RAM_TOUCH_BACKOFF_MAX regions, and memory that is cold more than about a
 * third of the time is left to 4 KiB pages. */
#include "guest/ram_touch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define THP_SYSFS "/sys/kernel/mm/transparent_hugepage/"

enum { RT_UNDECIDED, RT_BUSY, RT_HUGE, RT_SMALL };

struct ram_touch {
	uint8_t *host;
	uint64_t len;
	size_t hpage;
	bool always;
	uint64_t nregions;
	_Atomic uint8_t *state; /* one per region */
	struct ram_touch_ops ops;
	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t decided; /* a region left RT_BUSY */
	bool disabled;
	unsigned small_left; /* 4 KiB regions before the next probe */
	unsigned backoff;    /* small_left after the next slow probe */
	struct ram_touch_stats stats;
};

/* ---- system ------------------------------------------------------------- */

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	bool ok = f && fgets(buf, (int)len, f);

	if (f)
		fclose(f);
	return ok;
}

struct ram_touch_sys ram_touch_probe_sys(void)
{
	struct ram_touch_sys sys = {0};
	char buf[128];
	unsigned long long size;

	/* "always [madvise] never": the bracketed word is the mode */
	if (!read_line(THP_SYSFS "enabled", buf, sizeof(buf)) ||
	    strstr(buf, "[never]"))
		return sys;
	sys.always = strstr(buf, "[always]") != NULL;
	if (read_line(THP_SYSFS "hpage_pmd_size", buf, sizeof(buf)) &&
	    sscanf(buf, "%llu", &size) == 1 && size >= 4096 &&
	    (size & (size - 1)) == 0 && size <= (1ull << 30))
		sys.hpage_size = (size_t)size;
	return sys;
}

static void real_advise(void *opaque, uint8_t *addr, size_t len, int advice)
{
	(void)opaque;
	/* a hint: a kernel that refuses it only loses speed */
	(void)madvise(addr, len, advice);
}

/* The calling thread's CPU time: what a populate costs, without the time
 * the thread waited for a CPU on a busy machine. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* UINT64_MAX when the kernel cannot populate (before Linux 5.14, or out of
 * memory): the caller then stops probing. */
static uint64_t real_populate(void *opaque, uint8_t *addr, size_t len)
{
	uint64_t t0 = now_ns();
	int ret;

	(void)opaque;
	do {
		ret = madvise(addr, len, MADV_POPULATE_WRITE);
	} while (ret && errno == EINTR);
	return ret ? UINT64_MAX : now_ns() - t0;
}

static const struct ram_touch_ops real_ops = {
	.advise = real_advise,
	.populate = real_populate,
};

/* ---- life cycle ---------------------------------------------------------- */

struct ram_touch *ram_touch_new_ops(uint8_t *host, uint64_t len,
				    struct ram_touch_sys sys,
				    const struct ram_touch_ops *ops)
{
	struct ram_touch *t;

	if (!sys.hpage_size || !host || !len ||
	    (uintptr_t)host % sys.hpage_size)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->host = host;
	t->len = len;
	t->hpage = sys.hpage_size;
	t->always = sys.always;
	t->nregions = (len + sys.hpage_size - 1) / sys.hpage_size;
	t->state = calloc(t->nregions, sizeof(*t->state));
	if (!t->state) {
		free(t);
		return NULL;
	}
	t->ops = *ops;
	t->backoff = 1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->decided, NULL);
	return t;
}

struct ram_touch *ram_touch_new(uint8_t *host, uint64_t len,
				struct ram_touch_sys sys)
{
	return ram_touch_new_ops(host, len, sys, &real_ops);
}

void ram_touch_free(struct ram_touch *t)
{
	if (!t)
		return;
	pthread_cond_destroy(&t->decided);
	pthread_mutex_destroy(&t->lock);
	free(t->state);
	free(t);
}

/* ---- policy -------------------------------------------------------------- */

/* Whether region r gets a huge page: a whole region, the policy enabled
 * and not backing off. Takes one 4 KiB credit otherwise. */
static bool want_huge(struct ram_touch *t, uint64_t r)
{
	bool whole = (r + 1) * t->hpage <= t->len, huge;

	pthread_mutex_lock(&t->lock);
	huge = whole && !t->disabled && !t->small_left;
	if (!huge && t->small_left)
		t->small_left--;
	if (!huge)
		t->stats.small_regions++;
	pthread_mutex_unlock(&t->lock);
	return huge;
}

static void account_probe(struct ram_touch *t, uint64_t ns)
{
	/* the threshold scales with the huge page's size */
	uint64_t slow = RAM_TOUCH_SLOW_NS_PER_2M * (t->hpage >> 12) / 512;

	pthread_mutex_lock(&t->lock);
	t->stats.huge_regions++;
	if (ns == UINT64_MAX) {
		t->disabled = true;
	} else if (ns > slow) {
		t->stats.slow_probes++;
		t->small_left = t->backoff;
		t->backoff = t->backoff * 4 < RAM_TOUCH_BACKOFF_MAX
				     ? t->backoff * 4
				     : RAM_TOUCH_BACKOFF_MAX;
	} else if (t->backoff > 1) {
		/* warm and cold blocks come interleaved: one fast probe
		 * does not undo a slow one */
		t->backoff /= 2;
	}
	pthread_mutex_unlock(&t->lock);
}

static uint8_t decide(struct ram_touch *t, uint64_t r)
{
	uint8_t *addr = t->host + r * t->hpage;
	size_t len = (size_t)(t->len - r * t->hpage < t->hpage
				      ? t->len - r * t->hpage
				      : t->hpage);

	if (!want_huge(t, r)) {
		if (t->always)
			t->ops.advise(t->ops.opaque, addr, len,
				      MADV_NOHUGEPAGE);
		return RT_SMALL;
	}
	t->ops.advise(t->ops.opaque, addr, len, MADV_HUGEPAGE);
	account_probe(t, t->ops.populate(t->ops.opaque, addr, len));
	return RT_HUGE;
}

static void prepare_region(struct ram_touch *t, uint64_t r)
{
	uint8_t s = atomic_load_explicit(&t->state[r], memory_order_acquire);

	if (s >= RT_HUGE)
		return;
	s = RT_UNDECIDED;
	if (atomic_compare_exchange_strong_explicit(
		    &t->state[r], &s, RT_BUSY, memory_order_acquire,
		    memory_order_acquire)) {
		s = decide(t, r);
		pthread_mutex_lock(&t->lock);
		atomic_store_explicit(&t->state[r], s, memory_order_release);
		pthread_cond_broadcast(&t->decided);
		pthread_mutex_unlock(&t->lock);
		return;
	}
	pthread_mutex_lock(&t->lock);
	while (atomic_load_explicit(&t->state[r], memory_order_acquire) ==
	       RT_BUSY)
		pthread_cond_wait(&t->decided, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

void ram_touch_prepare(struct ram_touch *t, uint64_t offset, uint64_t len)
{
	uint64_t end;

	if (!t || !len || offset >= t->len)
		return;
	end = len > t->len - offset ? t->len : offset + len;
	for (uint64_t r = offset / t->hpage; r * t->hpage < end; r++)
		prepare_region(t, r);
}

void ram_touch_disable(struct ram_touch *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->disabled = true;
	pthread_mutex_unlock(&t->lock);
	for (uint64_t r = 0; r < t->nregions; r++) {
		uint8_t s = RT_UNDECIDED;

		atomic_compare_exchange_strong(&t->state[r], &s, RT_SMALL);
	}
	t->ops.advise(t->ops.opaque, t->host, (size_t)t->len, MADV_NOHUGEPAGE);
}

struct ram_touch_stats ram_touch_stats(struct ram_touch *t)
{
	struct ram_touch_stats st = {0};

	if (!t)
		return st;
	pthread_mutex_lock(&t->lock);
	st = t->stats;
	pthread_mutex_unlock(&t->lock);
	return st;
}
