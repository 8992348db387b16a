/* workload.c — the workload description, its command-line parsing and
 * validation, and the per-vCPU write generator (see workload.h).
 * Config functions: control thread. A generator: its vCPU thread only. */
#include "guest/workload.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/opts.h"
#include "util/size.h"

const char *const workload_pattern_names[] = {
	[WORKLOAD_SEQUENTIAL] = "sequential",
	[WORKLOAD_RANDOM] = "random",
	[WORKLOAD_HOTCOLD] = "hotcold",
	[WORKLOAD_PATTERN__MAX] = NULL,
};

const char *const workload_content_names[] = {
	[WORKLOAD_CONTENT_RANDOM] = "random",
	[WORKLOAD_CONTENT_TEXT] = "text",
	[WORKLOAD_CONTENT_ZERO] = "zero",
	[WORKLOAD_CONTENT_MIXED] = "mixed",
	[WORKLOAD_CONTENT_READ] = "read",
	[WORKLOAD_CONTENT_PROBE] = "probe",
	[WORKLOAD_CONTENT__MAX] = NULL,
};

const char *const workload_key_names[] = {
	[WORKLOAD_KEY_DIRTY_RATE] = "dirty-rate",
	[WORKLOAD_KEY_PER_VCPU_RATE] = "per-vcpu-rate",
	[WORKLOAD_KEY_WORKING_SET] = "working-set",
	[WORKLOAD_KEY_PATTERN] = "pattern",
	[WORKLOAD_KEY_HOT_FRACTION] = "hot-fraction",
	[WORKLOAD_KEY_HOT_RATIO] = "hot-ratio",
	[WORKLOAD_KEY_CONTENT] = "content",
	[WORKLOAD_KEY_ZERO_FRACTION] = "zero-fraction",
	[WORKLOAD_KEY_TEXT_FRACTION] = "text-fraction",
	[WORKLOAD_KEY_WRITE_SIZE] = "write-size",
	[WORKLOAD_KEY_SEED] = "seed",
	[WORKLOAD_KEY_PASSES] = "passes",
	[WORKLOAD_KEY__MAX] = NULL,
};

/* ---- configuration ------------------------------------------------------ */

void workload_config_init(struct workload_config *w)
{
	memset(w, 0, sizeof(*w));
	w->idle = true;
	w->hot_fraction = 0.1;
	w->hot_ratio = 0.9;
	w->zero_fraction = 1.0 / 3;
	w->text_fraction = 1.0 / 3;
	w->write_size = WORKLOAD_PAGE_SIZE;
}

void workload_config_active(struct workload_config *w)
{
	struct timespec ts;

	workload_config_init(w);
	w->idle = false;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Reported back by x-guest-workload, so a run can be repeated; kept
	 * below 2^53 so any JSON reader holds it exactly. */
	w->seed = ((uint64_t)ts.tv_nsec * 1000003u ^ (uint64_t)ts.tv_sec ^
		   (uint64_t)getpid() << 20) &
		  ((1ull << 53) - 1);
}

static bool is_given(const struct workload_config *w, enum workload_key k)
{
	return w->given & (1u << k);
}

/* Number of the first given key from first on, or -1. */
static int first_given(const struct workload_config *w, int first)
{
	for (int k = first; k < WORKLOAD_KEY__MAX; k++)
		if (is_given(w, (enum workload_key)k))
			return k;
	return -1;
}

static int check_range(double v, double lo, double hi, const char *key,
		       struct mig_error **errp)
{
	if (v >= lo && v <= hi)
		return 0;
	mig_error_setg(errp,
		       "Parameter '%s' expects a number between %.15g and "
		       "%.15g",
		       key, lo, hi);
	return -EINVAL;
}

static int check_dependent(const struct workload_config *w,
			   struct mig_error **errp)
{
	static const struct {
		enum workload_key key, needs;
		const char *value;
	} deps[] = {
		{WORKLOAD_KEY_HOT_FRACTION, WORKLOAD_KEY_PATTERN, "hotcold"},
		{WORKLOAD_KEY_HOT_RATIO, WORKLOAD_KEY_PATTERN, "hotcold"},
		{WORKLOAD_KEY_ZERO_FRACTION, WORKLOAD_KEY_CONTENT, "mixed"},
		{WORKLOAD_KEY_TEXT_FRACTION, WORKLOAD_KEY_CONTENT, "mixed"},
	};

