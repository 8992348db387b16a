/* postcopy_proto.c — postcopy command, return-path and RECV_BITMAP codecs
 * (see postcopy_proto.h for the layouts). Every length a peer sends is
 * checked against what was received before anything is read; messages are
 * QEMU 9.0/10.0's where it has one. Pure functions: any thread. */
#include "multifd/postcopy_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/types.h>

#include "multifd/byteorder.h"

/* QEMU's mig_cmd_args (10.0): name and fixed length, -1 = variable. */
static const struct {
	const char *name;
	int len;
} cmd_args[] = {
	[MIG_CMD_INVALID] = {"INVALID", -1},
	[MIG_CMD_OPEN_RETURN_PATH] = {"OPEN_RETURN_PATH", 0},
	[MIG_CMD_PING] = {"PING", 4},
	[MIG_CMD_POSTCOPY_ADVISE] = {"POSTCOPY_ADVISE", -1},
	[MIG_CMD_POSTCOPY_LISTEN] = {"POSTCOPY_LISTEN", 0},
	[MIG_CMD_POSTCOPY_RUN] = {"POSTCOPY_RUN", 0},
	[MIG_CMD_POSTCOPY_RAM_DISCARD] = {"POSTCOPY_RAM_DISCARD", -1},
	[MIG_CMD_PACKAGED] = {"PACKAGED", 4},
	[MIG_CMD_ENABLE_COLO] = {"ENABLE_COLO", 0},
	[MIG_CMD_POSTCOPY_RESUME] = {"POSTCOPY_RESUME", 0},
	[MIG_CMD_RECV_BITMAP] = {"RECV_BITMAP", -1},
	[MIG_CMD_SWITCHOVER_START] = {"SWITCHOVER_START", 0},
};

#define NCMDS (sizeof(cmd_args) / sizeof(cmd_args[0]))

/* QEMU's rp_cmd_args. */
static const struct {
	const char *name;
	int len;
} rp_args[PC_RP_MAX] = {
	[PC_RP_INVALID] = {"INVALID", -1},
	[PC_RP_SHUT] = {"SHUT", 4},
	[PC_RP_PONG] = {"PONG", 4},
	[PC_RP_REQ_PAGES_ID] = {"REQ_PAGES_ID", -1},
	[PC_RP_REQ_PAGES] = {"REQ_PAGES", 12},
	[PC_RP_RECV_BITMAP] = {"RECV_BITMAP", -1},
	[PC_RP_RESUME_ACK] = {"RESUME_ACK", 4},
	[PC_RP_SWITCHOVER_ACK] = {"SWITCHOVER_ACK", 0},
};

/* Copies a counted name; false when it holds a NUL (C lookups would see a
 * different, shorter name than the peer sent). */
static bool copy_name(char out[PC_NAME_MAX + 1], const uint8_t *p, size_t n)
{
	if (memchr(p, 0, n))
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Writes u8 len + name; returns bytes written or -errno. */
static int put_name(const char *name, uint8_t *out, size_t cap)
{
	size_t n = name ? strlen(name) : 0;

	if (!name || n > PC_NAME_MAX)
		return -EINVAL;
	if (cap < 1 + n)
		return -ENOBUFS;
	out[0] = (uint8_t)n;
	memcpy(out + 1, name, n);
	return (int)(1 + n);
}

/* ---- main-stream commands ------------------------------------------- */

const char *pc_cmd_name(uint16_t cmd)
{
	return cmd < NCMDS && cmd_args[cmd].name ? cmd_args[cmd].name : "?";
}

int pc_cmd_check(uint16_t cmd, uint16_t len, struct mig_error **errp)
{
	if (cmd == MIG_CMD_INVALID || cmd >= NCMDS) {
		mig_error_setg(errp, "MIG_CMD 0x%x unknown (len 0x%x)", cmd,
			       len);
		return -EINVAL;
	}
	if (cmd_args[cmd].len != -1 && cmd_args[cmd].len != len) {
		mig_error_setg(errp,
			       "%s received with bad length - expecting %d, "
			       "got %d",
			       cmd_args[cmd].name, cmd_args[cmd].len, len);
		return -ERANGE;
	}
	return 0;
}

uint64_t pc_pagesize_summary(const uint64_t *page_sizes, unsigned n)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < n; i++)
		s |= page_sizes[i];
	return s;
}

