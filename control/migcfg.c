/* migcfg.c — the migration configuration model: capability, parameter and
 * knob tables with QEMU 9.0's defaults, all-or-nothing updates, snapshots
 * and getters. The rules themselves are in migcfg_rules.c; QMP parsing in
 * migcfg_qmp.c; -global strings in migcfg_global.c. Control thread only;
 * snapshots belong to whichever thread holds them. */
#include "control/migcfg_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024ull)

const char *const mig_status_names[] = {
	"none",
	"setup",
	"cancelling",
	"cancelled",
	"active",
	"postcopy-active",
	"postcopy-paused",
	"postcopy-recover-setup",
	"postcopy-recover",
	"completed",
	"failed",
	"colo",
	"pre-switchover",
	"device",
	"wait-unplug",
	NULL,
};

const char *const mig_cap_names[] = {
	"xbzrle",
	"rdma-pin-all",
	"auto-converge",
	"zero-blocks",
	"compress",
	"events",
	"postcopy-ram",
	"x-colo",
	"release-ram",
	"block",
	"return-path",
	"pause-before-switchover",
	"multifd",
	"dirty-bitmaps",
	"postcopy-blocktime",
	"late-block-activate",
	"x-ignore-shared",
	"validate-uuid",
	"background-snapshot",
	"zero-copy-send",
	"postcopy-preempt",
	"switchover-ack",
	"dirty-limit",
	"mapped-ram",
	NULL,
};

const char *const mig_multifd_compression_names[] = {
	"none",
	"zlib",
	"zstd",
	NULL,
};
const char *const mig_mode_names[] = {"normal", "cpr-reboot", NULL};
const char *const mig_zero_page_detection_names[] = {
	"none",
	"legacy",
	"multifd",
	NULL,
};

_Static_assert(sizeof(mig_status_names) / sizeof(char *) == MIG_STATUS__MAX + 1,
	       "status names");
_Static_assert(sizeof(mig_cap_names) / sizeof(char *) == MIG_CAP__MAX + 1,
	       "capability names");

bool mig_status_is_running(enum mig_status st)
{
	switch (st) {
	case MIG_STATUS_SETUP:
	case MIG_STATUS_CANCELLING:
	case MIG_STATUS_ACTIVE:
	case MIG_STATUS_POSTCOPY_ACTIVE:
	case MIG_STATUS_POSTCOPY_PAUSED:
	case MIG_STATUS_POSTCOPY_RECOVER_SETUP:
	case MIG_STATUS_POSTCOPY_RECOVER:
	case MIG_STATUS_PRE_SWITCHOVER:
	case MIG_STATUS_DEVICE:
	case MIG_STATUS_WAIT_UNPLUG:
		return true;
	default:
		return false;
	}
}

/* ---- tables ------------------------------------------------------------ */

#define MSG_OLD_COMPRESS                                                       \
	"old compression is deprecated; use multifd compression methods "      \
	"instead"
#define MSG_OLD_BLOCK                                                          \
	"block migration is deprecated; use blockdev-mirror with NBD instead"

/* Ranges and their messages are QEMU 9.0's, including its spelling of the
 * names (underscores) and its quirks ("between 0 and 10000" for a minimum of
 * 1; the unexpanded "(2000 * 1000)"). */
#define RANGE(lo, hi, cname, desc)                                             \
	.min = (lo), .max = (hi), .check_name = (cname), .range_desc = (desc)

