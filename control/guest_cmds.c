/* guest_cmds.c — x-guest-workload and x-query-ram-digest (see
 * guest_cmds.h). Arguments are read with QEMU's visitor messages into a
 * struct workload_config; guest/workload.c validates it the same way it
 * validates -workload. Digests are computed here, on the control thread,
 * over live RAM. Control thread only. */
#include "control/guest_cmds.h"

#include <errno.h>
#include <stdlib.h>
#include <jansson.h>
#include <string.h>

#include "control/migd.h"
#include "control/postcopy_dst.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "guest/digest.h"
#include "guest/guest.h"
#include "guest/probe.h"
#include "guest/vcpu.h"
#include "guest/workload.h"

/* ---- x-guest-workload: arguments ---------------------------------------- */

static bool read_rate(struct qapi_in *in, struct workload_config *w,
		      struct mig_error **errp)
{
	json_t *v = NULL;

	if (!qapi_read_any(in, "dirty-rate", &v, errp))
		return false;
	if (json_is_string(v) && !strcmp(json_string_value(v), "idle")) {
		w->idle = true;
		return true;
	}
	if (json_is_number(v)) {
		w->rate_mb = json_number_value(v);
		return true;
	}
	mig_error_setg(errp, "Parameter 'dirty-rate' expects a number or "
			     "'idle'");
	return false;
}

static bool read_enum_key(struct qapi_in *in, enum workload_key k,
			  struct workload_config *w, struct mig_error **errp)
{
	int e = 0;

	if (k == WORKLOAD_KEY_PATTERN) {
		if (!qapi_read_enum(in, "pattern", workload_pattern_names, &e,
				    errp))
			return false;
		w->pattern = (enum workload_pattern)e;
		return true;
	}
	if (!qapi_read_enum(in, "content", workload_content_names, &e, errp))
		return false;
	w->content = (enum workload_content)e;
	return true;
}

static bool read_key(struct qapi_in *in, enum workload_key k,
		     struct workload_config *w, struct mig_error **errp)
{
	const char *name = workload_key_names[k];

	switch (k) {
	case WORKLOAD_KEY_DIRTY_RATE:
		return read_rate(in, w, errp);
	case WORKLOAD_KEY_PER_VCPU_RATE:
		w->rate_per_vcpu = true;
		return qapi_read_number(in, name, &w->rate_mb, errp);
	case WORKLOAD_KEY_WORKING_SET:
		return qapi_read_uint64(in, name, &w->working_set, errp);
	case WORKLOAD_KEY_PATTERN:
	case WORKLOAD_KEY_CONTENT:
		return read_enum_key(in, k, w, errp);
	case WORKLOAD_KEY_HOT_FRACTION:
		return qapi_read_number(in, name, &w->hot_fraction, errp);
	case WORKLOAD_KEY_HOT_RATIO:
		return qapi_read_number(in, name, &w->hot_ratio, errp);
	case WORKLOAD_KEY_ZERO_FRACTION:
		return qapi_read_number(in, name, &w->zero_fraction, errp);
	case WORKLOAD_KEY_TEXT_FRACTION:
		return qapi_read_number(in, name, &w->text_fraction, errp);
	case WORKLOAD_KEY_WRITE_SIZE:
		return qapi_read_uint64(in, name, &w->write_size, errp);
	case WORKLOAD_KEY_SEED:
		return qapi_read_uint64(in, name, &w->seed, errp);
	case WORKLOAD_KEY_PASSES:
		return qapi_read_uint64(in, name, &w->passes, errp);
	case WORKLOAD_KEY__MAX:
		break;
	}
	return false;
}

static int read_workload(json_t *args, struct workload_config *w,
			 struct mig_error **errp)
{
	struct qapi_in in;
	bool ok = true;

	workload_config_active(w);
	qapi_in_init(&in, args);
	for (int k = 0; ok && k < WORKLOAD_KEY__MAX; k++) {
		if (!qapi_has(&in, workload_key_names[k]))
			continue;
		w->given |= 1u << k;
		ok = read_key(&in, (enum workload_key)k, w, errp);
	}
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	return ok ? workload_validate(w, errp) : -EINVAL;
}

