/* migdump_dev.c — device sections for migdump: 'timer' and 'globalstate'
 * decoded field by field (with their subsections), any other device
 * skipped to its section footer (VMState has no lengths: without the
 * vmdesc its fields cannot be walked). Single-threaded. */
#include "contrib/migdump_priv.h"

#include <string.h>

#include "multifd/byteorder.h"
#include "multifd/vmstate.h"

#define GLOBALSTATE_BODY 100

/* Subsections migdump can step over: name, version, bytes of fields. */
static const struct {
	const char *name;
	uint32_t version;
	uint32_t size;
} known_subsections[] = {
	{"timer/icount", 1, 16},	    /* bias, icount */
	{"timer/icount/warp_timer", 1, 16}, /* warp start, timer */
	{"timer/icount/timers", 1, 16},	    /* rt timer, vm timer */
	{"timer/icount/shift", 1, 2},	    /* time shift */
	{"timer/icount/shift", 2, 10},	    /* + last delta */
};

static int find_subsection(const char *name, uint32_t version)
{
	for (size_t i = 0;
	     i < sizeof(known_subsections) / sizeof(known_subsections[0]); i++)
		if (!strcmp(known_subsections[i].name, name) &&
		    known_subsections[i].version == version)
			return (int)i;
	return -1;
}

/* Subsections follow a VMState's fields, each opened by a 0x05 byte. */
static int skip_subsections(struct mdump_dec *d, const struct mdump_se *se)
{
	char name[MDUMP_NAME_MAX], esc[4 * MDUMP_NAME_MAX];
	const uint8_t *p;
	uint32_t version;
	uint64_t off;
	int i, ret = 0;

	while (!ret && mdump_left(&d->c) &&
	       d->c.buf[d->c.pos] == VMS_SUBSECTION) {
		d->c.pos++;
		off = d->c.pos;
		ret = mdump_get_str8(&d->c, "a subsection header", name, NULL);
		if (!ret)
			ret = mdump_get_be32(&d->c, "a subsection header",
					     &version);
		if (ret)
			return ret;
		i = find_subsection(name, version);
		if (i < 0) {
			mdump_escape((const uint8_t *)name, strlen(name), esc,
				     sizeof(esc));
			return mdump_fail(&d->c, off,
					  "subsection of section '%s' "
					  "expected one migdump knows, found "
					  "'%s' version %u",
					  se->idstr, esc, version);
		}
		ret = mdump_get_bytes(&d->c, known_subsections[i].size,
				      "a subsection", &p);
	}
	return ret;
}

static int decode_timer(struct mdump_dec *d, const struct mdump_se *se)
{
	uint64_t ticks, unused, clock = 0;
	int ret = mdump_get_be64(&d->c, "section 'timer'", &ticks);

	if (!ret)
		ret = mdump_get_be64(&d->c, "section 'timer'", &unused);
	if (!ret && se->version >= 2)
		ret = mdump_get_be64(&d->c, "section 'timer'", &clock);
	if (!ret)
		ret = skip_subsections(d, se);
	if (ret)
		return ret;
	d->s->has_timer = true;
	d->s->cpu_ticks_offset = (int64_t)ticks;
	d->s->cpu_clock_offset = (int64_t)clock;
	return 0;
}

/* QEMU 10.0's RunState names. */
static const char *const runstates[] = {
	"debug",      "inmigrate",   "internal-error", "io-error",
	"paused",     "postmigrate", "prelaunch",      "finish-migrate",
	"restore-vm", "running",     "save-vm",	       "shutdown",
	"suspended",  "watchdog",    "guest-panicked", "colo",
};

static bool is_runstate(const char *name)
{
	for (size_t i = 0; i < sizeof(runstates) / sizeof(runstates[0]); i++)
		if (!strcmp(runstates[i], name))
			return true;
	return false;
}

/* be32 size, then 100 bytes: 7.2 a NUL-padded name; 10.0 name[32],
 * has_vm_was_suspended, vm_was_suspended, 66 unused bytes. */
static int decode_globalstate(struct mdump_dec *d, const struct mdump_se *se)
{
	struct mdump_stream *s = d->s;
	const uint8_t *body;
	char esc[4 * GLOBALSTATE_BODY];
	uint64_t off;
	size_t n;
	int ret = mdump_get_be32(&d->c, "section 'globalstate'", &s->gs_size);

	off = d->c.pos;
	if (!ret)
		ret = mdump_get_bytes(&d->c, GLOBALSTATE_BODY,
				      "section 'globalstate'", &body);
	if (ret)
		return ret;
	n = strnlen((const char *)body, GLOBALSTATE_BODY);
	mdump_escape(body, n, esc, sizeof(esc));
	if (n == GLOBALSTATE_BODY)
		return mdump_fail(&d->c, off,
				  "globalstate runstate expected a "
				  "NUL-terminated name, found '%s'",
				  esc);
	if (!is_runstate(esc))
		return mdump_fail(&d->c, off,
				  "globalstate runstate expected a RunState "
				  "name, found '%s'",
				  esc);
	memcpy(s->runstate, body, n + 1);
	s->vm_was_suspended = n < 32 && body[32] == 1 ? body[33] : -1;
	s->has_globalstate = true;
	return skip_subsections(d, se);
}

/* A device migdump cannot walk: find its footer (0x7E, the section id, then
 * a byte that can start the next item) and step to it. */
static int skip_opaque(struct mdump_dec *d, struct mdump_event *ev,
		       const struct mdump_se *se)
{
	const uint8_t *b = d->c.buf;
	uint64_t i;

	if (d->o->no_footer)
		return mdump_fail(&d->c, d->c.pos,
				  "section '%s' expected a device migdump "
				  "decodes (others are skipped to their "
				  "footer, and footers are off)",
				  se->idstr);
	for (i = d->c.pos; i + 5 <= d->c.limit; i++) {
		const uint8_t *p =
			memchr(b + i, VMS_SECTION_FOOTER, d->c.limit - 4 - i);

		if (!p)
			break;
		i = (uint64_t)(p - b);
		if (mfd_load_be32(p + 1) == se->id &&
		    (i + 5 == d->c.limit || b[i + 5] <= VMS_SECTION_FULL ||
		     b[i + 5] == VMS_COMMAND)) {
			d->c.pos = i;
			ev->opaque = true;
			return 0;
		}
	}
	d->c.pos = d->c.limit;
	return mdump_short(&d->c, "an undecoded device section (no footer "
				  "found)");
}

int mdump_device_section(struct mdump_dec *d, struct mdump_event *ev,
			 const struct mdump_se *se)
{
	if (!strcmp(se->idstr, "timer"))
		return decode_timer(d, se);
	if (!strcmp(se->idstr, "globalstate"))
		return decode_globalstate(d, se);
	return skip_opaque(d, ev, se);
}
