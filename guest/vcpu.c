/* vcpu.c — vCPU threads (see vcpu.h). Each vCPU loops: take a new
 * workload if one was posted, park while paused or idle, sleep while
 * throttled or out of tokens, else write one burst outside its lock.
 * Lock order: vcpus.ctl, then a vcpu's lock. A vCPU holds only its own
 * lock, and never while it writes guest RAM; `writing` (under that lock)
 * tells vcpus_pause() whom to wait for. */
#include "guest/vcpu.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest/guest.h"
#include "guest/probe.h"
#include "guest/tbucket.h"
#include "guest/throttle.h"

#define RING_LEN 16		     /* rate samples kept per vCPU */
#define SAMPLE_NS 100000000ull	     /* one sample per 100 ms */
#define RATE_WINDOW_NS 1000000000ull /* rate = bytes/s over 1 s */
#define BURST_BYTES (64u * 1024)     /* writes between lock visits */
#define QUANTUM_NS 1000000ull	     /* shortest rate-limit sleep */
#define CREDIT_NS 20000000ull	     /* unused credit kept: 20 ms */

struct rate_sample {
	uint64_t t, bytes;
};

struct vcpu {
	struct vcpus *set;
	unsigned index;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the vCPU parks here; pausers wait here */

	/* Under lock. */
	bool writing;  /* outside the lock, writing guest RAM */
	bool finished; /* the workload's passes are done */
	struct workload_config pending;
	uint64_t pending_gen;
	struct rate_sample ring[RING_LEN];
	unsigned ring_head, ring_len;

	/* Atomics, read by anyone. */
	_Atomic uint64_t bytes;
	_Atomic uint64_t throttle_ns;
	_Atomic uint32_t tid;	    /* the thread's id, 0 until it runs */
	struct throttle_ring dring; /* dirty-limit (guest/throttle.h) */

	/* vCPU thread only. */
	struct workload_gen *gen;
	uint64_t gen_seen;
	bool idle, parked;
	double rate; /* bytes/s, 0 = unthrottled */
	uint64_t write_size;
	struct tbucket bucket;
	uint64_t slice_start, sleep_until;
} __attribute__((aligned(64)));

struct vcpus {
	struct guest *g;
	unsigned n;
	atomic_bool run;		 /* vCPUs may write */
	atomic_bool quit;		 /* threads exit */
	atomic_bool faults_block;	 /* postcopy: RAM may be missing */
	pthread_mutex_t ctl;		 /* serialises the control functions */
	struct workload_config workload; /* ctl */
	uint64_t workload_gen;		 /* ctl */
	struct workload_map *map;
	struct vcpu *cpus;
	struct probe_stats probe; /* content=probe: vCPU 0 records here */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- progress ----------------------------------------------------------- */

/* Lock held. force: a sample even if the last one is recent (parking). */
static void record_sample(struct vcpu *c, uint64_t now, bool force)
{
	unsigned last = (c->ring_head + RING_LEN - 1) % RING_LEN;

	if (!force && c->ring_len && now - c->ring[last].t < SAMPLE_NS)
		return;
	c->ring[c->ring_head] = (struct rate_sample){
		now, atomic_load_explicit(&c->bytes, memory_order_relaxed)};
	c->ring_head = (c->ring_head + 1) % RING_LEN;
	if (c->ring_len < RING_LEN)
		c->ring_len++;
}

/* Lock held. The newest sample at least a window old, else the oldest. */
static uint64_t ring_rate(const struct vcpu *c, uint64_t now, uint64_t bytes)
{
	const struct rate_sample *base = NULL;

	for (unsigned i = 0; i < c->ring_len; i++) {
		unsigned k = (c->ring_head + RING_LEN - 1 - i) % RING_LEN;

		base = &c->ring[k];
		if (now - base->t >= RATE_WINDOW_NS)
			break;
	}
	if (!base || now <= base->t || bytes < base->bytes)
		return 0;
	return (uint64_t)((double)(bytes - base->bytes) * 1e9 /
			  (double)(now - base->t));
}

void vcpus_get_progress(struct vcpus *v, unsigned cpu,
			struct vcpu_progress *out)
{
	struct vcpu *c;

