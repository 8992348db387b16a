/* dirtyrate.c — calc-dirty-rate and query-dirty-rate (see dirtyrate.h).
 * The QMP handlers run on the control thread; each measurement runs on its
 * own thread, which owns the sampling state and publishes the result under
 * dr->lock. One measurement at a time (status 'measuring' refuses a new
 * one, as QEMU does); the thread is joined before the next one starts and
 * at shutdown, which wakes its wait at once. */
#include "control/dirtyrate.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/vcpu.h"
#include "guest/workload.h"
#include "util/log.h"

enum dr_status { DR_UNSTARTED, DR_MEASURING, DR_MEASURED };
enum dr_mode { DR_PAGE_SAMPLING, DR_DIRTY_RING, DR_DIRTY_BITMAP };
enum dr_unit { DR_SECOND, DR_MILLISECOND };

static const char *const status_names[] = {"unstarted", "measuring", "measured",
					   NULL};
static const char *const mode_names[] = {"page-sampling", "dirty-ring",
					 "dirty-bitmap", NULL};
static const char *const unit_names[] = {"second", "millisecond", NULL};

struct dirtyrate {
	struct guest *g;
	pthread_t thread;
	bool thread_started; /* control thread */
	_Atomic int status;  /* enum dr_status */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* wakes the measuring thread's wait */
	bool quit;
	enum dr_mode mode;
	int64_t calc_time_ms; /* asked, then the real duration */
	uint64_t sample_pages;
	int64_t start_time; /* seconds since the epoch */
	int64_t dirty_rate; /* MiB/s, -1 until measured */
	int64_t *vcpu_rates;
	unsigned nvcpu;
};

/* ---- arithmetic ------------------------------------------------------- */

int64_t dirtyrate_from_pages(uint64_t pages, int64_t ms)
{
	/* Multiplied by 1000 before the MiB shift, as QEMU 9.0 does. */
	if (ms <= 0)
		return 0;
	return (int64_t)(((pages * 1000) << DIRTY_PAGE_SHIFT >> 20) /
			 (uint64_t)ms);
}

int64_t dirtyrate_from_samples(uint64_t dirty, uint64_t total,
			       uint64_t block_mib, int64_t ms)
{
	if (!total || ms <= 0)
		return -1;
	return (int64_t)(dirty * block_mib * 1000 / (total * (uint64_t)ms));
}

int64_t dirtyrate_to_ms(int64_t value, int unit)
{
	if (unit == DR_MILLISECOND)
		return value;
	if (value > INT64_MAX / 1000)
		return INT64_MAX;
	if (value < INT64_MIN / 1000)
		return INT64_MIN;
	return value * 1000;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps until start + ms (or shutdown); returns the real duration. */
static int64_t wait_window(struct dirtyrate *dr, uint64_t start, int64_t ms)
{
	struct timespec ts;
	uint64_t end = start + (uint64_t)ms;

	ts.tv_sec = (time_t)(end / 1000);
	ts.tv_nsec = (long)(end % 1000) * 1000000L;
	pthread_mutex_lock(&dr->lock);
	while (!dr->quit && mono_ms() < end)
		if (pthread_cond_timedwait(&dr->cond, &dr->lock, &ts) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&dr->lock);
	return (int64_t)(mono_ms() - start);
}

/* ---- page sampling ----------------------------------------------------- */

struct dr_sample_block {
	struct ram_block *b;
	uint64_t n;	/* samples */
	uint64_t *page; /* sampled page numbers */
	uint32_t *hash; /* their hashes at the start */
};

static uint32_t page_hash(const struct ram_block *b, uint64_t page)
{
	return (uint32_t)XXH64(b->host + (page << DIRTY_PAGE_SHIFT),
			       DIRTY_PAGE_SIZE, 0);
}

/* QEMU's choice: used_length * samples-per-GiB >> 30 random pages of each
 * block of at least 128 KiB, drawn from [0, pages - 1). */
static int sample_block(struct dr_sample_block *s, struct ram_block *b,
			uint64_t per_gib, struct workload_prng *rng)
{
	uint64_t pages = b->used_length >> DIRTY_PAGE_SHIFT;

	s->b = b;
	s->n = b->used_length * per_gib >> 30;
	if (!s->n || !pages)
		return 0;
	s->page = calloc(s->n, sizeof(*s->page));
	s->hash = calloc(s->n, sizeof(*s->hash));
	if (!s->page || !s->hash)
		return -ENOMEM;
	for (uint64_t i = 0; i < s->n; i++) {
		s->page[i] =
			pages > 1 ? workload_prng_next(rng) % (pages - 1) : 0;
		s->hash[i] = page_hash(b, s->page[i]);
	}
	return 0;
}

static void free_samples(struct dr_sample_block *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++) {
		free(s[i].page);
		free(s[i].hash);
	}
	free(s);
}