const struct mig_param_desc mig_param_table[MIG_PARAM__MAX] = {
	[MIG_PARAM_ANNOUNCE_INITIAL] = {"announce-initial", "announce-initial",
					MIG_PT_SIZE, 50,
					RANGE(0, 100000, "announce_initial",
					      "a value between 0 and 100000")},
	[MIG_PARAM_ANNOUNCE_MAX] = {"announce-max", "announce-max", MIG_PT_SIZE,
				    550,
				    RANGE(0, 100000, "announce_max",
					  "a value between 0 and 100000")},
	[MIG_PARAM_ANNOUNCE_ROUNDS] = {"announce-rounds", "announce-rounds",
				       MIG_PT_SIZE, 5,
				       RANGE(0, 1000, "announce_rounds",
					     "a value between 0 and 1000")},
	[MIG_PARAM_ANNOUNCE_STEP] = {"announce-step", "announce-step",
				     MIG_PT_SIZE, 100,
				     RANGE(1, 10000, "announce_step",
					   "a value between 0 and 10000")},
	[MIG_PARAM_COMPRESS_LEVEL] =
		{"compress-level", "x-compress-level", MIG_PT_U8, 1,
		 RANGE(0, 9, "compress_level", "a value between 0 and 9"),
		 .feature = MIG_FEAT_DEPRECATED, .warn = MSG_OLD_COMPRESS},
	[MIG_PARAM_COMPRESS_THREADS] =
		{"compress-threads", "x-compress-threads", MIG_PT_U8, 8,
		 RANGE(1, 255, "compress_threads", "a value between 1 and 255"),
		 .feature = MIG_FEAT_DEPRECATED, .warn = MSG_OLD_COMPRESS},
	[MIG_PARAM_COMPRESS_WAIT_THREAD] = {"compress-wait-thread",
					    "x-compress-wait-thread",
					    MIG_PT_BOOL, 1,
					    .feature = MIG_FEAT_DEPRECATED,
					    .warn = MSG_OLD_COMPRESS},
	[MIG_PARAM_DECOMPRESS_THREADS] = {"decompress-threads",
					  "x-decompress-threads", MIG_PT_U8, 2,
					  RANGE(1, 255, "decompress_threads",
						"a value between 1 and 255"),
					  .feature = MIG_FEAT_DEPRECATED,
					  .warn = MSG_OLD_COMPRESS},
	[MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD] =
		{"throttle-trigger-threshold", "x-throttle-trigger-threshold",
		 MIG_PT_U8, 50,
		 RANGE(1, 100, "throttle_trigger_threshold",
		       "an integer in the range of 1 to 100")},
	[MIG_PARAM_CPU_THROTTLE_INITIAL] =
		{"cpu-throttle-initial", "x-cpu-throttle-initial", MIG_PT_U8,
		 20,
		 RANGE(1, 99, "cpu_throttle_initial",
		       "an integer in the range of 1 to 99")},
	[MIG_PARAM_CPU_THROTTLE_INCREMENT] =
		{"cpu-throttle-increment", "x-cpu-throttle-increment",
		 MIG_PT_U8, 10,
		 RANGE(1, 99, "cpu_throttle_increment",
		       "an integer in the range of 1 to 99")},
	[MIG_PARAM_CPU_THROTTLE_TAILSLOW] = {"cpu-throttle-tailslow",
					     "x-cpu-throttle-tailslow",
					     MIG_PT_BOOL, 0},
	[MIG_PARAM_TLS_CREDS] = {"tls-creds", "tls-creds", MIG_PT_STR},
	[MIG_PARAM_TLS_HOSTNAME] = {"tls-hostname", "tls-hostname", MIG_PT_STR},
	[MIG_PARAM_TLS_AUTHZ] = {"tls-authz", "tls-authz", MIG_PT_STR},
	/* QEMU's "<= SIZE_MAX" checks cannot fail on a 64-bit host. */
	[MIG_PARAM_MAX_BANDWIDTH] = {"max-bandwidth", "x-max-bandwidth",
				     MIG_PT_SIZE, 128 * MiB},
	[MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH] = {"avail-switchover-bandwidth",
						  "avail-switchover-bandwidth",
						  MIG_PT_SIZE, 0},
	[MIG_PARAM_DOWNTIME_LIMIT] =
		{"downtime-limit", "x-downtime-limit", MIG_PT_U64, 300,
		 RANGE(0, 2000000, "downtime_limit",
		       "an integer in the range of 0 to (2000 * 1000) ms")},
	[MIG_PARAM_X_CHECKPOINT_DELAY] = {"x-checkpoint-delay",
					  "x-checkpoint-delay", MIG_PT_U32,
					  20000, .feature = MIG_FEAT_UNSTABLE},
	[MIG_PARAM_BLOCK_INCREMENTAL] = {"block-incremental", NULL, MIG_PT_BOOL,
					 0, .feature = MIG_FEAT_DEPRECATED,
					 .warn = MSG_OLD_BLOCK},
	[MIG_PARAM_MULTIFD_CHANNELS] = {"multifd-channels", "multifd-channels",
					MIG_PT_U8, 2,
					RANGE(1, 255, "multifd_channels",
					      "a value between 1 and 255")},
	[MIG_PARAM_XBZRLE_CACHE_SIZE] =
		{"xbzrle-cache-size", "xbzrle-cache-size", MIG_PT_SIZE,
		 64 * MiB, .check = migcfg_check_xbzrle_cache_size},
	[MIG_PARAM_MAX_POSTCOPY_BANDWIDTH] = {"max-postcopy-bandwidth",
					      "max-postcopy-bandwidth",
					      MIG_PT_SIZE, 0},
	[MIG_PARAM_MAX_CPU_THROTTLE] = {"max-cpu-throttle", "max-cpu-throttle",
					MIG_PT_U8, 99,
					.check = migcfg_check_max_cpu_throttle},
	[MIG_PARAM_MULTIFD_COMPRESSION] = {"multifd-compression",
					   "multifd-compression", MIG_PT_ENUM,
					   MIG_MULTIFD_COMPRESSION_NONE,
					   mig_multifd_compression_names},
	[MIG_PARAM_MULTIFD_ZLIB_LEVEL] = {"multifd-zlib-level",
					  "multifd-zlib-level", MIG_PT_U8, 1,
					  RANGE(0, 9, "multifd_zlib_level",
						"a value between 0 and 9")},
	[MIG_PARAM_MULTIFD_ZSTD_LEVEL] = {"multifd-zstd-level",
					  "multifd-zstd-level", MIG_PT_U8, 1,
					  RANGE(0, 20, "multifd_zstd_level",
						"a value between 0 and 20")},
	[MIG_PARAM_BLOCK_BITMAP_MAPPING] =
		{"block-bitmap-mapping", NULL, MIG_PT_BITMAP_MAP,
		 .check = migcfg_check_bitmap_mapping},
	[MIG_PARAM_X_VCPU_DIRTY_LIMIT_PERIOD] =
		{"x-vcpu-dirty-limit-period", "x-vcpu-dirty-limit-period",
		 MIG_PT_U64, 1000,
		 RANGE(1, 1000, "x-vcpu-dirty-limit-period",
		       "a value between 1 and 1000"),
		 .feature = MIG_FEAT_UNSTABLE},
	[MIG_PARAM_VCPU_DIRTY_LIMIT] = {"vcpu-dirty-limit", "vcpu-dirty-limit",
					MIG_PT_U64, 1,
					.check = migcfg_check_vcpu_dirty_limit},
	[MIG_PARAM_MODE] = {"mode", "mode", MIG_PT_ENUM, MIG_MODE_NORMAL,
			    mig_mode_names},
	[MIG_PARAM_ZERO_PAGE_DETECTION] = {"zero-page-detection",
					   "zero-page-detection", MIG_PT_ENUM,
					   MIG_ZERO_PAGE_DETECTION_MULTIFD,
					   mig_zero_page_detection_names,
					   .feature = MIG_FEAT_EXTRA},
	[MIG_PARAM_DIRECT_IO] = {"direct-io", NULL, MIG_PT_BOOL, 0,
				 .feature = MIG_FEAT_EXTRA},
};

