/* loadvm.c — the destination's main-stream loader (see loadvm.h). Follows
 * QEMU 9.0/10.0's savevm.c load path: sections are dispatched by the id
 * their START/FULL header registered, every body is followed by its
 * footer, unknown sections and commands end the migration with QEMU's
 * messages. The incoming thread only. */
#include "multifd/loadvm.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "guest/guest.h"
#include "multifd/byteorder.h"
#include "multifd/loadvm_priv.h"
#include "multifd/postcopy_proto.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "socket/channel.h"

enum section_kind {
	KIND_RAM,
	KIND_TIMER,
	KIND_GLOBALSTATE,
};

/* What machine 'none' registers: idstr, instance, version. */
static const struct {
	const char *idstr;
	uint32_t version;
} known_sections[] = {
	[KIND_RAM] = {"ram", VMS_RAM_VERSION},
	[KIND_TIMER] = {"timer", VMS_TIMER_VERSION},
	[KIND_GLOBALSTATE] = {"globalstate", VMS_GLOBALSTATE_VERSION},
};

#define NKNOWN (sizeof(known_sections) / sizeof(known_sections[0]))
#define NSECTIONS_MAX                                                          \
	(sizeof(((struct loadvm *)0)->sections) /                              \
	 sizeof(((struct loadvm *)0)->sections[0]))

/* Return-path message types (destination to source). */
enum {
	RP_MSG_SHUT = 1,
	RP_MSG_PONG = 2,
	RP_MSG_SWITCHOVER_ACK = 7,
};

/* QEMU's RunState values (9.0/10.0) that migd's guest does not have. */
static const char *const other_runstates[] = {
	"debug",      "internal-error", "io-error",
	"restore-vm", "save-vm",	"suspended",
	"watchdog",   "guest-panicked", "colo",
};

void loadvm_init(struct loadvm *ld, struct qfile *f, struct ram_load *rl,
		 const struct vms_opts *vms, bool switchover_ack)
{
	memset(ld, 0, sizeof(*ld));
	ld->f = f;
	ld->rl = rl;
	ld->vms = *vms;
	ld->switchover_ack = switchover_ack;
	ld->src_runstate = -1;
	atomic_init(&ld->stage, LOADVM_STAGE_HEADER);
	pthread_mutex_init(&ld->rp_lock, NULL);
	ld->rp_ch = f ? qfile_channel(f) : NULL;
	ld->rp_last_block = -1;
}

/* ---- return path --------------------------------------------------------- */

int loadvm_rp_write(struct loadvm *ld, const void *buf, size_t len)
{
	int ret = -ENOTCONN;

	pthread_mutex_lock(&ld->rp_lock);
	if (ld->rp_ch)
		ret = chan_write_all(ld->rp_ch, buf, len);
	pthread_mutex_unlock(&ld->rp_lock);
	return ret;
}

static int rp_send(struct loadvm *ld, uint16_t type, uint16_t len,
		   uint32_t value)
{
	uint8_t msg[8];

	mfd_store_be16(msg, type);
	mfd_store_be16(msg + 2, len);
	mfd_store_be32(msg + 4, value);
	return loadvm_rp_write(ld, msg, 4 + (size_t)len);
}

static void send_shut(struct loadvm *ld)
{
	if (ld->return_path)
		rp_send(ld, RP_MSG_SHUT, 4, 0);
}

static int open_return_path(struct loadvm *ld, struct mig_error **errp)
{
	int ret;

	if (ld->return_path)
		return 0; /* QEMU only complains */
	ld->return_path = true;
	/* No device needs to approve the switchover: approve at once. */
	if (!ld->switchover_ack)
		return 0;
	ret = rp_send(ld, RP_MSG_SWITCHOVER_ACK, 0, 0);
	if (ret)
		mig_error_setg(errp,
			       "Could not send switchover ack RP MSG, "
			       "err %d (%s)",
			       ret, strerror(-ret));
	return ret;
}

