/* migcfg.h — migration capabilities and parameters: QEMU's defaults,
 * validation, combination rules, -global migration.PROP properties, and the
 * QMP commands that read and change them. Also the MigrationStatus enum.
 * Control thread only; migration threads get a snapshot copy at start. */
#ifndef MIGD_CONTROL_MIGCFG_H
#define MIGD_CONTROL_MIGCFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct mig_config;
struct qmp_server;
struct qmp_command;

/* MigrationStatus, in the spec's order. */
enum mig_status {
	MIG_STATUS_NONE,
	MIG_STATUS_SETUP,
	MIG_STATUS_CANCELLING,
	MIG_STATUS_CANCELLED,
	MIG_STATUS_ACTIVE,
	MIG_STATUS_POSTCOPY_ACTIVE,
	MIG_STATUS_POSTCOPY_PAUSED,
	MIG_STATUS_POSTCOPY_RECOVER_SETUP,
	MIG_STATUS_POSTCOPY_RECOVER,
	MIG_STATUS_COMPLETED,
	MIG_STATUS_FAILED,
	MIG_STATUS_COLO,
	MIG_STATUS_PRE_SWITCHOVER,
	MIG_STATUS_DEVICE,
	MIG_STATUS_WAIT_UNPLUG,
	MIG_STATUS__MAX,
};
extern const char *const mig_status_names[]; /* NULL-terminated */
/* QEMU's migration_is_running(): setup..device, not none/completed/failed/
 * cancelled/colo. */
bool mig_status_is_running(enum mig_status st);

/* MigrationCapability, in the spec's order (query output order). */
enum mig_cap {
	MIG_CAP_XBZRLE,
	MIG_CAP_RDMA_PIN_ALL,
	MIG_CAP_AUTO_CONVERGE,
	MIG_CAP_ZERO_BLOCKS,
	MIG_CAP_COMPRESS,
	MIG_CAP_EVENTS,
	MIG_CAP_POSTCOPY_RAM,
	MIG_CAP_X_COLO,
	MIG_CAP_RELEASE_RAM,
	MIG_CAP_BLOCK,
	MIG_CAP_RETURN_PATH,
	MIG_CAP_PAUSE_BEFORE_SWITCHOVER,
	MIG_CAP_MULTIFD,
	MIG_CAP_DIRTY_BITMAPS,
	MIG_CAP_POSTCOPY_BLOCKTIME,
	MIG_CAP_LATE_BLOCK_ACTIVATE,
	MIG_CAP_X_IGNORE_SHARED,
	MIG_CAP_VALIDATE_UUID,
	MIG_CAP_BACKGROUND_SNAPSHOT,
	MIG_CAP_ZERO_COPY_SEND,
	MIG_CAP_POSTCOPY_PREEMPT,
	MIG_CAP_SWITCHOVER_ACK,
	MIG_CAP_DIRTY_LIMIT,
	MIG_CAP_MAPPED_RAM,
	MIG_CAP__MAX,
};
extern const char *const mig_cap_names[]; /* NULL-terminated */

/* MigrationParameters members, in the schema's order, followed by
 * zero-page-detection (QEMU 9.0) and direct-io (QEMU 9.1), which the spec
 * file lacks but migd's data plane needs. */