static int64_t measure_sampling(struct dirtyrate *dr, uint64_t per_gib,
				int64_t ms, int64_t *real_ms)
{
	struct workload_prng rng;
	struct dr_sample_block *s = calloc(dr->g->nblocks + 1, sizeof(*s));
	uint64_t start = mono_ms(), dirty = 0, total = 0, mib = 0;
	struct ram_block *b;
	size_t n = 0;
	int64_t rate = -1;

	workload_prng_seed(&rng, (uint64_t)time(NULL) ^ start);
	if (!s)
		return -1;
	guest_for_each_block(dr->g, b)
	{
		if (b->used_length < DIRTYRATE_MIN_BLOCK)
			continue;
		if (sample_block(&s[n++], b, per_gib, &rng) < 0)
			goto out;
	}
	*real_ms = wait_window(dr, start, ms);
	for (size_t i = 0; i < n; i++) {
		for (uint64_t k = 0; k < s[i].n; k++)
			dirty +=
				page_hash(s[i].b, s[i].page[k]) != s[i].hash[k];
		total += s[i].n;
		mib += s[i].b->used_length >>
		       DIRTY_PAGE_SHIFT << DIRTY_PAGE_SHIFT >> 20;
	}
	rate = dirtyrate_from_samples(dirty, total, mib, *real_ms);
out:
	free_samples(s, n);
	return rate;
}

/* ---- dirty-bitmap and dirty-ring: the guest's rate log ----------------- */

static int64_t measure_log(struct dirtyrate *dr, int64_t ms, int64_t *real_ms,
			   int64_t *vcpu_rates, unsigned nvcpu)
{
	uint64_t start, total;
	int64_t sum = 0;

	if (dirty_rate_start(dr->g) < 0)
		return -1;
	start = mono_ms();
	*real_ms = wait_window(dr, start, ms);
	total = dirty_rate_total(dr->g);
	for (unsigned i = 0; i < nvcpu; i++) {
		vcpu_rates[i] = dirtyrate_from_pages(dirty_rate_pages(dr->g, i),
						     *real_ms);
		sum += vcpu_rates[i];
	}
	dirty_rate_stop(dr->g);
	/* dirty-ring: the VM's rate is the sum of its vCPUs' (QEMU). */
	return vcpu_rates ? sum : dirtyrate_from_pages(total, *real_ms);
}

static void *measure_thread(void *opaque)
{
	struct dirtyrate *dr = opaque;
	int64_t ms, real_ms = 0, rate, *rates = NULL;
	unsigned nvcpu = 0;
	enum dr_mode mode;
	uint64_t per_gib;

	pthread_setname_np(pthread_self(), "get_dirtyrate");
	pthread_mutex_lock(&dr->lock);
	mode = dr->mode;
	ms = dr->calc_time_ms;
	per_gib = dr->sample_pages;
	pthread_mutex_unlock(&dr->lock);
	if (mode == DR_DIRTY_RING) {
		nvcpu = vcpus_count(dr->g->vcpus);
		rates = calloc(nvcpu ? nvcpu : 1, sizeof(*rates));
	}
	if (mode == DR_PAGE_SAMPLING)
		rate = measure_sampling(dr, per_gib, ms, &real_ms);
	else
		rate = measure_log(dr, ms, &real_ms, rates, rates ? nvcpu : 0);
	pthread_mutex_lock(&dr->lock);
	dr->calc_time_ms = real_ms;
	dr->dirty_rate = rate;
	free(dr->vcpu_rates);
	dr->vcpu_rates = rates;
	dr->nvcpu = rates ? nvcpu : 0;
	pthread_mutex_unlock(&dr->lock);
	atomic_store(&dr->status, DR_MEASURED);
	return NULL;
}

