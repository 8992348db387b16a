/* migdump_stream.c — decodes QEMU's main migration stream for migdump:
 * header, configuration, the section loop (START/PART/END/FULL with their
 * footers, commands, nested PACKAGED data), EOF and the vmdesc. The ram
 * section's records are migdump_ram.c's, device state migdump_dev.c's.
 * Single-threaded; one mdump_stream per call. */
#include "contrib/migdump_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "multifd/vmstate.h"

#define MACHINE_NAME_MAX 255
#define CAPS_COUNT_MAX 64
#define PACKAGED_MAX (1u << 24) /* QEMU's limit on a PACKAGED blob */
#define PACKAGED_DEPTH_MAX 2

static int decode_loop(struct mdump_dec *d);

/* ---- header and configuration ---------------------------------------- */

static int get_capabilities(struct mdump_dec *d)
{
	struct mdump_stream *s = d->s;
	char name[MDUMP_NAME_MAX];
	uint64_t off = d->c.pos;
	uint32_t n;
	int ret = mdump_get_be32(&d->c, "the configuration", &n);

	if (ret)
		return ret;
	if (n > CAPS_COUNT_MAX)
		return mdump_fail(&d->c, off,
				  "capability count expected <= %u, found %u",
				  CAPS_COUNT_MAX, n);
	for (uint32_t i = 0; i < n; i++) {
		ret = mdump_get_name(&d->c, "the configuration",
				     "capability name", name);
		if (ret)
			return ret;
		if (!strcmp(name, "x-ignore-shared"))
			d->ignore_shared = true;
		else if (!strcmp(name, "mapped-ram"))
			d->mapped_ram = true;
		if (s->ncaps < MDUMP_CAPS_MAX)
			memcpy(s->caps[s->ncaps++], name, sizeof(name));
	}
	return 0;
}

static int get_page_bits(struct mdump_dec *d)
{
	uint64_t off = d->c.pos;
	uint32_t bits;
	int ret = mdump_get_be32(&d->c, "the configuration", &bits);

	if (ret)
		return ret;
	/* RAM record flags use bits 0..9: pages are at least 1 KiB. */
	if (bits < 10 || bits > 21)
		return mdump_fail(&d->c, off,
				  "target-page-bits expected 10..21, found %u",
				  bits);
	d->s->target_page_bits = bits;
	d->page_bits = bits;
	d->page_size = 1ull << bits;
	return 0;
}

static int get_config_subsection(struct mdump_dec *d)
{
	char name[MDUMP_NAME_MAX];
	const uint8_t *uuid;
	uint64_t off;
	uint32_t version;
	int ret;

	d->c.pos++; /* the 0x05 the caller peeked */
	off = d->c.pos;
	ret = mdump_get_str8(&d->c, "the configuration", name, NULL);
	if (!ret)
		ret = mdump_get_be32(&d->c, "the configuration", &version);
	if (ret)
		return ret;
	if (!strcmp(name, "configuration/capabilities"))
		return get_capabilities(d);
	if (!strcmp(name, "configuration/target-page-bits"))
		return get_page_bits(d);
	if (strcmp(name, "configuration/uuid")) {
		char esc[4 * MDUMP_NAME_MAX];

		mdump_escape((const uint8_t *)name, strlen(name), esc,
			     sizeof(esc));
		return mdump_fail(&d->c, off,
				  "configuration subsection expected "
				  "capabilities, uuid or target-page-bits, "
				  "found '%s'",
				  esc);
	}
	ret = mdump_get_bytes(&d->c, 16, "the configuration", &uuid);
	if (ret)
		return ret;
	memcpy(d->s->uuid, uuid, 16);
	d->s->has_uuid = true;
	return 0;
}

static int get_configuration(struct mdump_dec *d)
{
	struct mdump_stream *s = d->s;
	uint64_t start = d->c.pos, off;
	const uint8_t *name;
	uint32_t len;
	int ret;

	d->c.pos++; /* 0x07 */
	off = d->c.pos;
	ret = mdump_get_be32(&d->c, "the configuration", &len);
	if (ret)
		return ret;
	if (len > MACHINE_NAME_MAX)
		return mdump_fail(&d->c, off,
				  "machine name length expected <= %u, found "
				  "%u",
				  MACHINE_NAME_MAX, len);
	ret = mdump_get_bytes(&d->c, len, "the configuration", &name);
	if (ret)
		return ret;
	mdump_escape(name, len, s->machine, sizeof(s->machine));
	s->has_config = true;
	while (!ret && mdump_left(&d->c) &&
	       d->c.buf[d->c.pos] == VMS_SUBSECTION)
		ret = get_config_subsection(d);
	mdump_trace(d->o, 1, start, "configuration machine '%s'%s%s",
		    s->machine, s->ncaps ? " capabilities" : "",
		    s->ncaps ? s->caps[0] : "");
	return ret;
}

