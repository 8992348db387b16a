/* migdump_report.c — migdump's names for wire values and its text
 * summaries of a decoded main stream and multifd channel. Reads reports,
 * never the input. Single-threaded. */
#include "contrib/migdump.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "multifd/packet.h"
#include "multifd/vmstate.h"

static const char *const rec_names[MDUMP_REC__MAX] = {
	[MDUMP_REC_MEM_SIZE] = "MEM_SIZE",
	[MDUMP_REC_PAGE] = "PAGE",
	[MDUMP_REC_ZERO] = "ZERO",
	[MDUMP_REC_XBZRLE] = "XBZRLE",
	[MDUMP_REC_COMPRESS] = "COMPRESS_PAGE",
	[MDUMP_REC_CONTINUE] = "CONTINUE",
	[MDUMP_REC_EOS] = "EOS",
	[MDUMP_REC_FLUSH] = "MULTIFD_FLUSH",
	[MDUMP_REC_HOOK] = "HOOK",
};

const char *mdump_rec_name(enum mdump_rec r)
{
	return (unsigned)r < MDUMP_REC__MAX ? rec_names[r] : "?";
}

const char *mdump_section_type_name(uint8_t type)
{
	switch (type) {
	case VMS_SECTION_START:
		return "START";
	case VMS_SECTION_PART:
		return "PART";
	case VMS_SECTION_END:
		return "END";
	case VMS_SECTION_FULL:
		return "FULL";
	default:
		return "?";
	}
}

static const char *const cmd_names[] = {
	[MIG_CMD_INVALID] = "INVALID",
	[MIG_CMD_OPEN_RETURN_PATH] = "OPEN_RETURN_PATH",
	[MIG_CMD_PING] = "PING",
	[MIG_CMD_POSTCOPY_ADVISE] = "POSTCOPY_ADVISE",
	[MIG_CMD_POSTCOPY_LISTEN] = "POSTCOPY_LISTEN",
	[MIG_CMD_POSTCOPY_RUN] = "POSTCOPY_RUN",
	[MIG_CMD_POSTCOPY_RAM_DISCARD] = "POSTCOPY_RAM_DISCARD",
	[MIG_CMD_PACKAGED] = "PACKAGED",
	[MIG_CMD_ENABLE_COLO] = "ENABLE_COLO",
	[MIG_CMD_POSTCOPY_RESUME] = "POSTCOPY_RESUME",
	[MIG_CMD_RECV_BITMAP] = "RECV_BITMAP",
	[MIG_CMD_SWITCHOVER_START] = "SWITCHOVER_START",
};

const char *mdump_command_name(uint16_t cmd)
{
	if (cmd >= sizeof(cmd_names) / sizeof(cmd_names[0]))
		return NULL;
	return cmd_names[cmd];
}

const char *mdump_method_name(uint32_t bits)
{
	switch (bits) {
	case 0:
		return "none";
	case MFD_FLAG_ZLIB:
		return "zlib";
	case MFD_FLAG_ZSTD:
		return "zstd";
	case 0x08:
		return "qpl";
	case 0x10:
		return "uadk";
	case 0x20:
		return "qatzip";
	default:
		return "unknown";
	}
}

void mdump_escape(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return;
	for (size_t i = 0; i < len && o + 5 <= outlen; i++) {
		if (in[i] >= 0x20 && in[i] < 0x7f && in[i] != '\\' &&
		    in[i] != '\'')
			out[o++] = (char)in[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
					      in[i]);
	}
	out[o] = '\0';
}