	memset(out, 0, sizeof(*out));
	if (!v || cpu >= v->n)
		return;
	c = &v->cpus[cpu];
	pthread_mutex_lock(&c->lock);
	out->bytes_written = atomic_load(&c->bytes);
	out->rate = ring_rate(c, now_ns(), out->bytes_written);
	out->finished = c->finished;
	pthread_mutex_unlock(&c->lock);
}

/* ---- the vCPU thread ---------------------------------------------------- */

static void restart_clock(struct vcpu *c, uint64_t now)
{
	double credit = c->rate * (double)CREDIT_NS / 1e9;

	if (credit < 2.0 * (double)c->write_size)
		credit = 2.0 * (double)c->write_size;
	tbucket_init(&c->bucket, c->rate, credit, now);
	c->slice_start = now;
	c->sleep_until = 0;
}

/* Lock held: adopts the workload posted by vcpus_set_workload(). */
static void load_workload(struct vcpu *c, uint64_t now)
{
	c->gen_seen = c->pending_gen;
	c->finished = false;
	workload_gen_reset(c->gen, &c->pending, c->index, c->set->n);
	c->idle = c->pending.idle;
	if (c->pending.content == WORKLOAD_CONTENT_PROBE) {
		/* one prober, fresh statistics; the others idle */
		c->idle = c->idle || c->index != 0;
		if (c->index == 0)
			probe_stats_reset(&c->set->probe);
	}
	c->rate = workload_vcpu_rate(&c->pending, c->set->n);
	c->write_size = c->pending.write_size ? c->pending.write_size : 1;
	restart_clock(c, now);
}

/* Lock held: sleeps until resumed or given work (no timeout). */
static void park(struct vcpu *c, uint64_t now)
{
	if (!c->parked)
		record_sample(c, now, true);
	c->parked = true;
	pthread_cond_wait(&c->cond, &c->lock);
}

static void sleep_until(struct vcpu *c, uint64_t deadline)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / 1000000000ull),
		.tv_nsec = (long)(deadline % 1000000000ull),
	};

	/* A timed wait, not nanosleep: pause, quit and a new workload wake
	 * the vCPU at once instead of after its sleep. */
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

/* When the vCPU may write next: now (0), or a deadline to sleep until. */
static uint64_t next_write_time(struct vcpu *c, uint64_t now)
{
	uint64_t throttle = atomic_load(&c->throttle_ns), need, wait;

	if (c->sleep_until > now)
		return c->sleep_until;
	if (throttle && now - c->slice_start >= VCPU_TIMESLICE_NS) {
		c->sleep_until = now + throttle;
		c->slice_start = c->sleep_until;
		return c->sleep_until;
	}
	if (c->rate <= 0)
		return 0;
	tbucket_refill(&c->bucket, now);
	need = (uint64_t)(c->rate * (double)QUANTUM_NS / 1e9);
	wait = tbucket_wait_ns(&c->bucket,
			       need > c->write_size ? need : c->write_size);
	return wait ? now + wait : 0;
}

static unsigned burst_touches(struct vcpu *c)
{
	uint64_t n = BURST_BYTES / c->write_size, avail;

	if (c->rate > 0) {
		avail = tbucket_available(&c->bucket) / c->write_size;
		n = avail < n ? avail : n;
	}
	return n ? (unsigned)n : 1;
}

/* Outside the lock: the only place guest RAM is written. Checks the run
 * flag before every write so a pause waits for one write at most. */
static uint64_t write_burst(struct vcpu *c, unsigned touches)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < touches; i++) {
		uint32_t n;

		if (!atomic_load_explicit(&c->set->run, memory_order_relaxed))
			break;
		n = workload_gen_touch(c->gen);
		if (!n)
			break; /* finished its passes */
		bytes += n;
	}
	return bytes;
}