#define NOT_BLOCK                                                              \
	"; migd has no block devices: migrate disks with "                     \
	"blockdev-mirror over NBD instead"

/* Indexed by enum mig_cap; names are mig_cap_names[]. Property names are
 * QEMU 9.0's (several capabilities have none). */
const struct mig_cap_desc mig_cap_table[MIG_CAP__MAX] = {
	[MIG_CAP_XBZRLE] = {"x-xbzrle"},
	[MIG_CAP_RDMA_PIN_ALL] = {"x-rdma-pin-all"},
	[MIG_CAP_AUTO_CONVERGE] = {"x-auto-converge"},
	[MIG_CAP_ZERO_BLOCKS] =
		{"x-zero-blocks", MIG_FEAT_NONE,
		 "Capability 'zero-blocks' is not supported by migd: it only "
		 "applies to block migration" NOT_BLOCK},
	[MIG_CAP_COMPRESS] =
		{"x-compress", MIG_FEAT_DEPRECATED,
		 "Capability 'compress' is not supported by migd: the legacy "
		 "compression method is deprecated (QEMU 9.1 removed it); "
		 "enable 'multifd' and set parameter 'multifd-compression' to "
		 "'zlib' or 'zstd' instead"},
	[MIG_CAP_EVENTS] = {"x-events"},
	[MIG_CAP_POSTCOPY_RAM] = {"x-postcopy-ram"},
	[MIG_CAP_X_COLO] =
		{"x-colo", MIG_FEAT_UNSTABLE,
		 "Capability 'x-colo' is not supported by migd: COLO needs "
		 "QEMU's replication module and block replication, which migd "
		 "does not have; use a QEMU built with replication support"},
	[MIG_CAP_RELEASE_RAM] = {"x-release-ram"},
	[MIG_CAP_BLOCK] =
		{"x-block", MIG_FEAT_DEPRECATED,
		 "Capability 'block' is not supported by migd: block migration "
		 "is deprecated (QEMU 9.1 removed it)" NOT_BLOCK},
	[MIG_CAP_RETURN_PATH] = {"x-return-path"},
	[MIG_CAP_PAUSE_BEFORE_SWITCHOVER] = {NULL},
	[MIG_CAP_MULTIFD] = {"x-multifd"},
	[MIG_CAP_DIRTY_BITMAPS] = {NULL},
	[MIG_CAP_POSTCOPY_BLOCKTIME] = {NULL},
	[MIG_CAP_LATE_BLOCK_ACTIVATE] = {NULL},
	[MIG_CAP_X_IGNORE_SHARED] = {NULL, MIG_FEAT_UNSTABLE},
	[MIG_CAP_VALIDATE_UUID] = {NULL},
	[MIG_CAP_BACKGROUND_SNAPSHOT] = {"x-background-snapshot"},
	[MIG_CAP_ZERO_COPY_SEND] = {"x-zero-copy-send"},
	[MIG_CAP_POSTCOPY_PREEMPT] = {"x-postcopy-preempt"},
	[MIG_CAP_SWITCHOVER_ACK] = {"x-switchover-ack"},
	[MIG_CAP_DIRTY_LIMIT] = {"x-dirty-limit"},
	[MIG_CAP_MAPPED_RAM] = {"mapped-ram"},
};

