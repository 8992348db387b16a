/* migcfg_rules.c — QEMU 9.0's validation rules for migration parameters
 * (migrate_params_check: ranges, special cases, the order in which they are
 * tested) and capability combinations (migrate_caps_check), plus the
 * capabilities migd refuses. Pure functions over a configuration; the
 * tables they use are in migcfg.c. Control thread only. */
#include "control/migcfg_priv.h"

#define TARGET_PAGE_SIZE 4096ull

/* ---- parameter checks -------------------------------------------------- */

bool migcfg_check_xbzrle_cache_size(const struct mig_params *p,
				    struct mig_error **errp)
{
	uint64_t v = p->num[MIG_PARAM_XBZRLE_CACHE_SIZE];

	if (v >= TARGET_PAGE_SIZE && !(v & (v - 1)))
		return true;
	mig_error_setg(errp, "Parameter '%s' expects %s", "xbzrle_cache_size",
		       "a power of two no less than the target page size");
	return false;
}

bool migcfg_check_max_cpu_throttle(const struct mig_params *p,
				   struct mig_error **errp)
{
	uint64_t v = p->num[MIG_PARAM_MAX_CPU_THROTTLE];

	if (v >= p->num[MIG_PARAM_CPU_THROTTLE_INITIAL] && v <= 99)
		return true;
	mig_error_setg(errp, "Parameter '%s' expects %s", "max_cpu_throttle",
		       "an integer in the range of cpu_throttle_initial to 99");
	return false;
}

bool migcfg_check_vcpu_dirty_limit(const struct mig_params *p,
				   struct mig_error **errp)
{
	if (p->num[MIG_PARAM_VCPU_DIRTY_LIMIT] >= 1)
		return true;
	mig_error_setg(
		errp,
		"Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s");
	return false;
}

bool migcfg_check_bitmap_mapping(const struct mig_params *p,
				 struct mig_error **errp)
{
	if (!p->bitmap_mapping ||
	    migcfg_bitmap_map_check(p->bitmap_mapping, errp))
		return true;
	mig_error_prepend(errp,
			  "Invalid mapping given for block-bitmap-mapping: ");
	return false;
}

static bool tls_in(const struct mig_params *p)
{
	const char *creds = p->str[MIG_PARAM_TLS_CREDS];

	return creds && *creds;
}

/* The parameter side of the capability rules (both directions are checked:
 * migcfg_caps_check has the capability side). QEMU 9.0 tests mapped-ram
 * against the current rather than the new parameters; migd uses the new
 * ones, so a bad combination is refused when it is made. */
static bool check_param_combinations(const struct mig_params *p,
				     const bool *caps, struct mig_error **errp)
{
	bool compressed = p->num[MIG_PARAM_MULTIFD_COMPRESSION] !=
			  MIG_MULTIFD_COMPRESSION_NONE;

	if (caps[MIG_CAP_ZERO_COPY_SEND] && (compressed || tls_in(p))) {
		mig_error_setg(errp,
			       "Zero copy only available for "
			       "non-compressed non-TLS multifd migration");
		return false;
	}
	if (caps[MIG_CAP_MAPPED_RAM] && (compressed || tls_in(p))) {
		mig_error_setg(errp,
			       "Mapped-ram only available for "
			       "non-compressed non-TLS multifd migration");
		return false;
	}
	return true;
}

#define CHECK_COMBINATIONS (-1)

/* QEMU's migrate_params_check() order, which decides which error a request
 * with several bad values gets. */
