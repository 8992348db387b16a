/* workload.h — what the guest's vCPUs write: the workload description
 * (dirty rate, working set, access pattern, page content, write size),
 * its parsing from "-workload key=value,..." and its validation (QMP's
 * x-guest-workload fills the same struct in control/guest_cmds.c), and the
 * per-vCPU generator that performs one write and logs it dirty.
 * Threads: config functions on the control thread; a workload_gen belongs
 * to one vCPU thread; a workload_map is immutable and shared. */
#ifndef MIGD_GUEST_WORKLOAD_H
#define MIGD_GUEST_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct guest;
struct probe_stats;
struct ram_block;

/* MB in rates is MiB, as QEMU counts its dirty rates. */
#define WORKLOAD_MB (1024.0 * 1024.0)
#define WORKLOAD_RATE_MAX_MB 1000000.0 /* ~1 TB/s: "no limit" in practice */
#define WORKLOAD_PAGE_SIZE 4096u

enum workload_pattern {
	WORKLOAD_SEQUENTIAL,
	WORKLOAD_RANDOM,
	WORKLOAD_HOTCOLD,
	WORKLOAD_PATTERN__MAX,
};

enum workload_content {
	WORKLOAD_CONTENT_RANDOM,
	WORKLOAD_CONTENT_TEXT,
	WORKLOAD_CONTENT_ZERO,
	WORKLOAD_CONTENT_MIXED,
	WORKLOAD_CONTENT_READ,	/* reads the bytes, writes nothing: page
				 * faults without changing RAM (postcopy) */
	WORKLOAD_CONTENT_PROBE, /* vCPU 0 reads one byte of a random missing
				 * page at a time and records how long that
				 * first access took (guest/probe.h); the
				 * other vCPUs idle; writes nothing */
	WORKLOAD_CONTENT__MAX,
};

/* The keys, on the command line and in QMP alike. */
enum workload_key {
	WORKLOAD_KEY_DIRTY_RATE,
	WORKLOAD_KEY_PER_VCPU_RATE,
	WORKLOAD_KEY_WORKING_SET,
	WORKLOAD_KEY_PATTERN,
	WORKLOAD_KEY_HOT_FRACTION,
	WORKLOAD_KEY_HOT_RATIO,
	WORKLOAD_KEY_CONTENT,
	WORKLOAD_KEY_ZERO_FRACTION,
	WORKLOAD_KEY_TEXT_FRACTION,
	WORKLOAD_KEY_WRITE_SIZE,
	WORKLOAD_KEY_SEED,
	WORKLOAD_KEY_PASSES,
	WORKLOAD_KEY__MAX,
};

/* NULL-terminated name tables, indexed by the enums above. */
extern const char *const workload_pattern_names[];
extern const char *const workload_content_names[];
extern const char *const workload_key_names[];

struct workload_config {
	bool idle;	      /* no writes at all (the default workload) */
	double rate_mb;	      /* MiB/s; 0 = as fast as the vCPU can */
	bool rate_per_vcpu;   /* rate_mb is per vCPU, not the total */
	uint64_t working_set; /* bytes from the start of RAM; 0 = all */
	enum workload_pattern pattern;
	double hot_fraction; /* hotcold: share of the working set that is hot */
	double hot_ratio;    /* hotcold: share of writes that go to it */
	enum workload_content content;
	double zero_fraction, text_fraction; /* mixed; the rest is random */
	uint64_t write_size; /* bytes per touch of a page, 1..4096 */
	uint64_t seed;	     /* PRNG seed; vCPU i uses a mix of seed and i */
	uint64_t passes;     /* stop after this many passes, 0 = never: a
			      * pass is one touch per page of the vCPU's
			      * share (sequential + 4 KiB writes: every
			      * page exactly once) */
	unsigned given;	     /* bit (1u << key) per key the user gave */
};

/* The idle default. */
void workload_config_init(struct workload_config *w);
/* A running workload with every default (unthrottled sequential writes
 * of random pages over all RAM, a random seed): what the first key given
 * starts from. */
void workload_config_active(struct workload_config *w);

/* Parses "-workload" text (implied key dirty-rate: "-workload 100",
 * "-workload idle"), then workload_validate(). QEMU keyval messages. */
int workload_parse(struct workload_config *w, const char *text,
		   struct mig_error **errp);
/* Checks one configuration on its own: exclusive and dependent keys and
 * value ranges. 0 or -EINVAL with *errp set. */
int workload_validate(const struct workload_config *w, struct mig_error **errp);
/* Checks it against a guest of ram_size bytes (the working set must fit). */
int workload_fit(const struct workload_config *w, uint64_t ram_size,
		 struct mig_error **errp);
/* Bytes per second for one of nvcpus vCPUs; 0 = unthrottled. */
double workload_vcpu_rate(const struct workload_config *w, unsigned nvcpus);

/* ---- the generator -------------------------------------------------- */

/* The guest's RAM as one run of 4 KiB pages, blocks in guest order. */
struct workload_map;
struct workload_map *workload_map_new(const struct guest *g);
void workload_map_free(struct workload_map *m);
uint64_t workload_map_pages(const struct workload_map *m);

struct workload_gen;
struct workload_gen *workload_gen_new(const struct workload_map *map);
void workload_gen_free(struct workload_gen *gen);
/* Points the generator at w as vCPU cpu of ncpus: its share of the working
 * set, its PRNG stream (w must have passed workload_fit()). */
void workload_gen_reset(struct workload_gen *gen,
			const struct workload_config *w, unsigned cpu,
			unsigned ncpus);
/* Writes one piece of one page with ordinary stores, then logs it dirty.
 * Returns the bytes written (0 for an idle or finished workload). */
uint32_t workload_gen_touch(struct workload_gen *gen);
/* content=probe: where this generator records (NULL: nowhere). */
void workload_gen_set_probe(struct workload_gen *gen, struct probe_stats *ps);
/* True once a workload with passes has made them all. */
bool workload_gen_is_finished(const struct workload_gen *gen);

/* xoshiro256** (fast, seedable): exposed for tests. */
struct workload_prng {
	uint64_t s[4];
};
void workload_prng_seed(struct workload_prng *p, uint64_t seed);
uint64_t workload_prng_next(struct workload_prng *p);

#endif