const struct mig_knob_desc mig_knob_table[MIG_KNOB__MAX] = {
	[MIG_KNOB_STORE_GLOBAL_STATE] = {"store-global-state", MIG_KT_BOOL, 1},
	[MIG_KNOB_SEND_CONFIGURATION] = {"send-configuration", MIG_KT_BOOL, 1},
	[MIG_KNOB_SEND_SECTION_FOOTER] = {"send-section-footer", MIG_KT_BOOL,
					  1},
	[MIG_KNOB_DECOMPRESS_ERROR_CHECK] = {"decompress-error-check",
					     MIG_KT_BOOL, 1},
	[MIG_KNOB_MULTIFD_FLUSH_AFTER_EACH_SECTION] =
		{"multifd-flush-after-each-section", MIG_KT_BOOL, 0},
	[MIG_KNOB_PREEMPT_PRE_7_2] = {"x-preempt-pre-7-2", MIG_KT_BOOL, 0},
	[MIG_KNOB_SEND_SWITCHOVER_START] = {"send-switchover-start",
					    MIG_KT_BOOL, 1},
	[MIG_KNOB_MULTIFD_CLEAN_TLS_TERMINATION] =
		{"multifd-clean-tls-termination", MIG_KT_BOOL, 1},
	[MIG_KNOB_CLEAR_BITMAP_SHIFT] = {"x-clear-bitmap-shift", MIG_KT_U8, 18},
	[MIG_KNOB_X_INCOMING_IDLE_TIMEOUT] = {"x-incoming-idle-timeout",
					      MIG_KT_U32, 60},
};