/* Lock held: one step of the loop. */
static void vcpu_step(struct vcpu *c)
{
	uint64_t now = now_ns(), deadline, bytes, owed;
	unsigned touches;

	if (c->pending_gen != c->gen_seen)
		load_workload(c, now);
	if (!atomic_load(&c->set->run) || c->idle || c->finished) {
		park(c, now);
		return;
	}
	if (c->parked) {
		c->parked = false;
		restart_clock(c, now);
	}
	deadline = next_write_time(c, now);
	if (deadline > now) {
		sleep_until(c, deadline);
		return;
	}
	touches = burst_touches(c);
	c->writing = true;
	pthread_mutex_unlock(&c->lock);
	bytes = write_burst(c, touches);
	pthread_mutex_lock(&c->lock);
	c->writing = false;
	if (!atomic_load(&c->set->run))
		pthread_cond_broadcast(&c->cond); /* a pauser waits */
	atomic_fetch_add_explicit(&c->bytes, bytes, memory_order_relaxed);
	c->finished = workload_gen_is_finished(c->gen);
	if (c->rate > 0)
		tbucket_consume(&c->bucket, bytes);
	record_sample(c, now_ns(), false);
	/* dirty-limit: one ring entry per page touch; a full ring costs the
	 * vCPU its penalty before its next write */
	now = now_ns();
	owed = throttle_ring_push(
		&c->dring, (bytes + c->write_size - 1) / c->write_size, now);
	if (owed)
		c->sleep_until = now + owed;
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *c = opaque;
	char name[16];

	snprintf(name, sizeof(name), "vcpu/%u", c->index);
	pthread_setname_np(pthread_self(), name);
	atomic_store(&c->tid, (uint32_t)gettid());
	pthread_mutex_lock(&c->lock);
	while (!atomic_load(&c->set->quit))
		vcpu_step(c);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- control ------------------------------------------------------------ */

/* Wakes every vCPU (each under its lock, so none misses it). */
static void wake_all(struct vcpus *v)
{
	for (unsigned i = 0; i < v->n; i++) {
		pthread_mutex_lock(&v->cpus[i].lock);
		pthread_cond_broadcast(&v->cpus[i].cond);
		pthread_mutex_unlock(&v->cpus[i].lock);
	}
}

void vcpus_resume(struct vcpus *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->ctl);
	atomic_store(&v->run, true);
	wake_all(v);
	pthread_mutex_unlock(&v->ctl);
}

void vcpus_pause(struct vcpus *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->ctl);
	atomic_store(&v->run, false);
	/* A vCPU that takes its lock after this sees run == false and parks;
	 * one that is writing sees it before its next write. */
	for (unsigned i = 0; i < v->n; i++) {
		struct vcpu *c = &v->cpus[i];

		pthread_mutex_lock(&c->lock);
		while (c->writing && !atomic_load(&v->faults_block))
			pthread_cond_wait(&c->cond, &c->lock);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&v->ctl);
}

void vcpus_set_faults_block(struct vcpus *v, bool on)
{
	if (v)
		atomic_store(&v->faults_block, on);
}

bool vcpus_are_running(const struct vcpus *v)
{
	return v && atomic_load(&v->run);
}

unsigned vcpus_count(const struct vcpus *v)
{
	return v ? v->n : 0;
}

uint32_t vcpus_thread_id(struct vcpus *v, unsigned cpu)
{
	return v && cpu < v->n ? atomic_load(&v->cpus[cpu].tid) : 0;
}

int vcpus_set_workload(struct vcpus *v, const struct workload_config *w,
		       struct mig_error **errp)
{
	if (workload_validate(w, errp) < 0 ||
	    workload_fit(w, guest_ram_size(v->g), errp) < 0)
		return -EINVAL;
	pthread_mutex_lock(&v->ctl);
	v->workload = *w;
	v->workload_gen++;
	for (unsigned i = 0; i < v->n; i++) {
		struct vcpu *c = &v->cpus[i];

		pthread_mutex_lock(&c->lock);
		c->pending = *w;
		c->pending_gen = v->workload_gen;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&v->ctl);
	return 0;
}