uint16_t pc_advise_encode(const struct pc_advise *a, uint8_t out[16])
{
	if (!a->ram)
		return 0;
	mfd_store_be64(out, a->pagesize_summary);
	mfd_store_be64(out + 8, a->target_page_size);
	return 16;
}

static int advise_len(uint16_t len, bool postcopy_ram, struct mig_error **errp)
{
	if (len == 0 && postcopy_ram) {
		mig_error_setg(
			errp, "RAM postcopy is enabled but have 0 byte advise");
		return -EINVAL;
	}
	if (len == 16 && !postcopy_ram) {
		mig_error_setg(errp, "RAM postcopy is disabled but have 16 "
				     "byte advise");
		return -EINVAL;
	}
	if (len != 0 && len != 16) {
		mig_error_setg(errp, "CMD_POSTCOPY_ADVISE invalid length (%d)",
			       len);
		return -EINVAL;
	}
	return 0;
}

int pc_advise_decode(const uint8_t *p, uint16_t len, bool postcopy_ram,
		     uint64_t local_summary, uint64_t local_target_page_size,
		     struct pc_advise *a, struct mig_error **errp)
{
	int ret = advise_len(len, postcopy_ram, errp);

	memset(a, 0, sizeof(*a));
	if (ret || len == 0)
		return ret;
	a->ram = true;
	a->pagesize_summary = mfd_load_be64(p);
	a->target_page_size = mfd_load_be64(p + 8);
	if (a->pagesize_summary != local_summary) {
		mig_error_setg(
			errp,
			"Postcopy needs matching RAM page sizes (s=%" PRIx64
			" d=%" PRIx64 ")",
			a->pagesize_summary, local_summary);
		return -EINVAL;
	}
	if (a->target_page_size != local_target_page_size) {
		mig_error_setg(errp,
			       "Postcopy needs matching target page sizes "
			       "(s=%d d=%zd)",
			       (int)a->target_page_size,
			       (size_t)local_target_page_size);
		return -EINVAL;
	}
	return 0;
}

int pc_discard_encode(const char *block, const struct pc_range *r, unsigned n,
		      uint8_t *out, size_t cap)
{
	int nl;

	if (n == 0 || n > PC_DISCARD_MAX_PER_CMD)
		return -EINVAL;
	if (cap < 1)
		return -ENOBUFS;
	out[0] = PC_DISCARD_VERSION;
	nl = put_name(block, out + 1, cap - 1);
	if (nl < 0)
		return nl;
	if (cap < 1 + (size_t)nl + 1 + 16 * (size_t)n)
		return -ENOBUFS;
	out[1 + nl] = 0;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *q = out + 2 + nl + 16 * i;

		mfd_store_be64(q, r[i].start);
		mfd_store_be64(q + 8, r[i].length);
	}
	return 2 + nl + 16 * (int)n;
}

static int discard_fail(struct mig_error **errp, const char *what, int v)
{
	mig_error_setg(errp, "CMD_POSTCOPY_RAM_DISCARD %s (%d)", what, v);
	return -EINVAL;
}

int pc_discard_decode(const uint8_t *p, uint16_t len, struct pc_discard *d,
		      struct mig_error **errp)
{
	unsigned nl;
	unsigned rest;