static int get_header(struct mdump_dec *d)
{
	struct mdump_stream *s = d->s;
	uint64_t off = d->c.pos;
	int ret;

	if (!mdump_left(&d->c))
		return mdump_short_before(&d->c, "the file header");
	ret = mdump_get_be32(&d->c, "the file header", &s->magic);
	if (!ret && s->magic != QEVM_MAGIC)
		return mdump_fail(&d->c, off,
				  "file magic expected 0x%08x (QEVM), found "
				  "0x%08x",
				  QEVM_MAGIC, s->magic);
	if (!ret)
		ret = mdump_get_be32(&d->c, "the file header", &s->version);
	if (ret)
		return ret;
	if (s->version != QEVM_VERSION)
		return mdump_fail(&d->c, off + 4,
				  "file version expected %u, found %u%s",
				  QEVM_VERSION, s->version,
				  s->version == QEVM_VERSION_COMPAT
					  ? " (the obsolete v2 format)"
					  : "");
	mdump_trace(d->o, 1, off, "header QEVM version %u", s->version);
	if (mdump_left(&d->c) && d->c.buf[d->c.pos] == VMS_CONFIGURATION)
		return get_configuration(d);
	return 0;
}

/* ---- sections ------------------------------------------------------------ */

/* Counts every top-level item; keeps the first MDUMP_EVENTS_MAX. */
static int add_event(struct mdump_dec *d, const struct mdump_event *in)
{
	struct mdump_stream *s = d->s;
	struct mdump_event *ev;

	if (in->kind == MDUMP_EV_SECTION && in->type <= VMS_SECTION_FULL)
		s->type_counts[in->type]++;
	if (in->kind == MDUMP_EV_COMMAND && in->cmd < MDUMP_CMDS)
		s->cmd_counts[in->cmd]++;
	if (s->nev >= MDUMP_EVENTS_MAX) {
		s->events_dropped++;
		return 0;
	}
	ev = mdump_grow((void **)&s->ev, &s->nev, &s->ev_cap, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	*ev = *in;
	return 0;
}

static int se_cmp(const void *ctx, uint32_t index, const void *key)
{
	const struct mdump_stream *s = ctx;
	uint32_t a = s->se[index].id, b = *(const uint32_t *)key;

	return a < b ? -1 : a > b;
}

static long find_se(const struct mdump_stream *s, uint32_t id)
{
	size_t pos =
		mdump_lower_bound(s->se_order, s->nse_order, se_cmp, s, &id);

	if (pos < s->nse_order && s->se[s->se_order[pos]].id == id)
		return s->se_order[pos];
	return -1;
}

static bool same_se(const struct mdump_se *a, const struct mdump_se *b)
{
	return a->instance == b->instance && a->version == b->version &&
	       !strcmp(a->idstr, b->idstr);
}

/* START/FULL map id -> (idstr, instance, version). A header that changes
 * what an id means gets a new entry (earlier items keep theirs). */
static int register_se(struct mdump_dec *d, const struct mdump_se *in,
		       uint64_t off, long *idx)
{
	struct mdump_stream *s = d->s;
	size_t pos = mdump_lower_bound(s->se_order, s->nse_order, se_cmp, s,
				       &in->id);
	bool known = pos < s->nse_order && s->se[s->se_order[pos]].id == in->id;
	struct mdump_se *se;

	if (known && same_se(&s->se[s->se_order[pos]], in)) {
		*idx = s->se_order[pos];
		return 0;
	}
	if (s->nse >= MDUMP_SE_MAX)
		return mdump_fail(&d->c, off,
				  "section headers expected at most %u "
				  "different START/FULL headers, found more",
				  MDUMP_SE_MAX);
	se = mdump_grow((void **)&s->se, &s->nse, &s->se_cap, sizeof(*se));
	if (!se)
		return -ENOMEM;
	*se = *in;
	*idx = (long)(s->nse - 1);
	if (known) {
		s->se_order[pos] = (uint32_t)*idx;
		return 0;
	}
	if (mdump_order_insert(&s->se_order, s->nse_order, pos, (uint32_t)*idx))
		return -ENOMEM;
	s->nse_order++;
	return 0;
}

/* The versions QEMU 7.2 .. 10.0 load for the sections migdump decodes. */
static int check_version(struct mdump_dec *d, const struct mdump_se *se,
			 uint64_t off)
{
	uint32_t lo = 0, hi = UINT32_MAX;

	if (!strcmp(se->idstr, "ram")) {
		lo = hi = VMS_RAM_VERSION;
	} else if (!strcmp(se->idstr, "timer")) {
		lo = 1;
		hi = VMS_TIMER_VERSION;
	} else if (!strcmp(se->idstr, "globalstate")) {
		lo = hi = VMS_GLOBALSTATE_VERSION;
	}
	if (se->version >= lo && se->version <= hi)
		return 0;
	if (lo == hi)
		return mdump_fail(&d->c, off,
				  "section '%s' version expected %u, found %u",
				  se->idstr, lo, se->version);
	return mdump_fail(&d->c, off,
			  "section '%s' version expected %u..%u, found %u",
			  se->idstr, lo, hi, se->version);
}

static int get_full_header(struct mdump_dec *d, long *idx)
{
	struct mdump_se se = {0};
	uint64_t off = d->c.pos - 1, ver_off;
	int ret = mdump_get_be32(&d->c, "a section header", &se.id);

	if (!ret)
		ret = mdump_get_name(&d->c, "a section header", "section idstr",
				     se.idstr);
	if (!ret)
		ret = mdump_get_be32(&d->c, "a section header", &se.instance);
	ver_off = d->c.pos;
	if (!ret)
		ret = mdump_get_be32(&d->c, "a section header", &se.version);
	if (!ret)
		ret = check_version(d, &se, ver_off);
	if (ret)
		return ret;
	return register_se(d, &se, off, idx);
}

static int get_short_header(struct mdump_dec *d, long *idx)
{
	uint64_t off = d->c.pos;
	uint32_t id;
	int ret = mdump_get_be32(&d->c, "a section header", &id);

	if (ret)
		return ret;
	*idx = find_se(d->s, id);
	if (*idx < 0)
		return mdump_fail(&d->c, off,
				  "section id expected one opened by a START "
				  "or FULL section, found %u",
				  id);
	return 0;
}

static int get_footer(struct mdump_dec *d, uint32_t id)
{
	uint64_t off = d->c.pos;
	uint32_t got;
	uint8_t b;
	int ret;

	if (d->o->no_footer)
		return 0;
	ret = mdump_get_u8(&d->c, "a section footer", &b);
	if (ret)
		return ret;
	if (b != VMS_SECTION_FOOTER)
		return mdump_fail(&d->c, off,
				  "section footer for section %u expected "
				  "0x%02x, found 0x%02x",
				  id, VMS_SECTION_FOOTER, b);
	ret = mdump_get_be32(&d->c, "a section footer", &got);
	if (!ret && got != id)
		return mdump_fail(&d->c, off + 1,
				  "section footer for section %u expected id "
				  "%u, found %u",
				  id, id, got);
	return ret;
}

static void trace_section(struct mdump_dec *d, const struct mdump_event *ev)
{
	const struct mdump_se *se = &d->s->se[ev->se];
	char esc[4 * MDUMP_NAME_MAX], counts[256] = "";
	size_t n = 0;

	if (!d->o->trace || d->o->verbose < 1)
		return;
	mdump_escape((const uint8_t *)se->idstr, strlen(se->idstr), esc,
		     sizeof(esc));
	for (int r = 0; r < MDUMP_REC__MAX && n < sizeof(counts); r++)
		if (ev->counts.rec[r])
			n += (size_t)snprintf(
				counts + n, sizeof(counts) - n, " %s %llu",
				mdump_rec_name(r),
				(unsigned long long)ev->counts.rec[r]);
	mdump_trace(d->o, 1, ev->offset,
		    "%-5s id %u '%s' instance %u version %u (%llu bytes)%s%s",
		    mdump_section_type_name(ev->type), ev->id, esc,
		    se->instance, se->version, (unsigned long long)ev->bytes,
		    ev->opaque ? " opaque" : "", counts);
}

static int decode_section(struct mdump_dec *d, uint8_t type, uint64_t off)
{
	struct mdump_event ev = {
		.kind = MDUMP_EV_SECTION, .offset = off, .type = type};
	long idx;
	int ret, ret2;

	if (type == VMS_SECTION_START || type == VMS_SECTION_FULL)
		ret = get_full_header(d, &idx);
	else
		ret = get_short_header(d, &idx);
	if (ret)
		return ret;
	ev.se = (int)idx;
	ev.id = d->s->se[idx].id;
	if (!strcmp(d->s->se[idx].idstr, "ram"))
		ret = mdump_ram_section(d, &ev);
	else
		ret = mdump_device_section(d, &ev, &d->s->se[idx]);
	if (!ret)
		ret = get_footer(d, ev.id);
	ev.bytes = d->c.pos - off;
	if (!ret)
		trace_section(d, &ev);
	/* A broken section is kept too: the report shows where it was. */
	ret2 = ret == -ENOMEM ? 0 : add_event(d, &ev);
	return ret ? ret : ret2;
}

/* ---- commands ------------------------------------------------------------ */

/* Payload lengths QEMU requires (-1: variable). */
static const int cmd_len[] = {
	[MIG_CMD_OPEN_RETURN_PATH] = 0, [MIG_CMD_PING] = 4,
	[MIG_CMD_POSTCOPY_ADVISE] = -1, [MIG_CMD_POSTCOPY_LISTEN] = 0,
	[MIG_CMD_POSTCOPY_RUN] = 0,	[MIG_CMD_POSTCOPY_RAM_DISCARD] = -1,
	[MIG_CMD_PACKAGED] = 4,		[MIG_CMD_ENABLE_COLO] = 0,
	[MIG_CMD_POSTCOPY_RESUME] = 0,	[MIG_CMD_RECV_BITMAP] = -1,
	[MIG_CMD_SWITCHOVER_START] = 0,
};

/* The PACKAGED blob: a nested stream of sections and commands (postcopy's
 * device state), decoded in place; it may end early with an EOF. */
static int decode_packaged(struct mdump_dec *d, uint64_t len_off, uint32_t len)
{
	uint64_t saved = d->c.limit, end;
	int ret;

	if (len > PACKAGED_MAX)
		return mdump_fail(&d->c, len_off,
				  "PACKAGED length expected <= %u, found %u",
				  PACKAGED_MAX, len);
	if (d->depth >= PACKAGED_DEPTH_MAX)
		return mdump_fail(&d->c, len_off - 5,
				  "command expected no "
				  "PACKAGED inside PACKAGED data, found one");
	if (len > mdump_left(&d->c)) {
		d->c.pos = d->c.limit;
		return mdump_short(&d->c, "the data of a PACKAGED command");
	}
	end = d->c.pos + len;
	d->c.limit = end;
	d->depth++;
	ret = decode_loop(d);
	d->depth--;
	d->c.limit = saved;
	if (!ret)
		d->c.pos = end;
	return ret;
}

static int check_command(struct mdump_dec *d, uint64_t off, uint16_t cmd,
			 uint16_t len)
{
	if (cmd == MIG_CMD_INVALID || cmd > MIG_CMD_SWITCHOVER_START)
		return mdump_fail(&d->c, off + 1,
				  "command expected 1..%u, found %u (len %u)",
				  MIG_CMD_SWITCHOVER_START, cmd, len);
	if (cmd_len[cmd] >= 0 && len != cmd_len[cmd])
		return mdump_fail(&d->c, off + 3,
				  "command %s length expected %d, found %u",
				  mdump_command_name(cmd), cmd_len[cmd], len);
	/* Without postcopy-ram (dirty bitmaps only) the advise is empty. */
	if (cmd == MIG_CMD_POSTCOPY_ADVISE && len != 0 && len != 16)
		return mdump_fail(&d->c, off + 3,
				  "command POSTCOPY_ADVISE length expected 0 "
				  "or 16, found %u",
				  len);
	return 0;
}

static int decode_command(struct mdump_dec *d, uint64_t off)
{
	struct mdump_event ev;
	const uint8_t *p;
	uint16_t cmd, len;
	uint64_t value = 0;
	int ret = mdump_get_be16(&d->c, "a command", &cmd);

	if (!ret)
		ret = mdump_get_be16(&d->c, "a command", &len);
	if (!ret)
		ret = check_command(d, off, cmd, len);
	if (!ret)
		ret = mdump_get_bytes(&d->c, len, "a command's payload", &p);
	if (ret)
		return ret;
	if (len == 4)
		value = (uint64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
	ev = (struct mdump_event){
		.kind = MDUMP_EV_COMMAND,
		.offset = off,
		.se = -1,
		.cmd = cmd,
		.cmd_len = len,
		.cmd_value = value,
		.bytes = d->c.pos - off,
	};
	ret = add_event(d, &ev);
	if (ret)
		return ret;
	mdump_trace(d->o, 1, off, "COMMAND %s (%u) len %u",
		    mdump_command_name(cmd), cmd, len);
	if (cmd == MIG_CMD_PACKAGED)
		return decode_packaged(d, off + 5, (uint32_t)value);
	return 0;
}

/* ---- the loop, EOF and vmdesc -----------------------------------------------
 */

static int decode_eof(struct mdump_dec *d, uint64_t off)
{
	struct mdump_event ev = {
		.kind = MDUMP_EV_EOF, .offset = off, .se = -1, .bytes = 1};

	if (!d->depth) {
		d->s->has_eof = true;
		d->s->eof_offset = off;
	}
	mdump_trace(d->o, 1, off, "EOF%s", d->depth ? " (packaged)" : "");
	return add_event(d, &ev);
}

/* Sections and commands until EOF (or the end of PACKAGED data). */
static int decode_loop(struct mdump_dec *d)
{
	uint64_t off;
	uint8_t type;
	int ret = 0;

	while (!ret) {
		off = d->c.pos;
		if (!mdump_left(&d->c))
			return d->depth ? 0
					: mdump_short_before(&d->c,
							     "the EOF "
							     "marker (0x00)");
		type = d->c.buf[d->c.pos++];
		switch (type) {
		case VMS_EOF:
			return decode_eof(d, off);
		case VMS_SECTION_START:
		case VMS_SECTION_PART:
		case VMS_SECTION_END:
		case VMS_SECTION_FULL:
			ret = decode_section(d, type, off);
			break;
		case VMS_COMMAND:
			ret = decode_command(d, off);
			break;
		default:
			return mdump_fail(&d->c, off,
					  "section type expected 0x00 (EOF), "
					  "0x01..0x04 (section) or 0x08 "
					  "(command), found 0x%02x",
					  type);
		}
	}
	return ret;
}

static int decode_tail(struct mdump_dec *d)
{
	struct mdump_stream *s = d->s;
	struct mdump_event ev;
	uint64_t off = d->c.pos;
	const uint8_t *json;
	uint32_t len;
	int ret;

	if (!mdump_left(&d->c))
		return 0; /* no vmdesc: suppress-vmdesc or postcopy */
	if (d->c.buf[off] != VMS_VMDESCRIPTION)
		return mdump_fail(&d->c, off,
				  "vmdesc (0x06) or end of stream expected "
				  "after EOF, found 0x%02x",
				  d->c.buf[off]);
	d->c.pos++;
	ret = mdump_get_be32(&d->c, "the vmdesc", &len);
	if (!ret)
		ret = mdump_get_bytes(&d->c, len, "the vmdesc", &json);
	if (ret)
		return ret;
	s->has_vmdesc = true;
	s->vmdesc_offset = off + 5;
	s->vmdesc_len = len;
	ev = (struct mdump_event){
		.kind = MDUMP_EV_VMDESC,
		.offset = off,
		.se = -1,
		.bytes = d->c.pos - off,
	};
	if (add_event(d, &ev))
		return -ENOMEM;
	mdump_trace(d->o, 1, off, "VMDESC %u bytes of JSON", len);
	if (mdump_left(&d->c))
		return mdump_fail(&d->c, d->c.pos,
				  "end of stream expected after the vmdesc, "
				  "found 0x%02x",
				  d->c.buf[d->c.pos]);
	return 0;
}

int mdump_stream_decode(const uint8_t *buf, uint64_t len,
			const struct mdump_opts *o, struct mdump_stream *s)
{
	struct mdump_dec d = {.o = o, .s = s, .last_block = -1};
	int ret;

	s->size = len;
	s->target_page_bits = 12;
	s->vm_was_suspended = -1;
	d.page_bits = 12;
	d.page_size = 4096;
	d.ignore_shared = o->ignore_shared;
	d.mapped_ram = o->mapped_ram;
	mdump_cur_init(&d.c, buf, len, &s->err, &s->err_offset, &s->truncated);
	if (o->start > len) {
		ret = mdump_fail(&d.c, len,
				 "the stream's start expected <= %llu (the "
				 "file size), found %llu",
				 (unsigned long long)len,
				 (unsigned long long)o->start);
		goto out;
	}
	d.c.pos = o->start;
	ret = get_header(&d);
	if (!ret)
		ret = decode_loop(&d);
	if (!ret)
		ret = decode_tail(&d);
out:
	s->end = d.c.pos;
	if (ret == -ENOMEM && !s->err)
		mig_error_setg(&s->err, "out of memory");
	return ret;
}

void mdump_stream_free(struct mdump_stream *s)
{
	free(s->se);
	free(s->se_order);
	free(s->ev);
	free(s->blocks);
	free(s->block_order);
	mig_error_free(s->err);
	memset(s, 0, sizeof(*s));
}