/* ---- QMP --------------------------------------------------------------- */

struct dr_args {
	int64_t calc_time;
	int unit, mode;
	bool has_samples;
	int64_t samples;
};

/* The arguments in the schema's order, as QEMU's visitor reads them. */
static bool read_args(json_t *args, struct dr_args *a, struct mig_error **errp)
{
	struct qapi_in in;
	bool ok;

	memset(a, 0, sizeof(*a));
	qapi_in_init(&in, args);
	ok = qapi_read_int(&in, "calc-time", &a->calc_time, errp);
	if (ok && qapi_has(&in, "calc-time-unit"))
		ok = qapi_read_enum(&in, "calc-time-unit", unit_names, &a->unit,
				    errp);
	if (ok && qapi_has(&in, "sample-pages")) {
		a->has_samples = true;
		ok = qapi_read_int(&in, "sample-pages", &a->samples, errp);
	}
	if (ok && qapi_has(&in, "mode"))
		ok = qapi_read_enum(&in, "mode", mode_names, &a->mode, errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	return ok;
}

/* QEMU's qmp_calc_dirty_rate() checks, in its order. migd has both an
 * exact dirty log and per-vCPU counts, so every mode is enabled (QEMU
 * refuses dirty-ring without KVM's dirty ring and dirty-bitmap with it). */
static bool check_args(struct dirtyrate *dr, const struct dr_args *a,
		       int64_t *ms, struct mig_error **errp)
{
	if (atomic_load(&dr->status) == DR_MEASURING) {
		mig_error_setg(errp,
			       "the dirty rate is already being measured.");
		return false;
	}
	*ms = dirtyrate_to_ms(a->calc_time, a->unit);
	if (*ms < DIRTYRATE_MIN_CALC_MS || *ms > DIRTYRATE_MAX_CALC_MS) {
		mig_error_setg(errp,
			       "Calculation time is out of range [%dms, %dms].",
			       DIRTYRATE_MIN_CALC_MS, DIRTYRATE_MAX_CALC_MS);
		return false;
	}
	if (a->has_samples && a->mode != DR_PAGE_SAMPLING) {
		mig_error_setg(
			errp,
			"sample-pages is used only in page-sampling mode");
		return false;
	}
	if (a->has_samples && (a->samples < DIRTYRATE_MIN_SAMPLES ||
			       a->samples > DIRTYRATE_MAX_SAMPLES)) {
		mig_error_setg(errp, "sample-pages is out of range[%d, %d].",
			       DIRTYRATE_MIN_SAMPLES, DIRTYRATE_MAX_SAMPLES);
		return false;
	}
	return true;
}

static json_t *qmp_calc_dirty_rate(struct migd *md, struct qmp_monitor *mon,
				   json_t *args, struct mig_error **errp)
{
	struct dirtyrate *dr = md->dirtyrate;
	struct dr_args a;
	int64_t ms;

	if (!read_args(args, &a, errp) || !check_args(dr, &a, &ms, errp))
		return NULL;
	if (dr->thread_started) { /* finished: its status is 'measured' */
		pthread_join(dr->thread, NULL);
		dr->thread_started = false;
	}
	pthread_mutex_lock(&dr->lock);
	dr->mode = (enum dr_mode)a.mode;
	dr->calc_time_ms = ms;
	dr->sample_pages =
		a.has_samples ? (uint64_t)a.samples : DIRTYRATE_DEFAULT_SAMPLES;
	dr->start_time = (int64_t)time(NULL);
	dr->dirty_rate = -1;
	pthread_mutex_unlock(&dr->lock);
	atomic_store(&dr->status, DR_MEASURING);
	if (pthread_create(&dr->thread, NULL, measure_thread, dr)) {
		atomic_store(&dr->status, DR_UNSTARTED);
		mig_error_setg(errp, "cannot start the dirty rate thread");
		return NULL;
	}
	dr->thread_started = true;
	return json_object();
}

static json_t *vcpu_list(const struct dirtyrate *dr)
{
	json_t *list = json_array();

	for (unsigned i = 0; list && i < dr->nvcpu; i++)
		json_array_append_new(
			list, json_pack("{s:i,s:I}", "id", (int)i, "dirty-rate",
					(json_int_t)dr->vcpu_rates[i]));
	return list;
}

/* QEMU's query_dirty_rate_info(): the result fields appear once measured;
 * sample-pages reads 0 in the modes that do not sample. */
static json_t *dirty_rate_info(struct dirtyrate *dr, int unit)
{
	int st = atomic_load(&dr->status);
	int64_t calc;
	json_t *r;

	pthread_mutex_lock(&dr->lock);
	calc = unit == DR_MILLISECOND ? dr->calc_time_ms
				      : dr->calc_time_ms / 1000;
	r = json_pack(
		"{s:s,s:I,s:I,s:s,s:I,s:s}", "status", status_names[st],
		"start-time", (json_int_t)dr->start_time, "calc-time",
		(json_int_t)calc, "calc-time-unit", unit_names[unit],
		"sample-pages",
		(json_int_t)(st == DR_MEASURED && dr->mode != DR_PAGE_SAMPLING
				     ? 0
				     : dr->sample_pages),
		"mode", mode_names[dr->mode]);
	if (r && st == DR_MEASURED) {
		json_object_set_new(r, "dirty-rate",
				    json_integer((json_int_t)dr->dirty_rate));
		if (dr->mode == DR_DIRTY_RING)
			json_object_set_new(r, "vcpu-dirty-rate",
					    vcpu_list(dr));
	}
	pthread_mutex_unlock(&dr->lock);
	return r;
}

static json_t *qmp_query_dirty_rate(struct migd *md, struct qmp_monitor *mon,
				    json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	int unit = DR_SECOND;
	bool ok = true;

	qapi_in_init(&in, args);
	if (qapi_has(&in, "calc-time-unit"))
		ok = qapi_read_enum(&in, "calc-time-unit", unit_names, &unit,
				    errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	return ok ? dirty_rate_info(md->dirtyrate, unit) : NULL;
}

static const struct qmp_command dirtyrate_cmds[] = {
	{"calc-dirty-rate", qmp_calc_dirty_rate, 0},
	{"query-dirty-rate", qmp_query_dirty_rate, 0},
};

int dirtyrate_register_qmp(struct migd *md, struct qmp_server *srv)
{
	struct dirtyrate *dr = calloc(1, sizeof(*dr));
	pthread_condattr_t ca;

	if (!dr)
		return -ENOMEM;
	dr->g = md->guest;
	dr->dirty_rate = -1;
	pthread_mutex_init(&dr->lock, NULL);
	/* wait_window() computes its deadline on the monotonic clock */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dr->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&dr->status, DR_UNSTARTED);
	md->dirtyrate = dr;
	return qmp_register(srv, dirtyrate_cmds,
			    sizeof(dirtyrate_cmds) / sizeof(dirtyrate_cmds[0]));
}

void dirtyrate_shutdown(struct migd *md)
{
	struct dirtyrate *dr = md->dirtyrate;

	if (!dr)
		return;
	pthread_mutex_lock(&dr->lock);
	dr->quit = true;
	pthread_cond_broadcast(&dr->cond);
	pthread_mutex_unlock(&dr->lock);
	if (dr->thread_started)
		pthread_join(dr->thread, NULL);
	free(dr->vcpu_rates);
	pthread_mutex_destroy(&dr->lock);
	pthread_cond_destroy(&dr->cond);
	free(dr);
	md->dirtyrate = NULL;
}
