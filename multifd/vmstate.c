/* vmstate.c — QEMU's main-stream framing and the device sections of
 * machine 'none' (see vmstate.h). Owner thread of the qfile. */
#include "multifd/vmstate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "multifd/qemufile.h"

#define MACHINE_NAME "none"
#define GLOBALSTATE_RUNSTATE_LEN 100 /* 7.2: one 100-byte string */
#define VMDESC_MAX (1u << 20)

int vms_read_fail(int ret, const char *what, struct mig_error **errp)
{
	if (ret == -EPIPE || ret == -EPROTO)
		mig_error_setg(errp, "migration stream ended while reading %s",
			       what);
	else
		mig_error_setg(errp,
			       "error reading %s from the migration "
			       "stream: %s",
			       what, strerror(-ret));
	return ret;
}

/* ---- writers ----------------------------------------------------------------
 */

static void put_subsection(struct qfile *f, const char *name, uint32_t version)
{
	qfile_put_u8(f, VMS_SUBSECTION);
	qfile_put_str8(f, name);
	qfile_put_be32(f, version);
}

static void put_configuration(struct qfile *f, const struct vms_opts *o)
{
	uint32_t ncaps =
		(uint32_t)o->cap_x_ignore_shared + (uint32_t)o->cap_mapped_ram;

	qfile_put_u8(f, VMS_CONFIGURATION);
	qfile_put_be32(f, strlen(MACHINE_NAME));
	qfile_put_buffer(f, MACHINE_NAME, strlen(MACHINE_NAME));
	if (ncaps) {
		put_subsection(f, "configuration/capabilities", 1);
		qfile_put_be32(f, ncaps);
		if (o->cap_x_ignore_shared)
			qfile_put_str8(f, "x-ignore-shared");
		if (o->cap_mapped_ram)
			qfile_put_str8(f, "mapped-ram");
	}
	if (o->send_uuid) {
		put_subsection(f, "configuration/uuid", 1);
		qfile_put_buffer(f, o->uuid, 16);
	}
}

void vms_put_header(struct qfile *f, const struct vms_opts *o)
{
	qfile_put_be32(f, QEVM_MAGIC);
	qfile_put_be32(f, QEVM_VERSION);
	if (o->send_configuration)
		put_configuration(f, o);
}

void vms_put_section_header(struct qfile *f, enum vms_type type, uint32_t id,
			    const char *idstr, uint32_t instance,
			    uint32_t version)
{
	qfile_put_u8(f, (uint8_t)type);
	qfile_put_be32(f, id);
	if (type == VMS_SECTION_START || type == VMS_SECTION_FULL) {
		qfile_put_str8(f, idstr);
		qfile_put_be32(f, instance);
		qfile_put_be32(f, version);
	}
}

void vms_put_footer(struct qfile *f, const struct vms_opts *o, uint32_t id)
{
	if (!o->send_section_footer)
		return;
	qfile_put_u8(f, VMS_SECTION_FOOTER);
	qfile_put_be32(f, id);
}

void vms_put_command(struct qfile *f, enum vms_command cmd, uint16_t len,
		     const void *data)
{
	qfile_put_u8(f, VMS_COMMAND);
	qfile_put_be16(f, (uint16_t)cmd);
	qfile_put_be16(f, len);
	if (len)
		qfile_put_buffer(f, data, len);
}

/* migd has no emulated clock: the offsets are zero, as for a guest that
 * never ran its virtual clock. */
void vms_put_timer(struct qfile *f, const struct vms_opts *o)
{
	vms_put_section_header(f, VMS_SECTION_FULL, VMS_ID_TIMER, "timer", 0,
			       VMS_TIMER_VERSION);
	qfile_put_be64(f, 0); /* cpu_ticks_offset */
	qfile_put_be64(f, 0); /* unused */
	qfile_put_be64(f, 0); /* cpu_clock_offset */
	vms_put_footer(f, o, VMS_ID_TIMER);
}

/* 10.0 layout: size, runstate[32], has_vm_was_suspended, vm_was_suspended,
 * 66 unused bytes — 100 bytes after size, which a 7.2 loader reads as one
 * NUL-padded 100-byte string. */