enum mig_param {
	MIG_PARAM_ANNOUNCE_INITIAL,
	MIG_PARAM_ANNOUNCE_MAX,
	MIG_PARAM_ANNOUNCE_ROUNDS,
	MIG_PARAM_ANNOUNCE_STEP,
	MIG_PARAM_COMPRESS_LEVEL,
	MIG_PARAM_COMPRESS_THREADS,
	MIG_PARAM_COMPRESS_WAIT_THREAD,
	MIG_PARAM_DECOMPRESS_THREADS,
	MIG_PARAM_THROTTLE_TRIGGER_THRESHOLD,
	MIG_PARAM_CPU_THROTTLE_INITIAL,
	MIG_PARAM_CPU_THROTTLE_INCREMENT,
	MIG_PARAM_CPU_THROTTLE_TAILSLOW,
	MIG_PARAM_TLS_CREDS,
	MIG_PARAM_TLS_HOSTNAME,
	MIG_PARAM_TLS_AUTHZ,
	MIG_PARAM_MAX_BANDWIDTH,
	MIG_PARAM_AVAIL_SWITCHOVER_BANDWIDTH,
	MIG_PARAM_DOWNTIME_LIMIT,
	MIG_PARAM_X_CHECKPOINT_DELAY,
	MIG_PARAM_BLOCK_INCREMENTAL,
	MIG_PARAM_MULTIFD_CHANNELS,
	MIG_PARAM_XBZRLE_CACHE_SIZE,
	MIG_PARAM_MAX_POSTCOPY_BANDWIDTH,
	MIG_PARAM_MAX_CPU_THROTTLE,
	MIG_PARAM_MULTIFD_COMPRESSION,
	MIG_PARAM_MULTIFD_ZLIB_LEVEL,
	MIG_PARAM_MULTIFD_ZSTD_LEVEL,
	MIG_PARAM_BLOCK_BITMAP_MAPPING,
	MIG_PARAM_X_VCPU_DIRTY_LIMIT_PERIOD,
	MIG_PARAM_VCPU_DIRTY_LIMIT,
	MIG_PARAM_MODE,
	MIG_PARAM_ZERO_PAGE_DETECTION,
	MIG_PARAM_DIRECT_IO,
	MIG_PARAM__MAX,
};

/* Enum-typed parameters; each names table is NULL-terminated. */
enum mig_multifd_compression {
	MIG_MULTIFD_COMPRESSION_NONE,
	MIG_MULTIFD_COMPRESSION_ZLIB,
	MIG_MULTIFD_COMPRESSION_ZSTD,
};
extern const char *const mig_multifd_compression_names[];

enum mig_mode {
	MIG_MODE_NORMAL,
	MIG_MODE_CPR_REBOOT,
};
extern const char *const mig_mode_names[];

enum mig_zero_page_detection {
	MIG_ZERO_PAGE_DETECTION_NONE,
	MIG_ZERO_PAGE_DETECTION_LEGACY,
	MIG_ZERO_PAGE_DETECTION_MULTIFD,
};
extern const char *const mig_zero_page_detection_names[];

/* Compatibility properties of QEMU's migration object that are neither
 * capabilities nor parameters (set only with -global migration.NAME). */
enum mig_knob {
	MIG_KNOB_STORE_GLOBAL_STATE,		   /* default on */
	MIG_KNOB_SEND_CONFIGURATION,		   /* default on */
	MIG_KNOB_SEND_SECTION_FOOTER,		   /* default on */
	MIG_KNOB_DECOMPRESS_ERROR_CHECK,	   /* default on */
	MIG_KNOB_MULTIFD_FLUSH_AFTER_EACH_SECTION, /* default off */
	MIG_KNOB_PREEMPT_PRE_7_2,		   /* x-preempt-pre-7-2, off */
	MIG_KNOB_SEND_SWITCHOVER_START,		   /* QEMU 10.0, default on */
	MIG_KNOB_MULTIFD_CLEAN_TLS_TERMINATION,	   /* QEMU 10.0, default on */
	MIG_KNOB_CLEAR_BITMAP_SHIFT, /* x-clear-bitmap-shift, 18 */
	/* migd only: x-incoming-idle-timeout, seconds (0: never), 60. */
	MIG_KNOB_X_INCOMING_IDLE_TIMEOUT,
	MIG_KNOB__MAX,
};

/* Defaults are QEMU's. NULL only on allocation failure. */
struct mig_config *mig_config_new(void);
void mig_config_free(struct mig_config *cfg);
/* A deep copy for a migration thread (NULL on allocation failure). The copy
 * is private to its owner; later QMP changes do not reach it. */
struct mig_config *mig_config_snapshot(const struct mig_config *cfg);

/* -global migration.PROP=VALUE (QEMU's migration object properties, such as
 * multifd-flush-after-each-section, send-switchover-start, or any
 * parameter/capability by its property name). Only parses and stores, as
 * QEMU does; errors read like QEMU's ("can't apply global migration.P=V:
 * ..."). 0 or -EINVAL with *errp. After the last -global, main() must call
 * mig_config_check(). */
int mig_config_set_global(struct mig_config *cfg, const char *prop,
			  const char *value, struct mig_error **errp);
/* QEMU's migration_object_check(): validates every parameter and the
 * capability combination (as if all capabilities had been off). 0 or
 * -EINVAL with *errp (QEMU exits with that message at startup). */