static int ping(struct loadvm *ld, struct mig_error **errp)
{
	uint32_t v;
	int ret = qfile_get_be32(ld->f, &v);

	if (ret)
		return vms_read_fail(ret, "a command", errp);
	if (!ld->return_path) {
		mig_error_setg(errp,
			       "CMD_PING (0x%x) received with no return "
			       "path",
			       v);
		return -EINVAL;
	}
	rp_send(ld, RP_MSG_PONG, 4, v); /* QEMU ignores a failed PONG too */
	return 0;
}

static int process_command(struct loadvm *ld, struct mig_error **errp)
{
	uint16_t cmd, len;
	int ret = qfile_get_be16(ld->f, &cmd);

	if (!ret)
		ret = qfile_get_be16(ld->f, &len);
	if (ret)
		return vms_read_fail(ret, "a command", errp);
	ret = pc_cmd_check(cmd, len, errp);
	if (ret)
		return ret;
	switch (cmd) {
	case MIG_CMD_OPEN_RETURN_PATH:
		return open_return_path(ld, errp);
	case MIG_CMD_PING:
		return ping(ld, errp);
	case MIG_CMD_SWITCHOVER_START:
		return 0; /* nothing to prepare on migd's destination */
	case MIG_CMD_POSTCOPY_ADVISE:
	case MIG_CMD_POSTCOPY_LISTEN:
	case MIG_CMD_POSTCOPY_RUN:
	case MIG_CMD_POSTCOPY_RAM_DISCARD:
	case MIG_CMD_PACKAGED:
	case MIG_CMD_POSTCOPY_RESUME:
	case MIG_CMD_RECV_BITMAP:
		return loadvm_pc_command(ld, cmd, len, errp);
	default:
		mig_error_setg(errp, "MIG_CMD %s is not supported by migd",
			       pc_cmd_name(cmd));
		return -ENOTSUP;
	}
}

/* ---- sections ------------------------------------------------------------ */

static struct loadvm_section *find_section(struct loadvm *ld, uint32_t id)
{
	for (int i = 0; i < ld->nsections; i++)
		if (ld->sections[i].id == id)
			return &ld->sections[i];
	return NULL;
}

static int register_section(struct loadvm *ld, uint32_t id, int kind,
			    uint32_t version, struct mig_error **errp)
{
	struct loadvm_section *s = find_section(ld, id);

	if (!s) {
		if ((size_t)ld->nsections == NSECTIONS_MAX) {
			mig_error_setg(errp, "Too many sections in the "
					     "migration stream");
			return -EINVAL;
		}
		s = &ld->sections[ld->nsections++];
	}
	s->id = id;
	s->kind = kind;
	s->version = version;
	return 0;
}

static int load_globalstate(struct loadvm *ld, uint32_t version,
			    struct mig_error **errp)
{
	char name[101];
	int ret = vms_get_globalstate(ld->f, version, name, errp);

	if (ret)
		return ret;
	ld->src_runstate = guest_runstate_lookup(name);
	if (ld->src_runstate >= 0)
		return 0;
	for (size_t i = 0;
	     i < sizeof(other_runstates) / sizeof(other_runstates[0]); i++) {
		if (!strcmp(name, other_runstates[i])) {
			ld->src_runstate = GUEST_RUNSTATE__MAX;
			return 0;
		}
	}
	/* QEMU's qapi_enum_parse() in global_state_post_load(). */
	mig_error_setg(errp, "invalid parameter value: %s", name);
	return -EINVAL;
}

/* The body of section s, then its footer. */
static int load_body(struct loadvm *ld, const struct loadvm_section *s,
		     struct mig_error **errp)
{
	int ret;

	switch (s->kind) {
	case KIND_RAM:
		ret = ram_load_section(ld->rl, ld->f, s->version, errp);
		break;
	case KIND_TIMER:
		ret = vms_get_timer(ld->f, s->version, errp);
		break;
	default:
		ret = load_globalstate(ld, s->version, errp);
		break;
	}
	if (ret)
		return ret;
	/* A source may pause (pause-before-switchover) with the footer
	 * still in its buffer: waiting for it is not a stall. */
	loadvm_set_stage(ld, LOADVM_STAGE_BOUNDARY);
	ret = vms_get_footer(ld->f, &ld->vms, s->id, errp);
	loadvm_set_stage(ld, LOADVM_STAGE_ITEM);
	return ret;
}