void vms_put_globalstate(struct qfile *f, const struct vms_opts *o,
			 const char *runstate)
{
	uint8_t body[GLOBALSTATE_RUNSTATE_LEN] = {0};
	size_t len = strlen(runstate);

	if (!o->store_global_state)
		return;
	if (len > 31)
		len = 31;
	memcpy(body, runstate, len);
	body[32] = 1; /* has_vm_was_suspended */
	body[33] = 0; /* vm_was_suspended */
	vms_put_section_header(f, VMS_SECTION_FULL, VMS_ID_GLOBALSTATE,
			       "globalstate", 0, VMS_GLOBALSTATE_VERSION);
	qfile_put_be32(f, (uint32_t)len + 1);
	qfile_put_buffer(f, body, sizeof(body));
	vms_put_footer(f, o, VMS_ID_GLOBALSTATE);
}

void vms_put_eof(struct qfile *f)
{
	qfile_put_u8(f, VMS_EOF);
}

static const char vmdesc_json[] =
	"{\"page_size\": 4096, \"configuration\": {\"vmsd_name\": "
	"\"configuration\", \"version\": 1, \"fields\": [{\"name\": \"len\", "
	"\"type\": \"uint32\", \"size\": 4}, {\"name\": \"name\", \"type\": "
	"\"buffer\", \"size\": 4}]}, \"devices\": [{\"name\": \"timer\", "
	"\"instance_id\": 0, \"vmsd_name\": \"timer\", \"version\": 2, "
	"\"fields\": [{\"name\": \"cpu_ticks_offset\", \"type\": \"int64\", "
	"\"size\": 8}, {\"name\": \"unused\", \"type\": \"unused_buffer\", "
	"\"size\": 8}, {\"name\": \"cpu_clock_offset\", \"type\": \"int64\", "
	"\"size\": 8}]}, {\"name\": \"globalstate\", \"instance_id\": 0, "
	"\"vmsd_name\": \"globalstate\", \"version\": 1, \"fields\": "
	"[{\"name\": \"size\", \"type\": \"uint32\", \"size\": 4}, {\"name\": "
	"\"runstate\", \"type\": \"buffer\", \"size\": 32}, {\"name\": "
	"\"vm_was_suspended\", \"type\": \"bool\", \"size\": 1}, {\"name\": "
	"\"unused\", \"type\": \"unused_buffer\", \"size\": 66}]}]}";

void vms_put_vmdesc(struct qfile *f, const struct vms_opts *o)
{
	qfile_put_u8(f, VMS_VMDESCRIPTION);
	qfile_put_be32(f, sizeof(vmdesc_json) - 1);
	qfile_put_buffer(f, vmdesc_json, sizeof(vmdesc_json) - 1);
}

/* ---- readers ----------------------------------------------------------------
 */

static int get_capabilities(struct qfile *f, const struct vms_opts *o,
			    struct mig_error **errp)
{
	bool seen_mapped = false, seen_ignore = false;
	char name[256];
	uint32_t n;
	int ret = qfile_get_be32(f, &n);

	if (ret)
		return vms_read_fail(ret, "the configuration", errp);
	if (n > 64) {
		mig_error_setg(errp, "Received too many capabilities (%u)", n);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++) {
		ret = qfile_get_str8(f, name);
		if (ret)
			return vms_read_fail(ret, "the configuration", errp);
		if (!strcmp(name, "mapped-ram")) {
			seen_mapped = true;
		} else if (!strcmp(name, "x-ignore-shared")) {
			seen_ignore = true;
		} else {
			mig_error_setg(errp, "Received unknown capability %s",
				       name);
			return -EINVAL;
		}
	}
	if (seen_mapped != o->cap_mapped_ram ||
	    seen_ignore != o->cap_x_ignore_shared) {
		bool local = seen_mapped != o->cap_mapped_ram
				     ? o->cap_mapped_ram
				     : o->cap_x_ignore_shared;
		mig_error_setg(
			errp,
			"Capability %s is %s, but received capability is %s",
			seen_mapped != o->cap_mapped_ram ? "mapped-ram"
							 : "x-ignore-shared",
			local ? "on" : "off", local ? "off" : "on");
		return -EINVAL;
	}
	return 0;
}

