/* probe.h — the page-request latency probe (workload content=probe): a
 * log-linear latency histogram with percentiles, the statistics one probe
 * vCPU records (shared with the control thread under a lock), and the two
 * primitives the probe needs: "is this page missing?" (mincore) and "how
 * long did the first access take?". Histogram functions are plain data;
 * probe_stats_* may be called from any thread. */
#ifndef MIGD_GUEST_PROBE_H
#define MIGD_GUEST_PROBE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* 32 sub-buckets per power of two (<= 3.2 % relative error); values
 * below 32 ns have a bucket each. Covers all of uint64_t. */
#define PROBE_HIST_SUB_BITS 5
#define PROBE_HIST_SUB (1u << PROBE_HIST_SUB_BITS)
#define PROBE_HIST_BUCKETS ((64 - PROBE_HIST_SUB_BITS + 1) * PROBE_HIST_SUB)
/* Random pages tried per touch before giving up on finding one missing. */
#define PROBE_TRIES 256

struct probe_hist {
	uint64_t count, sum_ns, min_ns, max_ns;
	uint64_t buckets[PROBE_HIST_BUCKETS];
};

void probe_hist_reset(struct probe_hist *h);
void probe_hist_add(struct probe_hist *h, uint64_t ns);
/* Bucket index of a value, and the bucket's first value and width. */
unsigned probe_hist_bucket(uint64_t ns);
uint64_t probe_hist_bucket_low(unsigned bucket);
uint64_t probe_hist_bucket_width(unsigned bucket);
/* The value at percentile pct (0 < pct <= 100): the middle of the bucket
 * holding the sample of rank ceil(pct/100 * count), clamped to
 * [min_ns, max_ns]; the first and last ranks are exact. 0 when the
 * histogram is empty or pct is out of range. */
uint64_t probe_hist_percentile(const struct probe_hist *h, double pct);

/* What the probe recorded since its workload was set. */
struct probe_stats {
	pthread_mutex_t lock;
	struct probe_hist hist; /* first-access latencies of missing pages */
	uint64_t resident;	/* random picks found already present */
	uint64_t not_found;	/* touches that found no missing page in
				 * PROBE_TRIES picks */
};

void probe_stats_init(struct probe_stats *s);
void probe_stats_destroy(struct probe_stats *s);
void probe_stats_reset(struct probe_stats *s);
void probe_stats_record(struct probe_stats *s, uint64_t ns);
void probe_stats_count(struct probe_stats *s, uint64_t resident,
		       bool not_found);
/* A consistent copy (hist included) for a reader. */
void probe_stats_snapshot(struct probe_stats *s, struct probe_stats *out);

/* True when the 4 KiB page at addr (page aligned) is not mapped: its
 * first access will fault (on a postcopy destination: block until the
 * page has been requested and placed). False when present or unknown. */
bool probe_page_missing(const void *addr);
/* Reads one byte at addr and returns how long that took, ns. */
uint64_t probe_first_access_ns(const void *addr);

#endif
