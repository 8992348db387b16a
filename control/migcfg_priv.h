/* migcfg_priv.h — what migcfg.c, migcfg_global.c and migcfg_qmp.c share:
 * the struct mig_config layout and the descriptor tables that drive
 * defaults, validation, -global properties and QMP input/output.
 * Not for other modules: they use migcfg.h. Control thread only. */
#ifndef MIGD_CONTROL_MIGCFG_PRIV_H
#define MIGD_CONTROL_MIGCFG_PRIV_H

#include "control/migcfg.h"

/* Value types of parameters, as the QAPI schema declares them. */
enum mig_ptype {
	MIG_PT_SIZE, /* 'size': uint64, -global accepts K/M/G suffixes */
	MIG_PT_U8,
	MIG_PT_U32,
	MIG_PT_U64,
	MIG_PT_BOOL,
	MIG_PT_STR, /* StrOrNull on input, str on output */
	MIG_PT_ENUM,
	MIG_PT_BITMAP_MAP, /* [BitmapMigrationNodeAlias] */
};

/* Schema features, for the docs table and deprecation warnings. */
enum mig_feature {
	MIG_FEAT_NONE,
	MIG_FEAT_DEPRECATED,
	MIG_FEAT_UNSTABLE,
	MIG_FEAT_EXTRA, /* in QEMU (9.0/9.1) but not in migd's spec file */
};

struct mig_params {
	uint64_t num[MIG_PARAM__MAX];
	char *str[MIG_PARAM__MAX]; /* tls-*: never NULL in a live config */
	json_t *bitmap_mapping;	   /* NULL until first set */
};

struct mig_config {
	bool caps[MIG_CAP__MAX];
	struct mig_params params;
	uint64_t knobs[MIG_KNOB__MAX];
	bool incoming_started;
	mig_config_notify_fn notify;
	void *notify_opaque;
};

struct mig_param_desc {
	const char *name; /* QMP member name */
	const char *prop; /* -global property name, NULL if none */
	enum mig_ptype type;
	uint64_t def; /* default (numbers, bools, enum index) */
	const char *const *enum_values; /* MIG_PT_ENUM */
	/* Plain range check (when range_desc is set): QEMU's message is
	 * "Parameter '<check_name>' expects <range_desc>". */
	uint64_t min, max;
	const char *check_name;
	const char *range_desc;
	/* Special rule instead of the plain range (NULL if none). */
	bool (*check)(const struct mig_params *p, struct mig_error **errp);
	enum mig_feature feature;
	const char *warn; /* deprecation warning printed when set */
};

/* Indexed by enum mig_cap; the names are mig_cap_names[]. */
struct mig_cap_desc {
	const char *prop; /* -global property name, NULL if none */
	enum mig_feature feature;
	const char *refusal; /* set: migd refuses to enable it (why) */
};

enum mig_knob_type { MIG_KT_BOOL, MIG_KT_U8, MIG_KT_U32 };

struct mig_knob_desc {
	const char *prop;
	enum mig_knob_type type;
	uint64_t def;
};

extern const struct mig_param_desc mig_param_table[MIG_PARAM__MAX];
extern const struct mig_cap_desc mig_cap_table[MIG_CAP__MAX];
extern const struct mig_knob_desc mig_knob_table[MIG_KNOB__MAX];

/* Special parameter rules referenced by mig_param_table (migcfg_rules.c). */
bool migcfg_check_xbzrle_cache_size(const struct mig_params *p,
				    struct mig_error **errp);
bool migcfg_check_max_cpu_throttle(const struct mig_params *p,
				   struct mig_error **errp);
bool migcfg_check_vcpu_dirty_limit(const struct mig_params *p,
				   struct mig_error **errp);
bool migcfg_check_bitmap_mapping(const struct mig_params *p,
				 struct mig_error **errp);

/* Parameter checks of a complete set (QEMU's migrate_params_check) against
 * the capabilities caps. */
bool migcfg_params_check(const struct mig_params *p, const bool *caps,
			 struct mig_error **errp);
/* QEMU's migrate_caps_check with the parameters p in force. */
bool migcfg_caps_check(const struct mig_config *cfg, const bool *old_caps,
		       const bool *new_caps, const struct mig_params *p,
		       struct mig_error **errp);
/* block-bitmap-mapping structural rules (QEMU's alias-map checks). */
bool migcfg_bitmap_map_check(const json_t *map, struct mig_error **errp);

#endif