static void format_uuid(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int get_uuid(struct qfile *f, const struct vms_opts *o,
		    struct mig_error **errp)
{
	uint8_t uuid[16];
	char a[37], b[37];
	int ret = qfile_get_buffer(f, uuid, sizeof(uuid));

	if (ret)
		return vms_read_fail(ret, "the configuration", errp);
	if (!o->send_uuid) /* QEMU only warns when the local uuid is unset */
		return 0;
	if (memcmp(uuid, o->uuid, 16)) {
		format_uuid(uuid, a);
		format_uuid(o->uuid, b);
		mig_error_setg(errp, "UUID received is '%s' and local is '%s'",
			       a, b);
		return -EINVAL;
	}
	return 0;
}

static int get_config_subsections(struct qfile *f, const struct vms_opts *o,
				  struct mig_error **errp)
{
	char name[256];
	uint32_t version, bits;
	uint8_t b;
	int ret;

	while ((ret = qfile_peek_u8(f, &b)) == 0 && b == VMS_SUBSECTION) {
		qfile_get_u8(f, &b);
		ret = qfile_get_str8(f, name);
		if (!ret)
			ret = qfile_get_be32(f, &version);
		if (ret)
			return vms_read_fail(ret, "the configuration", errp);
		if (!strcmp(name, "configuration/capabilities")) {
			ret = get_capabilities(f, o, errp);
		} else if (!strcmp(name, "configuration/uuid")) {
			ret = get_uuid(f, o, errp);
		} else if (!strcmp(name, "configuration/target-page-bits")) {
			ret = qfile_get_be32(f, &bits);
			if (ret)
				return vms_read_fail(ret, "the configuration",
						     errp);
			if (bits != 12) {
				mig_error_setg(errp,
					       "Received TARGET_PAGE_BITS is "
					       "%u but local is 12",
					       bits);
				return -EINVAL;
			}
		} else {
			mig_error_setg(errp,
				       "Unknown subsection '%s' in the "
				       "configuration section",
				       name);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	return ret ? vms_read_fail(ret, "the configuration", errp) : 0;
}

static int get_configuration(struct qfile *f, const struct vms_opts *o,
			     struct mig_error **errp)
{
	char name[257];
	uint32_t len;
	uint8_t b;
	int ret = qfile_get_u8(f, &b);

	if (ret)
		return vms_read_fail(ret, "the configuration", errp);
	if (b != VMS_CONFIGURATION) {
		mig_error_setg(errp, "Configuration section missing");
		return -EINVAL;
	}
	ret = qfile_get_be32(f, &len);
	if (ret)
		return vms_read_fail(ret, "the configuration", errp);
	if (len > 256) {
		mig_error_setg(
			errp, "Machine type name of %u bytes is too long", len);
		return -EINVAL;
	}
	ret = qfile_get_buffer(f, name, len);
	if (ret)
		return vms_read_fail(ret, "the configuration", errp);
	name[len] = '\0';
	if (strlen(name) != len || strcmp(name, MACHINE_NAME)) {
		mig_error_setg(
			errp,
			"Machine type received is '%.*s' and local is '%s'",
			(int)len, name, MACHINE_NAME);
		return -EINVAL;
	}
	return get_config_subsections(f, o, errp);
}

int vms_get_header(struct qfile *f, const struct vms_opts *o,
		   struct mig_error **errp)
{
	uint32_t magic, version;
	int ret = qfile_get_be32(f, &magic);

	if (!ret)
		ret = qfile_get_be32(f, &version);
	if (ret)
		return vms_read_fail(ret, "the stream header", errp);
	if (magic != QEVM_MAGIC) {
		mig_error_setg(errp, "Not a migration stream");
		return -EINVAL;
	}
	if (version == QEVM_VERSION_COMPAT) {
		mig_error_setg(
			errp,
			"SaveVM v2 format is obsolete and don't work anymore");
		return -ENOTSUP;
	}
	if (version != QEVM_VERSION) {
		mig_error_setg(errp, "Unsupported migration stream version");
		return -ENOTSUP;
	}
	return o->send_configuration ? get_configuration(f, o, errp) : 0;
}

int vms_get_section_header(struct qfile *f, uint32_t *id, char idstr[256],
			   uint32_t *instance, uint32_t *version,
			   struct mig_error **errp)
{
	int ret = qfile_get_be32(f, id);

	if (!ret)
		ret = qfile_get_str8(f, idstr);
	if (!ret)
		ret = qfile_get_be32(f, instance);
	if (!ret)
		ret = qfile_get_be32(f, version);
	return ret ? vms_read_fail(ret, "a section header", errp) : 0;
}

int vms_get_footer(struct qfile *f, const struct vms_opts *o, uint32_t id,
		   struct mig_error **errp)
{
	uint32_t got;
	uint8_t b;
	int ret;

	if (!o->send_section_footer)
		return 0;
	ret = qfile_get_u8(f, &b);
	if (!ret && b == VMS_SECTION_FOOTER)
		ret = qfile_get_be32(f, &got);
	if (ret)
		return vms_read_fail(ret, "a section footer", errp);
	if (b != VMS_SECTION_FOOTER || got != id) {
		mig_error_setg(errp, "Missing section footer for section %u",
			       id);
		return -EINVAL;
	}
	return 0;
}

static int skip_subsection(struct qfile *f, const char *parent,
			   struct mig_error **errp)
{
	char name[256];
	uint32_t version;
	uint8_t b;
	int ret = qfile_get_u8(f, &b);

	if (!ret)
		ret = qfile_get_str8(f, name);
	if (!ret)
		ret = qfile_get_be32(f, &version);
	if (ret)
		return vms_read_fail(ret, parent, errp);
	if (!strcmp(name, "timer/icount")) /* icount bias + icount */
		return qfile_skip(f, 16) ? vms_read_fail(-EPIPE, parent, errp)
					 : 0;
	mig_error_setg(errp, "Unknown subsection '%s' in section '%s'", name,
		       parent);
	return -EINVAL;
}

int vms_get_timer(struct qfile *f, uint32_t version, struct mig_error **errp)
{
	uint8_t b;
	int ret;

	if (version < 1 || version > VMS_TIMER_VERSION) {
		mig_error_setg(errp,
			       "savevm: unsupported version %u for 'timer' v%u",
			       version, VMS_TIMER_VERSION);
		return -EINVAL;
	}
	/* Offsets of an emulated clock: migd's guest has none, so they are
	 * read and dropped. */
	ret = qfile_skip(f, 24);
	if (ret)
		return vms_read_fail(ret, "section 'timer'", errp);
	while ((ret = qfile_peek_u8(f, &b)) == 0 && b == VMS_SUBSECTION) {
		ret = skip_subsection(f, "timer", errp);
		if (ret)
			return ret;
	}
	return ret ? vms_read_fail(ret, "section 'timer'", errp) : 0;
}

int vms_get_globalstate(struct qfile *f, uint32_t version, char runstate[101],
			struct mig_error **errp)
{
	uint8_t body[GLOBALSTATE_RUNSTATE_LEN];
	uint32_t size;
	int ret;

	if (version != VMS_GLOBALSTATE_VERSION) {
		mig_error_setg(
			errp,
			"savevm: unsupported version %u for 'globalstate' v%u",
			version, VMS_GLOBALSTATE_VERSION);
		return -EINVAL;
	}
	ret = qfile_get_be32(f, &size);
	if (!ret)
		ret = qfile_get_buffer(f, body, sizeof(body));
	if (ret)
		return vms_read_fail(ret, "section 'globalstate'", errp);
	/* 10.0 keeps the name in the first 32 bytes, 7.2 in 100: both end
	 * with a NUL inside the first 100. */
	if (!memchr(body, '\0', GLOBALSTATE_RUNSTATE_LEN)) {
		mig_error_setg(errp,
			       "globalstate: runstate is not NUL-terminated");
		return -EINVAL;
	}
	memcpy(runstate, body, GLOBALSTATE_RUNSTATE_LEN);
	runstate[GLOBALSTATE_RUNSTATE_LEN] = '\0';
	return 0;
}

int vms_get_vmdesc(struct qfile *f, struct mig_error **errp)
{
	uint32_t len;
	uint8_t b;
	int ret = qfile_peek_u8(f, &b);

	if (ret || b != VMS_VMDESCRIPTION)
		return 0; /* optional: QEMU only logs its absence */
	qfile_get_u8(f, &b);
	ret = qfile_get_be32(f, &len);
	if (ret)
		return vms_read_fail(ret, "the vmdesc", errp);
	if (len > VMDESC_MAX) {
		mig_error_setg(errp, "vmdesc of %u bytes is too large", len);
		return -EINVAL;
	}
	ret = qfile_skip(f, len);
	return ret ? vms_read_fail(ret, "the vmdesc", errp) : 0;
}
