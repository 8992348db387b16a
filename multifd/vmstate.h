/* vmstate.h — the non-RAM parts of QEMU's main migration stream for machine
 * 'none': file header, configuration section, section headers and footers,
 * commands, the 'timer' and 'globalstate' device sections, EOF and the
 * vmdesc JSON. Writers and readers of exactly QEMU's bytes (reference §1).
 * Pure codec over a qfile: the thread that owns the qfile. */
#ifndef MIGD_MULTIFD_VMSTATE_H
#define MIGD_MULTIFD_VMSTATE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct qfile;

#define QEVM_MAGIC 0x5145564Du
#define QEVM_VERSION 3u
#define QEVM_VERSION_COMPAT 2u

enum vms_type {
	VMS_EOF = 0x00,
	VMS_SECTION_START = 0x01,
	VMS_SECTION_PART = 0x02,
	VMS_SECTION_END = 0x03,
	VMS_SECTION_FULL = 0x04,
	VMS_SUBSECTION = 0x05,
	VMS_VMDESCRIPTION = 0x06,
	VMS_CONFIGURATION = 0x07,
	VMS_COMMAND = 0x08,
	VMS_SECTION_FOOTER = 0x7E,
};

enum vms_command {
	MIG_CMD_INVALID = 0,
	MIG_CMD_OPEN_RETURN_PATH = 1,
	MIG_CMD_PING = 2,
	MIG_CMD_POSTCOPY_ADVISE = 3,
	MIG_CMD_POSTCOPY_LISTEN = 4,
	MIG_CMD_POSTCOPY_RUN = 5,
	MIG_CMD_POSTCOPY_RAM_DISCARD = 6,
	MIG_CMD_PACKAGED = 7,
	MIG_CMD_ENABLE_COLO = 8,
	MIG_CMD_POSTCOPY_RESUME = 9,
	MIG_CMD_RECV_BITMAP = 10,
	MIG_CMD_SWITCHOVER_START = 11,
};

/* Section ids as QEMU 10.0 numbers them for -M none (the loader maps ids
 * from START/FULL headers, so these are not a protocol constant). */
#define VMS_ID_TIMER 0u
#define VMS_ID_RAM 1u
#define VMS_ID_GLOBALSTATE 3u

#define VMS_RAM_VERSION 4u
#define VMS_TIMER_VERSION 2u
#define VMS_GLOBALSTATE_VERSION 1u

/* What both ends must agree on, from -global migration.* knobs and the
 * validated capabilities. */
struct vms_opts {
	bool send_configuration;  /* default on */
	bool send_section_footer; /* default on */
	bool store_global_state;  /* default on */
	bool cap_mapped_ram;	  /* configuration/capabilities entries */
	bool cap_x_ignore_shared;
	bool send_uuid; /* validate-uuid with -uuid given */
	uint8_t uuid[16];
};

/* ---- writers (errors surface at qfile_flush) ---- */
void vms_put_header(struct qfile *f, const struct vms_opts *o);
void vms_put_section_header(struct qfile *f, enum vms_type type, uint32_t id,
			    const char *idstr, uint32_t instance,
			    uint32_t version);
void vms_put_footer(struct qfile *f, const struct vms_opts *o, uint32_t id);
void vms_put_command(struct qfile *f, enum vms_command cmd, uint16_t len,
		     const void *data);
/* FULL sections with their footers. runstate: QEMU's RunState name stored
 * by global_state_store() when the source stopped. */
void vms_put_timer(struct qfile *f, const struct vms_opts *o);
void vms_put_globalstate(struct qfile *f, const struct vms_opts *o,
			 const char *runstate);
void vms_put_eof(struct qfile *f);
void vms_put_vmdesc(struct qfile *f, const struct vms_opts *o);

/* ---- readers: 0 or -errno with *errp (QEMU's messages) ---- */
/* Turns a qfile reader error (ret < 0) into *errp about what was being
 * read ("migration stream ended while reading X" at end of stream);
 * returns ret. */
int vms_read_fail(int ret, const char *what, struct mig_error **errp);
/* Header and configuration (when o->send_configuration). */
int vms_get_header(struct qfile *f, const struct vms_opts *o,
		   struct mig_error **errp);
/* The body of a START/FULL header after its type byte. */
int vms_get_section_header(struct qfile *f, uint32_t *id, char idstr[256],
			   uint32_t *instance, uint32_t *version,
			   struct mig_error **errp);
int vms_get_footer(struct qfile *f, const struct vms_opts *o, uint32_t id,
		   struct mig_error **errp);
int vms_get_timer(struct qfile *f, uint32_t version, struct mig_error **errp);
/* runstate gets the source's stored RunState name (NUL-terminated). */
int vms_get_globalstate(struct qfile *f, uint32_t version, char runstate[101],
			struct mig_error **errp);
/* After EOF: consume an optional vmdesc (peeked). Bounded length. */
int vms_get_vmdesc(struct qfile *f, struct mig_error **errp);

#endif