static const int param_check_order[] = {
	MIG_PARAM_COMPRESS_LEVEL,
	MIG_PARAM_COMPRESS_THREADS,
	MIG_PARAM_DECOMPRESS_THREADS,
	MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD,
	MIG_PARAM_CPU_THROTTLE_INITIAL,
	MIG_PARAM_CPU_THROTTLE_INCREMENT,
	MIG_PARAM_MAX_BANDWIDTH,
	MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH,
	MIG_PARAM_DOWNTIME_LIMIT,
	MIG_PARAM_MULTIFD_CHANNELS,
	MIG_PARAM_MULTIFD_ZLIB_LEVEL,
	MIG_PARAM_MULTIFD_ZSTD_LEVEL,
	MIG_PARAM_XBZRLE_CACHE_SIZE,
	MIG_PARAM_MAX_CPU_THROTTLE,
	MIG_PARAM_ANNOUNCE_INITIAL,
	MIG_PARAM_ANNOUNCE_MAX,
	MIG_PARAM_ANNOUNCE_ROUNDS,
	MIG_PARAM_ANNOUNCE_STEP,
	MIG_PARAM_BLOCK_BITMAP_MAPPING,
	CHECK_COMBINATIONS,
	MIG_PARAM_X_VCPU_DIRTY_LIMIT_PERIOD,
	MIG_PARAM_VCPU_DIRTY_LIMIT,
};

static bool check_one_param(const struct mig_params *p, enum mig_param id,
			    struct mig_error **errp)
{
	const struct mig_param_desc *d = &mig_param_table[id];
	uint64_t v = p->num[id];

	if (d->check)
		return d->check(p, errp);
	if (!d->range_desc || (v >= d->min && v <= d->max))
		return true;
	mig_error_setg(errp, "Parameter '%s' expects %s", d->check_name,
		       d->range_desc);
	return false;
}

bool migcfg_params_check(const struct mig_params *p, const bool *caps,
			 struct mig_error **errp)
{
	size_t n = sizeof(param_check_order) / sizeof(param_check_order[0]);

	for (size_t i = 0; i < n; i++) {
		int id = param_check_order[i];
		bool ok = id == CHECK_COMBINATIONS
				  ? check_param_combinations(p, caps, errp)
				  : check_one_param(p, id, errp);

		if (!ok)
			return false;
	}
	return true;
}

/* ---- capability checks ------------------------------------------------- */

static bool cap_error(struct mig_error **errp, const char *msg)
{
	mig_error_setg(errp, "%s", msg);
	return false;
}

/* Capabilities migd can never honour, in enum order. */
static bool caps_check_refused(const bool *new_caps, struct mig_error **errp)
{
	for (int i = 0; i < MIG_CAP__MAX; i++)
		if (new_caps[i] && mig_cap_table[i].refusal)
			return cap_error(errp, mig_cap_table[i].refusal);
	return true;
}

/* QEMU 9.0's check_caps_background_snapshot list, in its order. */
static const enum mig_cap bg_snapshot_incompatible[] = {
	MIG_CAP_POSTCOPY_RAM,
	MIG_CAP_DIRTY_BITMAPS,
	MIG_CAP_POSTCOPY_BLOCKTIME,
	MIG_CAP_LATE_BLOCK_ACTIVATE,
	MIG_CAP_RETURN_PATH,
	MIG_CAP_MULTIFD,
	MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
	MIG_CAP_AUTO_CONVERGE,
	MIG_CAP_RELEASE_RAM,
	MIG_CAP_RDMA_PIN_ALL,
	MIG_CAP_COMPRESS,
	MIG_CAP_XBZRLE,
	MIG_CAP_X_COLO,
	MIG_CAP_VALIDATE_UUID,
	MIG_CAP_ZERO_COPY_SEND,
};

/* postcopy-ram and background-snapshot (QEMU 10.1's rules for postcopy:
 * the return path is opened for postcopy-ram without the capability, as
 * QEMU does). QEMU also probes the host
 * (userfaultfd) here; migd checks that when a migration starts, because
 * its guest RAM layout is known only then. */
static bool caps_check_postcopy_bg(const bool *c, struct mig_error **errp)
{
	size_t n = sizeof(bg_snapshot_incompatible) /
		   sizeof(bg_snapshot_incompatible[0]);

	if (c[MIG_CAP_POSTCOPY_RAM] && c[MIG_CAP_X_IGNORE_SHARED])
		return cap_error(
			errp, "Postcopy is not compatible with ignore-shared");
	/* multifd + postcopy-ram: allowed as in QEMU 10.1 (10.0 refused it
	 * with "Postcopy is not yet compatible with multifd"). */
	if (!c[MIG_CAP_BACKGROUND_SNAPSHOT])
		return true;
	for (size_t i = 0; i < n; i++) {
		if (c[bg_snapshot_incompatible[i]]) {
			mig_error_setg(
				errp,
				"Background-snapshot is not compatible "
				"with %s",
				mig_cap_names[bg_snapshot_incompatible[i]]);
			return false;
		}
	}
	return true;
}