int mig_config_check(const struct mig_config *cfg, struct mig_error **errp);

/* Changes capabilities as migrate-set-capabilities does: new_caps is the
 * complete wanted set; it is checked against the current one and applied
 * only if valid. The "migration in progress" check is the caller's. 0 or
 * -EINVAL with *errp. */
int mig_config_set_caps(struct mig_config *cfg,
			const bool new_caps[MIG_CAP__MAX],
			struct mig_error **errp);
/* One capability (a convenience over mig_config_set_caps). */
int mig_config_set_cap(struct mig_config *cfg, enum mig_cap cap, bool on,
		       struct mig_error **errp);

/* A migrate-set-parameters request: has[p] marks members that were given.
 * num holds integers, bools (0/1) and enum indexes; str holds tls-* values
 * ("" for JSON null); bitmap_mapping is the normalised list of
 * BitmapMigrationNodeAlias objects. All borrowed. */
struct mig_param_update {
	bool has[MIG_PARAM__MAX];
	uint64_t num[MIG_PARAM__MAX];
	const char *str[MIG_PARAM__MAX];
	json_t *bitmap_mapping;
};
/* All-or-nothing, as QEMU: the update is applied to a copy, the copy is
 * checked, and only a valid copy replaces the current parameters. 0,
 * -EINVAL or -ENOMEM with *errp. */
int mig_config_set_params(struct mig_config *cfg,
			  const struct mig_param_update *upd,
			  struct mig_error **errp);

/* QEMU refuses multifd/postcopy-preempt changes once an incoming migration
 * is listening; the incoming side reports that here. */
void mig_config_set_incoming_started(struct mig_config *cfg, bool started);

/* Called (control thread) after every successful change of capabilities or
 * parameters, e.g. to pass a new max-bandwidth to a running migration. */
typedef void (*mig_config_notify_fn)(void *opaque,
				     const struct mig_config *cfg);
void mig_config_set_notify(struct mig_config *cfg, mig_config_notify_fn fn,
			   void *opaque);

/* Getters (any thread that owns the config or a snapshot). */
bool mig_config_cap(const struct mig_config *cfg, enum mig_cap cap);
/* Integer, bool (0/1) and enum (index) parameters; 0 for string ones. */
uint64_t mig_config_param(const struct mig_config *cfg, enum mig_param p);
/* tls-creds, tls-hostname, tls-authz: never NULL ("" when unset). */
const char *mig_config_param_str(const struct mig_config *cfg,
				 enum mig_param p);
/* The block-bitmap-mapping list, or NULL if it was never set. */
const json_t *mig_config_block_bitmap_mapping(const struct mig_config *cfg);
/* Boolean knobs (not MIG_KNOB_CLEAR_BITMAP_SHIFT). */
bool mig_config_knob(const struct mig_config *cfg, enum mig_knob knob);
/* x-clear-bitmap-shift clamped to QEMU's 6..31 as QEMU's RAM code does. */
unsigned mig_config_clear_bitmap_shift(const struct mig_config *cfg);
/* x-incoming-idle-timeout in seconds (0: no limit). */
unsigned mig_config_incoming_idle_timeout(const struct mig_config *cfg);

/* Named getters for what the data plane reads most. */
bool mig_config_tls_enabled(const struct mig_config *cfg); /* creds != "" */
unsigned mig_config_multifd_channels(const struct mig_config *cfg);
enum mig_multifd_compression
mig_config_multifd_compression(const struct mig_config *cfg);
enum mig_zero_page_detection
mig_config_zero_page_detection(const struct mig_config *cfg);
enum mig_mode mig_config_mode(const struct mig_config *cfg);
uint64_t mig_config_max_bandwidth(const struct mig_config *cfg);
uint64_t mig_config_downtime_limit(const struct mig_config *cfg);
/* QEMU's migrate_direct_io(): the parameter only counts together with
 * mapped-ram and multifd. */
bool mig_config_direct_io(const struct mig_config *cfg);

/* The five commands below, for registration and for handler-level tests
 * (migcfg_qmp.c links without the QMP server). */
const struct qmp_command *migcfg_qmp_commands(size_t *n);

/* Registers migrate-set-capabilities, query-migrate-capabilities,
 * migrate-set-parameters, query-migrate-parameters, query-migrate. */
void migcfg_register_qmp(struct qmp_server *srv);

#endif