/* ---- life cycle ------------------------------------------------------- */

static void params_fini(struct mig_params *p)
{
	for (int i = 0; i < MIG_PARAM__MAX; i++) {
		free(p->str[i]);
		p->str[i] = NULL;
	}
	json_decref(p->bitmap_mapping);
	p->bitmap_mapping = NULL;
}

struct mig_config *mig_config_new(void)
{
	struct mig_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	for (int i = 0; i < MIG_PARAM__MAX; i++) {
		cfg->params.num[i] = mig_param_table[i].def;
		if (mig_param_table[i].type != MIG_PT_STR)
			continue;
		cfg->params.str[i] = strdup("");
		if (!cfg->params.str[i])
			goto err_free;
	}
	for (int i = 0; i < MIG_KNOB__MAX; i++)
		cfg->knobs[i] = mig_knob_table[i].def;
	return cfg;

err_free:
	mig_config_free(cfg);
	return NULL;
}

void mig_config_free(struct mig_config *cfg)
{
	if (!cfg)
		return;
	params_fini(&cfg->params);
	free(cfg);
}

struct mig_config *mig_config_snapshot(const struct mig_config *cfg)
{
	struct mig_config *copy = malloc(sizeof(*copy));

	if (!copy)
		return NULL;
	*copy = *cfg;
	copy->notify = NULL;
	copy->notify_opaque = NULL;
	memset(copy->params.str, 0, sizeof(copy->params.str));
	copy->params.bitmap_mapping = NULL;
	for (int i = 0; i < MIG_PARAM__MAX; i++) {
		if (cfg->params.str[i] &&
		    !(copy->params.str[i] = strdup(cfg->params.str[i])))
			goto err_free;
	}
	if (cfg->params.bitmap_mapping &&
	    !(copy->params.bitmap_mapping =
		      json_deep_copy(cfg->params.bitmap_mapping)))
		goto err_free;
	return copy;

err_free:
	mig_config_free(copy);
	return NULL;
}

void mig_config_set_incoming_started(struct mig_config *cfg, bool started)
{
	cfg->incoming_started = started;
}

void mig_config_set_notify(struct mig_config *cfg, mig_config_notify_fn fn,
			   void *opaque)
{
	cfg->notify = fn;
	cfg->notify_opaque = opaque;
}

static void notify_change(struct mig_config *cfg)
{
	if (cfg->notify)
		cfg->notify(cfg->notify_opaque, cfg);
}

int mig_config_check(const struct mig_config *cfg, struct mig_error **errp)
{
	static const bool all_off[MIG_CAP__MAX];

	if (!migcfg_params_check(&cfg->params, cfg->caps, errp) ||
	    !migcfg_caps_check(cfg, all_off, cfg->caps, &cfg->params, errp))
		return -EINVAL;
	return 0;
}

/* ---- changes ------------------------------------------------------------ */

int mig_config_set_caps(struct mig_config *cfg,
			const bool new_caps[MIG_CAP__MAX],
			struct mig_error **errp)
{
	if (!migcfg_caps_check(cfg, cfg->caps, new_caps, &cfg->params, errp))
		return -EINVAL;
	memcpy(cfg->caps, new_caps, sizeof(cfg->caps));
	notify_change(cfg);
	return 0;
}