	memset(d, 0, sizeof(*d));
	/* version, name length, >= 1 name byte, nil, one pair */
	if (len < 1 + 1 + 1 + 1 + 2 * 8)
		return discard_fail(errp, "invalid length", len);
	if (p[0] != PC_DISCARD_VERSION)
		return discard_fail(errp, "invalid version", p[0]);
	nl = p[1];
	if (nl != 0 && 3u + nl > len) /* QEMU would read the next record */
		return discard_fail(errp, "invalid length", len);
	if (nl == 0 || !copy_name(d->name, p + 2, nl)) {
		mig_error_setg(errp, "CMD_POSTCOPY_RAM_DISCARD Failed to "
				     "read RAMBlock ID");
		return -EINVAL;
	}
	if (p[2 + nl] != 0)
		return discard_fail(errp, "missing nil", p[2 + nl]);
	rest = len - (3u + nl);
	if (rest % 16)
		return discard_fail(errp, "invalid length", (int)rest);
	d->count = rest / 16;
	d->pairs = p + 3 + nl;
	return 0;
}

void pc_discard_get(const struct pc_discard *d, unsigned i, struct pc_range *r)
{
	r->start = mfd_load_be64(d->pairs + 16 * i);
	r->length = mfd_load_be64(d->pairs + 16 * i + 8);
}

int pc_discard_range_check(const char *block, const struct pc_range *r,
			   uint64_t used_length, uint64_t page_size,
			   struct mig_error **errp)
{
	if (r->start & (page_size - 1)) {
		mig_error_setg(errp,
			       "ram_block_discard_range: Unaligned start "
			       "address: 0x%" PRIx64,
			       r->start);
		return -EINVAL;
	}
	if (r->start > used_length || r->length > used_length - r->start) {
		mig_error_setg(errp,
			       "ram_block_discard_range: Overrun block '%s' "
			       "(%" PRIu64 "/%" PRIx64 "/%" PRIx64 ")",
			       block, r->start, r->length, used_length);
		return -EINVAL;
	}
	if (r->length & (page_size - 1)) {
		mig_error_setg(errp,
			       "ram_block_discard_range: Unaligned length: "
			       "%" PRIx64,
			       r->length);
		return -EINVAL;
	}
	return 0;
}

void pc_packaged_encode(uint32_t length, uint8_t out[4])
{
	mfd_store_be32(out, length);
}

int pc_packaged_decode(const uint8_t *p, uint16_t len, uint32_t max,
		       uint32_t *length, struct mig_error **errp)
{
	int ret = pc_cmd_check(MIG_CMD_PACKAGED, len, errp);

	if (ret)
		return ret;
	*length = mfd_load_be32(p);
	if (*length > max) {
		mig_error_setg(errp, "Unreasonably large packaged state: %zu",
			       (size_t)*length);
		return -EINVAL;
	}
	return 0;
}

int pc_recv_bitmap_cmd_encode(const char *block, uint8_t *out, size_t cap)
{
	return put_name(block, out, cap);
}

int pc_recv_bitmap_cmd_decode(const uint8_t *p, uint16_t len,
			      char name[PC_NAME_MAX + 1],
			      struct mig_error **errp)
{
	name[0] = '\0';
	if (len < 1 || p[0] == 0 || p[0] > len - 1u ||
	    !copy_name(name, p + 1, p[0])) {
		mig_error_setg(errp,
			       "loadvm_handle_recv_bitmap: failed to read "
			       "block name");
		return -EINVAL;
	}
	if (len != p[0] + 1u) {
		mig_error_setg(errp,
			       "loadvm_handle_recv_bitmap: invalid payload "
			       "length (%d)",
			       len);
		return -EINVAL;
	}
	return 0;
}

static int wrong_state(const char *cmd, enum pc_incoming_state ps,
		       struct mig_error **errp)
{
	mig_error_setg(errp, "CMD_%s in wrong postcopy state (%d)", cmd, ps);
	return -EINVAL;
}

