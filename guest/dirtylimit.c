/* dirtylimit.c — the dirty page rate limit service (see dirtylimit.h).
 * Lock: dl->lock protects the per-vCPU state, the period and quit; the
 * service thread holds it except while it waits. Penalties reach the
 * vCPUs through their rings' atomics. */
#include "guest/dirtylimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest/throttle.h"
#include "guest/vcpu.h"

struct dl_vcpu {
	bool enabled;
	uint64_t quota_mb;
	uint64_t current_mb;
	/* where the current window starts: pages and clock, ring fills and
	 * the clock of the last one */
	uint64_t last_pages, last_ns, last_fulls, last_full_ns;
};

struct dirtylimit {
	struct vcpus *v;
	unsigned n;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	bool quit;
	uint64_t period_ms;
	uint64_t max_rate_mb; /* highest rate seen: QEMU sizes steps by it */
	struct dl_vcpu *cpus;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reads a ring's fill count and the clock of that fill consistently. */
static void read_fulls(struct throttle_ring *r, uint64_t *fulls,
		       uint64_t *full_ns)
{
	uint64_t before;

	do {
		before = atomic_load(&r->fulls);
		*full_ns = atomic_load(&r->full_ns);
		*fulls = atomic_load(&r->fulls);
	} while (*fulls != before);
}

/* The vCPU's rate (MiB/s) since its last measurement, or false to wait.
 * A limited vCPU alternates writing a ring and sleeping, so a fixed
 * window would see anything from no write to a whole ring: when rings
 * filled, the rate is taken over whole fill-to-fill cycles; without a
 * fill, from the pages written, unless the vCPU may still be asleep after
 * its last fill. (QEMU samples fixed windows and drops the penalty on a
 * zero reading, which makes long penalties oscillate.) */
static bool vcpu_rate(struct dirtylimit *dl, unsigned i, uint64_t now,
		      uint64_t *mb)
{
	struct throttle_ring *r = vcpus_ring(dl->v, i);
	struct dl_vcpu *c = &dl->cpus[i];
	uint64_t pages = atomic_load(&r->pages), fulls, full_ns, owed;
	double mib, ns;

	read_fulls(r, &fulls, &full_ns);
	owed = atomic_load(&r->penalty_us) * 1000;
	if (fulls > c->last_fulls && c->last_full_ns) {
		mib = (double)(fulls - c->last_fulls) * THROTTLE_RING_MIB;
		ns = (double)(full_ns - c->last_full_ns);
	} else if (fulls == c->last_fulls && owed &&
		   now - full_ns < owed + dl->period_ms * 1000000ull) {
		return false;
	} else {
		mib = (double)(pages - c->last_pages) * 4096.0 / 1048576.0;
		ns = (double)(now - c->last_ns);
	}
	c->last_pages = pages;
	c->last_ns = now;
	c->last_fulls = fulls;
	c->last_full_ns = full_ns;
	*mb = ns > 0 ? (uint64_t)(mib * 1e9 / ns) : 0;
	return true;
}

/* Lock held: vCPU i's rate, then its penalty if it is limited. */
static void measure_one(struct dirtylimit *dl, unsigned i, uint64_t now)
{
	struct throttle_ring *r = vcpus_ring(dl->v, i);
	struct dl_vcpu *c = &dl->cpus[i];

	if (!vcpu_rate(dl, i, now, &c->current_mb))
		return;
	if (c->current_mb > dl->max_rate_mb)
		dl->max_rate_mb = c->current_mb;
	if (c->enabled)
		atomic_store(&r->penalty_us,
			     throttle_dirtylimit_step(
				     atomic_load(&r->penalty_us), c->quota_mb,
				     c->current_mb,
				     throttle_ring_full_us(dl->max_rate_mb)));
}

static void *dirtylimit_thread(void *opaque)
{
	struct dirtylimit *dl = opaque;
	uint64_t last = now_ns();

	pthread_setname_np(pthread_self(), "dirtylimit");
	pthread_mutex_lock(&dl->lock);
	while (!dl->quit) {
		uint64_t deadline = last + dl->period_ms * 1000000ull, now;
		struct timespec ts = {
			.tv_sec = (time_t)(deadline / 1000000000ull),
			.tv_nsec = (long)(deadline % 1000000000ull),
		};

		pthread_cond_timedwait(&dl->cond, &dl->lock, &ts);
		now = now_ns();
		if (dl->quit || now < deadline)
			continue; /* woken early: a new period or quit */
		for (unsigned i = 0; i < dl->n; i++)
			measure_one(dl, i, now);
		last = now;
	}
	pthread_mutex_unlock(&dl->lock);
	return NULL;
}

static int start(struct dirtylimit *dl)
{
	pthread_condattr_t attr;
	int ret;

	pthread_mutex_init(&dl->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&dl->cond, &attr);
	pthread_condattr_destroy(&attr);
	for (unsigned i = 0; i < dl->n; i++) {
		dl->cpus[i].last_pages =
			atomic_load(&vcpus_ring(dl->v, i)->pages);
		dl->cpus[i].last_ns = now_ns();
		read_fulls(vcpus_ring(dl->v, i), &dl->cpus[i].last_fulls,
			   &dl->cpus[i].last_full_ns);
	}
	ret = -pthread_create(&dl->thread, NULL, dirtylimit_thread, dl);
	dl->started = ret == 0;
	return ret;
}

struct dirtylimit *dirtylimit_new(struct vcpus *v, struct mig_error **errp)
{
	struct dirtylimit *dl = calloc(1, sizeof(*dl));
	unsigned n = vcpus_count(v);