int mig_config_set_cap(struct mig_config *cfg, enum mig_cap cap, bool on,
		       struct mig_error **errp)
{
	bool caps[MIG_CAP__MAX];

	if ((unsigned)cap >= MIG_CAP__MAX) {
		mig_error_setg(errp, "Invalid capability %d", (int)cap);
		return -EINVAL;
	}
	memcpy(caps, cfg->caps, sizeof(caps));
	caps[cap] = on;
	return mig_config_set_caps(cfg, caps, errp);
}

/* The model API may be called by code other than the QMP reader, so values
 * are checked against their QAPI types here too. */
static bool value_fits(const struct mig_param_desc *d, uint64_t v)
{
	size_t n = 0;

	switch (d->type) {
	case MIG_PT_U8:
		return v <= UINT8_MAX;
	case MIG_PT_U32:
		return v <= UINT32_MAX;
	case MIG_PT_BOOL:
		return v <= 1;
	case MIG_PT_ENUM:
		while (d->enum_values[n])
			n++;
		return v < n;
	default:
		return true;
	}
}

/* Builds the would-be parameters (borrowing strings from upd). */
static bool test_apply(const struct mig_config *cfg,
		       const struct mig_param_update *upd,
		       struct mig_params *test, struct mig_error **errp)
{
	*test = cfg->params;
	for (int i = 0; i < MIG_PARAM__MAX; i++) {
		const struct mig_param_desc *d = &mig_param_table[i];

		if (!upd->has[i])
			continue;
		if (d->type == MIG_PT_STR) {
			test->str[i] = (char *)(upd->str[i] ? upd->str[i] : "");
		} else if (d->type == MIG_PT_BITMAP_MAP) {
			test->bitmap_mapping = upd->bitmap_mapping;
		} else if (value_fits(d, upd->num[i])) {
			test->num[i] = upd->num[i];
		} else {
			mig_error_setg(errp, "Parameter '%s' is out of range",
				       d->name);
			return false;
		}
	}
	if (upd->has[MIG_PARAM_BLOCK_BITMAP_MAPPING] &&
	    !json_is_array(upd->bitmap_mapping)) {
		mig_error_setg(errp,
			       "Invalid parameter type for '%s', "
			       "expected: array",
			       "block-bitmap-mapping");
		return false;
	}
	return true;
}

/* Copies everything the update needs before anything is changed, so that
 * an allocation failure leaves the configuration untouched. */
static int prepare_copies(const struct mig_param_update *upd,
			  char *strs[MIG_PARAM__MAX], json_t **map)
{
	for (int i = 0; i < MIG_PARAM__MAX; i++) {
		if (!upd->has[i] || mig_param_table[i].type != MIG_PT_STR)
			continue;
		strs[i] = strdup(upd->str[i] ? upd->str[i] : "");
		if (!strs[i])
			return -ENOMEM;
	}
	if (upd->has[MIG_PARAM_BLOCK_BITMAP_MAPPING]) {
		*map = json_deep_copy(upd->bitmap_mapping);
		if (!*map)
			return -ENOMEM;
	}
	return 0;
}

static void commit_update(struct mig_config *cfg,
			  const struct mig_param_update *upd,
			  char *strs[MIG_PARAM__MAX], json_t *map)
{
	struct mig_params *p = &cfg->params;

	for (int i = 0; i < MIG_PARAM__MAX; i++) {
		const struct mig_param_desc *d = &mig_param_table[i];

		if (!upd->has[i])
			continue;
		if (d->warn)
			fprintf(stderr, "migd: warning: %s\n", d->warn);
		if (d->type == MIG_PT_STR) {
			free(p->str[i]);
			p->str[i] = strs[i];
		} else if (d->type == MIG_PT_BITMAP_MAP) {
			json_decref(p->bitmap_mapping);
			p->bitmap_mapping = map;
		} else {
			p->num[i] = upd->num[i];
		}
	}
}

