/* probe.c — the page-request latency probe's histogram, statistics and
 * primitives (see probe.h). The histogram is plain data; probe_stats_*
 * take the stats' lock, so the probe vCPU and the control thread may call
 * them at the same time. */
#include "guest/probe.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* ---- histogram ---------------------------------------------------------- */

void probe_hist_reset(struct probe_hist *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned probe_hist_bucket(uint64_t ns)
{
	unsigned e;

	if (ns < PROBE_HIST_SUB)
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns); /* >= SUB_BITS */
	return (e - PROBE_HIST_SUB_BITS + 1) * PROBE_HIST_SUB +
	       (unsigned)((ns >> (e - PROBE_HIST_SUB_BITS)) &
			  (PROBE_HIST_SUB - 1));
}

uint64_t probe_hist_bucket_low(unsigned bucket)
{
	unsigned e, sub;

	if (bucket < PROBE_HIST_SUB)
		return bucket;
	if (bucket >= PROBE_HIST_BUCKETS)
		return UINT64_MAX;
	e = bucket / PROBE_HIST_SUB + PROBE_HIST_SUB_BITS - 1;
	sub = bucket % PROBE_HIST_SUB;
	return (uint64_t)(PROBE_HIST_SUB + sub) << (e - PROBE_HIST_SUB_BITS);
}

uint64_t probe_hist_bucket_width(unsigned bucket)
{
	if (bucket < PROBE_HIST_SUB)
		return 1;
	if (bucket >= PROBE_HIST_BUCKETS)
		return 0;
	return 1ull << (bucket / PROBE_HIST_SUB - 1);
}

void probe_hist_add(struct probe_hist *h, uint64_t ns)
{
	if (!h->count || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->count++;
	h->sum_ns = h->sum_ns + ns < h->sum_ns ? UINT64_MAX : h->sum_ns + ns;
	h->buckets[probe_hist_bucket(ns)]++;
}

uint64_t probe_hist_percentile(const struct probe_hist *h, double pct)
{
	uint64_t rank, seen = 0, v;
	double r;

	if (!h->count || !(pct > 0 && pct <= 100))
		return 0;
	r = pct / 100.0 * (double)h->count;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank >= h->count)
		return h->max_ns; /* exact at the ends */
	if (rank <= 1)
		return h->min_ns;
	for (unsigned b = 0; b < PROBE_HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen < rank)
			continue;
		v = probe_hist_bucket_low(b) + probe_hist_bucket_width(b) / 2;
		v = v < h->min_ns ? h->min_ns : v;
		return v > h->max_ns ? h->max_ns : v;
	}
	return h->max_ns;
}

/* ---- statistics --------------------------------------------------------- */

void probe_stats_init(struct probe_stats *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

void probe_stats_destroy(struct probe_stats *s)
{
	pthread_mutex_destroy(&s->lock);
}

void probe_stats_reset(struct probe_stats *s)
{
	pthread_mutex_lock(&s->lock);
	probe_hist_reset(&s->hist);
	s->resident = 0;
	s->not_found = 0;
	pthread_mutex_unlock(&s->lock);
}

void probe_stats_record(struct probe_stats *s, uint64_t ns)
{
	pthread_mutex_lock(&s->lock);
	probe_hist_add(&s->hist, ns);
	pthread_mutex_unlock(&s->lock);
}

void probe_stats_count(struct probe_stats *s, uint64_t resident, bool not_found)
{
	pthread_mutex_lock(&s->lock);
	s->resident += resident;
	s->not_found += not_found;
	pthread_mutex_unlock(&s->lock);
}

void probe_stats_snapshot(struct probe_stats *s, struct probe_stats *out)
{
	pthread_mutex_lock(&s->lock);
	out->hist = s->hist;
	out->resident = s->resident;
	out->not_found = s->not_found;
	pthread_mutex_unlock(&s->lock);
}

/* ---- primitives --------------------------------------------------------- */

bool probe_page_missing(const void *addr)
{
	unsigned char vec = 1;

	/* mincore never faults: a registered missing page stays missing. */
	if (mincore((void *)addr, 4096, &vec) < 0)
		return false;
	return !(vec & 1);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t probe_first_access_ns(const void *addr)
{
	uint64_t t0 = mono_ns(), t1;
	uint8_t v = *(const volatile uint8_t *)addr;

	__asm__ volatile("" : : "r"(v) : "memory");
	t1 = mono_ns();
	return t1 - t0;
}