static bool caps_check_channels(const struct mig_config *cfg, const bool *c,
				const struct mig_params *p,
				struct mig_error **errp)
{
	bool compressed = p->num[MIG_PARAM_MULTIFD_COMPRESSION] !=
			  MIG_MULTIFD_COMPRESSION_NONE;

	if (c[MIG_CAP_ZERO_COPY_SEND] &&
	    (!c[MIG_CAP_MULTIFD] || c[MIG_CAP_COMPRESS] || c[MIG_CAP_XBZRLE] ||
	     compressed || tls_in(p)))
		return cap_error(errp,
				 "Zero copy only available for "
				 "non-compressed non-TLS multifd migration");
	if (c[MIG_CAP_POSTCOPY_PREEMPT]) {
		if (!c[MIG_CAP_POSTCOPY_RAM])
			return cap_error(
				errp, "Postcopy preempt requires postcopy-ram");
		if (c[MIG_CAP_COMPRESS])
			return cap_error(errp,
					 "Postcopy preempt not compatible "
					 "with compress");
		if (cfg->incoming_started)
			return cap_error(errp, "Postcopy preempt must be set "
					       "before incoming starts");
	}
	if (c[MIG_CAP_MULTIFD]) {
		if (c[MIG_CAP_COMPRESS])
			return cap_error(
				errp,
				"Multifd is not compatible with compress");
		if (cfg->incoming_started)
			return cap_error(errp, "Multifd must be set before "
					       "incoming starts");
	}
	return true;
}

/* QEMU additionally requires KVM's dirty ring for dirty-limit. migd's guest
 * keeps its own exact per-vCPU dirty log, so dirty-limit works without it. */
static bool caps_check_misc(const bool *c, const struct mig_params *p,
			    struct mig_error **errp)
{
	if (c[MIG_CAP_SWITCHOVER_ACK] && !c[MIG_CAP_RETURN_PATH])
		return cap_error(errp, "Capability 'switchover-ack' requires "
				       "capability 'return-path'");
	if (c[MIG_CAP_DIRTY_LIMIT] && c[MIG_CAP_AUTO_CONVERGE])
		return cap_error(errp,
				 "dirty-limit conflicts with auto-converge "
				 "either of then available currently");
	if (c[MIG_CAP_MULTIFD] && c[MIG_CAP_XBZRLE])
		return cap_error(errp, "Multifd is not compatible with xbzrle");
	if (c[MIG_CAP_COMPRESS] && c[MIG_CAP_XBZRLE])
		return cap_error(errp,
				 "Compression is not compatible with xbzrle");
	if (!c[MIG_CAP_MAPPED_RAM])
		return true;
	if (c[MIG_CAP_XBZRLE])
		return cap_error(errp, "Mapped-ram migration is incompatible "
				       "with xbzrle");
	if (c[MIG_CAP_COMPRESS])
		return cap_error(errp, "Mapped-ram migration is incompatible "
				       "with compression");
	if (c[MIG_CAP_POSTCOPY_RAM])
		return cap_error(errp, "Mapped-ram migration is incompatible "
				       "with postcopy");
	/* The capability side of the parameter rule (QEMU 9.0 only checks
	 * it when parameters change). */
	return check_param_combinations(p, c, errp);
}

bool migcfg_caps_check(const struct mig_config *cfg, const bool *old_caps,
		       const bool *new_caps, const struct mig_params *p,
		       struct mig_error **errp)
{
	(void)old_caps; /* QEMU uses it only for the postcopy host probe */
	return caps_check_refused(new_caps, errp) &&
	       caps_check_postcopy_bg(new_caps, errp) &&
	       caps_check_channels(cfg, new_caps, p, errp) &&
	       caps_check_misc(new_caps, p, errp);
}