/* ---- x-guest-workload: reply -------------------------------------------- */

static void add_workload(json_t *r, const struct workload_config *w,
			 unsigned ncpus, uint64_t ram_size)
{
	double per_vcpu = workload_vcpu_rate(w, ncpus) / WORKLOAD_MB;

	if (w->idle) {
		json_object_set_new(r, "dirty-rate", json_string("idle"));
		return;
	}
	json_object_set_new(r, "dirty-rate", json_real(per_vcpu * ncpus));
	json_object_set_new(r, "per-vcpu-rate", json_real(per_vcpu));
	json_object_set_new(
		r, "working-set",
		json_integer((json_int_t)(w->working_set ? w->working_set
							 : ram_size)));
	json_object_set_new(r, "pattern",
			    json_string(workload_pattern_names[w->pattern]));
	if (w->pattern == WORKLOAD_HOTCOLD) {
		json_object_set_new(r, "hot-fraction",
				    json_real(w->hot_fraction));
		json_object_set_new(r, "hot-ratio", json_real(w->hot_ratio));
	}
	json_object_set_new(r, "content",
			    json_string(workload_content_names[w->content]));
	if (w->content == WORKLOAD_CONTENT_MIXED) {
		json_object_set_new(r, "zero-fraction",
				    json_real(w->zero_fraction));
		json_object_set_new(r, "text-fraction",
				    json_real(w->text_fraction));
	}
	json_object_set_new(r, "write-size",
			    json_integer((json_int_t)w->write_size));
	json_object_set_new(r, "seed", json_integer((json_int_t)w->seed));
	if (w->passes)
		json_object_set_new(r, "passes",
				    json_integer((json_int_t)w->passes));
}

/* *finished: every vCPU made all its passes. */
static json_t *vcpus_json(struct vcpus *v, bool *finished)
{
	json_t *list = json_array();

	*finished = true;
	for (unsigned i = 0; list && i < vcpus_count(v); i++) {
		struct vcpu_progress p;

		vcpus_get_progress(v, i, &p);
		*finished = *finished && p.finished;
		json_array_append_new(
			list,
			json_pack("{s:i,s:I,s:I,s:I}", "cpu", (int)i,
				  "bytes-written", (json_int_t)p.bytes_written,
				  "rate", (json_int_t)p.rate, "throttle-ns",
				  (json_int_t)vcpus_get_throttle(v, i)));
	}
	return list;
}

static json_t *workload_state(struct guest *g)
{
	struct workload_config w;
	json_t *r = json_object();
	bool finished;

	if (!r)
		return NULL;
	vcpus_get_workload(g->vcpus, &w);
	add_workload(r, &w, vcpus_count(g->vcpus), guest_ram_size(g));
	json_object_set_new(r, "vcpus", vcpus_json(g->vcpus, &finished));
	if (w.passes && !w.idle)
		json_object_set_new(r, "finished", json_boolean(finished));
	return r;
}

static json_t *cmd_guest_workload(struct migd *md, struct qmp_monitor *mon,
				  json_t *args, struct mig_error **errp)
{
	struct workload_config w;

	if (!md->guest || !md->guest->vcpus) {
		mig_error_setg(errp, "The guest has no vCPUs");
		return NULL;
	}
	if (json_object_size(args)) {
		if (read_workload(args, &w, errp) < 0 ||
		    vcpus_set_workload(md->guest->vcpus, &w, errp) < 0)
			return NULL;
	}
	return workload_state(md->guest);
}

/* ---- x-query-ram-digest ------------------------------------------------- */

static json_t *block_digest(struct ram_block *b, enum ram_digest_alg alg,
			    struct mig_error **errp)
{
	uint8_t digest[RAM_DIGEST_MAX_LEN];
	char hex[RAM_DIGEST_HEX_MAX];

	if (ram_digest(b->host, b->used_length, alg, 0, digest, errp) < 0)
		return NULL;
	ram_digest_hex(digest, ram_digest_len(alg), hex);
	return json_pack("{s:s,s:I,s:s,s:s}", "block", b->name, "size",
			 (json_int_t)b->used_length, "algorithm",
			 ram_digest_alg_names[alg], "digest", hex);
}