static void format_uuid(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%"
		 "02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* ---- main stream ------------------------------------------------------------
 */

static void print_config(FILE *out, const struct mdump_stream *s)
{
	char uuid[37];

	if (!s->has_config) {
		fprintf(out,
			"  configuration  none (send-configuration=off)\n");
		return;
	}
	fprintf(out,
		"  configuration  machine '%s', capabilities:", s->machine);
	for (unsigned i = 0; i < s->ncaps; i++)
		fprintf(out, "%s %s", i ? "," : "", s->caps[i]);
	fprintf(out, "%s", s->ncaps ? "" : " none");
	if (s->has_uuid) {
		format_uuid(s->uuid, uuid);
		fprintf(out, ", uuid %s", uuid);
	}
	fprintf(out, ", target-page-bits %u\n", s->target_page_bits);
}

static void print_events(FILE *out, const struct mdump_stream *s)
{
	const uint64_t *t = s->type_counts;
	uint64_t ncmds = 0;

	for (unsigned c = 0; c < MDUMP_CMDS; c++)
		ncmds += s->cmd_counts[c];
	fprintf(out,
		"  sections       START %" PRIu64 ", PART %" PRIu64
		", END %" PRIu64 ", FULL %" PRIu64 "; commands %" PRIu64,
		t[VMS_SECTION_START], t[VMS_SECTION_PART], t[VMS_SECTION_END],
		t[VMS_SECTION_FULL], ncmds);
	for (unsigned c = 1; c < MDUMP_CMDS; c++)
		if (s->cmd_counts[c])
			fprintf(out, ", %s %" PRIu64,
				mdump_command_name((uint16_t)c),
				s->cmd_counts[c]);
	fputc('\n', out);
	if (s->events_dropped)
		fprintf(out,
			"  (the report lists the first %u items; %" PRIu64
			" more are only counted)\n",
			MDUMP_EVENTS_MAX, s->events_dropped);
}

static void print_counts(FILE *out, const struct mdump_counts *c, bool all)
{
	bool first = true;

	for (int r = 0; r < MDUMP_REC__MAX; r++) {
		if (!all && !c->rec[r])
			continue;
		fprintf(out, "%s%s %" PRIu64, first ? "" : ", ",
			mdump_rec_name(r), c->rec[r]);
		first = false;
	}
	if (first)
		fprintf(out, "no records");
}

static void print_block(FILE *out, const struct mdump_block *b)
{
	fprintf(out, "  block '%s'  used_length %" PRIu64 " (0x%" PRIx64 "): ",
		b->name, b->used_length, b->used_length);
	print_counts(out, &b->counts, false);
	if (b->mfd_normal || b->mfd_zero)
		fprintf(out, "; multifd normal %" PRIu64 ", zero %" PRIu64,
			b->mfd_normal, b->mfd_zero);
	if (b->page_size)
		fprintf(out, "; page_size %" PRIu64, b->page_size);
	if (b->has_addr)
		fprintf(out, "; addr 0x%" PRIx64, b->addr);
	if (b->mapped_ram)
		fprintf(out,
			"; mapped-ram v%u bitmap at 0x%" PRIx64
			", pages at 0x%" PRIx64 ", %" PRIu64 " pages present",
			b->mr_version, b->bitmap_offset, b->pages_offset,
			b->present_pages);
	fputc('\n', out);
}

static void print_ram(FILE *out, const struct mdump_stream *s)
{
	if (!s->has_mem_size) {
		fprintf(out, "  ram            no MEM_SIZE record\n");
		return;
	}
	fprintf(out,
		"  ram            %" PRIu64 " bytes in %zu block%s, "
		"page data %" PRIu64 " bytes\n",
		s->ram_total, s->nblocks, s->nblocks == 1 ? "" : "s",
		s->page_bytes);
	fprintf(out, "  records        ");
	print_counts(out, &s->counts, true);
	fputc('\n', out);
	for (size_t i = 0; i < s->nblocks; i++)
		print_block(out, &s->blocks[i]);
}

static void print_devices(FILE *out, const struct mdump_stream *s)
{
	if (s->has_timer)
		fprintf(out,
			"  timer          cpu_ticks_offset %" PRId64
			", cpu_clock_offset %" PRId64 "\n",
			s->cpu_ticks_offset, s->cpu_clock_offset);
	if (s->has_globalstate) {
		fprintf(out, "  globalstate    runstate '%s'", s->runstate);
		if (s->vm_was_suspended >= 0)
			fprintf(out, ", vm_was_suspended %d",
				s->vm_was_suspended);
		fputc('\n', out);
	}
	if (s->has_eof)
		fprintf(out, "  EOF            at offset %" PRIu64 "\n",
			s->eof_offset);
	if (s->has_vmdesc)
		fprintf(out,
			"  vmdesc         %" PRIu64 " bytes of JSON at "
			"offset %" PRIu64 "\n",
			s->vmdesc_len, s->vmdesc_offset);
}

void mdump_print_stream(FILE *out, const char *path,
			const struct mdump_stream *s)
{
	fprintf(out, "main stream %s (%" PRIu64 " bytes)\n", path, s->size);
	if (s->magic)
		fprintf(out, "  header         magic 0x%08x, version %u\n",
			s->magic, s->version);
	if (s->version == QEVM_VERSION)
		print_config(out, s);
	print_events(out, s);
	print_ram(out, s);
	print_devices(out, s);
	if (s->err)
		fprintf(out, "  result         %s: %s\n",
			s->truncated ? "TRUNCATED" : "MALFORMED", s->err->desc);
	else
		fprintf(out, "  result         OK, %" PRIu64 " bytes decoded\n",
			s->end);
}

/* ---- multifd channel
 * ----------------------------------------------------------- */

void mdump_print_channel(FILE *out, const char *path,
			 const struct mdump_channel *c)
{
	char uuid[37];

	fprintf(out, "multifd channel %s (%" PRIu64 " bytes)\n", path, c->size);
	if (c->has_init) {
		format_uuid(c->uuid, uuid);
		fprintf(out, "  init           id %u, uuid %s\n", c->id, uuid);
	}
	fprintf(out,
		"  packets        %" PRIu64 " (SYNC %" PRIu64
		", with pages %" PRIu64 ", device state %" PRIu64
		"), compression %s\n",
		c->packets, c->syncs, c->data_packets, c->device_state_packets,
		mdump_method_name(c->method));
	fprintf(out,
		"  pages          normal %" PRIu64 ", zero %" PRIu64
		", payload %" PRIu64 " bytes\n",
		c->normal, c->zero, c->payload_bytes);
	if (c->has_packet_num)
		fprintf(out, "  packet_num     %" PRIu64 " .. %" PRIu64 "\n",
			c->first_packet_num, c->last_packet_num);
	if (c->stale_next)
		fprintf(out,
			"  stale          %" PRIu64 " packets without pages "
			"carry a next_packet_size (a pre-9.0 sender)\n",
			c->stale_next);
	if (c->err)
		fprintf(out, "  result         %s: %s\n",
			c->truncated ? "TRUNCATED" : "MALFORMED", c->err->desc);
	else
		fprintf(out, "  result         OK, %" PRIu64 " bytes decoded\n",
			c->end);
}