int pc_incoming_step(enum pc_incoming_state *ps, uint16_t cmd,
		     struct mig_error **errp)
{
	switch (cmd) {
	case MIG_CMD_POSTCOPY_ADVISE:
		if (*ps != PC_INCOMING_NONE)
			return wrong_state("POSTCOPY_ADVISE", *ps, errp);
		*ps = PC_INCOMING_ADVISE;
		return 0;
	case MIG_CMD_POSTCOPY_RAM_DISCARD:
		if (*ps != PC_INCOMING_ADVISE && *ps != PC_INCOMING_DISCARD)
			return wrong_state("POSTCOPY_RAM_DISCARD", *ps, errp);
		*ps = PC_INCOMING_DISCARD;
		return 0;
	case MIG_CMD_POSTCOPY_LISTEN:
		if (*ps != PC_INCOMING_ADVISE && *ps != PC_INCOMING_DISCARD)
			return wrong_state("POSTCOPY_LISTEN", *ps, errp);
		*ps = PC_INCOMING_LISTENING;
		return 0;
	case MIG_CMD_POSTCOPY_RUN:
		if (*ps != PC_INCOMING_LISTENING)
			return wrong_state("POSTCOPY_RUN", *ps, errp);
		*ps = PC_INCOMING_RUNNING;
		return 0;
	default:
		return 0;
	}
}

/* ---- return path ------------------------------------------------------ */

int pc_rp_header_decode(const uint8_t hdr[PC_RP_HEADER], uint16_t *type,
			uint16_t *len, struct mig_error **errp)
{
	*type = mfd_load_be16(hdr);
	*len = mfd_load_be16(hdr + 2);
	if (*type >= PC_RP_MAX || *type == PC_RP_INVALID) {
		mig_error_setg(errp,
			       "Received invalid message 0x%04x length 0x%04x",
			       *type, *len);
		return -EINVAL;
	}
	if ((rp_args[*type].len != -1 && *len != rp_args[*type].len) ||
	    *len > PC_RP_PAYLOAD_MAX) {
		mig_error_setg(errp,
			       "Received '%s' message (0x%04x) with"
			       "incorrect length %d expecting %zu",
			       rp_args[*type].name, *type, *len,
			       (size_t)(ssize_t)rp_args[*type].len);
		return -EINVAL;
	}
	return 0;
}

static int decode_req_pages_id(const uint8_t *p, uint16_t len,
			       struct pc_rp_msg *m, struct mig_error **errp)
{
	size_t expected = 12 + 1;

	if (len >= expected)
		expected += p[12];
	if (len != expected) {
		mig_error_setg(errp, "Req_Page_id with length %d expecting %zd",
			       len, expected);
		return -EINVAL;
	}
	m->start = mfd_load_be64(p);
	m->len = mfd_load_be32(p + 8);
	m->has_name = true;
	if (!copy_name(m->name, p + 13, p[12])) {
		mig_error_setg(errp, "MIG_RP_MSG_REQ_PAGES has no block '%.*s'",
			       (int)p[12], (const char *)p + 13);
		return -EINVAL;
	}
	return 0;
}

static int decode_recv_bitmap(const uint8_t *p, uint16_t len,
			      struct pc_rp_msg *m, struct mig_error **errp)
{
	if (len < 1) {
		mig_error_setg(errp,
			       "MIG_RP_MSG_RECV_BITMAP missing block name");
		return -EINVAL;
	}
	/* QEMU reads p[0] name bytes whatever len says; insist they came */
	if (len != p[0] + 1u || !copy_name(m->name, p + 1, p[0])) {
		mig_error_setg(errp,
			       "MIG_RP_MSG_RECV_BITMAP with length %d "
			       "expecting %d",
			       len, p[0] + 1);
		return -EINVAL;
	}
	m->has_name = true;
	return 0;
}

