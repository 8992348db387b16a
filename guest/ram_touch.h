/* ram_touch.h — first-touch policy for a destination's fresh anonymous RAM
 * (x-thp=auto): before a loader writes pages into a 2 MiB region that was
 * never touched, the region is given a transparent huge page when huge-page
 * faults are cheap and left to 4 KiB faults when they are not. Any thread
 * may call ram_touch_prepare(); the policy takes a lock only once per
 * region. docs/architecture.md "First touch of destination RAM". */
#ifndef MIGD_GUEST_RAM_TOUCH_H
#define MIGD_GUEST_RAM_TOUCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ram_touch;

/* What the system offers, read once from sysfs by ram_touch_probe_sys(). */
struct ram_touch_sys {
	size_t hpage_size; /* PMD huge page size; 0: THP not available */
	bool always;	   /* THP "always": 4 KiB regions need NOHUGEPAGE */
};

/* Counters, for tests and the benchmark notes. */
struct ram_touch_stats {
	uint64_t huge_regions;	/* populated with a huge page */
	uint64_t small_regions; /* left to 4 KiB faults */
	uint64_t slow_probes;	/* huge-page populates above the threshold */
};

/* Reads /sys/kernel/mm/transparent_hugepage/{enabled,hpage_pmd_size}. */
struct ram_touch_sys ram_touch_probe_sys(void);

/* A policy for [host, host+len); host must be aligned to sys.hpage_size.
 * NULL when THP is unavailable (sys.hpage_size 0) or on allocation failure:
 * callers treat NULL as "plain 4 KiB faults". */
struct ram_touch *ram_touch_new(uint8_t *host, uint64_t len,
				struct ram_touch_sys sys);
void ram_touch_free(struct ram_touch *t);

/* The system calls behind the policy, replaceable for unit tests:
 * advise(addr, len, MADV_*) and populate(addr, len), which returns how long
 * it took in nanoseconds. */
struct ram_touch_ops {
	void (*advise)(void *opaque, uint8_t *addr, size_t len, int advice);
	uint64_t (*populate)(void *opaque, uint8_t *addr, size_t len);
	void *opaque;
};
struct ram_touch *ram_touch_new_ops(uint8_t *host, uint64_t len,
				    struct ram_touch_sys sys,
				    const struct ram_touch_ops *ops);

/* Called before [offset, offset+len) of the block is written for the first
 * time by a loader; decides every region it overlaps that is undecided.
 * Never changes the content of RAM. t may be NULL. */
void ram_touch_prepare(struct ram_touch *t, uint64_t offset, uint64_t len);

/* Every undecided region becomes 4 KiB from now on (postcopy's RAM must not
 * get huge pages: uffd places 4 KiB pages). t may be NULL. */
void ram_touch_disable(struct ram_touch *t);

struct ram_touch_stats ram_touch_stats(struct ram_touch *t);

/* The policy's threshold, exposed for tests: a huge-page populate slower
 * than this many nanoseconds per 2 MiB counts as slow. */
#define RAM_TOUCH_SLOW_NS_PER_2M 700000ull
/* After a slow probe, a number of regions (x4 per slow probe, /2 per fast
 * one, at most this) use 4 KiB pages before the next probe. */
#define RAM_TOUCH_BACKOFF_MAX 256u

#endif