void vcpus_get_workload(struct vcpus *v, struct workload_config *out)
{
	pthread_mutex_lock(&v->ctl);
	*out = v->workload;
	pthread_mutex_unlock(&v->ctl);
}

void vcpus_set_throttle(struct vcpus *v, unsigned cpu, uint64_t sleep_ns)
{
	if (!v || cpu >= v->n)
		return;
	atomic_store(&v->cpus[cpu].throttle_ns, sleep_ns);
}

uint64_t vcpus_get_throttle(struct vcpus *v, unsigned cpu)
{
	if (!v || cpu >= v->n)
		return 0;
	return atomic_load(&v->cpus[cpu].throttle_ns);
}

void vcpus_get_probe(struct vcpus *v, struct probe_stats *out)
{
	if (v)
		probe_stats_snapshot(&v->probe, out);
}

struct throttle_ring *vcpus_ring(struct vcpus *v, unsigned cpu)
{
	return v && cpu < v->n ? &v->cpus[cpu].dring : NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int vcpu_init(struct vcpus *v, struct vcpu *c, unsigned index)
{
	pthread_condattr_t attr;

	c->set = v;
	c->index = index;
	c->gen = workload_gen_new(v->map);
	if (!c->gen)
		return -ENOMEM;
	if (index == 0)
		workload_gen_set_probe(c->gen, &v->probe);
	workload_config_init(&c->pending);
	c->idle = true;
	c->write_size = WORKLOAD_PAGE_SIZE;
	atomic_init(&c->bytes, 0);
	atomic_init(&c->throttle_ns, 0);
	throttle_ring_init(&c->dring);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

static int start_threads(struct vcpus *v, struct mig_error **errp)
{
	for (unsigned i = 0; i < v->n; i++) {
		struct vcpu *c = &v->cpus[i];
		int ret = vcpu_init(v, c, i);

		if (ret == 0)
			ret = -pthread_create(&c->thread, NULL, vcpu_thread, c);
		if (ret < 0) {
			mig_error_setg(errp, "cannot start vCPU %u: %s", i,
				       strerror(-ret));
			return ret;
		}
		c->started = true;
	}
	return 0;
}

struct vcpus *vcpus_new(struct guest *g, struct mig_error **errp)
{
	struct vcpus *v = calloc(1, sizeof(*v));
	unsigned n = g->smp_cpus ? g->smp_cpus : 1;
	void *cpus = NULL;

	if (!v || posix_memalign(&cpus, 64, sizeof(struct vcpu) * n)) {
		free(v);
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	memset(cpus, 0, sizeof(struct vcpu) * n);
	v->cpus = cpus;
	v->n = n;
	v->g = g;
	atomic_init(&v->run, false);
	atomic_init(&v->quit, false);
	pthread_mutex_init(&v->ctl, NULL);
	probe_stats_init(&v->probe);
	workload_config_init(&v->workload);
	v->map = workload_map_new(g);
	if (!v->map) {
		mig_error_setg(errp, "out of memory");
		vcpus_free(v);
		return NULL;
	}
	if (start_threads(v, errp) < 0) {
		vcpus_free(v);
		return NULL;
	}
	return v;
}

void vcpus_free(struct vcpus *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->ctl);
	atomic_store(&v->quit, true);
	atomic_store(&v->run, false);
	pthread_mutex_unlock(&v->ctl);
	for (unsigned i = 0; i < v->n; i++) {
		struct vcpu *c = &v->cpus[i];

		if (c->started) {
			pthread_mutex_lock(&c->lock);
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->lock);
			pthread_join(c->thread, NULL);
		}
		if (c->gen) {
			pthread_cond_destroy(&c->cond);
			pthread_mutex_destroy(&c->lock);
		}
		workload_gen_free(c->gen);
	}
	workload_map_free(v->map);
	probe_stats_destroy(&v->probe);
	pthread_mutex_destroy(&v->ctl);
	free(v->cpus);
	free(v);
}