static json_t *cmd_query_ram_digest(struct migd *md, struct qmp_monitor *mon,
				    json_t *args, struct mig_error **errp)
{
	int alg = RAM_DIGEST_XXH3_128;
	struct ram_block *b;
	struct qapi_in in;
	json_t *list;
	bool ok = true;

	qapi_in_init(&in, args);
	if (qapi_has(&in, "algorithm"))
		ok = qapi_read_enum(&in, "algorithm", ram_digest_alg_names,
				    &alg, errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok)
		return NULL;
	if (incoming_postcopy_ram_missing(md)) { /* reading would block */
		mig_error_setg(errp, "Guest RAM is incomplete: postcopy has "
				     "not received every page");
		return NULL;
	}
	list = json_array();
	if (md->guest)
		guest_for_each_block(md->guest, b)
		{
			json_t *d =
				block_digest(b, (enum ram_digest_alg)alg, errp);

			if (!d) {
				json_decref(list);
				return NULL;
			}
			json_array_append_new(list, d);
		}
	return list;
}

/* ---- x-query-guest-probe (workload content=probe) ----------------------- */

static json_t *probe_histogram(const struct probe_hist *h)
{
	json_t *list = json_array();

	for (unsigned b = 0; list && b < PROBE_HIST_BUCKETS; b++) {
		if (!h->buckets[b])
			continue;
		json_array_append_new(
			list, json_pack("{s:I,s:I,s:I}", "low-ns",
					(json_int_t)probe_hist_bucket_low(b),
					"width-ns",
					(json_int_t)probe_hist_bucket_width(b),
					"count", (json_int_t)h->buckets[b]));
	}
	return list;
}

static void set_ns(json_t *r, const char *key, uint64_t ns)
{
	json_int_t v = ns > INT64_MAX ? INT64_MAX : (json_int_t)ns;

	json_object_set_new(r, key, json_integer(v));
}

static json_t *probe_json(const struct probe_stats *st, bool active)
{
	const struct probe_hist *h = &st->hist;
	json_t *r = json_object();

	json_object_set_new(r, "active", json_boolean(active));
	json_object_set_new(r, "samples", json_integer((json_int_t)h->count));
	json_object_set_new(r, "resident-picks",
			    json_integer((json_int_t)st->resident));
	json_object_set_new(r, "not-found",
			    json_integer((json_int_t)st->not_found));
	if (h->count) {
		set_ns(r, "min-ns", h->min_ns);
		set_ns(r, "max-ns", h->max_ns);
		set_ns(r, "mean-ns", h->sum_ns / h->count);
		set_ns(r, "median-ns", probe_hist_percentile(h, 50));
		set_ns(r, "p90-ns", probe_hist_percentile(h, 90));
		set_ns(r, "p99-ns", probe_hist_percentile(h, 99));
		set_ns(r, "p999-ns", probe_hist_percentile(h, 99.9));
	}
	json_object_set_new(r, "histogram", probe_histogram(h));
	return r;
}

static json_t *cmd_query_guest_probe(struct migd *md, struct qmp_monitor *mon,
				     json_t *args, struct mig_error **errp)
{
	struct workload_config w;
	struct probe_stats *st;
	struct qapi_in in;
	json_t *r;
	bool ok;

	qapi_in_init(&in, args);
	ok = qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok)
		return NULL;
	if (!md->guest || !md->guest->vcpus) {
		mig_error_setg(errp, "The guest has no vCPUs");
		return NULL;
	}
	st = malloc(sizeof(*st)); /* ~15 KiB: not on the stack */
	if (!st) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	vcpus_get_probe(md->guest->vcpus, st);
	vcpus_get_workload(md->guest->vcpus, &w);
	r = probe_json(st, !w.idle && w.content == WORKLOAD_CONTENT_PROBE);
	free(st);
	return r;
}

static const struct qmp_command guest_commands[] = {
	{"x-guest-workload", cmd_guest_workload, 0},
	{"x-query-guest-probe", cmd_query_guest_probe, 0},
	{"x-query-ram-digest", cmd_query_ram_digest, 0},
};

void guest_cmds_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, guest_commands,
		     sizeof(guest_commands) / sizeof(guest_commands[0]));
}