int pc_rp_decode(uint16_t type, const uint8_t *p, uint16_t len,
		 struct pc_rp_msg *m, struct mig_error **errp)
{
	memset(m, 0, sizeof(*m));
	m->type = (enum pc_rp_type)type;
	switch (type) {
	case PC_RP_SHUT:
	case PC_RP_PONG:
		m->value = mfd_load_be32(p);
		return 0;
	case PC_RP_RESUME_ACK:
		m->value = mfd_load_be32(p);
		if (m->value != PC_RESUME_ACK_VALUE) {
			mig_error_setg(errp,
				       "illegal resume_ack value %" PRIu32,
				       m->value);
			return -EINVAL;
		}
		return 0;
	case PC_RP_REQ_PAGES:
		m->start = mfd_load_be64(p);
		m->len = mfd_load_be32(p + 8);
		return 0;
	case PC_RP_REQ_PAGES_ID:
		return decode_req_pages_id(p, len, m, errp);
	case PC_RP_RECV_BITMAP:
		return decode_recv_bitmap(p, len, m, errp);
	case PC_RP_SWITCHOVER_ACK:
		return 0;
	default:
		mig_error_setg(errp,
			       "Received invalid message 0x%04x length 0x%04x",
			       type, len);
		return -EINVAL;
	}
}

/* Payload of m into out (cap bytes); its length or -errno. */
static int rp_payload(const struct pc_rp_msg *m, uint8_t *out, size_t cap)
{
	int nl;

	switch (m->type) {
	case PC_RP_SHUT:
	case PC_RP_PONG:
	case PC_RP_RESUME_ACK:
		if (cap < 4)
			return -ENOBUFS;
		mfd_store_be32(out, m->value);
		return 4;
	case PC_RP_REQ_PAGES:
	case PC_RP_REQ_PAGES_ID:
		if (cap < 12)
			return -ENOBUFS;
		mfd_store_be64(out, m->start);
		mfd_store_be32(out + 8, m->len);
		if (m->type == PC_RP_REQ_PAGES)
			return 12;
		nl = put_name(m->name, out + 12, cap - 12);
		return nl < 0 ? nl : 12 + nl;
	case PC_RP_RECV_BITMAP:
		return put_name(m->name, out, cap);
	case PC_RP_SWITCHOVER_ACK:
		return 0;
	default:
		return -EINVAL;
	}
}

int pc_rp_encode(const struct pc_rp_msg *m, uint8_t *out, size_t cap)
{
	int n;

	if (cap < PC_RP_HEADER)
		return -ENOBUFS;
	n = rp_payload(m, out + PC_RP_HEADER, cap - PC_RP_HEADER);
	if (n < 0)
		return n;
	mfd_store_be16(out, (uint16_t)m->type);
	mfd_store_be16(out + 2, (uint16_t)n);
	return PC_RP_HEADER + n;
}

uint64_t pc_recv_bitmap_size(uint64_t used_length, uint64_t target_page_size)
{
	uint64_t nbits = used_length / target_page_size;

	return ((nbits + 7) / 8 + 7) & ~(uint64_t)7;
}

int64_t pc_recv_bitmap_body_encode(const uint8_t *le_bits, uint64_t size,
				   uint8_t *out, size_t cap)
{
	if (size > cap || cap - size < 16)
		return -ENOBUFS;
	mfd_store_be64(out, size);
	memcpy(out + 8, le_bits, size);
	mfd_store_be64(out + 8 + size, PC_RECV_BITMAP_ENDING);
	return (int64_t)(16 + size);
}

int pc_recv_bitmap_check_size(const char *block, uint64_t got,
			      uint64_t expected, struct mig_error **errp)
{
	if (got == expected)
		return 0;
	mig_error_setg(errp,
		       "ramblock '%s' bitmap size mismatch (0x%" PRIx64
		       " != 0x%" PRIx64 ")",
		       block, got, expected);
	return -EINVAL;
}

int pc_recv_bitmap_check_end(const char *block, uint64_t end_mark,
			     struct mig_error **errp)
{
	if (end_mark == PC_RECV_BITMAP_ENDING)
		return 0;
	mig_error_setg(errp, "ramblock '%s' end mark incorrect: 0x%" PRIx64,
		       block, end_mark);
	return -EINVAL;
}