int mig_config_set_params(struct mig_config *cfg,
			  const struct mig_param_update *upd,
			  struct mig_error **errp)
{
	char *strs[MIG_PARAM__MAX] = {NULL};
	struct mig_params test;
	json_t *map = NULL;
	int ret;

	if (!test_apply(cfg, upd, &test, errp) ||
	    !migcfg_params_check(&test, cfg->caps, errp))
		return -EINVAL;
	ret = prepare_copies(upd, strs, &map);
	if (ret < 0) {
		mig_error_setg(errp, "Out of memory");
		goto err_free;
	}
	commit_update(cfg, upd, strs, map);
	notify_change(cfg);
	return 0;

err_free:
	for (int i = 0; i < MIG_PARAM__MAX; i++)
		free(strs[i]);
	json_decref(map);
	return ret;
}

/* ---- getters ------------------------------------------------------------ */

bool mig_config_cap(const struct mig_config *cfg, enum mig_cap cap)
{
	return (unsigned)cap < MIG_CAP__MAX && cfg->caps[cap];
}

uint64_t mig_config_param(const struct mig_config *cfg, enum mig_param p)
{
	if ((unsigned)p >= MIG_PARAM__MAX)
		return 0;
	return cfg->params.num[p];
}

const char *mig_config_param_str(const struct mig_config *cfg, enum mig_param p)
{
	if ((unsigned)p >= MIG_PARAM__MAX || !cfg->params.str[p])
		return "";
	return cfg->params.str[p];
}

const json_t *mig_config_block_bitmap_mapping(const struct mig_config *cfg)
{
	return cfg->params.bitmap_mapping;
}

bool mig_config_knob(const struct mig_config *cfg, enum mig_knob knob)
{
	return (unsigned)knob < MIG_KNOB__MAX && cfg->knobs[knob] != 0;
}

unsigned mig_config_clear_bitmap_shift(const struct mig_config *cfg)
{
	uint64_t shift = cfg->knobs[MIG_KNOB_CLEAR_BITMAP_SHIFT];

	return shift < 6 ? 6 : shift > 31 ? 31 : (unsigned)shift;
}

unsigned mig_config_incoming_idle_timeout(const struct mig_config *cfg)
{
	return (unsigned)cfg->knobs[MIG_KNOB_X_INCOMING_IDLE_TIMEOUT];
}

bool mig_config_tls_enabled(const struct mig_config *cfg)
{
	const char *creds = cfg->params.str[MIG_PARAM_TLS_CREDS];

	return creds && *creds;
}

unsigned mig_config_multifd_channels(const struct mig_config *cfg)
{
	return (unsigned)cfg->params.num[MIG_PARAM_MULTIFD_CHANNELS];
}

enum mig_multifd_compression
mig_config_multifd_compression(const struct mig_config *cfg)
{
	return cfg->params.num[MIG_PARAM_MULTIFD_COMPRESSION];
}

enum mig_zero_page_detection
mig_config_zero_page_detection(const struct mig_config *cfg)
{
	return cfg->params.num[MIG_PARAM_ZERO_PAGE_DETECTION];
}

enum mig_mode mig_config_mode(const struct mig_config *cfg)
{
	return cfg->params.num[MIG_PARAM_MODE];
}

uint64_t mig_config_max_bandwidth(const struct mig_config *cfg)
{
	return cfg->params.num[MIG_PARAM_MAX_BANDWIDTH];
}

uint64_t mig_config_downtime_limit(const struct mig_config *cfg)
{
	return cfg->params.num[MIG_PARAM_DOWNTIME_LIMIT];
}

bool mig_config_direct_io(const struct mig_config *cfg)
{
	return cfg->params.num[MIG_PARAM_DIRECT_IO] &&
	       cfg->caps[MIG_CAP_MAPPED_RAM] && cfg->caps[MIG_CAP_MULTIFD];
}