/* START / FULL: full header, then the body. */
static int section_start_full(struct loadvm *ld, struct mig_error **errp)
{
	uint32_t id, instance, version;
	char idstr[256];
	size_t kind;
	int ret = vms_get_section_header(ld->f, &id, idstr, &instance, &version,
					 errp);

	if (ret)
		return ret;
	for (kind = 0; kind < NKNOWN; kind++)
		if (!strcmp(idstr, known_sections[kind].idstr))
			break;
	if (kind == NKNOWN || instance != 0) {
		mig_error_setg(errp,
			       "Unknown savevm section or instance '%s' "
			       "%u. Make sure that your current VM setup "
			       "matches your saved VM setup, including "
			       "any hotplugged devices",
			       idstr, instance);
		return -EINVAL;
	}
	if (version > known_sections[kind].version) {
		mig_error_setg(errp,
			       "savevm: unsupported version %u for '%s' "
			       "v%u",
			       version, idstr, known_sections[kind].version);
		return -EINVAL;
	}
	ret = register_section(ld, id, (int)kind, version, errp);
	return ret ? ret : load_body(ld, find_section(ld, id), errp);
}

/* PART / END: the id must come from an earlier START/FULL. */
static int section_part_end(struct loadvm *ld, struct mig_error **errp)
{
	const struct loadvm_section *s;
	uint32_t id;
	int ret = qfile_get_be32(ld->f, &id);

	if (ret)
		return vms_read_fail(ret, "a section header", errp);
	s = find_section(ld, id);
	if (!s) {
		mig_error_setg(errp, "Unknown savevm section %u", id);
		return -EINVAL;
	}
	return load_body(ld, s, errp);
}

/* ---- the stream ---------------------------------------------------------- */

/* Dispatches one top-level item; *eof is set at QEMU_VM_EOF. */
int loadvm_load_item(struct loadvm *ld, bool *eof, struct mig_error **errp)
{
	uint8_t type;
	int ret;

	loadvm_set_stage(ld, LOADVM_STAGE_BOUNDARY);
	ret = qfile_get_u8(ld->f, &type);
	if (ret)
		return vms_read_fail(ret, "the next section", errp);
	loadvm_set_stage(ld, LOADVM_STAGE_ITEM);
	switch (type) {
	case VMS_SECTION_START:
	case VMS_SECTION_FULL:
		return section_start_full(ld, errp);
	case VMS_SECTION_PART:
	case VMS_SECTION_END:
		return section_part_end(ld, errp);
	case VMS_COMMAND:
		return process_command(ld, errp);
	case VMS_EOF:
		*eof = true;
		return 0;
	default:
		mig_error_setg(errp, "Unknown savevm section type %u", type);
		return -EINVAL;
	}
}

/* After EOF: the vmdesc is read and dropped. As in QEMU, a missing or
 * broken one does not fail a migration whose state is complete. */
static void skip_vmdesc(struct loadvm *ld)
{
	struct mig_error *err = NULL;

	loadvm_set_stage(ld, LOADVM_STAGE_VMDESC);
	vms_get_vmdesc(ld->f, &err);
	mig_error_free(err);
}

int loadvm_run(struct loadvm *ld, struct mig_error **errp)
{
	bool eof = false;
	int ret = vms_get_header(ld->f, &ld->vms, errp);

	while (!ret && !eof) {
		ret = loadvm_load_item(ld, &eof, errp);
		if (ret)
			ret = loadvm_pc_maybe_pause(ld, ret, errp);
	}
	if (ret)
		return ret;
	/* After postcopy's LISTEN the rest came on the listen path: there
	 * is no vmdesc (QEMU's listen thread stops at EOF). */
	if (loadvm_postcopy_state(ld) < PC_INCOMING_LISTENING) {
		skip_vmdesc(ld);
	} else {
		ret = loadvm_pc_check_complete(ld, errp);
		if (ret)
			return ret;
		atomic_store(&ld->ps, PC_INCOMING_END);
	}
	send_shut(ld);
	loadvm_set_stage(ld, LOADVM_STAGE_DONE);
	return 0;
}
