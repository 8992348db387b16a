/* migdump.h — the decoders of migdump, QEMU's migration stream inspector:
 * a main stream (or a saved file) and multifd channel captures, each
 * decoded from one buffer into a report, stopping at the first malformed
 * byte with its offset. Pure functions over memory (main() maps the files,
 * the fuzz target passes its input); single-threaded, one report per call.
 * Reuses the wire constants of multifd/vmstate.h, ram_flags.h, packet.h. */
#ifndef MIGD_CONTRIB_MIGDUMP_H
#define MIGD_CONTRIB_MIGDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

/* Record classes of the ram section, counted per section, block, total. */
enum mdump_rec {
	MDUMP_REC_MEM_SIZE,
	MDUMP_REC_PAGE,
	MDUMP_REC_ZERO,
	MDUMP_REC_XBZRLE,
	MDUMP_REC_COMPRESS,
	MDUMP_REC_CONTINUE, /* a flag on page-like records, counted apart */
	MDUMP_REC_EOS,
	MDUMP_REC_FLUSH,
	MDUMP_REC_HOOK,
	MDUMP_REC__MAX,
};

struct mdump_counts {
	uint64_t rec[MDUMP_REC__MAX];
};

/* What the stream does not say about itself (reference §9b): MEM_SIZE
 * entries carry fields that depend on the source's capabilities.
 * The configuration's capability list turns ignore_shared and mapped_ram
 * on by itself. */
struct mdump_opts {
	bool postcopy; /* hugepage blocks carry a be64 page size */
	const char *postcopy_blocks; /* "a,b": exactly these (else guessed) */
	bool ignore_shared;	     /* every block carries its be64 GPA */
	bool mapped_ram; /* every block carries a mapped-ram header */
	bool no_footer;	 /* send-section-footer=off on the source */
	uint64_t start;	 /* offset of the stream in the buffer */
	int verbose;	 /* 1: a line per section, 2: per record */
	FILE *trace;	 /* where verbose lines go (NULL: nowhere) */
};

#define MDUMP_NAME_MAX 256 /* a str8 + NUL */
#define MDUMP_CAPS_MAX 16  /* capabilities a configuration may list */
/* Bounds on what the decoders keep, whatever the input's size: QEMU
 * machines have tens of RAM blocks and hundreds to thousands of sections;
 * a long migration a few hundred thousand ram sections. */
#define MDUMP_BLOCKS_MAX 4096
#define MDUMP_SE_MAX 65536
#define MDUMP_EVENTS_MAX 200000
#define MDUMP_CMDS 12 /* MIG_CMD_* numbers 0..11 */

struct mdump_block {
	char name[MDUMP_NAME_MAX];
	uint64_t used_length;
	uint64_t page_size; /* 0: not in the stream */
	uint64_t addr;
	bool has_addr;
	bool mapped_ram;
	uint32_t mr_version;
	uint64_t mr_page_size, bitmap_offset, pages_offset, present_pages;
	struct mdump_counts counts;    /* main-stream records naming it */
	uint64_t mfd_normal, mfd_zero; /* pages in multifd packets */
};

/* One thing met at the top level of the stream, in order. */
enum mdump_ev_kind {
	MDUMP_EV_SECTION, /* START, PART, END or FULL */
	MDUMP_EV_COMMAND,
	MDUMP_EV_EOF,
	MDUMP_EV_VMDESC,
};

struct mdump_event {
	enum mdump_ev_kind kind;
	uint64_t offset, bytes; /* where it starts, how long it is */
	uint8_t type;		/* the section type byte */
	uint32_t id;		/* section id */
	int se;			/* index into stream->se (-1: none) */
	bool opaque;		/* an undecoded device: skipped to footer */
	uint16_t cmd, cmd_len;
	uint64_t cmd_value;	    /* PING's value, PACKAGED's length */
	struct mdump_counts counts; /* ram sections */
};

/* A section registered by START/FULL. */
struct mdump_se {
	uint32_t id, instance, version;
	char idstr[MDUMP_NAME_MAX];
};

struct mdump_stream {
	uint64_t size;	       /* bytes in the buffer */
	uint64_t end;	       /* where decoding stopped */
	struct mig_error *err; /* the first malformed byte, "offset N: ..." */
	uint64_t err_offset;
	bool truncated; /* err is "stream ends inside ..." */