	for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
		bool ok = deps[i].needs == WORKLOAD_KEY_PATTERN
				  ? w->pattern == WORKLOAD_HOTCOLD
				  : w->content == WORKLOAD_CONTENT_MIXED;

		if (is_given(w, deps[i].key) && !ok) {
			mig_error_setg(errp,
				       "Parameter '%s' is only valid with %s "
				       "'%s'",
				       workload_key_names[deps[i].key],
				       workload_key_names[deps[i].needs],
				       deps[i].value);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_fractions(const struct workload_config *w,
			   struct mig_error **errp)
{
	if (w->hot_fraction <= 0 || w->hot_fraction > 1) {
		mig_error_setg(errp, "Parameter 'hot-fraction' expects a "
				     "number greater than 0 and at most 1");
		return -EINVAL;
	}
	if (check_range(w->hot_ratio, 0, 1, "hot-ratio", errp) ||
	    check_range(w->zero_fraction, 0, 1, "zero-fraction", errp) ||
	    check_range(w->text_fraction, 0, 1, "text-fraction", errp))
		return -EINVAL;
	if (w->zero_fraction + w->text_fraction > 1 + 1e-9) {
		mig_error_setg(errp, "Parameters 'zero-fraction' and "
				     "'text-fraction' add up to more than 1");
		return -EINVAL;
	}
	return 0;
}

int workload_validate(const struct workload_config *w, struct mig_error **errp)
{
	int other = first_given(w, WORKLOAD_KEY_PER_VCPU_RATE);

	if (w->idle && other >= 0) {
		mig_error_setg(errp,
			       "Parameter '%s' is not valid with dirty-rate "
			       "'idle'",
			       workload_key_names[other]);
		return -EINVAL;
	}
	if (w->idle)
		return 0;
	if (is_given(w, WORKLOAD_KEY_DIRTY_RATE) &&
	    is_given(w, WORKLOAD_KEY_PER_VCPU_RATE)) {
		mig_error_setg(errp, "Parameters 'dirty-rate' and "
				     "'per-vcpu-rate' are mutually exclusive");
		return -EINVAL;
	}
	if (check_range(w->rate_mb, 0, WORKLOAD_RATE_MAX_MB,
			w->rate_per_vcpu ? "per-vcpu-rate" : "dirty-rate",
			errp))
		return -EINVAL;
	if (w->write_size < 1 || w->write_size > WORKLOAD_PAGE_SIZE) {
		mig_error_setg(errp, "Parameter 'write-size' expects a value "
				     "between 1 and 4096");
		return -EINVAL;
	}
	return check_dependent(w, errp) ?: check_fractions(w, errp);
}

int workload_fit(const struct workload_config *w, uint64_t ram_size,
		 struct mig_error **errp)
{
	if (w->idle || !is_given(w, WORKLOAD_KEY_WORKING_SET))
		return 0;
	if (w->working_set < WORKLOAD_PAGE_SIZE || w->working_set > ram_size) {
		mig_error_setg(errp,
			       "Parameter 'working-set' expects a size between "
			       "4096 and %llu",
			       (unsigned long long)ram_size);
		return -EINVAL;
	}
	return 0;
}

double workload_vcpu_rate(const struct workload_config *w, unsigned nvcpus)
{
	double rate = w->rate_mb * WORKLOAD_MB;

	if (w->idle || rate <= 0)
		return 0;
	return w->rate_per_vcpu || !nvcpus ? rate : rate / nvcpus;
}

/* ---- command line ------------------------------------------------------- */

/* QEMU's keyval number: a finite decimal. */
static int parse_number(const char *key, const char *s, double *out,
			struct mig_error **errp)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v)) {
		mig_error_setg(errp,
			       "Invalid parameter type for '%s', expected: "
			       "number",
			       key);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_enum(const char *key, const char *s, const char *const *names,
		      int *out, struct mig_error **errp)
{
	for (int i = 0; names[i]; i++) {
		if (strcmp(names[i], s) == 0) {
			*out = i;
			return 0;
		}
	}
	mig_error_setg(errp, "Parameter '%s' does not accept value '%s'", key,
		       s);
	return -EINVAL;
}

static int parse_size(const char *key, const char *s, uint64_t *out,
		      struct mig_error **errp)
{
	if (size_parse(s, 'B', out) == 0)
		return 0;
	mig_error_setg(errp, "Parameter '%s' expects size", key);
	return -EINVAL;
}

static int parse_uint(const char *key, const char *s, uint64_t *out,
		      struct mig_error **errp)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (!isdigit((unsigned char)*s) || *end || errno) {
		mig_error_setg(errp, "Parameter '%s' expects uint64", key);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* dirty-rate: a number, or "idle". */
static int parse_rate(struct workload_config *w, const char *s,
		      struct mig_error **errp)
{
	if (strcmp(s, "idle") == 0) {
		w->idle = true;
		return 0;
	}
	if (parse_number("dirty-rate", s, &w->rate_mb, NULL) == 0)
		return 0;
	mig_error_setg(errp, "Parameter 'dirty-rate' expects a number or "
			     "'idle'");
	return -EINVAL;
}

static int parse_key(struct workload_config *w, enum workload_key k,
		     const char *s, struct mig_error **errp)
{
	const char *key = workload_key_names[k];
	int e = 0, ret;

	switch (k) {
	case WORKLOAD_KEY_DIRTY_RATE:
		return parse_rate(w, s, errp);
	case WORKLOAD_KEY_PER_VCPU_RATE:
		w->rate_per_vcpu = true;
		return parse_number(key, s, &w->rate_mb, errp);
	case WORKLOAD_KEY_WORKING_SET:
		return parse_size(key, s, &w->working_set, errp);
	case WORKLOAD_KEY_PATTERN:
		ret = parse_enum(key, s, workload_pattern_names, &e, errp);
		w->pattern = (enum workload_pattern)e;
		return ret;
	case WORKLOAD_KEY_CONTENT:
		ret = parse_enum(key, s, workload_content_names, &e, errp);
		w->content = (enum workload_content)e;
		return ret;
	case WORKLOAD_KEY_HOT_FRACTION:
		return parse_number(key, s, &w->hot_fraction, errp);
	case WORKLOAD_KEY_HOT_RATIO:
		return parse_number(key, s, &w->hot_ratio, errp);
	case WORKLOAD_KEY_ZERO_FRACTION:
		return parse_number(key, s, &w->zero_fraction, errp);
	case WORKLOAD_KEY_TEXT_FRACTION:
		return parse_number(key, s, &w->text_fraction, errp);
	case WORKLOAD_KEY_WRITE_SIZE:
		return parse_size(key, s, &w->write_size, errp);
	case WORKLOAD_KEY_SEED:
		return parse_uint(key, s, &w->seed, errp);
	case WORKLOAD_KEY_PASSES:
		return parse_uint(key, s, &w->passes, errp);
	case WORKLOAD_KEY__MAX:
		break;
	}
	return -EINVAL;
}

static int parse_keys(struct workload_config *w, struct opts *o,
		      struct mig_error **errp)
{
	const char *bad;

	for (int k = 0; k < WORKLOAD_KEY__MAX; k++) {
		const char *s = opts_get(o, workload_key_names[k]);

		if (!s)
			continue;
		w->given |= 1u << k;
		if (parse_key(w, (enum workload_key)k, s, errp) < 0)
			return -EINVAL;
	}
	bad = opts_first_unused(o);
	if (bad) {
		mig_error_setg(errp, "Invalid parameter '%s'", bad);
		return -EINVAL;
	}
	return 0;
}

int workload_parse(struct workload_config *w, const char *text,
		   struct mig_error **errp)
{
	struct opts *o = opts_parse(text, "dirty-rate", errp);
	int ret;

	if (!o)
		return -EINVAL;
	workload_config_active(w);
	ret = parse_keys(w, o, errp);
	opts_free(o);
	return ret ?: workload_validate(w, errp);
}