	if (!dl || !n || !(dl->cpus = calloc(n, sizeof(*dl->cpus)))) {
		free(dl);
		mig_error_setg(errp, n ? "out of memory"
				       : "The guest has no "
					 "vCPUs");
		return NULL;
	}
	dl->v = v;
	dl->n = n;
	dl->period_ms = DIRTYLIMIT_PERIOD_MS;
	if (start(dl) < 0) {
		mig_error_setg(errp, "cannot start the dirty limit thread");
		dirtylimit_free(dl);
		return NULL;
	}
	return dl;
}

void dirtylimit_free(struct dirtylimit *dl)
{
	if (!dl)
		return;
	if (dl->started) {
		pthread_mutex_lock(&dl->lock);
		dl->quit = true;
		pthread_cond_broadcast(&dl->cond);
		pthread_mutex_unlock(&dl->lock);
		pthread_join(dl->thread, NULL);
	}
	for (unsigned i = 0; i < dl->n; i++)
		atomic_store(&vcpus_ring(dl->v, i)->penalty_us, 0);
	pthread_cond_destroy(&dl->cond);
	pthread_mutex_destroy(&dl->lock);
	free(dl->cpus);
	free(dl);
}

/* Lock held. */
static void set_one(struct dirtylimit *dl, unsigned cpu, bool enable,
		    uint64_t quota_mb)
{
	dl->cpus[cpu].enabled = enable;
	dl->cpus[cpu].quota_mb = enable ? quota_mb : 0;
	if (!enable)
		atomic_store(&vcpus_ring(dl->v, cpu)->penalty_us, 0);
}

static void set_range(struct dirtylimit *dl, int cpu, bool enable,
		      uint64_t quota_mb)
{
	pthread_mutex_lock(&dl->lock);
	for (unsigned i = 0; i < dl->n; i++)
		if (cpu < 0 || (unsigned)cpu == i)
			set_one(dl, i, enable, quota_mb);
	pthread_mutex_unlock(&dl->lock);
}

void dirtylimit_set(struct dirtylimit *dl, int cpu, uint64_t quota_mb)
{
	set_range(dl, cpu, true, quota_mb);
}

void dirtylimit_clear(struct dirtylimit *dl, int cpu)
{
	set_range(dl, cpu, false, 0);
}

unsigned dirtylimit_limited(struct dirtylimit *dl)
{
	unsigned count = 0;

	pthread_mutex_lock(&dl->lock);
	for (unsigned i = 0; i < dl->n; i++)
		count += dl->cpus[i].enabled;
	pthread_mutex_unlock(&dl->lock);
	return count;
}

void dirtylimit_set_period(struct dirtylimit *dl, uint64_t ms)
{
	if (ms < 1)
		ms = 1;
	if (ms > DIRTYLIMIT_PERIOD_MS)
		ms = DIRTYLIMIT_PERIOD_MS;
	pthread_mutex_lock(&dl->lock);
	dl->period_ms = ms;
	pthread_mutex_unlock(&dl->lock);
}

bool dirtylimit_get(struct dirtylimit *dl, unsigned cpu,
		    struct dirtylimit_info *out)
{
	if (cpu >= dl->n)
		return false;
	pthread_mutex_lock(&dl->lock);
	out->enabled = dl->cpus[cpu].enabled;
	out->quota_mb = dl->cpus[cpu].quota_mb;
	out->current_mb = dl->cpus[cpu].current_mb;
	pthread_mutex_unlock(&dl->lock);
	return true;
}

uint64_t dirtylimit_throttle_time_per_round(struct dirtylimit *dl)
{
	uint64_t max = 0;

	for (unsigned i = 0; i < dl->n; i++) {
		uint64_t p = atomic_load(&vcpus_ring(dl->v, i)->penalty_us);

		max = p > max ? p : max;
	}
	return max;
}

uint64_t dirtylimit_ring_full_time(struct dirtylimit *dl)
{
	uint64_t sum = 0;

	if (!vcpus_are_running(dl->v))
		return 0;
	pthread_mutex_lock(&dl->lock);
	for (unsigned i = 0; i < dl->n; i++)
		sum += dl->cpus[i].current_mb;
	pthread_mutex_unlock(&dl->lock);
	return throttle_ring_full_us(sum / dl->n);
}