	uint32_t magic, version;
	bool has_config;
	char machine[MDUMP_NAME_MAX];
	char caps[MDUMP_CAPS_MAX][MDUMP_NAME_MAX];
	unsigned ncaps;
	bool has_uuid;
	uint8_t uuid[16];
	uint32_t target_page_bits;

	/* Sections registered by START/FULL; se_order sorts them by id (the
	 * newest entry of an id wins). At most MDUMP_SE_MAX. */
	struct mdump_se *se;
	size_t nse, se_cap;
	uint32_t *se_order;
	size_t nse_order;
	/* The first MDUMP_EVENTS_MAX top-level items; the counters below
	 * count them all. */
	struct mdump_event *ev;
	size_t nev, ev_cap;
	uint64_t events_dropped;
	uint64_t type_counts[5];	 /* by section type byte, 1..4 */
	uint64_t cmd_counts[MDUMP_CMDS]; /* by command number */

	bool has_mem_size;
	uint64_t ram_total;
	struct mdump_block *blocks; /* in MEM_SIZE order, <= MDUMP_BLOCKS_MAX */
	size_t nblocks, blocks_cap;
	uint32_t *block_order; /* blocks sorted by name */
	struct mdump_counts counts;
	uint64_t page_bytes; /* PAGE + XBZRLE + COMPRESS payloads */

	bool has_timer;
	int64_t cpu_ticks_offset, cpu_clock_offset;
	bool has_globalstate;
	char runstate[101];
	uint32_t gs_size;
	int vm_was_suspended; /* -1: a 7.2 layout (no such field) */

	bool has_eof;
	uint64_t eof_offset;
	bool has_vmdesc;
	uint64_t vmdesc_offset, vmdesc_len; /* the JSON text's offset */
};

struct mdump_channel {
	uint64_t size, end;
	struct mig_error *err;
	uint64_t err_offset;
	bool truncated;

	bool has_init;
	uint8_t uuid[16];
	uint8_t id;
	uint64_t packets, syncs, data_packets, device_state_packets;
	uint64_t normal, zero, payload_bytes;
	uint64_t stale_next; /* normal == 0 but next_packet_size != 0 */
	uint32_t method;     /* compression bits of the data packets */
	bool has_packet_num;
	uint64_t first_packet_num, last_packet_num;
};

/* Decodes the main stream in buf[o->start .. len). Returns 0 when all of it
 * decodes, -EINVAL at a malformed byte, -EPIPE when it is truncated (s->err
 * says where and what either way), -ENOMEM. s must be zeroed or fresh from
 * a previous mdump_stream_free(); free it with mdump_stream_free(). */
int mdump_stream_decode(const uint8_t *buf, uint64_t len,
			const struct mdump_opts *o, struct mdump_stream *s);
void mdump_stream_free(struct mdump_stream *s);

/* Decodes one multifd channel capture. s (may be NULL) gives the block list
 * that packets must name (and gets the per-block page counts); without it
 * block names and offsets are not checked. Same returns as above. */
int mdump_channel_decode(const uint8_t *buf, uint64_t len,
			 const struct mdump_opts *o, struct mdump_stream *s,
			 struct mdump_channel *c);
void mdump_channel_free(struct mdump_channel *c);

/* ---- reports (migdump_report.c, migdump_json.c) ---- */
const char *mdump_rec_name(enum mdump_rec r);
const char *mdump_section_type_name(uint8_t type);
const char *mdump_command_name(uint16_t cmd); /* NULL when unknown */
const char *mdump_method_name(uint32_t method_bits);
/* Printable copy of len bytes: non-printable bytes become \xNN. out gets at
 * most outlen bytes, NUL included. */
void mdump_escape(const uint8_t *in, size_t len, char *out, size_t outlen);

void mdump_print_stream(FILE *out, const char *path,
			const struct mdump_stream *s);
void mdump_print_channel(FILE *out, const char *path,
			 const struct mdump_channel *c);
/* The whole report as one JSON document (jansson); vmdesc_buf is the main
 * buffer, to embed the vmdesc when with_vmdesc. NULL on out of memory. */
char *mdump_json_report(const char *main_path, const struct mdump_stream *s,
			const uint8_t *buf, bool with_vmdesc,
			const char *const *chan_paths,
			const struct mdump_channel *chans, size_t nchans);

#endif
